//! Quick flags on `warden run` (`--dir`, `--env`, `--stdin`, `--clocks`, `--random`,
//! `--allow-http`, `--allow-connect`, `--limit`): each grants exactly its one thing, is
//! audited like the manifest grant it stands for, and adds to a manifest; `--print-manifest`
//! shows the manifest they amount to. Every grant has its control: the same run without the
//! flag is refused.

use crate::guests;
use crate::server::Server;
use crate::util::{Outcome, Scene, finish, warden};
use std::path::Path;

/// `warden run --audit FILE FLAGS... MODULE -- ARGS` in the scene's folder, with `env` added
/// to warden's environment.
fn run_env(
    s: &Scene,
    flags: &[&str],
    module: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Outcome {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let audit = s.path(&format!(
        "quick-{}.jsonl",
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut cmd = warden();
    cmd.current_dir(s.dir.path())
        .arg("run")
        .arg("--audit")
        .arg(&audit)
        .args(flags)
        .arg(module);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    cmd.envs(env.iter().copied());
    finish(cmd, Some(&audit))
}

fn run(s: &Scene, flags: &[&str], module: &str, args: &[&str]) -> Outcome {
    run_env(s, flags, module, args, &[])
}

/// Fails unless this is a usage error (exit 2) whose message holds `fragment`, and no panic.
fn assert_usage_error(r: &Outcome, fragment: &str) {
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("error"), "{r:#?}");
    assert!(r.stderr.contains(fragment), "{fragment:?} not in {r:#?}");
    assert!(!r.stderr.contains("panicked"), "{r:#?}");
    assert!(r.audit.is_empty(), "nothing may start: {r:#?}");
}

#[test]
fn dir_grants_its_folder_and_ro_refuses_writes() {
    let s = Scene::new();
    s.file("data/note.txt", "from the host\n");
    let read = ["read", "/data/note.txt"];
    for (kind, fs) in [("module", guests::FS_P1), ("component", guests::FS_P2)] {
        // Control: without the flag the guest sees no filesystem.
        let r = run(&s, &[], fs, &read);
        assert_ne!(r.code, 0, "{kind}: {r:#?}");
        assert!(!r.stdout.contains("from the host"), "{kind}: {r:#?}");

        let r = run(&s, &["--dir", "data::/data:ro"], fs, &read);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "from the host\n", "{kind}");
        let files = &r.events("start")[0]["grants"]["files"];
        assert_eq!(files.as_array().unwrap().len(), 1, "{kind}: {r:#?}");
        assert_eq!(files[0]["guest"], "/data");
        assert_eq!(files[0]["access"], "read");
        assert_eq!(
            Path::new(files[0]["host"].as_str().unwrap()),
            s.path("data"),
            "{kind}: a relative HOST is relative to the current folder"
        );

        // `:ro` refuses writes; without it the same write goes through.
        let write = ["write", "/data/new.txt", "x"];
        let r = run(&s, &["--dir", "data::/data:ro"], fs, &write);
        assert_ne!(r.code, 0, "{kind}: {r:#?}");
        assert!(!s.path("data/new.txt").exists(), "{kind}");
        let r = run(&s, &["--dir", "data::/data"], fs, &write);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(
            std::fs::read_to_string(s.path("data/new.txt")).unwrap(),
            "x"
        );
        assert_eq!(
            r.events("start")[0]["grants"]["files"][0]["access"],
            "read-write"
        );
        std::fs::remove_file(s.path("data/new.txt")).unwrap();
    }
}

#[test]
fn env_copies_only_the_named_variable() {
    let s = Scene::new();
    let with_host_env = |flags: &[&str]| {
        let env = [("QUICK_WANTED", "yes"), ("QUICK_OTHER", "secret-ish")];
        run_env(&s, flags, guests::ENV_P1, &[], &env)
    };
    // Control: no flag, no variables.
    let r = with_host_env(&[]);
    assert_eq!(r.stdout, "count=0\n", "{r:#?}");
    let r = with_host_env(&["--env", "QUICK_WANTED", "--env", "LITERAL=given"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "LITERAL=given\nQUICK_WANTED=yes\ncount=2\n");
    let env = &r.events("start")[0]["grants"]["env"];
    assert_eq!(env.as_array().unwrap().len(), 2, "{r:#?}");
    assert!(!r.stdout.contains("secret-ish"));
    // An unset variable is refused before anything runs, as a manifest's would be.
    let r = with_host_env(&["--env", "QUICK_SURELY_UNSET"]);
    assert_usage_error(&r, "QUICK_SURELY_UNSET");
}

#[test]
fn stdin_clocks_and_random_flags_each_grant_their_one_thing() {
    let s = Scene::new();
    let mut granted = Vec::new();
    for flag in ["--stdin", "--clocks", "--random"] {
        let r = run(&s, &[flag], guests::HELLO_P1, &[]);
        assert_eq!(r.code, 0, "{flag}: {r:#?}");
        let g = r.events("start")[0]["grants"].clone();
        granted.push((
            g["stdio"]["stdin"] == "inherit",
            g["clocks"]["wall"] == true && g["clocks"]["monotonic"] == true,
            g["random"]["secure"] == true,
        ));
    }
    assert_eq!(
        granted,
        [
            (true, false, false),
            (false, true, false),
            (false, false, true)
        ]
    );
    // Control: with no flag, none of them.
    let r = run(&s, &[], guests::HELLO_P1, &[]);
    let g = &r.events("start")[0]["grants"];
    assert_eq!(g["stdio"]["stdin"], "null");
    assert_eq!(g["clocks"]["wall"], false);
    assert_eq!(g["random"]["secure"], false);
    // And the grant works: the seeded generator gives the same bytes twice, the CSPRNG not.
    let bytes = |flags: &[&str]| run(&s, flags, guests::PROBE_P1, &["random"]).stdout;
    assert_eq!(bytes(&[]), bytes(&[]));
    assert_ne!(bytes(&["--random"]), bytes(&["--random"]));
}

#[test]
fn allow_http_lets_one_url_through_and_no_other() {
    let server = Server::start();
    let s = Scene::new();
    let allowed = server.url("/v1/items");
    let other = server.url("/admin");
    let steps = [
        format!("http GET {allowed}"),
        format!("http GET {other}"),
        format!("http POST {allowed}"),
    ];
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let rule = server.url("/v1/");
    let r = run(&s, &["--allow-http", &rule], guests::NET_PROBE_P2, &steps);
    assert_eq!(r.code, 0, "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("http: 200"), "{r:#?}");
    assert!(lines[1].starts_with("http: error"), "another path: {r:#?}");
    assert!(
        lines[2].starts_with("http: error"),
        "POST is not GET: {r:#?}"
    );
    assert_eq!(server.requests().len(), 1, "only the allowed request left");
    assert_eq!(r.denials("http").len(), 2, "{r:#?}");
    let http = &r.events("start")[0]["grants"]["http"];
    assert_eq!(http[0]["url"], rule.as_str());
    assert_eq!(http[0]["methods"], serde_json::json!(["GET"]));

    // `:METHODS` adds POST to the same rule.
    let with_post = format!("{rule}:GET,POST");
    let r = run(
        &s,
        &["--allow-http", &with_post],
        guests::NET_PROBE_P2,
        &steps,
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[2].starts_with("http: 200"), "{r:#?}");
    // Control: no flag, nothing leaves.
    let before = server.requests().len();
    let r = run(&s, &[], guests::NET_PROBE_P2, &steps);
    assert!(
        r.stdout.lines().all(|l| l.starts_with("http: error")),
        "{r:#?}"
    );
    assert_eq!(server.requests().len(), before);
}

#[test]
fn allow_connect_lets_one_address_through() {
    let server = Server::start();
    let s = Scene::new();
    let step = format!("tcp {}", server.addr());
    let r = run(&s, &[], guests::NET_PROBE_P2, &[&step]);
    assert!(r.stdout.starts_with("tcp: error"), "control: {r:#?}");
    let r = run(
        &s,
        &["--allow-connect", &server.addr()],
        guests::NET_PROBE_P2,
        &[&step],
    );
    assert_eq!(r.stdout, "tcp: connected\n", "{r:#?}");
    assert_eq!(
        r.events("start")[0]["grants"]["network"],
        serde_json::json!([server.addr()])
    );
}

#[test]
fn limit_memory_trips_the_memory_limit() {
    let s = Scene::new();
    let r = run(&s, &["--limit", "memory=48MiB"], guests::MEMBOMB_P1, &[]);
    assert_eq!(r.code, 121, "{r:#?}");
    assert!(!r.stdout.contains("allocated 64 MiB"), "{r:#?}");
    assert_eq!(
        r.events("start")[0]["grants"]["limits"]["memory"],
        48 * 1024 * 1024
    );
    // Control: the default limit lets it grow further first.
    let r = run(&s, &[], guests::MEMBOMB_P1, &[]);
    assert_eq!(r.code, 121, "{r:#?}");
    assert!(r.stdout.contains("allocated 64 MiB"), "{r:#?}");
}

#[test]
fn flags_add_to_a_manifest_and_a_contradiction_is_an_error() {
    let s = Scene::new();
    s.file("data/note.txt", "note\n");
    let m = s.manifest("[env]\nFROM_FILE = \"file\"\n[limits]\nwall = \"20s\"\n");
    let m = m.to_str().unwrap();
    let r = run(
        &s,
        &[
            "--manifest",
            m,
            "--env",
            "FROM_FLAG=flag",
            "--dir",
            "data::/data:ro",
        ],
        guests::ENV_P1,
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "FROM_FILE=file\nFROM_FLAG=flag\ncount=2\n");
    let start = &r.events("start")[0];
    assert_eq!(start["identity"], "spiffe://test.example/nhi", "{r:#?}");
    assert_eq!(start["grants"]["files"][0]["guest"], "/data");
    // The same value again is no contradiction; another value is.
    let r = run(
        &s,
        &["--manifest", m, "--limit", "wall=20s"],
        guests::HELLO_P1,
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    let r = run(
        &s,
        &["--manifest", m, "--limit", "wall=5s"],
        guests::HELLO_P1,
        &[],
    );
    assert_usage_error(&r, "already sets wall");
    let r = run(
        &s,
        &["--manifest", m, "--env", "FROM_FILE=other"],
        guests::HELLO_P1,
        &[],
    );
    assert_usage_error(&r, "already sets FROM_FILE");
    // Two grants of one guest path: the manifest parser's own check.
    let r = run(
        &s,
        &["--dir", "data::/data", "--dir", "data::/data:ro"],
        guests::HELLO_P1,
        &[],
    );
    assert_usage_error(&r, "/data");
}

#[test]
fn without_a_manifest_the_identity_is_anonymous() {
    let s = Scene::new();
    let r = run(&s, &["--clocks"], guests::HELLO_P1, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.events("start")[0]["identity"], "warden://local/anonymous");
    assert_eq!(r.events("start")[0]["name"], "anonymous");
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let s = Scene::new();
    for (flags, fragment) in [
        (&["--dir", "/tmp"][..], "HOST::GUEST"),
        (&["--dir", "absent::/x"], "does not exist"),
        (&["--dir", "."], "HOST::GUEST"),
        (&["--dir", ".::relative"], "guest"),
        (&["--env", "=x"], "NAME"),
        (&["--limit", "memory"], "KEY=VALUE"),
        (&["--limit", "memory=lots"], "limits.memory"),
        (&["--limit", "colour=red"], "colour"),
        (&["--allow-http", "ftp://example.com/"], "http"),
        (&["--allow-connect", "example.com"], "example.com"),
    ] {
        let r = run(&s, flags, guests::HELLO_P1, &[]);
        assert_usage_error(&r, fragment);
    }
    // Control: a good value of each runs.
    let r = run(
        &s,
        &["--dir", ".::/here:ro", "--limit", "memory=64MiB"],
        guests::HELLO_P1,
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
}

#[test]
fn print_manifest_parses_back_and_runs_the_same() {
    let server = Server::start();
    let s = Scene::new();
    s.file("data/note.txt", "printed\n");
    let rule = server.url("/v1/");
    let flags = [
        "--dir",
        "data::/data:ro",
        "--env",
        "GREETING=hi",
        "--clocks",
        "--random",
        "--stdin",
        "--allow-http",
        &rule,
        "--allow-connect",
        "127.0.0.1:9",
        "--limit",
        "memory=64MiB",
        "--limit",
        "wall=10s",
    ];
    let mut cmd = warden();
    cmd.current_dir(s.dir.path())
        .arg("run")
        .args(flags)
        .arg("--print-manifest")
        .arg(guests::FS_P2)
        .args(["--", "read", "/data/note.txt"]);
    let printed = finish(cmd, None);
    assert_eq!(printed.code, 0, "{printed:#?}");
    assert!(
        printed
            .stdout
            .starts_with("[identity]\nname = \"anonymous\"\n")
    );
    assert!(printed.audit.is_empty());
    let saved = s.file("saved.warden.toml", &printed.stdout);

    let mut cmd = warden();
    cmd.arg("check").arg(&saved);
    let checked = finish(cmd, None);
    assert_eq!(checked.code, 0, "{checked:#?}");

    // The saved file alone runs as the flags did, with the same grants.
    let by_flags = run(&s, &flags, guests::FS_P2, &["read", "/data/note.txt"]);
    // (the saved manifest holds the arguments: none are repeated here)
    let by_file = s.run(Some(&saved), guests::FS_P2, &[]);
    assert_eq!(by_flags.code, 0, "{by_flags:#?}");
    assert_eq!(by_file.code, 0, "{by_file:#?}");
    assert_eq!(by_flags.stdout, "printed\n");
    assert_eq!(by_file.stdout, by_flags.stdout);
    assert_eq!(
        by_file.events("start")[0]["grants"],
        by_flags.events("start")[0]["grants"]
    );
    assert_eq!(
        by_file.events("start")[0]["seccomp"]["syscalls"],
        by_flags.events("start")[0]["seccomp"]["syscalls"],
        "the same host allow list"
    );
    // With the module and arguments inside, no command-line module is needed.
    let mut cmd = warden();
    cmd.arg("run").arg("--manifest").arg(&saved);
    let r = finish(cmd, None);
    assert_eq!(r.stdout, "printed\n", "{r:#?}");
}
