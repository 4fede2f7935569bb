//! What a service plugs into the library: its own vault of secret values and its own audit
//! sink (here a channel), instead of warden's environment and a file.

use crate::guests;
use crate::server::Server;
use std::path::Path;
use std::sync::Arc;
use warden::{
    AuditSink, EngineSettings, LoadError, Manifest, Outcome, Policy, RunError, RunOptions,
    SecretStore, SecretStoreError, Warden,
};

/// A vault in memory, keyed by the secret's name (whatever its manifest `from` says).
#[derive(Debug)]
struct Vault(Vec<(&'static str, &'static str)>);

impl SecretStore for Vault {
    fn value(&self, secret: &warden::manifest::Secret) -> Result<String, SecretStoreError> {
        self.0
            .iter()
            .find(|(name, _)| *name == secret.name)
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| SecretStoreError::new(format!("no `{}` in the vault", secret.name)))
    }
}

const VALUE: &str = "vault-held-9f2c4e1b7a";

fn manifest(server: &Server) -> String {
    let base = server.url("");
    format!(
        r#"[identity]
name = "vaulted"

[[http]]
url = "{base}/v1/"
methods = ["POST"]

[secrets.api]
from = "env:WARDEN_TEST_NOT_SET_ANYWHERE"
inject = {{ header = "Authorization", format = "Bearer {{secret}}", url = "{base}/v1/" }}
"#
    )
}

#[test]
fn a_vault_supplies_secrets_and_a_channel_receives_the_audit() {
    let server = Server::echo();
    let m = Manifest::from_str_at(&manifest(&server), Path::new("<test>"), Path::new(".")).unwrap();
    let mut policy = Policy::from_manifest(m);
    policy.module = Some(guests::NET_PROBE_P2.into());
    let workload = Warden::new(EngineSettings::default())
        .unwrap()
        .load(policy)
        .unwrap();
    let step = format!("http-secret POST {} api hello", server.url("/v1/charges"));

    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = vec![step.clone()];
    opts.secrets = Arc::new(Vault(vec![("api", VALUE)]));
    opts.audit = AuditSink::new(tx);
    let (stdout, _) = opts.capture_output();
    let report = workload.run(opts).unwrap();
    assert_eq!(report.outcome, Outcome::Exited(0), "{}", stdout.text());
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {VALUE}"))
    );
    let records: Vec<serde_json::Value> = rx
        .try_iter()
        .map(|r| serde_json::from_str(&r).unwrap())
        .collect();
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"start"), "{events:?}");
    assert_eq!(events.last(), Some(&"exit"), "{events:?}");
    assert!(records.iter().all(|r| r["run"] == report.run_id.as_str()));
    assert!(
        records.iter().all(|r| !r.to_string().contains(VALUE)),
        "the value never reaches the audit"
    );

    // CONTROL: without the vault, the manifest's own source (an unset variable) is read, and
    // the run does not start; the cause is kept.
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = vec![step];
    let err = workload.run(opts).unwrap_err();
    assert!(
        matches!(&err, RunError::Start(LoadError::Secret { name, .. }) if name == "api"),
        "{err:?}"
    );
    let root = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .last()
        .unwrap();
    assert!(root.is::<std::env::VarError>(), "{root:?}");
    assert_eq!(server.requests().len(), 1, "no request without the secret");

    // A vault without the name refuses the start too.
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.secrets = Arc::new(Vault(vec![]));
    let err = workload.run(opts).unwrap_err();
    assert!(err.to_string().contains("no `api` in the vault"), "{err}");
}
