//! The allow list, as data: every syscall warden's host process may make once the lockdown is
//! installed, with one line on why.
//!
//! # How this list was found
//!
//! The lockdown is installed right before the guest's first instruction, after every setup
//! step: engine, module loaded (from the cache), `InstancePre`, preopened folders, the WASI
//! context, the tokio runtime warmed, the epoch ticker and watchdog threads started. So only
//! what happens from there to the process's exit matters: `Store::new` and instantiation,
//! the guest's own run, the host calls it makes, and the teardown (drops, audit records,
//! `exit_group`).
//!
//! It was measured with `strace -f` over real runs of the `warden` binary (hello as a module and
//! as a component, the `fs`, `env`, `probe`, `membomb`, `spin`, `flood`, `recurse` and `escape`
//! guests, with and without file, stdin, clock and random grants, and each limit reached). A
//! scratch copy of the runtime made one marker syscall (a `stat` of a path named
//! `/WARDEN-LOCKDOWN-MARKER`) at the lockdown point; everything after the marker, on any
//! thread, is what the filter must allow. The write of the guest's first output line confirms
//! the ordering. The list was then checked by installing it, in `Mode::Enforce`, in that same
//! scratch runtime and rerunning every scenario.
//!
//! What the traces showed, beyond the obvious (memory, stdout, futex, the epoch's sleep):
//!
//! - tokio's worker threads are created when the runtime is warmed, but their own start-up
//!   (`rseq`, `set_robust_list`, `rt_sigprocmask`, `prctl(PR_SET_NAME)`, `sched_getaffinity`,
//!   `gettid`, their alternate signal stack, their first `getrandom`, `epoll_wait`) races the
//!   lockdown; those calls are in the base set so that the race is harmless. `rseq` cannot be
//!   answered with an errno: once the main thread registered it, glibc aborts a new thread
//!   whose registration fails ("Fatal glibc error: rseq registration failed").
//! - glibc's malloc opens files read-only on its own: `/proc/sys/vm/overcommit_memory` when it
//!   shrinks a thread's heap (seen running the reactor guest), `/sys/devices/system/cpu/online`
//!   when a thread first needs a new arena after the eighth (seen with file grants). Refused
//!   with `EACCES`, it assumes a default or falls back to `sched_getaffinity`. An `openat`
//!   with write flags is never answered with an errno: it kills.
//! - wasmtime creates a module's copy-on-write memory image (`memfd_create`, `write`,
//!   `fcntl(F_ADD_SEALS)`) on its first instantiation unless
//!   `Module::initialize_copy_on_write_image` (or the `Component` one) ran during setup. The
//!   runtime must call it before the lockdown: `memfd_create` is not listed, and without it
//!   the first instantiation is killed (checked).
//! - wasmtime installs its alternate signal stack (`sigaltstack`) on a thread's first call into
//!   wasm, after the lockdown, and removes it when the thread exits.
//! - wasmtime-wasi would run file operations on tokio's blocking pool and read an inherited
//!   stdin on a thread of its own, both started on demand. The runtime reads stdin on the
//!   guest's thread and runs the file calls that honour `allow_blocking_current_thread` there
//!   too. The rest cannot be kept on that thread: wasmtime-wasi 48's file input and output
//!   streams (`read-via-stream`, `write-via-stream`, `append-via-stream`, used by components
//!   and by wasi-libc's preview 2 stdio, CPython's among them) and a core module's
//!   `poll_oneoff` on a file descriptor (it polls such a stream) hand every read and write to
//!   the blocking pool whatever the context says. So the runtime gives the pool a fixed size
//!   and starts all its threads before the lockdown (`io_runtime::start_blocking_pool`, never
//!   retired): tokio then queues the work for them and starts none, and no file grant needs
//!   `clone` (`Threads` comes with `Network` only). An earlier table let `FileRead` start no
//!   threads and gave `FileWrite` the `Threads` group; a Python component reading a read-only
//!   grant was killed by it (exit 159).
//! - cap-std opens paths with `openat2(RESOLVE_BENEATH)`, whose flags live in memory where
//!   seccomp cannot see them: it gets `ENOSYS` and falls back to resolving each component with
//!   `openat`, whose flags can be checked. Likewise glibc's `clone3` falls back to `clone`.
//! - Single-file grants are served from a staging folder that is removed when the run ends,
//!   after the guest, under the lockdown: `unlinkat` even for read-only grants, hence the
//!   `FileStaging` group (not part of `FileRead`, so that directory grants cannot delete).
//!   Read-write single files are copied back by a new file in the original's folder (`openat`
//!   with `O_CREAT|O_EXCL`) renamed over it (`renameat`), which `FileWrite` allows anyway.
//!
//!
//! A second pass drove every host function at its extremes with the `stress` guest (p1 and p2;
//! its modes are listed in `guests/stress`), each run under `strace -f` with `--seccomp log`,
//! collecting every syscall after the `seccomp(SECCOMP_SET_MODE_FILTER)` line on any thread.
//! Ordinary workloads had been killed by three syscalls:
//!
//! - `mremap` (`MREMAP_MAYMOVE` only): glibc's `realloc` of a block it had `mmap`ed, i.e. any
//!   host buffer that grows past the mmap threshold. Seen with thousands of open files (p1 and
//!   p2: wasmtime-wasi's descriptor table), tens of thousands of resource handles (p2: the
//!   resource table), `table.grow` (wasmtime's table storage), a 12 MiB HTTP response and an
//!   8 MiB request body (the broker's and hyper's buffers). Any run can grow a buffer, so it is
//!   in `Base`.
//! - `faccessat2(dir, ".", X_OK, AT_EACCESS)`: cap-std's manual resolution (after `openat2`'s
//!   `ENOSYS`) checks that a folder may be searched before it steps back out of it for `..`
//!   (`sub/../file.txt`, `rename` to `x/../b`). Only with a file grant: `FileRead`.
//! - `clock_getres`: `clock_res_get` / `resolution` of a granted wall or monotonic clock (the
//!   time itself comes from the vDSO). Only with a clock grant: `Clocks`. The stand-ins of
//!   ungranted clocks answer without the host.
//!
//! Everything else the corpus did (files of tens of MiB read and written, a folder of 5,000
//! entries, paths ending in `/` or holding `.`, every mutating file operation, 32 MiB of
//! random bytes, 20 MB of stdin, memory grown to the limit, 50 HTTP requests in a row, a 4 MiB
//! TCP echo, the response cap, the request and egress limits, `fd_advise`, descriptor flags,
//! sleeps, TLS and refused connections, the wall-time watchdog ending a request stuck on a
//! silent server) already fitted the list.
//!
//! `[network] listen` and `udp` (the `network-listen` group and the UDP lines of `network`)
//! were found the same way: `strace -f` of `warden run --seccomp log` with net-probe's
//! `listen 127.0.0.1:PORT` step (bind, listen, accept one connection, echo a line) and its
//! `udp ADDR DATA` step (one datagram out, one reply in). Listening needs `listen` and
//! `accept4` beyond the network group; UDP needs one more `fcntl` command, `F_GETFL`, which
//! wasmtime-wasi reads from a new UDP socket (without it the first UDP socket was killed).
//!
//! # The container stage
//!
//! A container runtime (runc, crun; Kubernetes' `seccompProfile: Localhost`) applies its
//! profile before it executes the container's first program, so a profile for warden in a
//! container must also cover what happens before warden's own lockdown. The `setup` lines
//! below, in [`crate::Stage::Container`] profiles only, are that: found with `strace -f` of
//! `warden run` from its `execve` to its `seccomp(SECCOMP_SET_MODE_FILTER)`, over the example
//! connector (a core module with single-file, folder and read-write grants), hello as a module
//! and as a component, with a cold module cache (compiling, storing the entry), a warm one
//! (mapping the entry) and `--no-cache`; and with `strace -f` of `runc run` (runc 1.1.5) for
//! what runc itself does between applying the profile and its exec of warden: reopening its
//! exec FIFO through `/proc/self/fd` for writing, writing one byte, listing `/proc/self/fd`
//! (`fstatfs`, `getdents64`) to mark inherited descriptors close-on-exec, `getpid`, a futex
//! wake, and the `execve`. The loader's part (glibc's `ld.so`, x86-64): `access` of
//! `/etc/ld.so.preload`, `openat`/`read`/`pread64`/`newfstatat` of each library, `mmap` with
//! `PROT_EXEC` and `mprotect` for RELRO, `arch_prctl(ARCH_SET_FS)`, `set_tid_address`,
//! `set_robust_list`, `rseq`, `prlimit64(RLIMIT_STACK)` read-only; then std's start (`poll`
//! of descriptors 0-2, `rt_sigaction`, `sigaltstack`). A statically linked build needs a
//! subset of these. The test `tests/all/container.rs` runs the example connector under runc
//! with this profile applied.
//!
//! Everything the run stage allows is kept (the process runs on under this profile after the
//! lockdown); memory may be mapped executable, which the run stage never allows, because the
//! loader and wasmtime must. What stays refused: every syscall of [`NEVER`] but the two in
//! [`CONTAINER_EXCEPTIONS`]; network sockets without a network grant (a local `socketpair` is
//! allowed, for tokio's signal driver); processes (`clone` without
//! `CLONE_THREAD`, `fork`); and whatever else the table does not list.
//!
//! Syscall numbers are resolved per architecture in `crate::arch`; a name not known there
//! makes `Profile::install` fail rather than silently allow less (or more).

