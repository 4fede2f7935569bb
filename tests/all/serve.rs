//! `warden serve`: runs over HTTP, one locked-down worker process per identity, against
//! hostile neighbours, back-pressure, metrics and a graceful stop. Each test starts its own
//! server on 127.0.0.1:0 and stops it.

use crate::guests;
use crate::server::Server;
use crate::util::{Scene, warden};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

const KEY: &str = "sk_live_serve_7d1e";

/// A running `warden serve` (also used by serve_http.rs).
pub(crate) struct Serve {
    child: Child,
    pub(crate) addr: String,
    audit: PathBuf,
    pub(crate) stderr: PathBuf,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

impl Serve {
    pub(crate) fn start(s: &Scene, manifests: &[&Path], extra: &[&str]) -> Serve {
        Serve::start_with_env(s, manifests, extra, &[])
    }

    /// [`Serve::start`] with variables added to the server's environment.
    pub(crate) fn start_with_env(
        s: &Scene,
        manifests: &[&Path],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        Serve::start_cmd(s, manifests, extra, env, warden())
    }

    /// [`Serve::start`] under a program that then executes warden in its place (`wrapper`:
    /// the program and its arguments, e.g. `prlimit --nofile=64:64 --`).
    pub(crate) fn start_wrapped(
        s: &Scene,
        manifests: &[&Path],
        extra: &[&str],
        wrapper: &[&str],
    ) -> Serve {
        let mut cmd = std::process::Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_warden"));
        cmd.env("WARDEN_CACHE_DIR", crate::util::shared_cache_dir());
        cmd.stdin(Stdio::null());
        Serve::start_cmd(s, manifests, extra, &[], cmd)
    }

    fn start_cmd(
        s: &Scene,
        manifests: &[&Path],
        extra: &[&str],
        env: &[(&str, &str)],
        mut cmd: std::process::Command,
    ) -> Serve {
        let audit = s.path("serve-audit.jsonl");
        let stderr = s.path("serve-stderr.txt");
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0");
        cmd.arg("--audit").arg(&audit);
        for m in manifests {
            cmd.arg("--manifest").arg(m);
        }
        cmd.args(extra);
        cmd.env("WARDEN_TEST_API_KEY", KEY);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::piped());
        cmd.stderr(std::fs::File::create(&stderr).unwrap());
        let mut child = cmd.spawn().expect("spawn warden serve");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(addr) = line
            .trim()
            .rsplit("http://")
            .next()
            .filter(|_| !line.is_empty())
        else {
            panic!("no address: {line:?}");
        };
        assert!(
            line.contains("serving"),
            "{line:?}: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        Serve {
            addr: addr.to_string(),
            child,
            audit,
            stderr,
            _stdout: stdout,
        }
    }

    pub(crate) fn request(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        self.request_with(method, path, &[], body)
    }

