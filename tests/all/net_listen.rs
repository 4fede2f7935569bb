//! `[network] listen` and `[network] udp`: a component may listen only on a listed address
//! and port, and exchange datagrams only with listed peers; every decision is audited and the
//! lockdown brings `listen`/`accept4` only with a listen entry. The guest is net-probe (its
//! `listen ADDR` and `udp ADDR DATA` steps); every address is loopback, and each test has a
//! control in which the same step is allowed.

use crate::util::{Outcome, Scene, finish, warden};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use warden_guest_artifacts as guests;

/// The `decision` records of capability `net` with `decision`, as (target, reason).
fn net_decisions(r: &Outcome, decision: &str) -> Vec<(String, String)> {
    r.events("decision")
        .into_iter()
        .filter(|e| e["capability"] == "net" && e["decision"] == decision)
        .map(|e| {
            (
                e["target"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs net-probe's `listen ADDR` step under `manifest`; when the guest says it is bound,
/// connects, sends `ping` and reads the echo. Returns what warden did and the echo (if any).
fn listen_run(s: &Scene, manifest: &str, addr: &str) -> (Outcome, Option<String>) {
    let m = s.manifest(manifest);
    let audit = s.path(&format!(
        "audit-listen-{}.jsonl",
        addr.replace([':', '.', '[', ']'], "_")
    ));
    let _ = std::fs::remove_file(&audit);
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--audit")
        .arg(&audit)
        .arg("--manifest")
        .arg(&m)
        .arg(guests::NET_PROBE_P2)
        .arg("--")
        .arg(format!("listen {addr}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let mut echo = None;
    if let Some(bound) = first.trim().strip_prefix("listen: bound ") {
        let bound: SocketAddr = bound.parse().unwrap();
        let started = Instant::now();
        let mut conn = loop {
            match TcpStream::connect_timeout(&bound, Duration::from_secs(2)) {
                Ok(c) => break c,
                Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("connect: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"ping\n").unwrap();
        let mut line = String::new();
        let _ = BufReader::new(&conn).read_line(&mut line);
        echo = Some(line);
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    let audit = std::fs::read_to_string(&audit)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = Outcome {
        code: status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        stdout: first + &rest,
        stderr,
        audit,
    };
    (r, echo)
}

#[test]
fn a_listed_address_accepts_a_connection_and_the_unlisted_one_is_refused() {
    let s = Scene::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (r, echo) = listen_run(&s, &format!("[network]\nlisten = [\"{addr}\"]\n"), &addr);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(echo.as_deref(), Some("ping\n"), "{r:#?}");
    assert!(
        r.stdout.contains("listen: echoed ping from 127.0.0.1:"),
        "{r:#?}"
    );
    let allowed = net_decisions(&r, "allow");
    assert!(
        allowed.iter().any(|(t, why)| *t == addr
            && why.starts_with("TcpBind")
            && why.contains(&format!("listen entry \"{addr}\""))),
        "{allowed:?}"
    );
    assert!(
        allowed
            .iter()
            .any(|(t, why)| *t == addr && why.starts_with("TcpListen")),
        "{allowed:?}"
    );
    assert!(
        allowed
            .iter()
            .any(|(t, why)| t.starts_with("127.0.0.1:") && why.starts_with("TcpAccept")),
        "the accepted peer is audited: {allowed:?}"
    );
    assert!(!r.stderr.contains("panicked"), "{r:#?}");
    assert_eq!(
        r.events("start")[0]["grants"]["listen"],
        serde_json::json!([addr]),
        "the start record lists the grant"
    );

    // Control: the same step without the grant is refused before a socket exists, and audited.
    let (r, echo) = listen_run(&s, "", &addr);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(echo, None);
    assert!(r.stdout.starts_with("listen: error:"), "{r:#?}");
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, why)| t == "tcp-socket" && why.contains("no [network]")),
        "{:#?}",
        r.audit
    );

    // With a connect entry only, the socket is made but binding is refused, with the reason.
    let (r, echo) = listen_run(&s, "[network]\nconnect = [\"127.0.0.1:9\"]\n", &addr);
    assert_eq!(echo, None);
    assert!(r.stdout.starts_with("listen: error:"), "{r:#?}");
    assert!(
        net_decisions(&r, "deny").iter().any(|(t, why)| *t == addr
            && why.starts_with("TcpBind")
            && why.contains("no [network] listen entry")),
        "{:#?}",
        r.audit
    );
}

#[test]
fn a_listed_port_does_not_allow_another_port() {
    let s = Scene::new();
    let listed = free_port();
    let other = free_port();
    let manifest = format!("[network]\nlisten = [\"127.0.0.1:{listed}\"]\n");
    let (r, echo) = listen_run(&s, &manifest, &format!("127.0.0.1:{other}"));
    assert_eq!(echo, None, "{r:#?}");
    assert!(r.stdout.starts_with("listen: error:"), "{r:#?}");
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, why)| *t == format!("127.0.0.1:{other}")
                && why.contains(&format!("port {other}"))),
        "{:#?}",
        r.audit
    );
    // An ephemeral port is another port too.
    let (r, echo) = listen_run(&s, &manifest, "127.0.0.1:0");
    assert_eq!(echo, None, "{r:#?}");
    assert!(r.stdout.starts_with("listen: error:"), "{r:#?}");
    // Control: port 0 in the entry allows any port of that address, the ephemeral one too.
    let (r, echo) = listen_run(&s, "[network]\nlisten = [\"127.0.0.1:0\"]\n", "127.0.0.1:0");
    assert_eq!(echo.as_deref(), Some("ping\n"), "{r:#?}");
    let (r2, echo) = listen_run(
        &s,
        "[network]\nlisten = [\"127.0.0.1:0\"]\n",
        &format!("127.0.0.1:{other}"),
    );
    assert_eq!(echo.as_deref(), Some("ping\n"), "{r:#?} {r2:#?}");
}

#[test]
fn a_listed_loopback_address_does_not_allow_every_interface() {
    let s = Scene::new();
    let port = free_port();
    let manifest = format!("[network]\nlisten = [\"127.0.0.1:{port}\"]\n");
    let (r, echo) = listen_run(&s, &manifest, &format!("0.0.0.0:{port}"));
    assert_eq!(echo, None, "{r:#?}");
    assert!(r.stdout.starts_with("listen: error:"), "{r:#?}");
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, why)| *t == format!("0.0.0.0:{port}") && why.contains("every interface")),
        "{:#?}",
        r.audit
    );
    // Control: listed literally, every interface is allowed (the test connects over loopback).
    let manifest = format!("[network]\nlisten = [\"0.0.0.0:{port}\"]\n");
    let (r, _) = listen_run(&s, &manifest, &format!("0.0.0.0:{port}"));
    assert!(r.stdout.starts_with("listen: bound 0.0.0.0:"), "{r:#?}");
    assert!(r.stdout.contains("listen: echoed ping"), "{r:#?}");
}

#[test]
fn bytes_sent_on_an_accepted_connection_count_as_egress() {
    let s = Scene::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // The echo of "ping\n" is 5 bytes: an egress limit of 4 refuses it.
    let (r, echo) = listen_run(
        &s,
        &format!("[network]\nlisten = [\"{addr}\"]\n\n[limits]\negress = 4\n"),
        &addr,
    );
    assert_eq!(echo.as_deref(), Some(""), "nothing echoed: {r:#?}");
    // The write fails in the guest, and the run stops with the network limit's code (maybe
    // before the guest prints the failure).
    assert_eq!(r.code, 126, "{r:#?}");
    assert!(
        r.events("limit").iter().any(|l| l["limit"] == "egress"),
        "{:#?}",
        r.audit
    );
    // Control: with room for it, the echo leaves.
    let (r, echo) = listen_run(
        &s,
        &format!("[network]\nlisten = [\"{addr}\"]\n\n[limits]\negress = 5\n"),
        &addr,
    );
    assert_eq!(echo.as_deref(), Some("ping\n"), "{r:#?}");
}

/// `warden seccomp show FILE`'s syscall names.
fn allowed_syscalls(s: &Scene, manifest: &str) -> Vec<String> {
    let m = s.manifest(manifest);
    let mut cmd = warden();
    cmd.args(["seccomp", "show"]).arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    r.stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.ends_with(" syscalls"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_lockdown_allows_listening_only_with_a_listen_entry() {
    let s = Scene::new();
    for manifest in [
        "",
        "[network]\nconnect = [\"127.0.0.1:9\"]\n",
        "[network]\nudp = [\"127.0.0.1:53\"]\n",
    ] {
        let names = allowed_syscalls(&s, manifest);
        for never in ["listen", "accept4", "accept"] {
            assert!(
                !names.iter().any(|n| n == never),
                "{never} for {manifest:?}"
            );
        }
    }
    // Control: a listen entry brings them (and the network group it needs).
    let names = allowed_syscalls(&s, "[network]\nlisten = [\"127.0.0.1:0\"]\n");
    for needed in ["listen", "accept4", "socket", "bind"] {
        assert!(names.iter().any(|n| n == needed), "{needed}: {names:?}");
    }
}

/// A loopback UDP echo server, on a thread of its own until it has been idle for a minute:
/// answers each datagram with `echo:` and its contents, from `reply_from` if given (another
/// socket, so that the reply comes from an unlisted peer). Returns its address and the count
/// of datagrams it received.
fn udp_echo(reply_from: Option<UdpSocket>) -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            count.fetch_add(1, Ordering::SeqCst);
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let from = reply_from.as_ref().unwrap_or(&socket);
            let _ = from.send_to(&reply, peer);
        }
    });
    (addr, seen)
}

