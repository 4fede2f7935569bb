//! The example connectors (guests/connectors, examples/NAME) under their own manifests,
//! against a loopback server: each does its job with the secret warden injects, never sees
//! that secret, and every refused thing it tries is refused and audited.
//!
//! A test copies `examples/NAME/` into a scene, with the example's server address
//! `127.0.0.1:8787` replaced by the test server's everywhere, and runs the connector's
//! component with `--audit`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::guests;
use crate::server::{Request, Server};
use crate::util::{Outcome, Scene, finish, warden};

/// The server address the example manifests and configs are written with.
const EXAMPLE_ADDRESS: &str = "127.0.0.1:8787";

pub(crate) const STRIPE_KEY: &str = "sk_test_51WardenTestKeyZx81q";
pub(crate) const CI_UPLOAD_TOKEN: &str = "ci-upload-Qm7v2KpT9s";
pub(crate) const VENDOR_API_KEY: &str = "vendor-key-Hx4nB8rE3w";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// `examples/NAME/` copied into a new scene with the server's address in place of the
/// example's; returns the scene and its manifest.
pub(crate) fn example(name: &str, server: &Server) -> (Scene, PathBuf) {
    let s = Scene::new();
    copy_example(&examples_dir().join(name), s.dir.path(), &server.addr());
    let manifest = s.path(&format!("{name}.warden.toml"));
    assert!(
        manifest.is_file(),
        "examples/{name} has no {name}.warden.toml"
    );
    (s, manifest)
}

fn copy_example(from: &Path, to: &Path, address: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_example(&entry.path(), &target, address);
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        match String::from_utf8(bytes) {
            Ok(text) => std::fs::write(&target, text.replace(EXAMPLE_ADDRESS, address)),
            Err(e) => std::fs::write(&target, e.into_bytes()),
        }
        .unwrap();
    }
}

/// Runs `module` under the manifest with `env` added to warden's own environment.
pub(crate) fn run(
    s: &Scene,
    manifest: &Path,
    module: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Outcome {
    s.run_with(Some(manifest), module, args, |cmd| {
        for (key, value) in env {
            cmd.env(key, value);
        }
    })
}

/// The whole audit log as text.
fn audit_text(r: &Outcome) -> String {
    r.audit
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails if `secret` shows in the guest's output or in the audit log.
pub(crate) fn assert_never_shown(r: &Outcome, secret: &str) {
    assert!(!r.stdout.contains(secret), "secret on stdout: {r:#?}");
    assert!(!r.stderr.contains(secret), "secret on stderr: {r:#?}");
    assert!(
        !audit_text(r).contains(secret),
        "secret in the audit log: {r:#?}"
    );
}

/// Fails unless the guest reported `what` as refused, and reported nothing as let through.
pub(crate) fn assert_refused(r: &Outcome, what: &str) {
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("refused: ") && l.contains(what)),
        "{what:?} not reported as refused: {r:#?}"
    );
    assert!(!r.stdout.contains("ALLOWED"), "{r:#?}");
}

/// The `decision` records about `capability` with this decision and target.
fn decisions<'a>(r: &'a Outcome, capability: &str, decision: &str, target: &str) -> Vec<&'a Value> {
    r.audit
        .iter()
        .filter(|d| {
            d["event"] == "decision"
                && d["capability"] == capability
                && d["decision"] == decision
                && d["target"] == target
        })
        .collect()
}

pub(crate) fn assert_decision(r: &Outcome, capability: &str, decision: &str, target: &str) {
    assert!(
        !decisions(r, capability, decision, target).is_empty(),
        "no {capability} {decision} of {target:?} in the audit log: {:#?}",
        r.audit
    );
}

/// An HTTP refusal: audited as `http` (outside the rules) or as `secret` (the named secret's
/// binding does not cover the URL), whichever warden checks first.
fn assert_http_refused(r: &Outcome, target: &str, secret: Option<&str>) {
    let as_http = decisions(r, "http", "deny", target);
    let as_secret = secret.map_or_else(Vec::new, |name| decisions(r, "secret", "deny", name));
    assert!(
        !as_http.is_empty() || !as_secret.is_empty(),
        "no refusal of {target:?} in the audit log: {:#?}",
        r.audit
    );
}

