//! The Python corpus: `guests/python/corpus-py`, a componentize-py component using Python's
//! standard library only, built by `scripts/foreign.d/20-python.sh` into
//! `target/foreign/python/corpus-py.wasm` and run under the real `warden run` with the default
//! `--seccomp enforce`: text, binary and 5 MB files, listing and walking, a read-only folder,
//! a read-only single file, read-write changes and copy-back, env, stdin, clocks and random.
//! Each case has a control that flips it (no grant, a narrower one, or the lazy blocking pool
//! that killed this kind of guest before). CPython reads files through wasi-libc's preview 2
//! streams, the path that was killed with SIGSYS under read-only grants.

#[cfg(feature = "test-escape")]
use crate::corpus_c::killed_with_a_lazy_pool;
use crate::corpus_c::{files, locked_down, noise};
use crate::util::{Outcome, Scene};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The component, compiled into the suite's shared cache once (a CPython component takes
/// seconds of CPU to compile; the cases would otherwise each compile it at the same time).
fn module() -> String {
    static WARM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    WARM.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
        let path: PathBuf = target.join("foreign/python/corpus-py.wasm");
        assert!(
            path.is_file(),
            "\n!!!!! the Python corpus {} is missing: run scripts/foreign (its step \
             scripts/foreign.d/20-python.sh installs componentize-py and builds \
             guests/python/corpus-py) !!!!!\n",
            path.display()
        );
        let path = path.to_str().expect("a UTF-8 path").to_owned();
        let s = Scene::new();
        let _ = s.run(None, &path, &["env", "X"]);
        path
    })
    .clone()
}

fn run(s: &Scene, m: Option<&Path>, args: &[&str]) -> Outcome {
    run_with(s, m, args, |_| {})
}

fn run_with(
    s: &Scene,
    m: Option<&Path>,
    args: &[&str],
    tweak: impl FnOnce(&mut std::process::Command),
) -> Outcome {
    locked_down("corpus-py", s.run_with(m, &module(), args, tweak))
}

