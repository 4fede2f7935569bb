//! The egress broker: every outbound HTTP request of a component passes through here.
//!
//! wasmtime-wasi-http builds the request from the guest's `wasi:http` calls and hands it to
//! [`Broker`] (its [`WasiHttpHooks::send_request`]). The broker, in order:
//! 1. counts it against `[limits] http-requests`;
//! 2. matches it against the `[[http]]` rules (scheme, host, port, path prefix, method);
//! 3. takes the `warden-secret` header off and checks the named secret's binding;
//! 4. reads the whole body (counted against `[limits] egress`) and refuses the request if the
//!    URL, a header or the body carries a secret's value bound for elsewhere (exfiltration);
//! 5. adds the secrets bound to this URL;
//! 6. resolves the host itself, checks every address again (loopback, private, link-local and
//!    metadata addresses only when the rule names that IP literally), connects to the checked
//!    address, and sends;
//! 7. reads the response up to [`MAX_RESPONSE_BYTES`] and redacts any secret value from it.
//!
//! Each step's refusal is an audited `decision` and reaches the guest as the `wasi:http`
//! error code that fits (`HTTP-request-denied`, `destination-IP-prohibited`, …).

use crate::audit::{Audit, Decided, Decision};
use crate::egress::EgressMeter;
use crate::manifest::HttpRule;
use crate::net;
use crate::secrets::{REDACTED, SecretValue, Secrets};
use bytes::Bytes;
use hickory_resolver::TokioResolver;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The most response body bytes a guest receives from one request (16 MiB): ample for API
/// responses, and a hostile or broken server cannot balloon the host's memory with one.
pub const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// How long connecting may take when the guest sets no timeout: a destination that does not
/// answer within this is treated as down rather than holding the run until its wall limit.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The request header through which a guest names the secret a request should carry.
pub const SECRET_HEADER: &str = "warden-secret";

pub use crate::manifest::UrlPrefix;

impl UrlPrefix {
    /// Whether `t` is at or below this prefix. A prefix path ending in `/` matches everything
    /// below it; otherwise the path must be equal or continue with `/`.
    pub fn covers(&self, t: &Target) -> bool {
        self.https == t.https
            && self.host == t.host
            && self.port == t.port
            && (self.path == "/"
                || (self.path.ends_with('/') && t.path.starts_with(&self.path))
                || t.path == self.path
                || t.path
                    .strip_prefix(&self.path)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// Where a request goes, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Without the query.
    pub path: String,
}

impl Target {
    /// # Errors
    /// The URI lacks a scheme or host, or its scheme is not http/https.
    pub fn of(uri: &http::Uri) -> Result<Target, String> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(format!("the scheme {other:?} is not http or https")),
            None => return Err("the URL has no scheme".into()),
        };
        let host = uri.host().ok_or("the URL has no host")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = match uri.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        Ok(Target {
            https,
            host,
            port,
            path,
        })
    }

    /// A path a server could read as another path is refused rather than matched: prefix
    /// rules must mean what they say whatever the server's normalisation. Refused: `.` and
    /// `..` segments (plain or encoded), encoded `/` and `\\`, a `\\`, path parameters
    /// (`;`, plain or encoded: Tomcat and Spring read `/v1;x/../admin` as `/admin`), double
    /// encoding (`%25`), `%u` escapes, malformed `%` sequences, and control bytes (plain or
    /// encoded, NUL included).
    pub(crate) fn ambiguous_path(&self) -> Option<&'static str> {
        ambiguous_path(&self.path)
    }
}