/// What the server counted, once a datagram in flight had time to arrive.
fn received(seen: &AtomicUsize) -> usize {
    std::thread::sleep(Duration::from_millis(200));
    seen.load(Ordering::SeqCst)
}

fn udp_run(s: &Scene, manifest: &str, steps: &[String]) -> Outcome {
    let m = s.manifest(manifest);
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    s.run(Some(&m), guests::NET_PROBE_P2, &steps)
}

#[test]
fn udp_reaches_a_listed_peer_only() {
    let s = Scene::new();
    let (peer, server) = udp_echo(None);
    let r = udp_run(
        &s,
        &format!("[network]\nudp = [\"{peer}\"]\n"),
        &[format!("udp {peer} hello")],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        r.stdout.trim(),
        format!("udp: reply echo:hello from {peer}"),
        "{r:#?}"
    );
    assert_eq!(received(&server), 1);
    let allowed = net_decisions(&r, "allow");
    for use_ in ["UdpBind", "UdpSend", "UdpReceive"] {
        assert!(
            allowed.iter().any(|(_, why)| why.starts_with(use_)),
            "{use_}: {allowed:?}"
        );
    }
    assert!(
        allowed.iter().any(
            |(t, why)| *t == peer.to_string() && why.contains(&format!("udp entry \"{peer}\""))
        ),
        "{allowed:?}"
    );

    // Control: another port of the same address is not a listed peer; nothing is sent.
    let (other, server) = udp_echo(None);
    let r = udp_run(
        &s,
        &format!("[network]\nudp = [\"{peer}\"]\n"),
        &[format!("udp {other} hello")],
    );
    assert!(r.stdout.starts_with("udp: send error:"), "{r:#?}");
    assert_eq!(received(&server), 0, "the datagram never left");
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, why)| *t == other.to_string() && why.starts_with("UdpSend")),
        "{:#?}",
        r.audit
    );

    // Without a udp entry, no UDP socket is made at all.
    let r = udp_run(
        &s,
        "[network]\nconnect = [\"127.0.0.1:9\"]\n",
        &[format!("udp {peer} hello")],
    );
    assert!(r.stdout.starts_with("udp: bind error:"), "{r:#?}");
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, _)| t == "udp-socket"),
        "{:#?}",
        r.audit
    );
}

