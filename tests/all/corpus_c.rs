//! The C corpus: small C programs (`tests/corpus/c/*.c`) compiled by the real toolchain a C
//! author uses for WASI — Debian's clang 14, lld and wasi-libc, installed and run by
//! `scripts/foreign.d/10-c.sh` into `target/foreign/c/NAME.wasm` (WASI preview 1 core
//! modules) — each run under the real `warden run` with the default `--seccomp enforce`.
//!
//! Each case checks the program's output under its grant, and has a control that flips it: the
//! same program without the grant (or with a narrower one) gets the denial a C program sees
//! (`ENOTCAPABLE` for a path outside every grant — wasi-libc answers it without asking the
//! host, so nothing is audited —, `EPERM` for a change under a read grant, audited as a `deny`
//! decision; no such variable; the frozen clock and the seeded random generator of
//! docs/manifest.md).
//!
//! The modules are built by `scripts/foreign` (which `scripts/test` runs); a missing one fails
//! the test that needs it, naming the script.

use crate::util::{Outcome, Scene};
use std::path::{Path, PathBuf};

/// The built module `tests/corpus/c/NAME.c`, under the target folder this test build uses
/// (`CARGO_TARGET_DIR` respected: the test's temporary folder is `<target>/tmp`).
fn module(name: &str) -> String {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
    let path: PathBuf = target.join("foreign/c").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "\n!!!!! the C corpus module {} is missing: run scripts/foreign (its step \
         scripts/foreign.d/10-c.sh installs clang-14, lld-14 and wasi-libc and builds \
         tests/corpus/c) !!!!!\n",
        path.display()
    );
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// Runs corpus program `name` and checks that warden ran it locked down (the default
/// `--seccomp enforce`) and was not killed by its own filter.
fn run(s: &Scene, manifest: Option<&Path>, name: &str, args: &[&str]) -> Outcome {
    run_with(s, manifest, name, args, |_| {})
}

fn run_with(
    s: &Scene,
    manifest: Option<&Path>,
    name: &str,
    args: &[&str],
    tweak: impl FnOnce(&mut std::process::Command),
) -> Outcome {
    locked_down(name, s.run_with(manifest, &module(name), args, tweak))
}

/// Checks that warden ran `what` locked down (the default `--seccomp enforce`), was not
/// killed by its own filter and did not panic; hands the outcome back.
pub(crate) fn locked_down(what: &str, r: Outcome) -> Outcome {
    assert_ne!(
        r.code, 159,
        "{what}: warden killed by its seccomp filter: {r:#?}"
    );
    assert!(!r.stderr.contains("panicked"), "{what}: {r:#?}");
    let start = r.events("start");
    assert_eq!(start.len(), 1, "{what}: one start record: {r:#?}");
    assert_eq!(start[0]["seccomp"]["mode"], "enforce", "{what}: {r:#?}");
    r
}

/// `SIGSYS`, the signal warden's seccomp filter kills with.
#[cfg(feature = "test-escape")]
const SIGSYS: i32 = 31;

/// The control of a case whose reads go through tokio's blocking pool (a core module's
/// `poll_oneoff` on a file, a component's file streams): the same run with the test build's
/// switch that leaves the pool to start its threads on demand, after the lockdown, is killed
/// by the filter. It shows that the guest does take that path, which warden serves by starting
/// the pool's threads before the lockdown.
#[cfg(feature = "test-escape")]
pub(crate) fn killed_with_a_lazy_pool(s: &Scene, m: &Path, module: &str, args: &[&str]) {
    let r = s.run_with(Some(m), module, args, |c| {
        c.env("WARDEN_TEST_LAZY_BLOCKING_POOL", "1");
    });
    assert_eq!(r.signal, Some(SIGSYS), "{module} {args:?}: {r:#?}");
}

/// A manifest granting each `(host, guest, access)`.
pub(crate) fn files(s: &Scene, grants: &[(&str, &str, &str)]) -> PathBuf {
    let body: String = grants
        .iter()
        .map(|(host, guest, access)| {
            format!("[[files]]\nhost = \"{host}\"\nguest = \"{guest}\"\naccess = \"{access}\"\n\n")
        })
        .collect();
    s.manifest(&body)
}

