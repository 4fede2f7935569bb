//! stdin, clocks and random: closed and deterministic unless granted.

use crate::guests;
use crate::util::{Scene, both};
use std::io::Write;
use std::process::Stdio;

#[test]
fn undeclared_clocks_are_frozen_and_declared_ones_are_real() {
    for (kind, probe) in both(guests::PROBE_P1, guests::PROBE_P2) {
        let s = Scene::new();
        let r = s.run(None, probe, &["clock"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "wall=946684800\nmono_ns=0\n", "{kind}");

        let m = s.manifest("[clocks]\nwall = true\nmonotonic = true\n");
        let r = s.run(Some(&m), probe, &["clock"]);
        let wall: u64 = r.stdout.lines().next().unwrap()["wall=".len()..]
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(wall.abs_diff(now) < 60, "{kind}: {r:#?}");
        let mono: u64 = r.stdout.lines().nth(1).unwrap()["mono_ns=".len()..]
            .parse()
            .unwrap();
        assert!(mono > 0, "{kind}: a busy loop took no time: {r:#?}");
    }
}

#[test]
fn undeclared_random_is_deterministic_and_secure_random_is_not() {
    for (kind, probe) in both(guests::PROBE_P1, guests::PROBE_P2) {
        let s = Scene::new();
        let a = s.run(None, probe, &["random"]).stdout;
        let b = s.run(None, probe, &["random"]).stdout;
        assert!(a.starts_with("random="), "{kind}: {a}");
        assert_eq!(a, b, "{kind}: the seeded generator repeats");

        let m = s.manifest("[random]\nsecure = true\n");
        let a = s.run(Some(&m), probe, &["random"]).stdout;
        let b = s.run(Some(&m), probe, &["random"]).stdout;
        assert_ne!(a, b, "{kind}: the host CSPRNG does not repeat");
    }
}

#[test]
fn stdin_is_closed_unless_inherited() {
    for (kind, probe) in both(guests::PROBE_P1, guests::PROBE_P2) {
        let s = Scene::new();
        let feed = |manifest: Option<&std::path::Path>| {
            s.run_with(manifest, probe, &["stdin"], |c| {
                c.stdin(Stdio::piped());
            })
        };
        // `run_with` closes stdin unless told otherwise; with a pipe that nobody writes,
        // a closed guest stdin still reads nothing.
        let r = feed(None);
        assert_eq!(r.stdout, "stdin=0 bytes\n", "{kind}: {r:#?}");

        let m = s.manifest("[stdio]\nstdin = \"inherit\"\n");
        let mut cmd = crate::util::warden();
        cmd.args(["run", "--manifest"])
            .arg(&m)
            .arg(probe)
            .args(["--", "stdin"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"line one\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{kind}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "stdin=9 bytes\nline one\n",
            "{kind}"
        );
    }
}

#[test]
fn stdout_can_be_discarded() {
    let s = Scene::new();
    let m = s.manifest("[stdio]\nstdout = \"null\"\n");
    let r = s.run(Some(&m), guests::HELLO_P1, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "");
}

/// A component writing to a stdout whose reader has gone sees its stream `closed`, as WASI
/// says (and as the wasmtime CLI answers), not `last-operation-failed`: Rust's std reports it
/// as `BrokenPipe`. The control keeps the reader: the same guest writes on until its output
/// limit.
#[test]
fn a_component_writing_to_a_closed_stdout_sees_the_stream_closed() {
    use std::io::Read;
    let s = Scene::new();
    let mut child = crate::util::warden()
        .args(["run", guests::FLOOD_P2])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = vec![0u8; 1024];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let r = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    // A component's exit code is 0 or 1 (wasi:cli/exit): flood's 3 arrives as 1.
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("write failed: BrokenPipe"), "{stderr}");

    // Control: a reader that stays.
    let m = s.manifest("[limits]\noutput = \"1MiB\"\n");
    let r = s.run(Some(&m), guests::FLOOD_P2, &[]);
    assert_eq!(r.code, 120, "{r:#?}");
    assert!(!r.stderr.contains("write failed"), "{r:#?}");
}
