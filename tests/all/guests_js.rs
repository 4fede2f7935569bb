//! The JavaScript vendor connector (guests-js/vendor-connector/main.js, a componentize-js
//! component built by scripts/foreign into target/foreign/js/) under its manifest in
//! examples/vendor-connector-js, against a loopback server, with the default
//! `--seccomp enforce`: it does the Rust vendor connector's job with `fetch` and the secret
//! warden injects, never sees that secret, every `--try-…` attempt is refused and audited
//! (each kind with a control that lets it through), and `warden learn` gives a manifest no
//! broader than the hand-written one.
//!
//! The component comes from a toolchain outside cargo: when it is missing (scripts/foreign
//! was not run, or could not install node), each test says so on stderr and returns, and
//! fails under `CI=true`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::connectors::{
    VENDOR_API_KEY, assert_decision, assert_never_shown, assert_refused, example, json, paths, run,
};
use crate::learn_connectors::{Case, learn_and_compare};
use crate::server::Server;
use crate::util::Outcome;

/// The folder in examples/ and the name of its manifest.
const EXAMPLE: &str = "vendor-connector-js";
/// The line that says the job was done: the Rust connector's, word for word.
const JOB: &str = "sent 3 orders (total 288.93) to the vendor: 200\n";
const TRIES: &[&str] = &[
    "--try-metadata",
    "--try-other-host",
    "--try-outside-data",
    "--try-reveal",
];
const ENV: &[(&str, &str)] = &[("VENDOR_API_KEY", VENDOR_API_KEY)];

/// `target/foreign/js/NAME.wasm` (in the target folder this test binary was built in), or
/// `None` after saying loudly that it is missing; under `CI=true` a missing component fails.
fn js_guest(name: &str) -> Option<String> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let wasm = target.join("foreign/js").join(format!("{name}.wasm"));
    if wasm.is_file() {
        let module = wasm.to_string_lossy().into_owned();
        warm_cache(&module);
        return Some(module);
    }
    let message = format!(
        "{} is missing: the JavaScript guests are built by scripts/foreign (componentize-js, \
         through npm); run it first",
        wasm.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    // Straight to the process's stderr: the test harness captures `eprintln!` of a passing test.
    let _ = writeln!(std::io::stderr(), "SKIPPED (not under CI): {message}");
    None
}

/// Compiles the component into the suite's module cache once, before any test of this file
/// runs it: the tests run in parallel, and each would otherwise compile the 15 MB component
/// itself (some 30 s of CPU each in a debug build of warden).
fn warm_cache(module: &str) {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        // No manifest: the guest finds no VENDOR_ORDERS_URL and exits 1; the compile is cached.
        let r = crate::util::Scene::new().run(None, module, &[]);
        assert_eq!(r.code, 1, "{r:#?}");
        assert!(r.stderr.contains("VENDOR_ORDERS_URL is not set"), "{r:#?}");
    });
}

#[test]
fn js_vendor_connector_sends_the_orders_with_the_vendor_key() {
    let Some(module) = js_guest("vendor-connector") else {
        return;
    };
    let server = Server::start();
    let (s, m) = example(EXAMPLE, &server);
    let r = run(&s, &m, &module, &[], ENV);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains(JOB), "{r:#?}");
    assert_eq!(r.exit()["outcome"], "exited", "{r:#?}");

    let got = server.requests();
    assert_eq!(paths(&got), ["POST /vendor/v2/orders"], "{got:#?}");
    assert_eq!(
        got[0].header("x-api-key"),
        Some(VENDOR_API_KEY),
        "the key is injected: {}",
        got[0].dump()
    );
    assert_eq!(got[0].header("warden-secret"), None, "the name is stripped");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    let orders = json(&got[0])["orders"].as_array().unwrap().clone();
    assert_eq!(orders.len(), 3);
    assert_eq!(orders[0]["order_id"], "A-1001");
    assert_eq!(orders[0]["sku"], "WID-001");
    assert_eq!(orders[0]["quantity"], 2);
    assert_eq!(orders[0]["unit_price_cents"], 1999);
    assert_eq!(orders[1]["unit_price_cents"], 14900);
    assert_decision(&r, "secret", "allow", "vendor-key");
    assert_decision(
        &r,
        "http",
        "allow",
        &format!("POST {}", server.url("/vendor/v2/orders")),
    );
    assert_never_shown(&r, VENDOR_API_KEY);
}

/// The control of the test above: without the `[[http]]` rule the same component sends
/// nothing, fails, and warden audits the refusal. The job's success is warden's grant, not the
/// guest's doing.
#[test]
fn js_vendor_connector_without_the_http_rule_sends_nothing() {
    let Some(module) = js_guest("vendor-connector") else {
        return;
    };
    let server = Server::start();
    let (s, m) = example(EXAMPLE, &server);
    let manifest = std::fs::read_to_string(&m).unwrap();
    let rule = format!(
        "[[http]]\nurl = \"http://{}/vendor/v2/orders\"\nmethods = [\"POST\"]\n",
        server.addr()
    );
    assert!(manifest.contains(&rule), "{manifest}");
    std::fs::write(&m, manifest.replace(&rule, "")).unwrap();
    let r = run(&s, &m, &module, &[], ENV);
    assert!(!r.stdout.contains("sent 3 orders"), "{r:#?}");
    // How the run fails is the engine's race (componentize-js 0.23, docs/guests-js.md): fetch
    // rejects the refusal like any network error and the guest reports it (exit 1), or the
    // engine aborts its event loop (exit 1) or traps (123). In 30 runs: 26, 1 and 3 times.
    let rejected = r.code == 1
        && r.stderr
            .contains("NetworkError when attempting to fetch resource");
    let aborted = r.code == 1
        && r.stderr
            .contains("event loop error, but no exception is pending");
    let trapped = r.code == 123 && r.exit()["outcome"] == "trap";
    assert!(rejected || aborted || trapped, "{r:#?}");
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    assert_decision(
        &r,
        "http",
        "deny",
        &format!("POST {}", server.url("/vendor/v2/orders")),
    );
}