#[test]
fn reads_text_binary_and_large_files_only_under_a_read_grant() {
    let s = Scene::new();
    s.file("data/notes.txt", "granted words\nsecond line\n");
    let binary = noise(4096);
    std::fs::write(s.path("data/blob.bin"), &binary).unwrap();
    let large = noise(5 << 20);
    std::fs::write(s.path("data/large.bin"), &large).unwrap();
    let m = files(&s, &[("data", "/data", "read")]);

    let r = run(&s, Some(&m), &["cat", "/data/notes.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "granted words\nsecond line\n");
    for (name, bytes) in [("blob.bin", &binary), ("large.bin", &large)] {
        let r = run(&s, Some(&m), &["sha", &format!("/data/{name}")]);
        assert_eq!(r.code, 0, "{name}: {r:#?}");
        let want = format!("{:x} {}\n", Sha256::digest(bytes), bytes.len());
        assert_eq!(r.stdout, want, "{name}");
    }
    // Control: the blocking pool left to start threads after the lockdown kills this read
    // (a test build's switch).
    #[cfg(feature = "test-escape")]
    killed_with_a_lazy_pool(&s, &m, &module(), &["cat", "/data/notes.txt"]);
    // Control: without the grant there is nothing to read.
    let r = run(&s, None, &["cat", "/data/notes.txt"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stdout.starts_with("error: E"), "{r:#?}");
}

#[test]
fn lists_and_walks_only_what_is_granted() {
    let s = Scene::new();
    s.file("tree/a.txt", "a");
    s.file("tree/sub/b.txt", "b");
    s.file("tree/sub/deeper/c.txt", "c");
    let m = files(&s, &[("tree", "/tree", "read")]);
    let r = run(&s, Some(&m), &["ls", "/tree"]);
    assert_eq!(r.stdout, "a.txt\nsub\n", "{r:#?}");
    let r = run(&s, Some(&m), &["walk", "/tree"]);
    assert_eq!(r.stdout, "a.txt\nsub/b.txt\nsub/deeper/c.txt\n", "{r:#?}");
    // Control: granting only the subfolder shows only it.
    let m = files(&s, &[("tree/sub", "/tree/sub", "read")]);
    let r = run(&s, Some(&m), &["walk", "/tree/sub"]);
    assert_eq!(r.stdout, "b.txt\ndeeper/c.txt\n", "{r:#?}");
    let r = run(&s, Some(&m), &["cat", "/tree/a.txt"]);
    assert_eq!(r.code, 1, "{r:#?}");
}

#[test]
fn a_read_single_file_is_read_and_nothing_beside_it() {
    let s = Scene::new();
    s.file("conf/app.toml", "mode = \"fast\"\n");
    s.file("conf/secret.key", "not granted\n");
    let m = files(&s, &[("conf/app.toml", "/conf/app.toml", "read")]);
    let r = run(&s, Some(&m), &["cat", "/conf/app.toml"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "mode = \"fast\"\n");
    #[cfg(feature = "test-escape")]
    killed_with_a_lazy_pool(&s, &m, &module(), &["cat", "/conf/app.toml"]);
    // Control: its neighbour is not there, and the file cannot be written.
    let r = run(&s, Some(&m), &["cat", "/conf/secret.key"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let r = run(&s, Some(&m), &["write", "/conf/app.toml", "changed"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(s.path("conf/app.toml")).unwrap(),
        "mode = \"fast\"\n"
    );
}

#[test]
fn a_read_write_folder_takes_changes_a_read_folder_refuses() {
    let s = Scene::new();
    s.file("out/old.txt", "old\n");
    let rw = files(&s, &[("out", "/out", "read-write")]);
    let r = run(&s, Some(&rw), &["write", "/out/new.txt", "fresh"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "fresh\n"), "{r:#?}");
    let r = run(&s, Some(&rw), &["append", "/out/new.txt", "+more"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "fresh+more\n"), "{r:#?}");
    let r = run(&s, Some(&rw), &["rename", "/out/old.txt", "/out/moved.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let r = run(&s, Some(&rw), &["rm", "/out/moved.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(s.path("out/new.txt")).unwrap(),
        "fresh+more"
    );
    assert!(!s.path("out/old.txt").exists() && !s.path("out/moved.txt").exists());

    // Control: the same changes under a read grant are refused and audited.
    s.file("ro/keep.txt", "keep\n");
    let ro = files(&s, &[("ro", "/ro", "read")]);
    for args in [
        vec!["write", "/ro/new.txt", "x"],
        vec!["append", "/ro/keep.txt", "x"],
        vec!["rename", "/ro/keep.txt", "/ro/gone.txt"],
        vec!["rm", "/ro/keep.txt"],
    ] {
        let r = run(&s, Some(&ro), &args);
        assert_eq!(r.code, 1, "{args:?}: {r:#?}");
        assert!(!r.denials("fs").is_empty(), "{args:?}: audited: {r:#?}");
    }
    assert_eq!(
        std::fs::read_to_string(s.path("ro/keep.txt")).unwrap(),
        "keep\n"
    );
    assert!(!s.path("ro/new.txt").exists());
}

#[test]
fn a_read_write_single_file_is_copied_back_and_a_read_one_is_not() {
    let s = Scene::new();
    s.file("state.txt", "v1");
    let rw = files(&s, &[("state.txt", "/state.txt", "read-write")]);
    let r = run(&s, Some(&rw), &["write", "/state.txt", "v2"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "v2\n"), "{r:#?}");
    assert_eq!(std::fs::read_to_string(s.path("state.txt")).unwrap(), "v2");
    // Control: granted read, the write is refused and the file unchanged.
    let ro = files(&s, &[("state.txt", "/state.txt", "read")]);
    let r = run(&s, Some(&ro), &["write", "/state.txt", "v3"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(std::fs::read_to_string(s.path("state.txt")).unwrap(), "v2");
}

#[test]
fn env_stdin_clocks_and_random_only_when_granted() {
    let s = Scene::new();
    // env
    let m = s.manifest("[env]\nREGION = \"eu-west\"\n");
    assert_eq!(run(&s, Some(&m), &["env", "REGION"]).stdout, "eu-west\n");
    assert_eq!(run(&s, None, &["env", "REGION"]).stdout, "unset\n");
    // stdin
    let input = s.file("input.txt", "twelve bytes");
    let feed = |c: &mut std::process::Command| {
        c.stdin(std::fs::File::open(&input).unwrap());
    };
    let m = s.manifest("[stdio]\nstdin = \"inherit\"\n");
    let r = run_with(&s, Some(&m), &["stdin"], feed);
    assert_eq!(r.stdout, "stdin 12 bytes: twelve bytes\n", "{r:#?}");
    let r = run_with(&s, None, &["stdin"], feed);
    assert_eq!(r.stdout, "stdin 0 bytes: \n", "{r:#?}");
    // clocks
    let m = s.manifest("[clocks]\nwall = true\nmonotonic = true\n");
    let r = run(&s, Some(&m), &["clocks"]);
    assert!(
        r.stdout.starts_with("year 20") && !r.stdout.starts_with("year 2000"),
        "{r:#?}"
    );
    assert!(r.stdout.ends_with("monotonic moves\n"), "{r:#?}");
    let r = run(&s, None, &["clocks"]);
    assert_eq!(r.stdout, "year 2000 monotonic frozen\n", "{r:#?}");
    // random
    let m = s.manifest("[random]\nsecure = true\n");
    let a = run(&s, Some(&m), &["random"]).stdout;
    let b = run(&s, Some(&m), &["random"]).stdout;
    assert_ne!(a, b, "the host's generator");
    let a = run(&s, None, &["random"]).stdout;
    let b = run(&s, None, &["random"]).stdout;
    assert_eq!(a, b, "the seeded generator, the same every run");
}
