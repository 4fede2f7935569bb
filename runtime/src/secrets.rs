//! Brokered secrets: `[secrets.NAME]` values held by the host, and the `warden:host/secrets`
//! interface through which a guest refers to them by name.
//!
//! Values are read from their sources (`env:NAME`, `file:PATH`) when a run starts, before the
//! host is locked down; a missing or empty source stops the start (exit 125). A guest never
//! receives a value unless the manifest sets `reveal = true`, and every reveal is audited. The
//! HTTP broker ([`crate::broker`]) adds injected secrets to requests bound for their URL and
//! uses [`Secrets::find_leak`] to refuse requests that carry a value anywhere else; the socket
//! gate (`sockets`) scans every TCP write with [`Secrets::find_leak_in_stream`].
//! What counts as carrying a value — any fragment of [`crate::scan::MIN_FRAGMENT`] bytes, in
//! any of the encodings it knows — is [`crate::scan`]'s.

use crate::audit::{Audit, Decided, Decision};
use crate::error::LoadError;
use crate::manifest::{Secret, SecretSource};
use crate::scan::{MIN_FRAGMENT, Scanner, StreamScan};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// The host side of `wit/warden.wit` (world `imports`: the `secrets` interface alone; the
/// worlds guests target, `connector` and `handler`, add WASI, which wasmtime-wasi provides).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "warden:host/imports",
        imports: { default: trappable },
        with: { "warden:host/secrets.secret": super::SecretHandle },
    });
}

use bindings::warden::host::secrets::{Error as GuestError, Host, HostSecret};

pub use crate::scan::REDACTED;

/// The fewest bytes a secret value may have: shorter values would be found by the leak scan
/// in ordinary text, refusing innocent requests.
pub const MIN_SECRET_LEN: usize = 8;

/// The most bytes a secret value may have: credentials are short (a PEM-encoded RSA-4096 key
/// is about 3.3 KiB), and the scan keeps about 60 bytes of tables per byte of value.
pub const MAX_SECRET_LEN: usize = 64 * 1024;

// The scan finds every fragment of MIN_FRAGMENT bytes, so every whole value.
const _: () = assert!(MIN_SECRET_LEN >= MIN_FRAGMENT);

/// One secret with its value, as loaded for a run.
pub struct SecretValue {
    /// The secret's manifest entry, `[secrets.NAME]`.
    pub spec: Secret,
    value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        f.debug_struct("SecretValue")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

impl SecretValue {
    /// The header value to inject: the `format` with `{secret}` replaced.
    pub fn header_value(&self) -> Option<(String, String)> {
        let inject = self.spec.inject.as_ref()?;
        Some((
            inject.header.clone(),
            inject.format.replace("{secret}", &self.value),
        ))
    }

    /// The plaintext, for the redaction of responses.
    #[cfg(test)]
    pub(crate) fn value(&self) -> &str {
        &self.value
    }
}

/// The secrets of one run.
#[derive(Debug, Default)]
pub struct Secrets {
    list: Vec<SecretValue>,
    /// Finds fragments of the values; a hit names a secret by its index in `list`.
    scanner: Scanner,
}

/// Where secret values come from: warden's environment and host files by default
/// ([`HostSecrets`]), or an embedder's vault.
///
/// A store is asked once per secret per run, when the run starts (before any lockdown), with
/// the manifest's `[secrets.NAME]` entry: it may go by the entry's `from` (as [`EnvSecrets`]
/// and [`FileSecrets`] do) or by its `name` alone (a vault keyed by name). Whatever it returns
/// is checked as every value is (not empty, [`MIN_SECRET_LEN`] to [`MAX_SECRET_LEN`] bytes);
/// an error stops the run from starting ([`LoadError::Secret`], its cause kept as the source).
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The value of `secret`.
    ///
    /// # Errors
    /// The store has no value for it, or could not read it.
    fn value(&self, secret: &Secret) -> Result<String, SecretStoreError>;
}