pub(crate) fn paths(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

pub(crate) fn json(request: &Request) -> Value {
    serde_json::from_slice(&request.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", request.dump()))
}

// ---------------------------------------------------------------------------------------
// payments

#[test]
fn payments_charges_with_the_key_warden_injects() {
    let server = Server::start();
    let (s, m) = example("payments", &server);
    let r = run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &[],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout
            .contains("charge 1: 1999 eur to cus_Nv4x2Lq8: 200 {\"ok\":true,\"request\":1}\n"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("receipt: 200\n"), "{r:#?}");

    let got = server.requests();
    assert_eq!(
        paths(&got),
        ["POST /v1/charges", "POST /hooks/receipts"],
        "{got:#?}"
    );
    let charge = &got[0];
    assert_eq!(
        charge.header("authorization"),
        Some(format!("Bearer {STRIPE_KEY}").as_str()),
        "the key is injected: {}",
        charge.dump()
    );
    assert_eq!(charge.header("warden-secret"), None, "the name is stripped");
    assert_eq!(charge.header("idempotency-key"), Some("charge-1"));
    assert_eq!(charge.header("content-type"), Some("application/json"));
    let body = json(charge);
    assert_eq!(body["amount"], 1999);
    assert_eq!(body["currency"], "eur");
    assert_eq!(body["customer"], "cus_Nv4x2Lq8");
    let receipt = &got[1];
    assert_eq!(
        receipt.header("authorization"),
        None,
        "outside the binding: no key"
    );
    assert_eq!(json(receipt)["status"], 200);

    assert_decision(
        &r,
        "http",
        "allow",
        &format!("POST {}", server.url("/v1/charges")),
    );
    assert_decision(
        &r,
        "http",
        "allow",
        &format!("POST {}", server.url("/hooks/receipts")),
    );
    assert_decision(&r, "secret", "allow", "stripe");
    assert!(r.denials("http").is_empty(), "{:#?}", r.audit);
    assert!(r.denials("secret").is_empty(), "{:#?}", r.audit);
    assert_eq!(r.exit()["outcome"], "exited");
    assert_never_shown(&r, STRIPE_KEY);
}

#[test]
fn payments_cannot_write_its_config_reach_another_host_spawn_or_read_its_key() {
    let server = Server::start();
    let (s, m) = example("payments", &server);
    let config = std::fs::read_to_string(s.path("payments.toml")).unwrap();
    let r = run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &[
            "--try-write",
            "--try-other-host",
            "--try-spawn",
            "--try-reveal",
        ],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_refused(&r, "overwrite the config file: /config/payments.toml");
    assert_refused(&r, "create a file beside the config: /config/stolen.txt");
    assert_refused(
        &r,
        "send the charge to another host: https://collector.attacker.example/charges: \
         refused by warden's policy",
    );
    assert_refused(&r, "start a shell");
    assert_refused(
        &r,
        "read the stripe secret's value: secret \"stripe\": granted for injection only",
    );
    assert_refused(
        &r,
        "open a secret the manifest does not grant: secret \"aws-root\": not granted",
    );

    assert_eq!(
        std::fs::read_to_string(s.path("payments.toml")).unwrap(),
        config
    );
    assert!(!s.path("stolen.txt").exists());
    assert_eq!(
        paths(&server.requests()),
        ["POST /v1/charges", "POST /hooks/receipts"],
        "nothing else reached the server"
    );
    assert_decision(
        &r,
        "http",
        "deny",
        "POST https://collector.attacker.example/charges",
    );
    // Every open and reveal is audited: the refused reveal and the secret never granted.
    assert_decision(&r, "secret", "deny", "stripe");
    assert_decision(&r, "secret", "deny", "aws-root");
    assert_never_shown(&r, STRIPE_KEY);
}

#[test]
fn payments_cannot_send_its_key_outside_the_binding() {
    let server = Server::start();
    let (s, m) = example("payments", &server);
    let r = run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &["--try-exfil"],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_refused(
        &r,
        "send the stripe secret to the receipts webhook: http://",
    );
    assert_refused(&r, "send the stripe secret to another host");

    // The receipts URL is allowed by [[http]] but outside the key's binding: the request
    // naming the key never left, and the refusal is audited as an exfiltration attempt.
    let got = server.requests();
    assert_eq!(
        paths(&got),
        ["POST /v1/charges", "POST /hooks/receipts"],
        "{got:#?}"
    );
    assert_eq!(got[1].header("authorization"), None);
    let exfil: Vec<&Value> = decisions(&r, "secret", "deny", "stripe")
        .into_iter()
        .filter(|d| {
            d["reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("exfiltration attempt"))
        })
        .collect();
    assert!(!exfil.is_empty(), "{:#?}", r.audit);
    assert!(
        exfil
            .iter()
            .any(|d| d.to_string().contains("/hooks/receipts")),
        "the refusal names the URL: {exfil:#?}"
    );
    assert_http_refused(
        &r,
        "POST https://collector.attacker.example/charges",
        Some("stripe"),
    );
    assert_never_shown(&r, STRIPE_KEY);
}

/// payments with a stray copy of its key, granted by mistake at `/home/ops/.env`, run with
/// `--try-leak` on it.
fn leak_a_copy_of_the_key(server: &Server) -> Outcome {
    let (s, m) = example("payments", server);
    s.file(".env", &format!("STRIPE_KEY={STRIPE_KEY}\n"));
    let manifest = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        format!(
            "{manifest}\n[[files]]\nhost = \".env\"\nguest = \"/home/ops/.env\"\naccess = \"read\"\n"
        ),
    )
    .unwrap();
    run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &["--try-leak", "/home/ops/.env"],
        &[("STRIPE_KEY", STRIPE_KEY)],
    )
}

#[test]
fn payments_cannot_send_a_copy_of_its_key_found_in_a_file() {
    let server = Server::start();
    let r = leak_a_copy_of_the_key(&server);
    assert_eq!(r.code, 0, "{r:#?}");
    for how in [
        "in the body",
        "base64-encoded",
        "percent-encoded in the query",
        "in the query to another host",
    ] {
        assert_refused(&r, &format!("post value 0 from /home/ops/.env {how}: http"));
    }
    assert_eq!(
        paths(&server.requests()),
        ["POST /v1/charges", "POST /hooks/receipts"],
        "no copy left"
    );
    let exfil = decisions(&r, "secret", "deny", "stripe")
        .into_iter()
        .filter(|d| {
            d["reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("exfiltration attempt"))
        })
        .count();
    // All four copies, the one bound for a host outside every rule included: a secret sent
    // elsewhere is recorded as an exfiltration attempt before the rules are consulted.
    assert_eq!(exfil, 4, "each copy refused and audited: {:#?}", r.audit);
    assert!(
        decisions(&r, "secret", "deny", "stripe")
            .iter()
            .any(|d| d["reason"]
                .as_str()
                .is_some_and(|t| t.contains("POST https://collector.attacker.example/charges"))),
        "{:#?}",
        r.audit
    );
    // The guest read the copy itself, so only its own care keeps the value off its output;
    // the audit log is warden's to keep clean (next test).
    assert!(!r.stdout.contains(STRIPE_KEY), "{r:#?}");
}

#[test]
fn an_exfiltration_record_never_quotes_the_secret_value() {
    let server = Server::start();
    let r = leak_a_copy_of_the_key(&server);
    assert!(!audit_text(&r).contains(STRIPE_KEY), "{:#?}", r.audit);
}

#[test]
fn an_echo_server_cannot_hand_the_key_back() {
    let server = Server::echo();
    let (s, m) = example("payments", &server);
    let r = run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &[],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    // The server saw the key and sent it back in its body; warden redacted it on the way in.
    let got = server.requests();
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {STRIPE_KEY}").as_str())
    );
    assert!(
        r.stdout
            .contains("charge 1: 1999 eur to cus_Nv4x2Lq8: 200 {"),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("\"authorization\""),
        "the echo reached the guest: {r:#?}"
    );
    assert_never_shown(&r, STRIPE_KEY);
}

#[test]
fn a_missing_secret_source_stops_the_run_before_it_starts() {
    let server = Server::start();
    let (s, m) = example("payments", &server);
    let r = s.run_with(Some(&m), guests::PAYMENTS_P2, &[], |cmd| {
        cmd.env_remove("STRIPE_KEY");
    });
    r.assert_one_line_error("STRIPE_KEY");
    assert_eq!(r.stdout, "", "the guest never ran");
    assert!(server.requests().is_empty());

    let (s, m) = example("deploy-controller", &server);
    std::fs::remove_file(s.path("secrets/control-plane.token")).unwrap();
    let r = run(&s, &m, guests::DEPLOY_CONTROLLER_P2, &[], &[]);
    r.assert_one_line_error("control-plane.token");
    assert!(server.requests().is_empty());
}

#[test]
fn the_http_request_limit_stops_the_run() {
    let server = Server::start();
    let (s, m) = example("payments", &server);
    let manifest = std::fs::read_to_string(&m).unwrap();
    assert!(manifest.contains("http-requests = 20"));
    std::fs::write(
        &m,
        manifest.replace("http-requests = 20", "http-requests = 2"),
    )
    .unwrap();
    let r = run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &["--count", "5"],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 126, "{r:#?}");
    assert!(r.stdout.contains("charge 2: "), "{r:#?}");
    assert!(!r.stdout.contains("charge 3: "), "{r:#?}");
    assert_eq!(server.requests().len(), 2);
    let limits = r.events("limit");
    assert_eq!(limits.len(), 1, "{r:#?}");
    assert_eq!(limits[0]["limit"], "http-requests");
    assert_eq!(r.exit()["outcome"], "http-requests-limit");
}

