//! warden in a container: `warden seccomp export --stage container` applied by a real OCI
//! runtime (runc) to a bundle holding warden, the example connector and its manifest, on a
//! read-only root. The run-stage profile is the control: applied from the container's first
//! exec, it kills warden before it starts.
//!
//! The runc tests need root and `runc` (`scripts/setup` installs it). Where either is missing
//! they say so loudly on stderr and fail when `CI=true`, and are skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::guests;
use crate::util::{Outcome, Scene, finish, warden};

/// `SIGSYS`: what seccomp kills with; `runc run` exits with 128 + it.
pub(crate) const KILLED_BY_SECCOMP: i32 = 128 + 31;

pub(crate) fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/report-connector")
}

/// `warden seccomp export MANIFEST --format FORMAT --stage STAGE`.
pub(crate) fn export(manifest: &Path, format: &str, stage: &str) -> Outcome {
    let mut cmd = warden();
    cmd.args(["seccomp", "export", "--format", format, "--stage", stage])
        .arg(manifest);
    finish(cmd, None)
}

fn syscall_names(profile: &Value) -> Vec<String> {
    let mut names: Vec<String> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["names"].as_array().unwrap())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The example connector's manifest with its module next to it, as in the bundle.
fn example_manifest(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(examples_dir().join("report.warden.toml")).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("module = ") {
                "module = \"report-connector.wasm\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("report.warden.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_container_stage_adds_setup_to_the_run_stage_and_says_both_counts() {
    let m = examples_dir().join("report.warden.toml");
    let run = export(&m, "oci", "run");
    let container = export(&m, "oci", "container");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(container.code, 0, "{container:#?}");
    let run_profile: Value = serde_json::from_str(&run.stdout).unwrap();
    let profile: Value = serde_json::from_str(&container.stdout).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_KILL_PROCESS");
    let (r, c) = (syscall_names(&run_profile), syscall_names(&profile));
    assert!(r.iter().all(|n| c.contains(n)), "the run stage is kept");
    // The runtime's exec of warden, the loader's TLS setup, warden's own lockdown.
    for name in ["execve", "set_tid_address", "seccomp", "rt_sigaction"] {
        assert!(c.iter().any(|n| n == name), "{name} missing");
        assert!(!r.iter().any(|n| n == name), "{name} at the run stage");
    }
    // Still refused: processes' other ways, sockets without a grant, and the like.
    for name in [
        "fork", "vfork", "ptrace", "socket", "connect", "mount", "unshare", "bpf",
    ] {
        assert!(!c.iter().any(|n| n == name), "{name} allowed");
    }
    // Both counts on stderr, the profile alone on stdout.
    let said = format!(
        "container stage: {} syscalls; run stage: {} syscalls",
        c.len(),
        r.len()
    );
    assert!(container.stderr.contains(&said), "{container:#?}");
    assert!(run.stderr.contains("run stage"), "{run:#?}");
}

#[test]
fn the_spo_format_is_a_seccomp_profile_object_around_the_oci_profile() {
    let m = examples_dir().join("report.warden.toml");
    let oci = export(&m, "oci", "container");
    let spo = export(&m, "spo", "container");
    assert_eq!(spo.code, 0, "{spo:#?}");
    let object: Value = serde_json::from_str(&spo.stdout).unwrap();
    assert_eq!(object["kind"], "SeccompProfile");
    assert_eq!(
        object["apiVersion"],
        "security-profiles-operator.x-k8s.io/v1beta1"
    );
    assert_eq!(
        object["metadata"]["name"],
        "warden-report-connector-container"
    );
    let profile: Value = serde_json::from_str(&oci.stdout).unwrap();
    assert_eq!(object["spec"], profile);
}

#[test]
fn an_unknown_stage_is_a_usage_error_naming_the_stages() {
    let m = examples_dir().join("report.warden.toml");
    let r = export(&m, "oci", "boot");
    // A command line that does not parse is a usage error (2), not a start failure (125).
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("'boot'"), "{r:#?}");
    assert!(r.stderr.contains("run, container, serve"), "{r:#?}");
    assert!(r.stdout.is_empty(), "no profile written: {r:#?}");
}

// --- Under runc -----------------------------------------------------------------------------

/// Whether the runc tests can run: root and a working `runc`. Where not, says so loudly; in
/// CI (`CI=true`) that is a failure, never a silent pass.
fn runc_available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let runc = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && runc {
        return true;
    }
    let why = match (root, runc) {
        (false, false) => "not root and no runc",
        (false, true) => "not root",
        _ => "no runc (scripts/setup installs it)",
    };
    eprintln!(
        "\n!!!!! container tests NOT RUN: {why}. They prove the container-stage seccomp \
         profile under a real OCI runtime. !!!!!\n"
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the runc tests: {why}"
    );
    false
}

