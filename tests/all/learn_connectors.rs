//! `warden learn` on every example connector, against its hand-written manifest.
//!
//! Each connector is learned under a BROAD manifest made mechanically from its hand-written
//! one in examples/ — every file grant read-write and a single file widened to its folder, an
//! extra read-write folder, every HTTP rule widened to its origin with GET/POST/PUT/DELETE,
//! an extra secret, both clocks and random, larger limits — and then:
//! - LEARNED is no broader than the hand-written manifest, grant by grant (the differences a
//!   learned manifest cannot avoid are named below, each with its reason);
//! - `warden check` accepts it;
//! - the connector does its job under it (the control: learning did not cut what it needs);
//! - every `--try-…` refusal of the connector is still refused under it, as many as under the
//!   hand-written manifest, and nothing is let through.
//!
//! The differences allowed, and why:
//! - `[env]` is BROAD's, and BROAD's is the hand-written one's: which variable a guest reads
//!   is not observable (it receives its whole environment at start).
//! - a secret keeps BROAD's binding (`inject.url`), which is the hand-written one's here.
//! - limits: never above BROAD's; the learned figure may exceed a tighter hand-written limit
//!   only where the learning floor is higher (none of the examples' is: checked below).

use std::collections::BTreeSet;
use std::path::Path;

use crate::connectors::{CI_UPLOAD_TOKEN, STRIPE_KEY, VENDOR_API_KEY, example, run};
use crate::guests;
use crate::learn::{check_ok, learn, syscall_counts, table};
use crate::server::Server;
use crate::util::Outcome;

const UNUSED_KEY: &str = "unused-broad-key-Zr4Kq8";

pub(crate) struct Case {
    /// The folder in examples/ (and its manifest's stem).
    pub(crate) name: &'static str,
    pub(crate) module: &'static str,
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// A line of stdout that says the job was done.
    pub(crate) job: &'static str,
    pub(crate) tries: &'static [&'static str],
}

/// The origin of a URL: `http://host:port`.
fn origin(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    url[..end].to_owned()
}

/// BROAD, made from the hand-written manifest `m` as the module docs say.
fn broaden(m: &toml::Table, scene: &Path) -> String {
    let mut b = toml::Table::new();
    b.insert("identity".into(), m["identity"].clone());
    if let Some(env) = m.get("env") {
        b.insert("env".into(), env.clone());
    }
    let mut files = Vec::new();
    for f in m
        .get("files")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        let host = f["host"].as_str().unwrap();
        let guest = f["guest"].as_str().unwrap();
        let (host, guest) = if scene.join(host).is_file() {
            let h = Path::new(host)
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let g = Path::new(guest)
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (if h.is_empty() { ".".to_owned() } else { h }, g)
        } else {
            (host.to_owned(), guest.to_owned())
        };
        let mut t = toml::Table::new();
        t.insert("host".into(), host.into());
        t.insert("guest".into(), guest.into());
        t.insert("access".into(), "read-write".into());
        files.push(toml::Value::Table(t));
    }
    std::fs::create_dir_all(scene.join("extra-broad")).unwrap();
    let mut extra = toml::Table::new();
    extra.insert("host".into(), "extra-broad".into());
    extra.insert("guest".into(), "/extra-broad".into());
    extra.insert("access".into(), "read-write".into());
    files.push(toml::Value::Table(extra));
    b.insert("files".into(), toml::Value::Array(files));

    let origins: BTreeSet<String> = m
        .get("http")
        .and_then(|h| h.as_array())
        .into_iter()
        .flatten()
        .map(|r| origin(r["url"].as_str().unwrap()))
        .collect();
    let rules: Vec<toml::Value> = origins
        .iter()
        .map(|o| {
            let mut t = toml::Table::new();
            t.insert("url".into(), format!("{o}/").into());
            t.insert(
                "methods".into(),
                toml::Value::Array(
                    ["GET", "POST", "PUT", "DELETE"]
                        .iter()
                        .map(|&s| s.into())
                        .collect(),
                ),
            );
            toml::Value::Table(t)
        })
        .collect();
    b.insert("http".into(), toml::Value::Array(rules));

    let mut secrets = m
        .get("secrets")
        .and_then(|s| s.as_table())
        .cloned()
        .unwrap_or_default();
    let mut unused = toml::Table::new();
    unused.insert("from".into(), "env:UNUSED_BROAD_KEY".into());
    secrets.insert("unused-broad".into(), toml::Value::Table(unused));
    b.insert("secrets".into(), toml::Value::Table(secrets));

    let broad_extra: toml::Table = r#"
        [clocks]
        wall = true
        monotonic = true
        [random]
        secure = true
        [limits]
        memory = "256MiB"
        wall = "30s"
        output = "4MiB"
        http-requests = 50
        egress = "8MiB"
    "#
    .parse()
    .unwrap();
    b.extend(broad_extra);
    toml::to_string(&b).unwrap()
}

