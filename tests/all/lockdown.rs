//! Host lockdown: every run is under the manifest's seccomp allow list unless told otherwise,
//! and a host that tries what an escaped guest would is killed (exit 159).

use crate::guests;
use crate::util::{Scene, finish, warden};

#[test]
fn runs_are_locked_down_by_default_with_the_manifest_s_profile() {
    let s = Scene::new();
    let r = s.run(None, guests::HELLO_P1, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let seccomp = &r.events("start")[0]["seccomp"];
    assert_eq!(seccomp["mode"], "enforce");
    assert_eq!(seccomp["groups"], serde_json::json!(["base"]));
    let base = seccomp["syscalls"].as_u64().unwrap();
    assert!(base <= 26, "base profile has {base} syscalls");

    s.mkdir("data");
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
    let r = s.run(Some(&m), guests::FS_P1, &["ls", "/data"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let seccomp = &r.events("start")[0]["seccomp"];
    assert_eq!(seccomp["groups"], serde_json::json!(["base", "file-read"]));
    assert!(seccomp["syscalls"].as_u64().unwrap() > base);
}

#[test]
fn seccomp_off_is_warned_about_and_audited() {
    let s = Scene::new();
    let r = s.run_with(None, guests::HELLO_P1, &[], |c| {
        c.args(["--seccomp", "off"]);
    });
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("warning: --seccomp off"), "{r:#?}");
    assert_eq!(r.events("start")[0]["seccomp"]["mode"], "off");
}

#[test]
fn seccomp_show_lists_each_syscall_with_its_reason_and_the_count() {
    let s = Scene::new();
    let m = s.manifest("");
    let mut cmd = warden();
    cmd.args(["seccomp", "show"]).arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let last = r.stdout.lines().last().unwrap();
    let count: usize = last.strip_suffix(" syscalls").unwrap().parse().unwrap();
    assert!(count <= 26, "{}", r.stdout);
    let rows: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.ends_with(" syscalls"))
        .collect();
    assert_eq!(rows.len(), count, "{}", r.stdout);
    assert!(rows.iter().any(|l| l.starts_with("mmap ")));
    for forbidden in ["execve", "fork", "socket", "ptrace", "bpf"] {
        assert!(
            !rows
                .iter()
                .any(|l| l.split_whitespace().next() == Some(forbidden)),
            "{forbidden} allowed: {}",
            r.stdout
        );
    }
}

#[test]
fn seccomp_export_writes_an_oci_profile() {
    let s = Scene::new();
    s.mkdir("out");
    let m = s.manifest("[[files]]\nhost = \"out\"\nguest = \"/out\"\naccess = \"read-write\"\n");
    let mut cmd = warden();
    cmd.args(["seccomp", "export", "--format", "oci"]).arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let profile: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_KILL_PROCESS");
    assert!(!profile["architectures"].as_array().unwrap().is_empty());
    let names: Vec<&str> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["names"].as_array().unwrap())
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"mkdirat"),
        "a read-write grant may make folders"
    );
    assert!(!names.contains(&"execve"));
}

#[cfg(feature = "test-escape")]
mod escape {
    use super::*;

    /// `SIGSYS`, the signal seccomp kills with.
    const SIGSYS: i32 = 31;

    /// A core module that calls `warden_test::escape(what)` from `_start`.
    fn escaping_guest(s: &Scene, what: i32) -> String {
        let wat = format!(
            r#"(module
                 (import "warden_test" "escape" (func $escape (param i32) (result i32)))
                 (func (export "_start") (drop (call $escape (i32.const {what})))))"#
        );
        let path = s.path(&format!("escape-{what}.wasm"));
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn escape(s: &Scene, what: i32, mode: &str) -> (crate::util::Outcome, bool) {
        let marker = s.path(&format!("escaped-{what}-{mode}"));
        let r = s.run_with(None, &escaping_guest(s, what), &[], |c| {
            c.args(["--seccomp", mode])
                .env("WARDEN_TEST_ESCAPE_MARKER", &marker);
        });
        (r, marker.exists())
    }

    #[test]
    fn a_simulated_escape_kills_warden_under_enforce() {
        let s = Scene::new();
        for (what, attack) in [
            (0, "exec"),
            (1, "socket"),
            (2, "file write"),
            (3, "new code"),
        ] {
            let (r, escaped) = escape(&s, what, "enforce");
            assert_eq!(r.signal, Some(SIGSYS), "{attack}: {r:#?}");
            assert!(!escaped, "{attack}: the action went through");
            assert_eq!(r.events("start").len(), 1, "{attack}: the run had started");
            assert!(
                r.events("exit").is_empty(),
                "{attack}: nothing after the kill"
            );
        }
    }

    #[test]
    fn the_shell_sees_exit_code_159() {
        let s = Scene::new();
        let guest = escaping_guest(&s, 0);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("\"$0\" run \"$1\"; echo \"code=$?\"")
            .arg(env!("CARGO_BIN_EXE_warden"))
            .arg(&guest)
            .env("WARDEN_CACHE_DIR", crate::util::shared_cache_dir())
            .env("WARDEN_TEST_ESCAPE_MARKER", s.path("marker"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("code=159"),
            "{out:?}"
        );
    }

    #[test]
    fn without_lockdown_the_same_escape_goes_through() {
        // The control: proves the tests above would fail if the filter were not there.
        let s = Scene::new();
        for what in [0, 2] {
            let (r, escaped) = escape(&s, what, "off");
            assert_eq!(r.code, 0, "{r:#?}");
            assert!(escaped, "escape {what} should work without lockdown");
        }
        let (r, escaped) = escape(&s, 2, "log");
        assert_eq!(r.code, 0, "log mode reports but does not kill: {r:#?}");
        assert!(escaped);
    }
}
