//! `warden wit`: the WIT package a guest in any language builds against.
//!
//! What is written equals the repository's `wit/` byte for byte, file for file (so a file
//! added to `wit/` and not to the binary's list fails here); it parses and resolves with
//! wit-parser (the parser of wasm-tools and wit-bindgen), with the worlds docs/guests.md
//! promises; a file changed in the target folder is not overwritten without `--force`.
//! componentize-py's reading of the same package is tested in `guests_python`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::{Outcome, Scene, finish, warden};

/// The repository's WIT package.
pub(crate) fn repo_wit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// Every file under `dir`, by its path relative to `dir` (with `/`), with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `warden wit ARGS` in `cwd`.
pub(crate) fn wit_cmd(cwd: &Path, args: &[&str]) -> Outcome {
    let mut cmd = warden();
    cmd.current_dir(cwd).arg("wit").args(args);
    finish(cmd, None)
}

/// Writes the package into `scene/rel` and returns that folder.
pub(crate) fn write_package(s: &Scene, rel: &str) -> PathBuf {
    let r = wit_cmd(s.dir.path(), &["--out", rel]);
    assert_eq!(r.code, 0, "{r:#?}");
    s.path(rel)
}

#[test]
fn wit_writes_the_repository_package_byte_for_byte() {
    let s = Scene::new();
    // A folder whose parents do not exist yet.
    let r = wit_cmd(s.dir.path(), &["--out", "nested/deeper/wit"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("nested/deeper/wit"), "says where: {r:#?}");
    let written = files(&s.path("nested/deeper/wit"));
    let repo = files(&repo_wit());
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        repo.keys().collect::<Vec<_>>(),
        "the files written are not those of wit/"
    );
    for (rel, bytes) in &repo {
        assert!(written[rel] == *bytes, "{rel} differs from wit/{rel}");
    }
    // The package is warden:host and the seven WASI packages, with their provenance.
    for rel in [
        "warden.wit",
        "deps/README.md",
        "deps/cli.wit",
        "deps/clocks.wit",
        "deps/filesystem.wit",
        "deps/http.wit",
        "deps/io.wit",
        "deps/random.wit",
        "deps/sockets.wit",
    ] {
        assert!(written.contains_key(rel), "{rel} missing: {written:?}");
    }
}

#[test]
fn wit_without_out_writes_to_wit_in_the_current_folder() {
    let s = Scene::new();
    let r = wit_cmd(s.dir.path(), &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("to wit:"), "says where: {r:#?}");
    assert_eq!(files(&s.path("wit")), files(&repo_wit()));
}

/// The imports and exports of `world` in `warden:host`, as `ns:pkg/iface@version` names.
fn world_items(resolve: &wit_parser::Resolve, world: &str) -> (Vec<String>, Vec<String>) {
    let pkg = resolve
        .packages
        .iter()
        .find(|(_, p)| p.name.namespace == "warden" && p.name.name == "host")
        .map(|(id, _)| id)
        .expect("package warden:host");
    let id = resolve
        .select_world(&[pkg], Some(world))
        .unwrap_or_else(|e| panic!("world {world}: {e:#}"));
    let w = &resolve.worlds[id];
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        items
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect::<Vec<_>>()
    };
    (names(&w.imports), names(&w.exports))
}

