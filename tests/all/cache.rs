//! The compiled-module cache: compile once, never trust a damaged entry.

use crate::guests;
use crate::util::{Scene, finish, warden};
use std::path::Path;

fn run_with_cache(cache: &Path, audit: &Path) -> crate::util::Outcome {
    let mut cmd = warden();
    cmd.env("WARDEN_CACHE_DIR", cache)
        .arg("run")
        .arg("--audit")
        .arg(audit)
        .arg(guests::HELLO_P1);
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

    // An entry of another module under this module's name: checksum fine, content foreign.
    std::fs::write(&entry, b"warden-cache-v1\nnot even close").unwrap();
    assert_eq!(cache_status(&run_with_cache(&cache, &audit)), "rebuilt");
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
