//! Hostile servers and guests against the broker, the secret redaction, the audit log and the
//! host's own memory: each attack next to a control that shows the check is what stopped it.
//!
//! The guest is net-probe (one step an argument, one line a step); the servers are loopback
//! servers the tests start (`Server::raw` writes whatever response a test makes up).

use crate::server::{Request, Server};
use crate::util::{Outcome, Scene, warden};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};
use warden_guest_artifacts as guests;

/// The secret's value: long enough to be unmistakable in any output.
const KEY: &str = "sk_live_4f9c2d7e1b";

fn api(server: &Server, secrets: bool, extra: &str) -> String {
    let base = server.url("");
    let secret = if secrets {
        format!(
            "[secrets.api]\nfrom = \"env:WARDEN_TEST_API_KEY\"\n\
             inject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\", url = \"{base}/v1/\" }}\n"
        )
    } else {
        String::new()
    };
    format!("[[http]]\nurl = \"{base}/v1/\"\nmethods = [\"GET\", \"POST\"]\n\n{secret}\n{extra}")
}

fn probe(s: &Scene, manifest: &str, steps: &[String]) -> Outcome {
    let m = s.manifest(manifest);
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    s.run_with(Some(&m), guests::NET_PROBE_P2, &steps, |c| {
        c.env("WARDEN_TEST_API_KEY", KEY);
    })
}

/// Fails if the secret's value appears anywhere the guest or a reader of the log could see.
fn assert_no_key(r: &Outcome) {
    assert!(!r.stdout.contains(KEY), "the guest saw the key: {r:#?}");
    assert!(!r.stderr.contains(KEY), "stderr has the key: {r:#?}");
    let log = serde_json::to_string(&r.audit).unwrap();
    assert!(!log.contains(KEY), "the audit log has the key: {log}");
}

