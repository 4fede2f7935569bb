//! Brokered secrets: `[secrets.NAME]` values held by the host, and the `warden:host/secrets`
//! interface through which a guest refers to them by name.
//!
//! Values are read from their sources (`env:NAME`, `file:PATH`) when a run starts, before the
//! host is locked down; a missing or empty source stops the start (exit 125). A guest never
//! receives a value unless the manifest sets `reveal = true`, and every reveal is audited. The
//! HTTP broker ([`crate::http`]) adds injected secrets to requests bound for their URL and
//! uses [`Secrets::find_leak`] to refuse requests that carry a value anywhere else.

use crate::audit::{Audit, Decision};
use crate::error::LoadError;
use crate::manifest::{Secret, SecretSource};
use base64::Engine as _;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// The host side of `wit/warden.wit`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "warden:host/connector",
        imports: { default: trappable },
        with: { "warden:host/secrets.secret": super::SecretHandle },
    });
}

use bindings::warden::host::secrets::{Error as GuestError, Host, HostSecret};

/// What is written in place of a secret value found in a response or an audit record.
pub const REDACTED: &str = "[redacted by warden]";

/// The fewest bytes a secret value may have: shorter values would be found by the leak scan
/// in ordinary text, refusing innocent requests.
pub const MIN_SECRET_LEN: usize = 8;

/// One secret with its value, as loaded for a run.
pub struct SecretValue {
    pub spec: Secret,
    value: String,
    /// The value and its common encodings, as a request could carry them.
    forms: Vec<Vec<u8>>,
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
}

impl Secrets {
    /// Reads every secret's value from its source.
    ///
    /// # Ambient Authority
    /// Reads warden's own environment and the host files the manifest names.
    ///
    /// # Errors
    /// [`LoadError::Secret`] when a source is unset, unreadable, empty or too short.
    pub fn load(specs: &[Secret]) -> Result<Secrets, LoadError> {
        let mut list = Vec::with_capacity(specs.len());
        for spec in specs {
            let err = |message: String| LoadError::Secret {
                name: spec.name.clone(),
                message,
            };
            let value = match &spec.from {
                SecretSource::Env(var) => std::env::var(var)
                    .map_err(|_| err(format!("env:{var} is not set in warden's environment")))?,
                SecretSource::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| err(format!("file:{}: {e}", path.display())))?
                    // A trailing newline is how files end, not part of the credential.
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            };
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
            let forms = encodings(&value);
            list.push(SecretValue {
                spec: spec.clone(),
                value,
                forms,
            });
        }
        Ok(Secrets { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.list.iter().find(|s| s.spec.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &SecretValue> {
        self.list.iter()
    }

    /// The secrets whose value (or an encoding of it) occurs in `data`.
    pub fn found_in<'a, 'd>(
        &'a self,
        data: &'d [u8],
    ) -> impl Iterator<Item = &'a SecretValue> + use<'a, 'd> {
        self.list
            .iter()
            .filter(|s| s.forms.iter().any(|f| contains(data, f)))
    }

    /// The first secret found in `data` that `allowed` does not let through, if any.
    pub fn find_leak<'a>(
        &'a self,
        data: &[u8],
        allowed: impl Fn(&SecretValue) -> bool,
    ) -> Option<&'a SecretValue> {
        self.found_in(data).find(|s| !allowed(s))
    }

    /// `text` with every secret value replaced, for text that goes into the audit log.
    pub fn redact_str(&self, text: &str) -> String {
        match self.redact(text.as_bytes()) {
            Some(clean) => String::from_utf8_lossy(&clean).into_owned(),
            None => text.to_owned(),
        }
    }

    /// `data` with every secret value replaced by [`REDACTED`]; `None` when there is none.
    pub fn redact(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for s in &self.list {
            for f in &s.forms {
                let current = out.as_deref().unwrap_or(data);
                if contains(current, f) {
                    out = Some(replace_all(current, f, REDACTED.as_bytes()));
                }
            }
        }
        out
    }
}

/// The forms a value can travel in: as is, base64 (standard and URL-safe, padded or not),
/// percent-encoded and hex.
fn encodings(value: &str) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let raw = value.as_bytes();
    let mut forms = vec![raw.to_vec()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(raw).into_bytes());
    }
    let (mut pct, mut pct_lower, mut hex) = (String::new(), String::new(), String::new());
    for b in raw {
        if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
            pct.push(char::from(*b));
            pct_lower.push(char::from(*b));
        } else {
            pct.push_str(&format!("%{b:02X}"));
            pct_lower.push_str(&format!("%{b:02x}"));
        }
        hex.push_str(&format!("{b:02x}"));
    }
    forms.push(pct_lower.into_bytes());
    forms.push(pct.into_bytes());
    forms.push(hex.to_uppercase().into_bytes());
    forms.push(hex.into_bytes());
    forms.sort();
    forms.dedup();
    forms
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack.len() >= needle.len()
        && haystack.windows(needle.len()).any(|w| w == needle)
}

fn replace_all(data: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data.len() - i >= needle.len() && data[i..i + needle.len()] == *needle {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
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
    pub secrets: Arc<Secrets>,
    pub audit: Audit,
}

/// A borrow of the store's state for the secrets interface.
pub struct SecretsView<'a> {
    pub ctx: &'a SecretsCtx,
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
            self.ctx.audit.decision(
                "secret",
                &name,
                Decision::Deny,
                "open: the manifest grants no secret by this name",
            );
            return Ok(Err(GuestError::NotGranted));
        }
        self.ctx
            .audit
            .decision("secret", &name, Decision::Allow, "open: handle granted");
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
            audit.decision(
                "secret",
                &s.spec.name,
                Decision::Deny,
                "reveal: the manifest does not set reveal = true",
            );
            return Ok(Err(GuestError::NotRevealable));
        }
        audit.decision(
            "secret",
            &s.spec.name,
            Decision::Allow,
            "reveal: plaintext handed to the guest (reveal = true)",
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

    fn secret(name: &str, value: &str) -> SecretValue {
        SecretValue {
            spec: Secret {
                name: name.into(),
                from: SecretSource::Env("X".into()),
                inject: Some(Inject {
                    header: "Authorization".into(),
                    format: "Bearer {secret}".into(),
                    url: "https://api.example.com/".into(),
                }),
                reveal: false,
            },
            value: value.into(),
            forms: encodings(value),
        }
    }

    #[test]
    fn leaks_are_found_in_every_encoding() {
        let s = Secrets {
            list: vec![secret("k", "sk_live_a/b+c=d")],
        };
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
    fn redaction_removes_the_value() {
        let s = Secrets {
            list: vec![secret("k", "hunter2hunter2")],
        };
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
        for (path, fragment) in [
            (&missing, "file:"),
            (&empty, "empty"),
            (&short, "shorter than"),
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
