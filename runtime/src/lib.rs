//! warden: a WebAssembly containment runtime for non-human identities.
//!
//! A workload (a WASI preview 1 core module or a preview 2 component) runs under a manifest
//! that names the identity it acts as and everything it may touch. Whatever the manifest does
//! not grant is denied, and every decision is written to an audit log.
//!
//! The pieces, in the order a run uses them:
//! - [`Manifest`] parses and validates the TOML ([`manifest`]).
//! - [`Policy`] is the manifest with command-line overrides applied; it alone turns grants
//!   into a WASI context.
//! - [`Warden`] owns the engine; [`Warden::load`] (or [`Warden::load_within`], bounded)
//!   prepares a [`Workload`] (read, pinned, compiled or taken from the [`ModuleCache`],
//!   imports checked, pre-instantiated).
//! - [`Workload::run`] (blocking) or [`Workload::run_async`] runs it in a fresh sandbox, on a
//!   thread of its own watched by the wall-time [`watchdog`], and returns a [`RunReport`].
//!
//! What a service plugs in: an [`AuditWriter`] for the records ([`AuditSink::new`]; channels
//! implement it), a [`SecretStore`] for the secrets' values ([`RunOptions::secrets`]; warden's
//! environment and host files by default). `Warden` and `Workload` are `Send + Sync` and cheap
//! to clone: load once, run from any thread or task. See `docs/embedding.md`.
//!
//! # Examples
//!
//! Load one workload and run it many times, capturing its output:
//!
//! ```
//! use std::path::Path;
//! use warden::{EngineSettings, Manifest, Outcome, Policy, RunOptions, Warden};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manifest = Manifest::from_str_at(
//!     r#"
//!     [identity]
//!     name = "noop-connector"
//!
//!     [limits]
//!     memory = "16MiB"
//!     wall = "5s"
//!     "#,
//!     Path::new("<inline>"),
//!     Path::new("."),
//! )?;
//!
//! // `(module (func (export "_start")))`, a command that does nothing.
//! let module: &[u8] = &[
//!     0, b'a', b's', b'm', 1, 0, 0, 0, // header
//!     1, 4, 1, 0x60, 0, 0, // type section: one `() -> ()`
//!     3, 2, 1, 0, // function section
//!     7, 10, 1, 6, b'_', b's', b't', b'a', b'r', b't', 0, 0, // export `_start`
//!     10, 4, 1, 2, 0, 0x0b, // code section: empty body
//! ];
//!
//! // One engine and one compiled module, reused for every run.
//! let warden = Warden::new(EngineSettings::default())?;
//! let workload =
//!     warden.load_bytes(Policy::from_manifest(manifest), Path::new("noop.wasm"), module)?;
//! for _ in 0..3 {
//!     let mut opts = RunOptions::from_policy(workload.policy());
//!     let (stdout, _stderr) = opts.capture_output();
//!     let report = workload.run(opts)?;
//!     assert_eq!(report.outcome, Outcome::Exited(0));
//!     assert_eq!(stdout.text(), "");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A tokio service that runs the workload once per request, each run with its own input,
//! output and audit records (sent to a channel the service drains into its own log):
//!
//! ```
//! use std::path::Path;
//! use warden::{AuditSink, EngineSettings, Input, Outcome, Policy, RunOptions, Warden, Workload};
//!
//! /// One request: the body goes to the guest's stdin, its stdout is the answer.
//! async fn handle(workload: &Workload, audit: &AuditSink, body: Vec<u8>) -> Option<String> {
//!     let mut opts = RunOptions::from_policy(workload.policy());
//!     opts.stdin = Input::Bytes(body);
//!     opts.audit = audit.clone();
//!     let (stdout, _stderr) = opts.capture_output();
//!     // The guest runs on a thread of its own: no runtime thread is held while it runs, and
//!     // a guest stuck in a host call is ended by the watchdog at its wall limit.
//!     match workload.run_async(opts).await {
//!         Ok(report) if report.outcome == Outcome::Exited(0) => Some(stdout.text()),
//!         Ok(_) => None,  // a trap or a limit: the audit records say which
//!         Err(_) => None, // could not start (a secret missing, say)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let module: &[u8] = &[
//! #     0, b'a', b's', b'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0,
//! #     7, 10, 1, 6, b'_', b's', b't', b'a', b'r', b't', 0, 0, 10, 4, 1, 2, 0, 0x0b,
//! # ];
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     // Loaded once at start-up, shared by every request.
//!     let warden = Warden::new(EngineSettings::default())?;
//!     let workload = warden.load_bytes(Policy::anonymous(), Path::new("noop.wasm"), module)?;
//!     let (tx, mut records) = tokio::sync::mpsc::unbounded_channel::<String>();
//!     let audit = AuditSink::new(tx);
//!
//!     let requests: Vec<_> = (0..8)
//!         .map(|i| {
//!             let (workload, audit) = (workload.clone(), audit.clone());
//!             tokio::spawn(async move { handle(&workload, &audit, vec![i]).await })
//!         })
//!         .collect();
//!     for request in requests {
//!         assert_eq!(request.await?, Some(String::new()));
//!     }
//!     drop(audit);
//!     let mut exits = 0;
//!     while let Ok(record) = records.try_recv() {
//!         exits += usize::from(record.contains(r#""event":"exit""#));
//!     }
//!     assert_eq!(exits, 8);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
// Public for warden-cli (`check --against` and `learn` judge requests by its URL rules), not
// part of the embedding API.
#[doc(hidden)]
pub mod broker;
pub mod cache;
mod egress;
pub mod error;
mod fs_audit;
mod gate;
mod grant_use;
pub mod host_memory;
mod io_runtime;
pub mod manifest;
mod net;
mod observe;
#[doc(hidden)]
pub mod policy;
mod regular_file;
mod run_pool;
mod sandbox;
#[doc(hidden)]
pub mod scan;
pub mod secrets;
mod sockets;
#[doc(hidden)]
pub mod stdio;
#[cfg(feature = "test-escape")]
mod test_escape;
pub mod watchdog;

pub use audit::{Audit, AuditFormat, AuditSink, AuditWriter, Decision};
pub use cache::{CacheStatus, ModuleCache};
pub use egress::NetLimit;
pub use error::{EngineError, LoadError, RunError};
/// The host lockdown (seccomp allow list), re-exported for embedders.
pub use host_seccomp;
pub use manifest::{Manifest, ManifestError};
pub use policy::Policy;
pub use regular_file::{
    check_output_path, open_append_private, open_regular_file, read_regular_file,
    write_private_file,
};
pub use sandbox::{
    COMPILE_BUDGET_FLOOR, Captured, EPOCH_TICK, EngineSettings, HttpReport, HttpRequest,
    HttpResponse, Input, Interruption, MAX_GUEST_EXIT, Outcome, RunOptions, RunReport, Warden,
    Workload,
};
pub use secrets::{EnvSecrets, FileSecrets, HostSecrets, SecretStore, SecretStoreError};
pub use stdio::Sink;

/// Whether this build has the `test-escape` feature (a simulated sandbox escape, for tests):
/// the `warden` binary refuses to build with it unless its own `test-escape` feature, which
/// the integration tests' escape cases depend on, is on too.
#[doc(hidden)]
pub const TEST_ESCAPE: bool = cfg!(feature = "test-escape");
