//! A one-shot `warden run` compiles without epoch interruption: its watchdog ends the process
//! at the wall limit, after the `limit` and `exit` records (docs/security.md, "Wall time
//! without epochs"). `--epochs` (and any manifest with a read-write single file) keeps epochs.

use crate::guests;
use crate::util::{Outcome, Scene, both, warden};
use sha2::Digest;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn interruption(r: &Outcome) -> &str {
    r.events("start")[0]["interruption"].as_str().unwrap()
}

/// The exit record is the last record: nothing of the guest's is written after it.
fn assert_exit_is_last(r: &Outcome) {
    assert_eq!(r.audit.last().unwrap()["event"], "exit", "{r:#?}");
}

#[test]
fn a_spinning_guest_ends_with_the_process_at_its_wall_limit() {
    for (kind, spin) in both(guests::SPIN_P1, guests::SPIN_P2) {
        let s = Scene::new();
        let m = s.manifest("[limits]\nwall = \"300ms\"\n");
        let r = s.run(Some(&m), spin, &[]);
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "spinning\n", "{kind}");
        assert_eq!(interruption(&r), "end-process", "{kind}");
        assert_eq!(r.events("limit").len(), 1, "{kind}: {r:#?}");
        assert_eq!(r.events("limit")[0]["limit"], "wall");
        let exit = r.exit();
        assert_eq!(exit["outcome"], "wall-limit", "{kind}");
        assert_eq!(exit["code"], 124, "{kind}");
        assert!(
            exit["message"]
                .as_str()
                .unwrap()
                .contains("ended with the process"),
            "{kind}: {exit}"
        );
        assert_exit_is_last(&r);
        assert!(
            r.stderr.contains("wall-time limit reached"),
            "{kind}: {r:#?}"
        );

        // Control: with --epochs the epoch stops the guest and the run's own thread reports.
        let r = s.run_with(Some(&m), spin, &[], |c| {
            c.arg("--epochs");
        });
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(interruption(&r), "epoch", "{kind}");
        assert_eq!(r.exit()["outcome"], "wall-limit", "{kind}");
        assert!(r.exit()["message"].is_null(), "{kind}: {}", r.exit());
        assert_exit_is_last(&r);
    }
}

#[test]
fn an_output_flood_writes_nothing_after_the_exit_record() {
    for (kind, flood) in both(guests::FLOOD_P1, guests::FLOOD_P2) {
        let s = Scene::new();
        // Discarded (still metered), and a budget it cannot spend before its wall limit.
        let m = s.manifest(
            "[limits]\nwall = \"300ms\"\noutput = \"64GiB\"\n[stdio]\nstdout = \"null\"\n",
        );
        let r = s.run(Some(&m), flood, &[]);
        assert_eq!(r.code, 124, "{kind}: {}", r.stderr);
        assert_eq!(interruption(&r), "end-process", "{kind}");
        assert_eq!(r.exit()["outcome"], "wall-limit", "{kind}");
        assert_exit_is_last(&r);
    }
}

/// `warden run` of FS_P1/P2 `stdin` with stdin inherited and held open by the test: the guest
/// blocks in a host call that only the watchdog ends.
fn run_blocked(s: &Scene, m: &Path, guest: &str, extra: &[&str]) -> Outcome {
    let audit = s.path("blocked.jsonl");
    let _ = std::fs::remove_file(&audit);
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--audit")
        .arg(&audit)
        .arg("--manifest")
        .arg(m)
        .args(extra)
        .arg(guest)
        .arg("--")
        .arg("stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("warden still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: status.code().unwrap_or(-1),
        signal: None,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        audit: std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    }
}

#[test]
fn a_guest_blocked_in_a_host_call_ends_at_its_wall_limit_too() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        let m = s.manifest("[limits]\nwall = \"500ms\"\n[stdio]\nstdin = \"inherit\"\n");
        let r = run_blocked(&s, &m, fs, &[]);
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(interruption(&r), "end-process", "{kind}");
        assert_eq!(r.events("limit")[0]["limit"], "wall", "{kind}");
        assert_eq!(r.exit()["outcome"], "wall-limit", "{kind}");
        // Found blocked, it had the same grace as with epochs.
        assert!(
            r.exit()["message"]
                .as_str()
                .unwrap()
                .starts_with("stuck in a host call past the wall limit; the run was ended"),
            "{kind}: {}",
            r.exit()
        );
        assert_exit_is_last(&r);
        // Control: with epochs the same guest is settled by the watchdog too (the epoch
        // cannot reach a host call), as it always was.
        let r = run_blocked(&s, &m, fs, &["--epochs"]);
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(interruption(&r), "epoch", "{kind}");
        assert_eq!(
            r.exit()["message"],
            "stuck in a host call past the wall limit",
            "{kind}"
        );
    }
}

#[test]
fn a_spinning_writer_of_a_read_write_file_keeps_epochs_and_its_copy_back() {
    for (kind, fs) in both(guests::FS_P1, guests::FS_P2) {
        let s = Scene::new();
        s.file("state/cursor", "41");
        s.mkdir("tmp");
        let m = s.manifest(
            "[limits]\nwall = \"500ms\"\n\
             [[files]]\nhost = \"state/cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n",
        );
        let r = s.run_with(Some(&m), fs, &["churn", "/state/cursor"], |c| {
            c.env("TMPDIR", s.path("tmp"));
        });
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "churning\n", "{kind}");
        assert_eq!(
            interruption(&r),
            "epoch",
            "{kind}: a read-write file keeps epochs"
        );
        // Copied back from a stopped guest: one whole counter value, never a torn write.
        let cursor = std::fs::read_to_string(s.path("state/cursor")).unwrap();
        assert_eq!(cursor.len(), 20, "{kind}: {cursor:?}");
        assert!(
            cursor.bytes().all(|b| b.is_ascii_digit()),
            "{kind}: {cursor:?}"
        );
        assert!(
            std::fs::read_dir(s.path("tmp")).unwrap().next().is_none(),
            "{kind}: staging removed"
        );
        assert_exit_is_last(&r);
        // Control: the same writer on a granted folder (no single file to copy back) runs
        // without epochs, and is ended with the process.
        s.file("dir/cursor", "00000000000000000041");
        let m = s.manifest(
            "[limits]\nwall = \"500ms\"\n\
             [[files]]\nhost = \"dir\"\nguest = \"/state\"\naccess = \"read-write\"\n",
        );
        let r = s.run(Some(&m), fs, &["churn", "/state/cursor"]);
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(interruption(&r), "end-process", "{kind}");
        assert_exit_is_last(&r);
    }
}

