//! What `warden check` warns about without failing: the manifest is valid, but a run on this
//! machine, as it is now, would not start.

use warden::Policy;

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
