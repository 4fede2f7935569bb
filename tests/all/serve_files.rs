//! `warden serve` with single-file `[[files]]` grants and `file:` secrets: staged and read per
//! run by the server for its locked-down workers, with the guarantees `warden run` gives
//! (fs.rs, copyback.rs, the secrets tests), under `--seccomp enforce` (no run is killed by
//! its worker's filter). The server's `$TMPDIR` is a folder of the scene, so the tests can see
//! the staging folders go and a guest's relative symlink can name a file of the scene.

use crate::copyback::staging;
use crate::guests;
use crate::serve::{Serve, exits, manifest};
use crate::server::Server;
use crate::util::Scene;
use serde_json::Value;
use std::path::{Path, PathBuf};

const SECRET_FILE_TEXT: &str = "TOP-SECRET-HOST-FILE";

/// Starts a server over `manifests` with `$TMPDIR` in the scene's `tmp`.
fn serve(s: &Scene, manifests: &[&Path], extra: &[&str]) -> Serve {
    s.mkdir("tmp");
    let tmp = s.path("tmp");
    Serve::start_with_env(s, manifests, extra, &[("TMPDIR", tmp.to_str().unwrap())])
}

/// A run's answer; fails on anything but 200, and on a worker killed by its filter.
fn run(serve: &Serve, name: &str, args: &[&str]) -> Value {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace('%', "%25")
                .replace(' ', "%20")
                .replace('"', "%22")
                .replace('=', "%3D")
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = serve.run(name, &args, b"");
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_ne!(v["code"], 159, "killed by the worker's seccomp filter: {v}");
    assert_ne!(v["outcome"], "worker-died", "{v}\n{}", serve.stderr());
    v
}

fn out(v: &Value) -> (i64, &str) {
    (v["code"].as_i64().unwrap(), v["stdout"].as_str().unwrap())
}

/// The records of run `v` in the server's audit log.
fn records(serve: &Serve, v: &Value) -> Vec<Value> {
    let run = v["run"].as_str().unwrap();
    serve
        .audit()
        .into_iter()
        .filter(|r| r["run"] == run)
        .collect()
}

/// The `fs` copy-back refusal of run `v` about `target`, if one was audited.
fn refusal(serve: &Serve, v: &Value, target: &str) -> Option<String> {
    records(serve, v)
        .iter()
        .find(|r| {
            r["event"] == "decision"
                && r["decision"] == "deny"
                && r["capability"] == "fs"
                && r["target"] == target
        })
        .map(|r| r["reason"].as_str().unwrap().to_string())
}