/// See [`Target::ambiguous_path`].
pub(crate) fn ambiguous_path(path: &str) -> Option<&'static str> {
    let raw = path.as_bytes();
    if raw.iter().any(|b| b.is_ascii_control() || *b >= 0x80) {
        return Some("the path has a control or non-ASCII byte");
    }
    if raw.contains(&b'\\') {
        return Some("the path has a `\\`");
    }
    if raw.contains(&b';') {
        return Some("the path has a `;` (path parameters)");
    }
    // Decode once, then look at what a server that decodes would see.
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = |b: u8| char::from(b).to_digit(16);
            match (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    // Both digits are below 16.
                    decoded.push(u8::try_from(h * 16 + l).unwrap_or(0));
                    i += 3;
                    continue;
                }
                _ => return Some("the path has a malformed or `%u` percent escape"),
            }
        }
        decoded.push(raw[i]);
        i += 1;
    }
    let slashes = |b: &[u8]| b.iter().filter(|c| **c == b'/').count();
    if slashes(&decoded) != slashes(raw) {
        return Some("the path has an encoded `/`");
    }
    if decoded.contains(&b'%') {
        return Some("the path is percent-encoded twice (`%25`)");
    }
    if decoded.contains(&b'\\') {
        return Some("the path has an encoded `\\`");
    }
    if decoded.contains(&b';') {
        return Some("the path has an encoded `;`");
    }
    if decoded.iter().any(|b| b.is_ascii_control()) {
        return Some("the path has an encoded control byte");
    }
    if decoded
        .split(|b| *b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
    {
        return Some("the path has a `.` or `..` segment (plain or encoded)");
    }
    None
}

/// One `[[http]]` rule, typed.
#[derive(Debug, Clone)]
pub struct Rule {
    pub prefix: UrlPrefix,
    pub methods: Vec<String>,
    /// As written in the manifest.
    pub url: String,
}

/// The typed `[[http]]` rules.
#[derive(Debug, Clone, Default)]
pub struct HttpRules {
    rules: Vec<Rule>,
}

impl HttpRules {
    /// The manifest's rules, whose URLs it has already typed.
    pub fn new(rules: &[HttpRule]) -> HttpRules {
        let rules = rules
            .iter()
            .map(|r| Rule {
                prefix: r.prefix.clone(),
                methods: r.methods.clone(),
                url: r.url.clone(),
            })
            .collect();
        HttpRules { rules }
    }

    /// The rules, in the manifest's order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule that allows `method` on `target`, or why none does.
    pub fn check(&self, method: &str, target: &Target) -> Result<&Rule, String> {
        if let Some(why) = target.ambiguous_path() {
            return Err(why.into());
        }
        let mut method_mismatch = None;
        for rule in &self.rules {
            if rule.prefix.covers(target) {
                if rule.methods.iter().any(|m| m == method) {
                    return Ok(rule);
                }
                method_mismatch = Some(rule);
            }
        }
        Err(match method_mismatch {
            Some(rule) => format!(
                "[[http]] {} allows {} only, not {method}",
                rule.url,
                rule.methods.join(", ")
            ),
            None => "no [[http]] rule allows this URL".into(),
        })
    }
}

/// Everything the broker needs, shared by the requests of one run.
struct Shared {
    rules: HttpRules,
    secrets: Arc<Secrets>,
    /// Each injected secret's binding, by index into `secrets`.
    bindings: Vec<(String, UrlPrefix)>,
    resolver: Option<Arc<TokioResolver>>,
    meter: Arc<EgressMeter>,
    audit: Audit,
}

/// The per-run HTTP hooks.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// The broker of one run: `rules`, and the bindings of the secrets that are injected.
    pub fn new(
        rules: HttpRules,
        secrets: Arc<Secrets>,
        resolver: Option<Arc<TokioResolver>>,
        meter: Arc<EgressMeter>,
        audit: &Audit,
    ) -> Broker {
        let mut bindings = Vec::new();
        for s in secrets.iter() {
            if let Some(inject) = &s.spec.inject {
                bindings.push((s.spec.name.clone(), inject.prefix.clone()));
            }
        }
        Broker {
            shared: Arc::new(Shared {
                rules,
                secrets,
                bindings,
                resolver,
                meter,
                audit: audit.clone(),
            }),
        }
    }
}

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

impl WasiHttpHooks for Broker {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, HttpError>> + Send> {
        drop(fut);
        let shared = self.shared.clone();
        Box::new(async move { shared.send(request, options).await })
    }
}

