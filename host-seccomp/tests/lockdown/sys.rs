//! The syscalls the lockdown tests make on purpose, forbidden ones included, through libc.
//!
//! `unsafe` is allowed here and only here in the tests: libc's functions are FFI. Every call
//! passes integers, null pointers the kernel accepts for that call, or pointers to live locals
//! and NUL-terminated `CStr`s; none of these calls can corrupt the test's own memory (the
//! mappings they create are never written through from Rust).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `execve(path, [path], [])`.
pub fn execve(path: &CStr) -> io::Error {
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: `path` is NUL-terminated, `argv` and `envp` are null-terminated arrays of live
    // pointers; on success the process image is replaced, so nothing afterwards matters.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `fork()`: glibc makes it a `clone` without `CLONE_THREAD`. The child exits at once.
pub fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the child calls only `_exit`, which is async-signal-safe, so forking a
    // multi-threaded process is sound.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: `_exit` ends the child without running any of the parent's state.
        unsafe { libc::_exit(0) };
    }
    check(pid.into()).map(|p| p as libc::pid_t)
}

/// `ptrace(PTRACE_TRACEME)`.
pub fn ptrace_traceme() -> io::Result<libc::c_long> {
    // SAFETY: PTRACE_TRACEME ignores its pid, address and data arguments.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_TRACEME,
            0,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    })
}

/// `socket(domain, SOCK_STREAM, 0)`, closed again if it was created.
pub fn socket(domain: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) }.into())?;
    // SAFETY: `fd` was just returned by `socket` and is owned by no one else.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// `open(path, flags, 0o600)` (an `openat` on Linux), closed again if it was opened.
pub fn open(path: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and lives for the call; the mode is an integer.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags, 0o600 as libc::c_uint) }.into())?;
    // SAFETY: `fd` was just returned by `open` and is owned by no one else.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// `mmap` of one anonymous private page with `prot`. The page is leaked.
pub fn mmap(prot: libc::c_int) -> io::Result<*mut libc::c_void> {
    // SAFETY: a fresh anonymous mapping at an address the kernel chooses touches no existing
    // memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p)
    }
}

/// `mprotect(page, 4096, prot)` on a page from [`mmap`].
pub fn mprotect(page: *mut libc::c_void, prot: libc::c_int) -> io::Result<()> {
    // SAFETY: `page` is a whole page this test mapped and nothing else uses.
    check(unsafe { libc::mprotect(page, 4096, prot) }.into()).map(drop)
}

/// `bpf(BPF_MAP_CREATE, NULL, 0)`.
pub fn bpf() -> io::Result<libc::c_long> {
    // SAFETY: a null attribute pointer with size 0 is rejected by the kernel, never read.
    check(unsafe { libc::syscall(libc::SYS_bpf, 0, std::ptr::null::<u8>(), 0) })
}

/// `io_uring_setup(1, NULL)`.
pub fn io_uring_setup() -> io::Result<libc::c_long> {
    // SAFETY: a null params pointer is rejected by the kernel (EFAULT), never written.
    check(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null::<u8>()) })
}

/// `seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &SECCOMP_RET_ALLOW)`.
pub fn seccomp() -> io::Result<libc::c_long> {
    let action: u32 = libc::SECCOMP_RET_ALLOW;
    // SAFETY: the kernel reads one u32 through a pointer to a live local.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    })
}

/// `prctl(option, arg2)`.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<libc::c_long> {
    // SAFETY: used with options taking an integer (PR_SET_DUMPABLE) or a pointer to a
    // NUL-terminated string that outlives the call (PR_SET_NAME); the rest are ignored.
    check(unsafe { libc::prctl(option, arg2, 0, 0, 0) }.into())
}

/// `ioctl(fd, request, &mut int)`.
pub fn ioctl(fd: libc::c_int, request: libc::Ioctl) -> io::Result<libc::c_long> {
    let mut arg: libc::c_int = 0;
    // SAFETY: `arg` is a live local the kernel may read or write as an int; the requests used
    // here (TIOCSTI, FIONBIO) take at most an int-sized argument.
    check(unsafe { libc::ioctl(fd, request, &mut arg as *mut libc::c_int) }.into())
}

/// `futex(&word, op, 0, …)` on a local word: a wake or requeue that wakes no one.
pub fn futex(op: libc::c_int) -> io::Result<libc::c_long> {
    let word: u32 = 0;
    let other: u32 = 0;
    // SAFETY: both futex words are live locals; with nobody waiting on them the kernel only
    // reads them.
    check(unsafe {
        libc::syscall(
            libc::SYS_futex,
            &word as *const u32,
            op,
            1,
            1,
            &other as *const u32,
            0,
        )
    })
}

/// A syscall by number with every argument zero (null pointers, no flags). Only for syscalls
/// the filter must kill before the kernel looks at the arguments; were one let through, the
/// kernel would see null pointers and zero lengths and refuse it.
pub fn zero_args(nr: libc::c_long) -> io::Result<libc::c_long> {
    // SAFETY: all arguments are zero: no pointer the kernel could write through is passed.
    check(unsafe { libc::syscall(nr, 0, 0, 0, 0, 0, 0) })
}
