//! `/http/NAME/…`: an HTTP request passed to identity NAME's component when it exports
//! `wasi:http/incoming-handler` (the `wasmtime serve` model), run by one of NAME's workers
//! like any run: same queue, limits, lockdown and audit records; the component's outbound
//! requests go through the broker under its manifest's grants.

use super::{Answer, MAX_STDIN_BYTES, State, enqueue, error_reply, json_reply, proto};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Headers that describe one hop's connection, not the message (RFC 9110, 7.6.1): never
/// passed between the client and the component, in either direction, nor any header the
/// `Connection` header names. `content-length` is set from the body actually sent.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// The header of every `/http/NAME/` answer naming its run in the audit log.
const RUN_HEADER: &str = "x-warden-run";
/// The header of every `/http/NAME/` answer that ran, with the run's outcome.
const OUTCOME_HEADER: &str = "x-warden-outcome";

/// The headers of `headers` that are end to end.
fn end_to_end<'a>(headers: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let named: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    headers
        .iter()
        .copied()
        .filter(|(n, _)| {
            let n = n.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&n.as_str()) && !named.contains(&n)
        })
        .collect()
}

/// `/http/NAME/REST`: REST (with the query) is the path the component sees.
pub(super) async fn request(state: &Arc<State>, name: &str, req: Request<Incoming>) -> Answer {
    let started = Instant::now();
    let Some(ident) = state.ident(name) else {
        return error_reply(
            StatusCode::NOT_FOUND,
            &format!("no workload named `{name}`"),
        );
    };
    if !ident.http {
        return error_reply(
            StatusCode::NOT_IMPLEMENTED,
            &format!(
                "`{name}` does not export wasi:http/incoming-handler: run it with POST \
                 /v1/workloads/{name}/runs"
            ),
        );
    }
    if state.draining.load(Ordering::SeqCst) {
        return error_reply(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    let path = super::route::guest_path(name, req.uri().path(), req.uri().query());
    let b64 = base64::engine::general_purpose::STANDARD;
    let authority = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let all: Vec<(&str, &[u8])> = req
        .headers()
        .iter()
        .filter(|(n, _)| *n != hyper::header::HOST)
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let headers = end_to_end(&all)
        .into_iter()
        .map(|(n, v)| (n.to_string(), b64.encode(v)))
        .collect();
    let method = req.method().as_str().to_string();
    let (body, _held) = match super::read_body(state, req.into_body()).await {
        Ok(b) => b,
        Err(super::front::BodyError::TooLarge) => {
            return error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is limited to {MAX_STDIN_BYTES} bytes"),
            );
        }
        Err(super::front::BodyError::Busy) => return super::body_memory_busy(state),
        Err(super::front::BodyError::Read(e)) => {
            return error_reply(StatusCode::BAD_REQUEST, &format!("reading the body: {e}"));
        }
    };
    let http = proto::HttpIn {
        method,
        path,
        authority,
        headers,
        body: b64.encode(&body),
    };
    let answer = match enqueue(state, &ident, Vec::new(), Vec::new(), Some(http)).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    state.metrics().run(
        &ident.name,
        &answer.outcome,
        started.elapsed().as_secs_f64(),
    );
    let mut r = match answer.http.as_ref().filter(|h| h.status != 0) {
        // A final status only: an informational one (1xx) is no answer to the request.
        Some(out) if answer.outcome == "exited" && out.status >= 200 => component_response(out),
        other => {
            let message = match other {
                Some(h) if h.status < 200 && answer.outcome == "exited" => format!(
                    "the handler answered with the informational status {}, which is not a \
                     final answer",
                    h.status
                ),
                _ => other
                    .and_then(|h| h.message.clone())
                    .unwrap_or_else(|| answer.stderr.clone()),
            };
            json_reply(
                StatusCode::BAD_GATEWAY,
                &json!({ "run": answer.run, "outcome": answer.outcome, "code": answer.code,
                         "message": message }),
            )
        }
    };
    if let Ok(v) = HeaderValue::from_str(&answer.run) {
        r.headers_mut().insert(RUN_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&answer.outcome) {
        r.headers_mut().insert(OUTCOME_HEADER, v);
    }
    r
}

/// The component's response as sent to the client: its status, its end-to-end headers, its
/// body.
fn component_response(out: &proto::HttpOut) -> Answer {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.decode(out.body.as_bytes()).unwrap_or_default();
    let decoded: Vec<(String, Vec<u8>)> = out
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.clone(), b64.decode(v.as_bytes()).ok()?)))
        .collect();
    let mut headers = HeaderMap::new();
    let pairs: Vec<(&str, &[u8])> = decoded
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    for (n, v) in end_to_end(&pairs) {
        // warden's own headers are warden's to set.
        if n.eq_ignore_ascii_case(RUN_HEADER) || n.eq_ignore_ascii_case(OUTCOME_HEADER) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            headers.append(n, v);
        }
    }
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *r.headers_mut() = headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let h: Vec<(&str, &[u8])> = vec![
            ("Connection", b"close, X-Hop"),
            ("x-hop", b"1"),
            ("Transfer-Encoding", b"chunked"),
            ("x-test", b"kept"),
            ("content-type", b"text/plain"),
        ];
        let kept: Vec<&str> = end_to_end(&h).into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, vec!["x-test", "content-type"]);
    }
}
