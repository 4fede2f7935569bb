//! `warden learn`: a workload run under a deliberately broad manifest, and the manifest
//! learned from it: no broader than BROAD, no broader than what the run used, valid, and
//! enough for the workload (each test runs it again under LEARNED as the control).

use std::path::{Path, PathBuf};

use crate::connectors::{STRIPE_KEY, example, run};
use crate::guests;
use crate::server::Server;
use crate::util::{Outcome, Scene, finish, warden};

/// `warden learn --manifest BROAD --out OUT [--append] MODULE -- ARGS` with `env` added.
pub(crate) fn learn(
    broad: &Path,
    out: &Path,
    append: bool,
    module: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Outcome {
    let mut cmd = warden();
    cmd.arg("learn")
        .arg("--manifest")
        .arg(broad)
        .arg("--out")
        .arg(out);
    if append {
        cmd.arg("--append");
    }
    cmd.arg(module);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(cmd, None)
}

/// LEARNED as TOML.
pub(crate) fn table(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap();
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("LEARNED is not TOML ({e}):\n{text}"))
}

/// `[[files]]` of a manifest as (guest, host file name, access).
fn files(t: &toml::Table) -> Vec<(String, String, String)> {
    t.get("files")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .map(|f| {
                    let s = |k: &str| f[k].as_str().unwrap().to_owned();
                    let host = PathBuf::from(s("host"));
                    let name = host.file_name().unwrap().to_string_lossy().into_owned();
                    (s("guest"), name, s("access"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `[[http]]` of a manifest as (url, methods).
fn http(t: &toml::Table) -> Vec<(String, Vec<String>)> {
    t.get("http")
        .and_then(|h| h.as_array())
        .map(|a| {
            a.iter()
                .map(|r| {
                    let methods = r["methods"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m.as_str().unwrap().to_owned())
                        .collect();
                    (r["url"].as_str().unwrap().to_owned(), methods)
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn check_ok(manifest: &Path) {
    let mut cmd = warden();
    cmd.arg("check").arg(manifest);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "warden check of LEARNED: {r:#?}");
}

/// The learn line on stderr: BROAD's allow list and LEARNED's, LEARNED's no larger.
pub(crate) fn syscall_counts(r: &Outcome) -> (usize, usize) {
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("host allow list"))
        .unwrap_or_else(|| panic!("no `host allow list` line: {r:#?}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(line.contains('→') && line.ends_with("syscalls"), "{line}");
    let n = nums.len();
    (nums[n - 2], nums[n - 1])
}

// ---------------------------------------------------------------------------------------
// payments (a component)

/// The payments example with a deliberately broad manifest: wider rules and more methods, an
/// unused rule, an extra secret, an extra folder, clocks and random.
fn broad_payments(server: &Server) -> (Scene, PathBuf) {
    let (s, _) = example("payments", server);
    s.mkdir("extra");
    let base = server.url("");
    let base = base.trim_end_matches('/');
    let broad = s.file(
        "broad.warden.toml",
        &format!(
            r#"[identity]
name = "payments-connector"
id = "spiffe://example.test/connectors/payments"

[[files]]
host = "payments.toml"
guest = "/config/payments.toml"
access = "read"

[[files]]
host = "extra"
guest = "/extra"
access = "read-write"

[[http]]
url = "{base}/v1/"
methods = ["GET", "POST", "DELETE"]

[[http]]
url = "{base}/hooks/"
methods = ["POST", "PUT"]

[[http]]
url = "{base}/admin/"
methods = ["GET"]

[secrets.stripe]
from = "env:STRIPE_KEY"
inject = {{ header = "Authorization", format = "Bearer {{secret}}", url = "{base}/v1/" }}

[secrets.backup]
from = "env:BACKUP_KEY"

[clocks]
wall = true
monotonic = true

[random]
secure = true

[limits]
memory = "256MiB"
wall = "20s"
"#
        ),
    );
    (s, broad)
}

const BACKUP_KEY: &str = "backup-key-Tq8wZ3nV5m";

#[test]
fn payments_learned_from_a_broad_manifest_has_only_what_it_used_and_still_works() {
    let server = Server::start();
    let (s, broad) = broad_payments(&server);
    let learned = s.path("learned.warden.toml");
    let env = [("STRIPE_KEY", STRIPE_KEY), ("BACKUP_KEY", BACKUP_KEY)];
    let r = learn(&broad, &learned, false, guests::PAYMENTS_P2, &[], &env);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("receipt: 200"), "{r:#?}");
    let (before, after) = syscall_counts(&r);
    assert!(after <= before, "{r:#?}");

    let text = std::fs::read_to_string(&learned).unwrap();
    let t = table(&learned);
    // Only the rules and methods used, each narrowed to the path requested.
    assert_eq!(
        http(&t),
        [
            (server.url("/v1/charges"), vec!["POST".to_owned()]),
            (server.url("/hooks/receipts"), vec!["POST".to_owned()]),
        ],
        "{text}"
    );
    // The used secret, with its BROAD binding; the unused one dropped.
    let secrets = t["secrets"].as_table().unwrap();
    assert_eq!(secrets.keys().collect::<Vec<_>>(), ["stripe"], "{text}");
    assert_eq!(
        secrets["stripe"]["inject"]["url"].as_str(),
        Some(server.url("/v1/").as_str())
    );
    // A component's file operations are observed too: the config it read, read only; the
    // folder it never touched dropped.
    assert_eq!(
        files(&t),
        [(
            "/config/payments.toml".to_owned(),
            "payments.toml".to_owned(),
            "read".to_owned()
        )],
        "{text}"
    );
    assert!(
        text.contains("[[files]] /extra (read-write): no operation on it"),
        "{text}"
    );
    // [identity] kept; how it was learned in the header; what was dropped listed.
    assert_eq!(
        t["identity"]["id"].as_str(),
        Some("spiffe://example.test/connectors/payments")
    );
    assert!(text.contains("# learned from run "), "{text}");
    assert!(text.contains("module sha256 "), "{text}");
    assert!(text.contains("[secrets.backup]: never"), "{text}");
    assert!(text.contains("/admin/ (GET): no request used it"), "{text}");
    // Limits: never above BROAD's.
    let limits = t["limits"].as_table().unwrap();
    assert!(limits["http-requests"].as_integer().unwrap() <= 100);
    check_ok(&learned);

    // Control: the connector does its job under LEARNED, with the key warden injects...
    let before = server.requests().len();
    let r = run(
        &s,
        &learned,
        guests::PAYMENTS_P2,
        &[],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("receipt: 200"), "{r:#?}");
    let got = server.requests();
    assert_eq!(got.len(), before + 2, "{got:#?}");
    assert_eq!(
        got[before].header("authorization"),
        Some(format!("Bearer {STRIPE_KEY}").as_str())
    );
    // ...and everything it tries beyond its job is still refused.
    let r = run(
        &s,
        &learned,
        guests::PAYMENTS_P2,
        &[
            "--try-write",
            "--try-other-host",
            "--try-spawn",
            "--try-reveal",
            "--try-exfil",
        ],
        &[("STRIPE_KEY", STRIPE_KEY)],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    for what in [
        "overwrite the config file",
        "send the charge to another host",
        "start a shell",
        "read the stripe secret's value",
        "send the stripe secret to the receipts webhook",
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with("refused: ") && l.contains(what)),
            "{what:?} not refused under LEARNED: {r:#?}"
        );
    }
    assert!(!r.stdout.contains("ALLOWED"), "{r:#?}");
    assert!(!r.stdout.contains(STRIPE_KEY) && !r.stderr.contains(STRIPE_KEY));
}

// ---------------------------------------------------------------------------------------
// the fs guest (a core module)

/// A scene with `data/` (three files) and `secret.txt` beside it, and a BROAD manifest
/// granting `data/` read-write plus an unused folder, clocks, random and stdin.
fn fs_scene() -> (Scene, PathBuf) {
    let s = Scene::new();
    s.file("data/a.txt", "alpha\n");
    s.file("data/b.txt", "beta\n");
    s.file("data/sub/c.txt", "gamma\n");
    s.file("secret.txt", "not for the guest\n");
    s.mkdir("unused");
    let broad = s.manifest(
        r#"[[files]]
host = "data"
guest = "/data"
access = "read-write"

[[files]]
host = "unused"
guest = "/unused"
access = "read"

[clocks]
wall = true

[random]
secure = true

[stdio]
stdin = "inherit"
"#,
    );
    (s, broad)
}

#[test]
fn a_module_or_component_reading_one_file_of_a_folder_learns_a_read_grant_of_that_file() {
    // A core module and a component alike (their file operations are observed by
    // different hooks: fs_audit and fs_audit::p2).
    for module in [guests::FS_P1, guests::FS_P2] {
        let (s, broad) = fs_scene();
        let learned = s.path("learned.toml");
        let r = learn(
            &broad,
            &learned,
            false,
            module,
            &["read", "/data/a.txt"],
            &[],
        );
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(r.stdout, "alpha\n");
        let t = table(&learned);
        let text = std::fs::read_to_string(&learned).unwrap();
        assert_eq!(
            files(&t),
            [("/data/a.txt".into(), "a.txt".into(), "read".into())],
            "{text}"
        );
        // The fs guest imports no clock and no random: dropped, and said so.
        assert!(
            t.get("clocks").is_none() && t.get("random").is_none(),
            "{text}"
        );
        assert!(text.contains("[random] secure: "), "{text}");
        assert!(
            text.contains("[[files]] /unused (read): no operation on it"),
            "{text}"
        );
        let (before, after) = syscall_counts(&r);
        assert!(after < before, "{r:#?}");
        check_ok(&learned);

        // Control: the read works under LEARNED; the file beside it is no longer granted
        // (under BROAD it was).
        let ok = s.run(Some(&learned), module, &["read", "/data/a.txt"]);
        assert_eq!((ok.code, ok.stdout.as_str()), (0, "alpha\n"), "{ok:#?}");
        let other = s.run(Some(&learned), module, &["read", "/data/b.txt"]);
        assert_ne!(other.code, 0, "{other:#?}");
        let under_broad = s.run(Some(&broad), module, &["read", "/data/b.txt"]);
        assert_eq!(under_broad.code, 0, "{under_broad:#?}");
    }
}

#[test]
fn a_write_is_learned_as_read_write_and_append_unions_two_runs() {
    // A core module and a component alike (their file operations are observed by
    // different hooks: fs_audit and fs_audit::p2).
    for module in [guests::FS_P1, guests::FS_P2] {
        let (s, broad) = fs_scene();
        let learned = s.path("learned.toml");
        let r = learn(
            &broad,
            &learned,
            false,
            module,
            &["write", "/data/sub/c.txt", "delta"],
            &[],
        );
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(
            files(&table(&learned)),
            [(
                "/data/sub/c.txt".into(),
                "c.txt".into(),
                "read-write".into()
            )]
        );
        // A second run reading another file, appended: the union.
        let r = learn(
            &broad,
            &learned,
            true,
            module,
            &["read", "/data/a.txt"],
            &[],
        );
        assert_eq!(r.code, 0, "{r:#?}");
        let text = std::fs::read_to_string(&learned).unwrap();
        let mut got = files(&table(&learned));
        got.sort();
        assert_eq!(
            got,
            [
                ("/data/a.txt".into(), "a.txt".into(), "read".into()),
                (
                    "/data/sub/c.txt".into(),
                    "c.txt".into(),
                    "read-write".into()
                ),
            ],
            "{text}"
        );
        assert_eq!(
            text.matches("# learned from run ").count(),
            2,
            "both runs in the header: {text}"
        );
        check_ok(&learned);
        // Control: both runs' operations work under the union.
        let w = s.run(Some(&learned), module, &["write", "/data/sub/c.txt", "eps"]);
        assert_eq!(w.code, 0, "{w:#?}");
        assert_eq!(
            std::fs::read_to_string(s.path("data/sub/c.txt")).unwrap(),
            "eps"
        );
        let rd = s.run(Some(&learned), module, &["read", "/data/a.txt"]);
        assert_eq!(rd.code, 0, "{rd:#?}");

        // Without --append the file is replaced by this run's grants alone.
        let r = learn(
            &broad,
            &learned,
            false,
            module,
            &["read", "/data/b.txt"],
            &[],
        );
        assert_eq!(r.code, 0, "{r:#?}");
        assert_eq!(
            files(&table(&learned)),
            [("/data/b.txt".into(), "b.txt".into(), "read".into())]
        );
    }
}

#[test]
fn listing_a_folder_or_touching_many_files_keeps_the_folder() {
    // A core module and a component alike (their file operations are observed by
    // different hooks: fs_audit and fs_audit::p2).
    for module in [guests::FS_P1, guests::FS_P2] {
        let (s, broad) = fs_scene();
        let learned = s.path("learned.toml");
        let r = learn(&broad, &learned, false, module, &["ls", "/data"], &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        let text = std::fs::read_to_string(&learned).unwrap();
        assert_eq!(
            files(&table(&learned)),
            [("/data".into(), "data".into(), "read".into())],
            "{text}"
        );
        assert!(text.contains("the folder is kept"), "{text}");
        check_ok(&learned);
        let ok = s.run(Some(&learned), module, &["ls", "/data"]);
        assert_eq!(ok.code, 0, "{ok:#?}");
    }
}

#[test]
fn a_hostile_guest_learned_under_broad_gains_nothing_outside_it() {
    let (s, broad) = fs_scene();
    let learned = s.path("learned.toml");
    // Reaches for the file beside the granted folder, by `..` and by absolute path.
    for path in ["/data/../secret.txt", "/secret.txt", "/etc/passwd"] {
        let r = learn(&broad, &learned, false, guests::FS_P1, &["read", path], &[]);
        assert_ne!(r.code, 0, "{path}: {r:#?}");
        assert!(!r.stdout.contains("not for the guest"), "{r:#?}");
        let text = std::fs::read_to_string(&learned).unwrap();
        assert!(files(&table(&learned)).is_empty(), "{path}: {text}");
        assert!(
            !text.contains("secret.txt\"") && !text.contains("passwd\""),
            "{text}"
        );
        check_ok(&learned);
        let again = s.run(Some(&learned), guests::FS_P1, &["read", path]);
        assert_ne!(again.code, 0, "{again:#?}");
        assert!(!again.stdout.contains("not for the guest"), "{again:#?}");
    }

    // Control: under a BROAD that does grant the scene's folder, the same read is allowed
    // and learned as that one file.
    let wide = s.file(
        "wide.warden.toml",
        &format!(
            "[identity]\nname = \"test-nhi\"\nid = \"spiffe://test.example/nhi\"\n\n\
             [[files]]\nhost = {:?}\nguest = \"/scene\"\naccess = \"read\"\n",
            s.dir.path().display().to_string()
        ),
    );
    let r = learn(
        &wide,
        &learned,
        false,
        guests::FS_P1,
        &["read", "/scene/secret.txt"],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        files(&table(&learned)),
        [(
            "/scene/secret.txt".into(),
            "secret.txt".into(),
            "read".into()
        )]
    );
}

#[test]
fn a_bad_broad_manifest_or_append_target_is_a_one_line_error() {
    let (s, broad) = fs_scene();
    let bad = s.file("bad.toml", "[identity]\nname = 7\n");
    let learned = s.path("learned.toml");
    let r = learn(
        &bad,
        &learned,
        false,
        guests::FS_P1,
        &["read", "/data/a.txt"],
        &[],
    );
    r.assert_one_line_error("bad.toml");
    assert!(!learned.exists());
    // --append to a LEARNED of another identity.
    let other = s.file(
        "other.toml",
        "[identity]\nname = \"other\"\nid = \"spiffe://test.example/other\"\n",
    );
    let r = learn(
        &broad,
        &other,
        true,
        guests::FS_P1,
        &["read", "/data/a.txt"],
        &[],
    );
    r.assert_one_line_error("is not BROAD's");
    // A workload that does not start: its exit code, and nothing written.
    let missing = s.path("missing.wasm");
    let r = learn(&broad, &learned, false, missing.to_str().unwrap(), &[], &[]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("nothing learned"), "{r:#?}");
    assert!(!learned.exists());
}

// ---------------------------------------------------------------------------------------
// report-connector (a core module), against its hand-written manifest

#[test]
fn report_connector_learned_is_no_broader_than_its_hand_written_manifest() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/report-connector");
    let s = Scene::new();
    std::fs::copy(example.join("report.toml"), s.path("report.toml")).unwrap();
    for csv in ["october.csv", "november.csv"] {
        s.file(
            &format!("data/{csv}"),
            &std::fs::read_to_string(example.join("data").join(csv)).unwrap(),
        );
    }
    s.mkdir("out");
    // Broader than examples/report-connector/report.warden.toml: the config's whole folder,
    // data read-write, an extra variable, clocks, random.
    let broad = s.file(
        "broad.warden.toml",
        r#"[identity]
name = "report-connector"
id = "spiffe://example.test/connectors/report"

[[files]]
host = "."
guest = "/config"
access = "read-write"

[[files]]
host = "data"
guest = "/data"
access = "read-write"

[[files]]
host = "out"
guest = "/out"
access = "read-write"

[env]
REGION = "eu-west"
DEBUG = "1"

[clocks]
wall = true

[random]
secure = true
"#,
    );
    // LEARNED outside BROAD's read-write grant of the whole folder (learn refuses it there).
    let elsewhere = tempfile::tempdir().unwrap();
    let learned = elsewhere.path().join("learned.toml");
    let r = learn(
        &broad,
        &learned,
        false,
        guests::REPORT_CONNECTOR_P1,
        &[],
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("grand total 599.75"), "{r:#?}");
    let text = std::fs::read_to_string(&learned).unwrap();
    let mut got = files(&table(&learned));
    got.sort();
    // The hand-written manifest grants /config/report.toml read, /data read and /out
    // read-write: LEARNED is that or narrower (the one report file instead of /out).
    assert_eq!(
        got,
        [
            (
                "/config/report.toml".into(),
                "report.toml".into(),
                "read".into()
            ),
            ("/data".into(), "data".into(), "read".into()),
            (
                "/out/report.txt".into(),
                "report.txt".into(),
                "read-write".into()
            ),
        ],
        "{text}"
    );
    // The connector reads its environment: env is kept whole (which names it looked at is
    // not knowable) and says so.
    assert!(
        text.contains("kept from BROAD: the guest read its environment"),
        "{text}"
    );
    check_ok(&learned);

    // Control: the connector does its job under LEARNED, and its report is copied back.
    std::fs::write(s.path("out/report.txt"), "old").unwrap();
    let again = s.run(Some(&learned), guests::REPORT_CONNECTOR_P1, &[]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert!(again.stdout.contains("grand total 599.75"), "{again:#?}");
    assert!(
        std::fs::read_to_string(s.path("out/report.txt"))
            .unwrap()
            .contains("599.75")
    );
}

/// A SIGINT sent to `warden learn` alone (a supervisor's, not a terminal's) is passed on to
/// the learning run, which stops as `warden run` does on SIGINT (exit 130, an exit record);
/// learn then still writes what the run used up to there.
#[test]
fn sigint_to_learn_stops_its_run_and_still_learns_what_it_did() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let (s, broad) = fs_scene();
    let learned = s.path("learned.toml");
    let mut cmd = warden();
    cmd.args(["learn", "--manifest"])
        .arg(&broad)
        .arg("--out")
        .arg(&learned)
        .arg(guests::FS_P1)
        .args(["--", "seq", "read /data/a.txt", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Held open: the guest blocks reading it after its read of a.txt.
    let _stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "alpha\n", "the guest read its file");
    let killed = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let text = std::fs::read_to_string(&learned)
        .unwrap_or_else(|e| panic!("LEARNED not written ({e}): {stderr}"));
    assert!(text.contains("the run ended as signal"), "{text}");
    assert_eq!(
        files(&table(&learned)),
        [("/data/a.txt".into(), "a.txt".into(), "read".into())],
        "{text}"
    );
    check_ok(&learned);
}

/// Two `[[http]]` rules for one URL, one per method: a run that uses both learns both, and
/// `check --against` counts each as used by its own method. (Before, the second rule was taken
/// for the first: LEARNED lost its method and the report called it unused.) The control uses
/// only GET: the POST rule is then unused in both.
#[test]
fn two_rules_for_one_url_with_different_methods_are_each_learned_and_counted() {
    let server = Server::start();
    let s = Scene::new();
    let base = server.url("/api/");
    let broad = s.manifest(&format!(
        "[[http]]\nurl = \"{base}\"\nmethods = [\"GET\"]\n\n\
         [[http]]\nurl = \"{base}\"\nmethods = [\"POST\"]\n"
    ));
    let both = [
        format!("http GET {base}items"),
        format!("http POST {base}items new"),
    ];
    let only_get = [format!("http GET {base}items")];
    for (steps, post_used) in [(&both[..], true), (&only_get[..], false)] {
        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
        let learned = s.path(&format!("learned-{post_used}.toml"));
        let r = learn(&broad, &learned, false, guests::NET_PROBE_P2, &steps, &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        let got = http(&table(&learned));
        let methods: Vec<&str> = got
            .iter()
            .flat_map(|(_, m)| m.iter().map(String::as_str))
            .collect();
        assert!(methods.contains(&"GET"), "{got:?}");
        assert_eq!(methods.contains(&"POST"), post_used, "{got:?}");
        check_ok(&learned);

        // check --against the same kind of run's log.
        let run = s.run(Some(&broad), guests::NET_PROBE_P2, &steps);
        let log = s.path(&format!("run-{post_used}.jsonl"));
        let lines: String = run.audit.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&log, lines).unwrap();
        let mut cmd = warden();
        cmd.arg("check")
            .arg(&broad)
            .arg("--against")
            .arg(&log)
            .arg("--json");
        let out = finish(cmd, None);
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"));
        let unused: Vec<String> = v["unused"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["capability"] == "http")
            .map(|f| f.to_string())
            .collect();
        assert_eq!(unused.is_empty(), post_used, "{unused:?}");
    }
}

/// When the learning run's recording stops at its bound (65,536 distinct file operations), the
/// run's audit log says so in a `limit` record, and LEARNED keeps every file grant as BROAD has
/// it, saying why, instead of calling a grant unused that the run may have used after the
/// bound. Control: a run under the bound narrows as usual (an untouched grant is dropped).
#[test]
fn past_the_recording_bound_learned_keeps_every_file_grant_and_says_why() {
    let s = Scene::new();
    let n = 65_600;
    for i in 0..n {
        s.file(&format!("data/f{i}"), "x");
    }
    s.mkdir("untouched");
    let broad = s.manifest(
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n\n\
         [[files]]\nhost = \"untouched\"\nguest = \"/untouched\"\naccess = \"read\"\n\n\
         [limits]\nwall = \"600s\"\n",
    );
    let run = |count: usize, out: &str| {
        let count = count.to_string();
        let learned = s.path(out);
        let r = learn(
            &broad,
            &learned,
            false,
            guests::FS_P1,
            &["stat-each", "/data/f", &count],
            &[],
        );
        assert_eq!(r.code, 0, "{r:#?}");
        (
            std::fs::read_to_string(&learned).unwrap(),
            files(&table(&learned)),
        )
    };
    let (text, grants) = run(n, "past.toml");
    assert!(
        text.contains("kept from BROAD: recording stopped at 65536"),
        "{text}"
    );
    assert!(!text.contains("no operation on it"), "{text}");
    assert_eq!(grants.len(), 2, "{grants:?}");
    // Control: 100 files, under the bound: the untouched folder is dropped.
    let (text, grants) = run(100, "under.toml");
    assert!(!text.contains("recording stopped"), "{text}");
    assert!(
        text.contains("/untouched (read): no operation on it"),
        "{text}"
    );
    assert!(
        grants.iter().all(|(_, guest, _)| guest != "/untouched"),
        "{grants:?}"
    );
}

/// A guest that never reads its environment learns no `[env]`: the exit record's usage says
/// so, and LEARNED lists it as not learned. Control: the same BROAD with a guest that reads a
/// variable keeps `[env]` whole.
#[test]
fn env_is_dropped_when_the_guest_never_read_its_environment() {
    let s = Scene::new();
    let broad = s.manifest("[env]\nMODE = \"fast\"\nREGION = \"eu\"\n");
    for (module, args, read) in [
        (guests::HELLO_P1, &[][..], false),
        (guests::ENV_P1, &["get", "MODE"][..], true),
        (guests::ENV_P2, &["get", "MODE"][..], true),
    ] {
        let learned = s.path(&format!("learned-{read}-{}.toml", unique_name(module)));
        let r = learn(&broad, &learned, false, module, args, &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        let text = std::fs::read_to_string(&learned).unwrap();
        let env = table(&learned).get("env").cloned();
        if read {
            assert_eq!(
                env.and_then(|e| e.as_table().map(|t| t.len())),
                Some(2),
                "{text}"
            );
        } else {
            assert!(env.is_none(), "{text}");
            assert!(
                text.contains("[env] (MODE, REGION): the guest never read its environment"),
                "{text}"
            );
        }
    }
}

fn unique_name(module: &str) -> String {
    module.rsplit('/').take(2).collect::<Vec<_>>().join("-")
}
