//! Bad input gets a clear one-line error and a documented exit code: never a hang, a panic or
//! a silent truncation. Every case that could hang runs under a deadline, so a regression
//! fails instead of stalling the suite; every hostile case has a control that runs.

use crate::guests;
use crate::util::{Outcome, Scene, warden};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warden::{EngineSettings, LoadError, Manifest, Outcome as RunOutcome, Policy, RunOptions};

/// Long enough for a debug build on a busy machine, short enough that a hang is noticed.
const DEADLINE: Duration = Duration::from_secs(60);

/// Waits for `child` until `limit`, killing it and failing the test if it is still running;
/// returns what it did and how long it took from `started`.
fn wait_bounded(
    mut child: Child,
    started: Instant,
    limit: Duration,
    audit: Option<&Path>,
) -> (Outcome, Duration) {
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "warden still running after {limit:?} (stderr: {})",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let audit = audit
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcome = Outcome {
        code: status.code().unwrap_or(-1),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        audit,
    };
    (outcome, took)
}

/// Runs `cmd` (stdout and stderr captured) under [`DEADLINE`].
fn run_bounded(mut cmd: Command, audit: Option<&Path>) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    wait_bounded(cmd.spawn().unwrap(), started, DEADLINE, audit).0
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_nul_byte_in_manifest_args_or_env_is_named_not_truncated() {
    let s = Scene::new();
    let module = format!("[workload]\nmodule = {:?}\n", guests::PROBE_P1);
    // TOML's `\u0000` escape puts a NUL byte in the string.
    let m = s.manifest(&format!("{module}args = [\"args\", \"a\\u0000b\"]\n"));
    let r = run_bounded(run_cmd(&m), None);
    r.assert_one_line_error(
        "test.warden.toml:7:17: workload.args[1]: the argument contains a NUL byte",
    );
    let m = s.manifest(&format!("{module}[env]\nAPI_BASE = \"x\\u0000y\"\n"));
    let r = run_bounded(run_cmd(&m), None);
    r.assert_one_line_error("test.warden.toml:8:12: env.API_BASE: the value contains a NUL byte");
    // Controls: the same values without the NUL byte run, whole.
    let m = s.manifest(&format!(
        "{module}args = [\"args\", \"ab\"]\n[env]\nAPI_BASE = \"xy\"\n"
    ));
    let r = run_bounded(run_cmd(&m), None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "probe.wasm\nargs\nab\n");
    // A `from-host` value cannot hold NUL (a process environment cannot); the parser's check
    // of it is a unit test (`nul_bytes_in_args_and_env_values`). Nor can a command-line
    // argument: an embedder's arguments are checked by the next test.
}

fn run_cmd(manifest: &Path) -> Command {
    let mut cmd = warden();
    cmd.arg("run").arg("--manifest").arg(manifest);
    cmd
}

#[test]
fn a_nul_byte_in_an_embedders_args_or_env_is_an_error() {
    let manifest = Manifest::from_str_at(
        "[identity]\nname = \"embedded\"\n[env]\nREGION = \"eu\"\n",
        Path::new("<test>"),
        Path::new("."),
    )
    .unwrap();
    let mut policy = Policy::from_manifest(manifest);
    policy.module = Some(guests::PROBE_P1.into());
    policy.args = vec!["args".into()];
    let warden = warden::Warden::new(EngineSettings::default()).unwrap();
    let workload = warden.load(policy.clone()).unwrap();
    let run = |args: &[&str]| {
        let mut opts = RunOptions::from_policy(workload.policy());
        opts.args = args.iter().map(|a| a.to_string()).collect();
        let (stdout, _) = opts.capture_output();
        workload.run(opts).map(|r| (r.outcome, stdout.text()))
    };
    match run(&["one", "two\0three"]) {
        Err(warden::RunError::Start(e @ LoadError::NulByte(_))) => {
            assert_eq!(
                e.to_string(),
                "argument 3 contains a NUL byte, which a program's arguments and environment \
                 cannot hold"
            );
        }
        other => panic!("expected a NUL byte error, got {other:?}"),
    }
    // Control: the same arguments without the NUL byte reach the guest whole.
    let (outcome, stdout) = run(&["one", "twothree"]).unwrap();
    assert_eq!(outcome, RunOutcome::Exited(0));
    assert_eq!(stdout, "probe.wasm\nargs\none\ntwothree\n");

    // An environment value set by hand, past the manifest's parser.
    policy.env[0].value = "e\0u".into();
    let workload = warden.load(policy).unwrap();
    let opts = RunOptions::from_policy(workload.policy());
    let e = workload.run(opts).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("[env] REGION: the value contains a NUL byte"),
        "{e}"
    );
}