/// An OCI bundle: a rootfs folder with the example connector, its config and data, and the
/// host's /usr (and /lib, /lib64, /bin as the host has them) bound read-only; warden itself
/// bound read-only at /app/warden; /app/out and /audit bound read-write from the host; /tmp
/// and the module cache on tmpfs; the root file system read-only.
pub(crate) struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let b = Bundle { dir };
        let root = b.rootfs();
        for d in [
            "app/data", "usr", "proc", "dev", "sys", "tmp", "cache", "audit",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(b.out()).unwrap();
        std::fs::create_dir_all(b.audit_dir()).unwrap();
        let app = root.join("app");
        std::fs::copy(examples_dir().join("report.toml"), app.join("report.toml")).unwrap();
        for f in std::fs::read_dir(examples_dir().join("data")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), app.join("data").join(f.file_name())).unwrap();
        }
        std::fs::copy(
            guests::REPORT_CONNECTOR_P1,
            app.join("report-connector.wasm"),
        )
        .unwrap();
        example_manifest(&app);
        std::fs::write(app.join("warden"), "").unwrap();
        std::fs::create_dir_all(app.join("out")).unwrap();
        b
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The host folder bound at /app/out.
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The host folder bound at /audit.
    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit-host")
    }

    pub(crate) fn bind(dest: &str, source: &Path, mode: &str) -> Value {
        json!({ "destination": dest, "type": "bind", "source": source,
                "options": ["rbind", mode] })
    }

    /// `runc spec`, adapted: read-only root, no terminal, the mounts above, no cgroup mount
    /// and no `linux.resources` (a cgroup v1 hybrid host refuses them to a rootfs folder),
    /// `seccomp` as the container's profile, `args` after `/app/warden`.
    fn configure(&self, seccomp: Option<Value>, args: &[&str]) {
        let spec = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(spec.status.success(), "runc spec: {spec:?}");
        let path = self.dir.path().join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["root"] = json!({ "path": self.rootfs(), "readonly": true });
        let process = &mut config["process"];
        process["terminal"] = json!(false);
        process["cwd"] = json!("/app");
        let mut argv = vec!["/app/warden"];
        argv.extend_from_slice(args);
        process["args"] = json!(argv);
        process["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("WARDEN_CACHE_DIR=/cache"));
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        mounts.push(Self::bind("/usr", Path::new("/usr"), "ro"));
        for top in ["lib", "lib64", "bin"] {
            let host = Path::new("/").join(top);
            match std::fs::read_link(&host) {
                Ok(target) => std::os::unix::fs::symlink(target, self.rootfs().join(top)).unwrap(),
                Err(_) if host.is_dir() => {
                    std::fs::create_dir_all(self.rootfs().join(top)).unwrap();
                    mounts.push(Self::bind(&format!("/{top}"), &host, "ro"));
                }
                Err(_) => {}
            }
        }
        mounts.push(Self::bind(
            "/app/warden",
            Path::new(env!("CARGO_BIN_EXE_warden")),
            "ro",
        ));
        mounts.push(Self::bind("/app/out", &self.out(), "rw"));
        mounts.push(Self::bind("/audit", &self.audit_dir(), "rw"));
        for tmp in ["/tmp", "/cache"] {
            mounts.push(
                json!({ "destination": tmp, "type": "tmpfs", "source": "tmpfs",
                                "options": ["nosuid", "nodev", "mode=1777"] }),
            );
        }
        let linux = config["linux"].as_object_mut().unwrap();
        linux.remove("resources");
        if let Some(profile) = seccomp {
            linux.insert("seccomp".into(), profile);
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    /// `runc run` of the configured bundle; the audit log is read from /audit.
    fn run(&self) -> Outcome {
        let id = format!(
            "warden-test-{}-{}",
            std::process::id(),
            self.dir.path().file_name().unwrap().to_string_lossy()
        );
        let mut cmd = Command::new("runc");
        cmd.args(["run", "--bundle"])
            .arg(self.dir.path())
            .arg(&id)
            .stdin(std::process::Stdio::null());
        let r = finish(cmd, Some(&self.audit_dir().join("audit.jsonl")));
        // A container killed by its profile can be left behind; never leave one.
        let _ = Command::new("runc")
            .args(["delete", "--force", &id])
            .output();
        r
    }

    /// The profile `warden seccomp export` writes for the bundle's manifest at `stage`.
    fn profile(&self, stage: &str) -> Value {
        let m = self.rootfs().join("app/report.warden.toml");
        let r = export(&m, "oci", stage);
        assert_eq!(r.code, 0, "{r:#?}");
        serde_json::from_str(&r.stdout).unwrap()
    }
}

/// `warden run` of the connector in the bundle, with its audit log in /audit.
const RUN_CONNECTOR: &[&str] = &[
    "run",
    "--manifest",
    "/app/report.warden.toml",
    "--audit",
    "/audit/audit.jsonl",
];

#[test]
fn the_example_connector_does_its_job_under_runc_with_the_container_stage_profile() {
    if !runc_available() {
        return;
    }
    let b = Bundle::new();
    b.configure(Some(b.profile("container")), RUN_CONNECTOR);
    let r = b.run();
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("grand total 599.75"), "{r:#?}");
    let report = std::fs::read_to_string(b.out().join("report.txt")).unwrap();
    assert!(report.contains("grand total 599.75"), "{report}");
    // warden's own lockdown still went in, inside the container's profile.
    let start = r.events("start");
    assert_eq!(start[0]["seccomp"]["mode"], "enforce", "{r:#?}");
    assert_eq!(r.exit()["outcome"], "exited");
}

#[test]
fn a_refused_operation_is_still_refused_under_runc() {
    if !runc_available() {
        return;
    }
    // /data is granted read-only: the connector told to write its report there is refused by
    // warden, and the refusal audited, inside the container as outside.
    let b = Bundle::new();
    let mut args = RUN_CONNECTOR.to_vec();
    args.extend(["--", "/config/report.toml", "/data", "/data"]);
    b.configure(Some(b.profile("container")), &args);
    let r = b.run();
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(!r.stdout.contains("grand total"), "{r:#?}");
    let denied = r.denials("fs");
    assert!(
        denied
            .iter()
            .any(|d| d["target"].as_str() == Some("/data/report.txt")),
        "{r:#?}"
    );
    assert!(!b.rootfs().join("app/data/report.txt").exists());

    // Control: the same container with the granted folder does its job.
    let b = Bundle::new();
    let mut args = RUN_CONNECTOR.to_vec();
    args.extend(["--", "/config/report.toml", "/data", "/out"]);
    b.configure(Some(b.profile("container")), &args);
    let r = b.run();
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("grand total 599.75"), "{r:#?}");
}

