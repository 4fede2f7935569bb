//! Paths as warden prints them: without the `.` components and doubled slashes that joining a
//! manifest's folder with its relative paths leaves (`./examples//app/./app.wasm`), and with
//! `..` resolved when the path exists (`examples/app/../../target/app.wasm` is printed as the
//! file it names). A path is never changed to mean another file.

use std::path::{Component, Path, PathBuf};

/// `path` as printed: see the module's doc.
pub fn shown(path: &Path) -> PathBuf {
    let has_parent = path.components().any(|c| c == Component::ParentDir);
    if has_parent && let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let cleaned: PathBuf = path
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::shown;
    use std::path::Path;

    #[test]
    fn dots_and_doubled_slashes_go() {
        assert_eq!(shown(Path::new("./a//b/./c.toml")), Path::new("a/b/c.toml"));
        assert_eq!(shown(Path::new("/x/./y")), Path::new("/x/y"));
        assert_eq!(shown(Path::new(".")), Path::new("."));
        // A `..` that cannot be resolved (the path does not exist) is kept.
        assert_eq!(
            shown(Path::new("no-such-dir/../z")),
            Path::new("no-such-dir/../z")
        );
    }
}