/// A size or count of `[limits]` as a number (sizes in bytes, durations in ms).
fn limit(v: &toml::Value) -> u64 {
    if let Some(i) = v.as_integer() {
        return u64::try_from(i).unwrap();
    }
    let s = v.as_str().unwrap();
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap();
    let unit = &s[digits.len()..];
    n * match unit {
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "" => 1,
        other => panic!("unit {other:?} in {s:?}"),
    }
}

/// Fails unless every grant of `learned` lies within the hand-written manifest `hand`.
fn assert_no_broader(learned: &toml::Table, hand: &toml::Table, scene: &Path, text: &str) {
    let list = |t: &toml::Table, k: &str| {
        t.get(k)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    // Files: each learned guest path at or below a hand-written grant, access no wider.
    for f in list(learned, "files") {
        let guest = f["guest"].as_str().unwrap();
        let access = f["access"].as_str().unwrap();
        let within = list(hand, "files").iter().any(|h| {
            let hg = h["guest"].as_str().unwrap();
            let below = guest == hg || guest.starts_with(&format!("{}/", hg.trim_end_matches('/')));
            below && (access == "read" || h["access"].as_str() == Some("read-write"))
        });
        assert!(
            within,
            "file grant {guest} ({access}) broader than the hand-written manifest:\n{text}"
        );
    }
    // HTTP: each learned URL under a hand-written rule's, each method one it allows.
    for r in list(learned, "http") {
        let url = r["url"].as_str().unwrap();
        for m in r["methods"].as_array().unwrap() {
            let m = m.as_str().unwrap();
            let within = list(hand, "http").iter().any(|h| {
                url.starts_with(h["url"].as_str().unwrap())
                    && h["methods"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x.as_str() == Some(m))
            });
            assert!(
                within,
                "{m} {url} broader than the hand-written manifest:\n{text}"
            );
        }
    }
    // Secrets: a subset, each with the hand-written source and binding.
    let none = toml::Table::new();
    let hs = hand
        .get("secrets")
        .and_then(|s| s.as_table())
        .unwrap_or(&none);
    for (name, s) in learned
        .get("secrets")
        .and_then(|s| s.as_table())
        .unwrap_or(&none)
    {
        let h = hs
            .get(name)
            .unwrap_or_else(|| panic!("secret {name} not in the hand-written manifest:\n{text}"));
        // LEARNED writes a `file:` source absolute (so it may live anywhere).
        let absolute = |from: &str| match from.strip_prefix("file:") {
            Some(p) if !p.starts_with('/') => format!("file:{}", scene.join(p).display()),
            _ => from.to_owned(),
        };
        assert_eq!(
            s["from"].as_str().map(absolute),
            h["from"].as_str().map(absolute),
            "{text}"
        );
        assert_eq!(
            s.get("inject").map(|i| &i["url"]),
            h.get("inject").map(|i| &i["url"]),
            "{text}"
        );
        assert!(
            s.get("reveal").is_none() || h.get("reveal").is_some(),
            "{text}"
        );
    }
    // Env: exactly the hand-written one's (BROAD's; not observable).
    assert_eq!(learned.get("env"), hand.get("env"), "{text}");
    // Network, clocks, random, stdin: only what the hand-written manifest has.
    for key in ["network", "clocks", "random"] {
        if hand.get(key).is_none() {
            assert!(
                learned.get(key).is_none(),
                "[{key}] learned, not in the hand-written manifest:\n{text}"
            );
        }
    }
    let stdin = |t: &toml::Table| {
        t.get("stdio")
            .and_then(|s| s.get("stdin"))
            .and_then(|s| s.as_str())
            == Some("inherit")
    };
    assert!(!stdin(learned) || stdin(hand), "{text}");
    // Limits: each at most the hand-written one where it sets one.
    let lt = learned["limits"].as_table().unwrap();
    if let Some(hl) = hand.get("limits").and_then(|l| l.as_table()) {
        for (k, v) in hl {
            if let Some(lv) = lt.get(k) {
                assert!(
                    limit(lv) <= limit(v),
                    "[limits] {k}: learned {lv} above the hand-written {v}:\n{text}"
                );
            }
        }
    }
}

fn refusals(r: &Outcome) -> usize {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("refused: "))
        .count()
}

