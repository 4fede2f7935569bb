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
//! The holding server is this bench binary again, started as a child process
//! (`WARDEN_DENSITY_SERVER=1`), so that its `N` sockets count against its own open-file
//! limit, not the measured process's, and its memory is not in the figure.
//!
//! ```sh
//! ulimit -n 20000            # N client sockets in the measured process
//! WARDEN_DENSITY=10000 cargo bench -p warden-runtime --bench calls -- density
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
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

/// The holding server, in the child process: prints its port, then for each `hold K` line
/// on stdin accepts `K` connections, reads each request's head, prints `held`, waits for a
/// `release` line and answers them all. Ends at the end of stdin.
fn serve_held() -> ! {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("address").port();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "density-server: port {port}");
    let _ = out.flush();
    let mut lines = std::io::stdin().lock().lines();
    while let Some(Ok(line)) = lines.next() {
        let Some(k) = line
            .strip_prefix("hold ")
            .and_then(|k| k.trim().parse::<usize>().ok())
        else {
            continue;
        };
        let mut conns = Vec::with_capacity(k);
        for conn in listener.incoming().take(k) {
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
        let _ = writeln!(out, "density-server: held");
        let _ = out.flush();
        if !matches!(lines.next(), Some(Ok(l)) if l == "release") {
            break;
        }
        for mut conn in conns {
            let _ = conn.write_all(ANSWER);
        }
    }
    std::process::exit(0)
}

/// Blocks until the server holds every request of the last `hold`.
fn wait_held(lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>) {
    for line in lines {
        if line.expect("read the server") == "density-server: held" {
            return;
        }
    }
    panic!("the holding server ended before every request arrived");
}

/// The parent's end of the holding server.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(std::env::current_exe().expect("this bench's path"))
            .args(["--bench", "density"])
            .env("WARDEN_DENSITY_SERVER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the holding server");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = loop {
            let line = stdout
                .next()
                .expect("the server's port")
                .expect("read the server");
            if let Some(p) = line.strip_prefix("density-server: port ") {
                break p.trim().parse().expect("a port");
            }
        };
        Server {
            child,
            stdin,
            stdout: Some(stdout),
            port,
        }
    }

    fn hold(&mut self, k: usize) {
        writeln!(self.stdin, "hold {k}").expect("tell the server");
        self.stdin.flush().expect("flush");
    }

    fn release(&mut self) {
        writeln!(self.stdin, "release").expect("tell the server");
        self.stdin.flush().expect("flush");
    }
}

pub fn density(_c: &mut criterion::Criterion) {
    let Some(n) = std::env::var("WARDEN_DENSITY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    if std::env::var_os("WARDEN_DENSITY_SERVER").is_some() {
        serve_held();
    }
    let mut server = Server::start();
    let addr = format!("127.0.0.1:{}", server.port);
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
        server.hold(1);
        let mut opts = RunOptions::from_policy(workload.policy());
        opts.args = vec![step.clone()];
        let _ = opts.capture_output();
        let w = workload.clone();
        let run = std::thread::spawn(move || w.run(opts));
        wait_held(server.stdout.as_mut().expect("the server's output"));
        server.release();
        let report = run.join().expect("join").expect("warm-up run");
        assert_eq!(report.outcome, Outcome::Exited(0));
    }
    let rss_before = status_kib("VmRSS:");
    let threads_before = status_kib("Threads:");

    server.hold(n);
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
        // Every run must stay blocked on its request until the release: one that ends before
        // it has failed, and so has a server that never sees all `n` requests.
        let mut lines = server.stdout.take().expect("the server's output");
        let wait = tokio::task::spawn_blocking(move || {
            wait_held(&mut lines);
            (lines, Instant::now())
        });
        let waited = tokio::select! {
            held = tokio::time::timeout(ARRIVAL_LIMIT, wait) => held,
            early = tasks.join_next() => {
                let _ = server.child.kill();
                panic!("a run ended before every request arrived: {early:?}");
            }
        };
        let Ok(Ok((lines, held))) = waited else {
            let _ = server.child.kill();
            panic!("not every request arrived within {ARRIVAL_LIMIT:?}");
        };
        server.stdout = Some(lines);
        let rss = status_kib("VmRSS:");
        let threads = status_kib("Threads:");
        let arrival = held.duration_since(started);
        server.release();
        let mut ok = 0usize;
        while let Some(done) = tasks.join_next().await {
            let report = done.expect("join").expect("run");
            assert_eq!(report.outcome, Outcome::Exited(0));
            ok += 1;
        }
        assert_eq!(ok, n);
        drop(server.stdin);
        let _ = server.child.wait();
        eprintln!(
            "density: all {n} requests arrived {:.1} s after the first run started",
            arrival.as_secs_f64()
        );
        (rss, threads, outs)
    });
    let elapsed = started.elapsed();
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
