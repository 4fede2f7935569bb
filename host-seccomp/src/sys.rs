//! The crate's only direct system calls: asking the kernel whether it can filter syscalls
//! (installing the filter itself is seccompiler's `apply_filter_all_threads`), and passing a
//! signal on to a child process (`warden learn` to its learning run, which must end through
//! its own signal handling to leave an exit record).
//!
//! This module is the one place `unsafe` is allowed in the crate: `prctl` and `syscall` are
//! C-variadic FFI functions, and `kill` an FFI function, so calling them is `unsafe` even with
//! plain integer arguments.
//! Each block below passes only integers or a pointer to a live local, and the kernel writes
//! nothing back through any pointer.
#![allow(unsafe_code)]

use std::io;

/// The calling thread's seccomp mode (`SECCOMP_MODE_DISABLED`, `_STRICT` or `_FILTER`), from
/// `prctl(PR_GET_SECCOMP)`.
///
/// # Errors
/// `EINVAL` when the kernel was built without seccomp.
pub(crate) fn seccomp_mode() -> io::Result<u32> {
    // SAFETY: PR_GET_SECCOMP takes no further arguments and reads or writes no memory; the
    // trailing zeros fill the variadic slots the kernel ignores for this option.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(rc)
        .map_err(|_| io::Error::other("prctl(PR_GET_SECCOMP) returned a negative mode"))
}

/// Sends `signal` to the process `pid`, as `kill(2)` does.
///
/// # Errors
/// `pid` does not fit a `pid_t`, or the kernel refused (`ESRCH`: no such process; `EPERM`).
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    if pid <= 0 {
        // 0 and negative pids name process groups, never one child.
        return Err(io::Error::other("not a single process id"));
    }
    // SAFETY: kill takes two integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the kernel supports filter return value `action` (e.g. `SECCOMP_RET_KILL_PROCESS`,
/// Linux 4.14+; `SECCOMP_RET_LOG`, 4.14+), from `seccomp(SECCOMP_GET_ACTION_AVAIL)`.
///
/// # Errors
/// `EOPNOTSUPP` for an action the kernel does not know; `ENOSYS`, `EINVAL` or `EPERM` when the
/// `seccomp` syscall itself is unavailable (an old kernel, or an outer filter refusing it).
pub(crate) fn action_available(action: u32) -> io::Result<()> {
    let action: u32 = action;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 through the pointer, which points to the
    // local `action`, alive and initialised for the whole call; flags must be 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
