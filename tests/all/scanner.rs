//! The secret scanner end to end: the encodings and splits that got a value past the old
//! whole-value scan, tried by net-probe against loopback listeners these tests start — a raw
//! TCP listener for `[network]` writes, an unlisted URL for outbound HTTP. Each attack has a
//! control that differs only in carrying no secret.

use crate::server::Server;
use crate::util::{Outcome, Scene};
use base64::Engine as _;
use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use warden_guest_artifacts as guests;

/// The secret's value, as in the egress tests.
const KEY: &str = "sk_live_4f9c2d7e1b";

fn probe(s: &Scene, manifest: &str, steps: &[String]) -> Outcome {
    let m = s.manifest(manifest);
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    s.run_with(Some(&m), guests::NET_PROBE_P2, &steps, |c| {
        c.env("WARDEN_TEST_SCAN_KEY", KEY);
    })
}

/// The `decision` records for `capability` denied, as (target, reason).
fn denials(r: &Outcome, capability: &str) -> Vec<(String, String)> {
    r.denials(capability)
        .into_iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Neither the value nor the encoded forms the tests send appear in the audit log.
fn assert_audit_clean(r: &Outcome, forms: &[String]) {
    for e in &r.audit {
        let line = e.to_string();
        assert!(!line.contains(KEY), "{line}");
        for f in forms {
            assert!(!line.contains(f.as_str()), "{f} in {line}");
        }
    }
}

/// A TCP listener that takes `n` connections one after another and hands back, per
/// connection, every byte it received until the peer closed (or went quiet); then it stops.
struct Listener {
    port: u16,
    got: mpsc::Receiver<Vec<u8>>,
}

impl Listener {
    fn start(n: usize) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, got) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(n) {
                let Ok(mut conn) = conn else { return };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut data = Vec::new();
                let _ = conn.read_to_end(&mut data);
                if tx.send(data).is_err() {
                    return;
                }
            }
        });
        Listener { port, got }
    }

    /// What the next connection carried.
    fn next(&self) -> Vec<u8> {
        self.got.recv_timeout(Duration::from_secs(20)).unwrap()
    }
}

fn pct_all(v: &str) -> String {
    v.bytes().map(|b| format!("%{b:02x}")).collect()
}

#[test]
fn a_secret_fragment_split_across_two_tcp_writes_is_refused_in_the_completing_write() {
    let listener = Listener::start(4);
    let addr = format!("127.0.0.1:{}", listener.port);
    let s = Scene::new();
    let manifest = format!(
        "[network]\nconnect = [\"{addr}\"]\n\n[secrets.x]\nfrom = \"env:WARDEN_TEST_SCAN_KEY\"\n"
    );
    // Each part carries 7 bytes of the value (less than the scan's minimum on its own); the
    // two together carry 14. Then the same split percent-encoded, then the whole value.
    let first = "token=sk_live";
    let second = "_4f9c2d";
    let pct = pct_all("sk_live_4f9c2d");
    // Inside the seventh escape: 6 bytes and `%6`, then `5` and 7 bytes.
    let (pct1, pct2) = pct.split_at(20);
    let steps = vec![
        format!("tcp-split {addr} {first} {second}"),
        format!("tcp-split {addr} q={pct1} {pct2}"),
        format!("tcp-split {addr} {} {}", &KEY[..7], &KEY[7..]),
        // Control: the same first part, a harmless second one.
        format!("tcp-split {addr} {first} -and-more"),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out: Vec<&str> = r.stdout.lines().collect();
    for (n, line) in out.iter().take(3).enumerate() {
        assert!(
            line.starts_with("tcp: sent") && line.contains(", write error"),
            "step {n}: {line}\n{r:?}"
        );
    }
    assert_eq!(out[3], format!("tcp: sent {}+9", first.len()), "{r:?}");
    // The listener got each first write, never a completing one.
    assert_eq!(listener.next(), first.as_bytes());
    assert_eq!(listener.next(), format!("q={pct1}").as_bytes());
    assert_eq!(listener.next(), &KEY.as_bytes()[..7]);
    assert_eq!(listener.next(), format!("{first}-and-more").as_bytes());
    let exfil: Vec<_> = denials(&r, "secret")
        .into_iter()
        .filter(|(t, why)| t == "x" && why.starts_with("exfiltration attempt: a TCP write"))
        .collect();
    assert_eq!(exfil.len(), 3, "{exfil:?}");
    assert_audit_clean(&r, &[pct]);
}

#[test]
fn encoded_values_in_outbound_http_are_refused_as_exfiltration() {
    // The URL and the headers are scanned before the rules, so those go to a URL no rule
    // lists; a body is read only for a request a rule allows, so it goes to a listed server
    // (outside the secret's binding: it has none).
    let server = Server::start();
    let base = server.url("");
    let s = Scene::new();
    let manifest = format!(
        "[[http]]\nurl = \"{base}/allowed/\"\nmethods = [\"POST\"]\n\n\
         [secrets.x]\nfrom = \"env:WARDEN_TEST_SCAN_KEY\"\n"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let basic1 = b64.encode(format!("abc:{KEY}")); // the value at offset 4, 1 mod 3
    let basic2 = b64.encode(format!("a:{KEY}")); // at offset 2
    let mixed_hex: String = KEY
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            if i % 2 == 0 {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect();
    let every_byte = pct_all(KEY).to_uppercase();
    let steps = vec![
        format!("http GET {base}/collect?q={every_byte}"),
        format!("http-header GET {base}/collect authorization Basic {basic1}"),
        format!("http-header GET {base}/collect authorization Basic {basic2}"),
        format!("http POST {base}/allowed/upload {mixed_hex}"),
        // Controls: the same requests without the secret.
        format!("http GET {base}/collect?q={}", pct_all("harmless-value")),
        format!(
            "http-header GET {base}/collect authorization Basic {}",
            b64.encode("abc:harmless-value")
        ),
        format!("http POST {base}/allowed/upload 686172606c657373"),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(out.len(), 7, "{r:?}");
    for line in &out[..6] {
        assert!(line.contains("refused by warden"), "{line}\n{r:?}");
    }
    assert!(out[6].starts_with("http: 200"), "{r:?}");
    // Only the harmless body reached the server.
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].text(), "686172606c657373");
    let exfil: Vec<_> = denials(&r, "secret")
        .into_iter()
        .filter(|(t, why)| t == "x" && why.contains("exfiltration"))
        .collect();
    assert_eq!(exfil.len(), 4, "{exfil:?}");
    // The controls to /collect are refused only for want of a rule.
    let http = denials(&r, "http");
    assert_eq!(http.len(), 2, "{http:?}");
    for (_, why) in &http {
        assert!(why.contains("no [[http]] rule"), "{why}");
        assert!(!why.contains("exfiltration"), "{why}");
    }
    assert_audit_clean(&r, &[every_byte, basic1, basic2, mixed_hex]);
}
