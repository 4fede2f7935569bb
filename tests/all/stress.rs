//! Lockdown completeness: exit 159 (warden killed by its own seccomp filter) only for real
//! escape attempts. The `stress` guest drives every host function a grant allows at its
//! extremes, under the default `enforce`; each run must finish with the figures that show it
//! did its work, never with `SIGSYS`.
//!
//! These modes are the corpus the allow list was found with (`host-seccomp/src/table.rs`,
//! "How this list was found"): before `mremap`, `faccessat2` and `clock_getres` were listed,
//! the big HTTP bodies, many files and handles, table growth, `..` paths and clock
//! resolutions all ended in 159.
//!
//! Controls: with the same manifests, a guest that makes the host exec still dies with 159
//! (the filter is on in that configuration), and `warden seccomp show` lists the syscall each
//! case needed, with its reason (so the check is not vacuous: the profile really has it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::guests;
use crate::util::{Outcome, Scene, both, finish, warden};

/// `SIGSYS`, the signal seccomp kills with.
const SIGSYS: i32 = 31;

/// The big HTTP response: well above glibc's mmap threshold, below the broker's 16 MiB cap.
const BIG_RESPONSE: usize = 12 * 1024 * 1024;
/// The big request body, in MiB (the guest builds it).
const BIG_BODY_MIB: usize = 8;
/// The big file read, in bytes, and the big write, in MiB (written twice: once whole, once in
/// 64 KiB pieces).
const BIG_FILE: usize = 24 * 1024 * 1024;
const BIG_WRITE_MIB: usize = 12;
/// Open files the guest asks for: more than the descriptor limit the test sets.
const MANY_FILES: usize = 100_000;
/// The descriptor limit for the open-files run: high enough that wasmtime-wasi's descriptor
/// table outgrows glibc's mmap threshold (and is `mremap`ed), low enough to reach quickly.
const NOFILE: u32 = 16_384;
/// Resource handles of each kind (fields, pollables, streams) the p2 guest holds at once.
const MANY_HANDLES: usize = 20_000;
/// Entries of the big folder.
const BIG_FOLDER: usize = 3_000;

/// Runs `stress ARGS` and checks it was not killed by the filter (whatever else happened).
fn stress(s: &Scene, manifest: &Path, module: &str, args: &[&str]) -> Outcome {
    stress_with(s, manifest, module, args, |_| {})
}

fn stress_with(
    s: &Scene,
    manifest: &Path,
    module: &str,
    args: &[&str],
    tweak: impl FnOnce(&mut std::process::Command),
) -> Outcome {
    let r = s.run_with(Some(manifest), module, args, tweak);
    assert_ne!(
        r.signal,
        Some(SIGSYS),
        "killed by the filter: {args:?} {r:#?}"
    );
    assert_ne!(r.code, 159, "{args:?} {r:#?}");
    let seccomp = &r.events("start")[0]["seccomp"];
    assert_eq!(seccomp["mode"], "enforce", "{args:?}");
    r
}

/// Whether `stdout` has this exact line.
fn has_line(r: &Outcome, line: &str) -> bool {
    r.stdout.lines().any(|l| l == line)
}

/// The number after `prefix` on the line that starts with it.
fn figure(r: &Outcome, prefix: &str) -> u64 {
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} in {r:#?}"))
}

fn grant(host: &str, guest: &str, access: &str) -> String {
    format!("[[files]]\nhost = \"{host}\"\nguest = \"{guest}\"\naccess = \"{access}\"\n")
}

/// The rows of `warden seccomp show MANIFEST` for `syscall`.
fn shown(manifest: &Path, syscall: &str) -> Vec<String> {
    let mut cmd = warden();
    cmd.args(["seccomp", "show"]).arg(manifest);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    r.stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(syscall))
        .map(String::from)
        .collect()
}

// --- Files -----------------------------------------------------------------------------------

