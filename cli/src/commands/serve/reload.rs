//! Reloading the manifests of a running `warden serve` (SIGHUP, `POST /v1/reload`), without
//! dropping a run.
//!
//! Every `--manifest` path given at start is read again. An identity whose manifest bytes and
//! module hash are both as before keeps its workers. A changed one gets a new version (an
//! [`Ident`] of its own, with its own queue) whose first worker must load before anything is
//! swapped: new runs then go to the new version, while the old one's workers finish the runs
//! they hold and those already queued, and end. A manifest that cannot be loaded (unreadable,
//! invalid, module missing, a worker that fails to start, an identity renamed) leaves the old
//! version serving and says why: in the reload's answer, on stderr and in the audit log as an
//! `error` record of that identity. Reloads are serialized by [`State::reloading`].

use super::{
    Answer, Arc, Ident, Policy, State, StatusCode, audit_log_writable, error_reply, json_reply,
    spawn_worker, worker_task,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use warden::{Audit, Manifest, ManifestError};

/// The manifest at `path` as served: its policy and the SHA-256 (hex) of the very bytes it
/// was parsed from.
///
/// # Errors
/// As [`Manifest::from_file`].
pub(super) fn read_manifest(path: &Path) -> Result<(Policy, String), ManifestError> {
    let read_err = |source| ManifestError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = warden::read_regular_file(path).map_err(read_err)?;
    let digest = hex(&Sha256::digest(&bytes));
    let text = String::from_utf8(bytes).map_err(|_| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })?;
    // Relative paths in a manifest are relative to its folder, as `Manifest::from_file` has it.
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let manifest = Manifest::from_str_at(&text, path, &base_dir)?;
    Ok((Policy::from_manifest(manifest), digest))
}

