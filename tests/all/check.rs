//! `warden check`: validation and the grants table.

use crate::util::{Scene, finish, warden};

#[test]
fn check_prints_every_grant_and_every_denial() {
    let s = Scene::new();
    s.mkdir("data");
    s.file("app.toml", "x = 1");
    let m = s.manifest(
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read-write\"\n\
         [[files]]\nhost = \"app.toml\"\nguest = \"/etc/app.toml\"\naccess = \"read\"\n\
         [env]\nREGION = \"eu\"\n[clocks]\nwall = true\n[limits]\nmemory = \"32MiB\"\nwall = \"5s\"\n",
    );
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    // A row is found by its first two columns, whatever the column widths.
    let row = |kind_target: &str| {
        r.stdout
            .lines()
            .find(|l| {
                let cols: Vec<&str> = l.split_whitespace().take(2).collect();
                cols.join(" ") == kind_target || (cols.first() == Some(&kind_target))
            })
            .unwrap_or_else(|| panic!("no row {kind_target:?} in\n{}", r.stdout))
            .to_string()
    };
    assert!(
        r.stdout
            .starts_with("identity  test-nhi (spiffe://test.example/nhi)")
    );
    assert!(row("fs /data").contains("read-write"));
    assert!(row("fs /etc/app.toml").contains("read"));
    assert!(row("env REGION").contains("allow"));
    assert!(row("clock wall").contains("allow"));
    assert!(row("clock monotonic").contains("deny"));
    assert!(row("net").contains("deny"));
    assert!(row("limit memory").ends_with("32 MiB"));
    assert!(row("limit wall").ends_with("5s"));
    assert!(row("limit fuel").ends_with("off"));
}

#[test]
fn check_rejects_an_invalid_manifest_with_its_position() {
    let s = Scene::new();
    let m = s.manifest("[[files]]\nhost = \"missing-dir\"\nguest = \"/x\"\naccess = \"read\"\n");
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = finish(cmd, None);
    r.assert_one_line_error("test.warden.toml:6:");
    assert!(r.stderr.contains("missing-dir"), "{r:#?}");
}

#[test]
fn check_lists_network_http_and_secret_grants_and_what_the_module_imports() {
    let s = Scene::new();
    let m = s.manifest(&format!(
        "[workload]\nmodule = \"{}\"\n\n\
         [network]\nconnect = [\"db.internal.example:5432\", \"10.1.0.0/16:443\"]\n\n\
         [[http]]\nurl = \"https://api.example.com/v1/\"\nmethods = [\"GET\", \"POST\"]\n\n\
         [secrets.stripe]\nfrom = \"env:STRIPE_KEY\"\n\
         inject = {{ header = \"Authorization\", format = \"Bearer {{secret}}\", url = \"https://api.example.com/\" }}\n",
        crate::guests::NET_PROBE_P2
    ));
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let line = |prefix: &str| {
        r.stdout
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{}", r.stdout))
            .to_string()
    };
    assert!(line("net db.internal.example:5432 allow").contains("outbound TCP"));
    assert!(line("net 10.1.0.0/16:443 allow").contains("checked"));
    assert!(line("http https://api.example.com/v1/ allow").ends_with("GET,POST"));
    let secret = line("secret stripe allow");
    assert!(
        secret.contains("Authorization") && secret.contains("env:STRIPE_KEY"),
        "{secret}"
    );
    // net-probe imports wasi:http, wasi:sockets and warden:host/secrets: all granted here.
    assert!(line("http granted by [[http]]").contains("wasi:http/outgoing-handler"));
    assert!(line("secret granted by [secrets]").contains("warden:host/secrets"));
    assert!(line("net granted by [network]").contains("wasi:sockets/"));

    // The same module without the grants: each import is flagged, nothing is "unused".
    let m = s.manifest(&format!(
        "[workload]\nmodule = \"{}\"\n\n[[files]]\nhost = \".\"\nguest = \"/x\"\naccess = \"read\"\n",
        crate::guests::HELLO_P1
    ));
    let mut cmd = warden();
    cmd.arg("check").arg(&m);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("grants the module cannot use"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("fs      [[files]]"), "{}", r.stdout);
}
