//! How one run is wired to the outside: [`RunOptions`] (arguments, stdin, the output sinks,
//! the audit sink, lockdown, secrets), the stdin it reads ([`Input`]) and captured output
//! ([`Captured`]). Plain data, used by both the run itself (`run.rs`) and the HTTP path
//! (`http.rs`).

use crate::audit::AuditSink;
use crate::policy::Policy;
use crate::stdio::Sink;
use std::sync::Arc;

/// What a run's stdin reads from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// Closed: reads see end of file.
    Null,
    /// warden's own stdin.
    Inherit,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
}

/// How one run is wired to the outside. [`RunOptions::from_policy`] follows the manifest's
/// `[stdio]`; an embedder may replace any field.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// Appended to the manifest's `[workload] args`.
    pub args: Vec<String>,
    /// What the guest's stdin reads; `[stdio] stdin` by [`RunOptions::from_policy`].
    pub stdin: Input,
    /// Where the guest's stdout goes; `[stdio] stdout` by [`RunOptions::from_policy`].
    pub stdout: Sink,
    /// Where the guest's stderr goes; `[stdio] stderr` by [`RunOptions::from_policy`].
    pub stderr: Sink,
    /// Where the run's audit records go; [`AuditSink::disabled`] (no records) by
    /// [`RunOptions::from_policy`].
    pub audit: AuditSink,
    /// The audit run id; a fresh one when `None`.
    pub run_id: Option<String>,
    /// Lock the host process down with the policy's seccomp allow list right before the
    /// guest's first instruction. `None` (the default) leaves the process as it is.
    ///
    /// The filter is process-wide and cannot be removed: an embedder that sets this must not
    /// expect to do anything afterwards but write output and exit. It suits a process that
    /// runs one workload, as `warden run` does.
    pub lockdown: Option<host_seccomp::Mode>,
    /// Record allowed filesystem operations of a core module too (each distinct path and
    /// operation once, as an `allow` decision of capability `fs`), not only refusals. Off by
    /// default; `warden learn` turns it on to see which files a workload touches.
    pub record_fs: bool,
    /// Where the values of the manifest's `[secrets]` come from: by default
    /// ([`HostSecrets`](crate::secrets::HostSecrets)) warden's environment and host files, as
    /// each entry's `from` says; a service may plug in its vault here.
    pub secrets: Arc<dyn crate::secrets::SecretStore>,
    /// Single-file grants already staged for this run by the caller
    /// ([`Policy::stage_files`](crate::Policy::stage_files)), as `warden serve`'s server
    /// does for its locked-down workers: their folders are preopened as given, and the run
    /// neither stages nor copies back (the caller does, with
    /// [`StagedFiles::finish`](crate::policy::StagedFiles::finish)). `None` (the default):
    /// the run stages them itself.
    pub staged: Option<crate::policy::PreStaged>,
}

impl RunOptions {
    /// stdin/stdout/stderr as the policy's `[stdio]` says, no extra args, no audit.
    pub fn from_policy(policy: &Policy) -> RunOptions {
        use crate::manifest::{OutputMode, StdinMode};
        let out = |m: OutputMode, inherit: Sink| match m {
            OutputMode::Inherit => inherit,
            OutputMode::Null => Sink::Null,
        };
        RunOptions {
            args: Vec::new(),
            stdin: match policy.stdio.stdin {
                StdinMode::Null => Input::Null,
                StdinMode::Inherit => Input::Inherit,
            },
            stdout: out(policy.stdio.stdout, Sink::Stdout),
            stderr: out(policy.stdio.stderr, Sink::Stderr),
            audit: AuditSink::disabled(),
            run_id: None,
            lockdown: None,
            record_fs: false,
            secrets: Arc::new(crate::secrets::HostSecrets),
            staged: None,
        }
    }

    /// Both output streams captured in memory; returns the buffers.
    pub fn capture_output(&mut self) -> (Captured, Captured) {
        let out = Captured::default();
        let err = Captured::default();
        self.stdout = Sink::Capture(out.0.clone());
        self.stderr = Sink::Capture(err.0.clone());
        (out, err)
    }
}

/// Output captured by [`RunOptions::capture_output`].
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// A copy of the bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The bytes written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}