    /// A request with extra header lines (`Name: value`).
    pub(crate) fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> Reply {
        let mut conn = std::net::TcpStream::connect(&self.addr).unwrap();
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(body).unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status: {text:?}"));
        Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    pub(crate) fn run(&self, name: &str, args: &[&str], stdin: &[u8]) -> Reply {
        let query: Vec<String> = args.iter().map(|a| format!("arg={a}")).collect();
        let path = format!("/v1/workloads/{name}/runs?{}", query.join("&"));
        self.request("POST", &path, stdin)
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.request("GET", path, b"")
    }

    /// The value of the metric line that starts with `series` (name and labels).
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").body;
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The server's process id (for signals).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `series` reaches `value` (the server's own gauges: no clock involved in
    /// the assertion, only in how long the test waits at most).
    pub(crate) fn wait_for(&self, series: &str, value: f64) {
        for _ in 0..2000 {
            if self.metric(series) == Some(value) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "{series} never reached {value}: {}",
            self.get("/metrics").body
        );
    }

    pub(crate) fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then the exit code.
    pub(crate) fn stop(mut self) -> i32 {
        let ok = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manifest for identity `name` running `module`, with `body` appended.
pub(crate) fn manifest(s: &Scene, name: &str, module: &str, body: &str) -> PathBuf {
    s.file(
        &format!("{name}.warden.toml"),
        &format!(
            "[identity]\nname = \"{name}\"\nid = \"spiffe://test.example/{name}\"\n\n\
             [workload]\nmodule = \"{module}\"\n\n{body}"
        ),
    )
}

/// The exit records of run `run`.
pub(crate) fn exits<'a>(audit: &'a [Value], run: &str) -> Vec<&'a Value> {
    audit
        .iter()
        .filter(|r| r["event"] == "exit" && r["run"] == run)
        .collect()
}

#[test]
fn runs_answer_with_output_and_code_and_the_server_reports_itself() {
    let s = Scene::new();
    let hello = manifest(&s, "hello", guests::HELLO_P1, "");
    let component = manifest(&s, "hello-p2", guests::HELLO_P2, "");
    let probe = manifest(&s, "probe", guests::PROBE_P1, "");
    let serve = Serve::start(&s, &[&hello, &component, &probe], &[]);

    let r = serve.run("hello", &["serve%20me"], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["outcome"], "exited");
    assert_eq!(v["code"], 0);
    assert_eq!(v["stdout"], "hello, serve me\n");
    let run = v["run"].as_str().unwrap().to_string();
    // Arguments pass through in order; the guest's exit code comes back.
    let v = serve.run("probe", &["args", "a", "b+c"], b"").json();
    assert_eq!(
        v["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .skip(1)
            .collect::<Vec<_>>(),
        ["args", "a", "b c"]
    );
    let v = serve.run("probe", &["exit", "7"], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("exited"), Some(7))
    );

    let r = serve.run("nobody", &[], b"");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(serve.get("/elsewhere").status, 404);

    let list = serve.get("/v1/workloads").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello", "hello-p2", "probe"]);
    assert_eq!(list[0]["identity"], "spiffe://test.example/hello");
    assert_eq!(list[0]["kind"], "module");
    assert_eq!(list[1]["kind"], "component");
    assert_eq!(list[2]["kind"], "module");
    assert_eq!(list[0]["sha256"].as_str().unwrap().len(), 64);

    let h = serve.get("/healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    let text = serve.get("/metrics").body;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("warden_") && text.contains(&format!("# TYPE {name} "))
                || name.ends_with("_bucket")
                || name.ends_with("_sum")
                || name.ends_with("_count"),
            "{line}"
        );
    }
    assert_eq!(
        serve.metric("warden_runs_total{identity=\"hello\",outcome=\"exited\"}"),
        Some(1.0)
    );
    assert_eq!(
        serve.metric("warden_run_seconds_bucket{identity=\"probe\",le=\"+Inf\"}"),
        Some(2.0)
    );
    assert_eq!(
        serve.metric("warden_workers{identity=\"hello\"}"),
        Some(1.0)
    );

    // The answer's run id is the audit log's, with the identity and an exit record.
    let audit = serve.audit();
    let start = audit
        .iter()
        .find(|r| r["event"] == "start" && r["run"] == run.as_str())
        .unwrap();
    assert_eq!(start["identity"], "spiffe://test.example/hello");
    assert_eq!(start["seccomp"]["mode"], "enforce");
    assert_eq!(exits(&audit, &run).len(), 1);
    assert_eq!(serve.stop(), 0);
}

