//! What `warden check` warns about without failing: the manifest is valid, but a run on this
//! machine, as it is now, would not start.

use warden::{Manifest, ManifestError, Policy};

/// The manifest at `path` as `warden check` reads it: an unset `from-host` variable, like an
/// unreadable secret source, is a warning there, not an error (`check` often runs where the
/// run's environment is not: CI, a laptop). Returns the policy and the unset variables' names.
///
/// # Errors
/// The manifest cannot be read or is invalid.
pub fn load(path: &std::path::Path) -> Result<(Policy, Vec<String>), ManifestError> {
    let unset = std::cell::RefCell::new(Vec::new());
    let lookup = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            unset.borrow_mut().push(name.to_owned());
            Some(String::new())
        })
    };
    let manifest = Manifest::from_file_with_env(path, &lookup)?;
    Ok((Policy::from_manifest(manifest), unset.into_inner()))
}

/// One warning per secret whose source cannot be read here (an unset variable, a missing
/// file, a value too short or too long). `check` often runs where the secrets are not (in
/// CI, on a laptop), so this is a warning, as for a run it is an error (exit 125).
pub fn secret_sources(policy: &Policy) -> Vec<String> {
    policy
        .secrets
        .iter()
        .filter_map(|secret| {
            warden::secrets::Secrets::load(std::slice::from_ref(secret))
                .err()
                .map(|e| format!("{e}: `warden run` would not start here (exit 125)"))
        })
        .collect()
}

/// One warning per `from-host` variable that is not set in this environment.
pub fn unset_variables(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            format!(
                "from-host variable `{n}` is not set here: `warden run` would not start here \
                 (exit 125)"
            )
        })
        .collect()
}
