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
    /// YAML), named `warden-NAME-STAGE` after the manifest's identity.
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
                "manifest": crate::warden_paths::shown(manifest).display().to_string(),
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
                    let name = format!("warden-{}-{}", policy.identity.name, profile.stage());
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
