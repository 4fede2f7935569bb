//! Running workloads, and bad input: each gets one error line and exit code 125 (2 for a
//! command line that does not parse).

use crate::guests;
use crate::util::{Scene, both, finish, warden};

#[test]
fn hello_runs_as_module_and_component() {
    let s = Scene::new();
    for (kind, hello) in both(guests::HELLO_P1, guests::HELLO_P2) {
        let r = s.run(None, hello, &[]);
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "hello, world\n", "{kind}");
        assert_eq!(r.exit()["outcome"], "exited");
        assert_eq!(r.events("start")[0]["kind"], kind);
        let r = s.run(None, hello, &["nhi"]);
        assert_eq!(r.stdout, "hello, nhi\n", "{kind}");
    }
}

#[test]
fn manifest_args_come_first_and_cli_args_are_appended() {
    let s = Scene::new();
    let m = s.manifest(&format!(
        "[workload]\nmodule = {:?}\nargs = [\"args\", \"from-manifest\"]\n",
        guests::PROBE_P1
    ));
    let mut cmd = warden();
    cmd.arg("run")
        .arg("--manifest")
        .arg(&m)
        .args(["--", "from-cli"]);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "probe.wasm\nargs\nfrom-manifest\nfrom-cli\n");
}

#[test]
fn guest_exit_codes_pass_through_and_large_ones_are_capped() {
    let s = Scene::new();
    let r = s.run(None, guests::PROBE_P1, &["exit", "7"]);
    assert_eq!(r.code, 7, "{r:#?}");
    assert_eq!(r.exit()["guest_code"], 7);
    // WASI 0.2's `exit` carries only ok or error, so a component's non-zero exit is 1.
    let r = s.run(None, guests::PROBE_P2, &["exit", "7"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let r = s.run(None, guests::PROBE_P1, &["exit", "200"]);
    assert_eq!(r.code, 119, "{r:#?}");
    assert_eq!(r.exit()["guest_code"], 200);
    assert_eq!(r.exit()["code"], 119);
}

#[test]
fn missing_module_is_a_start_error() {
    let s = Scene::new();
    let r = s.run(None, s.path("nope.wasm").to_str().unwrap(), &[]);
    r.assert_one_line_error("nope.wasm: cannot read module");
}

#[test]
fn no_module_at_all_is_a_start_error() {
    let s = Scene::new();
    let m = s.manifest("");
    let mut cmd = warden();
    cmd.arg("run").arg("--manifest").arg(&m);
    finish(cmd, None).assert_one_line_error("no module to run");
}

#[test]
fn missing_manifest_is_a_start_error() {
    let s = Scene::new();
    let r = s.run(Some(&s.path("absent.warden.toml")), guests::HELLO_P1, &[]);
    r.assert_one_line_error("absent.warden.toml: cannot read manifest");
}

#[test]
fn malformed_manifest_names_file_line_and_column() {
    let s = Scene::new();
    let m = s.file(
        "bad.warden.toml",
        "[identity]\nname = \"ok\"\n\n[limits]\nmemory = \"lots\"\n",
    );
    let r = s.run(Some(&m), guests::HELLO_P1, &[]);
    r.assert_one_line_error("bad.warden.toml:5:10:");
    assert!(r.stderr.contains("memory"), "{r:#?}");
    let m = s.file("broken.warden.toml", "[identity\nname = 1\n");
    let r = s.run(Some(&m), guests::HELLO_P1, &[]);
    r.assert_one_line_error("broken.warden.toml:1:");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    let s = Scene::new();
    let text = s.file("notes.wasm", "this is not wasm");
    s.run(None, text.to_str().unwrap(), &[])
        .assert_one_line_error("not a WebAssembly module or component");
    let empty = s.file("empty.wasm", "");
    s.run(None, empty.to_str().unwrap(), &[])
        .assert_one_line_error("empty file");
    let truncated = s.path("truncated.wasm");
    let mut bytes = std::fs::read(guests::HELLO_P1).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&truncated, bytes).unwrap();
    s.run(None, truncated.to_str().unwrap(), &[])
        .assert_one_line_error("does not compile");
}

/// `(module (import "env" "steal_credentials" (func)) (func (export "_start")))`
const IMPORTS_ENV: &[u8] = &[
    0, b'a', b's', b'm', 1, 0, 0, 0, // header
    1, 4, 1, 0x60, 0, 0, // type 0: () -> ()
    2, 0x19, 1, 3, b'e', b'n', b'v', 17, b's', b't', b'e', b'a', b'l', b'_', b'c', b'r', b'e',
    b'd', b'e', b'n', b't', b'i', b'a', b'l', b's', 0, 0, // import env::steal_credentials
    3, 2, 1, 0, // one function of type 0
    7, 10, 1, 6, b'_', b's', b't', b'a', b'r', b't', 0, 1, // export _start = func 1
    10, 4, 1, 2, 0, 0x0b, // body
];

#[test]
fn an_import_no_grant_provides_is_named_and_audited() {
    let s = Scene::new();
    let path = s.path("importer.wasm");
    std::fs::write(&path, IMPORTS_ENV).unwrap();
    let r = s.run(None, path.to_str().unwrap(), &[]);
    r.assert_one_line_error("imports `env::steal_credentials`, which no grant provides");
    let denied = r.denials("import");
    assert_eq!(denied.len(), 1, "{r:#?}");
    assert_eq!(denied[0]["target"], "env::steal_credentials");
}

#[test]
fn a_component_without_a_command_entry_needs_invoke() {
    let s = Scene::new();
    s.run(None, guests::COMPONENT_EXPORT_P2, &[])
        .assert_one_line_error("does not export `wasi:cli/run`");
}

#[test]
fn sha256_pin_is_checked_before_anything_runs() {
    let s = Scene::new();
    let bytes = std::fs::read(guests::HELLO_P1).unwrap();
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let good = s.manifest(&format!("[workload]\nsha256 = \"{digest}\"\n"));
    let r = s.run(Some(&good), guests::HELLO_P1, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.events("start")[0]["sha256"], digest.as_str());

    let wrong = "0".repeat(64);
    let bad = s.manifest(&format!("[workload]\nsha256 = \"{wrong}\"\n"));
    let r = s.run(Some(&bad), guests::HELLO_P1, &[]);
    r.assert_one_line_error("sha256 pin mismatch");
    assert!(r.events("start").is_empty(), "nothing may start: {r:#?}");
    assert!(r.stdout.is_empty());
}

#[test]
fn bad_command_lines_exit_2_and_help_exits_0() {
    // A usage error is 2 (as with clap and most tools), apart from 125 (could not start).
    let mut cmd = warden();
    cmd.args(["run", "--no-such-flag"]);
    let r = finish(cmd, None);
    assert_eq!(r.code, 2, "{r:#?}");
    assert!(r.stderr.contains("--no-such-flag"), "{r:#?}");
    assert!(!r.stderr.contains("panicked"), "{r:#?}");
    let mut cmd = warden();
    cmd.args(["no-such-command"]);
    assert_eq!(finish(cmd, None).code, 2);
    let mut cmd = warden();
    cmd.args(["run", "--help"]);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--manifest"));
    let mut cmd = warden();
    cmd.arg("--version");
    let r = finish(cmd, None);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("warden "));
}

