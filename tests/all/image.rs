//! warden's image as `scripts/image` builds it here, with buildah from `scratch` and nothing
//! pulled, unpacked by umoci into an OCI bundle and run under runc with the exported
//! container-stage (or serve-stage) seccomp profile, a read-only root and user 65532: the
//! example connector's job, a refusal, and a `warden serve` container answering a run. The
//! run-stage profile, the container stage for a server and a SIGTERM are the controls.
//!
//! The image is built once per test process, from the debug warden under test, into
//! `$CARGO_TARGET_TMPDIR/image`. The tests need root, runc, buildah, umoci, jq and ldd
//! (`scripts/setup` installs them on Debian). Where any is missing they say so loudly on
//! stderr and fail when `CI=true`, and are skipped otherwise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::container::{Bundle, KILLED_BY_SECCOMP, examples_dir, export, first_answer, free_port};
use crate::guests;
use crate::util::{Outcome, finish};

/// The image's user and group.
const USER: u64 = 65532;
/// The example connector's manifest, in the image.
const MANIFEST: &str = "/srv/report-connector/report.warden.toml";
/// Its out folder, in the image (bound read-write from the host).
const OUT: &str = "/srv/report-connector/out";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether the image tests can run: root and every tool they need. Where not, says so
/// loudly; in CI (`CI=true`) that is a failure, never a silent pass.
fn image_tools_here() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut missing: Vec<&str> = [
        ("runc", "--version"),
        ("buildah", "--version"),
        ("umoci", "--version"),
        ("jq", "--version"),
        ("ldd", "--version"),
        ("unshare", "--version"),
    ]
    .into_iter()
    .filter(|(tool, arg)| {
        !Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(|(tool, _)| tool)
    .collect();
    if !root {
        missing.insert(0, "root");
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "missing: {} (scripts/setup installs the tools, as root)",
        missing.join(", ")
    );
    eprintln!(
        "\n!!!!! image tests NOT RUN: {why}. They build warden's image with buildah from \
         scratch and run it under runc. !!!!!\n"
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the image tests: {why}"
    );
    false
}

/// The folder `scripts/image build --out` writes to: the OCI layout is its `oci`.
fn image_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("image")
}

/// Builds the image once for the whole test process, from the debug warden under test and
/// the guests build's connector; panics (in every test that asks) if the build failed.
fn image() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(repo().join("scripts/image"))
            .arg("build")
            .arg("--warden")
            .arg(env!("CARGO_BIN_EXE_warden"))
            .arg("--module")
            .arg(guests::REPORT_CONNECTOR_P1)
            .arg("--out")
            .arg(image_dir())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(image_dir())
        } else {
            Err(format!("scripts/image build: {out:?}"))
        }
    });
    match built {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// The exported seccomp profile of the example connector's manifest at `stage`.
fn profile(stage: &str) -> Value {
    let r = export(&examples_dir().join("report.warden.toml"), "oci", stage);
    assert_eq!(r.code, 0, "{r:#?}");
    serde_json::from_str(&r.stdout).unwrap()
}

/// The image unpacked into a bundle by `scripts/image bundle`, with the host folders bound
/// at the connector's out folder and at /audit (both the image user's).
struct ImageBundle {
    dir: tempfile::TempDir,
}

impl ImageBundle {
    /// A bundle running `args` under the profile of `stage`.
    fn new(stage: &str, args: &[&str]) -> ImageBundle {
        let b = ImageBundle {
            dir: tempfile::tempdir().unwrap(),
        };
        let profile = b.dir.path().join("profile.json");
        std::fs::write(&profile, profile_text(stage)).unwrap();
        let out = Command::new(repo().join("scripts/image"))
            .arg("bundle")
            .arg(b.bundle())
            .arg(&profile)
            .arg("--out")
            .arg(image())
            .arg("--")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/image bundle: {out:?}");
        for host in [b.out(), b.audit_dir()] {
            std::fs::create_dir_all(&host).unwrap();
            std::os::unix::fs::chown(&host, Some(USER as u32), Some(USER as u32)).unwrap();
        }
        b.edit(|config| {
            let mounts = config["mounts"].as_array_mut().unwrap();
            mounts.push(Bundle::bind(OUT, &b.out(), "rw"));
            mounts.push(Bundle::bind("/audit", &b.audit_dir(), "rw"));
        });
        b
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.bundle().join("config.json")).unwrap()).unwrap()
    }

    fn edit(&self, change: impl FnOnce(&mut Value)) {
        let mut config = self.config();
        change(&mut config);
        let path = self.bundle().join("config.json");
        std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    }

    fn id(&self) -> String {
        format!(
            "warden-image-test-{}-{}",
            std::process::id(),
            self.dir.path().file_name().unwrap().to_string_lossy()
        )
    }

    /// `runc run` to the end; the audit log is read from /audit.
    fn run(&self) -> Outcome {
        let id = self.id();
        let mut cmd = Command::new("runc");
        cmd.args(["run", "--bundle"])
            .arg(self.bundle())
            .arg(&id)
            .stdin(std::process::Stdio::null());
        let r = finish(cmd, Some(&self.audit_dir().join("audit.jsonl")));
        let _ = Command::new("runc")
            .args(["delete", "--force", &id])
            .output();
        r
    }
}

