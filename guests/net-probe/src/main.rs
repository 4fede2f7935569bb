//! Runs the steps its arguments describe, in order, printing one line per step:
//!
//! - `http METHOD URL [BODY]` — a request; prints `http: STATUS BODY` or `http: error: …`;
//! - `http-secret METHOD URL NAME [BODY]` — the same, naming secret NAME for injection;
//! - `http-header METHOD URL HEADER VALUE…` — the same, with one extra header (the rest of the
//!   step, spaces included, is its value);
//! - `tcp HOST:PORT [DATA]` — connects (resolving HOST through wasi:sockets), writes DATA,
//!   prints `tcp: connected` (`tcp: sent N` / `tcp: write error: …` with DATA) or
//!   `tcp: error: …`;
//! - `tcp-split HOST:PORT PART1 PART2` — connects and writes PART1, flushes, then writes PART2
//!   on the same connection: prints `tcp: sent N+M`, `tcp: sent N, write error: …` (the
//!   second write refused), `tcp: write error: …` or `tcp: error: …`;
//! - `open NAME`, `reveal NAME` — secrets calls; print `secret: …`;
//! - `repeat N` — repeats the next step N times.
//!
//! Exits 0 whatever the steps' results: the tests read the lines and the audit log.

use std::io::Write;
use warden_sdk::http::Request;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let mut repeat = 1usize;
    while i < args.len() {
        let step: Vec<&str> = args[i].split(' ').collect();
        i += 1;
        if step[0] == "repeat" {
            repeat = step.get(1).and_then(|n| n.parse().ok()).unwrap_or(1);
            continue;
        }
        for _ in 0..repeat {
            let line = run(&step);
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
        repeat = 1;
    }
}

fn run(step: &[&str]) -> String {
    let arg = |n: usize| step.get(n).copied().unwrap_or("");
    match step[0] {
        "http" | "http-secret" | "http-header" => {
            let mut req = Request::new(arg(1), arg(2));
            let body = match step[0] {
                "http-secret" => {
                    req.secret(arg(3));
                    arg(4)
                }
                "http-header" => {
                    req.header(arg(3), &step.get(4..).unwrap_or_default().join(" "));
                    ""
                }
                _ => arg(3),
            };
            if !body.is_empty() {
                req.body(body.as_bytes().to_vec());
            }
            match req.send() {
                Ok(r) => format!("http: {} {}", r.status, r.text()),
                Err(e) => format!("http: error: {e}"),
            }
        }
        "tcp" => match std::net::TcpStream::connect(arg(1)) {
            Ok(mut s) if !arg(2).is_empty() => match s.write_all(arg(2).as_bytes()) {
                Ok(()) => format!("tcp: sent {}", arg(2).len()),
                Err(e) => format!("tcp: write error: {e}"),
            },
            Ok(_) => "tcp: connected".to_string(),
            Err(e) => format!("tcp: error: {e}"),
        },
        "tcp-split" => match std::net::TcpStream::connect(arg(1)) {
            Ok(mut s) => match s.write_all(arg(2).as_bytes()).and_then(|()| s.flush()) {
                Ok(()) => match s.write_all(arg(3).as_bytes()) {
                    Ok(()) => format!("tcp: sent {}+{}", arg(2).len(), arg(3).len()),
                    Err(e) => format!("tcp: sent {}, write error: {e}", arg(2).len()),
                },
                Err(e) => format!("tcp: write error: {e}"),
            },
            Err(e) => format!("tcp: error: {e}"),
        },
        "open" => match warden_sdk::secrets::open(arg(1)) {
            Ok(s) => format!(
                "secret: open {} binding={:?} header={:?}",
                s.name(),
                s.binding(),
                s.header()
            ),
            Err(e) => format!("secret: error: {e}"),
        },
        "reveal" => match warden_sdk::secrets::open(arg(1)).and_then(|s| s.reveal()) {
            Ok(v) => format!("secret: revealed {v}"),
            Err(e) => format!("secret: error: {e}"),
        },
        other => format!("unknown step {other:?}"),
    }
}