// ---------------------------------------------------------------------------------------
// agent-tool

#[test]
fn agent_tool_summarises_its_workspace_and_returns_the_result() {
    let server = Server::start();
    let (s, m) = example("agent-tool", &server);
    let r = run(&s, &m, guests::AGENT_TOOL_P2, &[], &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let lines = workspace_lines(&s.path("workspace"));
    assert!(
        r.stdout.starts_with(&format!(
            "workspace /workspace: 2 files (2 text, 0 binary), {lines} lines, "
        )),
        "{r:#?}"
    );
    assert!(
        r.stdout.contains("most frequent: inventory (7), "),
        "{r:#?}"
    );
    assert!(r.stdout.contains("result delivered: 200"), "{r:#?}");

    let got = server.requests();
    assert_eq!(paths(&got), ["POST /agent/results"]);
    let result = json(&got[0]);
    assert_eq!(result["tool"], "summarise-workspace");
    assert!(
        r.stdout.starts_with(result["summary"].as_str().unwrap()),
        "the result is what it printed: {result}"
    );
    assert_decision(
        &r,
        "http",
        "allow",
        &format!("POST {}", server.url("/agent/results")),
    );
}

fn workspace_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                workspace_lines(&path)
            } else {
                std::fs::read_to_string(path).unwrap().lines().count()
            }
        })
        .sum()
}