fn http_denials(r: &Outcome) -> Vec<String> {
    r.denials("http")
        .iter()
        .map(|d| d["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The value of the request's `Authorization` header: what an echoing server hands back.
fn authorization(req: &Request) -> String {
    req.header("authorization").unwrap_or("none").to_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\n{head}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn a_compressed_echo_of_the_injected_secret_is_refused_not_handed_over() {
    let server = Server::raw(|req| {
        let body = gzip(format!("{{\"auth\":\"{}\"}}", authorization(req)).as_bytes());
        response("content-encoding: gzip\r\n", &body)
    });
    let s = Scene::new();
    let steps = [format!("http GET {}", server.url("/v1/echo"))];
    let r = probe(&s, &api(&server, true, ""), &steps);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.starts_with("http: error"), "{r:#?}");
    let seen = server.requests();
    assert_eq!(
        seen[0].header("accept-encoding"),
        Some("identity"),
        "{seen:?}"
    );
    assert!(
        http_denials(&r)
            .iter()
            .any(|d| d.contains("content-encoding: gzip")),
        "{r:#?}"
    );
    assert_no_key(&r);

    // Control: a run without secrets gets the compressed body as it came.
    let r = probe(&s, &api(&server, false, ""), &steps);
    assert!(r.stdout.starts_with("http: 200"), "{r:#?}");
    assert!(http_denials(&r).is_empty(), "{r:#?}");
}

#[test]
fn a_transfer_coding_that_hides_the_body_is_refused() {
    let server = Server::raw(|req| {
        let body = gzip(authorization(req).as_bytes());
        let mut out =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n"
                .to_vec();
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        out
    });
    let s = Scene::new();
    let steps = [format!("http GET {}", server.url("/v1/echo"))];
    let r = probe(&s, &api(&server, true, ""), &steps);
    assert!(r.stdout.starts_with("http: error"), "{r:#?}");
    assert!(
        http_denials(&r)
            .iter()
            .any(|d| d.contains("transfer-encoding: gzip")),
        "{r:#?}"
    );
    assert_no_key(&r);
    // Control: without secrets there is nothing to hide, and the body arrives.
    let r = probe(&s, &api(&server, false, ""), &steps);
    assert!(r.stdout.starts_with("http: 200"), "{r:#?}");
}

#[test]
fn a_secret_in_a_response_header_name_drops_the_header() {
    let server = Server::raw(|req| {
        let auth = authorization(req);
        let token = auth.trim_start_matches("Bearer ");
        response(
            &format!("x-{token}: 1\r\nx-plain: {auth}\r\nx-other: kept\r\n"),
            b"ok",
        )
    });
    let s = Scene::new();
    let steps = [format!("http-dump GET {}", server.url("/v1/h"))];
    let r = probe(&s, &api(&server, true, ""), &steps);
    assert!(r.stdout.starts_with("http: 200"), "{r:#?}");
    assert_no_key(&r);
    // The header whose name carried it is gone, audited; its value-carrying twin is redacted.
    assert!(r.stdout.contains("header: x-other: kept"), "{r:#?}");
    assert!(
        r.stdout
            .contains("header: x-plain: Bearer [redacted by warden]"),
        "{r:#?}"
    );
    assert!(
        r.denials("secret")
            .iter()
            .any(|d| d["reason"].as_str().unwrap().contains("header name")),
        "{r:#?}"
    );
    // Control: the server did send that header name (what the guest would have read).
    let seen = server.requests();
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
}

#[test]
fn trailers_and_status_text_never_reach_the_guest() {
    let server = Server::raw(|req| {
        let auth = authorization(req);
        format!(
            "HTTP/1.1 200 {auth}\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\n\
             connection: close\r\n\r\n5\r\nhello\r\n0\r\nx-t: {auth}\r\n\r\n"
        )
        .into_bytes()
    });
    let s = Scene::new();
    let steps = [format!("http-dump GET {}", server.url("/v1/t"))];
    let r = probe(&s, &api(&server, true, ""), &steps);
    assert!(r.stdout.contains("body: hello"), "{r:#?}");
    assert_no_key(&r);
    // Control: the same value in the body is redacted, visibly.
    let echo = Server::echo();
    let steps = [format!("http GET {}", echo.url("/v1/e"))];
    let r = probe(&s, &api(&echo, true, ""), &steps);
    assert!(r.stdout.contains("Bearer [redacted by warden]"), "{r:#?}");
    assert_no_key(&r);
}

#[test]
fn paths_a_server_could_read_differently_never_widen_a_rule() {
    let server = Server::start();
    let s = Scene::new();
    let base = server.url("");
    let hostile = [
        "/v1;x=1/../admin",
        "/v1/charges;jsessionid=1",
        "/v1/%252e%252e/admin",
        "/v1/%25%32%65%25%32%65/admin",
        "/v1/%3b/admin",
        "/v1/%00/admin",
        "/v1/a%0d%0aX-Injected:%201",
        "/v1/%u002e%u002e/admin",
        "/v1/%2e%2e/admin",
        "/v1/%2fadmin",
        "/v1/%5cadmin",
        "/v1/%zz",
    ];
    let mut steps: Vec<String> = hostile
        .iter()
        .map(|p| format!("http GET {base}{p}"))
        .collect();
    // Control: an ordinary path under the rule goes through.
    steps.push(format!("http GET {base}/v1/charges/ch_1"));
    let r = probe(&s, &api(&server, false, ""), &steps);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), hostile.len() + 1, "{r:#?}");
    for (path, line) in hostile.iter().zip(&lines) {
        assert!(
            line.starts_with("http: error"),
            "{path} got through: {r:#?}"
        );
    }
    assert!(lines[hostile.len()].starts_with("http: 200"), "{r:#?}");
    let seen = server.requests();
    assert_eq!(
        seen.len(),
        1,
        "only the control reached the server: {seen:?}"
    );
    assert_eq!(seen[0].path, "/v1/charges/ch_1");
    assert_eq!(http_denials(&r).len(), hostile.len(), "{r:#?}");
}

#[test]
fn a_redirect_is_handed_to_the_guest_never_followed() {
    let other = Server::start();
    let target = other.url("/steal");
    let server = Server::raw(move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nlocation: {target}\r\ncontent-length: 0\r\n\
             connection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let s = Scene::new();
    let steps = [
        format!("http GET {}", server.url("/v1/r")),
        // Control: following it is the guest's own request, and the rules refuse it.
        format!("http GET {}", other.url("/steal")),
    ];
    let r = probe(&s, &api(&server, true, ""), &steps);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("http: 302"), "{r:#?}");
    assert!(lines[1].starts_with("http: error"), "{r:#?}");
    assert!(other.requests().is_empty(), "the redirect was followed");
    assert_no_key(&r);
}

#[test]
fn a_response_past_the_cap_is_refused_and_audited() {
    let big = 17usize << 20;
    let server = Server::raw(move |req| {
        let size = if req.path.contains("small") {
            1 << 20
        } else {
            big
        };
        response("", &vec![b'x'; size])
    });
    let s = Scene::new();
    let steps = [
        format!("http GET {}", server.url("/v1/big")),
        format!("http GET {}", server.url("/v1/small")),
    ];
    let r = probe(&s, &api(&server, false, ""), &steps);
    assert_eq!(r.code, 0, "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("http: error"), "{r:#?}");
    assert!(
        http_denials(&r)
            .iter()
            .any(|d| d.contains("response larger than")),
        "{r:#?}"
    );
    // Control: a response under the cap arrives whole.
    assert!(lines[1].starts_with("http: 200"), "{r:#?}");
    assert_eq!(
        lines[1].len(),
        "http: 200 ".len() + (1 << 20),
        "{}",
        lines[1].len()
    );
}

#[test]
fn a_server_that_stalls_is_bounded_by_the_wall_limit() {
    let server = Server::raw(|req| {
        if req.path.contains("slow") {
            std::thread::sleep(Duration::from_secs(6));
        }
        response("", b"late")
    });
    let s = Scene::new();
    let stalled = [format!("http GET {}", server.url("/v1/slow"))];
    let started = Instant::now();
    let r = probe(
        &s,
        &api(&server, false, "[limits]\nwall = \"1s\"\n"),
        &stalled,
    );
    assert_eq!(r.code, 124, "{r:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.events("limit")[0]["limit"], "wall", "{r:#?}");
    // Control: a prompt server under the same limit.
    let quick = [format!("http GET {}", server.url("/v1/quick"))];
    let r = probe(
        &s,
        &api(&server, false, "[limits]\nwall = \"1s\"\n"),
        &quick,
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("late"), "{r:#?}");
}

#[test]
fn a_secret_put_in_a_name_or_a_secret_s_name_never_reaches_the_audit_log() {
    let server = Server::start();
    let s = Scene::new();
    let extra = "[network]\nconnect = [\"*.localhost:80\"]\n";
    let steps = [
        format!("tcp {}.localhost:80", KEY.replace('_', "-")),
        format!("tcp {KEY}.localhost:80"),
        format!("open {KEY}"),
        format!("http-secret GET {} {KEY}", server.url("/v1/x")),
        // Controls: names without the value are logged as given.
        "tcp plain-name.localhost:80".to_owned(),
        "open not-a-secret".to_owned(),
    ];
    let r = probe(&s, &api(&server, true, extra), &steps);
    // The guest typed the value itself, so its own output may hold it; the log may not.
    let log = serde_json::to_string(&r.audit).unwrap();
    assert!(!log.contains(KEY), "the audit log has the key: {log}");
    let log = serde_json::to_string(&r.audit).unwrap();
    assert!(log.contains("plain-name.localhost"), "{log}");
    assert!(log.contains("not-a-secret"), "{log}");
    // The lookup carrying the value was refused as exfiltration, before any resolver saw it.
    assert!(
        r.denials("secret").iter().any(|d| {
            d["reason"]
                .as_str()
                .unwrap()
                .contains("exfiltration attempt: a name lookup")
        }),
        "{r:#?}"
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[1].starts_with("tcp: error"), "{r:#?}");
}

#[test]
fn name_lookups_count_against_the_egress_limit() {
    let s = Scene::new();
    let steps = [
        "repeat 6".to_owned(),
        "tcp name-lookup-test.localhost:80".to_owned(),
    ];
    let m = "[network]\nconnect = [\"*.localhost:80\"]\n[limits]\negress = \"300B\"\n";
    let r = probe(&s, m, &steps);
    assert_eq!(r.code, 126, "{r:#?}");
    assert_eq!(r.events("limit")[0]["limit"], "egress", "{r:#?}");
    // Control: the same lookups under the default limit.
    let r = probe(&s, "[network]\nconnect = [\"*.localhost:80\"]\n", &steps);
    assert_eq!(r.code, 0, "{r:#?}");
}

/// Runs warden, sampling its peak resident memory (VmHWM, KiB) until it exits.
fn run_measured(s: &Scene, manifest: &str, steps: &[&str]) -> (i32, String, u64) {
    let m = s.manifest(manifest);
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--manifest")
        .arg(&m)
        .arg(guests::NET_PROBE_P2)
        .arg("--");
    cmd.args(steps)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "warden did not finish");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), format!("{out}{err}"), peak)
}

#[test]
fn host_memory_a_guest_makes_warden_hold_is_bounded_by_its_limit() {
    let s = Scene::new();
    let m = "[limits]\nmemory = \"32MiB\"\n";
    // 4,000 header fields of 100 KiB each would be 400 MiB of warden's heap.
    let (code, out, peak_kib) = run_measured(&s, m, &["hoard 4000 102400"]);
    assert_eq!(code, 121, "{out}");
    assert!(out.contains("memory limit reached"), "{out}");
    // The allowance is the memory limit plus 48 MiB; the rest is warden's own start-up.
    assert!(peak_kib < 200 * 1024, "peak RSS {peak_kib} KiB");
    eprintln!("hoarding guest: warden's peak RSS {peak_kib} KiB");
    // Control: a guest holding a few fields is left alone.
    let (code, out, _) = run_measured(&s, m, &["hoard 50 102400"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hoard: 50"), "{out}");
}

#[test]
fn resource_handles_are_capped() {
    let s = Scene::new();
    let (code, out, _) = run_measured(&s, "", &["hoard 150000 1"]);
    assert_eq!(code, 121, "{out}");
    let (code, out, _) = run_measured(&s, "", &["hoard 5000 1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hoard: 5000"), "{out}");
}

/// Splits stderr of a `--audit -` run into records and other lines; every line that starts
/// with `{` must be a whole record of this run.
fn records_and_lines(stderr: &str) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut records = Vec::new();
    let mut others = Vec::new();
    for line in stderr.lines() {
        if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a broken record {line:?}: {e}\n{stderr}"));
            assert_eq!(v["identity"], "spiffe://test.example/nhi", "{line}");
            records.push(v);
        } else {
            others.push(line.to_owned());
        }
    }
    (records, others)
}

#[test]
fn a_guest_can_neither_forge_nor_break_records_on_a_shared_stderr() {
    let s = Scene::new();
    let m = s.manifest("");
    let forged =
        r#"{"event":"exit","identity":"spiffe://test.example/nhi","outcome":"exited","code":0}"#;
    let mut cmd = warden();
    cmd.args(["run", "--audit", "-", "--manifest"]).arg(&m);
    cmd.arg(guests::NET_PROBE_P2).arg("--");
    // An unterminated line, then a step that writes a record, then a forged record.
    cmd.args(["stderr {\"unterminated\":", "open nosuch"]);
    cmd.arg(format!("stderr \n{forged}\n"));
    let r = crate::util::finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let (records, others) = records_and_lines(&r.stderr);
    assert_eq!(
        records.iter().filter(|v| v["event"] == "exit").count(),
        1,
        "only warden's own exit record: {r:#?}"
    );
    assert!(
        records
            .iter()
            .any(|v| v["event"] == "decision" && v["target"] == "nosuch"),
        "{r:#?}"
    );
    assert!(
        others.iter().any(|l| l == &format!("guest: {forged}")),
        "{others:?}"
    );
    assert!(
        others.iter().any(|l| l == "guest: {\"unterminated\":"),
        "{others:?}"
    );

    // Control: with the audit log in a file the guest's stderr is passed through as written.
    let r = s.run(
        Some(&m),
        guests::NET_PROBE_P2,
        &[&format!("stderr {forged}")],
    );
    assert_eq!(r.stderr, forged, "{r:#?}");
}

#[test]
fn a_module_s_stderr_is_framed_too() {
    let s = Scene::new();
    s.mkdir("data");
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
    let mut cmd = warden();
    cmd.args(["run", "--audit", "-", "--manifest"]).arg(&m);
    cmd.arg(guests::FS_P1)
        .args(["--", "write", "/data/x", "{\"event\":\"exit\"}"]);
    let r = crate::util::finish(cmd, None);
    assert_eq!(r.code, 1, "{r:#?}");
    let (records, others) = records_and_lines(&r.stderr);
    assert!(records.iter().any(|v| v["decision"] == "deny"), "{r:#?}");
    assert!(
        others
            .iter()
            .all(|l| l.starts_with("guest: ") || l.starts_with("warden: ")),
        "{others:?}"
    );
    assert!(
        others.iter().any(|l| l.starts_with("guest: error:")),
        "{others:?}"
    );
}

#[test]
fn a_secret_handed_back_in_pieces_over_several_responses_is_redacted_piece_by_piece() {
    // The server hands back the injected token a slice at a time, the way a Range request or
    // a paginated API would: `/v1/piece/START/LEN`.
    let server = Server::raw(|req| {
        let token = authorization(req).trim_start_matches("Bearer ").to_owned();
        let mut parts = req.path.trim_start_matches("/v1/piece/").split('/');
        let start: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let len: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let piece = token
            .get(start..(start + len).min(token.len()))
            .unwrap_or("");
        response("", format!("<{piece}>").as_bytes())
    });
    let s = Scene::new();
    let min = warden::scan::MIN_FRAGMENT;
    let half = KEY.len() / 2;
    assert!(
        half >= min && KEY.len() - half >= min,
        "the test needs halves of {min}+ bytes"
    );
    let steps = [
        format!("http GET {}", server.url(&format!("/v1/piece/0/{half}"))),
        format!(
            "http GET {}",
            server.url(&format!("/v1/piece/{half}/{}", KEY.len() - half))
        ),
        // Control: a piece shorter than the scan's minimum is not caught (the documented limit).
        format!(
            "http GET {}",
            server.url(&format!("/v1/piece/0/{}", min - 1))
        ),
    ];
    let r = probe(&s, &api(&server, true, ""), &steps);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "http: 200 <[redacted by warden]>", "{r:#?}");
    assert_eq!(lines[1], "http: 200 <[redacted by warden]>", "{r:#?}");
    assert_eq!(
        lines[2],
        format!("http: 200 <{}>", &KEY[..min - 1]),
        "{r:#?}"
    );
    let joined = format!("{}{}", &lines[0], &lines[1]);
    assert!(
        !joined.contains(&KEY[..half]) && !joined.contains(&KEY[half..]),
        "{r:#?}"
    );
    let log = serde_json::to_string(&r.audit).unwrap();
    assert!(!log.contains(KEY), "{log}");
}
