//! The guest side of warden: what a connector needs to run as a WebAssembly component under
//! warden's containment, without writing wasi:http plumbing by hand.
//!
//! - [`http`]: outbound HTTP over `wasi:http/outgoing-handler`. A request names the secret it
//!   means to carry with [`http::Request::secret`]; warden adds the value, the guest never
//!   holds it.
//! - [`secrets`]: the handles of `warden:host/secrets`, for a connector that wants to know
//!   where a secret is injected, or that is allowed to read one in plaintext.
//! - [`log`]: one line to stderr per message, `level: message`.
//! - [`fs`]: reading and writing granted files, with errors that name the path.
//!
//! Every refusal by warden's policy comes back as an [`Error`], never as a trap:
//! [`Error::Denied`] for a request outside the manifest's `[[http]]` rules (or one that would
//! carry a secret where its binding does not allow it), [`Error::NotGranted`] and
//! [`Error::NotRevealable`] for secrets, [`Error::Io`] for files outside the grants.
//!
//! The crate builds for `wasm32-wasip2` only. A connector that uses [`secrets`] imports
//! `warden:host/secrets` and therefore runs only under warden; one that uses only [`http`],
//! [`log`] and [`fs`] imports nothing beyond WASI.
//!
//! # Examples
//!
//! A whole connector: it reads the endpoint from a granted config file, posts a charge with
//! the `stripe` credential that warden injects, and logs the outcome. Its manifest grants
//! `/config/payments.conf` for reading, `POST` on the endpoint in `[[http]]`, and a
//! `[secrets.stripe]` bound to the API's URL.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use warden_sdk::{Error, fs, http::Request, log};
//!
//! fn charge() -> Result<u16, Error> {
//!     // One line: the URL of the charges endpoint.
//!     let config = fs::read_to_string("/config/payments.conf")?;
//!     let url = config.trim();
//!     let response = Request::post(url)
//!         .secret("stripe")
//!         .json(r#"{"amount":1999,"currency":"eur"}"#)
//!         .send()?;
//!     Ok(response.status)
//! }
//!
//! fn main() -> ExitCode {
//!     match charge() {
//!         Ok(status) => {
//!             log::info(format_args!("charge sent, the API answered {status}"));
//!             ExitCode::SUCCESS
//!         }
//!         Err(Error::Denied { url }) => {
//!             log::error(format_args!("warden refused {url}: check the manifest's [[http]]"));
//!             ExitCode::FAILURE
//!         }
//!         Err(e) => {
//!             log::error(e);
//!             ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```

mod error;
pub mod fs;
pub mod http;
pub mod log;
pub mod secrets;

pub use error::Error;

/// The bindings of warden's own host interface (`wit/warden.wit`, world `imports`: only
/// `warden:host/secrets`). The worlds a component targets, `connector` and `handler`, also
/// hold WASI, whose bindings here are the `wasip2` crate's, and the export `wasi:cli/run`:
/// generating `connector` here would make the component linker look for a `run` of
/// `wasi:cli/run@0.2.12` in the module, and fail, because the one std provides for
/// `fn main` is not that.
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "imports",
    });
}
