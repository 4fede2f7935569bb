//! `warden seccomp show` and `warden seccomp export`: the host allow list of a manifest, for
//! people, for container runtimes (OCI) and for the Security Profiles Operator (SPO).

use std::path::PathBuf;
use std::process::ExitCode;

use warden::host_seccomp::{Profile, Stage};
use warden::{Manifest, Policy};

use crate::fail;

#[derive(clap::Subcommand)]
pub(crate) enum SeccompCommand {
    /// Print the allow list: one syscall a line with its group, reason and argument
    /// conditions, then the count.
    ///
    /// Exit codes: 0 printed; 2 usage error; 125 the manifest is invalid or cannot be read.
    Show {
        /// The manifest (`*.warden.toml`); several (for `--stage serve`): the union of their
        /// grants.
        #[arg(required = true, num_args = 1..)]
        manifest: Vec<PathBuf>,
        /// Which part of warden's life: `run` (after its own lockdown) or `container` (from
        /// the container's first exec on).
        #[arg(long, value_enum, default_value_t = StageArg::Run)]
        stage: StageArg,
        /// Print one JSON object instead of the text (see docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Write the allow list as a seccomp profile for other tools, on stdout; the syscall
    /// counts of both stages go to stderr.
    ///
    /// `--stage container` is the profile to give a container runtime (runc, crun, Docker,
    /// Kubernetes `seccompProfile: Localhost`): it also covers the runtime's exec of warden,
    /// the loader and warden's setup. `--stage run` (the default) covers only what follows
    /// warden's own lockdown; a container runtime applying it kills warden at its start.
    ///
    /// Exit codes: 0 written; 2 usage error; 125 the manifest is invalid or cannot be read.
    #[command(verbatim_doc_comment)]
    Export {
        /// The manifest (`*.warden.toml`); several (for `--stage serve`, the manifests one
        /// `warden serve` serves): the union of their grants.
        #[arg(required = true, num_args = 1..)]
        manifest: Vec<PathBuf>,
        /// The profile format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Oci)]
        format: ExportFormat,
        /// Which part of warden's life the profile covers.
        #[arg(long, value_enum, default_value_t = StageArg::Run)]
        stage: StageArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// An OCI / Docker / Kubernetes seccomp profile (JSON).
    Oci,
    /// A Security Profiles Operator `SeccompProfile` object (JSON, which kubectl takes as
    /// YAML), named `warden-NAME-STAGE` after the manifest's identity (several manifests:
    /// `warden-STAGE.set-HASH`, the same for the same set in any order; long names shortened
    /// with a hash).
    Spo,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StageArg {
    /// From warden's own lockdown on (what warden itself installs).
    Run,
    /// From the container's first exec on: runtime, loader, setup, then the run.
    Container,
    /// A `warden serve` container: the container stage plus the server (listening, starting
    /// and reaping its workers).
    Serve,
}

impl From<StageArg> for Stage {
    fn from(s: StageArg) -> Stage {
        match s {
            StageArg::Run => Stage::Run,
            StageArg::Container => Stage::Container,
            StageArg::Serve => Stage::Serve,
        }
    }
}

pub(crate) fn seccomp(command: SeccompCommand) -> ExitCode {
    let (SeccompCommand::Show {
        manifest, stage, ..
    }
    | SeccompCommand::Export {
        manifest, stage, ..
    }) = &command;
    let mut policies = Vec::new();
    for m in manifest {
        match Manifest::from_file(m) {
            Ok(m) => policies.push(Policy::from_manifest(m)),
            Err(e) => return fail(e),
        }
    }
    let Some(policy) = policies.first() else {
        return fail("no manifest given");
    };
    let mut groups: Vec<_> = policies.iter().flat_map(Policy::seccomp_groups).collect();
    groups.sort();
    groups.dedup();
    let ids: Vec<&str> = policies.iter().map(|p| p.identity.id.as_str()).collect();
    let manifest = &manifest[0];
    let profile = Profile::for_stage(&groups, Stage::from(*stage));
    let run_count = Profile::new(&groups).syscall_count();
    match command {
        SeccompCommand::Show { json: true, .. } => {
            let out = serde_json::json!({
                "identity": policy.identity.id,
                "identities": ids,
                "name": policy.identity.name,
                "manifest": super::paths::shown(manifest).display().to_string(),
                "stage": profile.stage().to_string(),
                "groups": profile.groups().iter().map(|g| g.name()).collect::<Vec<_>>(),
                "count": profile.syscall_count(),
                "run_stage_count": run_count,
                "syscalls": profile.syscalls_json(),
            });
            println!("{out:#}");
        }
        SeccompCommand::Show { json: false, .. } => {
            let names: Vec<&str> = profile.groups().iter().map(|g| g.name()).collect();
            println!(
                "# host allow list for {} (stage: {}; groups: {})",
                ids.join(", "),
                profile.stage(),
                names.join(", ")
            );
            print!("{}", profile.render_text());
            if profile.stage() != Stage::Run {
                println!("# run stage: {run_count} syscalls (warden's lockdown narrows to those)");
            }
        }
        SeccompCommand::Export { format, .. } => {
            match format {
                ExportFormat::Oci => println!("{}", profile.to_oci_json()),
                ExportFormat::Spo => {
                    let name = spo_name(&policies, &profile.stage().to_string());
                    println!("{}", profile.to_spo_json(&name));
                }
            }
            eprintln!(
                "warden: {} stage: {} syscalls; run stage: {run_count} syscalls",
                profile.stage(),
                profile.syscall_count()
            );
        }
    }
    ExitCode::SUCCESS
}

/// The longest Kubernetes name label (RFC 1123): the one-identity name is kept to one label.
const MAX_LABEL: usize = 63;

/// The `SeccompProfile`'s name: a valid Kubernetes object name (an RFC 1123 DNS subdomain).
///
/// - One identity: `warden-NAME-STAGE`; when that would pass one label's 63 characters, the
///   name is cut and a hash of the whole identity keeps it unique (`warden-NAM…-HASH-STAGE`).
/// - Several identities (`--stage serve` over the manifests one server serves): the hash of
///   their sorted, distinct identity ids, so the same set in any order gives the same name:
///   `warden-STAGE.set-HASH`. Its dot can never appear in a one-identity name (identity names
///   are `[a-z0-9-]`), so a set's profile never takes a single manifest's name.
fn spo_name(policies: &[Policy], stage: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut ids: Vec<&str> = policies.iter().map(|p| p.identity.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let hash = |parts: &[&str]| {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0]);
        }
        let digest = h.finalize();
        digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    if ids.len() > 1 {
        return format!("warden-{stage}.set-{}", hash(&ids));
    }
    let name = policies
        .iter()
        .find(|p| p.identity.id == ids[0])
        .map_or("", |p| p.identity.name.as_str());
    let plain = format!("warden-{name}-{stage}");
    if plain.len() <= MAX_LABEL {
        return plain;
    }
    let tail = format!("-{}-{stage}", hash(&ids));
    let keep = MAX_LABEL - "warden-".len() - tail.len();
    // Identity names are ASCII; a cut must not leave a trailing `-`.
    let cut = name[..keep.min(name.len())].trim_end_matches('-');
    format!("warden-{cut}{tail}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(name: &str) -> Policy {
        let mut p = Policy::anonymous();
        p.identity.name = name.into();
        p.identity.id = format!("spiffe://t.example/{name}");
        p
    }

    /// RFC 1123 DNS subdomain, as Kubernetes checks object names.
    fn valid_subdomain(n: &str) -> bool {
        n.len() <= 253
            && n.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= MAX_LABEL
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    #[test]
    fn a_set_is_named_by_its_members_in_any_order_and_apart_from_each_member() {
        let (a, b, c) = (policy("alpha"), policy("beta"), policy("gamma"));
        let ab = spo_name(&[a.clone(), b.clone()], "serve");
        assert_eq!(ab, spo_name(&[b.clone(), a.clone()], "serve"), "order");
        assert_eq!(
            ab,
            spo_name(&[a.clone(), b.clone(), a.clone()], "serve"),
            "repeats"
        );
        assert_ne!(
            ab,
            spo_name(&[a.clone(), c.clone()], "serve"),
            "another set"
        );
        assert_ne!(ab, spo_name(std::slice::from_ref(&a), "serve"));
        // A single identity whose name mimics a set's still differs (the set has a dot).
        let mimic = policy(&ab.replace("warden-", "").replace('.', "-"));
        assert_ne!(spo_name(&[mimic], "serve"), ab);
        assert!(valid_subdomain(&ab), "{ab}");
        // Control: one identity keeps the readable name.
        assert_eq!(spo_name(&[a], "serve"), "warden-alpha-serve");
    }

    #[test]
    fn a_long_identity_name_is_shortened_with_a_hash_and_stays_valid() {
        let long = format!("{}-{}", "a".repeat(120), "b".repeat(120));
        let one = spo_name(&[policy(&long)], "container");
        assert!(valid_subdomain(&one), "{one}");
        assert!(
            one.len() <= MAX_LABEL && one.ends_with("-container"),
            "{one}"
        );
        let other = spo_name(&[policy(&format!("{long}x"))], "container");
        assert_ne!(one, other, "the hash keeps cut names apart");
        let dash = format!("{}-{}", "a".repeat(40), "b".repeat(40));
        assert!(valid_subdomain(&spo_name(&[policy(&dash)], "run")));
    }
}
