//! `warden check --against`, `--json`, `--strict`: a manifest against the audit logs of real
//! runs (hand-made ones and the payments connector's own), and the static lint of clocks,
//! random and stdin against real guests.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::connectors::{STRIPE_KEY, example, run};
use crate::guests;
use crate::server::Server;
use crate::util::{Outcome, Scene, finish, warden};

const ID: &str = "spiffe://test.example/nhi";

/// `warden check MANIFEST ARGS…`.
fn check(manifest: &Path, args: &[&str]) -> Outcome {
    let mut cmd = warden();
    cmd.arg("check").arg(manifest).args(args);
    finish(cmd, None)
}

/// `--against FILE` for each log.
fn against(logs: &[&Path]) -> Vec<String> {
    logs.iter()
        .flat_map(|l| ["--against".to_owned(), l.display().to_string()])
        .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Writes `records` as a JSON Lines audit log at `rel` in the scene.
fn write_log(s: &Scene, rel: &str, records: &[Value]) -> PathBuf {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    s.file(rel, &text)
}

/// An `allow` record of an HTTP request, as the broker writes it.
fn http_allow(run: &str, method: &str, url: &str, rule: &str) -> Value {
    json!({
        "ts": "2026-12-02T12:00:00.000Z", "event": "decision", "identity": ID, "run": run,
        "capability": "http", "target": format!("{method} {url}"), "decision": "allow",
        "op": "request", "grant": rule,
        "reason": format!("[[http]] {rule} {method} (address 192.0.2.10:443)"),
    })
}

fn exit(run: &str) -> Value {
    json!({
        "ts": "2026-12-02T12:00:01.000Z", "event": "exit", "identity": ID, "run": run,
        "outcome": "exited", "code": 0, "wall_ms": 3,
    })
}

const TWO_RULES: &str = "[[http]]\nurl = \"https://api.example.com/v1/charges\"\nmethods = [\"POST\"]\n\n\
     [[http]]\nurl = \"https://api.example.com/v1/refunds\"\nmethods = [\"POST\"]\n";

/// The line of `stdout` under the heading `title`, whose first words are `prefix`.
fn listed(stdout: &str, title: &str, prefix: &str) -> bool {
    stdout
        .split("\n\n")
        .filter(|block| block.starts_with(title))
        .flat_map(str::lines)
        .any(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .starts_with(prefix)
        })
}

#[test]
fn a_rule_the_logs_never_used_is_listed_and_fails_strict() {
    let s = Scene::new();
    let m = s.manifest(TWO_RULES);
    let charges = "https://api.example.com/v1/charges";
    let refunds = "https://api.example.com/v1/refunds";
    let one = write_log(
        &s,
        "one.jsonl",
        &[http_allow("r1", "POST", charges, charges), exit("r1")],
    );
    let r = check(&m, &args(&against(&[&one])));
    assert_eq!(
        r.code, 0,
        "without --strict a finding is not a failure: {r:#?}"
    );
    assert!(
        listed(&r.stdout, "grants never used", &format!("http {refunds}")),
        "{}",
        r.stdout
    );
    assert!(
        listed(
            &r.stdout,
            "grants used",
            &format!("http POST {charges}: 1 request")
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("against 1 log: 1 run of spiffe://test.example/nhi"),
        "{}",
        r.stdout
    );
    let mut strict = against(&[&one]);
    strict.push("--strict".into());
    let r = check(&m, &args(&strict));
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.is_empty(), "{r:#?}");

    // Control: a second log that uses the other rule; the two together use both.
    let other = write_log(
        &s,
        "other.jsonl",
        &[http_allow("r2", "POST", refunds, refunds), exit("r2")],
    );
    let mut strict = against(&[&one, &other]);
    strict.push("--strict".into());
    let r = check(&m, &args(&strict));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!r.stdout.contains("grants never used"), "{}", r.stdout);
    assert!(r.stdout.contains("against 2 logs: 2 runs"), "{}", r.stdout);
}