#[test]
fn agent_tool_cannot_write_reach_out_or_read_credentials() {
    let server = Server::start();
    let (s, m) = example("agent-tool", &server);
    let readme = std::fs::read_to_string(s.path("workspace/README.md")).unwrap();
    let r = run(
        &s,
        &m,
        guests::AGENT_TOOL_P2,
        &["--try-write", "--try-undeclared-http", "--try-credentials"],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_refused(&r, "create /workspace/NOTES.md");
    assert_refused(&r, "overwrite /workspace/README.md");
    assert_refused(&r, "delete /workspace/README.md");
    assert_refused(&r, "create a folder in /workspace");
    let admin = server.url("/admin/users");
    assert_refused(
        &r,
        &format!("GET {admin}: {admin}: refused by warden's policy"),
    );
    assert_refused(&r, "POST https://llm-proxy.example/v1/upload");
    for path in [
        "/root/.aws/credentials",
        "/root/.ssh/id_rsa",
        "/etc/shadow",
        "/etc/passwd",
        "/workspace/../etc/passwd",
        "/proc/self/environ",
    ] {
        assert_refused(&r, &format!("read {path}: "));
    }
    assert!(!r.stdout.contains("root:x:0:0"), "{r:#?}");

    assert_eq!(
        std::fs::read_to_string(s.path("workspace/README.md")).unwrap(),
        readme
    );
    assert!(!s.path("workspace/NOTES.md").exists());
    assert!(!s.path("workspace/.agent").exists());
    assert_eq!(paths(&server.requests()), ["POST /agent/results"]);
    assert_decision(&r, "http", "deny", &format!("GET {admin}"));
    assert_decision(
        &r,
        "http",
        "deny",
        "POST https://llm-proxy.example/v1/upload",
    );
}

// ---------------------------------------------------------------------------------------
// ci-job

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn ci_job_unpacks_with_checksums_and_uploads_its_log_with_the_token() {
    let server = Server::start();
    let (s, m) = example("ci-job", &server);
    let r = run(
        &s,
        &m,
        guests::CI_JOB_P2,
        &[],
        &[("CI_UPLOAD_TOKEN", CI_UPLOAD_TOKEN)],
    );
    assert_eq!(r.code, 0, "{r:#?}");

    let mut expected = String::new();
    for rel in ["bin/inventory", "docs/CHANGELOG.md", "package.json"] {
        let original = std::fs::read(s.path(&format!("artifacts/{rel}"))).unwrap();
        let unpacked = std::fs::read(s.path(&format!("workspace/unpacked/{rel}")))
            .unwrap_or_else(|e| panic!("{rel} not unpacked ({e}): {r:#?}"));
        assert_eq!(unpacked, original, "{rel}");
        expected.push_str(&format!("{}  {rel}\n", sha256_hex(&original)));
    }
    assert_eq!(
        std::fs::read_to_string(s.path("workspace/SHA256SUMS")).unwrap(),
        expected
    );
    assert!(r.stdout.starts_with(&expected), "{r:#?}");
    let log = std::fs::read_to_string(s.path("workspace/build.log")).unwrap();
    assert!(log.contains("job 4711: 3 files"), "{log}");

    let got = server.requests();
    assert_eq!(paths(&got), ["POST /ci/logs/4711"]);
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Token {CI_UPLOAD_TOKEN}").as_str())
    );
    assert_eq!(got[0].text(), log, "the upload is the log");
    assert!(
        r.stdout.contains(&format!(
            "uploaded build.log to {}: 200",
            server.url("/ci/logs/4711")
        )),
        "{r:#?}"
    );
    assert_decision(&r, "secret", "allow", "ci-token");
    assert_never_shown(&r, CI_UPLOAD_TOKEN);
}