/// Why a [`SecretStore`] has no value: a sentence for the error message, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SecretStoreError {
    /// What is missing, in a few words (`env:API_KEY is not set`).
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SecretStoreError {
    /// An error with this message and no underlying cause.
    pub fn new(message: impl Into<String>) -> SecretStoreError {
        SecretStoreError {
            message: message.into(),
            source: None,
        }
    }
}

/// `from = "env:NAME"`: warden's own environment. Refuses `file:` sources.
///
/// # Ambient Authority
/// Reads warden's environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

impl SecretStore for EnvSecrets {
    fn value(&self, secret: &Secret) -> Result<String, SecretStoreError> {
        match &secret.from {
            SecretSource::Env(var) => std::env::var(var).map_err(|e| SecretStoreError {
                message: format!("env:{var} is not set in warden's environment"),
                source: Some(Box::new(e)),
            }),
            SecretSource::File(path) => Err(SecretStoreError::new(format!(
                "file:{}: this store reads only env: sources",
                path.display()
            ))),
        }
    }
}

/// `from = "file:PATH"`: a host file, without its trailing newline. Refuses `env:` sources.
///
/// # Ambient Authority
/// Reads the host files the manifest names.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSecrets;

impl SecretStore for FileSecrets {
    fn value(&self, secret: &Secret) -> Result<String, SecretStoreError> {
        match &secret.from {
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|text| {
                    // A trailing newline is how files end, not part of the credential.
                    text.trim_end_matches(['\n', '\r']).to_owned()
                })
                .map_err(|e| SecretStoreError {
                    message: format!("file:{}: {e}", path.display()),
                    source: Some(Box::new(e)),
                }),
            SecretSource::Env(var) => Err(SecretStoreError::new(format!(
                "env:{var}: this store reads only file: sources"
            ))),
        }
    }
}

/// The default store: `env:` sources from [`EnvSecrets`], `file:` sources from
/// [`FileSecrets`], as the manifest says.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostSecrets;

impl SecretStore for HostSecrets {
    fn value(&self, secret: &Secret) -> Result<String, SecretStoreError> {
        match &secret.from {
            SecretSource::Env(_) => EnvSecrets.value(secret),
            SecretSource::File(_) => FileSecrets.value(secret),
        }
    }
}

impl Secrets {
    /// Reads every secret's value from its source ([`HostSecrets`]).
    ///
    /// # Ambient Authority
    /// Reads warden's own environment and the host files the manifest names.
    ///
    /// # Errors
    /// [`LoadError::Secret`] when a source is unset, unreadable, empty or too short.
    pub fn load(specs: &[Secret]) -> Result<Secrets, LoadError> {
        Self::load_from(specs, &HostSecrets)
    }

    /// Reads every secret's value from `store`.
    ///
    /// # Errors
    /// [`LoadError::Secret`] when the store has no value, or it is empty or too short.
    pub fn load_from(specs: &[Secret], store: &dyn SecretStore) -> Result<Secrets, LoadError> {
        let mut list = Vec::with_capacity(specs.len());
        for spec in specs {
            let err = |message: String| LoadError::Secret {
                name: spec.name.clone(),
                message,
                source: None,
            };
            let value = store.value(spec).map_err(|e| LoadError::Secret {
                name: spec.name.clone(),
                message: e.message.clone(),
                source: Some(std::sync::Arc::new(e)),
            })?;
            if value.is_empty() {
                return Err(err(
                    "the source is empty; refusing to use an empty secret".into()
                ));
            }
            if value.len() < MIN_SECRET_LEN {
                return Err(err(format!(
                    "the value is shorter than {MIN_SECRET_LEN} bytes, too short to be told \
                     apart from ordinary data"
                )));
            }
            if value.len() > MAX_SECRET_LEN {
                return Err(err(format!(
                    "the value is longer than {MAX_SECRET_LEN} bytes; a credential is shorter"
                )));
            }
            list.push(SecretValue {
                spec: spec.clone(),
                value,
            });
        }
        Ok(Secrets::from_list(list))
    }