use crate::Group::{
    self, Base, Clocks, FileRead, FileStaging, FileWrite, Network, NetworkListen, ServeWorker,
    Stdin, Threads,
};
use crate::Stage;
use crate::rule::{Action, Cond, Entry, Rule};

const ALLOW: Action = Action::Allow;
/// For syscalls libraries only probe: "not implemented here", so they fall back.
const ENOSYS: Action = Action::Errno(libc::ENOSYS);
/// For requests that are refused but must not kill: "permission denied".
const EACCES: Action = Action::Errno(libc::EACCES);

/// tokio parks its I/O driver in `epoll_wait`; aarch64 has only `epoll_pwait`.
const EPOLL_WAIT: &str = if cfg!(target_arch = "aarch64") {
    "epoll_pwait"
} else {
    "epoll_wait"
};

/// `renameat` does not exist on aarch64; glibc uses `renameat2` there.
const RENAMEAT: &str = if cfg!(target_arch = "aarch64") {
    "renameat2"
} else {
    "renameat"
};

/// x86-64 glibc calls the legacy syscalls; aarch64 has only the `*at` and `ppoll` forms.
const ACCESS: &str = if cfg!(target_arch = "aarch64") {
    "faccessat"
} else {
    "access"
};
const READLINK: &str = if cfg!(target_arch = "aarch64") {
    "readlinkat"
} else {
    "readlink"
};
const POLL: &str = if cfg!(target_arch = "aarch64") {
    "ppoll"
} else {
    "poll"
};
const MKDIR: &str = if cfg!(target_arch = "aarch64") {
    "mkdirat"
} else {
    "mkdir"
};

