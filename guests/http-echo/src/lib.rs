//! A `wasi:http/incoming-handler` component. By path (the query after `?` is its argument):
//!
//! - `/fetch?URL` — GETs URL through `wasi:http/outgoing-handler` (so warden's `[[http]]`
//!   grants apply); answers `200 fetched STATUS BODY`, or `502 refused: ERROR`;
//! - `/file?PATH` — reads a file; answers `200` with its text, or `403 refused: ERROR`;
//! - `/spin` — loops forever (hostile: the wall or fuel limit ends it);
//! - `/trap` — panics (hostile: a trap);
//! - `/big?N` — answers N bytes of `x` (for the output limit);
//! - `/status?N` — answers status N with the body `status N` (1xx included: hostile);
//! - anything else — the echo: status 200, headers `x-echo-method`, `x-echo-path` and
//!   `x-echo-test` (the request's `x-test` header), and a body of
//!   `METHOD PATH\nx-test: VALUE\n` followed by the request's body.

use std::io::{Read, Write};
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Echo);

struct Echo;

impl wasip2::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let full = request.path_with_query().unwrap_or_default();
        let (path, query) = full.split_once('?').unwrap_or((full.as_str(), ""));
        match path {
            "/fetch" => match warden_sdk::http::Request::get(query).send() {
                Ok(r) => respond(out, 200, &[], format!("fetched {} {}", r.status, r.text())),
                Err(e) => respond(out, 502, &[], format!("refused: {e}")),
            },
            "/file" => match std::fs::read_to_string(query) {
                Ok(text) => respond(out, 200, &[], text),
                Err(e) => respond(out, 403, &[], format!("refused: {e}")),
            },
            "/spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/trap" => panic!("the handler traps on purpose"),
            "/big" => {
                let n: usize = query.parse().unwrap_or(0);
                respond(out, 200, &[], "x".repeat(n));
            }
            "/status" => {
                let n: u16 = query.parse().unwrap_or(200);
                respond(out, n, &[], format!("status {n}"));
            }
            _ => {
                let method = method_name(&request.method());
                let test = request
                    .headers()
                    .get("x-test")
                    .first()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                let mut body = format!("{method} {full}\nx-test: {test}\n");
                if let Ok(incoming) = request.consume()
                    && let Ok(mut stream) = incoming.stream()
                {
                    let mut bytes = Vec::new();
                    let _ = stream.read_to_end(&mut bytes);
                    body.push_str(&String::from_utf8_lossy(&bytes));
                }
                let headers = [
                    ("x-echo-method", method.as_str()),
                    ("x-echo-path", full.as_str()),
                    ("x-echo-test", test.as_str()),
                ];
                respond(out, 200, &headers, body);
            }
        }
    }
}

fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(s) => s.clone(),
    }
}

/// Sets the response, then writes its body and finishes it.
fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &str)], body: String) {
    let fields = Fields::new();
    for (name, value) in headers {
        let _ = fields.append(name, value.as_bytes());
    }
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        for chunk in body.as_bytes().chunks(4096) {
            if stream.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