impl Shared {
    /// Records the refusal of operation `op` on `target` and hands back the guest's error.
    fn deny(
        &self,
        capability: &str,
        op: &str,
        target: &str,
        reason: &str,
        e: HttpError,
    ) -> HttpError {
        self.audit
            .decision(Decided::new(capability, target, Decision::Deny, op, reason));
        e
    }

    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, HttpError> {
        let (mut parts, body) = request.into_parts();
        let method = parts.method.as_str().to_owned();
        // The label goes into the audit log, so no secret value may stay in it (a guest can
        // put one in the URL).
        let label = self.secrets.redact_str(&format!("{method} {}", parts.uri));

        // 1. The request count.
        if !self.meter.take_request() {
            return Err(self.deny(
                "http",
                "request",
                &label,
                &format!("http-requests limit ({}) reached", self.meter.max_requests),
                HttpError::HttpRequestDenied,
            ));
        }

        let target = Target::of(&parts.uri).map_err(|why| {
            self.deny(
                "http",
                "request",
                &label,
                &why,
                HttpError::HttpRequestUriInvalid,
            )
        })?;

        // 2. Secrets the guest names, and secret values in the URL or the headers: an attempt
        //    to send a secret elsewhere is recorded as one, whether or not a rule allows the URL.
        self.check_named_secrets(&mut parts, &target, &label)?;
        let allowed = |s: &SecretValue| self.bound_to(s, &target);

        // 3. The rules.
        let rule = match self.rules.check(&method, &target) {
            Ok(rule) => rule,
            Err(why) => {
                return Err(self.deny(
                    "http",
                    "request",
                    &label,
                    &why,
                    HttpError::HttpRequestDenied,
                ));
            }
        };

        // 4. The body, whole, within the egress limit; then its leak scan.
        let head_bytes = head_size(&parts);
        if !self.meter.take_bytes(head_bytes) {
            return Err(self.deny(
                "http",
                "request",
                &label,
                &format!("egress limit ({} bytes) reached", self.meter.max_bytes),
                HttpError::HttpRequestDenied,
            ));
        }
        let body = self.read_body(body, &label).await?;
        if let Some(s) = self.secrets.find_leak(&body, allowed) {
            return Err(self.exfiltration(s, &label));
        }

        // 5. Injection.
        let injected = self.inject(&mut parts, &target)?;

        // 6. Resolve, check, connect. The request's head and body were counted as they were
        //    read; a request that never leaves (its host does not resolve, is refused or
        //    cannot be reached) gives them back. A name lookup's own query did leave.
        let charged = head_bytes.saturating_add(body.len() as u64);
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let (stream, addr) = self
            .connect(&target, &label, rule, connect_timeout, charged)
            .await?;
        self.record_sent(&label, rule, addr, &injected);

        // Only the path goes on the request line; the Host header carries the authority.
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = http::Uri::try_from(path).map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));

        let response = if target.https {
            let tls = tls_connector()?;
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|_| HttpError::TlsCertificateError)?;
            let stream = tls.connect(name, stream).await.map_err(HttpError::Tls)?;
            exchange(stream, request).await?
        } else {
            exchange(stream, request).await?
        };

        // 7. The response, capped and redacted.
        self.answer(response, &label).await
    }

    /// Resolves `target` and connects to it within `connect_timeout`, under the address
    /// checks of [`Shared::resolve`]. A request that never leaves gives back the `charged`
    /// bytes of its head and body; a refused connection is audited with the rule that allowed
    /// the request.
    async fn connect(
        &self,
        target: &Target,
        label: &str,
        rule: &Rule,
        connect_timeout: Duration,
        charged: u64,
    ) -> Result<(tokio::net::TcpStream, std::net::SocketAddr), HttpError> {
        let addr = match self.resolve(target, label, connect_timeout).await {
            Ok(addr) => addr,
            Err(e) => {
                self.meter.refund_bytes(charged);
                return Err(e);
            }
        };
        let stream =
            match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    self.meter.refund_bytes(charged);
                    self.audit.decision(
                        Decided::new(
                            "http",
                            label,
                            Decision::Allow,
                            "request",
                            format!("[[http]] {} (connecting to {addr} failed: {e})", rule.url),
                        )
                        .by(&rule.url),
                    );
                    return Err(HttpError::ConnectionRefused);
                }
                Err(_) => {
                    self.meter.refund_bytes(charged);
                    return Err(HttpError::ConnectionTimeout);
                }
            };
        Ok((stream, addr))
    }

    /// The `allow` records of a request that left: the rule that allowed it (with the address
    /// it went to) and each secret injected into it.
    fn record_sent(
        &self,
        label: &str,
        rule: &Rule,
        addr: std::net::SocketAddr,
        injected: &[String],
    ) {
        self.audit.decision(
            Decided::new(
                "http",
                label,
                Decision::Allow,
                "request",
                format!(
                    "[[http]] {} {} (address {addr})",
                    rule.url,
                    rule.methods.join(",")
                ),
            )
            .by(&rule.url),
        );
        for name in injected {
            self.audit.decision(
                Decided::new(
                    "secret",
                    name,
                    Decision::Allow,
                    "inject",
                    format!("injected into {label} (the URL is within its binding)"),
                )
                .by(name),
            );
        }
    }

    /// The secrets a request names (its `warden-secret` headers, removed here) must exist and
    /// be bound to `target`, and no secret value may ride in its URL or headers to a target it
    /// is not bound to: either is refused and audited as an exfiltration attempt.
    fn check_named_secrets(
        &self,
        parts: &mut http::request::Parts,
        target: &Target,
        label: &str,
    ) -> Result<(), HttpError> {
        let named: Vec<String> = parts
            .headers
            .get_all(SECRET_HEADER)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        parts.headers.remove(SECRET_HEADER);
        for name in &named {
            let Some(secret) = self.secrets.get(name) else {
                return Err(self.deny(
                    "secret",
                    "inject",
                    &self.secrets.redact_str(name),
                    &format!("named for {label}, but the manifest grants no secret by this name"),
                    HttpError::HttpRequestDenied,
                ));
            };
            if !self.bound_to(secret, target) {
                let binding = secret.spec.inject.as_ref().map_or_else(
                    || "it is not injected anywhere".to_owned(),
                    |i| format!("it is bound to {}", i.url),
                );
                return Err(self.deny(
                    "secret",
                    "exfiltration",
                    name,
                    &format!("exfiltration attempt: named for {label}, but {binding}"),
                    HttpError::HttpRequestDenied,
                ));
            }
        }
        let allowed = |s: &SecretValue| self.bound_to(s, target);
        let mut leak = self
            .secrets
            .find_leak(parts.uri.to_string().as_bytes(), allowed);
        for (name, value) in &parts.headers {
            leak = leak
                .or_else(|| self.secrets.find_leak(name.as_str().as_bytes(), allowed))
                .or_else(|| self.secrets.find_leak(value.as_bytes(), allowed));
        }
        if let Some(s) = leak {
            return Err(self.exfiltration(s, label));
        }
        Ok(())
    }

    /// Injects each secret bound to `target` into its header (marked sensitive), and asks for
    /// responses without content coding when the run has secrets: a compressed echo of an
    /// injected header would hide the value from the redaction. The names injected.
    fn inject(
        &self,
        parts: &mut http::request::Parts,
        target: &Target,
    ) -> Result<Vec<String>, HttpError> {
        if !self.secrets.is_empty() {
            parts.headers.insert(
                http::header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            parts.headers.remove(http::header::TE);
        }
        let mut injected = Vec::new();
        for s in self.secrets.iter().filter(|s| self.bound_to(s, target)) {
            let Some((header, value)) = s.header_value() else {
                continue;
            };
            let (Ok(name), Ok(mut value)) = (
                HeaderName::try_from(header.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                return Err(self.deny(
                    "secret",
                    "inject",
                    &s.spec.name,
                    "the secret's value cannot be written in an HTTP header",
                    HttpError::HttpRequestDenied,
                ));
            };
            value.set_sensitive(true);
            parts.headers.insert(name, value);
            injected.push(s.spec.name.clone());
        }
        Ok(injected)
    }

    /// The response the guest reads: refused when it is coded although identity was asked
    /// for, capped at [`MAX_RESPONSE_BYTES`], and with secret values redacted from the body
    /// and the headers (each redaction audited).
    async fn answer(
        &self,
        response: http::Response<hyper::body::Incoming>,
        label: &str,
    ) -> Result<Sent, HttpError> {
        let (mut rparts, rbody) = response.into_parts();
        if !self.secrets.is_empty()
            && let Some((header, coding)) = hidden_coding(&rparts.headers)
        {
            let reason = format!(
                "the response to {label} has {header}: {coding} although warden asked for \
                 identity; a coded body could hide a secret from the redaction"
            );
            return Err(self.deny(
                "http",
                "request",
                label,
                &reason,
                if header == "content-encoding" {
                    HttpError::HttpResponseContentCoding(Some(coding))
                } else {
                    HttpError::HttpResponseTransferCoding(Some(coding))
                },
            ));
        }
        let mut data = Vec::new();
        let mut rbody = std::pin::pin!(rbody);
        while let Some(frame) = rbody.frame().await {
            let frame = frame.map_err(HttpError::Hyper)?;
            if let Ok(chunk) = frame.into_data() {
                if (data.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
                    self.audit.decision(Decided::new(
                        "http",
                        label,
                        Decision::Deny,
                        "response",
                        format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
                    ));
                    return Err(HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BYTES)));
                }
                data.extend_from_slice(&chunk);
            }
        }
        if !self.secrets.is_empty() {
            for s in self.secrets.found_in(&data) {
                self.audit.decision(Decided::new(
                    "secret",
                    &s.spec.name,
                    Decision::Deny,
                    "redact",
                    format!(
                        "the response to {label} carried the secret's value; redacted before \
                         the guest saw it"
                    ),
                ));
            }
            if let Some(clean) = self.secrets.redact(&data) {
                data = clean;
            }
            rparts.headers = self.redact_headers(std::mem::take(&mut rparts.headers), label);
        }
        // The body was read whole; its framing headers no longer describe it.
        rparts.headers.remove(http::header::TRANSFER_ENCODING);
        rparts
            .headers
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(data.len()));
        let body: WasiBody = Full::new(Bytes::from(data))
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok((
            http::Response::from_parts(rparts, body),
            Box::new(async { Ok(()) }),
        ))
    }

    /// The response headers with secret values redacted from values, and headers whose
    /// *name* carries a value dropped (a name cannot hold the redaction marker), audited.
    fn redact_headers(&self, headers: http::HeaderMap, label: &str) -> http::HeaderMap {
        let mut clean = http::HeaderMap::with_capacity(headers.len());
        let mut current: Option<HeaderName> = None;
        for (name, mut value) in headers {
            if let Some(n) = name {
                current = Some(n);
            }
            let Some(name) = current.clone() else {
                continue;
            };
            if let Some(s) = self.secrets.found_in(name.as_str().as_bytes()).next() {
                self.audit.decision(Decided::new(
                    "secret",
                    &s.spec.name,
                    Decision::Deny,
                    "redact",
                    format!(
                        "a header name in the response to {label} carried the secret's value; \
                         the header was dropped before the guest saw it"
                    ),
                ));
                continue;
            }
            if let Some(redacted) = self.secrets.redact(value.as_bytes()) {
                value = HeaderValue::from_bytes(&redacted)
                    .unwrap_or_else(|_| HeaderValue::from_static(REDACTED));
            }
            clean.append(name, value);
        }
        clean
    }

    fn exfiltration(&self, s: &SecretValue, label: &str) -> HttpError {
        self.deny(
            "secret",
            "exfiltration",
            &s.spec.name,
            &format!(
                "exfiltration attempt: {label} carries the secret's value outside its binding"
            ),
            HttpError::HttpRequestDenied,
        )
    }

    fn bound_to(&self, s: &SecretValue, target: &Target) -> bool {
        self.bindings
            .iter()
            .any(|(name, prefix)| *name == s.spec.name && prefix.covers(target))
    }

    async fn read_body(&self, body: WasiBody, label: &str) -> Result<Vec<u8>, HttpError> {
        let mut data = Vec::new();
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Ok(chunk) = frame.into_data() {
                if !self.meter.take_bytes(chunk.len() as u64) {
                    return Err(self.deny(
                        "http",
                        "request",
                        label,
                        &format!("egress limit ({} bytes) reached", self.meter.max_bytes),
                        HttpError::HttpRequestDenied,
                    ));
                }
                data.extend_from_slice(&chunk);
            }
        }
        Ok(data)
    }

    /// The first address of the target's host that the rules allow.
    async fn resolve(
        &self,
        target: &Target,
        label: &str,
        timeout: Duration,
    ) -> Result<SocketAddr, HttpError> {
        let addrs: Vec<IpAddr> = if let Ok(ip) = target.host.parse::<IpAddr>() {
            vec![ip]
        } else {
            let Some(resolver) = &self.resolver else {
                return Err(self.deny(
                    "http",
                    "request",
                    label,
                    "no resolver is available on this host",
                    HttpError::DnsError {
                        rcode: None,
                        info_code: None,
                    },
                ));
            };
            if !self
                .meter
                .take_bytes(crate::egress::dns_query_bytes(&target.host))
            {
                return Err(self.deny(
                    "http",
                    "request",
                    label,
                    &format!("egress limit ({} bytes) reached", self.meter.max_bytes),
                    HttpError::HttpRequestDenied,
                ));
            }
            match tokio::time::timeout(timeout, resolver.lookup_ip(target.host.as_str())).await {
                Ok(Ok(found)) => found.iter().collect(),
                Ok(Err(e)) => {
                    return Err(self.deny(
                        "http",
                        "request",
                        label,
                        &format!("{} does not resolve: {e}", target.host),
                        HttpError::DnsError {
                            rcode: None,
                            info_code: None,
                        },
                    ));
                }
                Err(_) => return Err(HttpError::DnsTimeout),
            }
        };
        let mut refusals = Vec::new();
        for ip in addrs {
            let verdict = net::http_address_allowed(&target.host, ip);
            if verdict.allowed {
                return Ok(SocketAddr::new(ip, target.port));
            }
            refusals.push(verdict.reason);
        }
        Err(self.deny(
            "http",
            "request",
            label,
            &if refusals.is_empty() {
                format!("{} resolves to no address", target.host)
            } else {
                refusals.join("; ")
            },
            HttpError::DestinationIpProhibited,
        ))
    }
}

