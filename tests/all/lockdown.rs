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
    assert!(base <= 27, "base profile has {base} syscalls");

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
    assert!(count <= 27, "{}", r.stdout);
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
    pub(super) const SIGSYS: i32 = 31;

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

/// Guests that only read what they were granted are never killed by the lockdown, whatever
/// path their reads take through wasmtime-wasi: a core module that polls a file
/// (`poll_oneoff` with an `fd_read` subscription) has its read run on tokio's blocking pool,
/// as do a component's file streams. The pool's threads are started before the lockdown; the
/// control leaves them to start on demand (a test build's switch) and is killed (exit 159),
/// which shows the guest does take that path.
#[cfg(feature = "test-escape")]
pub(crate) mod file_polls {
    use crate::util::Scene;

    /// Opens `NAME` under the preopened folder (fd 3), waits for it to be readable with
    /// `poll_oneoff`, reads up to 1 KiB and writes it to stdout; exits with the first errno
    /// met, or 0.
    pub(crate) fn poll_then_read(s: &Scene, name: &str) -> String {
        let len = name.len();
        let wat = format!(
            r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{name}")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $exit (local.get $errno)))))
  (func (export "_start")
    ;; fd = path_open(3, follow, NAME, no oflags, rights fd_read|fd_tell|poll_fd_readwrite,
    ;; none to inherit, no fdflags)
    (call $check (call $open (i32.const 3) (i32.const 1) (i32.const 0) (i32.const {len})
      (i32.const 0) (i64.const 0x8000022) (i64.const 0) (i32.const 0) (i32.const 16)))
    ;; one subscription at 32: userdata 7, tag 1 (fd_read), the file's descriptor
    (i64.store (i32.const 32) (i64.const 7))
    (i32.store8 (i32.const 40) (i32.const 1))
    (i32.store (i32.const 48) (i32.load (i32.const 16)))
    (call $check (call $poll (i32.const 32) (i32.const 96) (i32.const 1) (i32.const 128)))
    ;; the event's error field (u16 at offset 8) must be 0
    (call $check (i32.load16_u (i32.const 104)))
    (i32.store (i32.const 136) (i32.const 256))
    (i32.store (i32.const 140) (i32.const 1024))
    (call $check (call $read (i32.load (i32.const 16)) (i32.const 136) (i32.const 1)
      (i32.const 144)))
    (i32.store (i32.const 140) (i32.load (i32.const 144)))
    (call $check (call $write (i32.const 1) (i32.const 136) (i32.const 1) (i32.const 144)))))"#
        );
        let path = s.path("poll-then-read.wasm");
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn a_module_polling_a_read_only_folder_s_file_is_not_killed() {
        let s = Scene::new();
        s.mkdir("data");
        s.file("data/notes.txt", "granted words\n");
        let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
        let guest = poll_then_read(&s, "notes.txt");
        let r = s.run(Some(&m), &guest, &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, "granted words\n");
        assert_eq!(
            r.events("start")[0]["seccomp"]["groups"],
            serde_json::json!(["base", "file-read"]),
            "no thread group for a read-only grant"
        );

        // Control: the pool left to start threads after the lockdown.
        let r = s.run_with(Some(&m), &guest, &[], |c| {
            c.env("WARDEN_TEST_LAZY_BLOCKING_POOL", "1");
        });
        assert_eq!(r.signal, Some(super::escape::SIGSYS), "{r:#?}");
    }

    #[test]
    fn a_module_polling_a_read_only_single_file_grant_is_not_killed() {
        let s = Scene::new();
        s.file("notes.txt", "one granted file\n");
        let m = s.manifest(
            "[[files]]\nhost = \"notes.txt\"\nguest = \"/data/notes.txt\"\naccess = \"read\"\n",
        );
        let guest = poll_then_read(&s, "notes.txt");
        let r = s.run(Some(&m), &guest, &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, "one granted file\n");

        let r = s.run_with(Some(&m), &guest, &[], |c| {
            c.env("WARDEN_TEST_LAZY_BLOCKING_POOL", "1");
        });
        assert_eq!(r.signal, Some(super::escape::SIGSYS), "{r:#?}");
    }

    #[test]
    fn a_module_polling_a_read_write_file_starts_no_thread_after_the_lockdown() {
        let s = Scene::new();
        s.mkdir("out");
        s.file("out/state.txt", "writable\n");
        let m =
            s.manifest("[[files]]\nhost = \"out\"\nguest = \"/out\"\naccess = \"read-write\"\n");
        let guest = poll_then_read(&s, "state.txt");
        let r = s.run(Some(&m), &guest, &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, "writable\n");
        assert_eq!(
            r.events("start")[0]["seccomp"]["groups"],
            serde_json::json!(["base", "file-read", "file-write"]),
            "read-write grants no longer bring the thread group"
        );
        let r = s.run_with(Some(&m), &guest, &[], |c| {
            c.env("WARDEN_TEST_LAZY_BLOCKING_POOL", "1");
        });
        assert_eq!(r.signal, Some(super::escape::SIGSYS), "{r:#?}");
    }
}
