//! `warden serve`'s per-identity CPU groups on cgroup v2, in a private mount namespace whose
//! /sys/fs/cgroup is a cgroup2 mount the test makes itself (so that the v1 hierarchies the
//! host may have are out of sight). Where the kernel binds `cpu` to a v1 hierarchy (this
//! machine's kind), v2 offers no `cpu` controller: then the test checks that warden looks at
//! v2 first and says why it cannot use it, and says loudly that the weights on v2 are not
//! checked here.

use crate::guests;
use crate::serve::{Serve, manifest};
use crate::util::Scene;
use std::process::Command;

/// A program that runs its arguments with a cgroup2 mount at /sys/fs/cgroup, in a mount
/// namespace of their own (nothing the host sees is changed).
const PRIVATE_V2: [&str; 9] = [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    "mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"",
    "sh",
];

/// What `script` prints in the private namespace, or `None` when the namespace cannot be
/// made here (not root, no `unshare`).
fn in_private_v2(script: &str) -> Option<String> {
    let out = Command::new(PRIVATE_V2[0])
        .args(&PRIVATE_V2[1..])
        .args(["sh", "-c", script])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_cgroup_v2_the_server_looks_there_first_and_says_why_it_cannot_use_it() {
    let Some(controllers) = in_private_v2("cat /sys/fs/cgroup/cgroup.controllers") else {
        // CI runs as root with util-linux: there, this must run.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI cannot mount a cgroup2 hierarchy in a private mount namespace: the cgroup v2 \
             path of `warden serve` is untested"
        );
        eprintln!("SKIPPED (loudly): no private mount namespace with a cgroup2 mount here");
        return;
    };
    let s = Scene::new();
    let good = manifest(&s, "good", guests::HELLO_P1, "");
    if controllers.split_whitespace().any(|c| c == "cpu") {
        // A v2 host: the server runs in v2 groups, weighted alike, gone at stop.
        let serve = Serve::start_wrapped(&s, &[&good], &["--cpu-groups", "require"], &PRIVATE_V2);
        let r = serve.run("good", &["good"], b"").json();
        assert_eq!(r["stdout"], "hello, good\n");
        let stderr = serve.stderr.clone();
        assert_eq!(serve.stop(), 0);
        let said = std::fs::read_to_string(stderr).unwrap();
        assert!(said.contains("(cgroup v2 group "), "{said}");
        return;
    }
    eprintln!(
        "NOTE (loudly): cgroup v2 here offers no `cpu` controller ({}): the groups' \
         cpu.weight on v2 is not checked on this machine, only that warden looks at v2 first \
         and says why it cannot use it",
        controllers.trim()
    );
    let out = Command::new(PRIVATE_V2[0])
        .args(&PRIVATE_V2[1..])
        .arg(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(&good)
        .args(["--cpu-groups", "require"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{said}");
    assert!(
        said.contains("cgroup v2 at /sys/fs/cgroup offers no `cpu` controller"),
        "{said}"
    );
    // Control: on the host's own hierarchies (v1 `cpu` on this kind of machine) the same
    // flags serve, in v1 groups.
    let serve = Serve::start(&s, &[&good], &["--cpu-groups", "require"]);
    let r = serve.run("good", &["good"], b"").json();
    assert_eq!(r["stdout"], "hello, good\n");
    let stderr = serve.stderr.clone();
    assert_eq!(serve.stop(), 0);
    let said = std::fs::read_to_string(stderr).unwrap();
    assert!(said.contains("(cgroup v1 group "), "{said}");
}