/// A content or transfer coding other than `identity` (and, for transfer, `chunked`, which
/// hyper removes): the header's name and the coding.
fn hidden_coding(headers: &http::HeaderMap) -> Option<(&'static str, String)> {
    let codings = |name: &http::header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty())
            .collect()
    };
    if let Some(c) = codings(&http::header::CONTENT_ENCODING)
        .into_iter()
        .find(|c| c != "identity")
    {
        return Some(("content-encoding", c));
    }
    codings(&http::header::TRANSFER_ENCODING)
        .into_iter()
        .find(|c| c != "identity" && c != "chunked")
        .map(|c| ("transfer-encoding", c))
}

/// Bytes of the request line and headers, as counted against the egress limit.
fn head_size(parts: &http::request::Parts) -> u64 {
    let line = parts.method.as_str().len() + parts.uri.to_string().len() + 12;
    let headers: usize = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (line + headers) as u64
}

/// The TLS client configuration: the webpki root certificates, ring's defaults. Built once.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, HttpError> {
    static CONFIG: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> =
        std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
    });
    config
        .clone()
        .map(tokio_rustls::TlsConnector::from)
        .ok_or(HttpError::TlsProtocolError)
}

/// One HTTP/1.1 exchange over `io`.
async fn exchange<S>(
    io: S,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(io)).await?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await;
    if response.is_err() {
        driver.abort();
    }
    Ok(response?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        Target::of(&uri).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn rules(list: &[(&str, &[&str])]) -> HttpRules {
        let list: Vec<HttpRule> = list
            .iter()
            .map(|(url, methods)| HttpRule {
                url: (*url).into(),
                prefix: UrlPrefix::parse(url).unwrap_or_else(|e| panic!("{e}")),
                methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            })
            .collect();
        HttpRules::new(&list)
    }

    #[test]
    fn a_rule_matches_scheme_host_port_path_and_method() {
        let r = rules(&[("https://api.example.com/v1/", &["POST"])]);
        assert!(
            r.check("POST", &target("https://api.example.com/v1/charges"))
                .is_ok()
        );
        assert!(
            r.check("POST", &target("https://API.example.com:443/v1/x?y=1"))
                .is_ok()
        );
        for url in [
            "http://api.example.com/v1/charges",
            "https://api.example.com:8443/v1/charges",
            "https://api.example.com/v2/charges",
            "https://api.example.com/v1",
            "https://evil.example.com/v1/charges",
            "https://api.example.com.evil.net/v1/charges",
        ] {
            assert!(r.check("POST", &target(url)).is_err(), "{url}");
        }
        let e = r
            .check("GET", &target("https://api.example.com/v1/charges"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("allows POST only, not GET"), "{e}");
    }

    #[test]
    fn a_prefix_without_a_slash_stops_at_a_segment() {
        let r = rules(&[("http://127.0.0.1:8080/v1/charges", &["GET"])]);
        assert!(
            r.check("GET", &target("http://127.0.0.1:8080/v1/charges"))
                .is_ok()
        );
        assert!(
            r.check("GET", &target("http://127.0.0.1:8080/v1/charges/7"))
                .is_ok()
        );
        assert!(
            r.check("GET", &target("http://127.0.0.1:8080/v1/chargesX"))
                .is_err()
        );
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_refused() {
        let r = rules(&[("http://127.0.0.1:8080/v1/", &["GET"])]);
        for url in [
            "http://127.0.0.1:8080/v1/../admin",
            "http://127.0.0.1:8080/v1/./x",
            "http://127.0.0.1:8080/v1/%2e%2e/admin",
            "http://127.0.0.1:8080/v1/..%2Fadmin",
            "http://127.0.0.1:8080/v1/a%5cb",
        ] {
            assert!(r.check("GET", &target(url)).is_err(), "{url}");
        }
    }

    #[test]
    fn paths_a_server_could_read_as_another_path_are_refused() {
        let r = rules(&[("http://127.0.0.1:8080/v1/", &["GET"])]);
        for path in [
            "/v1;x/../admin",
            "/v1/a;jsessionid=1",
            "/v1/%3b",
            "/v1/%252e%252e/admin",
            "/v1/%00",
            "/v1/%0a",
            "/v1/%7f",
            "/v1/%u002e",
            "/v1/%zz",
            "/v1/%2",
            "/v1/.%2e/admin",
        ] {
            let t = Target {
                https: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: path.into(),
            };
            assert!(r.check("GET", &t).is_err(), "{path}");
        }
        // Control: ordinary escapes are fine.
        assert!(
            r.check("GET", &target("http://127.0.0.1:8080/v1/a%20b/%41"))
                .is_ok()
        );
    }

    /// What a common server might do to a path before routing it: decode (once or twice),
    /// drop `;` parameters, read `\` as `/`, merge `//`, resolve dot segments.
    fn server_views(path: &str) -> Vec<String> {
        fn decode(p: &str) -> String {
            let b = p.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%'
                    && i + 2 < b.len() + 1
                    && let Some(v) = b
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        fn strip_params(p: &str) -> String {
            p.split('/')
                .map(|s| s.split(';').next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("/")
        }
        fn merge(p: &str) -> String {
            let mut out = p.replace('\\', "/");
            while out.contains("//") {
                out = out.replace("//", "/");
            }
            out
        }
        fn dots(p: &str) -> String {
            let mut stack: Vec<&str> = Vec::new();
            for seg in p.split('/').skip(1) {
                match seg {
                    "." => {}
                    ".." => {
                        stack.pop();
                    }
                    s => stack.push(s),
                }
            }
            format!("/{}", stack.join("/"))
        }
        let once = decode(path);
        let twice = decode(&once);
        [path.to_owned(), once, twice]
            .iter()
            .flat_map(|p| [p.clone(), strip_params(p)])
            .map(|p| dots(&merge(&p)))
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// No path the rule allows becomes a path outside it after any normalisation a server
        /// might apply: the rule means the same to warden and to the server.
        #[test]
        fn no_allowed_path_leaves_the_rule_after_normalisation(
            segs in proptest::collection::vec(proptest::sample::select(vec![
                "v1", "admin", "a", ".", "..", "%2e", "%2E%2e", "%2f", "%2F", "%25", "%252e",
                "%3b", ";x", "a;b=..", "\\", "%5c", "%00", "%0d%0a", "", "%u002e", "%41",
                "%", "%2", "a%20b", "..;", ".%2e",
            ]), 0..6)
        ) {
            let r = rules(&[("http://127.0.0.1:8080/v1/", &["GET"])]);
            let path = format!("/v1/{}", segs.join("/"));
            let t = Target { https: false, host: "127.0.0.1".into(), port: 8080, path: path.clone() };
            if r.check("GET", &t).is_ok() {
                for view in server_views(&path) {
                    proptest::prop_assert!(
                        view.starts_with("/v1/") || view == "/v1",
                        "{} is allowed but a server may read it as {}", path, view
                    );
                }
            }
        }
    }
}