#[test]
fn big_file_reads_and_writes_are_not_killed() {
    let s = Scene::new();
    s.mkdir("big");
    let data: Vec<u8> = (0..BIG_FILE).map(|i| (i % 251) as u8).collect();
    let sum = data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    std::fs::write(s.path("big/in.bin"), &data).unwrap();
    let m = s.manifest(&format!(
        "{}[limits]\nmemory = \"256MiB\"\n",
        grant("big", "/big", "read-write")
    ));
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &m, guest, &["read", "/big/in.bin"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert!(
            has_line(&r, &format!("read {BIG_FILE} bytes sum {sum}")),
            "{kind}: {r:#?}"
        );

        let mib = BIG_WRITE_MIB.to_string();
        let r = stress(&s, &m, guest, &["write", "/big/out.bin", &mib]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        let written = 2 * BIG_WRITE_MIB * 1024 * 1024;
        assert!(has_line(&r, &format!("wrote {written} bytes")), "{r:#?}");
        let on_disk = std::fs::metadata(s.path("big/out.bin")).unwrap().len();
        assert_eq!(on_disk, written as u64, "{kind}");
    }
}

#[test]
fn opening_files_until_the_descriptor_limit_is_an_error_not_a_kill() {
    let s = Scene::new();
    s.file("data/file.txt", "x");
    let m = s.manifest(&grant("data", "/data", "read"));
    let n = MANY_FILES.to_string();
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress_with(&s, &m, guest, &["open-many", "/data/file.txt", &n], |c| {
            with_nofile_limit(c, NOFILE)
        });
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        let opened = figure(&r, "opened ");
        // The descriptor limit, less what warden itself holds, not the guest's request.
        assert!(
            opened > 1000 && opened < MANY_FILES as u64,
            "{kind}: {r:#?}"
        );
        assert!(!has_line(&r, "stopped: none"), "{kind}: {r:#?}");
        assert!(has_line(&r, "reopened"), "{kind}: {r:#?}");
    }
}

/// Makes `cmd` run under `sh -c 'ulimit -n N; exec …'`, N capped at the hard limit.
fn with_nofile_limit(cmd: &mut std::process::Command, n: u32) {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(
            "n=$1; shift; h=$(ulimit -Hn); \
             if [ \"$h\" != unlimited ] && [ \"$h\" -lt \"$n\" ]; then n=$h; fi; \
             ulimit -n \"$n\" && exec \"$@\"",
        )
        .arg("sh")
        .arg(n.to_string())
        .arg(program)
        .args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.stdin(std::process::Stdio::null());
    *cmd = sh;
}

#[test]
fn a_big_folder_is_listed() {
    let s = Scene::new();
    s.mkdir("many");
    for i in 0..BIG_FOLDER {
        std::fs::write(s.path(&format!("many/f{i}")), "").unwrap();
    }
    let m = s.manifest(&grant("many", "/many", "read"));
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &m, guest, &["ls", "/many"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert!(has_line(&r, &format!("entries {BIG_FOLDER}")), "{r:#?}");
    }
}

/// `..` resolved by cap-std's fallback needed `faccessat2`; a trailing `/` and `.` must work.
#[test]
fn paths_with_dot_dotdot_and_a_trailing_slash_inside_a_grant_work() {
    let s = Scene::new();
    s.file("data/file.txt", "top\n");
    s.file("data/sub/inner.txt", "inner\n");
    let m = s.manifest(&grant("data", "/data", "read"));
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &m, guest, &["paths", "/data"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        for line in [
            "read-dotdot: ok top",
            "read-dot: ok inner",
            "read-dotdot-twice: ok inner",
            "read-trailing-slash: err NotADirectory",
            "stat-trailing-slash: ok dir",
            "stat-dotdot: ok dir",
            "stat-dot: ok dir",
            "stat-file-dotdot: ok file",
            "ls-trailing-slash: ok 1",
            "ls-dotdot: ok 2",
            "ls-dot: ok 2",
            "open-dir-dotdot: ok ",
            // Out of the grant: refused by the sandbox, an error for the guest.
            "read-escape: err PermissionDenied",
        ] {
            assert!(has_line(&r, line), "{kind}: {line:?} missing: {r:#?}");
        }
    }
    // Not vacuous: the profile of this manifest has the syscall `..` needs, with its reason,
    // and a run without file grants does not.
    let rows = shown(&m, "faccessat2");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("file-read") && rows[0].contains("`..`"),
        "{rows:?}"
    );
    assert!(shown(&s.manifest(""), "faccessat2").is_empty());
}