#[test]
fn another_identitys_records_are_skipped_and_a_log_of_none_of_ours_is_an_error() {
    let s = Scene::new();
    let m = s.manifest(TWO_RULES);
    let charges = "https://api.example.com/v1/charges";
    let mut foreign = http_allow("r9", "POST", charges, charges);
    foreign["identity"] = json!("spiffe://test.example/someone-else");
    let log = write_log(&s, "mixed.jsonl", &[foreign.clone(), exit("r1")]);
    let r = check(&m, &args(&against(&[&log])));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout
            .contains("(1 records; 1 records of other identities skipped)"),
        "{}",
        r.stdout
    );
    // Someone else's request is no use of ours.
    assert!(
        listed(&r.stdout, "grants never used", &format!("http {charges}")),
        "{}",
        r.stdout
    );

    let only_theirs = write_log(&s, "theirs.jsonl", &[foreign]);
    let r = check(&m, &args(&against(&[&only_theirs])));
    r.assert_one_line_error("no record of identity spiffe://test.example/nhi");
}

#[test]
fn a_malformed_or_missing_log_is_a_one_line_error_naming_file_and_line() {
    let s = Scene::new();
    let m = s.manifest(TWO_RULES);
    let charges = "https://api.example.com/v1/charges";
    let good = http_allow("r1", "POST", charges, charges).to_string();
    let bad = s.file(
        "bad.jsonl",
        &format!("{good}\n{{\"ts\": \"2026\", \"event\"\n"),
    );
    let r = check(&m, &args(&against(&[&bad])));
    r.assert_one_line_error("bad.jsonl:2: not an audit record");
    assert!(
        r.stdout.is_empty(),
        "nothing printed before the error: {r:#?}"
    );

    // A record without its identity is not a record.
    let bad = s.file(
        "no-identity.jsonl",
        &format!(
            "{good}\n{good}\n{}\n",
            json!({"ts": "t", "event": "exit", "run": "r"})
        ),
    );
    let r = check(&m, &args(&against(&[&bad])));
    r.assert_one_line_error("no-identity.jsonl:3: not an audit record: missing field `identity`");

    let r = check(&m, &["--against", "/nonexistent/audit.jsonl"]);
    r.assert_one_line_error("/nonexistent/audit.jsonl: cannot read the audit log");

    // Control: the same good lines alone are read.
    let ok = s.file("ok.jsonl", &format!("{good}\n{good}\n"));
    let r = check(&m, &args(&against(&[&ok])));
    assert_eq!(r.code, 0, "{r:#?}");
}

/// Writes the records of a real run as a log file.
fn save(s: &Scene, rel: &str, r: &Outcome) -> PathBuf {
    assert!(!r.audit.is_empty(), "the run wrote no audit log: {r:#?}");
    write_log(s, rel, &r.audit)
}

