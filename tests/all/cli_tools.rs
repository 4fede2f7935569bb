//! The command line around running: usage errors (exit 2) apart from start failures (125),
//! a closed stdout never a panic, exit codes in every `--help`, shell completions and man
//! pages, `seccomp show --json`, and `check`'s warning for a secret source that is not here.

use crate::guests;
use crate::util::{Outcome, Scene, finish, warden};
use serde_json::Value;
use std::process::Stdio;

/// `warden ARGS` with its stdout a pipe whose reader is gone before warden writes, as in
/// `warden ARGS | head -1` when head has already left.
fn with_stdout_closed(args: &[&str]) -> Outcome {
    let mut cmd = warden();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&out.status),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        audit: Vec::new(),
    }
}

fn run(args: &[&str]) -> Outcome {
    let mut cmd = warden();
    cmd.args(args);
    finish(cmd, None)
}

#[test]
fn every_command_writes_to_a_closed_pipe_without_a_panic() {
    let s = Scene::new();
    let m = s.manifest(&format!("[workload]\nmodule = {:?}\n", guests::HELLO_P1));
    let m = m.to_str().unwrap();
    for args in [
        &["check", m][..],
        &["check", m, "--json"],
        &["seccomp", "show", m],
        &["seccomp", "show", m, "--json"],
        &["--help"],
        &["completions", "bash"],
        &["man"],
        &["run", "--print-manifest", "--clocks"],
        &[
            "bench",
            guests::HELLO_P1,
            "--native",
            "true",
            "-n",
            "1",
            "--warmup",
            "0",
            "--json",
        ],
        &[
            "bench",
            "--native",
            "true",
            "-n",
            "1",
            "--warmup",
            "0",
            "--manifest",
            m,
        ],
    ] {
        let r = with_stdout_closed(args);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {r:#?}");
        assert_eq!(r.signal, None, "{args:?}: {r:#?}");
        assert_eq!(r.code, 0, "{args:?}: {r:#?}");
        // Control: with a reader, each prints something.
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {r:#?}");
        assert!(!r.stdout.is_empty(), "{args:?}: {r:#?}");
    }
}

#[test]
fn usage_errors_exit_2_and_start_failures_125() {
    let s = Scene::new();
    for args in [
        &["run", "--seccomp", "sometimes"][..],
        &["check"],
        &["seccomp", "show"],
        &["bench", "-n", "0", "--native", "true"],
        &["completions", "tcsh"],
        &["man", "no-such-command"],
        &["frobnicate"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert!(r.stderr.contains("error"), "{args:?}: {r:#?}");
        assert!(!r.stderr.contains("panicked"), "{args:?}: {r:#?}");
    }
    // Control: a well-formed command that cannot start is 125.
    let absent = s.path("absent.warden.toml");
    let r = run(&["check", absent.to_str().unwrap()]);
    r.assert_one_line_error("cannot read manifest");
}

#[test]
fn every_help_lists_its_exit_codes() {
    for command in [
        &["run"][..],
        &["check"],
        &["learn"],
        &["seccomp"],
        &["seccomp", "show"],
        &["seccomp", "export"],
        &["bench"],
        &["completions"],
        &["man"],
    ] {
        let r = run(&[command, &["--help"]].concat());
        assert_eq!(r.code, 0, "{command:?}: {r:#?}");
        assert!(r.stdout.contains("Exit codes"), "{command:?}: {}", r.stdout);
        assert!(r.stdout.contains('2'), "{command:?}: {}", r.stdout);
    }
    let r = run(&["--help"]);
    assert!(r.stdout.contains("2 for a usage error"), "{}", r.stdout);
    assert!(r.stdout.contains("125"), "{}", r.stdout);
}

#[test]
fn completions_name_every_command_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {r:#?}");
        for command in [
            "run",
            "check",
            "learn",
            "seccomp",
            "bench",
            "completions",
            "man",
        ] {
            assert!(r.stdout.contains(command), "{shell}: no {command}");
        }
        // (fish writes long flags as `-l NAME`)
        for flag in ["manifest", "allow-http", "print-manifest"] {
            assert!(r.stdout.contains(flag), "{shell}: no {flag}");
        }
    }
}

#[test]
fn man_pages_are_roff_for_warden_and_each_command() {
    let r = run(&["man"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains(".TH warden 1"), "{}", r.stdout);
    assert!(r.stdout.contains("seccomp"));
    let r = run(&["man", "run"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains(".TH warden-run 1"), "{}", r.stdout);
    assert!(r.stdout.contains("allow\\-http"), "{}", r.stdout);
}

#[test]
fn seccomp_show_json_has_the_documented_keys_and_matches_the_text() {
    let s = Scene::new();
    s.mkdir("data");
    let m = s.manifest("[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n");
    let m = m.to_str().unwrap();
    let r = run(&["seccomp", "show", m, "--json"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    for key in [
        "identity", "name", "manifest", "groups", "count", "syscalls",
    ] {
        assert!(v.get(key).is_some(), "no {key}: {v:#}");
    }
    assert_eq!(v["identity"], "spiffe://test.example/nhi");
    let syscalls = v["syscalls"].as_array().unwrap();
    assert_eq!(syscalls.len() as u64, v["count"].as_u64().unwrap());
    for row in syscalls {
        for key in ["name", "groups", "action", "reason"] {
            assert!(row.get(key).is_some(), "no {key}: {row:#}");
        }
    }
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .contains(&"file-read".into())
    );
    // The same syscalls as the text, in the same order.
    let text = run(&["seccomp", "show", m]);
    let names: Vec<&str> = text
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .take(syscalls.len())
        .collect();
    let json_names: Vec<&str> = syscalls
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, json_names);
}

#[test]
fn check_warns_about_a_secret_source_that_is_not_here() {
    let s = Scene::new();
    let m = s.manifest(
        "[secrets.api]\nfrom = \"env:CLI_TOOLS_TEST_KEY\"\n\
         inject = { header = \"Authorization\", format = \"Bearer {secret}\", url = \"https://api.example.com/\" }\n",
    );
    let mut cmd = warden();
    cmd.arg("check").arg(&m).arg("--json");
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "a warning, not a failure: {r:#?}");
    assert!(
        r.stderr.starts_with("warden: warning: secret `api`"),
        "{r:#?}"
    );
    assert!(r.stderr.contains("CLI_TOOLS_TEST_KEY"), "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v:#}");
    // Control: with the source set, no warning.
    let mut cmd = warden();
    cmd.arg("check")
        .arg(&m)
        .env("CLI_TOOLS_TEST_KEY", "a-long-enough-value");
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stderr, "", "{r:#?}");
    // And the run itself still refuses to start without it.
    let r = s.run(Some(&m), guests::HELLO_P2, &[]);
    assert_eq!(r.code, 125, "{r:#?}");
}

#[test]
fn check_warns_about_an_unset_from_host_variable() {
    let s = Scene::new();
    let m = s.manifest("[env]\nTOKEN = { from-host = \"CLI_TOOLS_TEST_UNSET_VAR\" }\n");
    let mut cmd = warden();
    cmd.arg("check")
        .arg(&m)
        .arg("--json")
        .env_remove("CLI_TOOLS_TEST_UNSET_VAR");
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "a warning, not a failure: {r:#?}");
    assert!(
        r.stderr
            .starts_with("warden: warning: from-host variable `CLI_TOOLS_TEST_UNSET_VAR`"),
        "{r:#?}"
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v:#}");
    // Control: set, no warning.
    let mut cmd = warden();
    cmd.arg("check")
        .arg(&m)
        .env("CLI_TOOLS_TEST_UNSET_VAR", "x");
    let r = finish(cmd, None);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    // And the run itself still refuses to start without it.
    let r = s.run_with(Some(&m), guests::HELLO_P2, &[], |c| {
        c.env_remove("CLI_TOOLS_TEST_UNSET_VAR");
    });
    assert_eq!(r.code, 125, "{r:#?}");
}

#[test]
fn check_prints_paths_normalised() {
    let s = Scene::new();
    s.mkdir("sub");
    std::fs::copy(guests::HELLO_P1, s.path("sub/app.wasm")).unwrap();
    let m = s.file(
        "sub/m.warden.toml",
        "[identity]\nname = \"n\"\n[workload]\nmodule = \"../sub/./app.wasm\"\n",
    );
    let messy = format!("{}/./sub//m.warden.toml", s.dir.path().display());
    let mut cmd = warden();
    cmd.arg("check").arg(&messy).arg("--json");
    let r = finish(cmd, None);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["manifest"], m.to_str().unwrap(), "{v:#}");
    let module = std::fs::canonicalize(s.path("sub/app.wasm")).unwrap();
    assert_eq!(v["module"]["path"], module.to_str().unwrap(), "{v:#}");
}

/// The keys docs/json.md lists for each command, by the command's section title.
fn documented_keys() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/json.md"),
    )
    .unwrap();
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            sections.push((title.trim_matches('`').to_string(), Vec::new()));
        } else if let (Some(rest), Some((_, keys))) =
            (line.strip_prefix("| `"), sections.last_mut())
            && let Some((key, _)) = rest.split_once('`')
        {
            keys.push(key.to_string());
        }
    }
    sections
}

#[test]
fn json_outputs_have_the_documented_keys() {
    let s = Scene::new();
    let m = s.manifest(&format!("[workload]\nmodule = {:?}\n", guests::HELLO_P1));
    let m = m.to_str().unwrap();
    let sections = documented_keys();
    assert_eq!(sections.len(), 3, "{sections:?}");
    for (title, keys) in sections {
        assert!(!keys.is_empty(), "{title}: no keys documented");
        let args: Vec<&str> = match title.as_str() {
            "warden check FILE --json" => vec!["check", m, "--json"],
            "warden seccomp show FILE --json" => vec!["seccomp", "show", m, "--json"],
            "warden bench --json" => vec![
                "bench",
                "--manifest",
                m,
                "--native",
                "true",
                "-n",
                "1",
                "--warmup",
                "0",
                "--json",
            ],
            other => panic!("docs/json.md documents {other:?}, which this test does not run"),
        };
        let r = run(&args);
        assert_eq!(r.code, 0, "{title}: {r:#?}");
        let v: Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{title}: not JSON ({e}): {}", r.stdout));
        for key in &keys {
            assert!(v.get(key).is_some(), "{title}: no `{key}` in {v:#}");
        }
    }
}