#[test]
fn stdin_reaches_the_guest_only_when_granted() {
    let s = Scene::new();
    let granted = manifest(
        &s,
        "granted",
        guests::PROBE_P1,
        "[stdio]\nstdin = \"inherit\"\n",
    );
    let closed = manifest(&s, "closed", guests::PROBE_P1, "");
    let serve = Serve::start(&s, &[&granted, &closed], &[]);
    let v = serve.run("granted", &["stdin"], b"twelve bytes").json();
    assert_eq!(v["stdout"], "stdin=12 bytes\ntwelve bytes", "{v}");
    // Control: the same body to an identity without the grant reaches nothing.
    let v = serve.run("closed", &["stdin"], b"twelve bytes").json();
    assert_eq!(v["stdout"], "stdin=0 bytes\n", "{v}");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn past_the_queue_bound_a_run_gets_429_with_retry_after() {
    let s = Scene::new();
    let spin = manifest(&s, "spin", guests::SPIN_P1, "[limits]\nwall = \"1s\"\n");
    let serve = std::sync::Arc::new(Serve::start(
        &s,
        &[&spin],
        &["--queue", "1", "--max-workers", "1"],
    ));
    let first = {
        let serve = serve.clone();
        std::thread::spawn(move || serve.run("spin", &[], b""))
    };
    serve.wait_for("warden_runs_in_flight{identity=\"spin\"}", 1.0);
    let second = {
        let serve = serve.clone();
        std::thread::spawn(move || serve.run("spin", &[], b""))
    };
    serve.wait_for("warden_queued_runs{identity=\"spin\"}", 1.0);
    let third = serve.run("spin", &[], b"");
    assert_eq!(third.status, 429, "{third:?}");
    assert!(
        third.head.to_ascii_lowercase().contains("retry-after: 1"),
        "{third:?}"
    );
    // Control: the runs within the bound (one running, one queued) are answered.
    for r in [first.join().unwrap(), second.join().unwrap()] {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["outcome"], "wall-limit");
    }
    assert_eq!(
        serve.metric("warden_rejections_total{identity=\"spin\"}"),
        Some(1.0)
    );
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(serve.stop(), 0);
}

#[test]
fn sigterm_finishes_the_run_in_flight_and_exits_0() {
    let s = Scene::new();
    let spin = manifest(&s, "spin", guests::SPIN_P1, "[limits]\nwall = \"1s\"\n");
    let serve = std::sync::Arc::new(Serve::start(&s, &[&spin], &[]));
    let running = {
        let serve = serve.clone();
        std::thread::spawn(move || serve.run("spin", &[], b""))
    };
    serve.wait_for("warden_runs_in_flight{identity=\"spin\"}", 1.0);
    let ok = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(serve.child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let r = running.join().unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["outcome"], "wall-limit");
    let mut serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(
        serve.child.wait().unwrap().code(),
        Some(0),
        "{}",
        serve.stderr()
    );
    assert_eq!(exits(&serve.audit(), v["run"].as_str().unwrap()).len(), 1);
}

#[test]
fn a_manifest_that_cannot_be_served_stops_the_start_with_one_line() {
    let s = Scene::new();
    let a = manifest(&s, "twice", guests::HELLO_P1, "");
    let b = s.file(
        "other.warden.toml",
        &format!(
            "[identity]\nname = \"twice\"\n\n[workload]\nmodule = \"{}\"\n",
            guests::HELLO_P1
        ),
    );
    let mut cmd = warden();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(&a)
        .arg("--manifest")
        .arg(&b);
    crate::util::finish(cmd, None).assert_one_line_error("names must differ");
    let missing = manifest(&s, "missing", "/nonexistent/module.wasm", "");
    let mut cmd = warden();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(&missing);
    crate::util::finish(cmd, None).assert_one_line_error("missing");
}

/// A core module that calls `warden_test::escape(1)` (open a socket) when it is given an
/// argument, and otherwise exits 0.
#[cfg(feature = "test-escape")]
pub(crate) fn escape_module(s: &Scene) -> String {
    args_module(
        s,
        "escape.wasm",
        "(if (i32.gt_u (local.get $argc) (i32.const 1))
           (then (drop (call $escape (i32.const 1)))))",
    )
}

/// A core module whose `_start` runs `body` with `$argc` (the argument count, the program
/// name included) and `$escape` (`warden_test::escape`) at hand, written to `file`.
#[cfg(feature = "test-escape")]
fn args_module(s: &Scene, file: &str, body: &str) -> String {
    let wasm = wat::parse_str(format!(
        r#"(module
             (import "wasi_snapshot_preview1" "args_sizes_get"
               (func $sizes (param i32 i32) (result i32)))
             (import "warden_test" "escape" (func $escape (param i32) (result i32)))
             (memory (export "memory") 1)
             (func (export "_start") (local $argc i32)
               (drop (call $sizes (i32.const 0) (i32.const 4)))
               (local.set $argc (i32.load (i32.const 0)))
               {body}))"#
    ))
    .unwrap();
    let path = s.path(file);
    std::fs::write(&path, wasm).unwrap();
    path.display().to_string()
}

