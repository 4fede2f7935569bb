//! Guests written in Python with componentize-py and the Python SDK (sdk/python), built by
//! `scripts/foreign.d/20-python.sh` into `target/foreign/python/` (scripts/test runs it
//! first).
//!
//! - componentize-py reads the package `warden wit` writes, every world of it;
//! - the agent tool in Python (guests/python/agent-tool-py, examples/agent-tool-py) does its
//!   job against a loopback server under its manifest with the default `--seccomp enforce`:
//!   the same summary as its Rust twin, delivered with the token warden injects and the tool
//!   never sees; every `--try-…` attempt is refused and audited;
//! - `warden learn` on it yields a manifest no broader than the hand-written one, under which
//!   it still works and everything is still refused.
//! - the SDK's own host-side tests (sdk/python/tests) pass on the build machine's CPython.
//!
//! Where the Python build is missing, the tests say so loudly and fail under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::connectors::{example, run};
use crate::guests;
use crate::learn_connectors::{Case, learn_and_compare};
use crate::server::Server;
use crate::util::{Outcome, Scene, finish, warden};
use crate::wit::write_package;

/// The token the tests' manifest takes from warden's environment.
const ORCHESTRATOR_TOKEN: &str = "orch-token-Vb7Qe2LmX9";

/// `target/foreign/python/REL` (CARGO_TARGET_DIR respected), or `None` after saying loudly
/// that it is missing; a failure under `CI=true`.
fn foreign_python(rel: &str) -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder");
    let path = target.join("foreign/python").join(rel);
    if path.exists() {
        return Some(path);
    }
    eprintln!(
        "\n!!!!! Python guest tests NOT RUN: {} is missing. `scripts/foreign` builds it \
         (componentize-py from PyPI and a python3 of 3.11 or newer). !!!!!\n",
        path.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the Python guest tests: {} is missing",
        path.display()
    );
    None
}

/// The agent tool's component, compiled into the suite's shared cache once: a component
/// this size takes seconds of CPU to compile, and the tests here would otherwise each compile
/// it at the same time. The warm-up run has no manifest and fails at once (no `RESULTS_URL`);
/// its compiled code stays in the cache.
fn agent_tool_py() -> Option<String> {
    static WARM: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let path = foreign_python("agent-tool-py.wasm")?;
    WARM.get_or_init(|| {
        let mut cmd = warden();
        cmd.arg("run").arg(&path);
        let r = finish(cmd, None);
        assert_eq!(r.code, 1, "the warm-up run: {r:#?}");
    });
    Some(path.to_string_lossy().into_owned())
}

