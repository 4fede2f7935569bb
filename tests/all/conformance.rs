//! Conformance: the official WASI test suites, run under warden with the grants their own
//! harnesses give.
//!
//! - `wasi_testsuite_p1`: WebAssembly/wasi-testsuite's prebuilt preview 1 binaries (C, Rust and
//!   AssemblyScript; `tests/conformance/wasi-testsuite/`). Each test's `.json` becomes a
//!   manifest: `root` a read-write `[[files]]` grant of a fresh copy of that folder at `/`,
//!   `env` the `[env]` table, `args` the command line after `--`, and the clocks and random
//!   that the suite's harness (a wasmtime command line) always has. A case passes when the
//!   exit code is the expected one and stdout and stderr begin with the expected text (the
//!   suite's harness reads exactly that many bytes and compares them).
//! - `wasmtime_p2`: wasmtime's own test programs (its `crates/test-programs`), built as
//!   components (`tests/conformance/wasmtime-p2/`). Each program gets, as a manifest, what the
//!   wasmtime harness that runs it grants: `crates/wasi/tests/all/p2/sync.rs` (a read-write
//!   scratch folder, `ERRNO_MODE_UNIX`, the network), `tests/all/cli_tests.rs` (the `wasmtime
//!   run` flags of each test) and `crates/wasi-http/tests/all/p2/sync.rs` (an echoing HTTP
//!   server named by `HTTP_SERVER`; here a loopback server this test starts). The programs'
//!   own assertions decide; the harness checks exit codes and output as wasmtime's does.
//!
//! Cases warden fails or cannot run are listed, each with its reason, in
//! `tests/conformance/expected.toml`, which docs/guests.md cites. A listed failure that passes
//! fails the test (take it off the list), and so do a listed failure whose output does not show
//! the text its entry names (it fails for another reason now) and a listed case that does not
//! exist: the list stays true. Every case of a suite runs in one `#[test]`, a few at a time, and every
//! failure is reported by name. Each run is the real `warden run` with the default
//! `--seccomp enforce`.

use crate::server::{Request, Server};
use crate::util;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// `tests/conformance/`: the vendored binaries and the list of expected failures.
fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

/// At most this many `warden` processes at once per suite (one per core, at least two): the
/// suites run in CI on two cores, and each run's compile (on a cold cache) uses more than one
/// thread.
const PARALLEL: usize = 4;

/// The wall limit of one case: far above what any case needs, so a case that hangs (waiting
/// for input that never comes, say) ends as a failure instead of holding the suite.
const CASE_WALL: &str = "20s";

// ---------------------------------------------------------------------------------------------
// What one case expects and how it is run.

/// The exit code a case expects.
#[derive(Debug, Clone, Copy)]
enum Code {
    Is(i32),
    /// Any code but 0 (wasmtime's harness asserts only that the run failed).
    Failure,
}

/// What a case expects of a stream.
#[derive(Debug, Clone)]
enum Text {
    Any,
    Prefix(String),
    Exact(String),
    Contains(String),
}

impl Text {
    fn check(&self, stream: &str, got: &str) -> Result<(), String> {
        let ok = match self {
            Text::Any => true,
            Text::Prefix(want) => got.starts_with(want.as_str()),
            Text::Exact(want) => got == want,
            Text::Contains(want) => got.contains(want.as_str()),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{stream} is not as expected: want {self:?}"))
        }
    }
}

/// How the harness drives the process beyond starting it and reading its output.
#[derive(Debug, Clone)]
enum Drive {
    /// stdin is the null device.
    Plain,
    /// These bytes are written to stdin, which is then closed.
    Stdin(Vec<u8>),
    /// stdin is an open directory (a descriptor the guest cannot read).
    StdinIsDirectory,
    /// The harness reads a little of stdout, then closes it while the guest goes on writing.
    CloseStdoutEarly,
    /// The harness reads the guest's prompt, `> `, before it closes stdin: the prompt must
    /// reach stdout while the guest waits for input.
    PromptBeforeInput,
}

/// A check of what a guest left behind in its scene.
type After = Box<dyn Fn(&util::Scene) -> Result<(), String> + Send + Sync>;

