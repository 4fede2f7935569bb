//! The audit log's shape: what every line carries, and where it goes.

use crate::guests;
use crate::util::{Scene, finish, warden};

#[test]
fn every_record_carries_ts_event_identity_and_run() {
    let s = Scene::new();
    s.file("data/a.txt", "a");
    let m = s.manifest(
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n[env]\nA = \"1\"\n",
    );
    let r = s.run(Some(&m), guests::FS_P1, &["write", "/data/b.txt", "b"]);
    assert!(r.audit.len() >= 4, "{r:#?}");
    let run = r.audit[0]["run"].as_str().unwrap().to_string();
    for rec in &r.audit {
        let ts = rec["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "RFC 3339 UTC: {ts}");
        assert_eq!(rec["identity"], "spiffe://test.example/nhi");
        assert_eq!(rec["run"], run.as_str());
        assert!(rec["event"].is_string());
    }
    assert_eq!(r.audit[0]["event"], "start");
    assert_eq!(r.audit.last().unwrap()["event"], "exit");
    let start = &r.audit[0];
    assert_eq!(start["name"], "test-nhi");
    assert_eq!(start["grants"]["files"][0]["guest"], "/data");
    assert_eq!(start["grants"]["files"][0]["access"], "read");
    assert!(start["seccomp"]["mode"].is_string());
    let exit = r.exit();
    for key in ["outcome", "code", "wall_ms", "fuel_used", "peak_memory"] {
        assert!(exit.get(key).is_some(), "exit lacks {key}: {exit}");
    }
}

#[test]
fn each_run_has_its_own_id_and_the_file_is_appended() {
    let s = Scene::new();
    let log = s.path("shared.jsonl");
    for _ in 0..2 {
        let mut cmd = warden();
        cmd.arg("run")
            .arg("--audit")
            .arg(&log)
            .arg(guests::HELLO_P1);
        assert_eq!(finish(cmd, None).code, 0);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let runs: std::collections::BTreeSet<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["run"].to_string())
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    assert!(text.lines().all(|l| l.contains("warden://local/anonymous")));
}

#[test]
fn dash_writes_the_audit_log_to_stderr() {
    let mut cmd = warden();
    cmd.args(["run", "--audit", "-", guests::HELLO_P1]);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "hello, world\n");
    let events: Vec<String> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events.first().unwrap(), "\"start\"");
    assert_eq!(events.last().unwrap(), "\"exit\"");
}

#[test]
fn an_audit_file_that_cannot_be_opened_stops_the_run() {
    let s = Scene::new();
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--audit")
        .arg(s.path("no/such/dir/audit.jsonl"))
        .arg(guests::HELLO_P1);
    let r = finish(cmd, None);
    r.assert_one_line_error("cannot open the audit log");
    assert_eq!(r.stdout, "", "the guest must not run unaudited");
}