#[test]
fn every_mutating_file_operation_in_a_read_write_grant_works() {
    let s = Scene::new();
    s.mkdir("rw");
    let m = s.manifest(&grant("rw", "/rw", "read-write"));
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &m, guest, &["mutate", "/rw"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        for step in [
            "mkdir",
            "rename-dotdot",
            "hard-link",
            "symlink",
            "read-through-symlink",
            "truncate",
            "set-times",
            "touch-dir",
            "touch-symlink",
            "sync",
            "remove-tree",
        ] {
            assert!(
                has_line(&r, &format!("{step}: ok")),
                "{kind}: {step}: {r:#?}"
            );
        }
        assert!(!s.path("rw/m").exists(), "{kind}: the tree was removed");
    }
}

#[test]
fn the_rarer_file_calls_work() {
    let s = Scene::new();
    s.mkdir("rw");
    let m = s.manifest(&grant("rw", "/rw", "read-write"));
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &m, guest, &["misc", "/rw/misc.bin"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        for step in [
            "advise",
            "set-flags",
            "append-write",
            "seek",
            "tell",
            "set-size",
            "sleep",
            "yield",
            "metadata",
        ] {
            assert!(
                has_line(&r, &format!("{step}: ok")),
                "{kind}: {step}: {r:#?}"
            );
        }
        let len = std::fs::metadata(s.path("rw/misc.bin")).unwrap().len();
        assert_eq!(len, 1 << 20, "{kind}");
    }
}

#[test]
fn an_inherited_stdin_is_read_to_its_end() {
    let s = Scene::new();
    let input = s.path("stdin.bin");
    std::fs::write(&input, vec![b'i'; 16 * 1024 * 1024]).unwrap();
    let m = s.manifest("[stdio]\nstdin = \"inherit\"\n");
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress_with(&s, &m, guest, &["stdin"], |c| {
            c.stdin(std::fs::File::open(&input).unwrap());
        });
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert!(has_line(&r, "stdin 16777216 bytes"), "{kind}: {r:#?}");
    }
}

// --- Memory, tables, clocks, random ----------------------------------------------------------

#[test]
fn memory_grows_to_the_limit_and_is_refused_there() {
    let s = Scene::new();
    let m = s.manifest("[limits]\nmemory = \"64MiB\"\n");
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &m, guest, &["grow"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        let mib = figure(&r, "grew ");
        assert!((50..64).contains(&mib), "{kind}: {r:#?}");
        assert!(
            r.audit
                .iter()
                .any(|l| l["event"] == "limit" && l["limit"] == "memory"),
            "{kind}: {r:#?}"
        );
    }
}

/// `table.grow` to the memory limit: wasmtime reallocates the table's storage (`mremap`).
#[test]
fn tables_grow_to_the_limit_and_are_refused_there() {
    let s = Scene::new();
    // Grows a funcref table by 1 Mi elements (8 MiB against the limit) until refused, and
    // exits with the number of growths.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (table $t 0 funcref)
        (func (export "_start")
          (local $n i32)
          (block $done
            (loop $grow
              (br_if $done (i32.eq (table.grow $t (ref.null func) (i32.const 1048576))
                                   (i32.const -1)))
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (br_if $done (i32.ge_u (local.get $n) (i32.const 100)))
              (br $grow)))
          (call $exit (local.get $n))))"#;
    let module = s.path("table.wasm");
    std::fs::write(&module, wat::parse_str(wat).unwrap()).unwrap();
    let m = s.manifest("[limits]\nmemory = \"64MiB\"\n");
    let r = stress(&s, &m, module.to_str().unwrap(), &[]);
    // 64 MiB holds 8 Mi elements, less what the module's memory-less instance uses.
    assert!((6..=8).contains(&r.code), "{r:#?}");
    assert!(
        r.audit
            .iter()
            .any(|l| l["event"] == "limit" && l["limit"] == "memory"),
        "{r:#?}"
    );
}

