//! The split between the library and the command line, as Cargo resolves the manifests: the
//! library (`warden-runtime`) is what an embedder compiles, so it depends on nothing only the
//! command line (`warden-cli`) needs: no argument parser, no signal handling, no `anyhow`, no
//! HTTP server.

use serde_json::Value;

/// The command line's own dependencies, by the names `cargo metadata` gives them.
const CLI_ONLY: [&str; 6] = [
    "clap",
    "clap_complete",
    "clap_mangen",
    "signal-hook",
    "anyhow",
    "hyper-util",
];

/// The workspace's packages, their manifests read and inherited keys resolved (no network:
/// `--no-deps` reads the workspace's own manifests only).
fn metadata() -> Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `package`'s normal (not dev, not build) dependencies: each name with the features asked of it.
fn normal_dependencies(meta: &Value, package: &str) -> Vec<(String, Vec<String>)> {
    let packages = meta["packages"].as_array().unwrap();
    let p = packages
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("no package {package} in the workspace"));
    p["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| {
            let features = d["features"].as_array().unwrap();
            let features = features.iter().map(|f| f.as_str().unwrap().to_owned());
            (d["name"].as_str().unwrap().to_owned(), features.collect())
        })
        .collect()
}

fn features_of<'d>(deps: &'d [(String, Vec<String>)], name: &str) -> &'d [String] {
    deps.iter()
        .find(|(n, _)| n == name)
        .map(|(_, f)| f.as_slice())
        .unwrap_or_else(|| panic!("no dependency on {name}"))
}

#[test]
fn the_library_depends_on_nothing_only_the_command_line_needs() {
    let meta = metadata();
    let library = normal_dependencies(&meta, "warden-runtime");
    let cli = normal_dependencies(&meta, "warden-cli");
    for name in CLI_ONLY {
        // Control: the command line has it, so the name is the one Cargo reports.
        assert!(
            cli.iter().any(|(n, _)| n == name),
            "warden-cli does not depend on {name}: is the name right?"
        );
        assert!(
            !library.iter().any(|(n, _)| n == name),
            "warden-runtime depends on {name}, which only the command line needs"
        );
    }
    // hyper: the library's HTTP client only; the server is `warden serve`'s.
    assert!(features_of(&cli, "hyper").iter().any(|f| f == "server"));
    let library_hyper = features_of(&library, "hyper");
    assert!(
        !library_hyper.iter().any(|f| f == "server"),
        "warden-runtime asks hyper for its server: {library_hyper:?}"
    );
}
