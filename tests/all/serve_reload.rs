//! `warden serve` reloads its manifests (SIGHUP, `POST /v1/reload`) without dropping a run:
//! a changed identity serves its new version, runs already under way finish on the old one,
//! a manifest that cannot be loaded leaves the old one serving and says why, and only a
//! loopback peer or the token holder may ask. Each test starts its own server on 127.0.0.1:0.

use crate::guests;
use crate::serve::{Reply, Serve, exits, manifest};
use crate::util::Scene;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;

/// Replaces `path`'s contents at once (a new file renamed over it, as deploy tools do), so
/// that nothing ever reads it half written.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The manifest of identity `name` running the env guest with `MODE` set to `mode`.
fn env_manifest(s: &Scene, name: &str, mode: &str) -> std::path::PathBuf {
    manifest(
        s,
        name,
        guests::ENV_P1,
        &format!("[env]\nMODE = \"{mode}\"\n"),
    )
}

/// What a run of the env guest prints for `get MODE` (checking it succeeded).
fn mode(serve: &Serve, name: &str) -> String {
    let r = serve.run(name, &["get", "MODE"], b"");
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    v["stdout"].as_str().unwrap().trim().to_string()
}

/// A core module that counts down from `loops` (so a run takes a while), then prints `text`.
fn print_module(text: &str, loops: u64) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write"
               (func $write (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 64) "{text}\n")
             (func (export "_start") (local $i i64)
               (local.set $i (i64.const {loops}))
               (block $done
                 (loop $again
                   (br_if $done (i64.eqz (local.get $i)))
                   (local.set $i (i64.sub (local.get $i) (i64.const 1)))
                   (br $again)))
               (i32.store (i32.const 0) (i32.const 64))
               (i32.store (i32.const 4) (i32.const {len}))
               (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len() + 1
    ))
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `/v1/workloads` entry of `name`.
fn workload(serve: &Serve, name: &str) -> Value {
    let list = serve.get("/v1/workloads").json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// How many `warden serve-worker` children the server has (ones that end while they are
/// looked at are not counted).
fn worker_processes(serve: &Serve) -> usize {
    let pid = serve.pid();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|child| {
            std::fs::read(format!("/proc/{child}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"serve-worker"))
        })
        .count()
}

fn sighup(serve: &Serve) {
    let ok = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(serve.pid().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

fn post_reload(serve: &Serve, headers: &[&str]) -> Reply {
    serve.request_with("POST", "/v1/reload", headers, b"")
}

/// The names listed under `key` in a reload answer.
fn listed(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|n| {
            n.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| n["identity"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The server's `error` records whose message holds `fragment`.
fn errors_with(serve: &Serve, fragment: &str) -> Vec<Value> {
    serve
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "error" && r["message"].as_str().unwrap().contains(fragment))
        .collect()
}

#[test]
fn after_sighup_a_changed_manifest_serves_its_new_behaviour() {
    let s = Scene::new();
    let m = env_manifest(&s, "moody", "old");
    let other = env_manifest(&s, "steady", "same");
    let serve = Serve::start(&s, &[&m, &other], &[]);
    assert_eq!(mode(&serve, "moody"), "old");
    let before = workload(&serve, "moody");
    replace(
        &m,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("old", "new")
            .as_bytes(),
    );
    // Control: a changed file alone changes nothing (a worker reads it only when it starts).
    assert_eq!(mode(&serve, "moody"), "old");
    sighup(&serve);
    serve.wait_for("warden_reloads_total{result=\"ok\"}", 1.0);
    assert_eq!(mode(&serve, "moody"), "new");
    assert_eq!(mode(&serve, "steady"), "same");
    let after = workload(&serve, "moody");
    assert_ne!(after["manifest_sha256"], before["manifest_sha256"]);
    assert_eq!(
        after["manifest_sha256"],
        sha256_hex(&std::fs::read(&m).unwrap())
    );
    assert_eq!(
        serve.metric("warden_reloads_total{result=\"failed\"}"),
        Some(0.0)
    );
    let stderr = serve.stderr();
    assert!(
        stderr.contains("1 reloaded, 1 unchanged, 0 failed"),
        "{stderr}"
    );
    assert_eq!(serve.stop(), 0);
}

#[test]
fn post_reload_from_loopback_serves_a_new_module_and_its_sha256() {
    let s = Scene::new();
    let module = s.path("printer.wasm");
    let v1 = print_module("printer-v1", 1);
    let v2 = print_module("printer-v2", 1);
    std::fs::write(&module, &v1).unwrap();
    let m = manifest(&s, "printer", &module.display().to_string(), "");
    let serve = Serve::start(&s, &[&m], &[]);
    let run = |serve: &Serve| serve.run("printer", &[], b"").json()["stdout"].clone();
    assert_eq!(run(&serve), "printer-v1\n");
    assert_eq!(workload(&serve, "printer")["sha256"], sha256_hex(&v1));
    // Control: reloading with nothing changed keeps the workers and says so.
    let r = post_reload(&serve, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(listed(&r.json(), "unchanged"), ["printer"]);
    assert!(listed(&r.json(), "reloaded").is_empty());
    replace(&module, &v2);
    assert_eq!(run(&serve), "printer-v1\n");
    let r = post_reload(&serve, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(listed(&r.json(), "reloaded"), ["printer"]);
    assert_eq!(run(&serve), "printer-v2\n");
    assert_eq!(workload(&serve, "printer")["sha256"], sha256_hex(&v2));
    assert_eq!(
        serve.metric("warden_reloads_total{result=\"ok\"}"),
        Some(2.0)
    );
    // A GET names the endpoint but asks for nothing.
    assert_eq!(serve.get("/v1/reload").status, 405);
    assert_eq!(serve.stop(), 0);
}

#[test]
fn with_a_token_a_reload_without_it_or_with_a_wrong_one_is_refused_and_reloads_nothing() {
    let s = Scene::new();
    let m = env_manifest(&s, "guarded", "old");
    let token = "reload-secret-4b1d";
    let file = s.file("token", &format!("{token}\n"));
    let serve = Serve::start(&s, &[&m], &["--reload-token-file", file.to_str().unwrap()]);
    replace(
        &m,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("old", "new")
            .as_bytes(),
    );
    let wrong = "Authorization: Bearer reload-secret-4b1e";
    let basic = format!("Authorization: Basic {token}");
    for headers in [&[][..], &[wrong][..], &[basic.as_str()][..]] {
        let r = post_reload(&serve, headers);
        assert_eq!(r.status, 403, "{headers:?}: {r:?}");
        assert!(r.body.contains("reload refused"), "{r:?}");
        assert_eq!(mode(&serve, "guarded"), "old", "{headers:?}");
    }
    assert_eq!(errors_with(&serve, "reload refused").len(), 3);
    assert_eq!(
        serve.metric("warden_reloads_total{result=\"ok\"}"),
        Some(0.0)
    );
    assert!(!serve.stderr().contains(token), "the token is never logged");
    assert!(
        !std::fs::read_to_string(s.path("serve-audit.jsonl"))
            .unwrap()
            .contains(token)
    );
    // Control: the right token reloads.
    let right = format!("Authorization: Bearer {token}");
    let r = post_reload(&serve, &[right.as_str()]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(listed(&r.json(), "reloaded"), ["guarded"]);
    assert_eq!(mode(&serve, "guarded"), "new");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn an_empty_or_missing_token_file_stops_the_start_with_one_line() {
    let s = Scene::new();
    let m = env_manifest(&s, "tokenless", "x");
    let empty = s.file("empty-token", "\n");
    for (file, says) in [
        (empty, "empty"),
        (s.path("no-such-token"), "cannot read the reload token"),
    ] {
        let mut cmd = crate::util::warden();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
            .arg(&m)
            .arg("--reload-token-file")
            .arg(&file);
        crate::util::finish(cmd, None).assert_one_line_error(says);
    }
}

#[test]
fn a_manifest_that_fails_to_load_on_reload_leaves_the_old_version_serving_and_says_why() {
    let s = Scene::new();
    let m = env_manifest(&s, "fragile", "old");
    let good = std::fs::read_to_string(&m).unwrap();
    let serve = Serve::start(&s, &[&m], &[]);
    let broken: [(&str, String); 3] = [
        ("malformed", good.replace("[env]", "[env")),
        (
            "module missing",
            good.replace(guests::ENV_P1, "/nonexistent/gone.wasm"),
        ),
        (
            "renamed",
            good.replace("name = \"fragile\"", "name = \"other\""),
        ),
    ];
    let mut failures = 0.0;
    for (what, text) in &broken {
        replace(&m, text.as_bytes());
        let r = post_reload(&serve, &[]);
        failures += 1.0;
        assert_eq!(r.status, 422, "{what}: {r:?}");
        let v = r.json();
        let failed = &v["failed"][0];
        assert_eq!(failed["identity"], "fragile", "{what}: {v}");
        let why = failed["error"].as_str().unwrap();
        let expected = match *what {
            "malformed" => "fragile.warden.toml:",
            "module missing" => "gone.wasm",
            _ => "now names identity `other`",
        };
        assert!(why.contains(expected), "{what}: {why}");
        // The old version serves on.
        assert_eq!(mode(&serve, "fragile"), "old", "{what}");
        assert_eq!(
            serve.metric("warden_reloads_total{result=\"failed\"}"),
            Some(failures)
        );
        let records = errors_with(&serve, why);
        assert_eq!(records.len(), 1, "{what}: {records:?}");
        assert_eq!(records[0]["identity"], "spiffe://test.example/fragile");
        assert!(serve.stderr().contains(why), "{what}");
    }
    // A worker of the old version cannot start once its manifest moved on: a reload fixes it.
    // Control: the fixed manifest reloads.
    replace(&m, good.replace("old", "fixed").as_bytes());
    let r = post_reload(&serve, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(listed(&r.json(), "reloaded"), ["fragile"]);
    assert_eq!(mode(&serve, "fragile"), "fixed");
    assert_eq!(serve.stop(), 0);
}

#[test]
fn a_run_in_flight_across_a_reload_finishes_on_the_old_version() {
    let s = Scene::new();
    let module = s.path("slow.wasm");
    // A few seconds of counting: long enough to be under way through the reload.
    std::fs::write(&module, print_module("slow-v1", 8_000_000_000)).unwrap();
    let m = manifest(
        &s,
        "slow",
        &module.display().to_string(),
        "[limits]\nwall = \"120s\"\n",
    );
    let serve = std::sync::Arc::new(Serve::start(&s, &[&m], &[]));
    let running = {
        let serve = serve.clone();
        std::thread::spawn(move || serve.run("slow", &[], b""))
    };
    serve.wait_for("warden_runs_in_flight{identity=\"slow\"}", 1.0);
    replace(&module, &print_module("slow-v2", 1));
    let r = post_reload(&serve, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(listed(&r.json(), "reloaded"), ["slow"]);
    // Control: the run was still under way when the new version took over, on a worker of
    // its own beside the new version's.
    assert_eq!(worker_processes(&serve), 2);
    assert!(
        !running.is_finished(),
        "the slow run ended before the reload"
    );
    let quick = serve.run("slow", &[], b"").json();
    assert_eq!(quick["stdout"], "slow-v2\n", "{quick}");
    let old = running.join().unwrap().json();
    assert_eq!(old["outcome"], "exited", "{old}");
    assert_eq!(old["code"], 0, "{old}");
    assert_eq!(old["stdout"], "slow-v1\n", "{old}");
    let audit = serve.audit();
    for v in [&old, &quick] {
        assert_eq!(exits(&audit, v["run"].as_str().unwrap()).len(), 1);
    }
    // The old version's worker ends once its run is answered: one worker process is left.
    let mut left = worker_processes(&serve);
    for _ in 0..2000 {
        if left == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        left = worker_processes(&serve);
    }
    assert_eq!(left, 1);
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(serve.stop(), 0);
}

#[test]
fn under_load_every_run_is_answered_once_across_reloads() {
    const THREADS: usize = 4;
    // Each client posts runs one after another until the reloads are done, and at least this
    // many: the reloads happen while runs come in.
    const RUNS: usize = 10;
    const RELOADS: usize = 6;
    let s = Scene::new();
    let m = env_manifest(&s, "busy", "v0");
    let serve = std::sync::Arc::new(Serve::start(&s, &[&m], &["--max-workers", "2"]));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let (serve, done) = (serve.clone(), done.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while answers.len() < RUNS || !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let r = serve.run("busy", &["get", "MODE"], b"");
                    assert_eq!(r.status, 200, "{r:?}");
                    answers.push(r.json());
                }
                answers
            })
        })
        .collect();
    for i in 1..=RELOADS {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let text = std::fs::read_to_string(&m).unwrap();
        replace(
            &m,
            text.replace(&format!("\"v{}\"", i - 1), &format!("\"v{i}\""))
                .as_bytes(),
        );
        if i % 2 == 0 {
            sighup(&serve);
            serve.wait_for("warden_reloads_total{result=\"ok\"}", i as f64);
        } else {
            let r = post_reload(&serve, &[]);
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(listed(&r.json(), "reloaded"), ["busy"]);
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers: Vec<Vec<Value>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let total: usize = answers.iter().map(Vec::len).sum();
    let mut ids = HashSet::new();
    let mut seen = HashSet::new();
    for thread in &answers {
        let mut last = 0;
        for v in thread {
            assert_eq!(v["outcome"], "exited", "{v}");
            assert_eq!(v["code"], 0, "{v}");
            assert!(ids.insert(v["run"].as_str().unwrap().to_string()), "{v}");
            let version: usize = v["stdout"].as_str().unwrap().trim()[1..].parse().unwrap();
            // One client's runs go one after another: never back to an older version.
            assert!(version >= last, "v{version} after v{last}");
            last = version;
            seen.insert(version);
        }
    }
    assert_eq!(ids.len(), total);
    // Control: the reloads happened while runs came in (more than one version answered),
    // and the last one serves now.
    assert!(seen.len() > 1, "only {seen:?} answered");
    assert_eq!(mode(&serve, "busy"), format!("v{RELOADS}"));
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    let audit = serve.audit();
    for id in &ids {
        assert_eq!(exits(&audit, id).len(), 1, "run {id}");
    }
    let all_exits = audit.iter().filter(|r| r["event"] == "exit").count();
    assert_eq!(all_exits, total + 1, "no run answered twice or unasked");
    assert_eq!(
        serve.metric("warden_reloads_total{result=\"ok\"}"),
        Some(RELOADS as f64)
    );
    assert_eq!(serve.stop(), 0);
}

#[cfg(feature = "test-escape")]
#[test]
fn no_worker_of_a_version_whose_manifest_moved_on_is_started_until_a_reload() {
    let s = Scene::new();
    let module = crate::serve::escape_module(&s);
    let m = manifest(&s, "pinned", &module, "");
    let serve = Serve::start(&s, &[&m], &[]);
    let outcome = |serve: &Serve, args: &[&str]| {
        let v = serve.run("pinned", args, b"").json();
        (
            v["outcome"].as_str().unwrap().to_string(),
            v["code"].clone(),
        )
    };
    let refused = "changed on disk since it was loaded";
    // Control: with the files as loaded, a worker killed by its filter is replaced.
    assert_eq!(outcome(&serve, &["go"]).0, "worker-died");
    assert_eq!(outcome(&serve, &[]), ("exited".into(), 0.into()));
    assert!(!serve.stderr().contains(refused));
    // The manifest changes on disk, then the worker dies: its replacement would read the new
    // manifest, so it is not started as the version served.
    let text = std::fs::read_to_string(&m).unwrap();
    replace(&m, format!("{text}\n[limits]\nwall = \"9s\"\n").as_bytes());
    assert_eq!(outcome(&serve, &["go"]).0, "worker-died");
    for _ in 0..2000 {
        if serve.stderr().contains(refused) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(serve.stderr().contains(refused), "{}", serve.stderr());
    // A run asked for meanwhile waits in the old version's queue, with no worker to take it.
    let serve = std::sync::Arc::new(serve);
    let waiting = {
        let serve = serve.clone();
        std::thread::spawn(move || serve.run("pinned", &[], b"").json())
    };
    serve.wait_for("warden_queued_runs{identity=\"pinned\"}", 1.0);
    // A reload serves the new version, and the waiting run is handed over to it.
    let r = post_reload(&serve, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(listed(&r.json(), "reloaded"), ["pinned"]);
    let v = waiting.join().unwrap();
    assert_eq!(
        (&v["outcome"], &v["code"]),
        (&"exited".into(), &0.into()),
        "{v}"
    );
    assert_eq!(exits(&serve.audit(), v["run"].as_str().unwrap()).len(), 1);
    assert_eq!(outcome(&serve, &[]), ("exited".into(), 0.into()));
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(serve.stop(), 0);
}