#[test]
fn network_grants_for_a_core_module_are_refused_not_ignored() {
    let s = Scene::new();
    let m = s.manifest("[network]\nconnect = [\"127.0.0.1:9\"]\n");
    s.run(Some(&m), guests::HELLO_P1, &[])
        .assert_one_line_error("[network] grants need a component");
    for entry in ["listen = [\"127.0.0.1:0\"]", "udp = [\"127.0.0.1:53\"]"] {
        let m = s.manifest(&format!("[network]\n{entry}\n"));
        s.run(Some(&m), guests::HELLO_P1, &[])
            .assert_one_line_error("[network] grants need a component");
    }
    let m = s.manifest("[[http]]\nurl = \"http://127.0.0.1:9/\"\n");
    s.run(Some(&m), guests::HELLO_P1, &[])
        .assert_one_line_error("[[http]] grants need a component");
    // The same grant runs for a component (which need not use it).
    let m = s.manifest("[network]\nconnect = [\"127.0.0.1:9\"]\n");
    let r = s.run(Some(&m), guests::HELLO_P2, &[]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_component_importing_an_unknown_interface_is_refused_by_name() {
    let s = Scene::new();
    let path = s.path("unknown-world.wasm");
    let bytes = wat::parse_str(
        r#"(component
             (import "acme:exfil/upload@1.0.0" (instance (export "send" (func (param "data" string)))))
           )"#,
    )
    .unwrap();
    std::fs::write(&path, bytes).unwrap();
    let r = s.run(None, path.to_str().unwrap(), &[]);
    r.assert_one_line_error("acme:exfil/upload@1.0.0");
    assert_eq!(r.denials("import")[0]["target"], "acme:exfil/upload@1.0.0");
}
