//! `--audit-format ocsf`: every record of real runs written as an OCSF event, each validated
//! against the JSON Schema of its class generated from the published OCSF schema (by the
//! `ocsf-json-schema` Python package, pinned and installed by scripts/setup). Each check has
//! its control: the same events broken (a wrong type, a missing required field, another
//! class, an attribute the class does not have) are refused by the same validator.
//!
//! The validator is required: without `python3 -m` access to `ocsf_json_schema` these tests
//! fail, loudly, rather than pass without checking anything.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::guests;
use crate::util::{Outcome, Scene, finish, warden};

/// The OCSF version warden writes (`metadata.version`), and the package that has its schema.
const OCSF_VERSION: &str = "1.7.0";
const TOOL: &str = "ocsf-json-schema==1.2.0";

/// The classes warden writes and the profile sets its events name.
const CLASSES: [u64; 6] = [1001, 4001, 4002, 6002, 6003, 6008];
const PROFILE_SETS: [&[&str]; 2] = [&["host"], &["host", "security_control"]];

/// Generates the JSON Schema of each class warden writes, for each profile set, with the
/// objects it refers to embedded: `"CLASS_UID/PROFILE,PROFILE"` → schema.
const GENERATE: &str = r#"
import json, sys
from ocsf_json_schema import get_ocsf_schema, OcsfJsonSchemaEmbedded
schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=sys.argv[1]))
classes = [int(c) for c in sys.argv[2].split(",")]
profile_sets = [p.split(",") for p in sys.argv[3:]]
out = {}
for uid in classes:
    name = schema.lookup_class_name_from_uid(uid)
    for profiles in profile_sets:
        out["%d/%s" % (uid, ",".join(sorted(profiles)))] = schema.get_class_schema(name, profiles)
print(json.dumps(out))
"#;

struct Schemas {
    validators: HashMap<String, jsonschema::Validator>,
}

/// The validators, generated once per test process. Panics (the test fails) when the
/// generator is not installed.
fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let classes: Vec<String> = CLASSES.iter().map(u64::to_string).collect();
        let out = Command::new("python3")
            .args(["-c", GENERATE, OCSF_VERSION, &classes.join(",")])
            .args(PROFILE_SETS.iter().map(|p| p.join(",")))
            .output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            other => panic!(
                "\n!!!!! the OCSF schema generator is missing or failed: pip install {TOOL} \
                 (scripts/setup does). The OCSF events cannot be checked without it. !!!!!\n\
                 {other:?}"
            ),
        };
        let all: HashMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(all.len(), CLASSES.len() * PROFILE_SETS.len());
        let validators = all
            .into_iter()
            .map(|(key, schema)| {
                assert_eq!(
                    schema["$id"]
                        .as_str()
                        .unwrap()
                        .split('/')
                        .nth(4)
                        .unwrap_or(""),
                    OCSF_VERSION,
                    "{key}: a schema of another version"
                );
                let v = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("{key}: the generated schema does not load: {e}"));
                (key, v)
            })
            .collect();
        Schemas { validators }
    })
}

