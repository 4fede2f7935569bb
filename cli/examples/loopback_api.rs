//! A loopback HTTP API for `scripts/connectors`: the very server the integration tests run the
//! example connectors against (tests/all/server.rs), as a program. It listens on 127.0.0.1 on a
//! port the system picks, prints `127.0.0.1:PORT` as its first line, answers every request with
//! `200` and a small JSON body, and prints each request it gets (`api: METHOD PATH`, and the
//! `authorization` / `x-api-key` header it carried, if any, cut short, so a run shows that
//! warden injected it). It runs until it is killed.
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../tests/all/server.rs"]
mod server;

use std::io::Write;

/// How often the request list is looked at for new requests to print.
const POLL: std::time::Duration = std::time::Duration::from_millis(50);

fn main() {
    let server = server::Server::start();
    println!("{}", server.addr());
    let _ = std::io::stdout().flush();
    let mut shown = 0;
    loop {
        let requests = server.requests();
        for r in &requests[shown..] {
            let credential = ["authorization", "x-api-key"]
                .iter()
                .find_map(|h| r.header(h).map(|v| format!(" ({h}: {})", shorten(v))))
                .unwrap_or_default();
            eprintln!("api: {} {}{credential}", r.method, r.path);
        }
        shown = requests.len();
        std::thread::sleep(POLL);
    }
}

/// The first characters of a credential, enough to recognise a demo value.
fn shorten(value: &str) -> String {
    const SHOWN: usize = 12;
    match value.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_string(),
    }
}