/// One case: a module, the manifest it runs under and what the harness checks.
struct Case {
    name: String,
    module: PathBuf,
    /// Holds the manifest and the case's files; removed when the case is done.
    scene: util::Scene,
    /// The manifest's body, after `[identity]`.
    manifest: String,
    args: Vec<String>,
    drive: Drive,
    code: Code,
    stdout: Text,
    stderr: Text,
    /// `[limits]`, key → TOML value; `wall` is `CASE_WALL` unless a case says otherwise.
    limits: BTreeMap<&'static str, String>,
    /// A check of what the guest left behind (a file it appended to, say).
    after: Option<After>,
}

impl Case {
    fn new(name: &str, module: PathBuf) -> Case {
        Case {
            name: name.to_string(),
            module,
            scene: util::Scene::new(),
            manifest: String::new(),
            args: Vec::new(),
            drive: Drive::Plain,
            code: Code::Is(0),
            stdout: Text::Any,
            stderr: Text::Any,
            limits: BTreeMap::from([("wall", format!("\"{CASE_WALL}\""))]),
            after: None,
        }
    }

    /// Sets one `[limits]` key (`value` is TOML).
    fn limit(&mut self, key: &'static str, value: &str) -> &mut Self {
        self.limits.insert(key, value.to_string());
        self
    }

    /// Appends manifest TOML.
    fn grant(&mut self, toml: &str) -> &mut Self {
        self.manifest.push_str(toml);
        self.manifest.push('\n');
        self
    }

    /// The host's clocks and CSPRNG, which every harness here gives its guests.
    fn clocks_and_random(&mut self) -> &mut Self {
        self.grant("[clocks]\nwall = true\nmonotonic = true\n\n[random]\nsecure = true\n")
    }

    /// `[env]` with these variables.
    fn env<'a>(&mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> &mut Self {
        let mut table = String::from("[env]\n");
        for (k, v) in vars {
            let _ = writeln!(table, "{} = {}", toml_str(k), toml_str(v));
        }
        self.grant(&table)
    }

    /// A `[[files]]` grant of the scene's folder `rel` at `guest`.
    fn dir(&mut self, rel: &str, guest: &str, access: &str) -> &mut Self {
        self.scene.mkdir(rel);
        self.grant(&format!(
            "[[files]]\nhost = {}\nguest = {}\naccess = \"{access}\"\n",
            toml_str(rel),
            toml_str(guest)
        ))
    }

    /// Runs the case and judges it as the suite's harness would.
    fn run(&self) -> Result<(), String> {
        let mut limits = String::from("[limits]\n");
        for (key, value) in &self.limits {
            let _ = writeln!(limits, "{key} = {value}");
        }
        let manifest = self.scene.manifest(&format!("{limits}\n{}", self.manifest));
        let mut cmd = util::warden();
        cmd.arg("run")
            .arg("--manifest")
            .arg(&manifest)
            .arg(&self.module);
        if !self.args.is_empty() {
            cmd.arg("--").args(&self.args);
        }
        let (code, stdout, stderr) = drive(cmd, &self.drive)?;
        let tail = |s: &str| -> String {
            let start = s.len().saturating_sub(1500);
            let start = (start..s.len())
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(s.len());
            s[start..].to_string()
        };
        let context = || {
            format!(
                "\n      exit {code}\n      stdout (end): {:?}\n      stderr (end): {:?}",
                tail(&stdout),
                tail(&stderr)
            )
        };
        let code_ok = match self.code {
            Code::Is(want) => code == want,
            Code::Failure => code != 0,
        };
        if !code_ok {
            return Err(format!(
                "exit code {code}, want {:?}{}",
                self.code,
                context()
            ));
        }
        self.stdout
            .check("stdout", &stdout)
            .and_then(|()| self.stderr.check("stderr", &stderr))
            .map_err(|e| format!("{e}{}", context()))?;
        if let Some(after) = &self.after {
            after(&self.scene).map_err(|e| format!("{e}{}", context()))?;
        }
        Ok(())
    }
}

