//! Helpers: run the real `warden` binary as a user would and collect what it did.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `warden` binary under test.
pub fn warden() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    // One cache for the whole suite: each guest is compiled once, by whichever test is first.
    cmd.env("WARDEN_CACHE_DIR", shared_cache_dir());
    cmd.stdin(Stdio::null());
    cmd
}

pub fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("warden-test-cache")
}

/// What one `warden` process did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, or -1 when a signal ended the process.
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub audit: Vec<Value>,
}

impl Outcome {
    /// The audit records with this `event`.
    pub fn events(&self, event: &str) -> Vec<&Value> {
        self.audit.iter().filter(|r| r["event"] == event).collect()
    }

    /// The single `exit` record.
    pub fn exit(&self) -> &Value {
        let exits = self.events("exit");
        assert_eq!(
            exits.len(),
            1,
            "one exit record expected: {:#?}",
            self.audit
        );
        exits[0]
    }

    /// `deny` decisions about `capability`.
    pub fn denials(&self, capability: &str) -> Vec<&Value> {
        self.audit
            .iter()
            .filter(|r| {
                r["event"] == "decision" && r["decision"] == "deny" && r["capability"] == capability
            })
            .collect()
    }

    /// Fails unless warden's own stderr is one clean error line (no panic, no backtrace).
    pub fn assert_one_line_error(&self, fragment: &str) {
        assert_eq!(self.code, 125, "{self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {self:#?}");
        assert!(lines[0].starts_with("warden: error: "), "{self:#?}");
        assert!(lines[0].contains(fragment), "{fragment:?} not in {self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
    }
}

/// A scratch folder holding a manifest and whatever files a test grants.
pub struct Scene {
    pub dir: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Scene {
        Scene {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `contents` at `rel`, creating folders.
    pub fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        p
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// Writes `warden.toml` with an `[identity]` named `test-nhi` followed by `body`.
    pub fn manifest(&self, body: &str) -> PathBuf {
        self.file(
            "test.warden.toml",
            &format!(
                "[identity]\nname = \"test-nhi\"\nid = \"spiffe://test.example/nhi\"\n\n{body}"
            ),
        )
    }

    /// Runs `warden run --audit <file> [--manifest M] MODULE -- ARGS`.
    pub fn run(&self, manifest: Option<&Path>, module: &str, args: &[&str]) -> Outcome {
        self.run_with(manifest, module, args, |_| {})
    }

    pub fn run_with(
        &self,
        manifest: Option<&Path>,
        module: &str,
        args: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Outcome {
        let audit = self.path(&format!("audit-{}.jsonl", unique()));
        let mut cmd = warden();
        cmd.arg("run").arg("--audit").arg(&audit);
        if let Some(m) = manifest {
            cmd.arg("--manifest").arg(m);
        }
        cmd.arg(module);
        if !args.is_empty() {
            cmd.arg("--").args(args);
        }
        tweak(&mut cmd);
        finish(cmd, Some(&audit))
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Runs `cmd` to completion and reads its audit file, if any.
pub fn finish(mut cmd: Command, audit: Option<&Path>) -> Outcome {
    let out = cmd.output().expect("spawn warden");
    let audit = audit
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line {l:?}: {e}")))
        .collect();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        audit,
    }
}

/// Both builds of a guest, for tests that must hold for modules and components alike.
pub fn both(p1: &'static str, p2: &'static str) -> [(&'static str, &'static str); 2] {
    [("module", p1), ("component", p2)]
}