#[test]
fn a_reply_from_an_unlisted_peer_is_dropped_and_audited() {
    let s = Scene::new();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    let (peer, server) = udp_echo(Some(stranger));
    let r = udp_run(
        &s,
        &format!("[network]\nudp = [\"{peer}\"]\n\n[limits]\nwall = \"3s\"\n"),
        &[format!("udp {peer} hello")],
    );
    assert_eq!(received(&server), 1, "{r:#?}");
    // The guest never gets the reply: it waits until its read times out or, where the
    // target has no read timeout, until the wall limit ends the run.
    assert!(!r.stdout.contains("udp: reply"), "{r:#?}");
    assert!(
        r.code == 124 || r.stdout.contains("udp: receive error"),
        "{r:#?}"
    );
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, why)| *t == stranger_addr.to_string() && why.starts_with("UdpReceive")),
        "{:#?}",
        r.audit
    );
}

#[test]
fn datagrams_count_as_egress() {
    let s = Scene::new();
    let (peer, server) = udp_echo(None);
    let r = udp_run(
        &s,
        &format!("[network]\nudp = [\"{peer}\"]\n\n[limits]\negress = 4\n"),
        &[format!("udp {peer} hello")],
    );
    assert_eq!(r.code, 126, "{r:#?}");
    assert_eq!(received(&server), 0);
    assert!(
        r.events("limit").iter().any(|l| l["limit"] == "egress"),
        "{:#?}",
        r.audit
    );
    // Control: 5 bytes fit a limit of 5.
    let (peer, server) = udp_echo(None);
    let r = udp_run(
        &s,
        &format!("[network]\nudp = [\"{peer}\"]\n\n[limits]\negress = 5\n"),
        &[format!("udp {peer} hello")],
    );
    assert!(r.stdout.starts_with("udp: reply"), "{r:#?}");
    assert_eq!(received(&server), 1);
}