#[test]
fn the_run_stage_profile_kills_warden_before_it_starts_under_runc() {
    if !runc_available() {
        return;
    }
    let b = Bundle::new();
    b.configure(Some(b.profile("run")), RUN_CONNECTOR);
    let r = b.run();
    assert_eq!(r.code, KILLED_BY_SECCOMP, "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.audit.is_empty(), "warden never started: {r:#?}");
    assert!(!b.out().join("report.txt").exists());
}

#[cfg(feature = "test-escape")]
mod escape {
    use super::*;

    /// A core module that calls `warden_test::escape(what)` from `_start`, in the bundle.
    fn escaping_guest(b: &Bundle, what: i32) -> String {
        let wat = format!(
            r#"(module
                 (import "warden_test" "escape" (func $escape (param i32) (result i32)))
                 (func (export "_start") (drop (call $escape (i32.const {what})))))"#
        );
        let name = format!("escape-{what}.wasm");
        std::fs::write(
            b.rootfs().join("app").join(&name),
            wat::parse_str(wat).unwrap(),
        )
        .unwrap();
        format!("/app/{name}")
    }

    /// With warden's own lockdown off (`--seccomp off`), the container's profile alone stands
    /// between an escaped guest and the kernel: a socket without a network grant, or a new
    /// process, kills warden. Control: the same container without a profile lets both through.
    #[test]
    fn the_container_profile_alone_stops_an_escape_under_runc() {
        if !runc_available() {
            return;
        }
        for (what, attack) in [(0, "a new process"), (1, "a socket")] {
            for profiled in [true, false] {
                let b = Bundle::new();
                let guest = escaping_guest(&b, what);
                let args = [
                    "run",
                    "--seccomp",
                    "off",
                    "--manifest",
                    "/app/report.warden.toml",
                    "--audit",
                    "/audit/audit.jsonl",
                    &guest,
                ];
                let profile = profiled.then(|| b.profile("container"));
                b.configure(profile, &args);
                let r = b.run();
                if profiled {
                    assert_eq!(r.code, KILLED_BY_SECCOMP, "{attack}: {r:#?}");
                    assert!(r.events("exit").is_empty(), "{attack}: {r:#?}");
                } else {
                    assert_eq!(r.code, 0, "{attack}, control: {r:#?}");
                    assert_eq!(r.exit()["outcome"], "exited", "{attack}: {r:#?}");
                }
            }
        }
    }
}

// --- The Kubernetes objects (deploy/kubernetes) ------------------------------------------------

// --- warden serve under runc ------------------------------------------------------------------

/// A free loopback port: bound, then released for the container's server to take.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /v1/workloads/WORKLOAD/runs` to the server at `port`: the status line and the body,
/// or `None` when nothing answers.
fn post_run(port: u16, workload: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let head = format!(
        "POST /v1/workloads/{workload}/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).ok()?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// A bundle running `warden serve` of the hello module (no grants) on `port`, sharing the
/// host's network namespace so the test can reach it, under the profile of `stage`, with
/// `extra` options.
fn serve_bundle(port: u16, stage: &str, extra: &[&str]) -> Bundle {
    let b = Bundle::new();
    let app = b.rootfs().join("app");
    std::fs::copy(guests::HELLO_P1, app.join("hello.wasm")).unwrap();
    let manifest = app.join("hello.warden.toml");
    std::fs::write(
        &manifest,
        "[identity]\nname = \"hello\"\n[workload]\nmodule = \"/app/hello.wasm\"\n",
    )
    .unwrap();
    let r = export(&manifest, "oci", stage);
    assert_eq!(r.code, 0, "{r:#?}");
    let profile: Value = serde_json::from_str(&r.stdout).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--manifest",
        "/app/hello.warden.toml",
        "--audit",
        "/audit/audit.jsonl",
    ];
    args.extend_from_slice(extra);
    b.configure(Some(profile), &args);
    // The host's network: the server's loopback address is the test's.
    let path = b.dir.path().join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    b
}

/// Starts the bundle with `runc run` in the background; returns the child and its id.
fn start(b: &Bundle) -> (std::process::Child, String) {
    let id = format!(
        "warden-serve-test-{}-{}",
        std::process::id(),
        b.dir.path().file_name().unwrap().to_string_lossy()
    );
    let child = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(b.dir.path())
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child, id)
}

/// Waits for the server at `port` to answer a run of `workload`, while `child` lives: the
/// first answer, or `None` once the container has ended (or after a minute).
pub(crate) fn first_answer(
    port: u16,
    workload: &str,
    child: &mut std::process::Child,
) -> Option<(String, String)> {
    for _ in 0..600 {
        if let Some(a) = post_run(port, workload) {
            return Some(a);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

#[test]
fn warden_serve_answers_under_runc_with_the_serve_stage_profile() {
    if !runc_available() {
        return;
    }
    let port = free_port();
    let b = serve_bundle(port, "serve", &[]);
    let (mut child, id) = start(&b);
    let answer = first_answer(port, "hello", &mut child);
    // SIGTERM: the server drains and exits 0, inside the same profile.
    let _ = Command::new("runc").args(["kill", &id, "TERM"]).output();
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let status = out.status;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (status_line, body) =
        answer.unwrap_or_else(|| panic!("the server never answered ({status:?}): {stderr}"));
    assert!(status_line.contains(" 200 "), "{status_line}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outcome"], "exited", "{v}");
    assert_eq!(v["stdout"], "hello, world\n", "{v}");
    assert_eq!(status.code(), Some(0), "{status:?}");
    // The worker locked itself down within the container's profile.
    let log = std::fs::read_to_string(b.audit_dir().join("audit.jsonl")).unwrap();
    assert!(log.contains("\"worker\":true"), "{log}");
    // Under a filter it did not install, the server makes no CPU groups (a `mkdir` the
    // profile does not list would kill it) and says so. (Outside a container it makes them:
    // serve::each_identitys_workers_share_a_cpu_group_of_their_own_which_goes_at_stop.)
    assert!(
        stderr.contains("seccomp filter it did not install"),
        "{stderr}"
    );
}

/// The control: the container stage (a run's profile) has no listening socket and no way to
/// start a worker, so the server is killed before it answers anything.
#[test]
fn the_container_stage_profile_does_not_let_warden_serve_start() {
    if !runc_available() {
        return;
    }
    let port = free_port();
    let b = serve_bundle(port, "container", &[]);
    let (mut child, id) = start(&b);
    let answer = first_answer(port, "hello", &mut child);
    let _ = Command::new("runc").args(["kill", &id, "KILL"]).output();
    let status = child.wait_with_output().unwrap().status;
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    assert!(answer.is_none(), "{answer:?}");
    assert_eq!(status.code(), Some(KILLED_BY_SECCOMP), "{status:?}");
}

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn kubernetes_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kubernetes_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
}

/// Whether a tool the Kubernetes tests need is there; where not, says so loudly, and fails
/// in CI (`CI=true`).
fn tool_available(program: &str, args: &[&str], install: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n!!!!! Kubernetes objects NOT VALIDATED: `{program}` is missing ({install}) !!!!!\n"
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must validate the Kubernetes objects: {program} is missing ({install})"
        );
    }
    ok
}