/// Starts `cmd`, drives it and returns its exit code (128 + N for signal N, as a shell
/// shows it), stdout and stderr.
fn drive(mut cmd: Command, how: &Drive) -> Result<(i32, String, String), String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    match how {
        Drive::Plain | Drive::CloseStdoutEarly => {
            cmd.stdin(Stdio::null());
        }
        Drive::Stdin(_) | Drive::PromptBeforeInput => {
            cmd.stdin(Stdio::piped());
        }
        Drive::StdinIsDirectory => {
            let dir = std::fs::File::open(conformance_dir()).map_err(|e| e.to_string())?;
            cmd.stdin(Stdio::from(dir));
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawn warden: {e}"))?;
    let mut early = Vec::new();
    match how {
        Drive::Stdin(bytes) => {
            let mut stdin = child.stdin.take().ok_or("no stdin pipe")?;
            // A guest that exits without reading leaves the pipe closed: not an error here.
            let _ = stdin.write_all(bytes);
        }
        Drive::CloseStdoutEarly => {
            let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
            let mut buf = [0u8; 64];
            let n = stdout.read(&mut buf).map_err(|e| e.to_string())?;
            early.extend_from_slice(&buf[..n]);
        }
        Drive::PromptBeforeInput => {
            let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
            let mut buf = [0u8; 2];
            let got = stdout.read_exact(&mut buf);
            drop(child.stdin.take());
            if got.is_err() || &buf != b"> " {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the prompt did not reach stdout before stdin closed: {got:?} {buf:?}"
                ));
            }
            early.extend_from_slice(&buf);
        }
        Drive::Plain | Drive::StdinIsDirectory => {}
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let code = out.status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
    });
    early.extend_from_slice(&out.stdout);
    Ok((
        code,
        String::from_utf8_lossy(&early).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A TOML basic string: JSON's string escapes are all valid TOML escapes.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Copies the folder `from` into `to` (created), recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The list of expected failures and exclusions, and the verdict on a suite.

/// One entry of `tests/conformance/expected.toml`.
#[derive(Clone)]
struct Listed {
    reason: String,
    /// For a failing case: text its failure must show (in its output or the harness's
    /// message), so a case that goes on failing for another reason is reported too.
    shows: Option<String>,
}

/// `tests/conformance/expected.toml`: per (suite, case), the entry.
struct Expected {
    fails: BTreeMap<(String, String), Listed>,
    excluded: BTreeMap<(String, String), Listed>,
}

fn expected() -> Expected {
    let path = conformance_dir().join("expected.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let read = |key: &str| -> BTreeMap<(String, String), Listed> {
        let mut out = BTreeMap::new();
        let entries = table.get(key).and_then(|v| v.as_array()).cloned();
        for entry in entries.unwrap_or_default() {
            let field = |f: &str| entry.get(f).and_then(|v| v.as_str()).map(str::to_string);
            let need = |f: &str| {
                field(f)
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| panic!("{path:?}: a [[{key}]] without `{f}`: {entry}"))
            };
            let listed = Listed {
                reason: need("reason"),
                shows: (key == "fails").then(|| need("shows")),
            };
            let id = (need("suite"), need("case"));
            assert!(
                out.insert(id.clone(), listed).is_none(),
                "{path:?}: {id:?} is listed twice"
            );
        }
        out
    };
    Expected {
        fails: read("fails"),
        excluded: read("excluded"),
    }
}

/// Runs `cases` (minus the excluded ones) a few at a time and fails, naming every case, unless
/// each passes or fails as `expected.toml` says.
fn verdict(suite: &str, cases: Vec<Case>) {
    let expected = expected();
    let listed = |map: &BTreeMap<(String, String), Listed>| -> BTreeMap<String, Listed> {
        map.iter()
            .filter(|((s, _), _)| s == suite)
            .map(|((_, c), l)| (c.clone(), l.clone()))
            .collect()
    };
    let fails = listed(&expected.fails);
    let excluded = listed(&expected.excluded);
    let mut problems = Vec::new();
    for name in fails.keys().chain(excluded.keys()) {
        if !cases.iter().any(|c| &c.name == name) {
            problems.push(format!(
                "{name}: listed in expected.toml, but the suite has no such case"
            ));
        }
        if fails.contains_key(name) && excluded.contains_key(name) {
            problems.push(format!("{name}: listed both as failing and as excluded"));
        }
    }
    let to_run: Vec<&Case> = cases
        .iter()
        .filter(|c| !excluded.contains_key(&c.name))
        .collect();
    let started = Instant::now();
    let results = run_all(&to_run);
    let (mut passed, mut failed_as_listed) = (0, 0);
    for (case, result) in to_run.iter().zip(results) {
        match (result, fails.get(&case.name)) {
            (Ok(()), None) => passed += 1,
            (Err(why), Some(listed)) => match &listed.shows {
                Some(shows) if !why.contains(shows.as_str()) => problems.push(format!(
                    "{}: fails, but not as tests/conformance/expected.toml says (its failure \
                     should show {shows:?}): {why}",
                    case.name
                )),
                _ => failed_as_listed += 1,
            },
            (Ok(()), Some(listed)) => problems.push(format!(
                "{}: passes now, but tests/conformance/expected.toml lists it as failing \
                 ({}): take it off the list (and out of docs/guests.md)",
                case.name, listed.reason
            )),
            (Err(why), None) => problems.push(format!("{}: {why}", case.name)),
        }
    }
    eprintln!(
        "conformance {suite}: {} cases: {passed} pass, {failed_as_listed} fail as listed, {} \
         excluded, {} unexpected; {:.1} s",
        cases.len(),
        excluded.len(),
        problems.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "conformance {suite}: {} unexpected results:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Runs every case, one per core at a time (at least 2, at most `PARALLEL`); the results in
/// the cases' order.
fn run_all(cases: &[&Case]) -> Vec<Result<(), String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<(), String>>>> =
        Mutex::new(cases.iter().map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, PARALLEL);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let result = case.run();
                    results.lock().unwrap()[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".to_string())))
        .collect()
}

/// The `.wasm` files of a folder, sorted by name.
fn modules_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    out.sort();
    out
}

fn stem(module: &Path) -> String {
    module.file_stem().unwrap().to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// WebAssembly/wasi-testsuite, preview 1.

/// The suites of wasi-testsuite, each a folder of `.wasm` + `.json` (+ fixture folders).
const WASI_TESTSUITE: &[&str] = &["assemblyscript", "c", "rust"];

/// One wasi-testsuite case from its `.json` (absent: the defaults: no args, env or root, exit
/// 0, nothing checked on stdout or stderr).
fn wasi_testsuite_case(suite: &str, module: &Path) -> Case {
    let name = format!("{suite}/{}", stem(module));
    let mut case = Case::new(&name, module.to_path_buf());
    let spec: serde_json::Value = match std::fs::read_to_string(module.with_extension("json")) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}")),
        Err(_) => serde_json::json!({}),
    };
    let spec = spec.as_object().unwrap();
    for key in spec.keys() {
        assert!(
            ["args", "env", "root", "exit_code", "stdout", "stderr"].contains(&key.as_str()),
            "{name}.json: `{key}` is not in the legacy specification this runner reads"
        );
    }
    case.args = spec
        .get("args")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    if let Some(env) = spec.get("env").and_then(|e| e.as_object()) {
        case.env(env.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())));
    }
    if let Some(root) = spec.get("root").and_then(|r| r.as_str()) {
        // A fresh copy each run: the tests create and remove files in it.
        copy_dir(
            &module.parent().unwrap().join(root),
            &case.scene.path("root"),
        );
        case.dir("root", "/", "read-write");
    }
    case.clocks_and_random();
    case.code = Code::Is(
        spec.get("exit_code")
            .and_then(|c| c.as_i64())
            .map_or(0, |c| c as i32),
    );
    let text = |key: &str| match spec.get(key).and_then(|s| s.as_str()) {
        Some(s) => Text::Prefix(s.to_string()),
        None => Text::Any,
    };
    case.stdout = text("stdout");
    case.stderr = text("stderr");
    case
}