#[test]
fn check_lists_listen_and_udp_entries_and_the_handles_limit() {
    let s = Scene::new();
    let m = s.manifest(
        "[network]\nlisten = [\"127.0.0.1:0\"]\nudp = [\"127.0.0.1:53\"]\n\n[limits]\nhandles = 500\n",
    );
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let row = |needle: &str| {
        assert!(
            r.stdout.lines().any(|l| l.contains(needle)),
            "{needle:?} not in {}",
            r.stdout
        );
    };
    row("127.0.0.1:0");
    row("listen: TCP bind, listen and accept on this address, any port");
    row("udp: datagrams to and from this peer only");
    row("handles");
    assert!(
        !r.stdout.contains("no [network]: no sockets"),
        "{}",
        r.stdout
    );
    // Control: without the entries, the table says there are no sockets.
    let m = s.manifest("");
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = finish(cmd, None);
    assert!(
        r.stdout.contains("no [network]: no sockets"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_ipv6_loopback_entry_does_not_allow_every_ipv6_interface() {
    // Skipped where the host has no IPv6 loopback.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return;
    }
    let s = Scene::new();
    let manifest = "[network]\nlisten = [\"[::1]:0\"]\n";
    let (r, echo) = listen_run(&s, manifest, "[::]:0");
    assert_eq!(echo, None, "{r:#?}");
    assert!(r.stdout.starts_with("listen: error:"), "{r:#?}");
    assert!(
        net_decisions(&r, "deny")
            .iter()
            .any(|(t, why)| t.starts_with("[::]:") && why.contains("every interface")),
        "{:#?}",
        r.audit
    );
    // Control: the listed address itself, any port.
    let (r, echo) = listen_run(&s, manifest, "[::1]:0");
    assert_eq!(echo.as_deref(), Some("ping\n"), "{r:#?}");
}