    fn from_list(list: Vec<SecretValue>) -> Secrets {
        // The names are in the manifest and the guest uses them: not secret, so a value that
        // begins with its own name (`vendor-key` = `vendor-key-…`) leaves the name readable.
        let scanner = Scanner::with_public(
            list.iter().map(|s| s.value.as_bytes()),
            list.iter().map(|s| s.spec.name.as_bytes()),
        );
        Secrets { list, scanner }
    }

    /// Whether the run has no secrets.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The secret called `name` (`[secrets.NAME]`), if the run has one.
    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.list.iter().find(|s| s.spec.name == name)
    }

    /// The run's secrets, in the order of the entries they were loaded from.
    pub fn iter(&self) -> impl Iterator<Item = &SecretValue> {
        self.list.iter()
    }

    /// The secrets a fragment of which (at least [`MIN_FRAGMENT`] bytes, in any encoding the
    /// scan knows) occurs in `data`.
    pub fn found_in<'a, 'd>(
        &'a self,
        data: &'d [u8],
    ) -> impl Iterator<Item = &'a SecretValue> + use<'a, 'd> {
        let found = if self.is_empty() {
            Vec::new()
        } else {
            self.scanner.found(data)
        };
        found.into_iter().filter_map(|i| self.list.get(i))
    }

    /// The first secret found in `data` that `allowed` does not let through, if any.
    pub fn find_leak<'a>(
        &'a self,
        data: &[u8],
        allowed: impl Fn(&SecretValue) -> bool,
    ) -> Option<&'a SecretValue> {
        self.found_in(data).find(|s| !allowed(s))
    }

    /// Like [`Secrets::find_leak`], for `data` written as the next piece of the stream that
    /// `stream` follows (one per TCP connection): a fragment split across writes is found in
    /// the write that completes it. The write joins the stream only when nothing is found.
    pub fn find_leak_in_stream<'a>(
        &'a self,
        stream: &mut StreamScan,
        data: &[u8],
        allowed: impl Fn(&SecretValue) -> bool,
    ) -> Option<&'a SecretValue> {
        let refused = |i: usize| self.list.get(i).is_some_and(|s| !allowed(s));
        stream
            .write(&self.scanner, data, refused)
            .and_then(|i| self.list.get(i))
    }

    /// `text` with every secret value replaced, for text that goes into the audit log.
    pub fn redact_str(&self, text: &str) -> String {
        match self.redact(text.as_bytes()) {
            Some(clean) => String::from_utf8_lossy(&clean).into_owned(),
            None => text.to_owned(),
        }
    }

    /// `data` with every fragment of a secret value replaced by [`REDACTED`] (in place: an
    /// encoded value's whole encoded run); `None` when there is none.
    pub fn redact(&self, data: &[u8]) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        self.scanner.redact(data)
    }
}

impl crate::audit::Redact for Secrets {
    fn redact_text(&self, text: &str) -> String {
        self.redact_str(text)
    }
}

/// What a guest's handle points at: the secret's name. No value.
#[derive(Debug)]
pub struct SecretHandle {
    name: String,
}

/// The per-run state behind `warden:host/secrets`.
#[derive(Debug, Clone)]
pub struct SecretsCtx {
    /// The run's secrets, with their values.
    pub secrets: Arc<Secrets>,
    /// The run's audit log: every open and reveal is recorded there.
    pub audit: Audit,
}

/// A borrow of the store's state for the secrets interface.
pub struct SecretsView<'a> {
    /// The run's secrets and audit log.
    pub ctx: &'a SecretsCtx,
    /// The store's resource table, which holds the guest's secret handles.
    pub table: &'a mut ResourceTable,
}

struct SecretsData;

impl HasData for SecretsData {
    type Data<'a> = SecretsView<'a>;
}

/// Adds `warden:host/secrets` to a component linker.
///
/// # Errors
/// The linker already defines the interface.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SecretsView<'_>,
) -> wasmtime::Result<()> {
    bindings::warden::host::secrets::add_to_linker::<T, SecretsData>(linker, view)
}