#[cfg(feature = "test-escape")]
#[test]
fn a_worker_killed_by_its_seccomp_filter_is_replaced_and_the_next_run_succeeds() {
    let s = Scene::new();
    let module = escape_module(&s);
    let m = manifest(&s, "escaper", &module, "");
    let serve = Serve::start(&s, &[&m], &[]);
    let v = serve.run("escaper", &["go"], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("worker-died"), Some(159)),
        "{v}"
    );
    let exit = exits(&serve.audit(), v["run"].as_str().unwrap())
        .first()
        .map(|r| (*r).clone())
        .unwrap();
    assert_eq!(exit["identity"], "spiffe://test.example/escaper");
    assert!(
        exit["message"].as_str().unwrap().contains("SIGSYS"),
        "{exit}"
    );
    let v = serve.run("escaper", &[], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("exited"), Some(0)),
        "{v}"
    );
    assert_eq!(
        serve.metric("warden_worker_restarts_total{identity=\"escaper\"}"),
        Some(1.0)
    );
    assert_eq!(serve.stop(), 0);

    // Control: without the lockdown the same escape goes through and the worker lives on.
    let s = Scene::new();
    let m = manifest(&s, "escaper", &module, "");
    let serve = Serve::start(&s, &[&m], &["--seccomp", "off"]);
    let v = serve.run("escaper", &["go"], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("exited"), Some(0)),
        "{v}"
    );
    assert_eq!(serve.stop(), 0);
}

