//! Syscall numbers for the names the allow list uses, on the architectures warden supports.

/// The seccompiler architecture of this build, if warden supports it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) const TARGET: Option<seccompiler::TargetArch> = Some(seccompiler::TargetArch::x86_64);
/// The seccompiler architecture of this build, if warden supports it.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
pub(crate) const TARGET: Option<seccompiler::TargetArch> = Some(seccompiler::TargetArch::aarch64);
/// The seccompiler architecture of this build, if warden supports it.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) const TARGET: Option<seccompiler::TargetArch> = None;

/// The architecture as OCI seccomp profiles name it.
pub(crate) const OCI_ARCH: &str = if cfg!(target_arch = "aarch64") {
    "SCMP_ARCH_AARCH64"
} else {
    "SCMP_ARCH_X86_64"
};

/// The number of syscall `name` on this architecture, if known.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) fn number(name: &str) -> Option<i64> {
    let nr = match name {
        "brk" => libc::SYS_brk,
        "clock_getres" => libc::SYS_clock_getres,
        "clock_gettime" => libc::SYS_clock_gettime,
        "clock_nanosleep" => libc::SYS_clock_nanosleep,
        "clone" => libc::SYS_clone,
        "clone3" => libc::SYS_clone3,
        "close" => libc::SYS_close,
        "connect" => libc::SYS_connect,
        "epoll_ctl" => libc::SYS_epoll_ctl,
        "epoll_pwait" => libc::SYS_epoll_pwait,
        "exit" => libc::SYS_exit,
        "exit_group" => libc::SYS_exit_group,
        "faccessat2" => libc::SYS_faccessat2,
        "fadvise64" => libc::SYS_fadvise64,
        "fcntl" => libc::SYS_fcntl,
        "fdatasync" => libc::SYS_fdatasync,
        "fsync" => libc::SYS_fsync,
        "ftruncate" => libc::SYS_ftruncate,
        "futex" => libc::SYS_futex,
        "getdents64" => libc::SYS_getdents64,
        "getpeername" => libc::SYS_getpeername,
        "getrandom" => libc::SYS_getrandom,
        "bind" => libc::SYS_bind,
        "writev" => libc::SYS_writev,
        "getsockname" => libc::SYS_getsockname,
        "getsockopt" => libc::SYS_getsockopt,
        "gettid" => libc::SYS_gettid,
        "getpid" => libc::SYS_getpid,
        "ioctl" => libc::SYS_ioctl,
        "linkat" => libc::SYS_linkat,
        "lseek" => libc::SYS_lseek,
        "madvise" => libc::SYS_madvise,
        "mkdirat" => libc::SYS_mkdirat,
        "mmap" => libc::SYS_mmap,
        "mprotect" => libc::SYS_mprotect,
        "munmap" => libc::SYS_munmap,
        "mremap" => libc::SYS_mremap,
        "newfstatat" => libc::SYS_newfstatat,
        "openat" => libc::SYS_openat,
        "openat2" => libc::SYS_openat2,
        "prctl" => libc::SYS_prctl,
        "pread64" => libc::SYS_pread64,
        "pwrite64" => libc::SYS_pwrite64,
        "pwritev2" => libc::SYS_pwritev2,
        "read" => libc::SYS_read,
        "readlinkat" => libc::SYS_readlinkat,
        "recvfrom" => libc::SYS_recvfrom,
        "recvmsg" => libc::SYS_recvmsg,
        "renameat2" => libc::SYS_renameat2,
        "restart_syscall" => libc::SYS_restart_syscall,
        "rseq" => libc::SYS_rseq,
        "rt_sigprocmask" => libc::SYS_rt_sigprocmask,
        "rt_sigreturn" => libc::SYS_rt_sigreturn,
        "sched_getaffinity" => libc::SYS_sched_getaffinity,
        "sched_yield" => libc::SYS_sched_yield,
        "sendmsg" => libc::SYS_sendmsg,
        "sendto" => libc::SYS_sendto,
        "set_robust_list" => libc::SYS_set_robust_list,
        "setsockopt" => libc::SYS_setsockopt,
        "shutdown" => libc::SYS_shutdown,
        "sigaltstack" => libc::SYS_sigaltstack,
        "socket" => libc::SYS_socket,
        "socketpair" => libc::SYS_socketpair,
        "statx" => libc::SYS_statx,
        "symlinkat" => libc::SYS_symlinkat,
        "unlinkat" => libc::SYS_unlinkat,
        "utimensat" => libc::SYS_utimensat,
        "write" => libc::SYS_write,
        #[cfg(target_arch = "x86_64")]
        "arch_prctl" => libc::SYS_arch_prctl,
        "close_range" => libc::SYS_close_range,
        "epoll_create1" => libc::SYS_epoll_create1,
        "eventfd2" => libc::SYS_eventfd2,
        "execve" => libc::SYS_execve,
        "faccessat" => libc::SYS_faccessat,
        "fstatfs" => libc::SYS_fstatfs,
        "getcwd" => libc::SYS_getcwd,
        "membarrier" => libc::SYS_membarrier,
        "memfd_create" => libc::SYS_memfd_create,
        "ppoll" => libc::SYS_ppoll,
        "prlimit64" => libc::SYS_prlimit64,
        "rt_sigaction" => libc::SYS_rt_sigaction,
        "seccomp" => libc::SYS_seccomp,
        "accept4" => libc::SYS_accept4,
        "dup3" => libc::SYS_dup3,
        "kill" => libc::SYS_kill,
        "listen" => libc::SYS_listen,
        "pidfd_open" => libc::SYS_pidfd_open,
        "pipe2" => libc::SYS_pipe2,
        "setpgid" => libc::SYS_setpgid,
        "wait4" => libc::SYS_wait4,
        "waitid" => libc::SYS_waitid,
        "set_tid_address" => libc::SYS_set_tid_address,
        #[cfg(target_arch = "x86_64")]
        "dup2" => libc::SYS_dup2,
        #[cfg(target_arch = "x86_64")]
        "access" => libc::SYS_access,
        #[cfg(target_arch = "x86_64")]
        "mkdir" => libc::SYS_mkdir,
        #[cfg(target_arch = "x86_64")]
        "poll" => libc::SYS_poll,
        #[cfg(target_arch = "x86_64")]
        "readlink" => libc::SYS_readlink,
        #[cfg(target_arch = "x86_64")]
        "epoll_wait" => libc::SYS_epoll_wait,
        #[cfg(target_arch = "x86_64")]
        "renameat" => libc::SYS_renameat,
        _ => return None,
    };
    Some(nr)
}

/// The number of syscall `name` on this architecture: none known on an unsupported one.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) fn number(_name: &str) -> Option<i64> {
    None
}