#[test]
fn clocks_and_their_resolution_granted_or_not() {
    let s = Scene::new();
    let granted = s.manifest("[clocks]\nwall = true\nmonotonic = true\n");
    // The clocks group comes only with a clock grant (checked before `Scene::manifest`
    // rewrites the file).
    let rows = shown(&granted, "clock_getres");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("clocks") && rows[0].contains("resolution"));
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &granted, guest, &["clocks"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        // The host's clocks: a current time, a resolution of at most a millisecond.
        assert!(figure(&r, "wall=") > 1_700_000_000, "{kind}: {r:#?}");
        let line = r.stdout.lines().next().unwrap();
        let res = |key: &str| -> u64 {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(key))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(res("wall_res_ns=") <= 1_000_000, "{kind}: {line}");
        assert!(res("mono_res_ns=") <= 1_000_000, "{kind}: {line}");
    }
    let frozen = s.manifest("");
    for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
        let r = stress(&s, &frozen, guest, &["clocks"]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert!(
            has_line(
                &r,
                "wall=946684800 wall_res_ns=1000000000 mono_ns=0 mono_res_ns=1000000000"
            ),
            "{kind}: {r:#?}"
        );
    }
    assert!(shown(&frozen, "clock_getres").is_empty());
}

#[test]
fn big_random_fills_granted_or_not() {
    let s = Scene::new();
    // 16 MiB through host calls takes seconds in a debug build, far more on a loaded machine:
    // a wall limit well above the default, since a run past its limit is never `exited`.
    for body in [
        "[random]\nsecure = true\n\n[limits]\nwall = \"300s\"\n",
        "[limits]\nwall = \"300s\"\n",
    ] {
        let m = s.manifest(body);
        for (kind, guest) in both(guests::STRESS_P1, guests::STRESS_P2) {
            let r = stress(&s, &m, guest, &["random", "16"]);
            assert_eq!(r.code, 0, "{kind}: {r:#?}");
            assert!(
                r.stdout.starts_with("random 16777216 bytes"),
                "{kind}: {r:#?}"
            );
            assert!(figure(&r, "random 16777216 bytes nonzero ") > 16_000_000);
        }
    }
}

// --- Components: handles, HTTP, TCP ----------------------------------------------------------

#[test]
fn tens_of_thousands_of_handles_are_not_killed() {
    let s = Scene::new();
    let m = s.manifest("");
    let n = MANY_HANDLES.to_string();
    let r = stress(&s, &m, guests::STRESS_P2, &["handles", &n]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        has_line(
            &r,
            &format!("fields {n} pollables {n} ready {n} streams {n}")
        ),
        "{r:#?}"
    );
}

fn http_manifest(s: &Scene, server: &Loopback) -> std::path::PathBuf {
    s.manifest(&format!(
        "[[http]]\nurl = \"http://{}/\"\nmethods = [\"GET\", \"POST\"]\n\
         [limits]\negress = \"32MiB\"\nmemory = \"256MiB\"\n",
        server.addr
    ))
}

#[test]
fn a_big_http_response_is_received() {
    let s = Scene::new();
    let server = Loopback::http();
    let m = http_manifest(&s, &server);
    let url = format!("http://{}/big", server.addr);
    let r = stress(&s, &m, guests::STRESS_P2, &["http-get", &url]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        has_line(&r, &format!("status 200 bytes {BIG_RESPONSE}")),
        "{r:#?}"
    );
    // Not vacuous: the profile has what growing the response's buffers needs, with its reason.
    let rows = shown(&m, "mremap");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("HTTP bodies") && rows[0].contains("MREMAP_MAYMOVE"),
        "{rows:?}"
    );
}

#[test]
fn a_big_http_request_body_is_sent() {
    let s = Scene::new();
    let server = Loopback::http();
    let m = http_manifest(&s, &server);
    let url = format!("http://{}/upload", server.addr);
    let mib = BIG_BODY_MIB.to_string();
    let r = stress(&s, &m, guests::STRESS_P2, &["http-post", &url, &mib]);
    assert_eq!(r.code, 0, "{r:#?}");
    let bytes = BIG_BODY_MIB * 1024 * 1024;
    assert!(has_line(&r, &format!("status 200 body {bytes}")), "{r:#?}");
}

