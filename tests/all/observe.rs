//! What a run observes beyond its grants: whether the guest used its clocks, random and
//! stdin (learned only when it did), and a component's refused file operations in the audit
//! log, as a core module's are.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use crate::guests;
use crate::learn::{check_ok, learn, table};
use crate::util::{Scene, warden};

/// BROAD for the probe guest: both clocks, random and stdin.
fn probe_broad(s: &Scene) -> std::path::PathBuf {
    s.manifest(
        r#"[clocks]
wall = true
monotonic = true

[random]
secure = true

[stdio]
stdin = "inherit"
"#,
    )
}

/// The grants of LEARNED among clocks, random and stdin, as `clocks.wall`, `random.secure`,
/// `stdio.stdin`.
fn kept(learned: &Path) -> Vec<String> {
    let t = table(learned);
    let mut got = Vec::new();
    for (section, key) in [
        ("clocks", "wall"),
        ("clocks", "monotonic"),
        ("random", "secure"),
        ("stdio", "stdin"),
    ] {
        if t.get(section).and_then(|s| s.get(key)).is_some() {
            got.push(format!("{section}.{key}"));
        }
    }
    got
}

#[test]
fn clocks_random_and_stdin_are_learned_only_when_the_guest_uses_them() {
    for module in [guests::PROBE_P1, guests::PROBE_P2] {
        let s = Scene::new();
        let broad = probe_broad(&s);
        let learned = s.path("learned.toml");
        for (step, want) in [
            ("args", vec![]),
            ("clock", vec!["clocks.wall", "clocks.monotonic"]),
            ("random", vec!["random.secure"]),
        ] {
            let r = learn(&broad, &learned, false, module, &[step], &[]);
            assert_eq!(r.code, 0, "{module} {step}: {r:#?}");
            let text = std::fs::read_to_string(&learned).unwrap();
            assert_eq!(kept(&learned), want, "{module} {step}:\n{text}");
            if step == "args" {
                assert!(
                    text.contains("[clocks] wall: ") && text.contains("[random] secure: "),
                    "the dropped grants are listed: {text}"
                );
            }
            check_ok(&learned);
        }

        // stdin: read → kept.
        let mut cmd = warden();
        cmd.args(["learn", "--manifest"])
            .arg(&broad)
            .arg("--out")
            .arg(&learned)
            .arg(module)
            .args(["--", "stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"hello").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("stdin=5 bytes"));
        assert_eq!(kept(&learned), ["stdio.stdin"], "{module} stdin");

        // Control: what was dropped is really gone. Learned from `probe args`, the clock
        // is warden's frozen one; learned from `probe clock`, it is the host's.
        let r = learn(&broad, &learned, false, module, &["args"], &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        let frozen = s.run(Some(&learned), module, &["clock"]);
        // warden's frozen wall clock reads 2000-01-01, its monotonic clock never moves.
        assert!(
            frozen.stdout.contains("wall=946684800\n") && frozen.stdout.contains("mono_ns=0\n"),
            "{module}: {frozen:#?}"
        );
        let r = learn(&broad, &learned, false, module, &["clock"], &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        let real = s.run(Some(&learned), module, &["clock"]);
        assert!(
            real.stdout.contains("wall=1") || real.stdout.contains("wall=2"),
            "{module}: {real:#?}"
        );
        assert!(
            !real.stdout.contains("wall=946684800\n") && !real.stdout.contains("mono_ns=0\n"),
            "{module}: {real:#?}"
        );
    }
}

#[test]
fn a_component_refused_file_operation_is_in_the_audit_log() {
    let s = Scene::new();
    s.file("ro/keep.txt", "kept\n");
    let manifest = |access: &str| {
        s.file(
            &format!("{access}.warden.toml"),
            &format!(
                r#"[identity]
name = "p2-fs"

[[files]]
host = "ro"
guest = "/ro"
access = "{access}"
"#
            ),
        )
    };
    let read_only = manifest("read");
    let denied = |m: &Path| {
        let r = s.run(
            Some(m),
            guests::FS_P2,
            &["seq", "write /ro/new.txt x", "rm /ro/keep.txt"],
        );
        let log: Vec<String> = r.audit.iter().map(|v| v.to_string()).collect();
        (r, log.join("\n"))
    };
    let (r, log) = denied(&read_only);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(!s.path("ro/new.txt").exists());
    let deny = log
        .lines()
        .find(|l| l.contains(r#""decision":"deny""#) && l.contains(r#""capability":"fs""#))
        .unwrap_or_else(|| panic!("no fs deny record:\n{log}"));
    assert!(deny.contains(r#""target":"/ro/new.txt""#), "{deny}");
    assert!(deny.contains("open-at: "), "{deny}");

    // Control: granted read-write, the same operations are allowed and nothing is denied.
    let read_write = manifest("read-write");
    let (r, log) = denied(&read_write);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(s.path("ro/new.txt").exists());
    assert!(
        !log.lines().any(|l| l.contains(r#""decision":"deny""#)),
        "{log}"
    );
}