#[test]
fn wasi_testsuite_p1() {
    let root = conformance_dir().join("wasi-testsuite");
    let mut cases = Vec::new();
    for suite in WASI_TESTSUITE {
        for module in modules_in(&root.join(suite)) {
            cases.push(wasi_testsuite_case(suite, &module));
        }
    }
    assert!(cases.len() > 60, "the vendored suite is missing: {root:?}");
    verdict("wasi-testsuite", cases);
}

// ---------------------------------------------------------------------------------------------
// wasmtime's test programs, as preview 2 components.

/// `crates/wasi/tests/all/p2/sync.rs`: a read-write scratch folder whose name is the first
/// argument (wasmtime preopens it as `.`; warden's guest paths are absolute, so `/scratch`),
/// `ERRNO_MODE_UNIX`, `DISABLE_IPV6` when the host has no IPv6 loopback, and the network.
fn sync_harness(case: &mut Case, with_network: bool) {
    case.dir("scratch", "/scratch", "read-write");
    case.args = vec!["/scratch".to_string()];
    let mut env = vec![("ERRNO_MODE_UNIX", "1")];
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        env.push(("DISABLE_IPV6", "1"));
    }
    case.env(env);
    case.clocks_and_random();
    if with_network {
        // wasmtime's harness inherits the host's whole network; a manifest names each
        // destination with its port, and these programs pick ports at run time.
        // Listening: any port on the loopback addresses and on every interface, which
        // these programs bind.
        case.grant(
            "[network]\nconnect = [\"127.0.0.1:80\", \"[::1]:80\"]\n\
             listen = [\"127.0.0.1:0\", \"[::1]:0\", \"0.0.0.0:0\", \"[::]:0\"]\n",
        );
    }
}