#[test]
fn hostile_identities_cannot_disturb_a_well_behaved_one_and_every_run_is_audited() {
    let s = Scene::new();
    let server = Server::start();
    let attacker = Server::echo();
    let good = manifest(&s, "good", guests::HELLO_P1, "");
    #[cfg_attr(not(feature = "test-escape"), allow(unused_mut, clippy::useless_vec))]
    let mut manifests = vec![
        good,
        manifest(
            &s,
            "membomb",
            guests::MEMBOMB_P1,
            "[limits]\nmemory = \"32MiB\"\n",
        ),
        manifest(&s, "spin", guests::SPIN_P1, "[limits]\nwall = \"300ms\"\n"),
        manifest(
            &s,
            "flood",
            guests::FLOOD_P1,
            "[limits]\noutput = \"256KiB\"\n",
        ),
        manifest(
            &s,
            "exfil",
            guests::NET_PROBE_P2,
            &format!(
                "[[http]]\nurl = \"{base}/v1/\"\nmethods = [\"POST\"]\n\n[[http]]\nurl = \"{att}\"\n\
                 methods = [\"POST\"]\n\n[secrets.api]\nfrom = \"env:WARDEN_TEST_API_KEY\"\n\
                 inject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\", url = \"{base}/v1/\" }}\n",
                base = server.url(""),
                att = attacker.url("/")
            ),
        ),
    ];
    #[cfg(feature = "test-escape")]
    manifests.push(manifest(&s, "escaper", &escape_module(&s), ""));
    let refs: Vec<&Path> = manifests.iter().map(PathBuf::as_path).collect();
    let serve = std::sync::Arc::new(Serve::start(&s, &refs, &[]));
    let exfil_step = format!("http-secret POST {} api", attacker.url("/collect"));
    let hostile: Vec<(&str, Vec<String>)> = vec![
        ("membomb", vec![]),
        ("spin", vec![]),
        ("flood", vec![]),
        ("exfil", vec![exfil_step.replace(' ', "%20")]),
        #[cfg(feature = "test-escape")]
        ("escaper", vec!["go".into()]),
    ];
    const HOSTILE_RUNS_EACH: usize = 4;
    let threads: Vec<_> = hostile
        .into_iter()
        .map(|(name, args)| {
            let serve = serve.clone();
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                (0..HOSTILE_RUNS_EACH)
                    .map(|_| (name, serve.run(name, &args, b"")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut answered = Vec::new();
    for _ in 0..20 {
        let r = serve.run("good", &["good"], b"");
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        assert_eq!(
            (v["outcome"].as_str(), v["stdout"].as_str()),
            (Some("exited"), Some("hello, good\n"))
        );
        answered.push(("good", v));
    }
    for t in threads {
        for (name, r) in t.join().unwrap() {
            assert!(r.status == 200 || r.status == 429, "{name}: {r:?}");
            if r.status == 200 {
                answered.push((name, r.json()));
            }
        }
    }
    // Control: the hostile runs were hostile (each hit the limit or filter meant for it).
    let outcome_of = |n: &str| -> Vec<String> {
        answered
            .iter()
            .filter(|(name, _)| *name == n)
            .map(|(_, v)| v["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(outcome_of("membomb").iter().all(|o| o == "memory-limit"));
    assert!(outcome_of("spin").iter().all(|o| o == "wall-limit"));
    assert!(outcome_of("flood").iter().all(|o| o == "output-limit"));
    #[cfg(feature = "test-escape")]
    assert!(outcome_of("escaper").iter().all(|o| o == "worker-died"));
    assert!(
        attacker.requests().is_empty(),
        "the secret left: {:?}",
        attacker.requests()
    );
    assert!(
        serve
            .metric("warden_denials_total{identity=\"exfil\",capability=\"secret\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(serve.get("/healthz").status, 200);
    let audit = serve.audit();
    for (name, v) in &answered {
        let run = v["run"].as_str().unwrap();
        let e = exits(&audit, run);
        assert_eq!(e.len(), 1, "{name} run {run}: {e:?}");
        assert_eq!(e[0]["identity"], format!("spiffe://test.example/{name}"));
        assert_eq!(e[0]["outcome"], v["outcome"]);
    }
    // No record reached the log under another identity, nor the secret in any form.
    let text = std::fs::read_to_string(&serve.audit).unwrap();
    assert!(!text.contains(KEY));
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(serve.stop(), 0);
}

/// The worker processes of a server: (pid, the manifest path on its command line, its
/// environment), read from /proc. A child between its fork and its exec (a worker being
/// started) still has the server's command line and environment, and is left out.
fn workers(serve: &Serve) -> Vec<(String, String, String)> {
    let pid = serve.child.id();
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let children = std::fs::read_to_string(task.unwrap().path().join("children")).unwrap();
        for child in children.split_whitespace() {
            let read = |f: &str| {
                String::from_utf8_lossy(&std::fs::read(format!("/proc/{child}/{f}")).unwrap())
                    .replace('\0', "\n")
            };
            let cmdline = read("cmdline");
            if cmdline.contains("\nserve-worker\n") {
                out.push((child.to_string(), cmdline, read("environ")));
            }
        }
    }
    out
}

#[test]
fn a_worker_gets_its_own_identitys_env_secrets_and_no_others() {
    let s = Scene::new();
    let keeper = manifest(
        &s,
        "keeper",
        guests::NET_PROBE_P2,
        "[secrets.api]\nfrom = \"env:WARDEN_TEST_API_KEY\"\n",
    );
    let other = manifest(&s, "other", guests::HELLO_P1, "");
    let serve = Serve::start(&s, &[&keeper, &other], &[]);
    let found = workers(&serve);
    assert_eq!(found.len(), 2, "{found:?}");
    for (pid, cmdline, environ) in &found {
        let has_key = environ.contains(KEY);
        if cmdline.contains("keeper.warden.toml") {
            // Control: the identity whose manifest names the variable gets it.
            assert!(has_key, "worker {pid} of keeper lacks its secret");
        } else {
            assert!(cmdline.contains("other.warden.toml"), "{cmdline}");
            assert!(!has_key, "worker {pid} of `other` holds keeper's secret");
        }
    }
    assert_eq!(serve.stop(), 0);
}

/// The cgroup v1 `cpu` path of process `pid` (`/proc/PID/cgroup`).
fn cpu_cgroup(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            controllers
                .split(',')
                .any(|c| c == "cpu")
                .then(|| path.to_string())
        })
        .unwrap_or_default()
}

/// Whether this machine lets a process make cgroup v1 `cpu` groups (root, v1 mounted).
fn cpu_groups_here() -> bool {
    let probe =
        Path::new("/sys/fs/cgroup/cpu").join(format!("warden-probe-{}", std::process::id()));
    let ok = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    ok
}

#[test]
fn each_identitys_workers_share_a_cpu_group_of_their_own_which_goes_at_stop() {
    if !cpu_groups_here() {
        // CI runs as root with the v1 `cpu` hierarchy mounted: there, this must run.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI cannot make cgroup v1 cpu groups: the CPU isolation of `warden serve` is untested"
        );
        eprintln!("SKIPPED (loudly): no writable cgroup v1 `cpu` hierarchy on this machine");
        return;
    }
    let s = Scene::new();
    let good = manifest(&s, "good", guests::HELLO_P1, "");
    let busy = manifest(&s, "busy", guests::SPIN_P1, "[limits]\nwall = \"3s\"\n");
    let serve = std::sync::Arc::new(Serve::start(
        &s,
        &[&good, &busy],
        &["--cpu-groups", "require", "--max-workers", "2"],
    ));
    let server_pid = serve.child.id();
    let server_group = cpu_cgroup(&server_pid.to_string());
    // Two spinning runs at once: the busy identity gets a second worker.
    let spinning: Vec<_> = (0..2)
        .map(|_| {
            let serve = serve.clone();
            std::thread::spawn(move || serve.run("busy", &[], b"").json())
        })
        .collect();
    let ours = format!(
        "{}/warden-serve-{server_pid}/",
        server_group.trim_end_matches('/')
    );
    // The second worker is moved into its group just after its start (before it is sent a
    // run): wait until all three are exec'd and placed.
    let placed = |found: &[(String, String, String)]| {
        found.len() == 3
            && found
                .iter()
                .all(|(pid, _, _)| cpu_cgroup(pid).starts_with(&ours))
    };
    let mut found = workers(&serve);
    for _ in 0..500 {
        if placed(&found) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        found = workers(&serve);
    }
    assert_eq!(found.len(), 3, "{found:?}");
    let group_of = |want: &str| -> Vec<String> {
        found
            .iter()
            .filter(|(_, cmdline, _)| cmdline.contains(&format!("{want}.warden.toml")))
            .map(|(pid, _, _)| cpu_cgroup(pid))
            .collect()
    };
    let (good_groups, busy_groups) = (group_of("good"), group_of("busy"));
    assert_eq!(good_groups.len(), 1, "{found:?}");
    assert_eq!(busy_groups.len(), 2, "{found:?}");
    assert!(
        good_groups[0].starts_with(&ours),
        "{good_groups:?} not under {ours}"
    );
    assert!(good_groups[0].ends_with("-good"), "{good_groups:?}");
    assert!(busy_groups[0].ends_with("-busy"), "{busy_groups:?}");
    // Both of busy's workers in one group, weighted as good's: busy gets one identity's share.
    assert_eq!(busy_groups[0], busy_groups[1]);
    assert_ne!(good_groups[0], busy_groups[0]);
    let dir = |g: &str| Path::new("/sys/fs/cgroup/cpu").join(g.trim_start_matches('/'));
    for g in [&good_groups[0], &busy_groups[0]] {
        let shares = std::fs::read_to_string(dir(g).join("cpu.shares")).unwrap();
        assert_eq!(shares.trim(), "1024", "{g}");
    }
    // The well-behaved identity still runs while busy spins.
    let r = serve.run("good", &["good"], b"").json();
    assert_eq!(r["stdout"], "hello, good\n");
    for t in spinning {
        assert_eq!(t.join().unwrap()["outcome"], "wall-limit");
    }
    let root = dir(&ours);
    assert!(root.is_dir());
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(serve.stop(), 0);
    assert!(!root.exists(), "{} left behind", root.display());

    // Control: with `--cpu-groups off` the workers stay in the server's own group.
    let serve = Serve::start(&s, &[&good, &busy], &["--cpu-groups", "off"]);
    let found = workers(&serve);
    assert_eq!(found.len(), 2, "{found:?}");
    for (pid, _, _) in &found {
        assert_eq!(cpu_cgroup(pid), server_group);
    }
    assert_eq!(serve.stop(), 0);
}

/// An upstream that answers a request only once `together` of them are waiting at the same
/// time (`together`), or after `patience` (`alone`).
fn gathering_server(together: usize, patience: std::time::Duration) -> Server {
    // (waiting now, whether `together` were waiting at once since the last time none were)
    let state = std::sync::Arc::new((
        std::sync::Mutex::new((0usize, false)),
        std::sync::Condvar::new(),
    ));
    Server::raw(move |_| {
        let (lock, changed) = &*state;
        let mut s = lock.lock().unwrap();
        s.0 += 1;
        if s.0 >= together {
            s.1 = true;
        }
        changed.notify_all();
        let (mut s, _) = changed.wait_timeout_while(s, patience, |s| !s.1).unwrap();
        let body = if s.1 { "together" } else { "alone" };
        s.0 -= 1;
        if s.0 == 0 {
            s.1 = false;
        }
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

#[test]
fn one_worker_holds_runs_per_worker_runs_at_once_each_answered_and_audited() {
    let s = Scene::new();
    let upstream = gathering_server(3, std::time::Duration::from_millis(1500));
    let probe = manifest(
        &s,
        "probe",
        guests::NET_PROBE_P2,
        &format!(
            "[[http]]\nurl = \"{}\"\nmethods = [\"GET\"]\n\n[limits]\nwall = \"20s\"\n",
            upstream.url("/")
        ),
    );
    let step = format!("http GET {}", upstream.url("/wait")).replace(' ', "%20");
    let three = |extra: &[&str]| -> (Vec<Value>, usize, Vec<Value>) {
        let serve = std::sync::Arc::new(Serve::start(&s, &[&probe], extra));
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let (serve, step) = (serve.clone(), step.clone());
                std::thread::spawn(move || serve.run("probe", &[&step], b"").json())
            })
            .collect();
        let answers: Vec<Value> = runs.into_iter().map(|t| t.join().unwrap()).collect();
        let processes = workers(&serve).len();
        let audit = serve.audit();
        let serve = std::sync::Arc::into_inner(serve).unwrap();
        assert_eq!(serve.stop(), 0);
        (answers, processes, audit)
    };
    let (answers, processes, audit) = three(&["--runs-per-worker", "3", "--max-workers", "1"]);
    assert_eq!(processes, 1, "one worker process held them");
    for a in &answers {
        assert_eq!(a["outcome"], "exited", "{a}");
        assert_eq!(a["stdout"], "http: 200 together\n", "{a}");
        let e = exits(&audit, a["run"].as_str().unwrap());
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0]["identity"], "spiffe://test.example/probe");
    }
    // Control: one run at a time in one worker, and the upstream never sees three at once.
    let (answers, processes, _) = three(&["--runs-per-worker", "1", "--max-workers", "1"]);
    assert_eq!(processes, 1);
    for a in &answers {
        assert_eq!(a["stdout"], "http: 200 alone\n", "{a}");
    }
}

#[test]
fn more_runs_per_worker_than_the_hosts_mapping_limit_allows_stop_the_start_with_one_line() {
    let s = Scene::new();
    let m = manifest(&s, "many", guests::HELLO_P1, "");
    let mut cmd = warden();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--runs-per-worker", "100000000", "--manifest"])
        .arg(&m);
    // (The other --runs-per-worker test starts with 3: the control.)
    crate::util::finish(cmd, None).assert_one_line_error("vm.max_map_count");
}

/// A core module that spins without end given no argument, exits 0 given one, and calls
/// `warden_test::escape(1)` (open a socket) given two.
#[cfg(feature = "test-escape")]
fn spin_or_escape_module(s: &Scene) -> String {
    args_module(
        s,
        "spin-or-escape.wasm",
        "(if (i32.eq (local.get $argc) (i32.const 1))
           (then (loop $forever (br $forever))))
         (if (i32.gt_u (local.get $argc) (i32.const 2))
           (then (drop (call $escape (i32.const 1)))))",
    )
}

#[cfg(feature = "test-escape")]
#[test]
fn a_worker_killed_while_it_holds_several_runs_answers_each_with_its_exit_record() {
    let s = Scene::new();
    let module = spin_or_escape_module(&s);
    let m = manifest(&s, "holder", &module, "[limits]\nwall = \"4s\"\n");
    let held = |extra: &[&str]| -> (Vec<Value>, Value, Serve) {
        let serve = std::sync::Arc::new(Serve::start(&s, &[&m], extra));
        let spinning: Vec<_> = (0..2)
            .map(|_| {
                let serve = serve.clone();
                std::thread::spawn(move || serve.run("holder", &[], b"").json())
            })
            .collect();
        serve.wait_for("warden_runs_in_flight{identity=\"holder\"}", 2.0);
        // The third run escapes while the worker holds the two spinning ones.
        let escaper = serve.run("holder", &["a", "b"], b"").json();
        let answers = spinning.into_iter().map(|t| t.join().unwrap()).collect();
        (answers, escaper, std::sync::Arc::into_inner(serve).unwrap())
    };
    let (answers, escaper, serve) = held(&["--runs-per-worker", "3", "--max-workers", "1"]);
    assert_eq!(escaper["outcome"], "worker-died", "{escaper}");
    let audit = serve.audit();
    for v in answers.iter().chain([&escaper]) {
        // Every run the worker held is answered, none waits for its wall limit.
        assert_eq!(
            (v["outcome"].as_str(), v["code"].as_i64()),
            (Some("worker-died"), Some(159)),
            "{v}"
        );
        let e = exits(&audit, v["run"].as_str().unwrap());
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0]["identity"], "spiffe://test.example/holder");
        assert!(
            e[0]["message"].as_str().unwrap().contains("SIGSYS"),
            "{e:?}"
        );
    }
    // The worker is replaced and serves the next run.
    let v = serve.run("holder", &["ok"], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("exited"), Some(0)),
        "{v}"
    );
    assert_eq!(serve.stop(), 0);

    // Control: unfiltered, the escape goes through, the worker lives, and the two spinning
    // runs end at their wall limit.
    let (answers, escaper, serve) = held(&[
        "--runs-per-worker",
        "3",
        "--max-workers",
        "1",
        "--seccomp",
        "off",
    ]);
    assert_eq!(escaper["outcome"], "exited", "{escaper}");
    for v in &answers {
        assert_eq!(v["outcome"], "wall-limit", "{v}");
    }
    assert_eq!(serve.stop(), 0);
}