pub(crate) fn learn_and_compare(case: &Case) {
    let server = Server::start();
    let (s, hand_path) = example(case.name, &server);
    let hand: toml::Table = std::fs::read_to_string(&hand_path)
        .unwrap()
        .parse()
        .unwrap();
    let broad = s.file("broad.warden.toml", &broaden(&hand, s.dir.path()));
    // LEARNED outside BROAD's read-write grant of the whole folder (learn refuses it there).
    let elsewhere = tempfile::tempdir().unwrap();
    let learned = elsewhere.path().join("learned.warden.toml");
    let mut env = case.env.to_vec();
    env.push(("UNUSED_BROAD_KEY", UNUSED_KEY));

    let r = learn(&broad, &learned, false, case.module, &[], &env);
    assert_eq!(r.code, 0, "{}: {r:#?}", case.name);
    assert!(r.stdout.contains(case.job), "{}: {r:#?}", case.name);
    let (before, after) = syscall_counts(&r);
    assert!(after <= before, "{r:#?}");
    let text = std::fs::read_to_string(&learned).unwrap();
    let got = table(&learned);
    assert_no_broader(&got, &hand, s.dir.path(), &text);
    // What BROAD added beyond the hand-written manifest is gone, and said so.
    assert!(
        text.contains("[[files]] /extra-broad (read-write): no operation on it"),
        "{text}"
    );
    assert!(text.contains("[secrets.unused-broad]: never"), "{text}");
    check_ok(&learned);

    // Control: the job is done under LEARNED (UNUSED_BROAD_KEY no longer needed)...
    let r = run(&s, &learned, case.module, &[], case.env);
    assert_eq!(r.code, 0, "{}: under LEARNED: {r:#?}\n{text}", case.name);
    assert!(
        r.stdout.contains(case.job),
        "{}: under LEARNED: {r:#?}",
        case.name
    );
    // ...and every attempt beyond it is refused, as under the hand-written manifest.
    let hand_run = run(&s, &hand_path, case.module, case.tries, case.env);
    let learned_run = run(&s, &learned, case.module, case.tries, case.env);
    for (which, r) in [("hand-written", &hand_run), ("LEARNED", &learned_run)] {
        assert_eq!(r.code, 0, "{} under {which}: {r:#?}", case.name);
        assert!(
            !r.stdout.contains("ALLOWED"),
            "{} under {which}: {r:#?}",
            case.name
        );
    }
    assert!(refusals(&hand_run) > 0, "{hand_run:#?}");
    assert_eq!(
        refusals(&learned_run),
        refusals(&hand_run),
        "{}: refusals differ:\nLEARNED:\n{}\nhand-written:\n{}",
        case.name,
        learned_run.stdout,
        hand_run.stdout
    );
}