#[test]
fn ci_job_sees_none_of_the_runner_tokens_and_no_other_endpoint() {
    let server = Server::start();
    let (s, m) = example("ci-job", &server);
    let runner_env = [
        ("CI_UPLOAD_TOKEN", CI_UPLOAD_TOKEN),
        ("GITHUB_TOKEN", "ghp_RunnerTokenLeak41"),
        ("CI_TOKEN", "ci-RunnerTokenLeak42"),
        ("AWS_SECRET_ACCESS_KEY", "aws-RunnerTokenLeak43"),
    ];
    let r = run(
        &s,
        &m,
        guests::CI_JOB_P2,
        &[
            "--try-env",
            "--try-other-endpoints",
            "--try-write-artifacts",
        ],
        &runner_env,
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("environment: CI_JOB_ID, CI_LOG_URL\n"),
        "only the declared variables: {r:#?}"
    );
    for (name, value) in runner_env {
        assert_refused(&r, &format!("read ${name}: not in the environment"));
        assert_never_shown(&r, value);
    }
    let artifacts = server.url("/ci/artifacts/upload");
    let settings = server.url("/ci/settings");
    let forge = "https://forge.example/api/v4/projects/1/variables";
    assert_refused(&r, &format!("POST {artifacts}: "));
    assert_refused(&r, &format!("GET {settings}: "));
    assert_refused(&r, &format!("GET {forge}: "));
    assert_refused(&r, &format!("POST {forge} with the ci-token secret: "));
    assert_refused(&r, "add a file to /artifacts");
    assert!(!s.path("artifacts/injected.sh").exists());

    assert_eq!(paths(&server.requests()), ["POST /ci/logs/4711"]);
    assert_decision(&r, "http", "deny", &format!("POST {artifacts}"));
    assert_decision(&r, "http", "deny", &format!("GET {settings}"));
    assert_decision(&r, "http", "deny", &format!("GET {forge}"));
    assert_http_refused(&r, &format!("POST {forge}"), Some("ci-token"));
}