fn profile_text(stage: &str) -> Vec<u8> {
    serde_json::to_vec(&profile(stage)).unwrap()
}

/// `warden run` of the example connector in the image, audited to /audit, then `extra`.
fn run_connector(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--manifest",
        MANIFEST,
        "--audit",
        "/audit/audit.jsonl",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn the_image_runs_the_connectors_job_under_runc_from_its_precompiled_cache() {
    if !image_tools_here() {
        return;
    }
    let args = run_connector(&[]);
    let b = ImageBundle::new("container", &strs(&args));
    let config = b.config();
    assert_eq!(config["root"]["readonly"], true);
    assert_eq!(config["process"]["noNewPrivileges"], true);
    assert_eq!(config["process"]["user"]["uid"], USER);
    let r = b.run();
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("grand total 599.75"), "{r:#?}");
    let report = std::fs::read_to_string(b.out().join("report.txt")).unwrap();
    assert!(report.contains("grand total 599.75"), "{report}");
    let start = r.events("start");
    assert_eq!(start[0]["seccomp"]["mode"], "enforce", "{r:#?}");
    // The module was precompiled into the image: the container never compiles it.
    assert_eq!(start[0]["cache"], "hit", "{r:#?}");
    assert_eq!(r.exit()["outcome"], "exited");
}

#[test]
fn a_refused_write_is_refused_and_audited_in_the_image_and_the_run_stage_kills_it() {
    if !image_tools_here() {
        return;
    }
    // /data is granted read-only: the connector told to write its report there is refused.
    let args = run_connector(&["--", "/config/report.toml", "/data", "/data"]);
    let b = ImageBundle::new("container", &strs(&args));
    let r = b.run();
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(!r.stdout.contains("grand total"), "{r:#?}");
    assert!(
        r.denials("fs")
            .iter()
            .any(|d| d["target"].as_str() == Some("/data/report.txt")),
        "{r:#?}"
    );
    assert!(
        !b.rootfs()
            .join("srv/report-connector/data/report.txt")
            .exists()
    );

    // Control for the arguments: the granted folder, the job done.
    let args = run_connector(&["--", "/config/report.toml", "/data", "/out"]);
    let r = ImageBundle::new("container", &strs(&args)).run();
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("grand total 599.75"), "{r:#?}");

    // Control for the profile: the run stage, applied from the container's first exec, kills
    // warden before it starts.
    let b = ImageBundle::new("run", &strs(&run_connector(&[])));
    let r = b.run();
    assert_eq!(r.code, KILLED_BY_SECCOMP, "{r:#?}");
    assert!(r.stdout.is_empty() && r.audit.is_empty(), "{r:#?}");
    assert!(!b.out().join("report.txt").exists());
}

/// A `warden serve` container of the image on `port` (the host's network namespace, so the
/// test reaches its loopback address), under the profile of `stage`, started in the
/// background.
fn start_server(port: u16, stage: &str) -> (ImageBundle, std::process::Child, String) {
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "serve",
        "--listen",
        &listen,
        "--manifest",
        MANIFEST,
        "--audit",
        "/audit/audit.jsonl",
    ];
    let b = ImageBundle::new(stage, &args);
    b.edit(|config| {
        config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    let id = b.id();
    let child = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(b.bundle())
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (b, child, id)
}

#[test]
fn a_serve_container_of_the_image_answers_a_run_and_ends_0_on_sigterm() {
    if !image_tools_here() {
        return;
    }
    let port = free_port();
    let (b, mut child, id) = start_server(port, "serve");
    let answer = first_answer(port, "report-connector", &mut child);
    let _ = Command::new("runc").args(["kill", &id, "TERM"]).output();
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (status_line, body) =
        answer.unwrap_or_else(|| panic!("the server never answered ({:?}): {stderr}", out.status));
    assert!(status_line.contains(" 200 "), "{status_line}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outcome"], "exited", "{v}");
    assert_eq!(v["code"], 0, "{v}");
    assert!(
        v["stdout"].as_str().unwrap().contains("grand total 599.75"),
        "{v}"
    );
    let report = std::fs::read_to_string(b.out().join("report.txt")).unwrap();
    assert!(report.contains("grand total 599.75"), "{report}");
    // Control: SIGTERM drains the server, which ends 0 inside the same profile.
    assert_eq!(out.status.code(), Some(0), "{:?}: {stderr}", out.status);
    let log = std::fs::read_to_string(b.audit_dir().join("audit.jsonl")).unwrap();
    assert!(log.contains("\"worker\":true"), "{log}");
}

/// The control for the serve stage: a run's (container-stage) profile does not let the
/// server start, so nothing answers and it is killed.
#[test]
fn the_container_stage_profile_does_not_let_the_images_server_start() {
    if !image_tools_here() {
        return;
    }
    let port = free_port();
    let (_b, mut child, id) = start_server(port, "container");
    let answer = first_answer(port, "report-connector", &mut child);
    let _ = Command::new("runc").args(["kill", &id, "KILL"]).output();
    let status = child.wait_with_output().unwrap().status;
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    assert!(answer.is_none(), "{answer:?}");
    assert_eq!(status.code(), Some(KILLED_BY_SECCOMP), "{status:?}");
}

