//! `warden wit [--out DIR] [--force]`: writes warden's WIT package, the one in the
//! repository's `wit/`, so that a guest in any language can be built against it.
//!
//! The package is `warden:host` (`warden.wit`: the `secrets` interface and the worlds
//! `connector`, `connector-portable`, `handler`, `handler-portable`) with the WASI 0.2
//! packages warden implements in `deps/`, as the wasmtime-wasi it is built with defines them.
//! Every file is compiled into the binary from the list below; the integration tests compare
//! what is written with `wit/`, file by file, so a file added there and not here fails them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every file of the package: its path relative to the package's folder, and its text.
pub(crate) const FILES: &[(&str, &str)] = &[
    ("warden.wit", include_str!("../../../wit/warden.wit")),
    (
        "deps/README.md",
        include_str!("../../../wit/deps/README.md"),
    ),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../wit/deps/sockets.wit"),
    ),
];

/// Where `warden wit` writes without `--out`.
pub(crate) const DEFAULT_OUT: &str = "wit";

#[derive(clap::Args)]
pub(crate) struct WitArgs {
    /// The folder to write the package into; created with its parents if missing.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    out: PathBuf,
    /// Replace files of the package that exist in DIR with other contents.
    #[arg(long)]
    force: bool,
}

/// What writing one file of the package would do.
enum Step {
    /// The file is there with the same contents.
    Same,
    /// The file is missing: write it.
    Create,
    /// The file is there with other contents: replace it (only with `--force`).
    Replace,
}

/// Looks at what is at `path` now.
fn plan(path: &Path, text: &str) -> Result<Step, String> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Step::Create),
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(meta) if meta.is_dir() => Err(format!(
            "{}: is a folder; the package has a file there",
            path.display()
        )),
        Ok(_) => match std::fs::read(path) {
            Ok(bytes) if bytes == text.as_bytes() => Ok(Step::Same),
            Ok(_) => Ok(Step::Replace),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
    }
}

/// Writes the package into `args.out`. Nothing is written unless every file can be: files
/// that differ are all named first, and refused without `--force`.
pub(crate) fn wit(args: &WitArgs) -> ExitCode {
    match write(&args.out, args.force) {
        Ok((written, same)) => {
            println!(
                "wrote warden's WIT package to {}: {written} file(s) written, {same} already \
                 up to date (worlds connector, connector-portable, handler, handler-portable in \
                 warden.wit; WASI 0.2 in deps/)",
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(message) => crate::fail(message),
    }
}

fn write(out: &Path, force: bool) -> Result<(usize, usize), String> {
    if let Ok(meta) = std::fs::metadata(out)
        && !meta.is_dir()
    {
        return Err(format!("{}: exists and is not a folder", out.display()));
    }
    let mut steps = Vec::with_capacity(FILES.len());
    let mut differ = Vec::new();
    for (rel, text) in FILES {
        let path = out.join(rel);
        let step = plan(&path, text)?;
        if matches!(step, Step::Replace) {
            differ.push(path.display().to_string());
        }
        steps.push((path, *text, step));
    }
    if !differ.is_empty() && !force {
        return Err(format!(
            "not overwriting {} file(s) that differ from warden's WIT package: {} (--force \
             replaces them)",
            differ.len(),
            differ.join(", ")
        ));
    }
    let (mut written, mut same) = (0, 0);
    for (path, text, step) in steps {
        if matches!(step, Step::Same) {
            same += 1;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written += 1;
    }
    Ok((written, same))
}
