//! The compiled-module cache: compile once, never trust a damaged entry.

use crate::guests;
use crate::util::{Scene, finish, warden};
use std::path::Path;

fn run_with_cache(cache: &Path, audit: &Path) -> crate::util::Outcome {
    run_module_with_cache(guests::HELLO_P1, cache, audit)
}

fn run_module_with_cache(module: &str, cache: &Path, audit: &Path) -> crate::util::Outcome {
    let mut cmd = warden();
    cmd.env("WARDEN_CACHE_DIR", cache)
        .arg("run")
        .arg("--audit")
        .arg(audit)
        .arg(module);
    let _ = std::fs::remove_file(audit);
    finish(cmd, Some(audit))
}

fn cache_status(r: &crate::util::Outcome) -> String {
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "hello, world\n");
    r.events("start")[0]["cache"].as_str().unwrap().to_string()
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[test]
fn the_second_run_does_not_compile() {
    let s = Scene::new();
    let cache = s.path("cache");
    let audit = s.path("audit.jsonl");
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "miss");
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "hit");
    assert_eq!(entries(&cache).len(), 1);
}

#[test]
fn a_corrupt_entry_is_rebuilt_not_trusted() {
    let s = Scene::new();
    let cache = s.path("cache");
    let audit = s.path("audit.jsonl");
    cache_status(&run_with_cache(&cache, &audit));
    let entry = entries(&cache).remove(0);
    let mut bytes = std::fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "rebuilt");
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "hit");

    // Garbage under the entry's name.
    std::fs::write(&entry, b"not even close").unwrap();
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "rebuilt");

    // No checksum beside the entry.
    std::fs::remove_file(entry.with_extension("sum")).unwrap();
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "rebuilt");
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "hit");
}

#[test]
fn an_intact_entry_of_the_wrong_kind_is_refused_by_the_engine() {
    let s = Scene::new();
    let cache = s.path("cache");
    let audit = s.path("audit.jsonl");
    cache_status(&run_with_cache(&cache, &audit));
    let module_entry = entries(&cache).remove(0);
    // hello as a component: a second entry, with its own matching checksum, mapped from the
    // cache like a module's on the second run.
    let component = |status: &str| {
        let r = run_module_with_cache(guests::HELLO_P2, &cache, &audit);
        assert_eq!(cache_status(&r), status);
    };
    component("miss");
    component("hit");
    let component_entry = entries(&cache)
        .into_iter()
        .find(|p| *p != module_entry)
        .unwrap();
    // The component's entry and checksum under the module's name: the checksum matches, the
    // content is not this module's, and wasmtime says so.
    std::fs::copy(&component_entry, &module_entry).unwrap();
    std::fs::copy(
        component_entry.with_extension("sum"),
        module_entry.with_extension("sum"),
    )
    .unwrap();
    let r = run_with_cache(&cache, &audit);
    assert_eq!(cache_status(&r), "rebuilt");
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "hit");
}

#[test]
fn a_cache_folder_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scene::new();
    let cache = s.path("cache");
    let audit = s.path("audit.jsonl");
    cache_status(&run_with_cache(&cache, &audit));
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "rebuilt");
}

/// A cache hit loads without the compile thread, on a shorter path: the manifest's `sha256`
/// pin must still be checked there, before the cached code is used.
#[test]
fn a_cached_module_is_still_checked_against_its_pin() {
    let s = Scene::new();
    let cache = s.path("cache");
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(guests::HELLO_P1).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let in_cache = |manifest: &Path| {
        s.run_with(Some(manifest), guests::HELLO_P1, &[], |cmd| {
            cmd.env("WARDEN_CACHE_DIR", &cache);
        })
    };
    // CONTROL: with the right pin the entry is made, then used.
    let good = s.manifest(&format!("[workload]\nsha256 = \"{digest}\"\n"));
    assert_eq!(cache_status(&in_cache(&good)), "miss");
    assert_eq!(cache_status(&in_cache(&good)), "hit");

    let bad = s.manifest(&format!("[workload]\nsha256 = \"{}\"\n", "0".repeat(64)));
    let r = in_cache(&bad);
    r.assert_one_line_error("sha256 pin mismatch");
    assert!(r.events("start").is_empty(), "nothing may start: {r:#?}");
    assert!(r.stdout.is_empty());
}
