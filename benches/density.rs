//! Live instances in one process: how many runs of a small connector one warden process holds
//! at once, and what each costs in memory.
//!
//! Off unless `WARDEN_DENSITY=N` is set (it is a measurement of memory, not of time, so it is
//! not a criterion benchmark): `N` runs of the `net-probe` component, each under a manifest
//! with one `[[http]]` rule, each making one GET to a loopback server started here. The
//! server reads every request and holds it unanswered until all `N` have arrived, so at that
//! moment `N` instances are live at once, each blocked inside its HTTP call the way a
//! connector waits on its API. The process's resident memory is read then (`VmRSS`), and
//! compared with the same process before the runs started; afterwards the server answers
//! every request and each run must end with exit 0 and the server's answer.
//!
//! ```sh
//! ulimit -n 65536            # N client sockets here, N server sockets in the same process
//! WARDEN_DENSITY=10000 cargo bench -p warden-runtime --bench calls -- density
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use warden::{EngineSettings, Manifest, Outcome, Policy, RunOptions, Warden};
use warden_guest_artifacts as guests;

/// What the holding server answers, once every request is in.
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// How long the measurement waits for all `N` requests to arrive before it gives up.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(600);

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Accepts `n` connections, reads each request's head, tells `held` when all are in, waits
/// for `release`, then answers them all.
fn hold_then_answer(
    listener: TcpListener,
    n: usize,
    held: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
) {
    let mut conns = Vec::with_capacity(n);
    for conn in listener.incoming().take(n) {
        let Ok(mut conn) = conn else { continue };
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => head.extend_from_slice(&buf[..k]),
            }
        }
        conns.push(conn);
    }
    let _ = held.send(());
    let _ = release.recv();
    for mut conn in conns {
        let _ = conn.write_all(ANSWER);
    }
}

pub fn density(_c: &mut criterion::Criterion) {
    let Some(n) = std::env::var("WARDEN_DENSITY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let manifest = format!(
        "[identity]\nname = \"density\"\n\n\
         [[http]]\nurl = \"http://{addr}/\"\nmethods = [\"GET\"]\n\n\
         [limits]\nmemory = \"16MiB\"\nwall = \"20m\"\n"
    );
    let manifest =
        Manifest::from_str_at(&manifest, Path::new("<bench>"), Path::new("/")).expect("manifest");
    let mut policy = Policy::from_manifest(manifest);
    policy.module = Some(guests::NET_PROBE_P2.into());
    let warden = Warden::new(EngineSettings::default()).expect("engine");
    let workload = warden.load(policy).expect("load net-probe");
    let step = format!("http GET http://{addr}/held");

    // One run first, answered at once, so that what every run shares (the compiled
    // component, the linker, the runtimes' threads) is in the baseline.
    {
        let (held, held_rx) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        let l = listener.try_clone().expect("clone the listener");
        let server = std::thread::spawn(move || hold_then_answer(l, 1, held, release));
        let mut opts = RunOptions::from_policy(workload.policy());
        opts.args = vec![step.clone()];
        let _ = opts.capture_output();
        let w = workload.clone();
        let run = std::thread::spawn(move || w.run(opts));
        held_rx.recv().expect("the warm-up request");
        release_tx.send(()).expect("release");
        let report = run.join().expect("join").expect("warm-up run");
        assert_eq!(report.outcome, Outcome::Exited(0));
        server.join().expect("server");
    }
    let rss_before = status_kib("VmRSS:");
    let threads_before = status_kib("Threads:");

    let (held, held_rx) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    let server = std::thread::spawn(move || hold_then_answer(listener, n, held, release));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let started = Instant::now();
    let (rss_held, threads_held, outs) = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut outs = Vec::with_capacity(n);
        for _ in 0..n {
            let mut opts = RunOptions::from_policy(workload.policy());
            opts.args = vec![step.clone()];
            let (out, _err) = opts.capture_output();
            outs.push(out);
            let w = workload.clone();
            tasks.spawn(async move { w.run_async(opts).await });
        }
        let wait = tokio::task::spawn_blocking(move || held_rx.recv_timeout(ARRIVAL_LIMIT));
        wait.await
            .expect("join")
            .expect("every run's request arrived");
        let rss = status_kib("VmRSS:");
        let threads = status_kib("Threads:");
        release_tx.send(()).expect("release");
        let mut ok = 0usize;
        while let Some(done) = tasks.join_next().await {
            let report = done.expect("join").expect("run");
            assert_eq!(report.outcome, Outcome::Exited(0));
            ok += 1;
        }
        assert_eq!(ok, n);
        (rss, threads, outs)
    });
    let elapsed = started.elapsed();
    server.join().expect("server");
    let answered = outs
        .iter()
        .filter(|o| o.text().contains("http: 200 ok"))
        .count();
    assert_eq!(answered, n, "every run got the server's answer");
    let per_instance = (rss_held.saturating_sub(rss_before)) as f64 / n as f64;
    eprintln!(
        "density: {n} live instances of net-probe at once in one process; \
         RSS {:.1} MiB before, {:.1} MiB with all {n} live: {per_instance:.0} KiB an instance \
         (threads {threads_before} -> {threads_held}); all {answered} answered and exited 0 \
         in {:.1} s",
        rss_before as f64 / 1024.0,
        rss_held as f64 / 1024.0,
        elapsed.as_secs_f64()
    );
}