/// The documents of a YAML file, as JSON (through PyYAML, which kubernetes-validate brings).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{path:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_kubernetes_objects_validate_against_the_kubernetes_schemas() {
    if !tool_available(
        "kubernetes-validate",
        &["--version"],
        "pip install kubernetes-validate; scripts/setup does",
    ) {
        return;
    }
    for file in kubernetes_files() {
        let out = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file:?}:\n{text}");
        assert!(!text.contains("ERROR") && text.contains("passed"), "{text}");
    }
}

/// `size` ("128Mi", "64MiB") in MiB.
fn mebibytes(size: &str) -> u64 {
    let digits: String = size.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap();
    match &size[digits.len()..] {
        "Mi" | "MiB" => n,
        "Gi" | "GiB" => n * 1024,
        other => panic!("unexpected unit {other:?} in {size:?}"),
    }
}

#[test]
fn every_pod_is_locked_down_and_its_manifests_are_valid_and_fit_its_memory() {
    if !tool_available(
        "python3",
        &["-c", "import yaml"],
        "PyYAML; pip install kubernetes-validate brings it",
    ) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let mut pods = 0;
    for file in kubernetes_files() {
        let docs = yaml_documents(&file);
        // Each ConfigMap's manifests pass `warden check`; their memory limits are collected.
        let mut manifest_memory = Vec::new();
        for cm in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
            // The ConfigMap's files side by side, as its volume shows them; the image's and
            // the volumes' absolute paths made under a scratch root.
            let dir = scratch
                .path()
                .join(cm["metadata"]["name"].as_str().unwrap());
            let root = scratch.path().join("root");
            std::fs::create_dir_all(&dir).unwrap();
            let data = cm["data"].as_object().unwrap();
            for (key, text) in data {
                std::fs::write(dir.join(key), text.as_str().unwrap()).unwrap();
            }
            for (key, text) in data {
                if !key.ends_with(".warden.toml") {
                    continue;
                }
                let text: String = text
                    .as_str()
                    .unwrap()
                    .lines()
                    .map(|l| match l.strip_prefix("host = \"/") {
                        Some(rest) => {
                            let host = root.join(rest.trim_end_matches('"'));
                            std::fs::create_dir_all(&host).unwrap();
                            format!("host = {:?}", host.to_str().unwrap())
                        }
                        None => l.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let path = dir.join(key);
                std::fs::write(&path, &text).unwrap();
                let mut cmd = warden();
                cmd.arg("check").arg(&path);
                let r = finish(cmd, None);
                assert_eq!(r.code, 0, "{file:?} {key}: {r:#?}");
                let memory = text
                    .lines()
                    .find_map(|l| l.strip_prefix("memory = "))
                    .unwrap_or_else(|| panic!("{key} sets no memory limit"));
                manifest_memory.push(mebibytes(memory.trim_matches('"')));
            }
        }
        for doc in &docs {
            let spec = match doc["kind"].as_str() {
                Some("Job" | "Deployment") => &doc["spec"]["template"]["spec"],
                Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                _ => continue,
            };
            pods += 1;
            let ctx = &spec["securityContext"];
            assert_eq!(ctx["runAsNonRoot"], true, "{file:?}");
            assert_eq!(ctx["seccompProfile"]["type"], "Localhost", "{file:?}");
            let profile = ctx["seccompProfile"]["localhostProfile"].as_str().unwrap();
            assert!(
                profile.starts_with("warden/") && profile.ends_with(".json"),
                "{profile}"
            );
            assert_eq!(spec["automountServiceAccountToken"], false, "{file:?}");
            for c in spec["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{file:?}");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{file:?}");
                assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{file:?}");
                let limit = mebibytes(c["resources"]["limits"]["memory"].as_str().unwrap());
                let request = mebibytes(c["resources"]["requests"]["memory"].as_str().unwrap());
                assert_eq!(limit, request, "{file:?}: a guaranteed amount, not a hope");
                // The guest's memory plus warden's own (release: 14-36 MB peak RSS measured).
                for m in &manifest_memory {
                    assert!(limit >= m + 64, "{file:?}: {limit}Mi for a {m}MiB guest");
                }
            }
        }
    }
    assert_eq!(pods, 3, "a Job, a CronJob and a Deployment");
}