/// A serve worker under a read-only folder grant runs a module that polls a granted file
/// (its read goes to tokio's blocking pool): the worker started the pool's threads before its
/// lockdown, so the run exits 0 and the worker lives. Control: an identity whose worker leaves
/// the pool to start threads on demand (a test build's switch, passed to that worker alone)
/// dies of its filter.
#[cfg(feature = "test-escape")]
#[test]
fn a_worker_serving_a_read_only_grant_survives_a_guest_that_polls_a_file() {
    let s = Scene::new();
    s.mkdir("data");
    s.file("data/notes.txt", "served words\n");
    let module = crate::lockdown::file_polls::poll_then_read(&s, "notes.txt");
    let grant = "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n";
    let reader = manifest(&s, "reader", &module, grant);
    let lazy = manifest(
        &s,
        "lazy",
        &module,
        &format!(
            "{grant}\n[env]\nWARDEN_TEST_LAZY_BLOCKING_POOL = \
             {{ from-host = \"WARDEN_TEST_LAZY_BLOCKING_POOL\" }}\n"
        ),
    );
    let serve = Serve::start_with_env(
        &s,
        &[&reader, &lazy],
        &[],
        &[("WARDEN_TEST_LAZY_BLOCKING_POOL", "1")],
    );
    for _ in 0..2 {
        let v = serve.run("reader", &[], b"").json();
        assert_eq!(
            (v["outcome"].as_str(), v["code"].as_i64()),
            (Some("exited"), Some(0)),
            "{v}"
        );
        assert_eq!(v["stdout"], "served words\n", "{v}");
    }
    // No restart (the series appears with the first one).
    assert_eq!(
        serve.metric("warden_worker_restarts_total{identity=\"reader\"}"),
        None
    );
    let v = serve.run("lazy", &[], b"").json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("worker-died"), Some(159)),
        "{v}"
    );
    assert_eq!(serve.stop(), 0);
}