#[test]
fn many_http_requests_in_a_row() {
    let s = Scene::new();
    let server = Loopback::http();
    let m = http_manifest(&s, &server);
    let url = format!("http://{}/small", server.addr);
    let r = stress(&s, &m, guests::STRESS_P2, &["http-many", &url, "60"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(has_line(&r, "ok 60 of 60"), "{r:#?}");
}

#[test]
fn a_raw_tcp_echo_under_network() {
    let s = Scene::new();
    let server = Loopback::echo();
    let m = s.manifest(&format!("[network]\nconnect = [\"{}\"]\n", server.addr));
    let r = stress(
        &s,
        &m,
        guests::STRESS_P2,
        &["tcp", &server.addr.to_string(), "2048"],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(has_line(&r, "sent 2097152 received 2097152"), "{r:#?}");
}

/// The wall-time watchdog ends a run stuck in a host call (a server that never answers) from
/// its own thread, under the lockdown: exit 124, not 159.
#[test]
fn a_request_stuck_past_the_wall_limit_ends_as_a_wall_limit() {
    let s = Scene::new();
    let server = Loopback::http();
    let m = s.manifest(&format!(
        "[[http]]\nurl = \"http://{}/\"\n[limits]\nwall = \"1s\"\n",
        server.addr
    ));
    let url = format!("http://{}/slow", server.addr);
    let r = stress(&s, &m, guests::STRESS_P2, &["http-get", &url]);
    assert_eq!(r.code, 124, "{r:#?}");
}

// --- Control: the filter is on in these configurations -----------------------------------------

#[cfg(feature = "test-escape")]
#[test]
fn an_escape_still_dies_with_159_under_the_stress_manifests() {
    let s = Scene::new();
    s.file("data/file.txt", "x");
    s.mkdir("rw");
    // A core module that makes the host exec a program (`warden_test::escape(0)`).
    let wat = r#"(module
        (import "warden_test" "escape" (func $escape (param i32) (result i32)))
        (func (export "_start") (drop (call $escape (i32.const 0)))))"#;
    let module = s.path("escape.wasm");
    std::fs::write(&module, wat::parse_str(wat).unwrap()).unwrap();
    let marker = s.path("escaped");
    for body in [
        grant("data", "/data", "read"),
        format!(
            "{}[limits]\nmemory = \"256MiB\"\n",
            grant("rw", "/rw", "read-write")
        ),
        "[clocks]\nwall = true\nmonotonic = true\n[random]\nsecure = true\n".to_string(),
        "[stdio]\nstdin = \"inherit\"\n".to_string(),
    ] {
        let m = s.manifest(&body);
        let r = s.run_with(Some(&m), module.to_str().unwrap(), &[], |c| {
            c.env("WARDEN_TEST_ESCAPE_MARKER", &marker);
        });
        assert_eq!(r.signal, Some(SIGSYS), "{body}: {r:#?}");
        assert!(!marker.exists(), "{body}: the exec went through");
    }
}

// --- Loopback servers ------------------------------------------------------------------------

/// How long a connection may sit idle before its thread gives up on it.
const IDLE: Duration = Duration::from_secs(10);
/// How long `GET /slow` waits: well past the wall limit of the test that uses it.
const SLOW: Duration = Duration::from_secs(8);

/// A loopback server for these tests, on a port the system picks; dropping it stops it.
///
/// `http`: HTTP/1.1, one request per connection (`Connection: close`): `GET /big` answers
/// [`BIG_RESPONSE`] bytes, `POST` answers the number of body bytes it read (by
/// `Content-Length`), `GET /slow` waits [`SLOW`] before answering, anything else `ok`. `echo`: writes back what it reads until the client
/// closes its write half.
struct Loopback {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Loopback {
    fn http() -> Loopback {
        Loopback::start(serve_http)
    }

    fn echo() -> Loopback {
        Loopback::start(|mut c: TcpStream| {
            let mut r = c.try_clone().unwrap();
            let _ = std::io::copy(&mut r, &mut c);
        })
    }

    fn start(handle: fn(TcpStream)) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(IDLE)).unwrap();
                        std::thread::spawn(move || handle(c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Loopback {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_http(c: TcpStream) {
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut target = request_line.split_whitespace();
    let (method, path) = (target.next().unwrap_or(""), target.next().unwrap_or(""));
    let body = if method == "POST" {
        let read = std::io::copy(
            &mut reader.by_ref().take(length as u64),
            &mut std::io::sink(),
        )
        .unwrap_or(0);
        read.to_string().into_bytes()
    } else if path == "/slow" {
        std::thread::sleep(SLOW);
        b"late".to_vec()
    } else if path == "/big" {
        (0..BIG_RESPONSE).map(|i| b'a' + (i % 26) as u8).collect()
    } else {
        b"ok".to_vec()
    };
    let mut c = c;
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(&body);
    let _ = c.flush();
}