#[test]
fn a_module_that_is_not_a_regular_file_fails_at_once() {
    let s = Scene::new();
    let fifo = s.path("module.fifo");
    mkfifo(&fifo);
    let sock_path = s.path("module.sock");
    let _sock = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let dir = s.mkdir("module-dir");
    for (module, fragment) in [
        (fifo.as_path(), "a FIFO (named pipe), not a regular file"),
        (
            Path::new("/dev/zero"),
            "a character device, not a regular file",
        ),
        (sock_path.as_path(), "cannot read module"),
        (dir.as_path(), "a directory, not a regular file"),
    ] {
        let mut cmd = warden();
        cmd.arg("run").arg(module);
        let r = run_bounded(cmd, None);
        r.assert_one_line_error(fragment);
        assert!(r.stderr.contains("cannot read module"), "{r:#?}");
    }
    // `warden bench` refuses it before starting any run.
    let mut cmd = warden();
    cmd.arg("bench").arg(&fifo).args(["--native", "true"]);
    run_bounded(cmd, None).assert_one_line_error("not a regular file");
    // `warden check` reports that it could not read the module, and still checks the manifest.
    let m = s.manifest(&format!("[workload]\nmodule = {fifo:?}\n"));
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = run_bounded(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("a FIFO (named pipe), not a regular file"),
        "{r:#?}"
    );
    // Control: a regular file (reached through a symbolic link, which is followed) runs.
    let link = s.path("hello-link.wasm");
    std::os::unix::fs::symlink(guests::HELLO_P1, &link).unwrap();
    let mut cmd = warden();
    cmd.arg("run").arg(&link);
    let r = run_bounded(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "hello, world\n");
}

#[test]
fn a_manifest_that_is_not_a_regular_file_fails_at_once() {
    let s = Scene::new();
    let fifo = s.path("manifest.fifo");
    mkfifo(&fifo);
    let dir = s.mkdir("manifest-dir");
    for manifest in [&fifo, &dir] {
        for command in [&["run", "--manifest"][..], &["check"], &["seccomp", "show"]] {
            let mut cmd = warden();
            cmd.args(command).arg(manifest);
            if command[0] == "run" {
                cmd.arg(guests::HELLO_P1);
            }
            let r = run_bounded(cmd, None);
            r.assert_one_line_error("cannot read manifest");
            assert!(
                r.stderr.contains(", not a regular file"),
                "{command:?}: {r:#?}"
            );
        }
    }
    let mut cmd = warden();
    cmd.arg("bench")
        .arg("--manifest")
        .arg(&fifo)
        .arg(guests::HELLO_P1)
        .args(["--native", "true"]);
    run_bounded(cmd, None).assert_one_line_error("cannot read manifest");
    // A manifest that is not UTF-8 text.
    let binary = s.path("binary.warden.toml");
    std::fs::write(&binary, b"[identity]\nname = \"\xff\"\n").unwrap();
    let mut cmd = warden();
    cmd.arg("check").arg(&binary);
    run_bounded(cmd, None).assert_one_line_error("cannot read manifest: not UTF-8 text");
    // Control: a regular manifest runs.
    let m = s.manifest("");
    let mut cmd = run_cmd(&m);
    cmd.arg(guests::HELLO_P1);
    assert_eq!(run_bounded(cmd, None).code, 0);
}

/// Spawns `warden ARGS` with its stdout a pipe whose reader is already gone.
fn with_stdout_closed(args: &[&str]) -> Outcome {
    let mut cmd = warden();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    wait_bounded(child, started, DEADLINE, None).0
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let s = Scene::new();
    let m = s.manifest(&format!(
        "[workload]\nmodule = {:?}\n[stdio]\nstdin = \"inherit\"\n",
        guests::HELLO_P1
    ));
    let m = m.to_str().unwrap();
    for args in [
        &["check", m][..],
        &["seccomp", "show", m],
        &["seccomp", "export", m, "--format", "oci"],
        &["--help"],
        &["run", "--help"],
        &["--version"],
    ] {
        let r = with_stdout_closed(args);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {r:#?}");
        assert_eq!(r.stderr, "", "{args:?}: {r:#?}");
        assert_eq!(
            r.code, 0,
            "{args:?}: exit 0 when the reader is gone: {r:#?}"
        );
    }
    // As in `warden seccomp show FILE | head -1`: one line read, then the reader goes.
    let mut cmd = warden();
    cmd.args(["seccomp", "show", m])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("# host allow list"), "{first:?}");
    let (r, _) = wait_bounded(child, started, DEADLINE, None);
    assert!(!r.stderr.contains("panicked"), "{r:#?}");
    assert_eq!(r.code, 0, "{r:#?}");
    // Control: with a reader, the whole output arrives.
    let mut cmd = warden();
    cmd.args(["seccomp", "show", m]);
    let r = run_bounded(cmd, None);
    assert_eq!(r.code, 0);
    assert!(r.stdout.lines().count() > 20, "{r:#?}");
}

