//! Any audit log, as `warden check --against` and `warden learn` read it: the log parses or
//! names its bad line; the comparison and both of its reports never panic, and the text
//! report is inert (no control character but the newline, whatever the log's strings hold);
//! the manifest learn writes from any run log loads, as `warden learn` promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use warden::{Manifest, Policy};

/// BROAD: one grant of every kind a log can name.
const BROAD: &str = r#"
[identity]
name = "fuzz"
id = "warden://fuzz/audit"

[[files]]
host = "/"
guest = "/data"
access = "read"

[[files]]
host = "/tmp"
guest = "/scratch"
access = "read-write"

[env]
MODE = "x"

[stdio]
stdin = "inherit"

[clocks]
wall = true
monotonic = true

[random]
secure = true

[network]
connect = ["127.0.0.1:8080", "*.example.test:443"]

[[http]]
url = "http://127.0.0.1:8080/v1/"
methods = ["GET"]

[[http]]
url = "http://127.0.0.1:8080/v1/"
methods = ["POST"]

[secrets.token]
from = "env:WARDEN_FUZZ_TOKEN"
inject = { header = "Authorization", format = "Bearer {secret}", url = "http://127.0.0.1:8080/v1/" }
reveal = true
"#;

fn broad() -> &'static Policy {
    static BROAD_POLICY: OnceLock<Policy> = OnceLock::new();
    BROAD_POLICY.get_or_init(|| {
        let m = Manifest::from_str_at(BROAD, Path::new("broad.toml"), Path::new("/"))
            .expect("the fuzz target's BROAD loads");
        Policy::from_manifest(m)
    })
}

fuzz_target!(|data: &[u8]| {
    let path = PathBuf::from("audit.jsonl");
    let policy = broad();
    if let Ok(entries) = warden_cli::usage::parse_log(data, &path) {
        if let Ok(usage) = warden_cli::usage::compare(policy, &entries, std::slice::from_ref(&path)) {
            let text = usage.render_text(1);
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "a control character reached the text report: {text:?}"
            );
            let _ = usage.to_json().to_string();
        }
    }
    if let Ok(log) = warden_cli::learn::run_log(data, &path) {
        let mut input = warden_cli::learn::Input {
            broad: policy,
            broad_path: Path::new("broad.toml"),
            log: &log,
            date: "2026-12-07",
            module: None,
            earlier: None,
            single_files: true,
        };
        let out = Path::new("/tmp/LEARNED.toml");
        let mut text = warden_cli::learn::learn(&input);
        if Manifest::from_str_at(&text, out, Path::new("/tmp")).is_err() {
            input.single_files = false;
            text = warden_cli::learn::learn(&input);
        }
        if let Err(e) = Manifest::from_str_at(&text, out, Path::new("/tmp")) {
            panic!("LEARNED does not load: {e}\n{text}");
        }
    }
});