#[test]
fn the_written_package_resolves_with_the_promised_worlds() {
    let s = Scene::new();
    let dir = write_package(&s, "wit");
    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_dir(&dir)
        .unwrap_or_else(|e| panic!("the package does not resolve: {e:#}"));

    let secrets = "warden:host/secrets@0.1.0";
    let outgoing = "wasi:http/outgoing-handler@0.2.12";
    let (imports, exports) = world_items(&resolve, "connector");
    for name in [
        secrets,
        outgoing,
        "wasi:cli/environment@0.2.12",
        "wasi:filesystem/preopens@0.2.12",
        "wasi:sockets/tcp@0.2.12",
    ] {
        assert!(
            imports.iter().any(|i| i == name),
            "connector lacks {name}: {imports:?}"
        );
    }
    assert_eq!(exports, ["wasi:cli/run@0.2.12"]);

    let (imports, exports) = world_items(&resolve, "handler");
    assert!(imports.iter().any(|i| i == secrets), "{imports:?}");
    assert!(imports.iter().any(|i| i == outgoing), "{imports:?}");
    assert_eq!(exports, ["wasi:http/incoming-handler@0.2.12"]);

    // The portable worlds are the same without warden's import.
    for (portable, full) in [
        ("connector-portable", "connector"),
        ("handler-portable", "handler"),
    ] {
        let (p_imports, p_exports) = world_items(&resolve, portable);
        let (f_imports, f_exports) = world_items(&resolve, full);
        assert!(
            !p_imports.iter().any(|i| i.starts_with("warden:")),
            "{p_imports:?}"
        );
        let without: Vec<&String> = f_imports.iter().filter(|i| *i != secrets).collect();
        assert_eq!(p_imports.iter().collect::<Vec<_>>(), without, "{portable}");
        assert_eq!(p_exports, f_exports, "{portable}");
    }
    // What the Rust SDK generates: warden's import alone.
    assert_eq!(
        world_items(&resolve, "imports"),
        (vec![secrets.to_owned()], vec![])
    );

    // Control: without deps/http.wit the package no longer resolves, and the parser says why.
    std::fs::remove_file(dir.join("deps/http.wit")).unwrap();
    let mut broken = wit_parser::Resolve::default();
    let Err(e) = broken.push_dir(&dir) else {
        panic!("the package resolves without wasi:http");
    };
    assert!(format!("{e:#}").contains("wasi:http"), "{e:#}");
}

#[test]
fn wit_does_not_overwrite_a_changed_file_without_force() {
    let s = Scene::new();
    let dir = write_package(&s, "wit");
    let original = std::fs::read(dir.join("warden.wit")).unwrap();

    // Control: written again over itself, nothing is refused and nothing is rewritten.
    let r = wit_cmd(s.dir.path(), &["--out", "wit"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("0 file(s) written, 9 already up to date"),
        "{r:#?}"
    );

    // A user's change to one file, and another file of the package gone.
    std::fs::write(dir.join("warden.wit"), "package my:edit;\n").unwrap();
    std::fs::remove_file(dir.join("deps/io.wit")).unwrap();
    let r = wit_cmd(s.dir.path(), &["--out", "wit"]);
    r.assert_one_line_error("warden.wit");
    assert!(r.stderr.contains("--force"), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("warden.wit")).unwrap(),
        "package my:edit;\n",
        "the changed file was overwritten"
    );
    assert!(
        !dir.join("deps/io.wit").exists(),
        "a refused command wrote part of the package"
    );

    let r = wit_cmd(s.dir.path(), &["--out", "wit", "--force"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stdout.contains("2 file(s) written, 7 already up to date"),
        "{r:#?}"
    );
    assert_eq!(std::fs::read(dir.join("warden.wit")).unwrap(), original);
    assert_eq!(files(&dir), files(&repo_wit()));
}

#[test]
fn wit_refuses_an_out_that_is_not_a_folder_and_bad_flags() {
    let s = Scene::new();
    s.file("taken", "a file\n");
    let r = wit_cmd(s.dir.path(), &["--out", "taken"]);
    r.assert_one_line_error("taken: exists and is not a folder");

    // A folder where the package has a file.
    s.mkdir("pkg/warden.wit");
    let r = wit_cmd(s.dir.path(), &["--out", "pkg"]);
    r.assert_one_line_error("is a folder");
    assert!(!s.path("pkg/deps").exists(), "{r:#?}");

    let r = wit_cmd(s.dir.path(), &["--bogus"]);
    assert_eq!(r.code, 2, "usage error: {r:#?}");
    assert!(!s.path("wit").exists());
}