#[test]
fn a_guest_blocked_on_an_open_stdin_ends_at_the_wall_limit() {
    let s = Scene::new();
    let m = s.manifest("[stdio]\nstdin = \"inherit\"\n[limits]\nwall = \"1s\"\n");
    for (kind, probe) in [
        ("module", guests::PROBE_P1),
        ("component", guests::PROBE_P2),
    ] {
        for writer_stays in [true, false] {
            let audit = s.path(&format!("audit-{kind}-{writer_stays}.jsonl"));
            let mut cmd = run_cmd(&m);
            cmd.arg("--audit")
                .arg(&audit)
                .args([probe, "--", "stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let started = Instant::now();
            let mut child = cmd.spawn().unwrap();
            // Held open (and never written) for the hostile case; closed for the control.
            let stdin = child.stdin.take();
            let stdin = if writer_stays {
                stdin
            } else {
                drop(stdin);
                None
            };
            let (r, took) = wait_bounded(child, started, DEADLINE, Some(&audit));
            drop(stdin);
            if !writer_stays {
                assert_eq!(r.code, 0, "{kind} control: {r:#?}");
                assert_eq!(r.stdout, "stdin=0 bytes\n", "{kind}");
                continue;
            }
            assert_eq!(r.code, 124, "{kind}: {r:#?}");
            assert_eq!(r.events("limit")[0]["limit"], "wall", "{kind}: {r:#?}");
            assert_eq!(r.exit()["outcome"], "wall-limit", "{kind}");
            assert_eq!(r.exit()["code"], 124, "{kind}");
            assert!(
                r.stderr.contains("wall-time limit reached"),
                "{kind}: {r:#?}"
            );
            // The wall limit plus the 2 s grace, with room for a slow machine.
            assert!(took >= Duration::from_secs(1), "{kind}: {took:?}");
            assert!(took < Duration::from_secs(20), "{kind}: {took:?}");
        }
    }
}

/// A core module of `functions` functions, each declaring `locals` locals (a few bytes that
/// cost the compiler one variable each) and a chain of arithmetic: valid, and slow to compile
/// however fast the compiler is built (every function is compiled, none runs). Its `_start`
/// returns at once.
fn huge_module(functions: u32, locals: u32, chain: u32) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, Module,
        TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types.ty().function([], []);
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    let mut code = CodeSection::new();
    let mut start = Function::new([]);
    start.instruction(&Instruction::End);
    code.function(&start);
    let mut body = Function::new([(locals, ValType::I32)]);
    for k in 0..chain {
        body.instruction(&Instruction::LocalGet(0));
        body.instruction(&Instruction::I32Const(k as i32));
        body.instruction(&Instruction::I32Mul);
        body.instruction(&Instruction::I32Const(7));
        body.instruction(&Instruction::I32Xor);
        body.instruction(&Instruction::LocalSet(0));
    }
    body.instruction(&Instruction::LocalGet(0));
    body.instruction(&Instruction::End);
    for _ in 0..functions {
        funcs.function(1);
        code.function(&body);
    }
    let mut exports = ExportSection::new();
    exports.export("_start", ExportKind::Func, 0);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&exports)
        .section(&code);
    module.finish()
}

#[test]
fn compiling_a_huge_module_is_bounded_by_the_wall_limit() {
    let s = Scene::new();
    let huge = s.path("huge.wasm");
    std::fs::write(&huge, huge_module(20_000, 49_999, 10)).unwrap();
    let m = s.manifest("[limits]\nwall = \"1s\"\n");
    let audit = s.path("audit.jsonl");
    let mut cmd = run_cmd(&m);
    cmd.args(["--no-cache", "--compile-timeout", "3s", "--audit"])
        .arg(&audit)
        .arg(&huge);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let (r, took) = wait_bounded(cmd.spawn().unwrap(), started, DEADLINE, Some(&audit));
    assert_eq!(r.code, 124, "{r:#?}");
    assert!(r.stderr.contains("while compiling the module"), "{r:#?}");
    assert_eq!(r.events("limit")[0]["limit"], "wall");
    assert_eq!(r.exit()["outcome"], "wall-limit");
    assert!(r.events("start").is_empty(), "nothing started: {r:#?}");
    // Loading gets the --compile-timeout; this module needs minutes in a debug build (about
    // 7 ms a function on these 2 cores with the dev profile's optimised Cranelift).
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Control: a module that compiles in time runs under the same limit, compiled afresh.
    let small = s.path("small.wasm");
    std::fs::write(&small, huge_module(10, 49_999, 10)).unwrap();
    let mut cmd = run_cmd(&m);
    cmd.args(["--no-cache", "--compile-timeout", "60s"])
        .arg(&small);
    let r = run_bounded(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
}

#[test]
fn run_help_lists_every_exit_code() {
    let mut cmd = warden();
    cmd.args(["run", "--help"]);
    let r = run_bounded(cmd, None);
    assert_eq!(r.code, 0);
    for code in [
        "0-119", "120", "121", "122", "123", "124", "125", "126", "159",
    ] {
        assert!(
            r.stdout.lines().any(|l| l.trim_start().starts_with(code)),
            "exit code {code} missing from `warden run --help`:\n{}",
            r.stdout
        );
    }
}
