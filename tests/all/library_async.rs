//! The library inside a service: `Workload::run` and `Workload::run_async` called from tokio
//! runtimes (the broker's own runtime included), many runs at once from many threads and
//! tasks, and the types a service shares between them.

use crate::guests;
use crate::server::Server;
use std::path::Path;
use warden::{EngineSettings, Manifest, Outcome, Policy, RunOptions, Warden, Workload};

// A service keeps one `Warden` and its `Workload`s in shared state, used from every worker
// thread: both must be `Send + Sync` (a compile-time check).
const _: () = {
    const fn shared<T: Send + Sync + 'static>() {}
    shared::<Warden>();
    shared::<Workload>();
};

fn load(module: &str, manifest: &str) -> Workload {
    let manifest = Manifest::from_str_at(manifest, Path::new("<test>"), Path::new(".")).unwrap();
    let policy = Policy::from_manifest(manifest).with_module(module);
    Warden::new(EngineSettings::default())
        .unwrap()
        .load(policy)
        .unwrap()
}

const PLAIN: &str =
    "[identity]\nname = \"in-tokio\"\n[limits]\nmemory = \"64MiB\"\nwall = \"60s\"\n";

/// Runs `workload` once with `args`, returning its outcome and stdout.
fn run_once(workload: &Workload, args: &[&str]) -> (Outcome, String) {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = args.iter().map(|a| a.to_string()).collect();
    let (stdout, _) = opts.capture_output();
    let report = workload.run(opts).unwrap();
    (report.outcome, stdout.text())
}

async fn run_once_async(workload: &Workload, args: &[&str]) -> (Outcome, String) {
    let mut opts = RunOptions::from_policy(workload.policy());
    opts.args = args.iter().map(|a| a.to_string()).collect();
    let (stdout, _) = opts.capture_output();
    let report = workload.run_async(opts).await.unwrap();
    (report.outcome, stdout.text())
}

#[tokio::test]
async fn blocking_run_of_a_core_module_inside_a_tokio_runtime() {
    let w = load(guests::HELLO_P1, PLAIN);
    let (outcome, out) = run_once(&w, &["tokio"]);
    assert_eq!(outcome, Outcome::Exited(0));
    assert!(out.contains("hello, tokio"), "{out}");
}

#[tokio::test]
async fn blocking_run_of_a_component_inside_a_tokio_runtime() {
    let w = load(guests::HELLO_P2, PLAIN);
    let (outcome, out) = run_once(&w, &["tokio"]);
    assert_eq!(outcome, Outcome::Exited(0));
    assert!(out.contains("hello, tokio"), "{out}");
}

fn http_manifest(server: &Server) -> String {
    format!(
        "{PLAIN}[[http]]\nurl = \"{}/v1/\"\nmethods = [\"GET\"]\n",
        server.url("")
    )
}

