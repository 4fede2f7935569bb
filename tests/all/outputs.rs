//! Files warden itself writes — LEARNED (`learn --out`), audit logs (`run --audit`, `serve
//! --audit`), learn's record of its run, the module cache — never follow what a workload or
//! anyone else left where they go, and never sit where the workload could write them.
//! Each attack has a control: the same output at a safe path works.

use crate::guests;
use crate::learn::learn;
use crate::util::{Scene, warden};
use std::os::unix::fs::{PermissionsExt, symlink};

/// A FIFO (named pipe) at `rel` in the scene, made with the system's `mkfifo`.
fn mkfifo(s: &Scene, rel: &str) -> std::path::PathBuf {
    let fifo = s.path(rel);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|m| m.success()), "mkfifo {}", fifo.display());
    fifo
}

fn rw_manifest(s: &Scene) -> std::path::PathBuf {
    s.mkdir("work");
    s.manifest("[[files]]\nhost = \"work\"\nguest = \"/work\"\naccess = \"read-write\"\n")
}

#[test]
fn learn_refuses_to_write_learned_through_a_symlink_or_into_a_fifo_or_folder() {
    let s = Scene::new();
    let broad = rw_manifest(&s);
    let victim = s.file("victim.txt", "host file outside every grant\n");

    // A link planted where LEARNED goes: refused before the run, the target untouched.
    let link = s.path("learned-link.toml");
    symlink(&victim, &link).unwrap();
    let r = learn(&broad, &link, false, guests::FS_P1, &["ls", "/work"], &[]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("symbolic link"), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "host file outside every grant\n"
    );

    // A FIFO: refused at once, never a hang (the test would time out otherwise).
    let fifo = mkfifo(&s, "learned.fifo");
    let r = learn(&broad, &fifo, false, guests::FS_P1, &["ls", "/work"], &[]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("FIFO"), "{r:#?}");

    // A folder.
    let dir = s.mkdir("learned-dir");
    let r = learn(&broad, &dir, false, guests::FS_P1, &["ls", "/work"], &[]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("directory"), "{r:#?}");

    // Control: a plain path is written, private to its owner.
    let out = s.path("learned.toml");
    let r = learn(&broad, &out, false, guests::FS_P1, &["ls", "/work"], &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn learn_refuses_learned_inside_a_read_write_grant_of_the_learning_run() {
    let s = Scene::new();
    let broad = rw_manifest(&s);
    // The guest could plant a link at this path during its run, or write LEARNED first.
    let inside = s.path("work/learned.toml");
    let r = learn(&broad, &inside, false, guests::FS_P1, &["ls", "/work"], &[]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("inside the read-write grant"), "{r:#?}");
    assert!(!inside.exists());

    // The guest tries exactly that: it writes a link where LEARNED would go. With LEARNED
    // outside the grant, the link is the guest's own file and LEARNED is unaffected.
    let out = s.path("learned.toml");
    let r = learn(
        &broad,
        &out,
        false,
        guests::FS_P1,
        &["symlink", "../victim.txt", "/work/learned.toml"],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("[identity]")
    );
}

#[test]
fn learns_private_record_of_its_run_is_out_of_reach_of_a_guest_granted_the_temp_folder() {
    let s = Scene::new();
    // TMPDIR inside a read-write grant: a guest could find and rewrite learn's record there.
    let tmp = s.mkdir("tmp");
    let cache = s.mkdir("cache");
    let broad =
        s.manifest("[[files]]\nhost = \"tmp\"\nguest = \"/tmp\"\naccess = \"read-write\"\n");
    let out = s.path("learned.toml");
    let tmp_s = tmp.to_str().unwrap();
    let cache_s = cache.to_str().unwrap();
    let r = learn(
        &broad,
        &out,
        false,
        guests::FS_P1,
        &["ls", "/tmp"],
        &[("TMPDIR", tmp_s), ("WARDEN_CACHE_DIR", cache_s)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    // The guest listed /tmp during its run: learn's folder was not there.
    assert!(!r.stdout.contains("warden-learn-"), "{r:#?}");
    assert!(out.exists());

    // Control: with TMPDIR outside every grant, learn keeps its folder there (and removes
    // it after); the guest granted another folder sees none of it either.
    let other = s.mkdir("tmp2");
    let r = learn(
        &broad,
        &s.path("learned2.toml"),
        false,
        guests::FS_P1,
        &["ls", "/tmp"],
        &[
            ("TMPDIR", other.to_str().unwrap()),
            ("WARDEN_CACHE_DIR", cache_s),
        ],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        std::fs::read_dir(&other).unwrap().count(),
        0,
        "removed after"
    );
}

#[test]
fn run_audit_refuses_a_symlink_a_fifo_and_a_path_inside_a_read_write_grant() {
    let s = Scene::new();
    let m = rw_manifest(&s);
    let victim = s.file("victim.txt", "untouched\n");
    let run = |audit: &std::path::Path| {
        let mut cmd = warden();
        cmd.arg("run")
            .arg("--audit")
            .arg(audit)
            .arg("--manifest")
            .arg(&m)
            .arg(guests::FS_P1)
            .args(["--", "ls", "/work"]);
        crate::util::finish(cmd, None)
    };

    let link = s.path("audit-link.jsonl");
    symlink(&victim, &link).unwrap();
    let r = run(&link);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("symbolic link"), "{r:#?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");

    let fifo = mkfifo(&s, "audit.fifo");
    let r = run(&fifo);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("FIFO"), "{r:#?}");

    let inside = s.path("work/audit.jsonl");
    let r = run(&inside);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("inside the read-write grant"), "{r:#?}");
    assert!(!inside.exists());

    // Control: a plain path outside the grant.
    let audit = s.path("audit.jsonl");
    let r = run(&audit);
    assert_eq!(r.code, 0, "{r:#?}");
    let meta = std::fs::metadata(&audit).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&audit)
            .unwrap()
            .contains("\"exit\"")
    );
}