/// The key of the schema an event claims: its class and the profiles it names.
fn key_of(ev: &Value) -> String {
    let mut profiles: Vec<&str> = ev["metadata"]["profiles"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    profiles.sort_unstable();
    format!("{}/{}", ev["class_uid"], profiles.join(","))
}

/// Validates `ev` against the schema of the class and profiles `claimed` (an event's key).
fn errors_against(claimed: &str, ev: &Value) -> Vec<String> {
    match schemas().validators.get(claimed) {
        Some(v) => v
            .iter_errors(ev)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect(),
        None => vec![format!("no OCSF {OCSF_VERSION} class schema for {claimed}")],
    }
}

/// Every event is valid for its class; and each, broken four ways, is not (the control).
fn assert_valid_with_controls(events: &[Value]) {
    assert!(!events.is_empty());
    for ev in events {
        let key = key_of(ev);
        let errors = errors_against(&key, ev);
        assert!(errors.is_empty(), "{ev:#}\n{key}: {errors:#?}");
        assert_eq!(ev["metadata"]["version"], OCSF_VERSION, "{ev}");
        // type_uid = class_uid * 100 + activity_id (the schema's enum says which pairs
        // exist; this says the pair is the event's own).
        assert_eq!(
            ev["type_uid"].as_u64().unwrap(),
            ev["class_uid"].as_u64().unwrap() * 100 + ev["activity_id"].as_u64().unwrap(),
            "{ev}"
        );

        let mut wrong_type = ev.clone();
        wrong_type["time"] = "yesterday".into();
        let mut missing = ev.clone();
        missing["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("product");
        let mut other_class = ev.clone();
        other_class["class_uid"] = if ev["class_uid"] == 1001 { 4001 } else { 1001 }.into();
        let mut unknown_field = ev.clone();
        unknown_field["warden_run"] = ev["metadata"]["correlation_uid"].clone();
        let mut no_activity = ev.clone();
        no_activity.as_object_mut().unwrap().remove("activity_id");
        for (what, broken) in [
            ("a string time", &wrong_type),
            ("no metadata.product", &missing),
            ("another class_uid", &other_class),
            ("an attribute the class lacks", &unknown_field),
            ("no activity_id", &no_activity),
        ] {
            assert!(
                !errors_against(&key, broken).is_empty(),
                "control: {what} passed the {key} schema: {broken}"
            );
        }
        // A class OCSF does not have: no schema of the version accepts it.
        let mut unknown_class = ev.clone();
        unknown_class["class_uid"] = 9999.into();
        assert!(!errors_against(&key_of(&unknown_class), &unknown_class).is_empty());
    }
}

/// `warden run --audit FILE --audit-format ocsf [FLAGS] [--manifest M] MODULE -- ARGS`: the
/// outcome, with the log's lines (OCSF events) as its `audit`.
fn run_ocsf(s: &Scene, manifest: &Path, flags: &[&str], module: &str, args: &[&str]) -> Outcome {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let audit = s.path(&format!("ocsf-{}.jsonl", N.fetch_add(1, Ordering::Relaxed)));
    run_ocsf_into(&audit, manifest, flags, module, args)
}

/// [`run_ocsf`] with the log at `audit`.
fn run_ocsf_into(
    audit: &Path,
    manifest: &Path,
    flags: &[&str],
    module: &str,
    args: &[&str],
) -> Outcome {
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--audit")
        .arg(audit)
        .args(["--audit-format", "ocsf"])
        .args(flags)
        .arg("--manifest")
        .arg(manifest)
        .arg(module);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    finish(cmd, Some(audit))
}

fn of_class(r: &Outcome, class: u64) -> Vec<&Value> {
    r.audit.iter().filter(|e| e["class_uid"] == class).collect()
}

/// Every run's log: an Application Lifecycle Start first, Stop last, the identity as actor
/// on every event, the run id as correlation_uid, and the native record in `unmapped`.
fn assert_run_shape(r: &Outcome) {
    let first = r.audit.first().expect("events");
    let last = r.audit.last().unwrap();
    assert_eq!(
        (&first["class_uid"], &first["activity_id"]),
        (&6002.into(), &3.into()),
        "{first}"
    );
    assert_eq!(
        (&last["class_uid"], &last["activity_id"]),
        (&6002.into(), &4.into()),
        "{last}"
    );
    assert_eq!(last["status_code"], r.code.to_string(), "{last}");
    let run = &first["metadata"]["correlation_uid"];
    for ev in &r.audit {
        assert_eq!(
            ev["actor"]["user"]["uid"], "spiffe://test.example/nhi",
            "{ev}"
        );
        assert_eq!(ev["actor"]["user"]["name"], "test-nhi", "{ev}");
        assert_eq!(&ev["metadata"]["correlation_uid"], run, "{ev}");
        assert_eq!(ev["metadata"]["product"]["name"], "warden", "{ev}");
        assert_eq!(&ev["unmapped"]["run"], run, "{ev}");
        assert!(ev["unmapped"]["event"].is_string(), "{ev}");
        assert!(ev["time"].as_u64().unwrap() > 1_700_000_000_000, "{ev}");
    }
}

#[test]
fn ocsf_file_reads_allowed_and_refused_are_valid_file_system_activity() {
    let s = Scene::new();
    s.file("data/a.txt", "quarterly numbers\n");
    s.file("secret.txt", "OUTSIDE");
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
    // --record-fs: allowed file operations are recorded too, not only refusals.
    let allowed = run_ocsf(
        &s,
        &m,
        &["--record-fs"],
        guests::FS_P1,
        &["read", "/data/a.txt"],
    );
    assert_eq!(allowed.code, 0, "{allowed:#?}");
    assert_eq!(allowed.stdout, "quarterly numbers\n");
    let refused = run_ocsf(&s, &m, &[], guests::FS_P1, &["read", "/data/../secret.txt"]);
    assert_ne!(refused.code, 0, "{refused:#?}");
    assert!(!refused.stdout.contains("OUTSIDE"), "{refused:#?}");
    for r in [&allowed, &refused] {
        assert_run_shape(r);
        assert_valid_with_controls(&r.audit);
    }

    let read = of_class(&allowed, 1001)
        .into_iter()
        .find(|e| e["file"]["path"] == "/data/a.txt" && e["activity_id"] == 14)
        .unwrap_or_else(|| panic!("an Open of /data/a.txt: {:#?}", allowed.audit));
    assert_eq!(
        (
            &read["status_id"],
            &read["disposition_id"],
            &read["action_id"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{read}"
    );
    assert_eq!(read["disposition"], "Allowed");
    assert_eq!(read["file"]["name"], "a.txt");
    assert_eq!(read["unmapped"]["access"], "read", "{read}");

    let denied = of_class(&refused, 1001)
        .into_iter()
        .find(|e| e["status_id"] == 2)
        .unwrap_or_else(|| panic!("a refused file operation: {:#?}", refused.audit));
    assert_eq!(
        (
            &denied["disposition_id"],
            &denied["action_id"],
            &denied["status"]
        ),
        (&2.into(), &2.into(), &"Failure".into()),
        "{denied}"
    );
    assert_eq!(denied["disposition"], "Blocked");
    assert!(
        denied["file"]["path"].as_str().unwrap().contains(".."),
        "{denied}"
    );
    assert_eq!(denied["unmapped"]["decision"], "deny", "{denied}");
}

#[test]
fn ocsf_a_refused_connect_is_valid_network_activity() {
    let s = Scene::new();
    let m = s.manifest("[network]\nconnect = [\"localhost:9\"]\n");
    let r = run_ocsf(&s, &m, &[], guests::NET_PROBE_P2, &["tcp 127.0.0.1:1"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.starts_with("tcp: error"), "{r:#?}");
    assert_run_shape(&r);
    assert_valid_with_controls(&r.audit);
    let refused = of_class(&r, 4001)
        .into_iter()
        .find(|e| e["status_id"] == 2)
        .unwrap_or_else(|| panic!("a refused connection: {:#?}", r.audit));
    assert_eq!(refused["activity_id"], 5, "Refuse: {refused}");
    assert_eq!(refused["disposition"], "Blocked", "{refused}");
    assert_eq!(
        refused["dst_endpoint"],
        serde_json::json!({"ip": "127.0.0.1", "port": 1}),
        "{refused}"
    );
    assert_eq!(refused["unmapped"]["op"], "connect", "{refused}");
}

#[test]
fn ocsf_a_limit_and_the_exit_are_valid_application_events() {
    let s = Scene::new();
    let m = s.manifest("[limits]\nmemory = \"8MiB\"\n");
    let r = run_ocsf(&s, &m, &[], guests::MEMBOMB_P1, &[]);
    assert_ne!(r.code, 0, "{r:#?}");
    assert_run_shape(&r);
    assert_valid_with_controls(&r.audit);
    let limits = of_class(&r, 6008);
    assert_eq!(limits.len(), 1, "{:#?}", r.audit);
    assert_eq!(limits[0]["status_detail"], "memory", "{}", limits[0]);
    assert_eq!(limits[0]["disposition"], "Blocked", "{}", limits[0]);
    let stop = r.audit.last().unwrap();
    assert_eq!(stop["status"], "Failure", "{stop}");
    assert_eq!(stop["status_detail"], "memory-limit", "{stop}");
    assert_eq!(stop["app"]["name"], "test-nhi", "{stop}");
    // A run that ends well: Stop with Success.
    let ok = run_ocsf(&s, &m, &[], guests::HELLO_P1, &[]);
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert_run_shape(&ok);
    assert_valid_with_controls(&ok.audit);
    assert_eq!(ok.audit.last().unwrap()["status_id"], 1);
}

/// The readers of native logs refuse an OCSF log with one clear line (exit 125), never a
/// panic or a judgement from records they misread. Control: the same run's native log reads.
#[test]
fn ocsf_logs_are_refused_by_check_against_with_a_clear_error() {
    let s = Scene::new();
    s.file("data/a.txt", "a");
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
    let ocsf_log = s.path("ocsf.jsonl");
    let r = run_ocsf_into(&ocsf_log, &m, &[], guests::FS_P1, &["read", "/data/a.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!r.audit.is_empty(), "{r:#?}");
    let mut cmd = warden();
    cmd.arg("check").arg(&m).arg("--against").arg(&ocsf_log);
    let out = finish(cmd, None);
    out.assert_one_line_error("not an audit record: an OCSF event");
    assert!(out.stderr.contains("--audit-format json"), "{out:#?}");

    let native = s.run(Some(&m), guests::FS_P1, &["read", "/data/a.txt"]);
    assert_eq!(native.code, 0, "{native:#?}");
    let native_log = s.path("native.jsonl");
    let lines: Vec<String> = native.audit.iter().map(Value::to_string).collect();
    std::fs::write(&native_log, lines.join("\n") + "\n").unwrap();
    let mut cmd = warden();
    cmd.arg("check").arg(&m).arg("--against").arg(&native_log);
    let out = finish(cmd, None);
    assert_eq!(out.code, 0, "{out:#?}");
}

/// An unknown format, or a format without a log, is a usage error (exit 2); json stays the
/// default, and a run without a log needs no format.
#[test]
fn ocsf_the_format_flag_is_checked_and_json_is_the_default() {
    for args in [
        &[
            "run",
            "--audit",
            "-",
            "--audit-format",
            "cef",
            guests::HELLO_P1,
        ][..],
        &["run", "--audit-format", "ocsf", guests::HELLO_P1][..],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "-m",
            "x.toml",
            "--audit-format",
            "ocsf",
        ][..],
    ] {
        let mut cmd = warden();
        cmd.args(args);
        let out = finish(cmd, None);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains("--audit"), "{args:?}: {out:#?}");
        assert!(!out.stderr.contains("panicked"), "{out:#?}");
    }
    let mut cmd = warden();
    cmd.args(["run", guests::HELLO_P1]);
    let out = finish(cmd, None);
    assert_eq!(out.code, 0, "{out:#?}");
    let s = Scene::new();
    let r = s.run(None, guests::HELLO_P1, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.audit
            .iter()
            .all(|e| e["event"].is_string() && e.get("class_uid").is_none())
    );
}

/// `warden serve --audit-format ocsf`: the workers' records, checked by the server and then
/// encoded, are valid OCSF events naming the identity; the run id of the answer is the
/// events' `correlation_uid`.
#[test]
fn ocsf_serve_writes_valid_events_for_its_workers_runs() {
    use crate::serve::{Serve, manifest};
    let s = Scene::new();
    s.file("data/a.txt", "a");
    let data = s.path("data");
    let m = manifest(
        &s,
        "reader",
        guests::FS_P1,
        &format!(
            "[[files]]\nhost = \"{}\"\nguest = \"/data\"\naccess = \"read\"\n",
            data.display()
        ),
    );
    let serve = Serve::start(&s, &[&m], &["--audit-format", "ocsf"]);
    let r = serve.run("reader", &["read", "/data/../secret.txt"], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let run = r.json()["run"].as_str().unwrap().to_string();
    assert_eq!(serve.stop(), 0);
    let all = {
        let text = std::fs::read_to_string(s.path("serve-audit.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect::<Vec<_>>()
    };
    let events: Vec<Value> = all
        .into_iter()
        .filter(|e| e["metadata"]["correlation_uid"] == run.as_str())
        .collect();
    assert_valid_with_controls(&events);
    let first = &events[0];
    assert_eq!(
        (&first["class_uid"], &first["activity_id"]),
        (&6002.into(), &3.into()),
        "{first}"
    );
    assert_eq!(events.last().unwrap()["activity_id"], 4);
    for ev in &events {
        assert_eq!(
            ev["actor"]["user"]["uid"], "spiffe://test.example/reader",
            "{ev}"
        );
        assert_eq!(ev["actor"]["user"]["name"], "reader", "{ev}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["class_uid"] == 1001 && e["disposition"] == "Blocked"),
        "{events:#?}"
    );
}

/// A refused HTTP request is HTTP Activity (by its method), and the setup of `[env]` and
/// `[clocks]` grants is API Activity; both valid for their class, with the controls.
#[test]
fn ocsf_a_refused_request_and_host_interface_grants_are_valid_http_and_api_activity() {
    let s = Scene::new();
    let m = s.manifest("[env]\nMODE = \"test\"\n\n[clocks]\nwall = true\n");
    let r = run_ocsf(
        &s,
        &m,
        &[],
        guests::NET_PROBE_P2,
        &["http POST http://127.0.0.1:1/x"],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.starts_with("http: error"), "{r:#?}");
    assert_run_shape(&r);
    assert_valid_with_controls(&r.audit);
    let refused = of_class(&r, 4002)
        .into_iter()
        .find(|e| e["status_id"] == 2)
        .unwrap_or_else(|| panic!("a refused request: {:#?}", r.audit));
    assert_eq!(
        (&refused["activity_id"], &refused["disposition"]),
        (&6.into(), &"Blocked".into()),
        "Post, Blocked: {refused}"
    );
    assert_eq!(refused["http_request"]["http_method"], "POST", "{refused}");
    let api = of_class(&r, 6003);
    let services: Vec<&str> = api
        .iter()
        .filter_map(|e| e["api"]["service"]["name"].as_str())
        .collect();
    assert!(
        services.contains(&"env") && services.contains(&"clock"),
        "{services:?}: {:#?}",
        r.audit
    );
    assert!(
        api.iter().all(|e| e["disposition"] == "Allowed"),
        "{api:#?}"
    );
}