/// The `deny` decisions about files, as `(target, reason)`.
pub(crate) fn fs_denials(r: &Outcome) -> Vec<(String, String)> {
    r.denials("fs")
        .iter()
        .map(|d| {
            (
                d["target"].as_str().unwrap_or_default().to_owned(),
                d["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// FNV-1a, 64 bits: what `sum.c` prints.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `len` bytes of deterministic noise (xorshift64), every byte value present.
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn reads_a_text_file_only_under_its_grant() {
    let s = Scene::new();
    s.file("data/notes.txt", "line one\nline two\n");
    s.file("other/x.txt", "x");
    let m = files(&s, &[("data", "/data", "read")]);
    let r = run(&s, Some(&m), "cat", &["/data/notes.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "line one\nline two\n");

    // Control: no grant, and a grant of another folder. wasi-libc refuses a path outside
    // every preopened folder itself (this wasi-libc says ENOTCAPABLE), so the host never sees
    // the attempt and nothing is audited.
    for m in [None, Some(files(&s, &[("other", "/other", "read")]))] {
        let r = run(&s, m.as_deref(), "cat", &["/data/notes.txt"]);
        assert_eq!(r.code, 1, "{r:#?}");
        assert_eq!(r.stdout, "");
        assert_eq!(r.stderr, "cat: open /data/notes.txt: ENOTCAPABLE\n");
        assert!(fs_denials(&r).is_empty(), "{r:#?}");
    }
}

#[test]
fn reads_a_binary_file_byte_for_byte() {
    let s = Scene::new();
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend_from_slice(b"\r\n\0\0\xff end");
    std::fs::create_dir_all(s.path("data")).unwrap();
    std::fs::write(s.path("data/blob.bin"), &bytes).unwrap();
    let m = files(&s, &[("data", "/data", "read")]);
    let r = run(&s, Some(&m), "bytes", &["/data/blob.bin"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let mut want: String = bytes
        .chunks(32)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect();
    want.push_str(&format!("{} bytes\n", bytes.len()));
    assert_eq!(r.stdout, want);

    // Control: the file as it was before its last byte changed reads differently.
    *bytes.last_mut().unwrap() = b'!';
    std::fs::write(s.path("data/blob.bin"), &bytes).unwrap();
    let r = run(&s, Some(&m), "bytes", &["/data/blob.bin"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_ne!(r.stdout, want);
    assert!(r.stdout.contains("656e21\n"), "{r:#?}");

    let r = run(&s, None, "bytes", &["/data/blob.bin"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stderr, "bytes: open /data/blob.bin: ENOTCAPABLE\n");
}

#[test]
fn reads_a_five_megabyte_file_whole() {
    let s = Scene::new();
    let mut big = noise(5 * 1024 * 1024);
    std::fs::create_dir_all(s.path("data")).unwrap();
    std::fs::write(s.path("data/big.bin"), &big).unwrap();
    let line = |b: &[u8]| {
        format!(
            "read {0} bytes, lseek end {0}, fnv1a64 {1:016x}\n",
            b.len(),
            fnv1a64(b)
        )
    };
    // As a folder grant and as a single read file (staged: at most 16 MiB by default).
    for m in [
        files(&s, &[("data", "/data", "read")]),
        files(&s, &[("data/big.bin", "/data/big.bin", "read")]),
    ] {
        let r = run(&s, Some(&m), "sum", &["/data/big.bin"]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, line(&big));
    }

    // Control: one byte in the middle changed changes the sum.
    big[2_500_000] ^= 1;
    std::fs::write(s.path("data/big.bin"), &big).unwrap();
    let m = files(&s, &[("data", "/data", "read")]);
    let r = run(&s, Some(&m), "sum", &["/data/big.bin"]);
    assert_eq!(r.stdout, line(&big), "{r:#?}");
    big[2_500_000] ^= 1;
    assert_ne!(r.stdout, line(&big));
}

fn tree(s: &Scene) {
    s.file("data/a.txt", "alpha\n");
    s.file("data/b.csv", "x,y\n1,2\n");
    s.file("data/sub/c.txt", "c\n");
    s.file("data/sub/deeper/d.json", "{}\n");
    s.mkdir("data/empty");
}

#[test]
fn lists_a_folder_and_a_single_file_grant_shows_only_its_file() {
    let s = Scene::new();
    tree(&s);
    let m = files(&s, &[("data", "/data", "read")]);
    let r = run(&s, Some(&m), "ls", &["/data"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "f a.txt 6\nf b.csv 8\nd empty\nd sub\n");

    // Control: a single-file grant in the same guest folder: the guest sees that file and
    // nothing beside it, although the host folder holds more.
    let m = files(&s, &[("data/b.csv", "/data/b.csv", "read")]);
    let r = run(&s, Some(&m), "ls", &["/data"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "f b.csv 8\n");

    let r = run(&s, None, "ls", &["/data"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stderr, "ls: opendir /data: ENOTCAPABLE\n");
}

#[test]
fn walks_a_tree_and_only_the_granted_part() {
    let s = Scene::new();
    tree(&s);
    let m = files(&s, &[("data", "/data", "read")]);
    let r = run(&s, Some(&m), "walk", &["/data"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "f a.txt 6\nf b.csv 8\nd empty/\nd sub/\nf sub/c.txt 2\nd sub/deeper/\n\
         f sub/deeper/d.json 3\n"
    );

    // Control: granting the subfolder alone shows its part of the tree and nothing above it.
    let m = files(&s, &[("data/sub", "/data", "read")]);
    let r = run(&s, Some(&m), "walk", &["/data"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "f c.txt 2\nd deeper/\nf deeper/d.json 3\n");
}

/// One script of changes: create, append, rename, mkdir, rmdir, delete, overwrite. Every step
/// but `create` and `mkdir` works on something that exists.
const CHANGES: &[&str] = &[
    "create",
    "/w/new.txt",
    "hello", //
    "append",
    "/w/log.txt",
    " more", //
    "rename",
    "/w/old.txt",
    "/w/renamed.txt", //
    "mkdir",
    "/w/dir", //
    "rmdir",
    "/w/emptydir", //
    "rm",
    "/w/gone.txt", //
    "write",
    "/w/kept.txt",
    "overwritten",
];

#[test]
fn a_read_write_folder_takes_every_change_a_read_folder_refuses() {
    let s = Scene::new();
    s.file("w/old.txt", "old\n");
    s.file("w/log.txt", "log\n");
    s.file("w/gone.txt", "x");
    s.file("w/kept.txt", "kept\n");
    s.mkdir("w/emptydir");
    let read = |rel: &str| std::fs::read_to_string(s.path(rel)).unwrap();

    // A read grant: every step fails with EPERM in the guest, each is audited as a deny
    // naming the guest path, and the host folder is untouched.
    let m = files(&s, &[("w", "/w", "read")]);
    let r = run(&s, Some(&m), "mutate", CHANGES);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "mutate: create /w/new.txt: EPERM\nmutate: append /w/log.txt: EPERM\n\
         mutate: rename /w/old.txt: EPERM\nmutate: mkdir /w/dir: EPERM\n\
         mutate: rmdir /w/emptydir: EPERM\nmutate: rm /w/gone.txt: EPERM\n\
         mutate: write /w/kept.txt: EPERM\n"
    );
    assert_eq!(
        fs_denials(&r),
        [
            ("/w/new.txt", "path_open: EPERM"),
            ("/w/log.txt", "path_open: EPERM"),
            ("/w/old.txt", "path_rename: EPERM"),
            ("/w/dir", "path_create_directory: EPERM"),
            ("/w/emptydir", "path_remove_directory: EPERM"),
            ("/w/gone.txt", "path_unlink_file: EPERM"),
            ("/w/kept.txt", "path_open: EPERM"),
        ]
        .map(|(t, why)| (t.to_owned(), why.to_owned()))
    );
    assert!(!s.path("w/new.txt").exists());
    assert!(!s.path("w/renamed.txt").exists());
    assert!(!s.path("w/dir").exists());
    assert!(s.path("w/emptydir").is_dir());
    assert_eq!(
        [
            read("w/old.txt"),
            read("w/log.txt"),
            read("w/gone.txt"),
            read("w/kept.txt")
        ],
        ["old\n", "log\n", "x", "kept\n"]
    );

    // Control: the same script under a read-write grant changes the host folder.
    let m = files(&s, &[("w", "/w", "read-write")]);
    let r = run(&s, Some(&m), "mutate", CHANGES);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "ok create /w/new.txt hello\nok append /w/log.txt  more\n\
         ok rename /w/old.txt /w/renamed.txt\nok mkdir /w/dir\nok rmdir /w/emptydir\n\
         ok rm /w/gone.txt\nok write /w/kept.txt overwritten\n"
    );
    assert!(fs_denials(&r).is_empty(), "{r:#?}");
    assert_eq!(
        [
            read("w/new.txt"),
            read("w/log.txt"),
            read("w/renamed.txt"),
            read("w/kept.txt")
        ],
        ["hello", "log\n more", "old\n", "overwritten"]
    );
    assert!(!s.path("w/old.txt").exists());
    assert!(!s.path("w/gone.txt").exists());
    assert!(!s.path("w/emptydir").exists());
    assert!(s.path("w/dir").is_dir());
}

#[test]
fn a_read_single_file_is_read_and_nothing_beside_it() {
    let s = Scene::new();
    s.file("etc/app.conf", "mode=prod\n");
    s.file("etc/neighbour.conf", "not granted\n");
    let m = files(&s, &[("etc/app.conf", "/etc/app.conf", "read")]);
    let r = run(
        &s,
        Some(&m),
        "cat",
        &["/etc/app.conf", "/etc/neighbour.conf"],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "mode=prod\n");
    // The neighbour exists on the host, not in the guest's folder.
    assert_eq!(r.stderr, "cat: open /etc/neighbour.conf: ENOENT\n");

    let r = run(
        &s,
        Some(&m),
        "mutate",
        &["write", "/etc/app.conf", "mode=dev", "rm", "/etc/app.conf"],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stderr,
        "mutate: write /etc/app.conf: EPERM\nmutate: rm /etc/app.conf: EPERM\n"
    );
    assert_eq!(
        fs_denials(&r),
        [
            ("/etc/app.conf", "path_open: EPERM"),
            ("/etc/app.conf", "path_unlink_file: EPERM"),
        ]
        .map(|(t, why)| (t.to_owned(), why.to_owned()))
    );
    assert_eq!(
        std::fs::read_to_string(s.path("etc/app.conf")).unwrap(),
        "mode=prod\n"
    );
}

#[test]
fn a_read_write_single_file_is_copied_back_and_a_read_one_is_not() {
    let s = Scene::new();
    s.file("state/cursor", "count=1\n");
    let script = [
        "write",
        "/state/cursor",
        "count=2",
        "append",
        "/state/cursor",
        " (appended)",
    ];
    let m = files(&s, &[("state/cursor", "/state/cursor", "read-write")]);
    let r = run(&s, Some(&m), "mutate", &script);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "ok write /state/cursor count=2\nok append /state/cursor  (appended)\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("state/cursor")).unwrap(),
        "count=2 (appended)"
    );
    let copied: Vec<_> = r
        .events("decision")
        .into_iter()
        .filter(|d| {
            d["decision"] == "allow" && d["reason"].as_str().unwrap().contains("copied back")
        })
        .collect();
    assert_eq!(copied.len(), 1, "{r:#?}");

    // Control: the same file granted `read`: refused, audited, the host file unchanged.
    s.file("state/cursor", "count=1\n");
    let m = files(&s, &[("state/cursor", "/state/cursor", "read")]);
    let r = run(&s, Some(&m), "mutate", &script);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(fs_denials(&r).len(), 2, "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(s.path("state/cursor")).unwrap(),
        "count=1\n"
    );
}

#[test]
fn polls_a_file_under_read_grants() {
    let s = Scene::new();
    s.file("data/feed.txt", "first record\nsecond record\n");
    let want = "poll: 1 ready, POLLIN\n\
                poll_oneoff: 1 event(s), userdata 42, type fd_read, error OK\n\
                first line: first record\n";
    for m in [
        files(&s, &[("data", "/data", "read")]),
        files(&s, &[("data/feed.txt", "/data/feed.txt", "read")]),
    ] {
        let r = run(&s, Some(&m), "poll", &["/data/feed.txt"]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, want);
        #[cfg(feature = "test-escape")]
        killed_with_a_lazy_pool(&s, &m, &module("poll"), &["/data/feed.txt"]);
    }
    // Control: nothing to poll without the grant.
    let r = run(&s, None, "poll", &["/data/feed.txt"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "poll: open /data/feed.txt: ENOTCAPABLE\n");
}

#[test]
fn sees_only_declared_environment_variables() {
    let s = Scene::new();
    let m =
        s.manifest("[env]\nREGION = \"eu-west\"\nAPI_BASE = { from-host = \"CORPUS_API_BASE\" }\n");
    let names = ["REGION", "API_BASE", "CORPUS_HOST_TOKEN", "HOME"];
    let host_env = |cmd: &mut std::process::Command| {
        cmd.env("CORPUS_API_BASE", "https://api.example/v1")
            .env("CORPUS_HOST_TOKEN", "not-for-the-guest");
    };
    let r = run_with(&s, Some(&m), "env", &names, host_env);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "REGION=eu-west\nAPI_BASE=https://api.example/v1\nCORPUS_HOST_TOKEN is not set\n\
         HOME is not set\n2 variable(s)\n"
    );

    // Control: without [env] the guest's environment is empty.
    let r = run_with(&s, None, "env", &names, host_env);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "REGION is not set\nAPI_BASE is not set\nCORPUS_HOST_TOKEN is not set\n\
         HOME is not set\n0 variable(s)\n"
    );
}

#[test]
fn reads_stdin_only_when_granted() {
    let s = Scene::new();
    let input = s.file("input.txt", "first\nsecond\nthird\n");
    let feed = |cmd: &mut std::process::Command| {
        cmd.stdin(std::fs::File::open(&input).unwrap());
    };
    let m = s.manifest("[stdio]\nstdin = \"inherit\"\n");
    let r = run_with(&s, Some(&m), "stdin", &[], feed);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "19 bytes, 3 lines\nFIRST\nSECOND\nTHIRD\n");

    // Control: the same input, not granted: the guest reads end-of-file.
    let r = run_with(&s, None, "stdin", &[], feed);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "0 bytes, 0 lines\n");
}

#[test]
fn granted_clocks_tell_the_time_and_ungranted_ones_are_frozen() {
    let s = Scene::new();
    let m = s.manifest("[clocks]\nwall = true\nmonotonic = true\n");
    let r = run(&s, Some(&m), "clocks", &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:#?}");
    let wall: i64 = lines[0].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        (now - wall).abs() < 300,
        "wall {wall} vs host {now}: {r:#?}"
    );
    assert_eq!(lines[2], "monotonic over work: advanced");
    assert_eq!(
        lines[3],
        "monotonic over 20 ms sleep: advanced 20 ms or more"
    );

    // Control: ungranted, the wall clock stands at 2000-01-01 and the monotonic one at 0.
    let r = run(&s, None, "clocks", &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "wall 946684800 2000-01-01\nmonotonic start 0\nmonotonic over work: frozen\n\
         monotonic over 20 ms sleep: frozen\n"
    );
}

#[test]
fn granted_random_differs_each_run_and_ungranted_is_the_same_each_run() {
    let s = Scene::new();
    let m = s.manifest("[random]\nsecure = true\n");
    let draw = |m: Option<&Path>| {
        let r = run(&s, m, "random", &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        let hex = r.stdout.trim_end().to_owned();
        assert_eq!(hex.len(), 64, "{r:#?}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{r:#?}");
        hex
    };
    let (a, b) = (draw(Some(&m)), draw(Some(&m)));
    assert_ne!(a, b, "the host's CSPRNG gives new bytes each run");
    // Control: without the grant, the seeded generator gives the same bytes every run.
    let (c, d) = (draw(None), draw(None));
    assert_eq!(c, d);
    assert_ne!(c, a);
}

#[test]
fn passes_arguments_exactly() {
    let s = Scene::new();
    let args = ["plain", "two words", "", "ünïcödé", "--flag=1"];
    let r = run(&s, None, "args", &args);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout,
        "argc 6\nargv[0] [args.wasm]\nargv[1] [plain]\nargv[2] [two words]\nargv[3] []\n\
         argv[4] [ünïcödé]\nargv[5] [--flag=1]\n"
    );
    // Control: the manifest's `[workload] args` come first, the command line's after them.
    let m = s.manifest("[workload]\nargs = [\"--region\", \"eu\"]\n");
    let r = run(&s, Some(&m), "args", &["plain"]);
    assert_eq!(
        r.stdout,
        "argc 4\nargv[0] [args.wasm]\nargv[1] [--region]\nargv[2] [eu]\nargv[3] [plain]\n",
        "{r:#?}"
    );
}

#[test]
fn exit_codes_pass_through_and_a_trap_is_123() {
    let s = Scene::new();
    for (arg, code, guest_code) in [
        ("0", 0, 0),
        ("7", 7, 7),
        ("119", 119, 119),
        ("120", 119, 120),
    ] {
        let r = run(&s, None, "exit", &[arg]);
        assert_eq!(r.code, code, "exit {arg}: {r:#?}");
        assert_eq!(
            r.stdout,
            format!("exiting with {arg}\n"),
            "stdout flushed by exit(3)"
        );
        assert_eq!(r.exit()["outcome"], "exited");
        assert_eq!(r.exit()["guest_code"], guest_code, "{r:#?}");
    }
    let r = run(&s, None, "exit", &["trap"]);
    assert_eq!(r.code, 123, "{r:#?}");
    assert_eq!(r.stdout, "about to trap\n");
    assert_eq!(r.exit()["outcome"], "trap");
}
