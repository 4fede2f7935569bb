//! Embedded runs of components that make HTTP requests at the same time: every run's
//! exchanges share one network I/O thread (runtime/src/io_runtime.rs), so many runs must all
//! get their answers, and one run stuck on a server that never answers must neither hold the
//! others up nor escape its wall limit.

use crate::guests;
use crate::server::Server;
use std::net::TcpListener;
use std::path::Path;
use warden::{EngineSettings, Manifest, Outcome, Policy, RunOptions, Warden, Workload};

/// `net-probe` allowed to GET anything on `127.0.0.1:port`, within `limits`.
fn http_workload(warden: &Warden, port: u16, limits: &str) -> Workload {
    let manifest = Manifest::from_str_at(
        &format!(
            "[identity]\nname = \"embedded-http\"\n\n\
             [[http]]\nurl = \"http://127.0.0.1:{port}/\"\nmethods = [\"GET\"]\n\n\
             [limits]\n{limits}\n"
        ),
        Path::new("<test>"),
        Path::new("."),
    )
    .unwrap();
    let mut policy = Policy::from_manifest(manifest);
    policy.module = Some(guests::NET_PROBE_P2.into());
    warden.load(policy).unwrap()
}

/// Runs `workload` with `steps`; the outcome and the guest's stdout.
fn run(workload: &Workload, steps: &[String]) -> (Outcome, String) {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = steps.to_vec();
    let (stdout, _stderr) = opts.capture_output();
    let report = workload.run(opts).unwrap();
    (report.outcome, stdout.text())
}

#[test]
fn eight_concurrent_embedded_runs_each_get_all_their_http_answers() {
    const RUNS: usize = 8;
    const REQUESTS: usize = 6;
    let server = Server::start();
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let workload = http_workload(&warden, server.port(), "http-requests = 100");
    let threads: Vec<_> = (0..RUNS)
        .map(|i| {
            let workload = workload.clone();
            let steps = vec![
                format!("repeat {REQUESTS}"),
                format!("http GET {}", server.url(&format!("/run/{i}"))),
            ];
            std::thread::spawn(move || run(&workload, &steps))
        })
        .collect();
    for t in threads {
        let (outcome, out) = t.join().unwrap();
        assert_eq!(outcome, Outcome::Exited(0), "{out}");
        let answered = out.lines().filter(|l| l.starts_with("http: 200")).count();
        assert_eq!(answered, REQUESTS, "{out}");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), RUNS * REQUESTS);
    for i in 0..RUNS {
        let path = format!("/run/{i}");
        assert_eq!(
            requests.iter().filter(|r| r.path == path).count(),
            REQUESTS,
            "{path}"
        );
    }
}

#[test]
fn a_run_stuck_on_a_silent_server_ends_at_its_wall_limit_while_other_runs_go_on() {
    // Listens and never accepts: the connection is made by the kernel, the request is sent,
    // and no answer ever comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let server = Server::start();
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let stuck = http_workload(&warden, silent_port, "wall = \"1s\"");
    let stuck_run = {
        let steps = vec![format!("http GET http://127.0.0.1:{silent_port}/never")];
        std::thread::spawn(move || run(&stuck, &steps))
    };
    // Control: while that run is stuck, another on the same engine gets its answers.
    let prompt = http_workload(&warden, server.port(), "wall = \"1m\"");
    let steps = vec![
        "repeat 3".to_owned(),
        format!("http GET {}", server.url("/v1/prompt")),
    ];
    let (outcome, out) = run(&prompt, &steps);
    assert_eq!(outcome, Outcome::Exited(0), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("http: 200")).count(),
        3,
        "{out}"
    );
    let (outcome, out) = stuck_run.join().unwrap();
    assert_eq!(outcome, Outcome::WallLimit, "{out}");
    assert!(!out.contains("http: "), "{out}");
    drop(silent);
}