impl SecretsView<'_> {
    fn secret(&self, handle: &Resource<SecretHandle>) -> wasmtime::Result<&SecretValue> {
        let h = self.table.get(handle)?;
        // A handle is only made for a secret the run has; the list does not change.
        self.ctx
            .secrets
            .get(&h.name)
            .ok_or_else(|| wasmtime::format_err!("secret handle of an unknown secret"))
    }
}

impl Host for SecretsView<'_> {
    fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, GuestError>> {
        if self.ctx.secrets.get(&name).is_none() {
            self.ctx.audit.decision(Decided::new(
                "secret",
                &name,
                Decision::Deny,
                "open",
                "open: the manifest grants no secret by this name",
            ));
            return Ok(Err(GuestError::NotGranted));
        }
        self.ctx.audit.decision(
            Decided::new(
                "secret",
                &name,
                Decision::Allow,
                "open",
                "open: handle granted",
            )
            .by(&name),
        );
        Ok(Ok(self.table.push(SecretHandle { name })?))
    }
}

impl HostSecret for SecretsView<'_> {
    fn name(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.secret(&handle)?.spec.name.clone())
    }

    fn binding(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self
            .secret(&handle)?
            .spec
            .inject
            .as_ref()
            .map(|i| i.url.clone()))
    }

    fn header(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self
            .secret(&handle)?
            .spec
            .inject
            .as_ref()
            .map(|i| i.header.clone()))
    }

    fn reveal(
        &mut self,
        handle: Resource<SecretHandle>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        let audit = self.ctx.audit.clone();
        let s = self.secret(&handle)?;
        if !s.spec.reveal {
            audit.decision(Decided::new(
                "secret",
                &s.spec.name,
                Decision::Deny,
                "reveal",
                "reveal: the manifest does not set reveal = true",
            ));
            return Ok(Err(GuestError::NotRevealable));
        }
        audit.decision(
            Decided::new(
                "secret",
                &s.spec.name,
                Decision::Allow,
                "reveal",
                "reveal: plaintext handed to the guest (reveal = true)",
            )
            .by(&s.spec.name),
        );
        Ok(Ok(s.value.clone()))
    }

    fn drop(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Inject;
    use base64::Engine as _;

    fn secret(name: &str, value: &str) -> SecretValue {
        SecretValue {
            spec: Secret {
                name: name.into(),
                from: SecretSource::Env("X".into()),
                inject: Some(Inject {
                    header: "Authorization".into(),
                    format: "Bearer {secret}".into(),
                    url: "https://api.example.com/".into(),
                    prefix: crate::manifest::UrlPrefix::parse("https://api.example.com/")
                        .expect("a valid URL"),
                }),
                reveal: false,
            },
            value: value.into(),
        }
    }

    fn secrets(list: Vec<SecretValue>) -> Secrets {
        Secrets::from_list(list)
    }

    #[test]
    fn leaks_are_found_in_every_encoding() {
        let s = secrets(vec![secret("k", "sk_live_a/b+c=d")]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("sk_live_a/b+c=d");
        for carrier in [
            "x=sk_live_a/b+c=d".to_string(),
            format!("Basic {b64}"),
            "q=sk_live_a%2Fb%2Bc%3Dd".to_string(),
            "q=sk_live_a%2fb%2bc%3dd".to_string(),
            "736b5f6c6976655f612f622b633d64".to_string(),
            "736B5F6C6976655F612F622B633D64".to_string(),
        ] {
            assert!(
                s.find_leak(carrier.as_bytes(), |_| false).is_some(),
                "{carrier}"
            );
        }
        assert!(s.find_leak(b"nothing here", |_| false).is_none());
        assert!(s.find_leak(b"sk_live_a/b+c=d", |_| true).is_none());
    }

    #[test]
    fn encodings_that_passed_before_the_scanner_are_found() {
        let s = secrets(vec![secret("k", "sk_live_4f9c2d7e1b")]);
        let key = b"sk_live_4f9c2d7e1b";
        let every_byte: String = key.iter().map(|b| format!("%{b:02x}")).collect();
        let mixed_hex: String = key
            .iter()
            .map(|b| format!("{b:02x}"))
            .enumerate()
            .map(|(i, h)| if i % 2 == 0 { h.to_uppercase() } else { h })
            .collect();
        let basic = |user: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:sk_live_4f9c2d7e1b"))
        };
        for carrier in [
            format!("/collect?q={every_byte}"),
            format!("/collect?q={}", every_byte.to_uppercase()),
            format!("/collect?q={}", every_byte.replace('%', "%25")),
            mixed_hex,
            format!("Basic {}", basic("a")),
            format!("Basic {}", basic("ab")),
            format!("Basic {}", basic("abc")),
            format!(
                "x{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"\xffsk_live_4f9c2d7e1b")
            ),
            // A fragment: what one response of several (a Range request) could carry.
            "bytes 8-17: _4f9c2d7e1b".to_owned(),
        ] {
            assert!(
                s.find_leak(carrier.as_bytes(), |_| false).is_some(),
                "{carrier}"
            );
        }
        // A different secret, and a 7-byte fragment: not found (the documented limit).
        assert!(s.find_leak(b"sk_test_0000000000", |_| false).is_none());
        assert!(s.find_leak(b"x=4f9c2d7", |_| false).is_none());
        // An 8-byte prefix shared with another key of the kind is a fragment (documented).
        assert!(s.find_leak(b"sk_live_0000000000", |_| false).is_some());
    }

    #[test]
    fn a_value_split_across_writes_is_found_per_stream() {
        let s = secrets(vec![secret("k", "sk_live_4f9c2d7e1b")]);
        let mut stream = StreamScan::new();
        assert!(
            s.find_leak_in_stream(&mut stream, b"key=sk_li", |_| false)
                .is_none()
        );
        let leak = s.find_leak_in_stream(&mut stream, b"ve_4f9c", |_| false);
        assert_eq!(leak.map(|s| s.spec.name.as_str()), Some("k"));
        // Another connection has its own stream.
        let mut other = StreamScan::new();
        assert!(
            s.find_leak_in_stream(&mut other, b"ve_4f9c", |_| false)
                .is_none()
        );
        // A secret allowed there goes through.
        let mut stream = StreamScan::new();
        assert!(
            s.find_leak_in_stream(&mut stream, b"sk_live_4f9c2d7e1b", |_| true)
                .is_none()
        );
    }

    #[test]
    fn redaction_removes_the_value() {
        let s = secrets(vec![secret("k", "hunter2hunter2")]);
        let out = s
            .redact(b"auth: Bearer hunter2hunter2; again hunter2hunter2")
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "auth: Bearer [redacted by warden]; again [redacted by warden]"
        );
        assert!(s.redact(b"clean").is_none());
    }

    #[test]
    fn missing_empty_and_short_sources_are_errors() {
        let spec = |from| Secret {
            name: "k".into(),
            from,
            inject: None,
            reveal: false,
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("missing");
        let empty = dir.path().join("empty");
        let short = dir.path().join("short");
        let good = dir.path().join("good");
        std::fs::write(&empty, "\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&short, "abc\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&good, "rotated-value-2\n").unwrap_or_else(|e| panic!("{e}"));
        let long = dir.path().join("long");
        std::fs::write(&long, "x".repeat(MAX_SECRET_LEN + 1)).unwrap_or_else(|e| panic!("{e}"));
        for (path, fragment) in [
            (&missing, "file:"),
            (&empty, "empty"),
            (&short, "shorter than"),
            (&long, "longer than"),
        ] {
            let e = Secrets::load(&[spec(SecretSource::File(path.clone()))])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("secret `k`") && e.contains(fragment), "{e}");
        }
        let e = Secrets::load(&[spec(SecretSource::Env(
            "WARDEN_TEST_SURELY_UNSET_VARIABLE".into(),
        ))])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("not set"), "{e}");
        let ok = Secrets::load(&[spec(SecretSource::File(good))]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.get("k").map(SecretValue::value), Some("rotated-value-2"));
    }
}
