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

/// A workload could not be loaded or started. `warden run` ends with exit code 125 on any of
/// them, except [`LoadError::CompileTimeout`] (124).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The manifest could not be read or is not valid. warden's loads and runs do not return
    /// it (they take a [`Policy`](crate::Policy), built from a manifest already validated); it
    /// lets code that reads a manifest and loads its workload `?` both into one error.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// [`Warden::load`](crate::Warden::load) was given a policy without a module: neither
    /// `[workload] module` nor the command line named one.
    #[error("no module to run: give one on the command line or set [workload] module")]
    NoModule,
    /// The module could not be read: missing, unreadable, or not a regular file (a FIFO or a
    /// device is refused without being opened).
    #[error("{path}: cannot read module: {source}")]
    ReadModule {
        /// The module's path, made absolute when it could be.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly module or component: empty, without the wasm magic, or
    /// of a binary version warden does not support.
    #[error("{path}: {message}")]
    NotWasm {
        /// The module's path.
        path: PathBuf,
        /// What is wrong with the bytes.
        message: String,
    },
    /// The module's SHA-256 is not the `[workload] sha256` pin: refused before anything was
    /// compiled or run.
    #[error("{path}: sha256 pin mismatch: the manifest expects {expected}, the file is {actual}")]
    PinMismatch {
        /// The module's path.
        path: PathBuf,
        /// The pin, lower-case hex.
        expected: String,
        /// The module's SHA-256, lower-case hex.
        actual: String,
    },
    /// wasmtime could not compile the module, or could not prepare its copy-on-write memory
    /// image.
    #[error("{path}: does not compile: {message}")]
    Compile {
        /// The module's path.
        path: PathBuf,
        /// wasmtime's error, with its causes.
        message: String,
        /// wasmtime's error.
        #[source]
        source: Cause,
    },
    /// The module imports something no grant provides (for a core module, anything outside
    /// `wasi_snapshot_preview1`). `warden run` also audits it as a `deny` of capability
    /// `import`.
    #[error("{path}: imports `{import}`, which no grant provides")]
    UnknownImport {
        /// The module's path.
        path: PathBuf,
        /// The import (`module::name` for a core module), or the linker's message when the
        /// linker found it missing.
        import: String,
        /// The linker's error, when it found the import missing.
        #[source]
        source: Option<Cause>,
    },
    /// The entry point cannot be called: no command entry point (`_start`, `wasi:cli/run`) nor
    /// HTTP handler, no export by the name `[workload] invoke` gives or one of the wrong type;
    /// or [`Workload::run`](crate::Workload::run) of an HTTP handler, or
    /// [`Workload::handle_http`](crate::Workload::handle_http) of a workload that is not one.
    #[error("{path}: {message}")]
    Entry {
        /// The module's path.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// The policy asks for what this workload or engine cannot enforce: `[network]`,
    /// `[[http]]`, `[secrets]` or `[workload] cwd` with a core module, or `[limits] fuel` with
    /// an engine built without [`EngineSettings::fuel`](crate::EngineSettings::fuel). The text
    /// names it.
    #[error("{0}")]
    Unsupported(String),
    /// A request for [`Workload::handle_http`](crate::Workload::handle_http) that is not valid
    /// HTTP (method, path, a header).
    #[error("bad HTTP request: {0}")]
    HttpRequest(String),
    /// A secret has no usable value: the [`SecretStore`](crate::secrets::SecretStore) failed,
    /// or the value is empty, shorter than
    /// [`MIN_SECRET_LEN`](crate::secrets::MIN_SECRET_LEN) or longer than
    /// [`MAX_SECRET_LEN`](crate::secrets::MAX_SECRET_LEN) bytes.
    #[error("secret `{name}`: {message}")]
    Secret {
        /// The secret's name, the `NAME` of `[secrets.NAME]`.
        name: String,
        /// What is wrong, never the value.
        message: String,
        /// The store's [`SecretStoreError`](crate::secrets::SecretStoreError), when the store
        /// failed.
        #[source]
        source: Option<Cause>,
    },
    /// A `[[files]]` grant could not be set up: a folder could not be preopened, or a single
    /// file could not be staged (not a regular file, larger than `[limits] staged-file`,
    /// unreadable).
    #[error("{path}: cannot grant: {message}")]
    Grant {
        /// The grant's host path, or the staging folder that could not be preopened.
        path: PathBuf,
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The engine could not build what the load needs (a linker, the filesystem audit shim).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// [`RunOptions::lockdown`](crate::RunOptions::lockdown) was set and the seccomp filter
    /// could not be installed (no seccomp on this system, say).
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
    CompileTimeout {
        /// The budget the load was given.
        budget: std::time::Duration,
    },
    /// The thread a bounded load compiles on could not be started, or ended without a result.
    #[error("cannot run the load on a thread of its own")]
    LoadThread(#[source] Option<std::io::Error>),
    /// An argument or environment value holds a NUL byte, which the C strings WASI hands
    /// the guest cannot carry. The text names which one (`argument 2`, `[env] NAME: the value`).
    #[error("{0} contains a NUL byte, which a program's arguments and environment cannot hold")]
    NulByte(String),
}