/// Every file and symlink under `root`, as absolute paths in the image.
fn files(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(root).unwrap().to_owned();
                found.insert(format!("/{}", rel.display()));
            }
        }
    }
    found
}

/// The absolute paths `ldd` names for `binary`: its libraries and the loader.
fn ldd(binary: &str) -> BTreeSet<String> {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some(path.to_string()),
                [path, ..] if path.starts_with('/') => Some(path.to_string()),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn the_images_layout_is_warden_its_libraries_the_connector_and_a_non_root_user() {
    if !image_tools_here() {
        return;
    }
    let b = ImageBundle::new("container", &[]);
    let config = b.config();
    let process = &config["process"];
    assert_eq!(process["user"]["uid"], USER, "{process}");
    assert_eq!(process["user"]["gid"], USER, "{process}");
    assert_eq!(process["args"], json!(["/usr/local/bin/warden", "--help"]));
    assert_eq!(process["cwd"], "/srv");
    assert!(
        process["env"]
            .as_array()
            .unwrap()
            .contains(&json!("WARDEN_CACHE_DIR=/var/cache/warden")),
        "{process}"
    );
    let root = b.rootfs();
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    let found = files(&root);
    let libraries = ldd(env!("CARGO_BIN_EXE_warden"));
    assert!(
        libraries.iter().any(|l| l.contains("libc.so")),
        "{libraries:?}"
    );
    let mut expected: BTreeSet<String> = libraries.clone();
    for f in [
        "/usr/local/bin/warden",
        "/etc/passwd",
        "/etc/group",
        "/opt/warden/modules/report-connector.wasm",
        MANIFEST,
        "/srv/report-connector/report.toml",
        "/srv/report-connector/data/october.csv",
        "/srv/report-connector/data/november.csv",
    ] {
        expected.insert(f.to_string());
    }
    let cache: Vec<&String> = found
        .iter()
        .filter(|f| f.starts_with("/var/cache/warden/"))
        .collect();
    assert!(
        cache.iter().any(|f| f.ends_with(".cwasm")),
        "no precompiled module: {found:?}"
    );
    let rest: BTreeSet<String> = found
        .iter()
        .filter(|f| !f.starts_with("/var/cache/warden/"))
        .cloned()
        .collect();
    // Exactly these: no shell, no other binary, no library ldd does not name.
    assert_eq!(rest, expected);
    for lib in &libraries {
        let meta = std::fs::symlink_metadata(root.join(&lib[1..])).unwrap();
        assert!(meta.is_file(), "{lib} is not a file in the image");
    }
    // The cache and the out folder are the user's; the cache is private, as warden requires.
    use std::os::unix::fs::MetadataExt;
    for (dir, mode) in [
        ("var/cache/warden", 0o700),
        ("srv/report-connector/out", 0o755),
    ] {
        let meta = std::fs::metadata(root.join(dir)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (USER as u32, USER as u32),
            "{dir}"
        );
        assert_eq!(meta.mode() & 0o777, mode, "{dir}");
    }
    assert_eq!(
        std::fs::metadata(root.join("usr/local/bin/warden"))
            .unwrap()
            .uid(),
        0
    );
}

/// The Containerfile's runtime stage puts warden's files at the paths the image built here
/// has, and configures the same user, cache, working folder and entrypoint.
#[test]
fn the_containerfile_and_the_image_built_here_have_the_same_layout() {
    if !image_tools_here() {
        return;
    }
    let containerfile = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
    let b = ImageBundle::new("container", &[]);
    let root = b.rootfs();
    let mut copied = 0;
    for line in containerfile.lines() {
        if let Some(rest) = line.strip_prefix("COPY --from=build ") {
            let dest = rest.split_whitespace().last().unwrap();
            assert!(
                root.join(&dest[1..]).exists(),
                "{dest} missing from the image"
            );
            copied += 1;
        }
    }
    assert_eq!(copied, 4, "{containerfile}");
    for line in [
        "ENV WARDEN_CACHE_DIR=/var/cache/warden",
        "USER 65532:65532",
        "WORKDIR /srv",
        "ENTRYPOINT [\"/usr/local/bin/warden\"]",
        "CMD [\"--help\"]",
    ] {
        assert!(containerfile.lines().any(|l| l == line), "{line}");
    }
    // The Containerfile's own staging names the same module and manifest paths.
    assert!(containerfile.contains("/opt/warden/modules/$ex.wasm"));
    assert!(
        root.join("opt/warden/modules/report-connector.wasm")
            .is_file()
    );
    let manifest = std::fs::read_to_string(root.join(&MANIFEST[1..])).unwrap();
    assert!(
        manifest.contains("module = \"/opt/warden/modules/report-connector.wasm\""),
        "{manifest}"
    );
}