/// `run_with_readonly_testfile`: the sync harness plus a read-only preopen `readonly` holding
/// `test.txt`, which must be unchanged afterwards.
fn readonly_testfile(case: &mut Case, file: &'static str, contents: &'static str) {
    sync_harness(case, false);
    case.scene.file(&format!("readonly/{file}"), contents);
    case.dir("readonly", "/readonly", "read");
    case.after = Some(Box::new(move |scene| {
        let now = std::fs::read_to_string(scene.path(&format!("readonly/{file}")))
            .map_err(|e| format!("readonly/{file}: {e}"))?;
        if now == contents {
            Ok(())
        } else {
            Err(format!("readonly/{file} changed: {now:?}"))
        }
    }));
}

/// `tests/all/cli_tests.rs`: `wasmtime run` gives a component clocks and random, and nothing
/// else unless a flag asks for it.
fn cli_harness(case: &mut Case) {
    case.clocks_and_random();
}

/// The loopback stand-in for wasmtime's HTTP test server: it answers every request with `200`,
/// the method and target in `x-wasmtime-test-method` and `x-wasmtime-test-uri`, and the
/// request's body as its own.
fn echo_server() -> Server {
    Server::raw(|req: &Request| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nx-wasmtime-test-method: {}\r\nx-wasmtime-test-uri: {}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            req.method,
            req.path,
            req.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&req.body);
        out
    })
}

/// `crates/wasi-http/tests/all/p2/sync.rs`: `HTTP_SERVER` names the test server; wasmtime's
/// default hooks let a request go anywhere, warden's manifest grants that server, every
/// method a rule can name.
fn http_harness(case: &mut Case, server: &Server) {
    case.env([("HTTP_SERVER", server.addr().as_str())]);
    case.clocks_and_random();
    case.grant(&format!(
        "[[http]]\nurl = \"{}\"\nmethods = [\"GET\", \"HEAD\", \"POST\", \"PUT\", \"PATCH\", \
         \"DELETE\", \"OPTIONS\"]\n",
        server.url("/")
    ));
    case.limit("egress", "\"64MiB\"")
        .limit("http-requests", "1000");
}

/// The case for one of wasmtime's programs, set up as its harness sets it up.
fn wasmtime_case(module: &Path, server: &Server) -> Case {
    let name = stem(module);
    let mut case = Case::new(&name, module.to_path_buf());
    let c = &mut case;
    match name.as_str() {
        "p1_file_truncation_readonly"
        | "p2_file_truncation_readonly"
        | "p1_file_hardlink_across_perms"
        | "p2_file_hardlink_across_perms"
        | "p1_file_rename_across_perms"
        | "p2_file_rename_across_perms" => {
            readonly_testfile(c, "test.txt", "read only test file\n");
        }
        "p2_file_stream_not_permitted" => {
            readonly_testfile(c, "stream-perms.txt", "stream permission test\n");
        }
        "p1_stat_extreme_host_mtime" => {
            sync_harness(c, false);
            let file = c.scene.file("scratch/extreme.dat", "hello");
            extreme_mtime(&file);
        }
        "p1_poll_oneoff_stdio" => {
            sync_harness(c, false);
            c.grant("[stdio]\nstdin = \"inherit\"\n");
        }
        "p2_stream_pollable_traps" => {
            sync_harness(c, false);
            c.code = Code::Is(123);
            c.stderr = Text::Contains("resource has children".into());
        }
        "p2_pollable_traps" => {
            sync_harness(c, false);
            c.code = Code::Is(123);
            c.stderr = Text::Contains("empty poll list".into());
        }
        "p2_udp_send_too_much" => {
            sync_harness(c, true);
            c.code = Code::Is(123);
            c.stderr = Text::Contains("unpermitted: argument exceeds permitted size".into());
        }
        n if n.starts_with("p2_tcp_") || n.starts_with("p2_udp_") || n == "p2_ip_name_lookup" => {
            sync_harness(c, true);
        }
        n if n.starts_with("p2_http_") => http_harness(c, server),
        n if n.starts_with("p2_cli_") => {
            cli_harness(c);
            cli_case(c, n);
        }
        _ => sync_harness(c, false),
    }
    case
}

