//! `warden serve`'s front door against hostile clients: slow request heads (slowloris), idle
//! connections, more connections than the cap, request bodies that would pile up in memory,
//! malformed query escapes and a handler's informational status. Each attack runs while a
//! good client keeps asking, and each has a control that the same server serves.

use crate::guests;
use crate::serve::{Serve, manifest};
use crate::util::Scene;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn hello(s: &Scene) -> std::path::PathBuf {
    manifest(s, "hello", guests::HELLO_P1, "")
}

/// Whether the server closed `conn` (a read sees the end, or a reset) within `within`.
fn closed_within(conn: &TcpStream, within: Duration) -> bool {
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    let mut reader = conn;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_request_heads_are_cut_off_while_a_good_client_is_answered() {
    let s = Scene::new();
    let m = hello(&s);
    let serve = Serve::start(
        &s,
        &[&m],
        &["--header-timeout", "1s", "--idle-timeout", "30s"],
    );
    // 200 slowloris connections: each starts a head and trickles a byte now and then.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut c = TcpStream::connect(&serve.addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        for c in &mut slow {
            let _ = c.write_all(b"a");
        }
        assert_eq!(
            serve.get("/healthz").status,
            200,
            "a good client is answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cut = slow
        .iter()
        .filter(|c| closed_within(c, Duration::from_secs(2)))
        .count();
    assert_eq!(cut, 200, "every slow head was cut off");
    assert_eq!(
        serve.metric("warden_front_door_total{reason=\"header timeout\"}"),
        Some(200.0)
    );

    // Control: a head sent slowly but whole within the timeout is answered.
    let mut c = TcpStream::connect(&serve.addr).unwrap();
    for part in [
        "GET /healthz HTTP/1.1\r\n",
        "Host: x\r\n",
        "Connection: close\r\n\r\n",
    ] {
        c.write_all(part.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn idle_connections_are_closed_and_a_busy_keep_alive_one_is_not() {
    let s = Scene::new();
    let m = hello(&s);
    let serve = Serve::start(&s, &[&m], &["--idle-timeout", "1s"]);
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&serve.addr).unwrap())
        .collect();
    // Control: one keep-alive connection asks every 300 ms for 2 s, and stays open.
    let mut busy = TcpStream::connect(&serve.addr).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        busy.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = busy.read(&mut buf).unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "the busy connection still answers"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let cut = idle
        .iter()
        .filter(|c| closed_within(c, Duration::from_secs(2)))
        .count();
    assert_eq!(cut, 100, "every idle connection was closed");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let s = Scene::new();
    let m = hello(&s);
    let serve = Serve::start(
        &s,
        &[&m],
        &["--max-connections", "50", "--idle-timeout", "30s"],
    );
    let held: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&serve.addr).unwrap())
        .collect();
    // Give the server time to admit them all.
    std::thread::sleep(Duration::from_millis(300));
    let extra: Vec<TcpStream> = (0..250)
        .map(|_| TcpStream::connect(&serve.addr).unwrap())
        .collect();
    let refused = extra
        .iter()
        .filter(|c| closed_within(c, Duration::from_secs(2)))
        .count();
    assert_eq!(refused, 250, "each connection past the cap was closed");
    // Control: once the held ones go, a client is served again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(serve.get("/healthz").status, 200);
    assert!(
        serve
            .metric("warden_connections_refused_total")
            .is_some_and(|n| n >= 250.0)
    );
    assert_eq!(serve.stop(), 0);
}

#[test]
fn request_bodies_held_across_connections_are_bounded() {
    let s = Scene::new();
    let m = manifest(
        &s,
        "hello",
        guests::HELLO_P1,
        "[stdio]\nstdin = \"inherit\"\n",
    );
    let serve = Serve::start(&s, &[&m], &["--max-body-memory", "8MiB"]);
    // Three clients each send 3 MiB of a 4 MiB body and hold the rest: the third passes
    // the bound as it arrives and is answered 503 at once.
    let part = vec![b'x'; 3 << 20];
    let mut holders = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(&serve.addr).unwrap();
        c.write_all(
            format!(
                "POST /v1/workloads/hello/runs HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                4 << 20
            )
            .as_bytes(),
        )
        .unwrap();
        let _ = c.write_all(&part);
        c.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 256];
        let answer = match c.read(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(_) => String::new(),
        };
        answers.push(answer);
        holders.push(c);
    }
    assert!(
        answers[0].is_empty() && answers[1].is_empty(),
        "{answers:?}"
    );
    assert!(answers[2].starts_with("HTTP/1.1 503"), "{answers:?}");
    assert!(answers[2].contains("max-body-memory"), "{answers:?}");
    // Control: the held bodies gone, a body is taken again.
    drop(holders);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(serve.run("hello", &[], &vec![b'y'; 1 << 20]).status, 200);
    assert_eq!(serve.stop(), 0);
}

#[test]
fn a_malformed_query_escape_is_refused_and_a_well_formed_one_decoded() {
    let s = Scene::new();
    let m = manifest(&s, "probe", guests::PROBE_P1, "");
    let serve = Serve::start(&s, &[&m], &[]);
    for bad in ["%+1", "%-1", "%1", "%zz", "%"] {
        let r = serve.request(
            "POST",
            &format!("/v1/workloads/probe/runs?arg=args&arg={bad}"),
            b"",
        );
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(r.body.contains("bad percent-escape"), "{bad}: {r:?}");
    }
    // Control: %2B is `+`, `+` a space.
    let v = serve
        .request("POST", "/v1/workloads/probe/runs?arg=args&arg=a%2Bb+c", b"")
        .json();
    assert!(
        v["stdout"].as_str().unwrap().ends_with("args\na+b c\n"),
        "{v}"
    );
    assert_eq!(serve.stop(), 0);
}

#[test]
fn a_handlers_informational_status_is_answered_502_with_the_outcome() {
    let s = Scene::new();
    let m = manifest(&s, "echo", guests::HTTP_ECHO_P2, "");
    let serve = Serve::start(&s, &[&m], &[]);
    let r = serve.get("/http/echo/status?103");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("informational status 103"), "{r:?}");
    assert!(r.body.contains("\"outcome\":\"exited\""), "{r:?}");
    // Control: a final status passes through.
    let r = serve.get("/http/echo/status?201");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body, "status 201");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let s = Scene::new();
    let m = hello(&s);
    // The server with few descriptors: its clients use them up.
    let serve = crate::serve::Serve::start_wrapped(
        &s,
        &[&m],
        &["--idle-timeout", "30s"],
        &["prlimit", "--nofile=64:64", "--"],
    );
    let flood: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(&serve.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let stderr = std::fs::read_to_string(&serve.stderr).unwrap_or_default();
    assert!(stderr.contains("out of file descriptors"), "{stderr}");
    assert_eq!(
        stderr.matches("out of file descriptors").count(),
        1,
        "said once: {stderr}"
    );
    // Control: the descriptors freed, the server answers again.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = TcpStream::connect(&serve.addr) {
            let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = c.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no answer after the flood");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(serve.stop(), 0);
}
