//! The seccomp allow list that wraps warden's own host process.
//!
//! Once a run is set up (engine, module, WASI context, threads), warden installs a seccomp
//! filter on every thread of its process, right before the guest's first instruction. From
//! then on the process may make only the syscalls listed here; any other kills it
//! ([`Mode::Enforce`]) or is reported by the kernel ([`Mode::Log`]). It is a second wall behind
//! wasmtime's sandbox: a guest that broke out of wasm into the host process still could not
//! start programs, open sockets, write files it was not granted, or map executable memory.
//!
//! This crate knows nothing of wasmtime or of the manifest format: it takes a list of
//! [`Group`]s. The allow list is data (`table.rs`): each syscall with a one-line reason and,
//! where it matters, conditions on its arguments. A [`Profile`] is the [`Group::Base`] lines
//! plus those of the groups a run's grants need, nothing else.
//!
//! # What the caller must have done before installing
//!
//! The list covers running already-loaded code, not setting it up. Before
//! [`Profile::install`], the runtime must have:
//!
//! - loaded and pre-instantiated the module, and built its copy-on-write memory image
//!   (wasmtime's `initialize_copy_on_write_image`; otherwise the first instantiation needs
//!   `memfd_create`, which is never allowed);
//! - started every long-lived thread: the epoch ticker, the watchdog, and the async runtime
//!   the WASI host functions use (wasmtime-wasi's tokio runtime, e.g. by running
//!   `wasmtime_wasi::runtime::in_tokio(async {})` once), since building that runtime needs
//!   `epoll_create1`, `eventfd2` and new threads;
//! - opened everything the run writes to (the audit log) and built the WASI context.
//!
//! # Examples
//!
//! ```
//! use host_seccomp::{Group, Profile};
//!
//! let profile = Profile::new(&[Group::FileRead]);
//! assert!(profile.syscalls().contains(&"openat"));
//! assert!(!profile.syscalls().contains(&"socket"));
//! println!("{}", profile.render_text());
//! // Installing is for the runtime's own process, right before guest code runs:
//! // profile.install(host_seccomp::Mode::Enforce)?;
//! ```

mod arch;
mod program;
mod render;
mod rule;
mod sys;
mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_program;

use std::collections::BTreeMap;

pub use sys::send_signal;
pub use table::{CONTAINER_EXCEPTIONS, NEVER};

use rule::{Action, Cmp, Entry, When};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule,
};

/// A group of syscalls that one kind of grant needs on the host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// What the runtime needs to run already-loaded code: memory (never executable), signals
    /// for traps, futex, clocks, writing stdout, stderr and the audit log, exit. Always in a
    /// profile.
    Base,
    /// Starting threads of this process after the lockdown: tokio's blocking pool and tasks
    /// of the network stack. Brought in by [`Group::Network`] (see [`Group::requires`]); file
    /// grants do without it (the runtime starts its blocking pool before the lockdown).
    Threads,
    /// Reading an inherited stdin.
    Stdin,
    /// Reading the host's clocks: a granted clock's resolution is a syscall (its time comes
    /// from the vDSO).
    Clocks,
    /// Reading granted files and folders.
    FileRead,
    /// Writing granted files and folders (brings [`Group::FileRead`]).
    FileWrite,
    /// Removing the private staging folder that single-file grants are served from, when the
    /// run ends (brings [`Group::FileRead`]; [`Group::FileWrite`] can remove files anyway).
    FileStaging,
    /// Outbound network connections, name lookups and UDP.
    Network,
    /// Listening TCP sockets and accepting connections on them (`[network] listen`; brings
    /// [`Group::Network`]).
    NetworkListen,
    /// A `warden serve` worker: it reads requests from its stdin (brings [`Group::Stdin`])
    /// and sets up each run after its lockdown, not before as `warden run` does.
    ServeWorker,
}

impl Group {
    /// Every group, in order.
    pub const ALL: [Group; 10] = [
        Group::Base,
        Group::Threads,
        Group::Stdin,
        Group::Clocks,
        Group::FileRead,
        Group::FileWrite,
        Group::FileStaging,
        Group::Network,
        Group::NetworkListen,
        Group::ServeWorker,
    ];

