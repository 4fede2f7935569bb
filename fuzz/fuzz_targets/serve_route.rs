//! `warden serve`'s reading of a request target: any path names one endpoint or none (a
//! workload name never holds `/` and is never empty); the component's path always starts
//! with `/`; query decoding never panics, and what it decodes is exactly what the client
//! encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_cli::serve::route::{self, Endpoint};

/// `s` percent-encoded as a client would put it in `arg=`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// The input, as lines: a request path, a query, then values to round-trip.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or("");
    let query = lines.next();
    match route::endpoint(path) {
        Endpoint::Runs(name) | Endpoint::Http(name) => {
            assert!(!name.is_empty() && !name.contains('/'), "name {name:?}");
            let guest = route::guest_path(name, path, query);
            assert!(guest.starts_with('/'), "guest path {guest:?} from {path:?}");
        }
        Endpoint::Health
        | Endpoint::Metrics
        | Endpoint::Workloads
        | Endpoint::Reload
        | Endpoint::Unknown => {}
    }
    if let Some(q) = query {
        let _ = route::parse_args(q);
    }
    let values: Vec<&str> = lines.collect();
    let query: Vec<String> = values.iter().map(|v| format!("arg={}", encode(v))).collect();
    let decoded = route::parse_args(&query.join("&")).expect("an encoded query decodes");
    assert_eq!(decoded, values);
});
