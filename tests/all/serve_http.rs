//! `warden serve` under `/http/NAME/`: components exporting `wasi:http/incoming-handler` get
//! the request and answer it, with their manifest's grants on their outbound side, their
//! limits, and their audit records. Each test starts its own server and stops it.

use crate::guests;
use crate::serve::{Reply, Serve, exits, manifest};
use crate::server::Server;
use crate::util::Scene;
use serde_json::Value;

/// The value of header `name` in a reply's head (names compared without case).
fn header(r: &Reply, name: &str) -> Option<String> {
    r.head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The audit records of the run a reply names in `x-warden-run`.
fn records(serve: &Serve, r: &Reply) -> Vec<Value> {
    let run = header(r, "x-warden-run").unwrap_or_else(|| panic!("no run: {r:?}"));
    serve
        .audit()
        .into_iter()
        .filter(|rec| rec["run"] == run.as_str())
        .collect()
}

#[test]
fn the_echo_gets_method_path_headers_and_body_and_non_handlers_are_refused() {
    let s = Scene::new();
    let echo = manifest(&s, "echo", guests::HTTP_ECHO_P2, "");
    let command = manifest(&s, "hello", guests::HELLO_P2, "");
    let serve = Serve::start(&s, &[&echo, &command], &[]);

    let r = serve.request_with(
        "POST",
        "/http/echo/a/b?q=1",
        &["X-Test: hi there"],
        b"body!",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "POST /a/b?q=1\nx-test: hi there\nbody!");
    assert_eq!(header(&r, "x-echo-method").as_deref(), Some("POST"));
    assert_eq!(header(&r, "x-echo-path").as_deref(), Some("/a/b?q=1"));
    assert_eq!(header(&r, "x-warden-outcome").as_deref(), Some("exited"));
    // Its run is in the audit log under the identity, with one exit record.
    let recs = records(&serve, &r);
    assert!(
        recs.iter()
            .all(|rec| rec["identity"] == "spiffe://test.example/echo"),
        "{recs:?}"
    );
    let run = header(&r, "x-warden-run").unwrap();
    assert_eq!(exits(&serve.audit(), &run).len(), 1);
    assert!(recs.iter().any(|rec| rec["event"] == "start"
        && rec["kind"] == "component"
        && rec["seccomp"]["mode"] == "enforce"));

    // A header the client's `Connection` names is hop-by-hop: it stays behind (the same
    // header without that reached the component above).
    let r = serve.request_with(
        "GET",
        "/http/echo/",
        &["X-Test: hop", "Connection: X-Test"],
        b"",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "GET /\nx-test: \n");
    // `/http/echo` alone is the component's `/`.
    assert_eq!(serve.get("/http/echo").body, "GET /\nx-test: \n");

    // A command component is no handler: 501, and it still runs as a command.
    let r = serve.get("/http/hello/x");
    assert_eq!(r.status, 501, "{r:?}");
    assert!(
        r.body
            .contains("does not export wasi:http/incoming-handler"),
        "{r:?}"
    );
    assert_eq!(
        serve.run("hello", &["you"], b"").json()["stdout"],
        "hello, you\n"
    );
    // The handler has no command to run: its run is an `error` with the reason.
    let v = serve.run("echo", &[], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("error"), Some(125)),
        "{v}"
    );
    assert!(
        v["stderr"].as_str().unwrap().contains("incoming-handler"),
        "{v}"
    );
    assert_eq!(serve.get("/http/nobody/").status, 404);
    assert_eq!(serve.stop(), 0);
}

#[test]
fn outbound_requests_of_a_handler_follow_its_grants() {
    let s = Scene::new();
    let api = Server::start();
    let target = api.url("/status");
    let granted = manifest(
        &s,
        "granted",
        guests::HTTP_ECHO_P2,
        &format!(
            "[[http]]\nurl = \"{}\"\nmethods = [\"GET\"]\n",
            api.url("/")
        ),
    );
    let bare = manifest(&s, "bare", guests::HTTP_ECHO_P2, "");
    let serve = Serve::start(&s, &[&granted, &bare], &[]);

    // Control: with the grant, the request goes out and its answer comes back.
    let r = serve.get(&format!("/http/granted/fetch?{target}"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("fetched 200"), "{r:?}");
    assert_eq!(api.requests().len(), 1);

    // Without it: refused, the loopback server sees nothing, the audit log has the denial.
    let r = serve.get(&format!("/http/bare/fetch?{target}"));
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.starts_with("refused:"), "{r:?}");
    assert_eq!(api.requests().len(), 1);
    let deny = records(&serve, &r)
        .into_iter()
        .find(|rec| rec["event"] == "decision" && rec["decision"] == "deny")
        .unwrap_or_else(|| panic!("no denial: {:?}", serve.audit()));
    assert_eq!(deny["capability"], "http");
    assert_eq!(deny["identity"], "spiffe://test.example/bare");
    assert_eq!(deny["target"], format!("GET {target}").as_str());
    assert_eq!(
        serve.metric("warden_denials_total{identity=\"bare\",capability=\"http\"}"),
        Some(1.0)
    );
    assert_eq!(serve.stop(), 0);
}