    /// The group's name in [`Profile::render_text`] and audit records: `file-read`.
    pub fn name(self) -> &'static str {
        match self {
            Group::Base => "base",
            Group::Threads => "threads",
            Group::Stdin => "stdin",
            Group::Clocks => "clocks",
            Group::FileRead => "file-read",
            Group::FileWrite => "file-write",
            Group::FileStaging => "file-staging",
            Group::Network => "network",
            Group::NetworkListen => "network-listen",
            Group::ServeWorker => "serve-worker",
        }
    }

    /// The groups this one cannot work without, which a profile adds with it.
    pub fn requires(self) -> &'static [Group] {
        match self {
            // The runtime reads an inherited stdin on the guest's own thread, runs most file
            // calls there too (`allow_blocking_current_thread`), and starts the fixed blocking
            // pool that file streams and `poll_oneoff` on files use before the lockdown, so
            // no file grant starts a thread after it.
            Group::Base | Group::Threads | Group::Stdin | Group::Clocks | Group::FileRead => &[],
            Group::FileStaging => &[Group::FileRead],
            Group::FileWrite => &[Group::FileRead],
            // Sockets are driven by tokio; name lookups would run on its blocking pool.
            Group::Network => &[Group::Threads],
            // A listening socket is made, bound and driven like any other.
            Group::NetworkListen => &[Group::Network, Group::Threads],
            Group::ServeWorker => &[Group::Stdin],
        }
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which part of warden's life a profile covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// From warden's own lockdown on: running already-loaded code. What warden installs.
    #[default]
    Run,
    /// From the container's first exec on: the container runtime's last steps, the loader,
    /// warden's setup (compiling or mapping code, threads, the module cache, its own
    /// lockdown), then the run. For container runtimes to apply; warden narrows it to the run
    /// stage's list at its lockdown.
    Container,
    /// A `warden serve` container from its first exec on: the container stage, plus what the
    /// server does (listen on its address, start its worker processes by exec, reap them, kill
    /// a stuck one). Each worker installs its own run-stage lockdown on top.
    Serve,
}

impl Stage {
    /// `run` or `container`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Run => "run",
            Stage::Container => "container",
            Stage::Serve => "serve",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What happens to a syscall the profile does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The process is killed (`SECCOMP_RET_KILL_PROCESS`: every thread, with `SIGSYS`).
    #[default]
    Enforce,
    /// The syscall runs, and the kernel logs it (`SECCOMP_RET_LOG`, to the kernel log or the
    /// audit subsystem). For finding out what a workload would need; protects nothing.
    Log,
}

impl Mode {
    /// `enforce` or `log`, for audit records.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Log => "log",
        }
    }

    fn default_action(self) -> SeccompAction {
        match self {
            Mode::Enforce => SeccompAction::KillProcess,
            Mode::Log => SeccompAction::Log,
        }
    }
}