#[test]
fn ci_job_cannot_leave_its_log_path_with_dot_segments() {
    let server = Server::start();
    let (s, m) = example("ci-job", &server);
    let r = run(
        &s,
        &m,
        guests::CI_JOB_P2,
        &["--try-dot-segments"],
        &[("CI_UPLOAD_TOKEN", CI_UPLOAD_TOKEN)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_refused(&r, "/ci/logs/../../admin/reset");
    assert_refused(&r, "/ci/logs/%2e%2e/%2e%2e/admin/reset");
    assert_eq!(paths(&server.requests()), ["POST /ci/logs/4711"]);
    assert_never_shown(&r, CI_UPLOAD_TOKEN);
}

// ---------------------------------------------------------------------------------------
// vendor-connector

#[test]
fn vendor_connector_sends_the_orders_with_the_vendor_key() {
    let server = Server::start();
    let (s, m) = example("vendor-connector", &server);
    let r = run(
        &s,
        &m,
        guests::VENDOR_CONNECTOR_P2,
        &[],
        &[("VENDOR_API_KEY", VENDOR_API_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout
            .contains("sent 3 orders (total 288.93) to the vendor: 200\n"),
        "{r:#?}"
    );
    let got = server.requests();
    assert_eq!(paths(&got), ["POST /vendor/v2/orders"]);
    assert_eq!(got[0].header("x-api-key"), Some(VENDOR_API_KEY));
    let orders = json(&got[0])["orders"].as_array().unwrap().clone();
    assert_eq!(orders.len(), 3);
    assert_eq!(orders[0]["order_id"], "A-1001");
    assert_eq!(orders[0]["quantity"], 2);
    assert_eq!(orders[0]["unit_price_cents"], 1999);
    assert_decision(&r, "secret", "allow", "vendor-key");
    assert_never_shown(&r, VENDOR_API_KEY);
}

#[test]
fn vendor_connector_cannot_reach_cloud_metadata_other_hosts_or_files() {
    let server = Server::start();
    let (s, m) = example("vendor-connector", &server);
    let r = run(
        &s,
        &m,
        guests::VENDOR_CONNECTOR_P2,
        &["--try-metadata", "--try-other-host", "--try-outside-data"],
        &[("VENDOR_API_KEY", VENDOR_API_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        assert_refused(&r, &format!("GET {url}: {url}: refused by warden's policy"));
        assert_decision(&r, "http", "deny", &format!("GET {url}"));
    }
    let other = "https://analytics.vendor-partner.example/ingest";
    assert_refused(&r, &format!("POST the orders to {other}"));
    assert_refused(&r, &format!("POST the vendor-key secret to {other}"));
    assert_decision(&r, "http", "deny", &format!("POST {other}"));
    for path in [
        "/etc/passwd",
        "/data/../etc/passwd",
        "/config/vendor.toml",
        "/root/.ssh/id_ed25519",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        assert_refused(&r, &format!("read {path}: "));
    }
    assert!(!r.stdout.contains("root:x:0:0"), "{r:#?}");
    assert_eq!(paths(&server.requests()), ["POST /vendor/v2/orders"]);
    assert_never_shown(&r, VENDOR_API_KEY);
}

#[test]
fn the_egress_limit_stops_the_run() {
    let server = Server::start();
    let (s, m) = example("vendor-connector", &server);
    let manifest = std::fs::read_to_string(&m).unwrap();
    assert!(manifest.contains("egress = \"1MiB\""));
    std::fs::write(
        &m,
        manifest.replace("egress = \"1MiB\"", "egress = \"2KiB\""),
    )
    .unwrap();
    // Some 500 orders: about 40 KB of JSON, far over 2 KiB.
    let mut csv = String::from("order_id,sku,quantity,unit_price\n");
    for n in 0..500 {
        csv.push_str(&format!("B-{n:05},SKU-{n:04},1,9.99\n"));
    }
    std::fs::write(s.path("data/orders.csv"), csv).unwrap();
    let r = run(
        &s,
        &m,
        guests::VENDOR_CONNECTOR_P2,
        &[],
        &[("VENDOR_API_KEY", VENDOR_API_KEY)],
    );
    assert_eq!(r.code, 126, "{r:#?}");
    assert!(!r.stdout.contains("sent 500 orders"), "{r:#?}");
    assert!(
        server.requests().iter().all(|q| q.body.len() <= 2048),
        "no more than the limit left"
    );
    let limits = r.events("limit");
    assert_eq!(limits.len(), 1, "{r:#?}");
    assert_eq!(limits[0]["limit"], "egress");
    assert_eq!(r.exit()["outcome"], "egress-limit");
}

// ---------------------------------------------------------------------------------------
// deploy-controller

#[test]
fn deploy_controller_sends_the_current_credential_after_a_rotation() {
    let server = Server::start();
    let (s, m) = example("deploy-controller", &server);
    let token = s.path("secrets/control-plane.token");
    let mut shown = Vec::new();
    for value in [
        "cp-token-before-rotation-1f9a",
        "cp-token-after-rotation-7c2e",
    ] {
        std::fs::write(&token, value).unwrap();
        let r = run(&s, &m, guests::DEPLOY_CONTROLLER_P2, &[], &[]);
        assert_eq!(r.code, 0, "{value}: {r:#?}");
        assert!(
            r.stdout.contains(&format!(
                "credential control-plane: warden adds it as Authorization to {}\n",
                server.url("/v1/services/")
            )),
            "{r:#?}"
        );
        assert!(
            r.stdout
                .contains("restart of checkout at 2026.11.3 requested: 200\n"),
            "{r:#?}"
        );
        let got = server.requests();
        let last = got.last().unwrap();
        assert_eq!(last.path, "/v1/services/checkout/restart");
        assert_eq!(
            last.header("authorization"),
            Some(format!("Bearer {value}").as_str()),
            "this run's credential"
        );
        assert_eq!(json(last)["version"], "2026.11.3");
        assert_decision(&r, "secret", "allow", "control-plane");
        shown.push(r);
    }
    assert_eq!(server.requests().len(), 2);
    for r in &shown {
        assert_never_shown(r, "cp-token-before-rotation-1f9a");
        assert_never_shown(r, "cp-token-after-rotation-7c2e");
    }
}

#[test]
fn deploy_controller_stays_on_its_config_and_its_control_plane_paths() {
    let server = Server::start();
    let (s, m) = example("deploy-controller", &server);
    let config = std::fs::read_to_string(s.path("deploy/app.toml")).unwrap();
    let token = std::fs::read_to_string(s.path("secrets/control-plane.token")).unwrap();
    let r = run(
        &s,
        &m,
        guests::DEPLOY_CONTROLLER_P2,
        &["--try-other-paths", "--try-other-hosts"],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    for path in [
        "/etc/deploy/secrets.toml",
        "/etc/deploy/../passwd",
        "/etc/passwd",
        "/run/secrets/control-plane.token",
        "/secrets/control-plane.token",
    ] {
        assert_refused(&r, &format!("read {path}: "));
    }
    assert_refused(&r, "rewrite /etc/deploy/app.toml");
    assert!(!r.stdout.contains("not-for-the-controller"), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(s.path("deploy/app.toml")).unwrap(),
        config
    );

    let drain = server.url("/v1/clusters/prod/drain");
    let delete = server.url("/v1/services/checkout");
    let other = "https://control-plane.staging.example/v1/services/checkout/restart";
    assert_refused(&r, &format!("POST {drain}: "));
    assert_refused(&r, &format!("DELETE {delete}: "));
    assert_refused(&r, &format!("POST {other} with the control-plane secret: "));
    assert_http_refused(&r, &format!("POST {drain}"), Some("control-plane"));
    assert_decision(&r, "http", "deny", &format!("DELETE {delete}"));
    assert_http_refused(&r, &format!("POST {other}"), Some("control-plane"));
    assert_eq!(
        paths(&server.requests()),
        ["POST /v1/services/checkout/restart"]
    );
    assert_never_shown(&r, token.trim());
}

// ---------------------------------------------------------------------------------------

#[test]
fn every_example_manifest_is_valid() {
    for name in [
        "payments",
        "agent-tool",
        "ci-job",
        "vendor-connector",
        "deploy-controller",
    ] {
        let mut cmd = warden();
        cmd.arg("check").arg(
            examples_dir()
                .join(name)
                .join(format!("{name}.warden.toml")),
        );
        let r = finish(cmd, None);
        assert_eq!(r.code, 0, "{name}: {r:#?}");
    }
}
