//! File grants: directories and single files, read and read-write, and the escapes a hostile
//! guest tries.

use crate::guests;
use crate::util::{Scene, both};

fn dir_grant(s: &Scene, access: &str) -> std::path::PathBuf {
    s.file("data/report.txt", "quarterly numbers\n");
    s.manifest(&format!(
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"{access}\"\n"
    ))
}

#[test]
fn a_read_grant_reads_but_cannot_write() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        let m = dir_grant(&s, "read");
        let r = s.run(Some(&m), fs, &["read", "/data/report.txt"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "quarterly numbers\n");

        let r = s.run(Some(&m), fs, &["write", "/data/new.txt", "x"]);
        assert_eq!(
            r.code, 1,
            "{kind}: the write must fail in the guest: {r:#?}"
        );
        assert!(r.stderr.starts_with("error: "), "{kind}: {r:#?}");
        assert!(!s.path("data/new.txt").exists(), "{kind}: nothing written");
        let r = s.run(Some(&m), fs, &["append", "/data/report.txt", "tampered"]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        assert_eq!(
            std::fs::read_to_string(s.path("data/report.txt")).unwrap(),
            "quarterly numbers\n"
        );
        assert_eq!(r.exit()["outcome"], "exited", "{kind}: no crash");
    }
}

#[test]
fn a_denied_write_is_audited_for_modules() {
    let s = Scene::new();
    let m = dir_grant(&s, "read");
    let r = s.run(Some(&m), guests::FS_P1, &["write", "/data/new.txt", "x"]);
    let denied = r.denials("fs");
    assert_eq!(denied.len(), 1, "{r:#?}");
    assert_eq!(denied[0]["target"], "/data/new.txt");
    assert_eq!(denied[0]["identity"], "spiffe://test.example/nhi");
    assert!(
        denied[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("path_open")
    );
}

#[test]
fn a_read_write_grant_writes_to_the_host() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        let m = dir_grant(&s, "read-write");
        let r = s.run(Some(&m), fs, &["write", "/data/out.txt", "signed"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "wrote 6 bytes\n");
        assert_eq!(
            std::fs::read_to_string(s.path("data/out.txt")).unwrap(),
            "signed"
        );
        let r = s.run(Some(&m), fs, &["mkdir", "/data/sub"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert!(s.path("data/sub").is_dir());
    }
}

#[test]
fn no_file_grant_means_no_filesystem() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        let secret = s.file("secret.txt", "TOP-SECRET-VALUE");
        let r = s.run(None, fs, &["read", secret.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        assert!(!r.stdout.contains("TOP-SECRET-VALUE"));
        let r = s.run(None, fs, &["ls", "/"]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
    }
}

#[test]
fn a_single_file_grant_shows_that_file_and_nothing_beside_it() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        s.file("config/app.toml", "region = \"eu\"\n");
        s.file("config/credentials.toml", "password = \"hunter2\"\n");
        let m = s.manifest(
            "[[files]]\nhost = \"config/app.toml\"\nguest = \"/etc/app/app.toml\"\naccess = \"read\"\n",
        );
        let r = s.run(Some(&m), fs, &["read", "/etc/app/app.toml"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "region = \"eu\"\n");

        let r = s.run(Some(&m), fs, &["ls", "/etc/app"]);
        assert_eq!(
            r.stdout, "app.toml\n",
            "{kind}: only the granted file: {r:#?}"
        );
        for sneaky in ["/etc/app/credentials.toml", "/etc/app/../credentials.toml"] {
            let r = s.run(Some(&m), fs, &["read", sneaky]);
            assert_eq!(r.code, 1, "{kind} {sneaky}: {r:#?}");
            assert!(!r.stdout.contains("hunter2"));
        }
        let r = s.run(
            Some(&m),
            fs,
            &["write", "/etc/app/app.toml", "region = \"us\""],
        );
        assert_eq!(r.code, 1, "{kind}: read grant: {r:#?}");
        assert_eq!(
            std::fs::read_to_string(s.path("config/app.toml")).unwrap(),
            "region = \"eu\"\n"
        );
    }
}

#[test]
fn a_read_write_single_file_grant_updates_only_that_file() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        s.file("state/cursor", "41");
        let m = s.manifest(
            "[[files]]\nhost = \"state/cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n",
        );
        let r = s.run(Some(&m), fs, &["write", "/state/cursor", "42"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(
            std::fs::read_to_string(s.path("state/cursor")).unwrap(),
            "42"
        );
        // The guest's folder is private scratch: a file made beside the grant never
        // reaches the host, and neither does a change to a sibling.
        s.file("state/sibling", "untouched");
        let r = s.run(Some(&m), fs, &["write", "/state/other", "x"]);
        assert_eq!(r.exit()["outcome"], "exited", "{kind}: {r:#?}");
        assert!(!s.path("state/other").exists(), "{kind}");
        let r = s.run(Some(&m), fs, &["read", "/state/sibling"]);
        assert_eq!(r.code, 1, "{kind}: the sibling is not visible: {r:#?}");
        assert_eq!(
            std::fs::read_to_string(s.path("state/sibling")).unwrap(),
            "untouched"
        );
    }
}

#[test]
fn escapes_are_contained() {
    for (kind, escape) in both(guests::ESCAPE_P1, guests::ESCAPE_P2) {
        let s = Scene::new();
        s.file("outside/secret.txt", "OUTSIDE-SECRET");
        s.mkdir("jail");
        std::os::unix::fs::symlink(s.path("outside"), s.path("jail/link-out")).unwrap();
        let m =
            s.manifest("[[files]]\nhost = \"jail\"\nguest = \"/jail\"\naccess = \"read-write\"\n");
        let r = s.run(Some(&m), escape, &["/jail"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        for attempt in ["dotdot", "absolute", "symlink", "create-root"] {
            assert!(
                r.stdout.contains(&format!("{attempt}: blocked")),
                "{kind} {attempt}: {r:#?}"
            );
        }
        assert!(!r.stdout.contains("ESCAPED"));
        assert!(!r.stdout.contains("OUTSIDE-SECRET"));
        assert!(!r.stdout.contains("root:x:"), "{kind}: /etc/passwd leaked");
        if kind == "module" {
            // `..` and the symlink reach the host and are refused there; both are audited.
            let targets: Vec<String> = r
                .denials("fs")
                .iter()
                .map(|d| d["target"].as_str().unwrap().to_string())
                .collect();
            assert!(targets.iter().any(|t| t.contains("..")), "{targets:?}");
            assert!(
                targets.iter().any(|t| t.contains("link-out")),
                "{targets:?}"
            );
        }
    }
}

#[test]
fn a_relative_path_resolves_from_the_root_and_cwd_is_for_components_that_ask() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        let m = dir_grant(&s, "read");
        // wasi-libc starts every program at "/": `data/report.txt` is `/data/report.txt`.
        let r = s.run(Some(&m), fs, &["read", "data/report.txt"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "quarterly numbers\n");
        // Control: relative to the grant itself it is not found.
        let r = s.run(Some(&m), fs, &["read", "report.txt"]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        let m = s.manifest(
            "[workload]\ncwd = \"/data\"\n\n[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n",
        );
        let r = s.run(Some(&m), fs, &["read", "report.txt"]);
        if kind == "module" {
            // A core module has no interface to be told a working directory: refused.
            assert_eq!(r.code, 125, "{kind}: {r:#?}");
            assert!(r.stderr.contains("[workload] cwd"), "{kind}: {r:#?}");
        } else {
            // A component may ask (wasi:cli/environment initial-cwd), but Rust's std (through
            // wasi-libc) does not: its relative path still resolves from "/" (docs/manifest.md).
            assert_eq!(r.code, 1, "{kind}: {r:#?}");
        }
        // Outside every folder grant: refused where it is written.
        let m = s.manifest(
            "[workload]\ncwd = \"/elsewhere\"\n\n[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n",
        );
        let r = s.run(Some(&m), fs, &["read", "report.txt"]);
        r.assert_one_line_error("test.warden.toml:6:7: workload.cwd: `/elsewhere` is not inside");
    }
}

#[test]
fn a_relative_guest_path_in_a_grant_is_refused_where_it_is_written() {
    let s = Scene::new();
    s.file("data/report.txt", "quarterly numbers\n");
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"data\"\naccess = \"read\"\n");
    let r = s.run(Some(&m), guests::FS_P1, &["read", "data/report.txt"]);
    r.assert_one_line_error(
        "test.warden.toml:7:9: files[0].guest: expected an absolute guest path",
    );
    // Control: the same grant at "/data" is read through the same relative path.
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
    let r = s.run(Some(&m), guests::FS_P1, &["read", "data/report.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
}
