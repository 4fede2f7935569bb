//! The library API that services embed: one engine and one compiled module, many runs.

use crate::guests;
use std::path::Path;
use warden::{AuditSink, EngineSettings, Input, Manifest, Outcome, Policy, RunOptions, Warden};

#[test]
fn one_workload_runs_many_times_with_its_own_io() {
    let manifest = Manifest::from_str_at(
        "[identity]\nname = \"embedded\"\n[limits]\nmemory = \"32MiB\"\n",
        Path::new("<test>"),
        Path::new("."),
    )
    .unwrap();
    let mut policy = Policy::from_manifest(manifest);
    policy.module = Some(guests::PROBE_P1.into());
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let workload = warden.load(policy).unwrap();
    for i in 0..5 {
        let mut opts = RunOptions::from_policy(workload.policy());
        opts.args = vec!["stdin".into()];
        opts.stdin = Input::Bytes(format!("request {i}").into_bytes());
        let (stdout, _stderr) = opts.capture_output();
        let report = workload.run(opts).unwrap();
        assert_eq!(report.outcome, Outcome::Exited(0));
        assert_eq!(stdout.text(), format!("stdin=9 bytes\nrequest {i}"));
    }
}

#[test]
fn an_embedded_run_reports_limits_and_writes_its_audit_to_any_writer() {
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut policy = Policy::anonymous();
    policy.limits.output = 1000;
    policy.module = Some(guests::FLOOD_P2.into());
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let workload = warden.load(policy).unwrap();
    let log = Shared::default();
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.audit = AuditSink::to_writer(log.clone());
    let (stdout, _) = opts.capture_output();
    let report = workload.run(opts).unwrap();
    assert_eq!(report.outcome, Outcome::OutputLimit);
    assert_eq!(report.outcome.exit_code(), 120);
    assert_eq!(stdout.bytes().len(), 1000);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.lines().any(|l| l.contains("\"output-limit\"")),
        "{text}"
    );
}

#[test]
fn fuel_needs_an_engine_built_for_it() {
    let mut policy = Policy::anonymous();
    policy.limits.fuel = Some(1000);
    policy.module = Some(guests::HELLO_P1.into());
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let err = warden.load(policy).unwrap_err();
    assert!(err.to_string().contains("fuel"), "{err}");
}
