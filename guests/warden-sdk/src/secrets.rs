//! Brokered secrets (`warden:host/secrets`).
//!
//! The manifest's `[secrets.NAME]` tables decide what exists. Most connectors never touch
//! this module: naming a secret on a request ([`crate::http::Request::secret`]) is enough for
//! warden to inject it. A handle tells where a secret goes, and reads its value only when the
//! manifest sets `reveal = true`; every [`open`] and every [`Secret::reveal`] is audited.

use crate::Error;
use crate::bindings::warden::host::secrets as wit;

/// A granted secret. The handle holds no value.
#[derive(Debug)]
pub struct Secret {
    name: String,
    handle: wit::Secret,
}

/// Opens the secret the manifest grants under `name`.
///
/// # Errors
///
/// [`Error::NotGranted`] when the manifest has no such secret.
pub fn open(name: &str) -> Result<Secret, Error> {
    wit::open(name)
        .map(|handle| Secret {
            name: name.to_string(),
            handle,
        })
        .map_err(|e| error(name, e))
}

impl Secret {
    /// The secret's name, as in the manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL prefix of the requests warden adds this secret to, if it is injected.
    pub fn binding(&self) -> Option<String> {
        self.handle.binding()
    }

    /// The header warden sets on those requests, if it is injected.
    pub fn header(&self) -> Option<String> {
        self.handle.header()
    }

    /// The plaintext value. Audited every time.
    ///
    /// # Errors
    ///
    /// [`Error::NotRevealable`] unless the manifest sets `reveal = true` for this secret.
    pub fn reveal(&self) -> Result<String, Error> {
        self.handle.reveal().map_err(|e| error(&self.name, e))
    }
}

fn error(name: &str, e: wit::Error) -> Error {
    let name = name.to_string();
    match e {
        wit::Error::NotGranted => Error::NotGranted { name },
        wit::Error::NotRevealable => Error::NotRevealable { name },
    }
}