#[tokio::test]
async fn blocking_run_with_http_grants_inside_a_tokio_runtime() {
    let server = Server::echo();
    let w = load(guests::NET_PROBE_P2, &http_manifest(&server));
    let (outcome, out) = run_once(&w, &[&format!("http GET {}", server.url("/v1/x"))]);
    assert_eq!(outcome, Outcome::Exited(0), "{out}");
    assert!(out.starts_with("http: 200"), "{out}");
    // CONTROL: a URL outside the grant is refused, so the 200 above came through the broker.
    let (_, out) = run_once(&w, &[&format!("http GET {}", server.url("/v2/x"))]);
    assert!(out.starts_with("http: error"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_async_with_http_grants_on_a_multi_thread_runtime() {
    let server = Server::echo();
    let w = load(guests::NET_PROBE_P2, &http_manifest(&server));
    let (outcome, out) = run_once_async(&w, &[&format!("http GET {}", server.url("/v1/x"))]).await;
    assert_eq!(outcome, Outcome::Exited(0), "{out}");
    assert!(out.starts_with("http: 200"), "{out}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn run_async_on_a_current_thread_runtime() {
    let w = load(guests::HELLO_P1, PLAIN);
    let (outcome, out) = run_once_async(&w, &["async"]).await;
    assert_eq!(outcome, Outcome::Exited(0));
    assert!(out.contains("hello, async"), "{out}");
}

/// How many runs the concurrency tests start at once.
const CONCURRENT: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_async_runs_at_once_each_get_their_own_io() {
    let core = load(guests::HELLO_P1, PLAIN);
    let component = load(guests::HELLO_P2, PLAIN);
    let mut tasks = Vec::new();
    for i in 0..CONCURRENT {
        let w = if i % 2 == 0 {
            core.clone()
        } else {
            component.clone()
        };
        tasks.push(tokio::spawn(async move {
            let name = format!("task{i}");
            let (outcome, out) = run_once_async(&w, &[&name]).await;
            (outcome, out, name)
        }));
    }
    for t in tasks {
        let (outcome, out, name) = t.await.unwrap();
        assert_eq!(outcome, Outcome::Exited(0));
        assert_eq!(out.trim_end(), format!("hello, {name}"));
    }
}

#[test]
fn many_blocking_runs_from_many_threads_share_one_workload() {
    let w = load(guests::HELLO_P2, PLAIN);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let w = &w;
                s.spawn(move || {
                    let name = format!("thread{i}");
                    let (outcome, out) = run_once(w, &[&name]);
                    assert_eq!(outcome, Outcome::Exited(0));
                    assert_eq!(out.trim_end(), format!("hello, {name}"));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// An audit sink for tests: every record, as parsed JSON.
#[derive(Clone, Default)]
struct Records(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Records {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Records {
    fn events(&self, event: &str) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event"] == event)
            .collect()
    }
}

/// A loopback server that accepts connections and never answers: a guest's request to it
/// blocks in a host call, where the epoch cannot stop it.
struct Silent {
    addr: std::net::SocketAddr,
}

impl Silent {
    fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                match conn {
                    Ok(c) => held.push(c),
                    Err(_) => break,
                }
            }
        });
        Silent { addr }
    }
}

fn stuck_manifest(base: &str) -> String {
    format!(
        "[identity]\nname = \"stuck\"\n[limits]\nwall = \"1s\"\n[[http]]\nurl = \"{base}/\"\nmethods = [\"GET\"]\n"
    )
}

fn stuck_opts(w: &Workload, url: &str) -> (RunOptions, Records) {
    let mut opts = RunOptions::from_policy(w.policy());
    opts.args = vec![format!("http GET {url}")];
    let records = Records::default();
    opts.audit = warden::AuditSink::to_writer(records.clone());
    opts.capture_output();
    (opts, records)
}

fn assert_ended_by_the_watchdog(report: &warden::RunReport, records: &Records) {
    assert_eq!(report.outcome, Outcome::WallLimit);
    assert!(
        report.wall >= std::time::Duration::from_secs(1),
        "{report:?}"
    );
    let limits = records.events("limit");
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0]["limit"], "wall");
    let exits = records.events("exit");
    assert_eq!(exits.len(), 1, "exactly one exit record: {exits:?}");
    assert_eq!(exits[0]["outcome"], "wall-limit");
    assert_eq!(exits[0]["code"], 124);
    // The watchdog's record, not the epoch's: the guest was inside a host call.
    assert_eq!(
        exits[0]["message"],
        "stuck in a host call past the wall limit"
    );
    assert_eq!(exits[0]["run"], report.run_id.as_str());
}

#[test]
fn a_guest_blocked_in_a_host_call_ends_at_its_wall_limit() {
    let silent = Silent::start();
    let base = format!("http://{}", silent.addr);
    let w = load(guests::NET_PROBE_P2, &stuck_manifest(&base));
    let (opts, records) = stuck_opts(&w, &format!("{base}/never"));
    let report = w.run(opts).unwrap();
    assert_ended_by_the_watchdog(&report, &records);

    // CONTROL: the same workload against a server that answers ends on its own.
    let server = Server::echo();
    let w = load(guests::NET_PROBE_P2, &stuck_manifest(&server.url("")));
    let (opts, records) = stuck_opts(&w, &server.url("/x"));
    let report = w.run(opts).unwrap();
    assert_eq!(report.outcome, Outcome::Exited(0));
    assert!(records.events("limit").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_run_blocked_in_a_host_call_ends_at_its_wall_limit() {
    let silent = Silent::start();
    let base = format!("http://{}", silent.addr);
    let w = load(guests::NET_PROBE_P2, &stuck_manifest(&base));
    let (opts, records) = stuck_opts(&w, &format!("{base}/never"));
    let report = w.run_async(opts).await.unwrap();
    assert_ended_by_the_watchdog(&report, &records);
}

#[test]
fn a_load_past_its_budget_is_refused_and_one_within_it_loads() {
    let policy = || {
        let mut p = Policy::anonymous();
        p.module = Some(guests::NET_PROBE_P2.into());
        p
    };
    // Compiled afresh (no cache): compiling a component takes far longer than no time at all.
    let warden = Warden::new(EngineSettings::default()).unwrap();
    let err = warden
        .load_within(policy(), std::time::Duration::ZERO)
        .unwrap_err();
    assert!(
        matches!(err, warden::LoadError::CompileTimeout { .. }),
        "{err:?}"
    );
    // CONTROL: the same load with time to spare.
    let w = warden
        .load_within(policy(), std::time::Duration::from_secs(600))
        .unwrap();
    assert!(w.is_component());
}

/// A loopback server that holds the first `hold` requests unanswered until `release` is
/// sent (telling `arrived` as each comes in), then answers them and every later one at once.
fn holding_server(
    hold: usize,
) -> (
    String,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        const ANSWER: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
        let read_head = |c: &mut std::net::TcpStream| {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
        };
        let mut held = Vec::new();
        let mut released = false;
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            read_head(&mut c);
            if released {
                let _ = c.write_all(ANSWER);
                continue;
            }
            held.push(c);
            let _ = arrived_tx.send(());
            if held.len() == hold {
                let _ = release_rx.recv();
                released = true;
                for mut h in held.drain(..) {
                    let _ = h.write_all(ANSWER);
                }
            }
        }
    });
    (base, arrived, release)
}

/// An engine refuses a run past its `max_live_runs` at once, with a typed error, instead of
/// starting a thread the process may not be able to afford (past the kernel's mapping limit
/// a thread's start aborts the whole process); once a live run ends, its thread takes the
/// next run (the control).
#[test]
fn a_run_past_the_engines_live_limit_is_refused_and_fits_once_one_ends() {
    let (base, arrived, release) = holding_server(2);
    let manifest = format!(
        "[identity]\nname = \"capped\"\n[limits]\nwall = \"60s\"\n[[http]]\nurl = \"{base}/\"\nmethods = [\"GET\"]\n"
    );
    let manifest = Manifest::from_str_at(&manifest, Path::new("<test>"), Path::new(".")).unwrap();
    let policy = Policy::from_manifest(manifest).with_module(guests::NET_PROBE_P2);
    let warden = Warden::new(EngineSettings {
        max_live_runs: Some(2),
        ..EngineSettings::default()
    })
    .unwrap();
    let w = warden.load(policy).unwrap();
    let opts = |w: &Workload| {
        let mut opts = RunOptions::from_policy(w.policy());
        opts.args = vec![format!("http GET {base}/held")];
        let (out, _) = opts.capture_output();
        (opts, out)
    };
    let live: Vec<_> = (0..2)
        .map(|_| {
            let w = w.clone();
            let (o, out) = opts(&w);
            (std::thread::spawn(move || w.run(o)), out)
        })
        .collect();
    arrived.recv().unwrap();
    arrived.recv().unwrap();

    // Both runs are live, blocked on the server: a third is refused, and says why.
    let (o, _) = opts(&w);
    match w.run(o) {
        Err(e @ warden::RunError::AtCapacity { limit: 2 }) => {
            assert!(e.to_string().contains("2 runs are live"), "{e}");
        }
        other => panic!("expected AtCapacity, got {other:?}"),
    }

    // CONTROL: once they are answered and end, the next run gets a thread and succeeds.
    release.send(()).unwrap();
    for (run, out) in live {
        let report = run.join().unwrap().unwrap();
        assert_eq!(report.outcome, Outcome::Exited(0));
        assert!(out.text().contains("http: 200 ok"), "{}", out.text());
    }
    let (o, out) = opts(&w);
    let report = w.run(o).unwrap();
    assert_eq!(report.outcome, Outcome::Exited(0));
    assert!(out.text().contains("http: 200 ok"), "{}", out.text());
}

/// `run_inline` runs the guest on the calling thread with the same limits and records: a
/// run ends with its output; one stuck in a host call past its wall limit is settled by the
/// watchdog (one `limit` and one `exit` record, `WallLimit`), and the call returns that
/// report once the host call comes back. Refused inside an async runtime (the control: the
/// same call outside one runs).
#[test]
fn run_inline_runs_on_the_calling_thread_under_the_same_limits() {
    let w = load(guests::HELLO_P1, PLAIN);
    let mut opts = RunOptions::from_policy(w.policy());
    let (stdout, _) = opts.capture_output();
    let report = w.run_inline(opts).unwrap();
    assert_eq!(report.outcome, Outcome::Exited(0));
    assert!(stdout.text().contains("hello"), "{}", stdout.text());

    // Stuck: the server holds the request 4 s, past the 1 s wall limit and its 2 s grace.
    let (base, arrived, release) = holding_server(1);
    let w = load(guests::NET_PROBE_P2, &stuck_manifest(&base));
    let (opts, records) = stuck_opts(&w, &format!("{base}/held"));
    let releaser = std::thread::spawn(move || {
        arrived.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(4));
        release.send(()).unwrap();
    });
    let started = std::time::Instant::now();
    let report = w.run_inline(opts).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    assert_ended_by_the_watchdog(&report, &records);
    releaser.join().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let w2 = w.clone();
    let refused = rt.block_on(async move {
        let opts = RunOptions::from_policy(w2.policy());
        w2.run_inline(opts)
    });
    assert!(
        matches!(&refused, Err(warden::RunError::Thread(e)) if e.to_string().contains("run_async")),
        "{refused:?}"
    );
}