#[test]
fn the_module_cache_is_not_used_when_a_read_write_grant_reaches_into_it() {
    let s = Scene::new();
    let cache = s.mkdir("cache");
    // The workload may write the cache folder: it could plant compiled code for the next run.
    let m =
        s.manifest("[[files]]\nhost = \"cache\"\nguest = \"/cache\"\naccess = \"read-write\"\n");
    let r = s.run_with(Some(&m), guests::FS_P1, &["ls", "/cache"], |c| {
        c.env("WARDEN_CACHE_DIR", &cache);
    });
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("the module cache is not used"), "{r:#?}");
    assert_eq!(r.events("start")[0]["cache"], "disabled", "{r:#?}");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing stored"
    );

    // Control: the same cache folder granted read-only is used.
    let m = s.manifest("[[files]]\nhost = \"cache\"\nguest = \"/cache\"\naccess = \"read\"\n");
    let r = s.run_with(Some(&m), guests::FS_P1, &["ls", "/cache"], |c| {
        c.env("WARDEN_CACHE_DIR", &cache);
    });
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!r.stderr.contains("module cache"), "{r:#?}");
    assert!(
        std::fs::read_dir(&cache).unwrap().count() > 0,
        "an entry stored"
    );
}

#[test]
fn serve_refuses_an_audit_log_a_served_workload_could_rewrite_or_that_is_a_fifo() {
    let s = Scene::new();
    s.mkdir("work");
    let m = crate::serve::manifest(
        &s,
        "writer",
        guests::FS_P1,
        "[[files]]\nhost = \"work\"\nguest = \"/work\"\naccess = \"read-write\"\n",
    );
    let serve = |audit: &std::path::Path| {
        let mut cmd = warden();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
            .arg(&m)
            .arg("--audit")
            .arg(audit);
        crate::util::finish(cmd, None)
    };
    let r = serve(&s.path("work/audit.jsonl"));
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("inside the read-write grant"), "{r:#?}");
    let fifo = mkfifo(&s, "audit.fifo");
    let r = serve(&fifo);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("FIFO"), "{r:#?}");

    // Control: a plain path outside the grant serves.
    let good = crate::serve::Serve::start(&s, &[&m], &[]);
    assert_eq!(good.stop(), 0);
}