/// What componentize-py says about the package in `dir` and `world`.
fn componentize_py_bindings(cpy: &Path, dir: &Path, world: &str, out: &Path) -> (bool, String) {
    let o = Command::new(cpy)
        .arg("-d")
        .arg(dir)
        .args(["-w", world, "bindings"])
        .arg(out)
        .output()
        .expect("run componentize-py");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn componentize_py_reads_every_world_of_the_written_package() {
    let Some(cpy) = foreign_python("venv/bin/componentize-py") else {
        return;
    };
    let s = Scene::new();
    let dir = write_package(&s, "wit");
    for (world, has_secrets, export) in [
        ("connector", true, "run.py"),
        ("connector-portable", false, "run.py"),
        ("handler", true, "incoming_handler.py"),
        ("handler-portable", false, "incoming_handler.py"),
    ] {
        let out = s.path(&format!("bindings-{world}"));
        let (ok, stderr) = componentize_py_bindings(&cpy, &dir, world, &out);
        assert!(ok, "{world}: {stderr}");
        let imports = out.join("wit_world/imports");
        assert_eq!(
            imports.join("secrets.py").exists(),
            has_secrets,
            "{world}: warden:host/secrets"
        );
        assert!(imports.join("outgoing_handler.py").exists(), "{world}");
        assert!(
            out.join("wit_world/exports").join(export).exists(),
            "{world}"
        );
    }
    // Control: a world the package does not have is refused.
    let (ok, stderr) = componentize_py_bindings(&cpy, &dir, "no-such-world", &s.path("x"));
    assert!(!ok, "{stderr}");
}

#[test]
fn python_sdk_host_tests_pass() {
    let (Some(cpy), Some(python)) = (
        foreign_python("venv/bin/componentize-py"),
        foreign_python("venv/bin/python"),
    ) else {
        return;
    };
    // The SDK's pure parts on the build machine's CPython, against real generated bindings.
    let s = Scene::new();
    let bindings = s.path("bindings");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (ok, stderr) = componentize_py_bindings(&cpy, &repo.join("wit"), "connector", &bindings);
    assert!(ok, "{stderr}");
    let sdk = repo.join("sdk/python");
    let o = Command::new(python)
        .args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(sdk.join("tests"))
        .env(
            "PYTHONPATH",
            format!("{}:{}", bindings.display(), sdk.join("src").display()),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    let report = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{report}");
    let ran: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("Ran ")?.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!(ran >= 5, "fewer tests than written ran: {report}");
}

/// The audit log's `deny` decisions as `capability target` lines.
fn denials(r: &Outcome) -> Vec<String> {
    r.audit
        .iter()
        .filter(|d| d["event"] == "decision" && d["decision"] == "deny")
        .map(|d| {
            format!(
                "{} {}",
                d["capability"].as_str().unwrap_or(""),
                d["target"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn assert_never_shown(r: &Outcome) {
    let audit: String = r.audit.iter().map(Value::to_string).collect();
    for (what, text) in [
        ("stdout", &r.stdout),
        ("stderr", &r.stderr),
        ("audit", &audit),
    ] {
        assert!(
            !text.contains(ORCHESTRATOR_TOKEN),
            "the token in {what}: {r:#?}"
        );
    }
}

#[test]
fn python_agent_tool_summarises_like_its_rust_twin_and_delivers_with_the_injected_token() {
    let Some(module) = agent_tool_py() else {
        return;
    };
    let server = Server::start();
    let (s, m) = example("agent-tool-py", &server);
    let env = [("ORCHESTRATOR_TOKEN", ORCHESTRATOR_TOKEN)];
    let r = run(&s, &m, &module, &[], &env);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("result delivered: 200"), "{r:#?}");
    assert_never_shown(&r);
    assert!(denials(&r).is_empty(), "{r:#?}");

    // The Rust twin on the same workspace prints the same summary.
    let twin_server = Server::start();
    let (twin_scene, twin_manifest) = example("agent-tool", &twin_server);
    let twin = run(&twin_scene, &twin_manifest, guests::AGENT_TOOL_P2, &[], &[]);
    assert_eq!(twin.code, 0, "{twin:#?}");
    let summary = |out: &str| out.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_eq!(summary(&r.stdout), summary(&twin.stdout));
    assert!(
        r.stdout
            .starts_with("workspace /workspace: 2 files (2 text, 0 binary), "),
        "{r:#?}"
    );

    // The API got the summary, with the token warden added.
    let got = server.requests();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].path, "/agent/results");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {ORCHESTRATOR_TOKEN}").as_str())
    );
    assert!(
        got[0].header("warden-secret").is_none(),
        "the name left warden"
    );
    let result: Value = serde_json::from_str(&got[0].text()).unwrap();
    assert_eq!(result["tool"], "summarise-workspace");
    assert!(
        r.stdout.starts_with(result["summary"].as_str().unwrap()),
        "{result}"
    );
    assert!(
        r.audit.iter().any(|d| d["capability"] == "http"
            && d["decision"] == "allow"
            && d["target"] == format!("POST {}", server.url("/agent/results"))),
        "{r:#?}"
    );

    // Control: without the secret's grant, the same request names a secret the manifest does
    // not grant; warden refuses it, and the API receives nothing.
    let text = std::fs::read_to_string(&m).unwrap();
    let cut = text.find("[secrets.orchestrator]").unwrap();
    let end = text[cut..].find("\n\n").map_or(text.len(), |i| cut + i);
    let bare = s.file(
        "bare.warden.toml",
        &format!("{}{}", &text[..cut], &text[end..]),
    );
    let r = run(&s, &bare, &module, &[], &env);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("refused by warden's policy"), "{r:#?}");
    assert_eq!(denials(&r), ["secret orchestrator"], "{r:#?}");
    assert_eq!(
        server.requests().len(),
        1,
        "a request got out without the secret"
    );
}

#[test]
fn python_agent_tool_cannot_write_reach_out_leak_or_read_credentials() {
    let Some(module) = agent_tool_py() else {
        return;
    };
    let server = Server::start();
    let (s, m) = example("agent-tool-py", &server);
    let readme = std::fs::read_to_string(s.path("workspace/README.md")).unwrap();
    let env = [("ORCHESTRATOR_TOKEN", ORCHESTRATOR_TOKEN)];
    let tries = ["--try-write", "--try-undeclared-http", "--try-credentials"];
    let r = run(&s, &m, &module, &tries, &env);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!r.stdout.contains("ALLOWED"), "{r:#?}");
    let admin = server.url("/admin/users");
    let outside = "https://llm-proxy.example/v1/upload";
    let refused = [
        "create /workspace/NOTES.md: ".to_owned(),
        "overwrite /workspace/README.md: ".to_owned(),
        "delete /workspace/README.md: ".to_owned(),
        "create a folder in /workspace: ".to_owned(),
        format!("GET {admin}: {admin}: refused by warden's policy"),
        format!("POST {outside}: {outside}: refused by warden's policy"),
        format!("POST {outside} with the orchestrator token: {outside}: refused"),
        "read /root/.aws/credentials: No such file".to_owned(),
        "read /root/.ssh/id_rsa: No such file".to_owned(),
        "read /etc/shadow: No such file".to_owned(),
        "read /etc/passwd: No such file".to_owned(),
        "read /workspace/../etc/passwd: ".to_owned(),
        "read /proc/self/environ: No such file".to_owned(),
        "reveal the orchestrator token: secret 'orchestrator': granted for injection only"
            .to_owned(),
    ];
    for what in &refused {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(&format!("refused: {what}"))),
            "{what:?} not refused: {r:#?}"
        );
    }
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("refused: "))
            .count(),
        refused.len(),
        "{r:#?}"
    );
    // Each refusal warden made is in the audit log (paths outside every grant do not exist
    // for the guest: nothing was refused there, so nothing is audited).
    let mut got = denials(&r);
    got.sort();
    let mut want = vec![
        "fs /workspace/NOTES.md".to_owned(),
        "fs /workspace/README.md".to_owned(),
        "fs /workspace/README.md".to_owned(),
        "fs /workspace/.agent".to_owned(),
        "fs /workspace/../etc/passwd".to_owned(),
        format!("http GET {admin}"),
        format!("http POST {outside}"),
        "secret orchestrator".to_owned(),
        "secret orchestrator".to_owned(),
    ];
    want.sort();
    assert_eq!(got, want, "{r:#?}");
    assert!(
        r.audit.iter().any(|d| d["capability"] == "secret"
            && d["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("exfiltration attempt")),
        "{r:#?}"
    );
    assert_never_shown(&r);
    assert_eq!(
        std::fs::read_to_string(s.path("workspace/README.md")).unwrap(),
        readme
    );
    assert!(!s.path("workspace/NOTES.md").exists());
    assert!(!s.path("workspace/.agent").exists());
    // Only the job's own delivery reached the API.
    let paths: Vec<String> = server.requests().iter().map(|q| q.path.clone()).collect();
    assert_eq!(paths, ["/agent/results"]);

    // Control: with the workspace granted read-write, the same attempt to write gets through
    // and the tool says so (exit 2, through `exit-with-code`).
    let text = std::fs::read_to_string(&m).unwrap();
    let rw = s.file(
        "rw.warden.toml",
        &text.replacen("access = \"read\"", "access = \"read-write\"", 1),
    );
    let r = run(&s, &rw, &module, &["--try-write"], &env);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.stdout
            .contains("ALLOWED: create /workspace/NOTES.md: it succeeded"),
        "{r:#?}"
    );
    // (It deleted NOTES.md again: the first file it found to overwrite and delete.)
    assert!(s.path("workspace/.agent").is_dir(), "{r:#?}");
}

#[test]
fn python_agent_tool_learned_is_no_broader_than_its_hand_written_manifest() {
    let Some(module) = agent_tool_py() else {
        return;
    };
    // learn_and_compare wants a &'static str: the path lives for the whole test binary.
    let module: &'static str = Box::leak(module.into_boxed_str());
    learn_and_compare(&Case {
        name: "agent-tool-py",
        module,
        env: &[("ORCHESTRATOR_TOKEN", ORCHESTRATOR_TOKEN)],
        job: "result delivered: 200",
        tries: &["--try-write", "--try-undeclared-http", "--try-credentials"],
    });
}