#[test]
fn js_vendor_connector_cannot_reach_cloud_metadata_other_hosts_or_files() {
    let Some(module) = js_guest("vendor-connector") else {
        return;
    };
    let server = Server::start();
    let (s, m) = example(EXAMPLE, &server);
    let r = run(&s, &m, &module, TRIES, ENV);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains(JOB), "{r:#?}");
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
    assert_decision(&r, "secret", "deny", "vendor-key");
    // `..` out of /data reaches warden, which refuses and audits it; paths outside every
    // grant do not exist for the guest (no preopen holds them) and never reach the host.
    assert_refused(
        &r,
        "read /data/../etc/passwd: /data/../etc/passwd: not-permitted",
    );
    assert_decision(&r, "fs", "deny", "/data/../etc/passwd");
    for path in [
        "/etc/passwd",
        "/config/vendor.toml",
        "/root/.ssh/id_ed25519",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        assert_refused(&r, &format!("read {path}: {path}: no such file"));
    }
    assert!(!r.stdout.contains("root:x:0:0"), "{r:#?}");
    // warden:host/secrets through the SDK: the handle tells where the key goes, not its value.
    assert!(
        r.stdout.contains(&format!(
            "the vendor-key secret goes to {} as X-Api-Key\n",
            server.url("/vendor/")
        )),
        "{r:#?}"
    );
    assert_refused(
        &r,
        "read the value of the vendor-key secret: secret \"vendor-key\": not-revealable",
    );
    assert_refused(
        &r,
        "open the secret \"aws-root\": secret \"aws-root\": not-granted",
    );
    assert_decision(&r, "secret", "deny", "aws-root");
    // Two refusals of the vendor key: naming it for the other host, and reading its value.
    assert_eq!(
        secret_decisions(&r, "deny", "vendor-key"),
        2,
        "{:#?}",
        r.audit
    );
    assert_eq!(paths(&server.requests()), ["POST /vendor/v2/orders"]);
    assert_never_shown(&r, VENDOR_API_KEY);
}

/// The control of the test above: the guest's own verdict is real. With a `/config` folder
/// granted, its `--try-outside-data` read of /config/vendor.toml gets through, the guest says
/// `ALLOWED` and exits 2 — and the other attempts are still refused.
#[test]
fn js_vendor_connector_reports_what_a_wider_manifest_lets_through() {
    let Some(module) = js_guest("vendor-connector") else {
        return;
    };
    let server = Server::start();
    let (s, m) = example(EXAMPLE, &server);
    s.file("config/vendor.toml", "region = \"eu\"\n");
    let mut manifest = std::fs::read_to_string(&m).unwrap();
    manifest = manifest.replace(
        "[env]",
        "[[files]]\nhost = \"config\"\nguest = \"/config\"\naccess = \"read\"\n\n[env]",
    );
    std::fs::write(&m, manifest).unwrap();
    let r = run(&s, &m, &module, &["--try-outside-data"], ENV);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.stdout
            .contains("ALLOWED: read /config/vendor.toml: it succeeded\n"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("refused: read /etc/passwd: "), "{r:#?}");
}

/// The same for `--try-reveal`: with `reveal = true` on the vendor key, reading its value
/// gets through (and is audited as allowed); the ungranted secret is still refused.
#[test]
fn js_vendor_connector_reports_a_revealable_secret() {
    let Some(module) = js_guest("vendor-connector") else {
        return;
    };
    let server = Server::start();
    let (s, m) = example(EXAMPLE, &server);
    let manifest = std::fs::read_to_string(&m).unwrap();
    let inject = format!(
        "inject = {{ header = \"X-Api-Key\", format = \"{{secret}}\", url = \"http://{}/vendor/\" }}\n",
        server.addr()
    );
    assert!(manifest.contains(&inject), "{manifest}");
    std::fs::write(
        &m,
        manifest.replace(&inject, &format!("{inject}reveal = true\n")),
    )
    .unwrap();
    let r = run(&s, &m, &module, &["--try-reveal"], ENV);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(
        r.stdout
            .contains("ALLOWED: read the value of the vendor-key secret: it succeeded\n"),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains("refused: open the secret \"aws-root\": secret \"aws-root\": not-granted"),
        "{r:#?}"
    );
    // Three allowed uses of the vendor key: the injection into the job's request, the open
    // and the reveal; none refused.
    assert_eq!(
        secret_decisions(&r, "allow", "vendor-key"),
        3,
        "{:#?}",
        r.audit
    );
    assert_eq!(
        secret_decisions(&r, "deny", "vendor-key"),
        0,
        "{:#?}",
        r.audit
    );
}

/// How many `secret` decisions about `name` the audit log has with this decision.
fn secret_decisions(r: &Outcome, decision: &str, name: &str) -> usize {
    r.audit
        .iter()
        .filter(|d| {
            d["event"] == "decision"
                && d["capability"] == "secret"
                && d["decision"] == decision
                && d["target"] == name
        })
        .count()
}

#[test]
fn js_vendor_connector_learned_is_no_broader_than_its_hand_written_manifest() {
    let Some(module) = js_guest("vendor-connector") else {
        return;
    };
    learn_and_compare(&Case {
        name: EXAMPLE,
        module: Box::leak(module.into_boxed_str()),
        env: ENV,
        job: JOB.trim_end(),
        tries: TRIES,
    });
}