#[test]
fn the_payments_connectors_own_runs_use_its_rules_and_show_its_refusals() {
    let server = Server::start();
    let (s, m) = example("payments", &server);
    let env = [("STRIPE_KEY", STRIPE_KEY)];
    let plain = run(&s, &m, guests::PAYMENTS_P2, &[], &env);
    assert_eq!(plain.code, 0, "{plain:#?}");
    let tries = run(
        &s,
        &m,
        guests::PAYMENTS_P2,
        &[
            "--try-write",
            "--try-other-host",
            "--try-spawn",
            "--try-reveal",
        ],
        &env,
    );
    assert_eq!(tries.code, 0, "{tries:#?}");
    let logs = [
        save(&s, "plain.jsonl", &plain),
        save(&s, "tries.jsonl", &tries),
    ];
    let log_refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();

    let mut strict = against(&log_refs);
    strict.push("--strict".into());
    let r = check(&m, &args(&strict));
    // Both rules, the secret and the config file were used.
    assert_eq!(r.code, 0, "{r:#?}");
    let charges = server.url("/v1/charges");
    let receipts = server.url("/hooks/receipts");
    assert!(
        listed(
            &r.stdout,
            "grants used",
            &format!("http POST {charges}: 2 requests")
        ),
        "{}",
        r.stdout
    );
    assert!(
        listed(
            &r.stdout,
            "grants used",
            &format!("http POST {receipts}: 2 requests")
        ),
        "{}",
        r.stdout
    );
    assert!(
        listed(&r.stdout, "grants used", "secret stripe: injected 2 times"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("grants never used"), "{}", r.stdout);
    assert!(
        listed(&r.stdout, "grants used", "fs /config/payments.toml: "),
        "{}",
        r.stdout
    );
    // The --try-… run's refusals, each once.
    for refusal in [
        "http POST https://collector.attacker.example/charges (1x): no [[http]] rule",
        "secret stripe (1x): reveal: the manifest does not set reveal = true",
        "secret aws-root (1x): open: the manifest grants no secret by this name",
    ] {
        assert!(
            listed(&r.stdout, "refused in these runs", refusal),
            "{refusal:?} not in\n{}",
            r.stdout
        );
    }

    // The same facts as JSON.
    let mut json_args = against(&log_refs);
    json_args.push("--json".into());
    let r = check(&m, &args(&json_args));
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    assert_eq!(v["identity"], "spiffe://example.test/connectors/payments");
    for key in ["grants", "unused", "refused", "used", "unobservable"] {
        let items = v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is not an array: {v:#}"));
        for item in items {
            for field in ["capability", "target", "reason"] {
                assert!(item[field].is_string(), "{key}: {item} lacks {field}");
            }
        }
    }
    assert!(v["unused"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["runs"], 2);
    let grants: Vec<String> = v["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{} {}",
                g["capability"].as_str().unwrap(),
                g["target"].as_str().unwrap()
            )
        })
        .collect();
    assert!(grants.contains(&format!("http {charges}")), "{grants:?}");
    assert!(grants.contains(&"secret stripe".to_owned()), "{grants:?}");
    let refused = v["refused"].as_array().unwrap();
    assert!(
        refused
            .iter()
            .any(|r| r["capability"] == "secret" && r["target"] == "aws-root" && r["count"] == 1),
        "{refused:#?}"
    );

    // Control: a manifest with one rule more than the connector needs. The logs never used
    // it, so --strict fails and --json lists it.
    let text = std::fs::read_to_string(&m).unwrap();
    let broader = s.file(
        "broader.warden.toml",
        &format!(
            "{text}\n[[http]]\nurl = \"{}\"\nmethods = [\"GET\", \"DELETE\"]\n",
            server.url("/v1/customers/")
        ),
    );
    let r = check(&broader, &args(&strict));
    assert_eq!(r.code, 1, "{r:#?}");
    let customers = server.url("/v1/customers/");
    assert!(
        listed(&r.stdout, "grants never used", &format!("http {customers}")),
        "{}",
        r.stdout
    );
    let r = check(&broader, &args(&json_args));
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["unused"][0]["target"], customers.as_str(), "{v:#}");
    assert_eq!(v["unused"][0]["source"], "logs", "{v:#}");
    assert_eq!(v["over_granted"], true);
}

/// A manifest for `module` granting clocks, random and stdin.
fn settings_manifest(s: &Scene, module: &str) -> PathBuf {
    s.manifest(&format!(
        "[workload]\nmodule = \"{module}\"\n\n[stdio]\nstdin = \"inherit\"\n\n\
         [clocks]\nwall = true\nmonotonic = true\n\n[random]\nsecure = true\n"
    ))
}

const SETTINGS: [&str; 4] = [
    "clock [clocks] wall",
    "clock [clocks] monotonic",
    "random [random] secure",
    "stdio [stdio] stdin",
];

