//! Errors, one type per stage, each keeping the error that caused it as its
//! [`source`](std::error::Error::source):
//!
//! - [`EngineError`]: the engine could not be set up;
//! - [`LoadError`]: warden could not start the workload (exit code 125 in the CLI);
//! - [`RunError`]: what [`Workload::run`](crate::Workload::run) returns: a [`LoadError`] when
//!   the run could not start, or a failure of the run itself.
//!
//! What a guest does once it runs (an exit code, a trap, a limit) is an [`crate::Outcome`],
//! not an error.

use std::path::PathBuf;
use std::sync::Arc;

/// An underlying error, shared: the same cause may be reported by every load that needed it
/// (a linker that failed to build once fails every later load the same way).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Wraps a wasmtime error as a [`Cause`].
pub(crate) fn cause(e: wasmtime::Error) -> Cause {
    Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(e))
}

/// The engine could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up the wasm engine: {what}")]
pub struct EngineError {
    /// What could not be done.
    pub what: String,
    /// Why.
    #[source]
    pub source: Option<Cause>,
}

impl EngineError {
    pub(crate) fn new(what: impl Into<String>, source: Cause) -> EngineError {
        EngineError {
            what: what.into(),
            source: Some(source),
        }
    }
}

/// A run that could not start, or failed as a run (not as a guest: see [`crate::Outcome`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The run could not start: an argument with a NUL byte, a secret or a grant that could
    /// not be set up, a lockdown that could not be installed.
    #[error(transparent)]
    Start(#[from] LoadError),
    /// The thread the run executes on (so that the wall-time watchdog can end it) could not
    /// be started; the run was refused.
    #[error("cannot start the run's thread: {0}")]
    Thread(#[source] std::io::Error),
    /// As many runs as the engine allows were live
    /// ([`EngineSettings::max_live_runs`](crate::EngineSettings::max_live_runs)): the run was
    /// refused at once, nothing of it started. A service answers it as "busy, retry later".
    #[error("{limit} runs are live, the most this engine allows: run refused")]
    AtCapacity {
        /// The engine's `max_live_runs`.
        limit: usize,
    },
    /// The run's thread ended without a report (a bug in warden: it panicked).
    #[error("the run ended without a report")]
    Lost,
}

/// A workload could not be loaded or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("no module to run: give one on the command line or set [workload] module")]
    NoModule,
    #[error("{path}: cannot read module: {source}")]
    ReadModule {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    NotWasm { path: PathBuf, message: String },
    #[error("{path}: sha256 pin mismatch: the manifest expects {expected}, the file is {actual}")]
    PinMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: does not compile: {message}")]
    Compile {
        path: PathBuf,
        message: String,
        #[source]
        source: Cause,
    },
    #[error("{path}: imports `{import}`, which no grant provides")]
    UnknownImport {
        path: PathBuf,
        import: String,
        /// The linker's error, when it found the import missing.
        #[source]
        source: Option<Cause>,
    },
    #[error("{path}: {message}")]
    Entry { path: PathBuf, message: String },
    #[error("{0}")]
    Unsupported(String),
    /// A request for [`Workload::handle_http`](crate::Workload::handle_http) that is not valid
    /// HTTP (method, path, a header).
    #[error("bad HTTP request: {0}")]
    HttpRequest(String),
    #[error("secret `{name}`: {message}")]
    Secret {
        name: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("{path}: cannot grant: {message}")]
    Grant {
        path: PathBuf,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot lock the host down: {0}")]
    Lockdown(#[source] host_seccomp::SeccompError),
    /// The I/O threads that file grants need under a lockdown (see `io_runtime`'s blocking
    /// pool) could not be started before it; the run does not start rather than be killed
    /// at its first file stream.
    #[error("cannot start the I/O threads the file grants need before the lockdown: {0}")]
    IoThreads(#[source] std::io::Error),
    /// [`Warden::load_within`](crate::Warden::load_within): loading (compiling, on a cache
    /// miss) was still going when its budget was spent. The compilation cannot be
    /// interrupted; it goes on, abandoned, on its own thread.
    #[error("the module was still compiling when its time was up ({budget:?})")]
    CompileTimeout { budget: std::time::Duration },
    /// The thread a bounded load compiles on could not be started, or ended without a result.
    #[error("cannot run the load on a thread of its own")]
    LoadThread(#[source] Option<std::io::Error>),
    /// An argument or environment value holds a NUL byte, which the C strings WASI hands
    /// the guest cannot carry. The text names which one (`argument 2`, `[env] NAME: the value`).
    #[error("{0} contains a NUL byte, which a program's arguments and environment cannot hold")]
    NulByte(String),
}