/// The SHA-256 (hex) of the file at `path`, or `None` if it cannot be read.
pub(super) fn manifest_digest(path: &Path) -> Option<String> {
    warden::read_regular_file(path)
        .ok()
        .map(|b| hex(&Sha256::digest(&b)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reload token in `path`: its text without the trailing line break.
///
/// # Errors
/// The file cannot be read, or holds no token.
pub(super) fn read_token(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = warden::read_regular_file(path)
        .map_err(|e| format!("{}: cannot read the reload token: {e}", path.display()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(format!(
            "{}: the reload token file is empty",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Whether `given` is `token`, in time that depends on neither (both are hashed first, so
/// not even the length is compared directly).
fn token_matches(given: &[u8], token: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(token));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Why `POST /v1/reload` from `peer` with `headers` is refused, if it is (see [`refusal_of`]).
fn refusal(state: &State, peer: SocketAddr, headers: &hyper::HeaderMap) -> Option<&'static str> {
    let authorization = headers
        .get(hyper::header::AUTHORIZATION)
        .map(hyper::header::HeaderValue::as_bytes);
    refusal_of(state.reload_token.as_deref(), peer.ip(), authorization)
}

/// Why a reload asked by `peer` with the `Authorization` value `authorization` is refused,
/// if it is: with a `token` configured, the request must carry it (loopback or not); without
/// one, it must come from a loopback address.
fn refusal_of(
    token: Option<&[u8]>,
    peer: std::net::IpAddr,
    authorization: Option<&[u8]>,
) -> Option<&'static str> {
    match token {
        Some(token) => match authorization.and_then(|v| v.strip_prefix(b"Bearer ")) {
            None => Some("no `Authorization: Bearer` token"),
            Some(given) if token_matches(given, token) => None,
            Some(_) => Some("a wrong token"),
        },
        None if peer.to_canonical().is_loopback() => None,
        None => Some("not from a loopback address, and the server has no --reload-token-file"),
    }
}

/// `POST /v1/reload`.
pub(super) async fn request<B>(
    state: &Arc<State>,
    req: &hyper::Request<B>,
    peer: SocketAddr,
) -> Answer {
    if let Some(why) = refusal(state, peer, req.headers()) {
        let message = format!("reload refused: {why} (from {peer})");
        eprintln!("warden: serve: {message}");
        // The server's own record: no identity, no run.
        Audit::with_run_id(state.sink.clone(), "", "").error(&message, None);
        return error_reply(StatusCode::FORBIDDEN, &message);
    }
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return error_reply(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    let report = reload(state, &format!("POST /v1/reload from {peer}")).await;
    let status = if report.failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    json_reply(status, &report.to_json())
}

/// What one reload did.
pub(super) struct Report {
    /// Identities now served by a new version.
    reloaded: Vec<String>,
    /// Identities whose manifest and module were as before.
    unchanged: Vec<String>,
    /// Manifests that could not be loaded: path, identity, why. The old version serves on.
    failed: Vec<(String, String, String)>,
}

impl Report {
    fn to_json(&self) -> serde_json::Value {
        let failed: Vec<_> = self
            .failed
            .iter()
            .map(|(m, i, e)| json!({ "manifest": m, "identity": i, "error": e }))
            .collect();
        json!({ "reloaded": self.reloaded, "unchanged": self.unchanged, "failed": failed })
    }
}

/// Reads every manifest again and serves each changed identity's new version (see the module
/// doc); `cause` says what asked for it, in the log.
pub(super) async fn reload(state: &Arc<State>, cause: &str) -> Report {
    let _one_at_a_time = state.reloading.lock().await;
    let mut report = Report {
        reloaded: Vec::new(),
        unchanged: Vec::new(),
        failed: Vec::new(),
    };
    for (path, name) in &state.sources {
        let Some(current) = state.ident(name) else {
            continue;
        };
        match reload_one(state, path, &current).await {
            Ok(true) => report.reloaded.push(name.clone()),
            Ok(false) => report.unchanged.push(name.clone()),
            Err(why) => {
                let message = format!(
                    "reload of {} ({cause}): {why}; the version loaded before serves on",
                    path.display()
                );
                eprintln!("warden: serve: {name}: {message}");
                Audit::new(state.sink.clone(), &current.id).error(&message, None);
                report
                    .failed
                    .push((path.display().to_string(), name.clone(), why));
            }
        }
    }
    state.metrics().reload(report.failed.is_empty());
    eprintln!(
        "warden: serve: reload ({cause}): {} reloaded, {} unchanged, {} failed",
        report.reloaded.len(),
        report.unchanged.len(),
        report.failed.len()
    );
    report
}

/// Reloads one identity from `path`: `Ok(true)` when a new version now serves it, `Ok(false)`
/// when nothing changed, `Err` (why) when the old version serves on.
async fn reload_one(state: &Arc<State>, path: &Path, current: &Arc<Ident>) -> Result<bool, String> {
    let (policy, manifest_sha256, module_sha256) = {
        let (path, audit) = (path.to_owned(), state.audit_path.clone());
        tokio::task::spawn_blocking(move || check(&path, audit.as_deref()))
            .await
            .map_err(|e| format!("reading the manifest: {e}"))??
    };
    if policy.identity.name != current.name {
        return Err(format!(
            "it now names identity `{}`, not `{}`: a reload keeps the identities the server \
             started with (restart it to rename one)",
            policy.identity.name, current.name
        ));
    }
    if manifest_sha256 == current.manifest_sha256 && module_sha256 == current.sha256 {
        return Ok(false);
    }
    let mut next = Ident::new(&policy, manifest_sha256, state.queue);
    next.sha256 = module_sha256;
    // The new version's first worker loads before anything changes: one that cannot start
    // leaves the old version serving.
    let (proc, ready) = spawn_worker(state, &next).await?;
    next.kind = ready.kind;
    next.http = ready.http;
    let next = Arc::new(next);
    let old = state
        .idents
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(next.name.clone(), next.clone());
    tokio::spawn(worker_task(state.clone(), next.clone(), Some(proc)));
    if let Some(old) = old {
        old.retired.send_replace(true);
        // From now on a run can only be queued for the new version (`enqueue` moves on to
        // it); the old queue's runs are still taken by the old workers.
        old.rx.lock().await.close();
    }
    eprintln!(
        "warden: serve: {}: reloaded (module sha256 {})",
        next.name, next.sha256
    );
    Ok(true)
}

/// The checks of a reloaded manifest that need no worker, as at start: it parses, its guest
/// cannot write the audit log, its module can be read. Returns its
/// policy, its bytes' SHA-256 and its module's.
fn check(path: &Path, audit: Option<&Path>) -> Result<(Policy, String, String), String> {
    let (policy, manifest_sha256) = read_manifest(path).map_err(|e| e.to_string())?;
    if let Some(e) = audit.and_then(|a| audit_log_writable(&policy, a)) {
        return Err(e);
    }
    let module_sha256 = match &policy.module {
        Some(module) => warden::read_regular_file(module)
            .map(|b| hex(&Sha256::digest(&b)))
            .map_err(|e| format!("{}: cannot read the module: {e}", module.display()))?,
        None => String::new(),
    };
    Ok((policy, manifest_sha256, module_sha256))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_very_token_matches() {
        assert!(token_matches(b"s3cret", b"s3cret"));
        assert!(!token_matches(b"s3cret", b"s3cre"));
        assert!(!token_matches(b"s3cret ", b"s3cret"));
        assert!(!token_matches(b"", b"s3cret"));
    }

    #[test]
    fn without_a_token_only_loopback_peers_may_reload_and_with_one_only_its_holder() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for loopback in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(refusal_of(None, ip(loopback), None), None, "{loopback}");
        }
        for remote in [
            "10.0.0.1",
            "192.168.1.2",
            "::ffff:10.0.0.1",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(refusal_of(None, ip(remote), None).is_some(), "{remote}");
        }
        let token = Some(&b"t0ken"[..]);
        for peer in ["127.0.0.1", "10.0.0.1"] {
            let refused = |auth: Option<&[u8]>| refusal_of(token, ip(peer), auth);
            assert!(refused(None).is_some(), "{peer}");
            assert!(refused(Some(b"Bearer t0kem")).is_some(), "{peer}");
            assert!(refused(Some(b"Basic t0ken")).is_some(), "{peer}");
            assert!(refused(Some(b"t0ken")).is_some(), "{peer}");
            assert_eq!(refused(Some(b"Bearer t0ken")), None, "{peer}");
        }
    }

    #[test]
    fn a_token_file_loses_its_line_break_and_must_hold_something() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\r\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), b"abc");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token(&path).unwrap_err().contains("empty"));
        assert!(read_token(&dir.path().join("none")).is_err());
    }
}