// --- Conditions -------------------------------------------------------------------------------

const PROT_EXEC: u64 = libc::PROT_EXEC as u64;

/// W^X: memory may be mapped or remapped, never executable. All code was mapped during setup.
const NOT_EXEC: &[Rule] = &[&[Cond::masked(2, PROT_EXEC, 0, "prot & PROT_EXEC == 0")]];

/// `futex` operations without the `FUTEX_PRIVATE_FLAG` and `FUTEX_CLOCK_REALTIME` modifiers.
const FUTEX_CMD_MASK: u64 =
    !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u32) as u64;

const FUTEX_OPS: &[Rule] = &[
    &[Cond::masked(
        1,
        FUTEX_CMD_MASK,
        libc::FUTEX_WAIT as u64,
        "op is FUTEX_WAIT (± PRIVATE, CLOCK_REALTIME)",
    )],
    &[Cond::masked(
        1,
        FUTEX_CMD_MASK,
        libc::FUTEX_WAKE as u64,
        "op is FUTEX_WAKE (± PRIVATE)",
    )],
    &[Cond::masked(
        1,
        FUTEX_CMD_MASK,
        libc::FUTEX_WAIT_BITSET as u64,
        "op is FUTEX_WAIT_BITSET (± PRIVATE, CLOCK_REALTIME)",
    )],
    &[Cond::masked(
        1,
        FUTEX_CMD_MASK,
        libc::FUTEX_WAKE_BITSET as u64,
        "op is FUTEX_WAKE_BITSET (± PRIVATE)",
    )],
];

const MADV_DONTNEED: &[Rule] = &[&[Cond::eq(
    2,
    libc::MADV_DONTNEED as u64,
    "advice == MADV_DONTNEED",
)]];

const PR_SET_NAME: &[Rule] = &[&[Cond::eq(
    0,
    libc::PR_SET_NAME as u64,
    "option == PR_SET_NAME",
)]];

/// `mremap` that may move the block but never to a chosen address (`MREMAP_FIXED`) and never
/// keeps the old one (`MREMAP_DONTUNMAP`): glibc's `realloc` of a block it had `mmap`ed.
/// A remapped block keeps its protection, and only non-executable blocks are ever allocated.
const REMAP_MAY_MOVE: &[Rule] = &[
    &[Cond::eq(
        3,
        libc::MREMAP_MAYMOVE as u64,
        "flags == MREMAP_MAYMOVE",
    )],
    &[Cond::eq(3, 0, "flags == 0")],
];

/// `faccessat2(dir, path, X_OK, AT_EACCESS)`: may this folder be searched.
const SEARCH_ACCESS: &[Rule] = &[&[
    Cond::eq(2, libc::X_OK as u64, "mode == X_OK"),
    Cond::eq(3, libc::AT_EACCESS as u64, "flags == AT_EACCESS"),
]];

const F_GETFD: &[Rule] = &[&[Cond::eq(1, libc::F_GETFD as u64, "cmd == F_GETFD")]];

const F_GETFL: &[Rule] = &[&[Cond::eq(1, libc::F_GETFL as u64, "cmd == F_GETFL")]];

const FILE_FCNTL: &[Rule] = &[
    &[Cond::eq(1, libc::F_GETFD as u64, "cmd == F_GETFD")],
    &[Cond::eq(1, libc::F_SETFD as u64, "cmd == F_SETFD")],
    &[Cond::eq(1, libc::F_GETFL as u64, "cmd == F_GETFL")],
    &[Cond::eq(1, libc::F_SETFL as u64, "cmd == F_SETFL")],
];

/// The `openat` flags that can write: an access mode other than `O_RDONLY`, or creating or
/// truncating (`O_RDONLY | O_TRUNC` truncates on Linux). `O_TMPFILE` needs a write access mode.
const OPEN_WRITE_BITS: u64 = (libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC) as u64;

const OPEN_READ_ONLY: &[Rule] = &[&[Cond::masked(
    2,
    OPEN_WRITE_BITS,
    libc::O_RDONLY as u64,
    "flags & (O_ACCMODE|O_CREAT|O_TRUNC) == O_RDONLY",
)]];

/// A new thread of this process: sharing memory, files, signal handlers, in the same thread
/// group; never a new process, namespace, vfork or traced child.
const CLONE_REQUIRED: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;
const CLONE_FORBIDDEN: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_VFORK
    | libc::CLONE_PTRACE
    | libc::CLONE_UNTRACED
    | libc::CLONE_PARENT
    | libc::CLONE_PIDFD) as u64;