/// Sets a file's times as far in the past as the host allows, as wasmtime's
/// `prepare_extreme_mtime_fixture` does (a host that refuses keeps the file as it is).
fn extreme_mtime(path: &Path) {
    use std::time::{Duration, SystemTime};
    let far = [i64::MAX as u64 + 1, 11_644_473_600, 1]
        .into_iter()
        .find_map(|s| SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(s)))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let times = std::fs::FileTimes::new()
        .set_modified(far)
        .set_accessed(far);
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_times(times);
    }
}

/// The `p2_cli_*` programs: each test of `tests/all/cli_tests.rs` as grants and checks.
fn cli_case(c: &mut Case, name: &str) {
    const JABBERWOCK: &str = "So rested he by the Tumtum tree";
    const BRILLIG: &str = "'Twas brillig, and the slithy toves.\n";
    match name {
        "p2_cli_args" => {
            c.args = ["hello", "this", "", "is an argument", "with 🚩 emoji"]
                .map(String::from)
                .to_vec();
        }
        // `-Scwd=/sandbox`.
        "p2_cli_initial_cwd" => {
            c.dir("sandbox", "/sandbox", "read");
            c.grant("[workload]\ncwd = \"/sandbox\"\n");
        }
        "p2_cli_stdin_empty" => {
            c.grant("[stdio]\nstdin = \"inherit\"\n");
            c.drive = Drive::Stdin(b"not to be read".to_vec());
        }
        "p2_cli_stdin" => {
            c.grant("[stdio]\nstdin = \"inherit\"\n");
            c.drive = Drive::Stdin(JABBERWOCK.as_bytes().to_vec());
        }
        "p2_cli_splice_stdin" => {
            c.grant("[stdio]\nstdin = \"inherit\"\n");
            c.drive = Drive::Stdin(JABBERWOCK.as_bytes().to_vec());
            c.stdout = Text::Exact(format!(
                "before splice\n{JABBERWOCK}\ncompleted splicing {} bytes\n",
                JABBERWOCK.len()
            ));
        }
        "p2_cli_stdout_epipe" => {
            c.drive = Drive::CloseStdoutEarly;
            c.stderr = Text::Contains("got expected StreamError::Closed".into());
        }
        "p2_cli_stdin_eisdir" => {
            c.grant("[stdio]\nstdin = \"inherit\"\n");
            c.drive = Drive::StdinIsDirectory;
            c.stderr = Text::Contains("got expected ErrorCode::IsDirectory".into());
        }
        "p2_cli_env" => {
            c.env([("frabjous", "day"), ("callooh", "callay")]);
        }
        "p2_cli_file_read" => {
            c.scene.file("root/bar.txt", "And stood awhile in thought");
            c.dir("root", "/", "read-write");
        }
        "p2_cli_file_append" => {
            c.scene.file("root/bar.txt", BRILLIG);
            c.dir("root", "/", "read-write");
            c.after = Some(Box::new(|scene| {
                let got = std::fs::read_to_string(scene.path("root/bar.txt"))
                    .map_err(|e| e.to_string())?;
                let want = format!(
                    "{BRILLIG}Did gyre and gimble in the wabe;\nAll mimsy were the \
                     borogoves,\nAnd the mome raths outgrabe.\n"
                );
                if got == want {
                    Ok(())
                } else {
                    Err(format!("bar.txt is {got:?}"))
                }
            }));
        }
        "p2_cli_file_dir_sync" => {
            c.scene.file("root/bar.txt", BRILLIG);
            c.dir("root", "/", "read-write");
        }
        "p2_cli_exit_failure" => c.code = Code::Is(1),
        // `-Scli-exit-with-code`.
        "p2_cli_exit_with_code" => c.code = Code::Is(42),
        "p2_cli_exit_panic" => {
            c.code = Code::Failure;
            c.stderr = Text::Contains("Curiouser and curiouser!".into());
        }
        "p2_cli_directory_list" => {
            for f in [
                "foo.txt",
                "bar.txt",
                "baz.txt",
                "sub/wow.txt",
                "sub/yay.txt",
            ] {
                c.scene.file(&format!("root/{f}"), "");
            }
            c.dir("root", "/", "read-write");
        }
        "p2_cli_stdio_write_flushes" => {
            c.grant("[stdio]\nstdin = \"inherit\"\n");
            c.drive = Drive::PromptBeforeInput;
        }
        // `-Sinherit-network,tcp=no` and `udp=no`: warden has no switch between the two, and
        // the closest grant is no `[network]` at all.
        "p2_cli_no_tcp" | "p2_cli_no_udp" | "p2_cli_no_ip_name_lookup" => {}
        // `-Wtimeout=250ms`: the run must be stopped.
        "p2_cli_sleep_forever" => {
            c.limit("wall", "\"250ms\"");
            c.code = Code::Is(124);
        }
        // `-Sinherit-env` with 512 variables of 1 KiB each.
        "p2_cli_large_env" => {
            let value = "x".repeat(1024);
            let vars: Vec<(String, String)> = (0..512)
                .map(|i| (format!("KEY{i}"), value.clone()))
                .collect();
            c.env(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        // `--argv0=b … b`: the program checks that its first argument is its argv[0]; warden's
        // argv[0] is the module's file name.
        "p2_cli_argv0" => {
            c.args = vec![c.module.file_name().unwrap().to_string_lossy().into_owned()];
        }
        // `--dir=/::/a --dir=/::/b --dir=/::/c` (here three scratch folders).
        "p2_cli_multiple_preopens" => {
            for g in ["a", "b", "c"] {
                c.dir(g, &format!("/{g}"), "read-write");
            }
        }
        // `run_much_stdout`: 2^18 bytes of `a`, here as 256 writes of 1 KiB (wasmtime also
        // tries 2, 4, 8 and 16 KiB writes).
        "p2_cli_much_stdout" => {
            c.args = vec!["a".repeat(1 << 10), (1 << 8).to_string()];
            c.stdout = Text::Exact("a".repeat(1 << 18));
        }
        // `-Smax-resources=50`: 100 live pollables are too many.
        "p2_cli_max_resources" => {
            c.limit("handles", "50");
            c.code = Code::Failure;
            c.stderr = Text::Contains("resource table has no free keys".into());
        }
        // `-Smax-resources=100`.
        "p2_cli_many_resources" => {
            c.limit("handles", "100");
            c.code = Code::Failure;
            c.stderr = Text::Contains("resource table has no free keys".into());
        }
        _ => {}
    }
}

#[test]
fn wasmtime_p2() {
    let dir = conformance_dir().join("wasmtime-p2");
    let server = echo_server();
    let cases: Vec<Case> = modules_in(&dir)
        .iter()
        .map(|m| wasmtime_case(m, &server))
        .collect();
    assert!(
        cases.len() > 100,
        "the vendored programs are missing: {dir:?}"
    );
    verdict("wasmtime-p2", cases);
}

/// docs/guests.md names every case that `expected.toml` lists, so what the docs say about
/// conformance is what the tests hold.
#[test]
fn the_docs_list_every_expected_failure() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guests.md"))
            .unwrap();
    let expected = expected();
    let missing: Vec<String> = expected
        .fails
        .keys()
        .chain(expected.excluded.keys())
        .filter(|(_, case)| !docs.contains(&format!("`{case}`")))
        .map(|(suite, case)| format!("{suite}: {case}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/guests.md does not name these listed cases: {missing:#?}"
    );
}

/// The harness's own checks: a case with the wrong exit code or output fails, naming why.
#[test]
fn a_case_that_misbehaves_is_reported() {
    let module = conformance_dir().join("wasi-testsuite/assemblyscript/proc_exit-failure.wasm");
    let mut case = Case::new("exit", module.clone());
    case.code = Code::Is(0);
    let err = case.run().unwrap_err();
    assert!(err.contains("exit code 33"), "{err}");
    let mut case = Case::new("stdout", module);
    case.code = Code::Is(33);
    case.stdout = Text::Prefix("hello".into());
    let err = case.run().unwrap_err();
    assert!(err.contains("stdout is not as expected"), "{err}");
}