/// `--cpu-groups require` under the container's profile refuses to start with one line and
/// exit 125, rather than attempt a `mkdir` the profile would kill it for. (The control, the
/// same bundle without the option, serves: the test above.)
#[test]
fn cpu_groups_required_under_a_containers_profile_refuse_to_start_with_one_line() {
    if !runc_available() {
        return;
    }
    let port = free_port();
    let b = serve_bundle(port, "serve", &["--cpu-groups", "require"]);
    let (mut child, id) = start(&b);
    let answer = first_answer(port, "hello", &mut child);
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(answer.is_none(), "{answer:?}");
    assert_eq!(out.status.code(), Some(125), "{:?}: {stderr}", out.status);
    assert!(
        stderr.contains("--cpu-groups require") && stderr.contains("seccomp filter"),
        "{stderr}"
    );
}

/// A profile exported for several manifests is named after the whole set, in any order, and
/// never after one of them; the name is a valid Kubernetes object name. Control: one manifest
/// keeps its readable name.
#[test]
fn an_spo_profile_for_several_manifests_is_named_for_the_set_in_any_order() {
    let s = Scene::new();
    let a = s.file("a.warden.toml", "[identity]\nname = \"alpha\"\n");
    let b = s.file("b.warden.toml", "[identity]\nname = \"beta\"\n");
    let name = |manifests: &[&Path]| {
        let mut cmd = warden();
        cmd.args(["seccomp", "export", "--format", "spo", "--stage", "serve"])
            .args(manifests);
        let r = finish(cmd, None);
        assert_eq!(r.code, 0, "{r:#?}");
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        v["metadata"]["name"].as_str().unwrap().to_owned()
    };
    let ab = name(&[&a, &b]);
    assert_eq!(ab, name(&[&b, &a]));
    assert!(ab.starts_with("warden-serve.set-"), "{ab}");
    assert!(
        ab.len() <= 253
            && ab
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'),
        "{ab}"
    );
    assert_eq!(name(&[&a]), "warden-alpha-serve");
    assert_ne!(ab, name(&[&a]));
}