const CLONE_THREAD_ONLY: &[Rule] = &[&[Cond::masked(
    0,
    CLONE_REQUIRED | CLONE_FORBIDDEN,
    CLONE_REQUIRED,
    "flags has CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM, no CLONE_NEW*|VFORK|PTRACE|UNTRACED|PARENT|PIDFD",
)]];

/// Descriptor flags, as for opened files, and `F_DUPFD_CLOEXEC`: tokio's I/O driver clones
/// its epoll descriptor when the runtime is built.
const SETUP_FCNTL: &[Rule] = &[
    &[Cond::eq(1, libc::F_GETFD as u64, "cmd == F_GETFD")],
    &[Cond::eq(1, libc::F_SETFD as u64, "cmd == F_SETFD")],
    &[Cond::eq(1, libc::F_GETFL as u64, "cmd == F_GETFL")],
    &[Cond::eq(1, libc::F_SETFL as u64, "cmd == F_SETFL")],
    &[Cond::eq(
        1,
        libc::F_DUPFD_CLOEXEC as u64,
        "cmd == F_DUPFD_CLOEXEC",
    )],
];

const STDIN_FD: &[Rule] = &[&[Cond::eq(0, 0, "fd == 0")]];

// `TCGETS`'s type differs between libc targets (`c_ulong` on glibc, `c_int` on musl).
#[allow(clippy::unnecessary_cast)]
const STDIN_TCGETS: &[Rule] = &[&[
    Cond::eq(0, 0, "fd == 0"),
    Cond::eq(1, libc::TCGETS as u64, "request == TCGETS"),
]];

const INET_SOCKET: &[Rule] = &[
    &[Cond::eq(0, libc::AF_INET as u64, "domain == AF_INET")],
    &[Cond::eq(0, libc::AF_INET6 as u64, "domain == AF_INET6")],
];

// --- Conditions of the container stage ---------------------------------------------------------

/// `socketpair(AF_UNIX, …)`: a connected pair of local sockets, which reaches nothing outside
/// the process.
const UNIX_PAIR: &[Rule] = &[&[Cond::eq(0, libc::AF_UNIX as u64, "domain == AF_UNIX")]];

/// `prlimit64(0, resource, NULL, old)`: reading this process's own limits, never setting one.
const READ_OWN_LIMIT: &[Rule] = &[&[
    Cond::eq(0, 0, "pid == 0"),
    Cond::eq(2, 0, "new_limit == NULL"),
]];

/// `PR_GET_SECCOMP` (may a filter be installed) and `PR_SET_NO_NEW_PRIVS` set to 1 (required
/// before an unprivileged process installs one), besides naming threads.
const SETUP_PRCTL: &[Rule] = &[
    &[Cond::eq(
        0,
        libc::PR_SET_NAME as u64,
        "option == PR_SET_NAME",
    )],
    &[Cond::eq(
        0,
        libc::PR_GET_SECCOMP as u64,
        "option == PR_GET_SECCOMP",
    )],
    &[
        Cond::eq(
            0,
            libc::PR_SET_NO_NEW_PRIVS as u64,
            "option == PR_SET_NO_NEW_PRIVS",
        ),
        Cond::eq(1, 1, "arg2 == 1"),
    ],
];

/// Installing a further filter on every thread, and asking which actions the kernel has. A
/// filter can only narrow what the process may do: stacked filters answer with the strictest.
/// No user-notification listener (`SECCOMP_FILTER_FLAG_NEW_LISTENER`), no strict mode.
// `SECCOMP_FILTER_FLAG_TSYNC` is a `c_ulong`: `u64` here, not on every libc target.
#[allow(clippy::unnecessary_cast)]
const SECCOMP_NARROW: &[Rule] = &[
    &[
        Cond::eq(
            0,
            libc::SECCOMP_SET_MODE_FILTER as u64,
            "op == SECCOMP_SET_MODE_FILTER",
        ),
        Cond::eq(
            1,
            libc::SECCOMP_FILTER_FLAG_TSYNC as u64,
            "flags == SECCOMP_FILTER_FLAG_TSYNC",
        ),
    ],
    &[
        Cond::eq(
            0,
            libc::SECCOMP_GET_ACTION_AVAIL as u64,
            "op == SECCOMP_GET_ACTION_AVAIL",
        ),
        Cond::eq(1, 0, "flags == 0"),
    ],
];

/// `ARCH_SET_FS` (asm/prctl.h; not in the libc crate): the thread pointer for TLS.
#[cfg(target_arch = "x86_64")]
const ARCH_SET_FS: &[Rule] = &[&[Cond::eq(0, 0x1002, "code == ARCH_SET_FS")]];

const ALWAYS: &[Rule] = &[];

const fn entry(
    name: &'static str,
    group: Group,
    action: Action,
    when: &'static [Rule],
    reason: &'static str,
) -> Entry {
    Entry {
        name,
        group,
        stage: Stage::Run,
        action,
        when,
        reason,
    }
}

/// A line of the container stage: what warden does from its container's first exec up to its
/// own lockdown (see `SETUP`). Always in the base group: setup is the same for every manifest.
const fn setup(
    name: &'static str,
    action: Action,
    when: &'static [Rule],
    reason: &'static str,
) -> Entry {
    Entry {
        name,
        group: Base,
        stage: Stage::Container,
        action,
        when,
        reason,
    }
}