#[test]
fn clocks_random_and_stdin_a_module_never_imports_are_grants_it_cannot_use() {
    for hello in [guests::HELLO_P1, guests::HELLO_P2] {
        let s = Scene::new();
        let m = settings_manifest(&s, hello);
        let r = check(&m, &[]);
        assert_eq!(r.code, 0, "{r:#?}");
        for grant in SETTINGS {
            assert!(
                listed(&r.stdout, "grants the module cannot use", grant),
                "{hello}: {grant:?} not reported in\n{}",
                r.stdout
            );
        }
        let r = check(&m, &["--strict"]);
        assert_eq!(r.code, 1, "{hello}: {r:#?}");
        let r = check(&m, &["--json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        let unused: Vec<String> = v["unused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {} {}", f["capability"], f["target"], f["source"]))
            .collect();
        assert_eq!(
            unused,
            [
                r#""clock" "wall" "module""#,
                r#""clock" "monotonic" "module""#,
                r#""random" "secure" "module""#,
                r#""stdio" "stdin" "module""#
            ],
            "{hello}"
        );
    }

    // Control: the probe guest reads the clocks, random and stdin: nothing to report.
    for probe in [guests::PROBE_P1, guests::PROBE_P2] {
        let s = Scene::new();
        let m = settings_manifest(&s, probe);
        let r = check(&m, &["--strict"]);
        assert_eq!(r.code, 0, "{probe}: {r:#?}");
        assert!(
            !r.stdout.contains("grants the module cannot use"),
            "{probe}: {}",
            r.stdout
        );
        for line in [
            "clock granted by [clocks] wall",
            "clock granted by [clocks] monotonic",
            "random granted by [random] secure",
            "stdio granted by [stdio] stdin",
        ] {
            assert!(
                listed(&r.stdout, "module imports", line),
                "{probe}: {line:?} not in\n{}",
                r.stdout
            );
        }
    }
}

#[test]
fn a_read_write_grant_is_judged_only_when_the_module_cannot_write() {
    let s = Scene::new();
    s.mkdir("data");
    let rw = "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read-write\"\n";
    // The fs tool writes, creates and deletes: read-write is within its reach.
    let m = s.manifest(&format!(
        "[workload]\nmodule = \"{}\"\n\n{rw}",
        guests::FS_P1
    ));
    let r = check(&m, &["--strict"]);
    assert_eq!(r.code, 0, "{r:#?}");
    // The same grant for a module with no filesystem import at all: the whole [[files]] is
    // unusable, reported once, not once more as read-write.
    let m = s.manifest(&format!(
        "[workload]\nmodule = \"{}\"\n\n{rw}",
        guests::HELLO_P1
    ));
    let r = check(&m, &["--strict"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(listed(
        &r.stdout,
        "grants the module cannot use",
        "fs [[files]]"
    ));
    assert!(!listed(
        &r.stdout,
        "grants the module cannot use",
        "fs /data read-write"
    ));

    // A module that lists and stats its folder but has no path_open and nothing that
    // changes a file: read would do.
    let imports: String = [
        "fd_prestat_get",
        "fd_readdir",
        "path_filestat_get",
        "fd_write",
    ]
    .iter()
    .map(|f| format!("(import \"wasi_snapshot_preview1\" \"{f}\" (func (result i32)))"))
    .collect();
    let bytes = wat::parse_str(format!(
        "(module {imports} (memory (export \"memory\") 1) (func (export \"_start\")))"
    ))
    .unwrap();
    std::fs::write(s.path("lister.wasm"), bytes).unwrap();
    let m = s.manifest(&format!("[workload]\nmodule = \"lister.wasm\"\n\n{rw}"));
    let r = check(&m, &["--strict"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        listed(
            &r.stdout,
            "grants the module cannot use",
            "fs /data read-write: the module imports nothing that creates, writes"
        ),
        "{}",
        r.stdout
    );
    // Control: the same grant read-only.
    let m = s.manifest(&format!(
        "[workload]\nmodule = \"lister.wasm\"\n\n{}",
        rw.replace("read-write", "read")
    ));
    let r = check(&m, &["--strict"]);
    assert_eq!(r.code, 0, "{r:#?}");
}

#[test]
fn a_core_modules_refused_files_are_listed_and_a_copied_back_file_counts_as_used() {
    let s = Scene::new();
    s.file("data/report.txt", "quarterly numbers\n");
    s.file("notes.txt", "old\n");
    let m = s.manifest(
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n\n\
         [[files]]\nhost = \"notes.txt\"\nguest = \"/notes.txt\"\naccess = \"read-write\"\n",
    );
    let mut runs = Vec::new();
    for (i, args) in [
        ["write", "/data/new.txt", "x"],
        ["write", "/data/new.txt", "y"],
        ["write", "/notes.txt", "new"],
    ]
    .iter()
    .enumerate()
    {
        let r = s.run(Some(&m), guests::FS_P1, args);
        runs.push(save(&s, &format!("run{i}.jsonl"), &r));
    }
    assert_eq!(std::fs::read_to_string(s.path("notes.txt")).unwrap(), "new");
    let logs: Vec<&Path> = runs.iter().map(PathBuf::as_path).collect();
    let r = check(&m, &args(&against(&logs)));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        listed(
            &r.stdout,
            "refused in these runs",
            "fs /data/new.txt (2x): path_open"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("fs      /notes.txt:")
                && l.contains("the guest's changes copied back in 1 run")),
        "{}",
        r.stdout
    );
    // The exit records count what each run did: the refused writes are no use of /data, and
    // no run read it, so the grant was never used.
    assert!(
        listed(
            &r.stdout,
            "grants never used",
            "fs /data: no operation on it in 3 runs"
        ),
        "{}",
        r.stdout
    );
    // Control: one more run that reads a file below /data uses the grant.
    let read = s.run(Some(&m), guests::FS_P1, &["read", "/data/report.txt"]);
    runs.push(save(&s, "run3.jsonl", &read));
    let logs: Vec<&Path> = runs.iter().map(PathBuf::as_path).collect();
    let r = check(&m, &args(&against(&logs)));
    assert!(
        listed(&r.stdout, "grants used", "fs /data: 1 read, 0 writes"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("grants never used"), "{}", r.stdout);
}

/// Strings in the logs come from guests (paths, hosts, names): the text report shows each on
/// one line with its control characters escaped, so a log cannot forge a report section or
/// send escape sequences to the reader's terminal. Control: an ordinary target is shown as it
/// is.
#[test]
fn the_text_report_escapes_control_characters_from_the_logs() {
    let s = Scene::new();
    let m = s.manifest("");
    let forged = "/data/x\n\nrefused in these runs:\n  fs      /etc/shadow (1x): forged\u{1b}[2J";
    let deny = |target: &str| {
        json!({
            "ts": "2026-12-02T12:00:00.000Z", "event": "decision", "identity": ID, "run": "r1",
            "capability": "fs", "target": target, "decision": "deny",
            "reason": "path_open: EPERM\u{7}",
        })
    };
    let log = write_log(
        &s,
        "hostile.jsonl",
        &[deny(forged), deny("/data/plain.txt"), exit("r1")],
    );
    let r = check(&m, &args(&against(&[&log])));
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{7}'),
        "{r:#?}"
    );
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("refused in these runs:"))
            .count(),
        1,
        "no forged section: {}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("/data/x\\u{a}\\u{a}refused in these runs:\\u{a}  fs      /etc/shadow"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("path_open: EPERM\\u{7}"), "{}", r.stdout);
    // Control: a plain target as written.
    assert!(
        r.stdout
            .contains("  fs      /data/plain.txt (1x): path_open: EPERM"),
        "{}",
        r.stdout
    );
}

/// Ordinary runs judge every grant: the exit record counts what the run used, so a clock the
/// guest never read is an unused grant and `--strict` fails on it, while the environment it
/// read is used. Control: the same runs against the manifest without the clock pass
/// `--strict`.
#[test]
fn ordinary_runs_judge_env_and_clocks_and_strict_fails_on_an_unused_clock() {
    let s = Scene::new();
    let with_clock = s.manifest("[env]\nMODE = \"fast\"\n\n[clocks]\nwall = true\n");
    let log = save(
        &s,
        "env.jsonl",
        &s.run(Some(&with_clock), guests::ENV_P1, &["get", "MODE"]),
    );
    let mut strict = against(&[&log]);
    strict.push("--strict".into());
    let r = check(&with_clock, &args(&strict));
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        listed(
            &r.stdout,
            "grants used",
            "env MODE: read its environment in 1 run"
        ),
        "{}",
        r.stdout
    );
    assert!(
        listed(
            &r.stdout,
            "grants never used",
            "clock wall: the guest never read the clock"
        ),
        "{}",
        r.stdout
    );
    let without = s.manifest("[env]\nMODE = \"fast\"\n");
    let r = check(&without, &args(&strict));
    assert_eq!(r.code, 0, "{r:#?}");
}