#[test]
fn payments_learned_is_no_broader_than_its_hand_written_manifest() {
    learn_and_compare(&Case {
        name: "payments",
        module: guests::PAYMENTS_P2,
        env: &[("STRIPE_KEY", STRIPE_KEY)],
        job: "receipt: 200",
        tries: &[
            "--try-write",
            "--try-other-host",
            "--try-spawn",
            "--try-reveal",
            "--try-exfil",
        ],
    });
}

#[test]
fn agent_tool_learned_is_no_broader_than_its_hand_written_manifest() {
    learn_and_compare(&Case {
        name: "agent-tool",
        module: guests::AGENT_TOOL_P2,
        env: &[],
        job: "result delivered: 200",
        tries: &["--try-write", "--try-undeclared-http", "--try-credentials"],
    });
}

#[test]
fn ci_job_learned_is_no_broader_than_its_hand_written_manifest() {
    learn_and_compare(&Case {
        name: "ci-job",
        module: guests::CI_JOB_P2,
        env: &[("CI_UPLOAD_TOKEN", CI_UPLOAD_TOKEN)],
        job: "uploaded build.log to ",
        tries: &[
            "--try-env",
            "--try-other-endpoints",
            "--try-write-artifacts",
            "--try-dot-segments",
        ],
    });
}

#[test]
fn vendor_connector_learned_is_no_broader_than_its_hand_written_manifest() {
    learn_and_compare(&Case {
        name: "vendor-connector",
        module: guests::VENDOR_CONNECTOR_P2,
        env: &[("VENDOR_API_KEY", VENDOR_API_KEY)],
        job: "sent 3 orders (total 288.93) to the vendor: 200",
        tries: &["--try-metadata", "--try-other-host", "--try-outside-data"],
    });
}

#[test]
fn deploy_controller_learned_is_no_broader_than_its_hand_written_manifest() {
    learn_and_compare(&Case {
        name: "deploy-controller",
        module: guests::DEPLOY_CONTROLLER_P2,
        env: &[],
        job: "requested: 200",
        tries: &["--try-other-paths", "--try-other-hosts"],
    });
}

/// The comparison is not vacuous: each way of being broader than the hand-written manifest
/// fails it, and the hand-written manifest itself passes (the control).
#[test]
fn the_comparison_fails_every_kind_of_broader_manifest() {
    let server = Server::start();
    let (s, hand_path) = example("ci-job", &server);
    let hand: toml::Table = std::fs::read_to_string(&hand_path)
        .unwrap()
        .parse()
        .unwrap();
    let dir = s.dir.path();
    assert_no_broader(&hand, &hand, dir, "the hand-written manifest itself");

    type Widen = fn(&mut toml::Table);
    let widenings: [(&str, Widen); 7] = [
        ("a read folder made read-write", |t| {
            t["files"][0]["access"] = "read-write".into();
        }),
        ("a folder above a grant", |t| {
            t["files"][0]["guest"] = "/".into();
        }),
        ("another method", |t| {
            t["http"][0]["methods"] = toml::Value::Array(vec!["POST".into(), "PUT".into()]);
        }),
        ("a wider URL", |t| {
            let url = t["http"][0]["url"]
                .as_str()
                .unwrap()
                .replace("/ci/logs/", "/");
            t["http"][0]["url"] = url.into();
        }),
        ("another secret", |t| {
            let mut s = toml::Table::new();
            s.insert("from".into(), "env:OTHER".into());
            t["secrets"]
                .as_table_mut()
                .unwrap()
                .insert("other".into(), s.into());
        }),
        ("a clock", |t| {
            t.insert(
                "clocks".into(),
                "wall = true".parse::<toml::Table>().unwrap().into(),
            );
        }),
        ("a higher limit", |t| {
            t["limits"]["memory"] = "1GiB".into();
        }),
    ];
    for (what, widen) in widenings {
        let mut wider = hand.clone();
        widen(&mut wider);
        let caught = std::panic::catch_unwind(|| assert_no_broader(&wider, &hand, dir, what));
        assert!(caught.is_err(), "not caught: {what}");
    }
}
