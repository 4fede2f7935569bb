//! warden: a WebAssembly containment runtime for non-human identities.
//!
//! A workload (a WASI preview 1 core module or a preview 2 component) runs under a manifest
//! that names the identity it acts as and everything it may touch. Whatever the manifest does
//! not grant is denied, and every decision is written to an audit log.
//!
//! The pieces, in the order a run uses them:
//! - [`Manifest`] parses and validates the TOML ([`manifest`]).
//! - [`Policy`] is the manifest with command-line overrides applied; it alone turns grants
//!   into a WASI context ([`policy`]).
//! - [`Warden`] owns the engine; [`Warden::load`] prepares a [`Workload`] (read, pinned,
//!   compiled or taken from the [`ModuleCache`], imports checked, pre-instantiated).
//! - [`Workload::run`] runs it in a fresh sandbox and returns a [`RunReport`].
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
#![deny(unsafe_code)]

pub mod audit;
pub mod bench;
pub mod broker;
pub mod cache;
pub mod check;
pub mod error;
mod fs_audit;
pub mod host_memory;
pub mod learn;
pub mod manifest;
pub mod net;
pub mod policy;
pub mod regular_file;
pub mod sandbox;
pub mod scan;
pub mod secrets;
pub mod sockets;
pub mod stdio;
#[cfg(feature = "test-escape")]
mod test_escape;
pub mod usage;
pub mod watchdog;

pub use audit::{Audit, AuditSink, AuditWriter, Decision};
pub use cache::{CacheStatus, ModuleCache};
pub use error::{EngineError, LoadError, RunError};
/// The host lockdown (seccomp allow list), re-exported for embedders.
pub use host_seccomp;
pub use manifest::{Manifest, ManifestError};
pub use policy::Policy;
pub use regular_file::read_regular_file;
pub use sandbox::{
    Captured, EngineSettings, Input, Outcome, RunOptions, RunReport, Warden, Workload,
};
pub use secrets::{EnvSecrets, FileSecrets, HostSecrets, SecretStore, SecretStoreError};
pub use stdio::Sink;