/// Why a profile could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// This system cannot install the filter; the message says why.
    #[error("seccomp is not available: {0}")]
    Unsupported(String),
    /// The allow list names a syscall this architecture does not have.
    #[error("the allow list names syscall `{0}`, which {arch} does not have", arch = std::env::consts::ARCH)]
    UnknownSyscall(&'static str),
    /// seccompiler refused the filter (too large, bad argument index).
    #[error("cannot build the seccomp filter: {0}")]
    Build(#[from] seccompiler::BackendError),
    /// The profile does not fit one BPF program the kernel takes; the message says why.
    #[error("cannot lay out the seccomp filter: {0}")]
    Layout(String),
    /// The kernel refused the filter, or could not apply it to every thread.
    #[error("cannot install the seccomp filter: {0}")]
    Install(#[from] seccompiler::Error),
}

/// Checks that this system can install a profile: Linux on x86-64 or aarch64, a kernel with
/// seccomp filters, and the `KILL_PROCESS` and `LOG` actions (Linux 4.14+).
///
/// A caller that was asked to enforce must refuse to run when this fails, rather than run
/// unprotected.
///
/// # Errors
/// [`SeccompError::Unsupported`], saying what is missing.
pub fn supported() -> Result<(), SeccompError> {
    if arch::TARGET.is_none() {
        return Err(SeccompError::Unsupported(format!(
            "warden filters syscalls on Linux x86_64 and aarch64 only, not {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )));
    }
    match sys::seccomp_mode() {
        Ok(mode) if mode == libc::SECCOMP_MODE_STRICT => {
            return Err(SeccompError::Unsupported(
                "the process already runs in strict seccomp mode".into(),
            ));
        }
        Ok(_) => {}
        Err(e) => {
            return Err(SeccompError::Unsupported(format!(
                "the kernel does not support seccomp (prctl(PR_GET_SECCOMP): {e})"
            )));
        }
    }
    for (action, name) in [
        (libc::SECCOMP_RET_KILL_PROCESS, "SECCOMP_RET_KILL_PROCESS"),
        (libc::SECCOMP_RET_LOG, "SECCOMP_RET_LOG"),
    ] {
        if let Err(e) = sys::action_available(action) {
            return Err(SeccompError::Unsupported(format!(
                "the kernel does not offer {name} (seccomp(SECCOMP_GET_ACTION_AVAIL): {e}); \
                 Linux 4.14 or later is needed"
            )));
        }
    }
    Ok(())
}

/// One syscall of a profile, after merging the entries of all its groups.
#[derive(Debug, Clone)]
pub(crate) struct Syscall {
    pub(crate) name: &'static str,
    /// When it runs.
    pub(crate) allow: Option<When>,
    /// When it is answered with an errno instead, and which.
    pub(crate) errno: Option<(i32, When)>,
    /// The table lines that contributed, for the groups and reasons in the text rendering.
    pub(crate) entries: Vec<&'static Entry>,
}

/// A run's allow list: the base set plus the groups its grants need.
#[derive(Debug, Clone)]
pub struct Profile {
    stage: Stage,
    groups: Vec<Group>,
    syscalls: Vec<Syscall>,
}

impl Profile {
    /// The profile for `groups`: [`Group::Base`] is always included, and each group brings
    /// the groups it [requires](Group::requires). Order and repetition in `groups` do not
    /// matter.
    pub fn new(groups: &[Group]) -> Profile {
        Profile::for_stage(groups, Stage::Run)
    }

    /// The profile for `groups` at `stage`: [`Profile::new`] for [`Stage::Run`]; for
    /// [`Stage::Container`], the same lines plus the container stage's setup lines; for
    /// [`Stage::Serve`], those plus the server's lines and [`Group::ServeWorker`].
    pub fn for_stage(groups: &[Group], stage: Stage) -> Profile {
        let mut selected = vec![Group::Base];
        let mut todo: Vec<Group> = groups.to_vec();
        if stage == Stage::Serve {
            todo.push(Group::ServeWorker);
        }
        while let Some(g) = todo.pop() {
            if !selected.contains(&g) {
                selected.push(g);
                todo.extend_from_slice(g.requires());
            }
        }
        selected.sort();

        let mut by_name: BTreeMap<&'static str, Syscall> = BTreeMap::new();
        let in_stage = |e: &Entry| match stage {
            Stage::Run => e.stage == Stage::Run,
            Stage::Container => e.stage != Stage::Serve,
            Stage::Serve => true,
        };
        for entry in table::TABLE
            .iter()
            .filter(|e| selected.contains(&e.group) && in_stage(e))
        {
            let s = by_name.entry(entry.name).or_insert_with(|| Syscall {
                name: entry.name,
                allow: None,
                errno: None,
                entries: Vec::new(),
            });
            let when = When::from_rules(entry.when);
            match entry.action {
                Action::Allow => {
                    s.allow = Some(match s.allow.take() {
                        Some(w) => w.union(when),
                        None => when,
                    });
                }
                Action::Errno(e) => {
                    s.errno = Some(match s.errno.take() {
                        // The table gives one errno per syscall (checked by a test).
                        Some((e0, w)) => (e0, w.union(when)),
                        None => (e, when),
                    });
                }
            }
            s.entries.push(entry);
        }
        // An errno line is a fallback for cases nothing allows: where a group allows the same
        // cases (FileRead's read-only `openat` over Base's refusal), the allowance wins.
        for s in by_name.values_mut() {
            if let (Some(allow), Some((_, errno))) = (&s.allow, &s.errno)
                && allow.covers(errno)
            {
                s.errno = None;
                s.entries.retain(|e| e.action == Action::Allow);
            }
        }
        Profile {
            stage,
            groups: selected,
            syscalls: by_name.into_values().collect(),
        }
    }

    /// The stage this profile covers.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The groups in this profile, [`Group::Base`] and the required ones included, in order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// How many distinct syscalls the profile lists, allowed or answered with an errno.
    pub fn syscall_count(&self) -> usize {
        self.syscalls.len()
    }

    /// The distinct syscall names the profile lists, sorted.
    pub fn syscalls(&self) -> Vec<&'static str> {
        self.syscalls.iter().map(|s| s.name).collect()
    }

    /// Builds the BPF program for this architecture: one program that checks the
    /// architecture, finds the syscall's number by binary search, and then checks its
    /// arguments: the rules answered with an errno first, then the allowed ones; any other
    /// case gets `mode`'s default action. The argument checks are seccompiler's; see
    /// `program.rs` for the layout.
    ///
    /// # Errors
    /// [`SeccompError::Unsupported`] on an architecture warden does not filter,
    /// [`SeccompError::UnknownSyscall`] if the table names a syscall this architecture lacks,
    /// [`SeccompError::Build`] if seccompiler refuses a rule, [`SeccompError::Layout`] if the
    /// program cannot be laid out (longer than the kernel takes).
    pub fn compile(&self, mode: Mode) -> Result<BpfProgram, SeccompError> {
        let arch = target_arch()?;
        let default = mode.default_action();
        let mut cases = Vec::with_capacity(self.syscalls.len());
        for s in &self.syscalls {
            let nr = arch::number(s.name).ok_or(SeccompError::UnknownSyscall(s.name))?;
            let nr = u32::try_from(nr).map_err(|_| SeccompError::UnknownSyscall(s.name))?;
            let errno = match &s.errno {
                Some((e, when)) => Some((errno_action(*e)?, rule_checks(when)?)),
                None => None,
            };
            let allow = match &s.allow {
                Some(when) => Some(rule_checks(when)?),
                None => None,
            };
            cases.push(program::Case {
                nr,
                block: program::block(errno, allow, default.clone()),
            });
        }
        cases.sort_by_key(|c| c.nr);
        program::assemble(arch, &cases, default)
    }

    /// Installs the profile on every thread of the calling process (`SECCOMP_FILTER_FLAG_TSYNC`),
    /// after setting `no_new_privs`. There is no way back: from now on the process may make only
    /// the listed syscalls. Call it after every setup step and right before guest code runs.
    ///
    /// # Errors
    /// [`SeccompError::Unsupported`] if [`supported`] fails; [`SeccompError::Build`],
    /// [`SeccompError::Layout`] or [`SeccompError::UnknownSyscall`] if the filter cannot be
    /// built; [`SeccompError::Install`] if the kernel refuses it or a thread cannot be
    /// synchronised. The profile is one program, so it is either installed whole or not at all.
    pub fn install(&self, mode: Mode) -> Result<(), SeccompError> {
        supported()?;
        let program = self.compile(mode)?;
        seccompiler::apply_filter_all_threads(&program)?;
        Ok(())
    }
}

/// The seccompiler architecture of this build.
fn target_arch() -> Result<seccompiler::TargetArch, SeccompError> {
    arch::TARGET.ok_or_else(|| {
        SeccompError::Unsupported(format!(
            "no seccomp filter for {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    })
}

/// The filter's answer for errno `e`.
fn errno_action(e: i32) -> Result<SeccompAction, SeccompError> {
    let errno = u32::try_from(e)
        .map_err(|_| SeccompError::Unsupported(format!("errno {e} cannot be a seccomp answer")))?;
    Ok(SeccompAction::Errno(errno))
}

/// The argument checks of `when`, one block of seccompiler's code per rule; `None` for always.
fn rule_checks(when: &When) -> Result<Option<Vec<BpfProgram>>, SeccompError> {
    if *when == When::Always {
        return Ok(None);
    }
    seccomp_rules(when)?
        .into_iter()
        .map(program::rule_checks)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn seccomp_rules(when: &When) -> Result<Vec<SeccompRule>, SeccompError> {
    let rules = match when {
        When::Always => return Ok(Vec::new()),
        When::AnyOf(rules) => rules,
    };
    rules
        .iter()
        .map(|rule| {
            let conds = rule
                .iter()
                .map(|c| {
                    let (op, value) = match c.cmp {
                        Cmp::Eq(v) => (SeccompCmpOp::Eq, v),
                        Cmp::MaskedEq { mask, value } => (SeccompCmpOp::MaskedEq(mask), value),
                    };
                    SeccompCondition::new(c.arg, SeccompCmpArgLen::Dword, op, value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SeccompRule::new(conds)?)
        })
        .collect()
}