/// The code cached for a one-shot run is compiled without epochs: a different cache entry
/// from the one compiled with them, and one that an engine with epochs refuses.
#[test]
fn code_compiled_without_epochs_is_never_loaded_with_them() {
    let s = Scene::new();
    let cache = s.path("cache");
    let run = |epochs: bool| {
        let audit = s.path("cache-audit.jsonl");
        let _ = std::fs::remove_file(&audit);
        let mut cmd = warden();
        cmd.env("WARDEN_CACHE_DIR", &cache)
            .arg("run")
            .arg("--audit")
            .arg(&audit);
        if epochs {
            cmd.arg("--epochs");
        }
        cmd.arg(guests::HELLO_P1);
        let r = crate::util::finish(cmd, Some(&audit));
        assert_eq!(r.code, 0, "{r:#?}");
        (
            interruption(&r).to_string(),
            r.events("start")[0]["cache"].as_str().unwrap().to_string(),
        )
    };
    let entries = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(run(false), ("end-process".into(), "miss".into()));
    let without = entries();
    assert_eq!(without.len(), 1);
    // The other mode never takes that entry: it compiles its own.
    assert_eq!(run(true), ("epoch".into(), "miss".into()));
    let both = entries();
    assert_eq!(both.len(), 2);
    let with: Vec<_> = both.iter().filter(|p| !without.contains(p)).collect();
    let (a, b) = (
        std::fs::read(&without[0]).unwrap(),
        std::fs::read(with[0]).unwrap(),
    );
    assert_ne!(a, b, "the code differs");
    assert_eq!(run(false).1, "hit");
    assert_eq!(run(true).1, "hit");

    // Even under the other mode's name, the entry is refused (wasmtime checks the setting
    // at deserialize) and rebuilt, never run.
    let library = |interruption| {
        warden::Warden::new(warden::EngineSettings {
            interruption,
            ..warden::EngineSettings::default()
        })
        .unwrap()
    };
    let bytes = std::fs::read(guests::HELLO_P1).unwrap();
    let digest = sha2::Sha256::digest(&bytes);
    let cache_of = warden::ModuleCache::new(&cache);
    let load = |w: &warden::Warden| {
        cache_of
            .load_or_compile(w.engine(), &bytes, &digest, false)
            .unwrap()
            .1
    };
    let epochs = library(warden::Interruption::Epoch);
    let end = library(warden::Interruption::EndProcess);
    assert_eq!(load(&end), warden::cache::CacheStatus::Hit);
    assert_eq!(load(&epochs), warden::cache::CacheStatus::Hit);
    let swap = |from: &Path, to: &Path| {
        std::fs::copy(from, to).unwrap();
        std::fs::copy(from.with_extension("sum"), to.with_extension("sum")).unwrap();
    };
    swap(&without[0], with[0]);
    match load(&epochs) {
        warden::cache::CacheStatus::Rebuilt(why) => {
            assert!(why.contains("engine refused"), "{why}")
        }
        other => panic!("an entry without epochs was loaded with them: {other:?}"),
    }
    // Control: an intact entry of its own mode loads.
    assert_eq!(load(&epochs), warden::cache::CacheStatus::Hit);
}

/// A guest blocked in a host call past its wall limit, whose call comes back within the
/// watchdog's grace and which then exits at once, is reported as the wall limit (124), with
/// and without epochs: a run is never `exited` after its limit. Control: the same call
/// answered well inside the limit exits 0.
#[test]
fn a_guest_back_from_a_host_call_after_its_wall_limit_is_reported_as_the_wall_limit() {
    use crate::server::Server;
    for (delay_ms, late) in [(1_600u64, true), (100, false)] {
        let server = Server::raw(move |_| {
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec()
        });
        let s = Scene::new();
        let m = s.manifest(&format!(
            "[[http]]\nurl = \"{}\"\n\n[limits]\nwall = \"1s\"\n",
            server.url("/")
        ));
        for epochs in [false, true] {
            let step = format!("http GET {}", server.url("/slow"));
            let r = s.run_with(Some(&m), guests::NET_PROBE_P2, &[], |c| {
                if epochs {
                    c.arg("--epochs");
                }
                c.arg("--").arg(&step);
            });
            let mode = if epochs { "epoch" } else { "end-process" };
            assert_eq!(interruption(&r), mode, "{r:#?}");
            if late {
                assert_eq!(r.code, 124, "epochs {epochs}: {r:#?}");
                assert_eq!(r.exit()["outcome"], "wall-limit", "epochs {epochs}: {r:#?}");
                assert_eq!(
                    r.events("limit")[0]["limit"],
                    "wall",
                    "epochs {epochs}: {r:#?}"
                );
            } else {
                assert_eq!(r.code, 0, "control, epochs {epochs}: {r:#?}");
                assert_eq!(r.exit()["outcome"], "exited", "control: {r:#?}");
            }
        }
    }
}
