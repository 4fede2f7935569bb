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
