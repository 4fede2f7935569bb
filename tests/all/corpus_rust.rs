//! Third-party Rust: `guests/corpus-rust` reads files the way a connector author writes it, with
//! the crates they would use — std's `BufReader` over a large file, serde_json on a config,
//! and (components) the `wasip2` crate's wasi:filesystem streams, waiting on each stream's
//! pollable with wasi:io/poll before reading, as async file readers do. Built for
//! wasm32-wasip1 and wasm32-wasip2 by the guests' build like every other guest; each case runs
//! under the real `warden run` with the default `--seccomp enforce`, and has a control that
//! flips it (no grant, a read grant where a write is tried).

use crate::corpus_c::{files, fnv1a64, fs_denials, locked_down, noise};
use crate::guests;
use crate::util::{Outcome, Scene, both};
use std::path::Path;

fn run(s: &Scene, m: Option<&Path>, kind: &str, module: &str, args: &[&str]) -> Outcome {
    locked_down(&format!("corpus-rust ({kind})"), s.run(m, module, args))
}

/// About 5 MB of CSV lines.
fn records() -> String {
    (0..180_000)
        .map(|i| {
            format!(
                "{i},customer-{:05},{}.{:02}\n",
                i % 977,
                i * 7 % 1000,
                i % 100
            )
        })
        .collect()
}

#[test]
fn a_buffered_reader_reads_a_large_file() {
    let s = Scene::new();
    let text = records();
    s.file("data/records.csv", &text);
    let want = format!(
        "{} lines, {} bytes, fnv1a64 {:016x}\n",
        text.lines().count(),
        text.len(),
        fnv1a64(text.as_bytes())
    );
    assert!(text.len() > 4_000_000);
    let m = files(&s, &[("data", "/data", "read")]);
    for (kind, module) in both(guests::CORPUS_RUST_P1, guests::CORPUS_RUST_P2) {
        let r = run(
            &s,
            Some(&m),
            kind,
            module,
            &["bufread", "/data/records.csv"],
        );
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, want, "{kind}");

        // Control: without the grant std's File::open fails; nothing is read.
        let r = run(&s, None, kind, module, &["bufread", "/data/records.csv"]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "", "{kind}");
        assert_eq!(
            r.stderr, "corpus-rust: open /data/records.csv: NotFound\n",
            "{kind}"
        );
    }
}

#[test]
fn serde_json_parses_a_granted_config_and_names_the_place_of_an_error() {
    let s = Scene::new();
    s.file(
        "config/connector.json",
        r#"{
  "name": "payouts",
  "retries": 3,
  "endpoints": [
    {"url": "https://a.example/v1", "weight": 0.25, "tags": ["eu", "primary"]},
    {"url": "https://b.example/v1", "weight": 1.75}
  ]
}
"#,
    );
    s.file(
        "config/broken.json",
        "{\n  \"name\": \"payouts\",\n  \"endpoints\": [{\"url\": 443}]\n}\n",
    );
    let m = files(&s, &[("config", "/config", "read")]);
    for (kind, module) in both(guests::CORPUS_RUST_P1, guests::CORPUS_RUST_P2) {
        let r = run(
            &s,
            Some(&m),
            kind,
            module,
            &["json", "/config/connector.json"],
        );
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(
            r.stdout,
            "payouts: 2 endpoints, retries 3, weights 2\n\
             https://a.example/v1 0.25 [eu,primary]\nhttps://b.example/v1 1.75 []\n",
            "{kind}"
        );

        // Bad input: a clear error naming line and column, not a trap.
        let r = run(&s, Some(&m), kind, module, &["json", "/config/broken.json"]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        assert_eq!(
            r.stderr,
            "corpus-rust: parse /config/broken.json: invalid type: integer `443`, expected a \
             string at line 3 column 28\n",
            "{kind}"
        );

        // Control: no grant, no config.
        let r = run(&s, None, kind, module, &["json", "/config/connector.json"]);
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        assert_eq!(
            r.stderr, "corpus-rust: open /config/connector.json: NotFound\n",
            "{kind}"
        );
    }
}

/// The component reads through a wasi:filesystem input stream, polling before each read.
#[test]
fn a_stream_read_with_poll_reads_a_large_file_under_read_grants() {
    let s = Scene::new();
    let big = noise(5 * 1024 * 1024);
    std::fs::create_dir_all(s.path("data")).unwrap();
    std::fs::write(s.path("data/big.bin"), &big).unwrap();
    let want = format!(
        "{} bytes through a stream, fnv1a64 {:016x}\n",
        big.len(),
        fnv1a64(&big)
    );
    let p2 = guests::CORPUS_RUST_P2;
    for m in [
        files(&s, &[("data", "/data", "read")]),
        files(&s, &[("data/big.bin", "/data/big.bin", "read")]),
    ] {
        let r = run(&s, Some(&m), "component", p2, &["stream", "/data/big.bin"]);
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, want);
        #[cfg(feature = "test-escape")]
        crate::corpus_c::killed_with_a_lazy_pool(&s, &m, p2, &["stream", "/data/big.bin"]);
    }

    // Control: without a grant there is no preopened folder to open it under.
    let r = run(&s, None, "component", p2, &["stream", "/data/big.bin"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stderr,
        "corpus-rust: open /data/big.bin: no preopened folder holds it\n"
    );
}

#[test]
fn a_stream_copy_writes_under_a_read_write_grant_and_is_refused_under_a_read_one() {
    let s = Scene::new();
    let big = noise(3 * 1024 * 1024 + 17);
    std::fs::create_dir_all(s.path("data")).unwrap();
    std::fs::write(s.path("data/big.bin"), &big).unwrap();
    s.mkdir("out");
    let p2 = guests::CORPUS_RUST_P2;
    let args = ["stream-copy", "/data/big.bin", "/out/copy.bin"];

    let m = files(
        &s,
        &[("data", "/data", "read"), ("out", "/out", "read-write")],
    );
    let r = run(&s, Some(&m), "component", p2, &args);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, format!("copied {} bytes\n", big.len()));
    assert!(std::fs::read(s.path("out/copy.bin")).unwrap() == big);
    #[cfg(feature = "test-escape")]
    crate::corpus_c::killed_with_a_lazy_pool(&s, &m, p2, &args);
    std::fs::remove_file(s.path("out/copy.bin")).unwrap();

    // Control: the destination folder granted `read`: refused in the guest, audited.
    let m = files(&s, &[("data", "/data", "read"), ("out", "/out", "read")]);
    let r = run(&s, Some(&m), "component", p2, &args);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stderr, "corpus-rust: open /out/copy.bin: not-permitted\n");
    assert_eq!(
        fs_denials(&r),
        [(
            "/out/copy.bin".to_owned(),
            "open-at: not-permitted".to_owned()
        )]
    );
    assert!(!s.path("out/copy.bin").exists());
}