#[test]
fn a_hostile_handler_meets_its_limits_and_the_server_keeps_serving() {
    let s = Scene::new();
    let echo = manifest(
        &s,
        "echo",
        guests::HTTP_ECHO_P2,
        "[limits]\nwall = \"500ms\"\noutput = \"1KiB\"\n",
    );
    let serve = Serve::start(&s, &[&echo], &[]);
    let audit_exit = |r: &Reply| {
        let run = header(r, "x-warden-run").unwrap();
        let audit = serve.audit();
        let e = exits(&audit, &run);
        assert_eq!(e.len(), 1, "{audit:?}");
        e[0]["outcome"].as_str().unwrap().to_string()
    };

    for (path, outcome, code) in [
        ("/http/echo/spin", "wall-limit", 124),
        ("/http/echo/trap", "trap", 123),
        ("/http/echo/big?4096", "output-limit", 120),
    ] {
        let r = serve.get(path);
        assert_eq!(r.status, 502, "{path}: {r:?}");
        let v = r.json();
        assert_eq!(
            (v["outcome"].as_str(), v["code"].as_i64()),
            (Some(outcome), Some(code)),
            "{path}: {v}"
        );
        assert_eq!(audit_exit(&r), outcome);
    }
    // Controls: a body under the output limit, and the echo, after all of the above.
    let r = serve.get("/http/echo/big?100");
    assert_eq!((r.status, r.body.len()), (200, 100), "{r:?}");
    let r = serve.request_with("PUT", "/http/echo/still", &["X-Test: up"], b"ok");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "PUT /still\nx-test: up\nok");
    assert_eq!(audit_exit(&r), "exited");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn warden_run_of_a_handler_says_to_serve_it() {
    let s = Scene::new();
    s.run(None, guests::HTTP_ECHO_P2, &[])
        .assert_one_line_error("exports wasi:http/incoming-handler, not wasi:cli/run");
    // Control: a command component runs.
    let r = s.run(None, guests::HELLO_P2, &["you"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello, you\n"), "{r:#?}");
}

#[test]
fn the_library_hands_a_request_to_a_handler_and_refuses_one_to_a_command() {
    use warden::{
        EngineSettings, HttpRequest, LoadError, Outcome, Policy, RunError, RunOptions, Warden,
    };
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let mut policy = Policy::anonymous();
    policy.module = Some(guests::HTTP_ECHO_P2.into());
    let handler = warden.load(policy).unwrap();
    assert!(handler.handles_http());
    let mut req = HttpRequest::new("DELETE", "/item/7");
    req.headers.push(("x-test".into(), b"lib".to_vec()));
    req.body = b"gone".to_vec();
    let report = handler
        .handle_http(req.clone(), RunOptions::from_policy(handler.policy()))
        .unwrap();
    assert_eq!(report.run.outcome, Outcome::Exited(0));
    let response = report.response.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"DELETE /item/7\nx-test: lib\ngone");
    // The same request to a command component: refused before anything runs.
    let mut policy = Policy::anonymous();
    policy.module = Some(guests::HELLO_P2.into());
    let command = warden.load(policy).unwrap();
    assert!(!command.handles_http());
    let err = command
        .handle_http(req, RunOptions::from_policy(command.policy()))
        .unwrap_err();
    assert!(
        matches!(err, RunError::Start(LoadError::Entry { .. })),
        "{err:?}"
    );
}

#[test]
fn a_handler_reads_only_the_files_its_manifest_grants() {
    let s = Scene::new();
    s.file("data/note.txt", "granted note");
    let reader = manifest(
        &s,
        "reader",
        guests::HTTP_ECHO_P2,
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n",
    );
    let blind = manifest(&s, "blind", guests::HTTP_ECHO_P2, "");
    let serve = Serve::start(&s, &[&reader, &blind], &[]);
    // Control: granted, the file is read.
    let r = serve.get("/http/reader/file?/data/note.txt");
    assert_eq!((r.status, r.body.as_str()), (200, "granted note"), "{r:?}");
    // Without the grant the same read is refused, and nothing of the file comes back.
    let r = serve.get("/http/blind/file?/data/note.txt");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.body.starts_with("refused:") && !r.body.contains("granted note"),
        "{r:?}"
    );
    assert_eq!(serve.stop(), 0);
}
