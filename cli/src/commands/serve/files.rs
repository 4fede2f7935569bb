//! The host work of a run that a locked-down worker cannot do, done by the server for it:
//! staging the manifest's single-file grants and reading its `file:` secrets, once per run,
//! right before the run is sent to a worker (docs/serve.md, "Single files and file secrets").
//!
//! The worker is handed the private staging folders (which it opens read-only, as it opens a
//! folder grant) and the secret values (through its pipe, never its environment), so its
//! seccomp profile gains nothing for them. The server copies read-write files back when the
//! worker has answered the run, under the checks `warden run` makes, and removes the folders.

use super::proto;
use warden::policy::{PreStaged, StagedFiles};
use warden::{Audit, Policy, SecretStore};

/// What the server prepared for one run.
pub(super) struct Prepared {
    /// The staging, to finish once the run is over (`None` without single-file grants or
    /// when staging failed).
    pub staged: Option<StagedFiles>,
    pub folders: Vec<proto::StagedIn>,
    pub failed: Option<proto::StagingFailed>,
    pub secrets: Vec<proto::SecretIn>,
}

/// Whether a run of `policy` needs the server's help (single files or `file:` secrets).
pub(super) fn needed(policy: &Policy) -> bool {
    policy
        .files
        .iter()
        .any(|f| f.kind == warden::manifest::FileKind::File)
        || policy
            .secrets
            .iter()
            .any(|s| matches!(s.from, warden::manifest::SecretSource::File(_)))
}

/// Stages `policy`'s single-file grants and reads its `file:` secrets for one run, whose
/// copy-back decisions go to `audit`. Blocking (file I/O): call it off the async threads.
pub(super) fn prepare(policy: &Policy, audit: &Audit) -> Prepared {
    let single = policy
        .files
        .iter()
        .any(|f| f.kind == warden::manifest::FileKind::File);
    let (staged, failed) = if single {
        match policy.stage_files(audit) {
            Ok(s) => (Some(s), None),
            Err(e) => {
                let path = match &e {
                    warden::LoadError::Grant { path, .. } => path.clone(),
                    _ => std::path::PathBuf::new(),
                };
                let message = match &e {
                    warden::LoadError::Grant { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                (None, Some(proto::StagingFailed { path, message }))
            }
        }
    } else {
        (None, None)
    };
    let folders = staged
        .as_ref()
        .map(|s| {
            s.folders()
                .into_iter()
                .map(|f| proto::StagedIn {
                    guest: f.guest,
                    host: f.host,
                })
                .collect()
        })
        .unwrap_or_default();
    // As `warden run` reads them: the whole file at each run, without its trailing newline,
    // so a credential rotated on disk (rewritten or replaced by a rename) is the next run's.
    let secrets = policy
        .secrets
        .iter()
        .filter(|s| matches!(s.from, warden::manifest::SecretSource::File(_)))
        .map(|s| proto::SecretIn {
            name: s.name.clone(),
            value: warden::FileSecrets.value(s).map_err(|e| e.message),
        })
        .collect();
    Prepared {
        staged,
        folders,
        failed,
        secrets,
    }
}

/// The worker's side of [`Prepared`]: what its run options get from a request.
pub(super) fn staged_for_run(req: &proto::Request) -> Option<PreStaged> {
    if let Some(f) = &req.staging_failed {
        return Some(PreStaged::Failed {
            path: f.path.clone(),
            message: f.message.clone(),
        });
    }
    if req.staged.is_empty() {
        return None;
    }
    Some(PreStaged::Folders(
        req.staged
            .iter()
            .map(|s| warden::policy::StagedFolder {
                guest: s.guest.clone(),
                host: s.host.clone(),
            })
            .collect(),
    ))
}

/// The worker's secret store: `env:` sources from its own environment (as the server passed
/// them on), `file:` sources as the server read them for this run.
pub(super) struct ServedSecrets(pub Vec<proto::SecretIn>);

impl std::fmt::Debug for ServedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ServedSecrets").field(&self.0).finish()
    }
}

impl SecretStore for ServedSecrets {
    fn value(&self, secret: &warden::manifest::Secret) -> Result<String, warden::SecretStoreError> {
        match &secret.from {
            warden::manifest::SecretSource::Env(_) => warden::EnvSecrets.value(secret),
            warden::manifest::SecretSource::File(path) => {
                match self.0.iter().find(|s| s.name == secret.name) {
                    Some(s) => s.value.clone().map_err(warden::SecretStoreError::new),
                    None => Err(warden::SecretStoreError::new(format!(
                        "file:{}: the server sent no value for this run",
                        path.display()
                    ))),
                }
            }
        }
    }
}

impl Prepared {
    /// Nothing to prepare: a manifest without single files or `file:` secrets.
    fn none() -> Prepared {
        Prepared {
            staged: None,
            folders: Vec::new(),
            failed: None,
            secrets: Vec::new(),
        }
    }
}

/// [`prepare`] on a blocking thread, for `policy` when its runs need it (`None`: nothing to
/// do), its copy-back decisions audited under run `run` of `identity`.
pub(super) async fn prepare_for(
    policy: Option<&std::sync::Arc<Policy>>,
    sink: &warden::AuditSink,
    identity: &str,
    run: &str,
) -> Prepared {
    let Some(policy) = policy.cloned() else {
        return Prepared::none();
    };
    let audit = Audit::with_run_id(sink.clone(), identity, run);
    tokio::task::spawn_blocking(move || prepare(&policy, &audit))
        .await
        .unwrap_or_else(|e| Prepared {
            failed: Some(proto::StagingFailed {
                path: std::path::PathBuf::new(),
                message: format!("the server could not prepare the run: {e}"),
            }),
            ..Prepared::none()
        })
}

/// Finishes a run's staging on a blocking thread: copy-back (when `copy_back`) and removal.
pub(super) async fn finish(staged: StagedFiles, copy_back: bool) {
    let _ = tokio::task::spawn_blocking(move || staged.finish(copy_back)).await;
}