/// The groups of the worker's lockdown, from run `v`'s start record.
fn worker_groups(serve: &Serve, v: &Value) -> Vec<String> {
    let recs = records(serve, v);
    let start = recs.iter().find(|r| r["event"] == "start").unwrap();
    assert_eq!(start["seccomp"]["mode"], "enforce", "{start}");
    start["seccomp"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_served_single_file_grant_shows_that_file_and_nothing_beside_it() {
    let s = Scene::new();
    s.file("config/app.toml", "region = \"eu\"\n");
    s.file("config/credentials.toml", "password = \"hunter2\"\n");
    let grant = "[[files]]\nhost = \"config/app.toml\"\nguest = \"/etc/app/app.toml\"\n\
                 access = \"read\"\n";
    let both = format!(
        "{grant}\n[[files]]\nhost = \"config/credentials.toml\"\n\
         guest = \"/etc/app/credentials.toml\"\naccess = \"read\"\n"
    );
    let p1 = manifest(&s, "cfg-module", guests::FS_P1, grant);
    let p2 = manifest(&s, "cfg-component", guests::FS_P2, grant);
    let control = manifest(&s, "cfg-both", guests::FS_P1, &both);
    let serve = serve(&s, &[&p1, &p2, &control], &[]);
    for name in ["cfg-module", "cfg-component"] {
        let v = run(&serve, name, &["read", "/etc/app/app.toml"]);
        assert_eq!(out(&v), (0, "region = \"eu\"\n"), "{name}: {v}");
        // The worker gained nothing for it: it opens the staged folder read-only, as a
        // folder grant; the server staged and removes it.
        let groups = worker_groups(&serve, &v);
        assert!(groups.contains(&"file-read".to_string()), "{groups:?}");
        for not in ["file-write", "file-staging", "threads"] {
            assert!(
                !groups.contains(&not.to_string()),
                "{name}: {not} in {groups:?}"
            );
        }

        let v = run(&serve, name, &["ls", "/etc/app"]);
        assert_eq!(out(&v), (0, "app.toml\n"), "{name}: only the granted file");
        for sneaky in ["/etc/app/credentials.toml", "/etc/app/../credentials.toml"] {
            let v = run(&serve, name, &["read", sneaky]);
            assert_eq!(v["code"], 1, "{name} {sneaky}: {v}");
            assert!(!v["stdout"].as_str().unwrap().contains("hunter2"));
        }
        let v = run(
            &serve,
            name,
            &["write", "/etc/app/app.toml", "region = \"us\""],
        );
        assert_eq!(v["code"], 1, "{name}: a read grant: {v}");
        assert_eq!(
            std::fs::read_to_string(s.path("config/app.toml")).unwrap(),
            "region = \"eu\"\n"
        );
    }
    // Control: the same server, an identity granted the sibling too, reads it and lists both.
    let v = run(&serve, "cfg-both", &["read", "/etc/app/credentials.toml"]);
    assert_eq!(out(&v), (0, "password = \"hunter2\"\n"), "{v}");
    let v = run(&serve, "cfg-both", &["ls", "/etc/app"]);
    assert_eq!(out(&v), (0, "app.toml\ncredentials.toml\n"), "{v}");

    // Staged per run: a change on the host is the next run's.
    s.file("config/app.toml", "region = \"us\"\n");
    let v = run(&serve, "cfg-module", &["read", "/etc/app/app.toml"]);
    assert_eq!(out(&v), (0, "region = \"us\"\n"), "{v}");
    // A granted file gone: that run fails as `warden run` would (125, named, audited) and
    // the worker lives on; control: back, the next run reads it.
    std::fs::remove_file(s.path("config/app.toml")).unwrap();
    let v = run(&serve, "cfg-module", &["read", "/etc/app/app.toml"]);
    assert_eq!(v["code"], 125, "{v}");
    assert!(v["stderr"].as_str().unwrap().contains("app.toml"), "{v}");
    assert_eq!(exits(&serve.audit(), v["run"].as_str().unwrap()).len(), 1);
    s.file("config/app.toml", "region = \"eu\"\n");
    let v = run(&serve, "cfg-module", &["read", "/etc/app/app.toml"]);
    assert_eq!(out(&v), (0, "region = \"eu\"\n"), "{v}");

    assert!(staging(&s).is_empty(), "staging removed: {:?}", staging(&s));
    // No worker died on the way (a failed staging fails the run, not the worker).
    assert_eq!(
        serve
            .metric("warden_worker_restarts_total{identity=\"cfg-module\"}")
            .unwrap_or(0.0),
        0.0
    );
    assert_eq!(serve.stop(), 0);
}

/// A scene with `state/cursor` ("41") granted read-write at `/state/cursor` to `fs-module`
/// and `fs-component`, a host file the guest must never reach (`secret.txt`), and `limits`.
fn rw_scene(limits: &str) -> (Scene, Vec<PathBuf>) {
    let s = Scene::new();
    s.file("state/cursor", "41");
    s.file("secret.txt", SECRET_FILE_TEXT);
    let body = format!(
        "[[files]]\nhost = \"state/cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n\
         {limits}"
    );
    let m = vec![
        manifest(&s, "fs-module", guests::FS_P1, &body),
        manifest(&s, "fs-component", guests::FS_P2, &body),
    ];
    (s, m)
}

fn cursor(s: &Scene) -> String {
    std::fs::read_to_string(s.path("state/cursor")).unwrap()
}

#[test]
fn a_served_read_write_single_file_is_copied_back_after_each_run() {
    let (s, m) = rw_scene("");
    let refs: Vec<&Path> = m.iter().map(PathBuf::as_path).collect();
    let serve = serve(&s, &refs, &[]);
    for name in ["fs-module", "fs-component"] {
        std::fs::write(s.path("state/cursor"), "41").unwrap();
        let v = run(&serve, name, &["append", "/state/cursor", "-a"]);
        assert_eq!(v["code"], 0, "{name}: {v}");
        // Copied back before the answer: the client sees it at once.
        assert_eq!(cursor(&s), "41-a", "{name}");
        let copied = records(&serve, &v).into_iter().any(|r| {
            r["event"] == "decision"
                && r["decision"] == "allow"
                && r["reason"]
                    .as_str()
                    .is_some_and(|t| t.contains("copied back"))
        });
        assert!(copied, "{name}: copy-back audited");
        // The next run sees the last one's write, and adds its own.
        let v = run(&serve, name, &["read", "/state/cursor"]);
        assert_eq!(out(&v), (0, "41-a"), "{name}: {v}");
        let v = run(&serve, name, &["append", "/state/cursor", "-b"]);
        assert_eq!(v["code"], 0, "{name}: {v}");
        assert_eq!(cursor(&s), "41-a-b", "{name}");
        let v = run(&serve, name, &["read", "/state/cursor"]);
        assert_eq!(out(&v), (0, "41-a-b"), "{name}: {v}");
        // The staged folder is private scratch: a sibling made there never reaches the host.
        let v = run(&serve, name, &["write", "/state/other", "x"]);
        assert_eq!(v["outcome"], "exited", "{name}: {v}");
        assert!(!s.path("state/other").exists(), "{name}");
        // A read-write grant gives the worker what a read-write folder grant does.
        let groups = worker_groups(&serve, &v);
        assert!(groups.contains(&"file-write".to_string()), "{groups:?}");
        assert!(!groups.contains(&"file-staging".to_string()), "{groups:?}");
    }
    assert!(staging(&s).is_empty(), "staging removed: {:?}", staging(&s));
    assert_eq!(serve.stop(), 0);
}

#[test]
fn a_served_guest_cannot_make_the_server_follow_a_link_or_copy_back_past_the_bound() {
    let (s, m) = rw_scene("[limits]\nstaged-file = \"1KiB\"\n");
    let refs: Vec<&Path> = m.iter().map(PathBuf::as_path).collect();
    let serve = serve(&s, &refs, &[]);
    for name in ["fs-module", "fs-component"] {
        std::fs::write(s.path("state/cursor"), "41").unwrap();
        // From tmp/warden-files-XXXX/cursor, `../../secret.txt` is the scene's secret.
        let v = run(
            &serve,
            name,
            &[
                "seq",
                "rm /state/cursor",
                "symlink ../../secret.txt /state/cursor",
            ],
        );
        assert_eq!(
            out(&v),
            (0, "ok\nok\n"),
            "{name}: the guest made its symlink: {v}"
        );
        assert_eq!(cursor(&s), "41", "{name}: the host file is untouched");
        let why = refusal(&serve, &v, "/state/cursor")
            .unwrap_or_else(|| panic!("{name}: deny audited: {:#?}", records(&serve, &v)));
        assert!(why.contains("symlink"), "{name}: {why}");

        let v = run(
            &serve,
            name,
            &[
                "seq",
                "link /state/cursor /state/twin",
                "write /state/cursor 42",
            ],
        );
        assert_eq!(v["code"], 0, "{name}: {v}");
        assert_eq!(
            cursor(&s),
            "41",
            "{name}: a hard-linked copy is not copied back"
        );
        let why = refusal(&serve, &v, "/state/cursor").expect("deny audited");
        assert!(why.contains("hard link"), "{name}: {why}");

        // Past [limits] staged-file: refused, the original untouched.
        let v = run(&serve, name, &["setlen", "/state/cursor", "1025"]);
        assert_eq!(v["code"], 0, "{name}: {v}");
        assert_eq!(cursor(&s), "41", "{name}");
        let why = refusal(&serve, &v, "/state/cursor").expect("deny audited");
        assert!(
            why.contains("over [limits] staged-file (1 KiB)"),
            "{name}: {why}"
        );

        // Control: at the bound, and a plain write, are copied back.
        let v = run(&serve, name, &["setlen", "/state/cursor", "1024"]);
        assert_eq!(refusal(&serve, &v, "/state/cursor"), None, "{name}: {v}");
        assert_eq!(
            std::fs::metadata(s.path("state/cursor")).unwrap().len(),
            1024
        );
        let v = run(&serve, name, &["write", "/state/cursor", "42"]);
        assert_eq!(refusal(&serve, &v, "/state/cursor"), None, "{name}: {v}");
        assert_eq!(cursor(&s), "42", "{name}");
    }
    // A granted file over the bound: that run fails (125), named; the server goes on.
    std::fs::write(s.path("state/cursor"), vec![b'x'; 2000]).unwrap();
    let v = run(&serve, "fs-module", &["read", "/state/cursor"]);
    assert_eq!(v["code"], 125, "{v}");
    assert!(
        v["stderr"]
            .as_str()
            .unwrap()
            .contains("is 2000 bytes, over [limits] staged-file (1 KiB)"),
        "{v}"
    );
    let text = std::fs::read_to_string(s.path("serve-audit.jsonl")).unwrap();
    assert!(
        !text.contains(SECRET_FILE_TEXT),
        "the secret file reached the log"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("secret.txt")).unwrap(),
        SECRET_FILE_TEXT
    );
    assert!(staging(&s).is_empty(), "staging removed: {:?}", staging(&s));
    assert_eq!(serve.stop(), 0);
}

#[test]
fn a_served_file_secret_is_read_per_run_so_a_rotated_one_reaches_the_next_run() {
    let s = Scene::new();
    let api = Server::start();
    let first = "sk_file_first_0a1b2c3d";
    let second = "sk_file_second_4e5f6a7b";
    let third = "sk_file_third_8c9d0e1f";
    s.file("creds/api-key", &format!("{first}\n"));
    let m = manifest(
        &s,
        "filesecret",
        guests::NET_PROBE_P2,
        &format!(
            "[[http]]\nurl = \"{base}/v1/\"\nmethods = [\"POST\"]\n\n[secrets.api]\n\
             from = \"file:creds/api-key\"\n\
             inject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\", url = \"{base}/v1/\" }}\n",
            base = api.url("")
        ),
    );
    let serve = serve(&s, &[&m], &[]);
    let run = |serve: &Serve, name: &str, args: &[&str]| {
        let v = run(serve, name, args);
        assert!(
            !v.to_string().contains("sk_file_"),
            "a value reached the guest's output: {v}"
        );
        v
    };
    let call = format!("http-secret POST {} api", api.url("/v1/charge"));
    let sent = |n: usize| {
        let reqs = api.requests();
        assert_eq!(reqs.len(), n, "{reqs:?}");
        reqs[n - 1]
            .header("authorization")
            .unwrap_or("")
            .to_string()
    };

    let v = run(&serve, "filesecret", &[&call]);
    assert!(out(&v).1.starts_with("http: 200"), "{v}");
    assert_eq!(sent(1), format!("Bearer {first}"));
    // The worker gained nothing for it: the server read the file.
    let groups = worker_groups(&serve, &v);
    assert!(!groups.iter().any(|g| g.starts_with("file-")), "{groups:?}");

    // Rotated by a rewrite in place: the next run sends the new value.
    std::fs::write(s.path("creds/api-key"), second).unwrap();
    let v = run(&serve, "filesecret", &[&call]);
    assert!(out(&v).1.starts_with("http: 200"), "{v}");
    assert_eq!(sent(2), format!("Bearer {second}"));
    // Rotated by a new file renamed over the old (how secret mounts are updated): the same.
    s.file("creds/api-key.new", third);
    std::fs::rename(s.path("creds/api-key.new"), s.path("creds/api-key")).unwrap();
    let v = run(&serve, "filesecret", &[&call]);
    assert!(out(&v).1.starts_with("http: 200"), "{v}");
    assert_eq!(sent(3), format!("Bearer {third}"));

    // Hostile: a secret the manifest does not grant is refused, audited, and nothing leaves.
    let v = run(
        &serve,
        "filesecret",
        &[&format!(
            "http-secret POST {} stolen",
            api.url("/v1/charge")
        )],
    );
    assert!(out(&v).1.starts_with("http: error"), "{v}");
    let denied = records(&serve, &v).into_iter().any(|r| {
        r["event"] == "decision" && r["decision"] == "deny" && r["capability"] == "secret"
    });
    assert!(denied, "refusal audited: {:#?}", records(&serve, &v));
    assert_eq!(api.requests().len(), 3, "the refused request never left");
    // Nor can it ask for the value (no `reveal`); control: the same secret, named for its
    // URL above, was sent.
    let v = run(&serve, "filesecret", &["reveal api"]);
    assert!(out(&v).1.starts_with("secret: error"), "{v}");

    // The source gone: that run fails as `warden run` would (125), and names it; control:
    // back, the next run sends it.
    std::fs::remove_file(s.path("creds/api-key")).unwrap();
    let v = run(&serve, "filesecret", &[&call]);
    assert_eq!(v["code"], 125, "{v}");
    assert!(v["stderr"].as_str().unwrap().contains("api-key"), "{v}");
    s.file("creds/api-key", first);
    let v = run(&serve, "filesecret", &[&call]);
    assert!(out(&v).1.starts_with("http: 200"), "{v}");
    assert_eq!(sent(4), format!("Bearer {first}"));

    // The guest never saw a value (no answer carried one), nor did the log.
    let text = std::fs::read_to_string(s.path("serve-audit.jsonl")).unwrap();
    for value in [first, second, third] {
        assert!(!text.contains(value), "{value} in the audit log");
    }
    for r in api.requests() {
        assert!(
            !r.text().contains("sk_file_"),
            "a value in a body: {}",
            r.dump()
        );
    }
    assert_eq!(serve.stop(), 0);
}

/// A core module that truncates `/state/cursor` (the first preopen, fd 3) and writes `99` to
/// it, then, given an argument, calls `warden_test::escape(1)` (open a socket), which the
/// worker's filter answers by killing it.
#[cfg(feature = "test-escape")]
fn write_then_escape_module(s: &Scene) -> String {
    let wasm = wat::parse_str(
        r#"(module
             (import "wasi_snapshot_preview1" "args_sizes_get"
               (func $sizes (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "path_open"
               (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "fd_write"
               (func $write (param i32 i32 i32 i32) (result i32)))
             (import "warden_test" "escape" (func $escape (param i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 16) "cursor")
             (data (i32.const 32) "99")
             (func (export "_start")
               (drop (call $sizes (i32.const 0) (i32.const 4)))
               ;; path_open(3, 0, "cursor", O_TRUNC, all rights, all rights, 0, &fd at 8)
               (if (call $open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 6)
                     (i32.const 8) (i64.const 0x1fffffff) (i64.const 0x1fffffff)
                     (i32.const 0) (i32.const 8))
                 (then unreachable))
               ;; one iovec at 48: "99"
               (i32.store (i32.const 48) (i32.const 32))
               (i32.store (i32.const 52) (i32.const 2))
               (if (call $write (i32.load (i32.const 8)) (i32.const 48) (i32.const 1)
                     (i32.const 56))
                 (then unreachable))
               (if (i32.gt_u (i32.load (i32.const 0)) (i32.const 1))
                 (then (drop (call $escape (i32.const 1)))))))"#,
    )
    .unwrap();
    let path = s.path("write-escape.wasm");
    std::fs::write(&path, wasm).unwrap();
    path.display().to_string()
}

#[cfg(feature = "test-escape")]
#[test]
fn a_worker_killed_mid_run_leaves_the_original_and_no_staging_behind() {
    let s = Scene::new();
    s.file("state/cursor", "41");
    let module = write_then_escape_module(&s);
    let m = manifest(
        &s,
        "escaper",
        &module,
        "[[files]]\nhost = \"state/cursor\"\nguest = \"/state/cursor\"\naccess = \"read-write\"\n",
    );
    let serve = serve(&s, &[&m], &[]);
    // The guest wrote its copy, then its worker was killed by its filter: as a killed
    // `warden run`, nothing is copied back, and the server removes the staging folder.
    let r = serve.run("escaper", &["go"], b"");
    let v = r.json();
    assert_eq!(
        (v["outcome"].as_str(), v["code"].as_i64()),
        (Some("worker-died"), Some(159)),
        "{v}"
    );
    assert_eq!(cursor(&s), "41", "nothing copied back from a dead worker");
    assert!(staging(&s).is_empty(), "staging removed: {:?}", staging(&s));
    // Control: the same write without the escape is copied back (by a new worker).
    let v = run(&serve, "escaper", &[]);
    assert_eq!(out(&v), (0, ""), "{v}");
    assert_eq!(cursor(&s), "99");
    assert!(staging(&s).is_empty(), "staging removed: {:?}", staging(&s));
    assert_eq!(serve.stop(), 0);
}

#[test]
fn concurrent_runs_with_runs_per_worker_each_get_a_staging_of_their_own() {
    let (s, m) = rw_scene("");
    let refs: Vec<&Path> = m.iter().map(PathBuf::as_path).collect();
    let serve = std::sync::Arc::new(serve(&s, &refs, &["--runs-per-worker", "4"]));
    // Each run writes its own copy; none sees another's (each read is its own staging's).
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let serve = serve.clone();
            std::thread::spawn(move || {
                let name = if i % 2 == 0 {
                    "fs-module"
                } else {
                    "fs-component"
                };
                let mark = format!("run{i}");
                let step = format!("write /state/other {mark}");
                let v = run(&serve, name, &["seq", &step, "read /state/other"]);
                (mark, v)
            })
        })
        .collect();
    for t in threads {
        let (mark, v) = t.join().unwrap();
        assert_eq!(v["code"], 0, "{v}");
        assert!(
            v["stdout"].as_str().unwrap().ends_with(&mark),
            "{mark}: {v}"
        );
    }
    assert!(
        !s.path("state/other").exists(),
        "scratch never reaches the host"
    );
    // Control: the granted file itself is copied back from such a worker.
    let v = run(&serve, "fs-module", &["write", "/state/cursor", "42"]);
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(cursor(&s), "42");
    assert!(staging(&s).is_empty(), "staging removed: {:?}", staging(&s));
    let serve = std::sync::Arc::into_inner(serve).unwrap();
    assert_eq!(serve.stop(), 0);
}
