//! Errors, one enum per stage. Everything here means "warden could not start the workload"
//! (exit code 125); what a guest does once it runs is an [`crate::Outcome`], not an error.

use std::path::PathBuf;

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the wasm engine: {0}")]
pub struct EngineError(pub String);

/// A workload could not be loaded or started.
#[derive(Debug, thiserror::Error)]
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
    Compile { path: PathBuf, message: String },
    #[error("{path}: imports `{import}`, which no grant provides")]
    UnknownImport { path: PathBuf, import: String },
    #[error("{path}: {message}")]
    Entry { path: PathBuf, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("secret `{name}`: {message}")]
    Secret { name: String, message: String },
    #[error("{path}: cannot grant: {message}")]
    Grant { path: PathBuf, message: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot lock the host down: {0}")]
    Lockdown(String),
    /// An argument or environment value holds a NUL byte, which the C strings WASI hands
    /// the guest cannot carry. The text names which one (`argument 2`, `[env] NAME: the value`).
    #[error("{0} contains a NUL byte, which a program's arguments and environment cannot hold")]
    NulByte(String),
}