/// A line of the serve stage: what a `warden serve` server does besides a run's setup (see
/// `Stage::Serve`). Always in the base group.
const fn serve(
    name: &'static str,
    action: Action,
    when: &'static [Rule],
    reason: &'static str,
) -> Entry {
    Entry {
        name,
        group: Base,
        stage: Stage::Serve,
        action,
        when,
        reason,
    }
}

/// `clone(CLONE_VM|CLONE_VFORK|SIGCHLD, …)`: posix_spawn's fallback when `clone3` is refused;
/// the child shares memory only until its `execve` of warden (a worker), and the parent waits.
const SPAWN_VFORK: &[Rule] = &[&[Cond::eq(
    0,
    (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64,
    "flags == CLONE_VM|CLONE_VFORK|SIGCHLD",
)]];

/// `kill(pid, SIGKILL)`: the server ends a worker stuck past its run's wall limit.
const KILL_ONLY: &[Rule] = &[&[Cond::eq(1, libc::SIGKILL as u64, "sig == SIGKILL")]];

/// Every line of the allow list. A profile is the `Base` lines plus those of its groups.
#[rustfmt::skip]
pub(crate) static TABLE: &[Entry] = &[
    // --- Base: running already-loaded code ---------------------------------------------------
    entry("write", Base, ALLOW, ALWAYS,
        "guest stdout/stderr, warden's messages, the audit log; tokio's eventfd wake-ups"),
    entry("close", Base, ALLOW, ALWAYS,
        "dropping descriptors the run is done with"),
    entry("mmap", Base, ALLOW, NOT_EXEC,
        "the store's linear memories, tables and stacks, malloc; never executable (W^X)"),
    entry("mprotect", Base, ALLOW, NOT_EXEC,
        "making reserved memory accessible as the guest grows it, guard pages; never executable"),
    entry("munmap", Base, ALLOW, ALWAYS,
        "freeing memories, stacks and large allocations"),
    entry("madvise", Base, ALLOW, MADV_DONTNEED,
        "wasmtime decommits memory; glibc returns freed heap and exited threads' stacks"),
    entry("brk", Base, ALLOW, ALWAYS,
        "glibc malloc grows its main heap"),
    entry("futex", Base, ALLOW, FUTEX_OPS,
        "locks, condition variables and thread parking (std, tokio, wasmtime)"),
    entry("clock_nanosleep", Base, ALLOW, ALWAYS,
        "the epoch ticker's 10 ms sleep and the wall-time watchdog's sleep"),
    entry("clock_gettime", Base, ALLOW, ALWAYS,
        "clocks when the vDSO cannot answer (it normally does, without a syscall)"),
    entry("sched_yield", Base, ALLOW, ALWAYS,
        "idle thread pools (tokio, wasmtime's compile pool) spin with it before parking"),
    entry(EPOLL_WAIT, Base, ALLOW, ALWAYS,
        "tokio's workers park on the I/O driver; wasmtime-wasi's sync calls run on tokio"),
    entry("getrandom", Base, ALLOW, ALWAYS,
        "the guest's secure-random grant; std's per-thread hash keys"),
    entry("rt_sigreturn", Base, ALLOW, ALWAYS,
        "returning from wasmtime's trap handler (out-of-bounds access, stack overflow)"),
    entry("restart_syscall", Base, ALLOW, ALWAYS,
        "resuming a sleep a freeze or stop interrupted (cgroup freezer, SIGSTOP)"),
    entry("sigaltstack", Base, ALLOW, ALWAYS,
        "wasmtime sets a thread's signal stack on its first call into wasm, removes it at exit"),
    entry("rt_sigprocmask", Base, ALLOW, ALWAYS,
        "signal masks around a thread's start and exit (glibc)"),
    entry("exit", Base, ALLOW, ALWAYS,
        "a thread ends"),
    entry("exit_group", Base, ALLOW, ALWAYS,
        "the process ends"),
    entry("fcntl", Base, ALLOW, F_GETFD,
        "std's debug builds check that a descriptor is open before closing it"),
    entry("gettid", Base, ALLOW, ALWAYS,
        "a starting thread (tokio worker) learns its id: its start races the lockdown"),
    entry("sched_getaffinity", Base, ALLOW, ALWAYS,
        "pthread_getattr_np, called by std as a thread starts; glibc's CPU count fallback"),
    entry("prctl", Base, ALLOW, PR_SET_NAME,
        "std names a starting thread (tokio-rt-worker); no other prctl is allowed"),
    entry("set_robust_list", Base, ALLOW, ALWAYS,
        "glibc registers a starting thread's robust-futex list"),
    entry("rseq", Base, ALLOW, ALWAYS,
        "glibc registers a starting thread's restartable sequences; a refusal is fatal to it"),
    entry("mremap", Base, ALLOW, REMAP_MAY_MOVE,
        "realloc of big blocks: resource tables, wasm tables, HTTP bodies; never to a fixed address"),
    entry("openat", Base, EACCES, OPEN_READ_ONLY,
        "glibc malloc reads /proc/sys/vm/overcommit_memory, /sys/devices/system/cpu/online; copes"),
    // --- Threads: new threads after the lockdown ------------------------------------------------
    entry("clone", Threads, ALLOW, CLONE_THREAD_ONLY,
        "the network stack's tasks and tokio's blocking pool start threads on demand"),
    entry("clone3", Threads, ENOSYS, ALWAYS,
        "glibc tries it first; its flags are in memory seccomp cannot read, so it falls back to clone"),
    // --- Stdin: reading an inherited stdin ------------------------------------------------------
    entry("read", Stdin, ALLOW, STDIN_FD,
        "the guest reads warden's inherited stdin (fd 0)"),
    entry("ioctl", Stdin, ALLOW, STDIN_TCGETS,
        "isatty(0): wasmtime-wasi asks whether stdin is a terminal"),
    // --- ServeWorker: a `warden serve` worker, which sets up each run after its lockdown -------
    entry("getpid", ServeWorker, ALLOW, ALWAYS,
        "each run's setup notes the process id (file staging state)"),
    // --- Clocks: the host's clocks, when granted -----------------------------------------------
    entry("clock_getres", Clocks, ALLOW, ALWAYS,
        "a granted clock's resolution (wall or monotonic); its time comes from the vDSO"),
    // --- FileRead: reading granted files and folders ---------------------------------------------
    entry("openat", FileRead, ALLOW, OPEN_READ_ONLY,
        "opening granted files and folders read-only; cap-std resolves paths one component at a time"),
    entry("openat2", FileRead, ENOSYS, ALWAYS,
        "cap-std tries RESOLVE_BENEATH first; its flags are in memory, so it falls back to openat"),
    entry("read", FileRead, ALLOW, ALWAYS,
        "reading granted files"),
    entry("pread64", FileRead, ALLOW, ALWAYS,
        "wasmtime-wasi reads files at an offset (fd_read, fd_pread)"),
    entry("lseek", FileRead, ALLOW, ALWAYS,
        "fd_seek, fd_tell"),
    entry("statx", FileRead, ALLOW, ALWAYS,
        "file metadata: std and rustix ask statx first"),
    entry("newfstatat", FileRead, ALLOW, ALWAYS,
        "file metadata: cap-std checks each opened component, tempfile's cleanup walks its folder"),
    entry("getdents64", FileRead, ALLOW, ALWAYS,
        "listing granted folders (fd_readdir)"),
    entry("readlinkat", FileRead, ALLOW, ALWAYS,
        "cap-std follows symlinks itself to keep them inside the grant; path_readlink"),
    entry("fcntl", FileRead, ALLOW, FILE_FCNTL,
        "descriptor flags of opened files (fd_fdstat_get, O_CLOEXEC, O_NONBLOCK)"),
    entry("fadvise64", FileRead, ALLOW, ALWAYS,
        "fd_advise"),
    entry("faccessat2", FileRead, ALLOW, SEARCH_ACCESS,
        "cap-std checks a folder may be searched before it resolves `..` in a path (X_OK only)"),
    // --- FileWrite: writing granted files and folders --------------------------------------------
    entry("openat", FileWrite, ALLOW, ALWAYS,
        "creating, truncating and writing granted files; copying read-write file grants back"),
    entry("pwrite64", FileWrite, ALLOW, ALWAYS,
        "wasmtime-wasi writes files at an offset (fd_write, fd_pwrite)"),
    entry("pwritev2", FileWrite, ALLOW, ALWAYS,
        "appending (RWF_APPEND) to files opened with fdflags append"),
    entry("mkdirat", FileWrite, ALLOW, ALWAYS,
        "path_create_directory"),
    entry("unlinkat", FileWrite, ALLOW, ALWAYS,
        "path_unlink_file, path_remove_directory; removing the staging folder of file grants"),
    entry(RENAMEAT, FileWrite, ALLOW, ALWAYS,
        "path_rename"),
    entry("symlinkat", FileWrite, ALLOW, ALWAYS,
        "path_symlink"),
    entry("linkat", FileWrite, ALLOW, ALWAYS,
        "path_link"),
    entry("ftruncate", FileWrite, ALLOW, ALWAYS,
        "fd_filestat_set_size"),
    entry("fsync", FileWrite, ALLOW, ALWAYS,
        "fd_sync"),
    entry("fdatasync", FileWrite, ALLOW, ALWAYS,
        "fd_datasync"),
    entry("utimensat", FileWrite, ALLOW, ALWAYS,
        "fd_filestat_set_times, path_filestat_set_times"),
    // --- FileStaging: the staging folder of single-file grants -----------------------------------
    entry("unlinkat", FileStaging, ALLOW, ALWAYS,
        "removing the staging folder single-file grants are served from, after the run"),
    // --- Network: outbound connections and name lookups, for [network] and [[http]] ---
    entry("socket", Network, ALLOW, INET_SOCKET,
        "TCP/UDP sockets, IPv4 and IPv6 only"),
    entry("connect", Network, ALLOW, ALWAYS,
        "outbound connections (each address is checked by the runtime first)"),
    entry("bind", Network, ALLOW, ALWAYS,
        "the resolver's UDP socket and guests' sockets (addresses checked first; listen is its own group)"),
    entry("getsockopt", Network, ALLOW, ALWAYS,
        "connection errors (SO_ERROR) and socket options"),
    entry("setsockopt", Network, ALLOW, ALWAYS,
        "socket options (TCP_NODELAY, buffer sizes)"),
    entry("getsockname", Network, ALLOW, ALWAYS,
        "the local address of a socket"),
    entry("getpeername", Network, ALLOW, ALWAYS,
        "the remote address of a socket"),
    entry("sendto", Network, ALLOW, ALWAYS,
        "sending on a socket"),
    entry("recvfrom", Network, ALLOW, ALWAYS,
        "receiving on a socket"),
    entry("writev", Network, ALLOW, ALWAYS,
        "vectored writes on sockets: TLS records (tokio-rustls) and HTTP requests (hyper)"),
    entry("sendmsg", Network, ALLOW, ALWAYS,
        "sending datagrams"),
    entry("recvmsg", Network, ALLOW, ALWAYS,
        "receiving datagrams"),
    entry("shutdown", Network, ALLOW, ALWAYS,
        "closing one direction of a connection"),
    entry("epoll_ctl", Network, ALLOW, ALWAYS,
        "registering sockets with tokio's I/O driver"),
    entry("fcntl", Network, ALLOW, F_GETFL,
        "wasmtime-wasi reads a new UDP socket's flags (a [network] udp socket; seen by strace)"),
    // --- NetworkListen: TCP listening sockets, for [network] listen --------------------------
    entry("listen", NetworkListen, ALLOW, ALWAYS,
        "a guest's socket listens on an address a listen entry allows (checked first)"),
    entry("accept4", NetworkListen, ALLOW, ALWAYS,
        "accepting a connection on such a socket (tokio's accept, SOCK_CLOEXEC|SOCK_NONBLOCK)"),
    // --- Container stage: from the container's first exec to warden's own lockdown ------------
    // Only in `Stage::Container` profiles, on top of the run stage's lines (see the module docs).
    // The container runtime's last steps, after it applied the profile:
    setup("execve", ALLOW, ALWAYS,
        "the runtime's final exec of warden (runc applies the profile first); args are pointers"),
    setup("fstatfs", ALLOW, ALWAYS,
        "runc checks /proc/self/fd is procfs before it marks inherited descriptors close-on-exec"),
    setup("getdents64", ALLOW, ALWAYS,
        "runc lists /proc/self/fd before its exec, to mark inherited descriptors close-on-exec"),
    setup("close_range", ENOSYS, ALWAYS,
        "runc 1.2+ tries CLOSE_RANGE_CLOEXEC first and falls back to listing /proc/self/fd"),
    // The kernel and the dynamic loader (ld.so) start warden:
    setup("mmap", ALLOW, ALWAYS,
        "ld.so maps warden's and libc's code, wasmtime maps compiled modules: PROT_EXEC needed"),
    setup("mprotect", ALLOW, ALWAYS,
        "ld.so's RELRO; wasmtime makes freshly compiled or loaded code executable (never W+X)"),
    setup(ACCESS, ALLOW, ALWAYS,
        "ld.so looks for /etc/ld.so.preload"),
    setup("openat", ALLOW, ALWAYS,
        "libraries, manifest, module, secrets files, the module cache, staging single-file grants"),
    setup("read", ALLOW, ALWAYS,
        "ELF headers, the manifest, the module, cache entries, secret files"),
    setup("pread64", ALLOW, ALWAYS,
        "ld.so reads program headers at an offset"),
    setup("newfstatat", ALLOW, ALWAYS,
        "ld.so and std look at the files they open"),
    setup("statx", ALLOW, ALWAYS,
        "std's metadata of the manifest, module, grants and cache entries"),
    setup("lseek", ALLOW, ALWAYS,
        "std reads whole files (manifest, module, cache entry)"),
    setup("fcntl", ALLOW, SETUP_FCNTL,
        "descriptor flags; tokio dups its epoll descriptor; runc marks descriptors close-on-exec"),
    #[cfg(target_arch = "x86_64")]
    setup("arch_prctl", ALLOW, ARCH_SET_FS,
        "glibc sets the main thread's TLS pointer (x86-64 only)"),
    setup("set_tid_address", ALLOW, ALWAYS,
        "glibc's start of the main thread"),
    setup("prlimit64", ALLOW, READ_OWN_LIMIT,
        "glibc and std read the stack size limit; setting a limit is not allowed"),
    setup(POLL, ALLOW, ALWAYS,
        "std checks at start that descriptors 0-2 are open (zero timeout)"),
    setup("rt_sigaction", ALLOW, ALWAYS,
        "std ignores SIGPIPE, wasmtime installs its trap handlers, warden its SIGTERM/SIGINT ones"),
    // warden's setup: paths, module cache, threads, the async runtime, its own lockdown:
    setup("getcwd", ALLOW, ALWAYS,
        "resolving the manifest's relative paths"),
    setup(READLINK, ALLOW, ALWAYS,
        "canonicalising the manifest's paths (symlinks are resolved once, before the grant)"),
    setup(MKDIR, ALLOW, ALWAYS,
        "the module cache folder (mode 0700) and the staging folder of single-file grants"),
    setup("write", ALLOW, ALWAYS,
        "a new cache entry; copies of single-file grants into their staging folder"),
    setup("fsync", ALLOW, ALWAYS,
        "a new cache entry reaches the disk before it is renamed into place"),
    setup(RENAMEAT, ALLOW, ALWAYS,
        "a new cache entry is renamed into place, so no reader sees half of it"),
    setup("unlinkat", ALLOW, ALWAYS,
        "a cache entry that could not be written completely is removed"),
    setup("getpid", ALLOW, ALWAYS,
        "tempfile names the cache's and staging's temporary files"),
    setup("memfd_create", ENOSYS, ALWAYS,
        "wasmtime's copy-on-write image of a freshly compiled module; it copies memory instead"),
    setup("clone", ALLOW, CLONE_THREAD_ONLY,
        "the epoch ticker, compile pool, watchdog and tokio threads: threads only, no process"),
    setup("clone3", ENOSYS, ALWAYS,
        "glibc tries it first; its flags are in memory seccomp cannot read, so it falls back to clone"),
    setup("prctl", ALLOW, SETUP_PRCTL,
        "thread names; PR_GET_SECCOMP and PR_SET_NO_NEW_PRIVS before warden installs its own filter"),
    setup("seccomp", ALLOW, SECCOMP_NARROW,
        "warden's own lockdown, which can only narrow this profile; action probes"),
    #[cfg(target_arch = "aarch64")]
    setup("membarrier", ALLOW, ALWAYS,
        "wasmtime makes other cores see freshly published code (aarch64 instruction caches)"),
    setup("epoll_create1", ALLOW, ALWAYS,
        "tokio's I/O driver, built before the lockdown"),
    setup("eventfd2", ALLOW, ALWAYS,
        "tokio's waker, built before the lockdown"),
    // tokio's `signal` and `process` features serve `warden serve`; with them, every runtime
    // with I/O builds a signal driver.
    // Only in `Stage::Serve` profiles: the `warden serve` server (its workers lock themselves
    // down to their own manifest's run stage at their start).
    serve("socket", ALLOW, INET_SOCKET,
        "the server's listening socket (IPv4 or IPv6)"),
    serve("bind", ALLOW, ALWAYS,
        "the server binds its --listen address"),
    serve("listen", ALLOW, ALWAYS,
        "the server listens on its address"),
    serve("accept4", ALLOW, ALWAYS,
        "the server accepts HTTP connections"),
    serve("setsockopt", ALLOW, ALWAYS,
        "SO_REUSEADDR and TCP_NODELAY on the server's sockets"),
    serve("getsockname", ALLOW, ALWAYS,
        "the server reports the address it listens on"),
    serve("getpeername", ALLOW, ALWAYS,
        "a connection's peer"),
    serve("recvfrom", ALLOW, ALWAYS,
        "reading HTTP requests"),
    serve("sendto", ALLOW, ALWAYS,
        "writing HTTP answers"),
    serve("writev", ALLOW, ALWAYS,
        "writing HTTP answers (hyper writes head and body together)"),
    serve("shutdown", ALLOW, ALWAYS,
        "closing a connection's write half"),
    serve("pipe2", ALLOW, ALWAYS,
        "each worker's stdin and stdout pipes"),
    #[cfg(target_arch = "x86_64")]
    serve("dup2", ALLOW, ALWAYS,
        "a starting worker's pipes become its stdin and stdout, before its exec"),
    serve("dup3", ALLOW, ALWAYS,
        "the same on architectures without dup2"),
    serve("setpgid", ALLOW, ALWAYS,
        "a worker gets a process group of its own, so a signal to the server spares it"),
    serve("clone", ALLOW, SPAWN_VFORK,
        "starting a worker: posix_spawn's vfork, followed by the worker's exec of warden"),
    serve("wait4", ALLOW, ALWAYS,
        "reaping a worker that ended"),
    serve("waitid", ALLOW, ALWAYS,
        "reaping a worker that ended (tokio's process driver)"),
    serve("pidfd_open", ALLOW, ALWAYS,
        "tokio watches a worker's exit through a pidfd"),
    serve("kill", ALLOW, KILL_ONLY,
        "ending a worker stuck past its run's wall limit (SIGKILL only)"),
    setup("socketpair", ALLOW, UNIX_PAIR,
        "tokio's signal driver's self-pipe, made as a runtime is built: a local pair only"),
    setup("epoll_ctl", ALLOW, ALWAYS,
        "registering tokio's waker (runc's Go runtime also tries, and copes with EPERM)"),
];

/// The syscalls of [`NEVER`] that a [`crate::Stage::Container`] profile allows, and only
/// these: `execve`, because the container runtime applies the profile before its final exec of
/// warden (the container's first program) and seccomp cannot tell that exec from another, its
/// arguments being pointers; and `seccomp`, only to install a further filter on every thread
/// (`SECCOMP_SET_MODE_FILTER` with `SECCOMP_FILTER_FLAG_TSYNC`) or to probe an action, because
/// warden's own lockdown is such a filter, and a filter can only narrow what a process may do.
/// Once warden's lockdown is in (`--seccomp enforce`, the default), both are refused again.
/// Every other syscall of [`NEVER`] stays unlisted, or is answered with an errno
/// (`memfd_create`: `ENOSYS`), and never runs.
pub const CONTAINER_EXCEPTIONS: &[&str] = &["execve", "seccomp"];

/// Syscalls no profile may ever allow, whatever its groups: each would let a compromised host
/// process leave the sandbox or widen its own rights. Checked by the tests.
pub const NEVER: &[&str] = &[
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "seccomp",
    "init_module",
    "finit_module",
    "kexec_load",
    "memfd_create",
    "pkey_mprotect",
    "personality",
    "setuid",
    "setgid",
    "capset",
];
