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
//! - `listen ADDR` — binds a TCP socket to ADDR and listens (printing `listen: bound ADDR`
//!   with the port it got, or `listen: error: …`), accepts one connection, reads one line
//!   from it and writes it back: prints `listen: echoed LINE from PEER` or
//!   `listen: error: …`;
//! - `udp ADDR DATA` — sends DATA in one datagram to ADDR from an ephemeral port and waits
//!   for one reply (asking for a 5 s read timeout, which wasm32-wasip2's std may not honour):
//!   prints `udp: reply DATA from PEER`, `udp: send error: …`, `udp: receive error: …` or
//!   `udp: bind error: …`;
//! - `open NAME`, `reveal NAME` — secrets calls; print `secret: …`;
//! - `http-dump METHOD URL` — a request; prints `http: STATUS`, then `header: NAME: VALUE`
//!   for each response header, then `body: BODY`;
//! - `hoard N SIZE` — makes N `wasi:http` fields resources, each holding one header value of
//!   SIZE bytes, and keeps them all; prints `hoard: N` (if it gets that far);
//! - `stderr TEXT` — writes TEXT to stderr without a newline;
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
        "http-dump" => match Request::new(arg(1), arg(2)).send() {
            Ok(r) => {
                let mut out = format!("http: {}", r.status);
                for (name, value) in &r.headers {
                    out.push_str(&format!("\nheader: {name}: {value}"));
                }
                out.push_str(&format!("\nbody: {}", r.text()));
                out
            }
            Err(e) => format!("http: error: {e}"),
        },
        "hoard" => {
            let n: usize = arg(1).parse().unwrap_or(0);
            let size: usize = arg(2).parse().unwrap_or(1);
            let value = vec![b'a'; size];
            let mut kept = Vec::with_capacity(n);
            for i in 0..n {
                let fields = wasip2::http::types::Fields::new();
                if let Err(e) = fields.append("x-hoard", &value) {
                    return format!("hoard: error after {i}: {e:?}");
                }
                kept.push(fields);
            }
            let line = format!("hoard: {}", kept.len());
            std::mem::forget(kept);
            line
        }
        "stderr" => {
            let _ = std::io::stderr().write_all(arg(1).as_bytes());
            let _ = std::io::stderr().flush();
            "stderr: written".to_string()
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
        "listen" => listen(arg(1)),
        "udp" => udp(arg(1), arg(2)),
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

/// The `listen` step: bind, listen, accept one connection, echo one line.
fn listen(addr: &str) -> String {
    use std::io::{BufRead, BufReader};
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => return format!("listen: error: {e}"),
    };
    match listener.local_addr() {
        Ok(a) => println!("listen: bound {a}"),
        Err(e) => println!("listen: bound (unknown address: {e})"),
    }
    let _ = std::io::stdout().flush();
    let (stream, peer) = match listener.accept() {
        Ok(conn) => conn,
        Err(e) => return format!("listen: error: accept: {e}"),
    };
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    if let Err(e) = reader.read_line(&mut line) {
        return format!("listen: error: read: {e}");
    }
    let mut out = &stream;
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => format!("listen: echoed {} from {peer}", line.trim_end()),
        Err(e) => format!("listen: error: write: {e}"),
    }
}

/// The `udp` step: one datagram out, one reply back.
fn udp(addr: &str, data: &str) -> String {
    let local = if addr.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = match std::net::UdpSocket::bind(local) {
        Ok(s) => s,
        Err(e) => return format!("udp: bind error: {e}"),
    };
    if let Err(e) = socket.send_to(data.as_bytes(), addr) {
        return format!("udp: send error: {e}");
    }
    let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut buf = [0u8; 1500];
    match socket.recv_from(&mut buf) {
        Ok((n, peer)) => format!(
            "udp: reply {} from {peer}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => format!("udp: receive error: {e}"),
    }
}
