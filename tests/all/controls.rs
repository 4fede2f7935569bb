//! `warden check --controls` and docs/controls.md: each control open exactly where a manifest
//! weakens it, and every test the document cites as proof exists.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{Scene, finish, warden};

fn controls(manifest: &Path) -> Value {
    let mut cmd = warden();
    cmd.args(["check", "--controls", "--json"]).arg(manifest);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
}

/// control → its `open` reasons.
fn open(doc: &Value) -> Vec<(String, Vec<String>)> {
    doc["controls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "open")
        .map(|c| {
            let reasons = c["open"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            (c["control"].as_str().unwrap().to_owned(), reasons)
        })
        .collect()
}

#[test]
fn a_loose_manifest_leaves_each_weakened_control_open_with_its_reason() {
    let s = Scene::new();
    s.mkdir("scratch");
    let loose = s.file(
        "loose.warden.toml",
        r#"[identity]
name = "loose"

[[files]]
host = "scratch"
guest = "/scratch"
access = "read-write"

[env]
GITHUB_TOKEN = "ghp_notarealtoken"

[network]
connect = ["10.0.0.0/8:443", "*.example.com:443"]
listen = ["0.0.0.0:8080", "127.0.0.1:8081"]

[[http]]
url = "http://api.example.com/"
methods = ["GET", "POST"]

[secrets.k]
from = "env:K"
reveal = true
"#,
    );
    let got = open(&controls(&loose));
    let reasons = |control: &str| -> Vec<String> {
        got.iter()
            .find(|(c, _)| c == control)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{control} not open: {got:#?}"))
    };
    let has = |control: &str, needle: &str| {
        assert!(
            reasons(control).iter().any(|r| r.contains(needle)),
            "{control}: no reason with {needle:?}: {got:#?}"
        );
    };
    has("identity", "no `id`");
    has("identity", "no `owner`");
    has("module-pin", "no `sha256`");
    has("least-privilege-files", "/scratch is a read-write folder");
    has(
        "egress-rules",
        "10.0.0.0/8:443: a range of 16777216 addresses",
    );
    has("egress-rules", "*.example.com:443");
    has("egress-rules", "POST on a whole origin");
    has("egress-rules", "cleartext HTTP");
    has(
        "egress-rules",
        "[network] listen 0.0.0.0:8080: every interface",
    );
    assert!(
        !reasons("egress-rules")
            .iter()
            .any(|r| r.contains("127.0.0.1:8081")),
        "a loopback listen entry is not open: {got:#?}"
    );
    has("brokered-secrets", "[secrets.k] reveal = true");
    has("brokered-secrets", "[env] GITHUB_TOKEN");
    let names: BTreeSet<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
    // …and nothing else: deny-by-default, limits and the host lockdown cannot be weakened
    // from a manifest.
    assert_eq!(names.len(), 5, "{got:#?}");
}

/// Like `warden check`, `--controls` reports on a manifest whose `from-host` variable is not
/// set here (the run's environment is elsewhere), and flags the credential it copies.
#[test]
fn controls_report_on_a_manifest_with_an_unset_from_host_variable() {
    let s = Scene::new();
    let m = s.manifest("[env]\nAPI_TOKEN = { from-host = \"CONTROLS_TEST_UNSET_VAR\" }\n");
    let mut cmd = warden();
    cmd.args(["check", "--controls", "--json"])
        .arg(&m)
        .env_remove("CONTROLS_TEST_UNSET_VAR");
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        open(&doc)
            .iter()
            .any(|(c, why)| c == "brokered-secrets" && why.iter().any(|w| w.contains("API_TOKEN"))),
        "{doc:#}"
    );
}

/// The control: the same capabilities granted tightly leave nothing open.
#[test]
fn a_tight_manifest_leaves_no_control_open() {
    let s = Scene::new();
    s.file("scratch/state.json", "{}");
    let tight = s.file(
        "tight.warden.toml",
        r#"[identity]
name = "tight"
id = "spiffe://example.test/tight"
owner = "team-platform"

[workload]
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[files]]
host = "scratch/state.json"
guest = "/scratch/state.json"
access = "read-write"

[env]
REGION = "eu-west"

[network]
connect = ["10.1.2.0/24:443", "api.example.com:443"]

[[http]]
url = "https://api.example.com/v1/orders"
methods = ["GET", "POST"]

[secrets.k]
from = "env:K"
inject = { header = "Authorization", format = "Bearer {secret}", url = "https://api.example.com/v1/" }
"#,
    );
    let doc = controls(&tight);
    assert_eq!(open(&doc), [], "{doc:#}");
    assert_eq!(doc["identity"], "spiffe://example.test/tight");
    for c in doc["controls"].as_array().unwrap() {
        assert!(
            !c["nist_csf_2"].as_array().unwrap().is_empty(),
            "every control names its CSF subcategories: {c}"
        );
    }
}

/// Every test docs/controls.md cites as proof is a test of this suite, and every control
/// `--controls` reports has a row there.
#[test]
fn every_test_docs_controls_md_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/controls.md")).unwrap();
    let mut sources = String::new();
    for entry in std::fs::read_dir(root.join("tests/all")).unwrap() {
        sources.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut cited = 0;
    for row in doc.lines().filter(|l| l.starts_with("| `")) {
        let proved_by = row.trim_end_matches('|').rsplit('|').next().unwrap();
        for name in proved_by.split('`').skip(1).step_by(2) {
            assert!(
                sources.contains(&format!("fn {name}(")),
                "docs/controls.md cites {name}, which is no test in tests/all"
            );
            cited += 1;
        }
    }
    assert!(cited >= 20, "only {cited} tests cited");
    let s = Scene::new();
    let any = s.manifest("");
    for c in controls(&any)["controls"].as_array().unwrap() {
        let name = c["control"].as_str().unwrap();
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "control {name} has no row in docs/controls.md"
        );
    }
}
