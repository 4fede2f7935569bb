//! The filter, installed for real: each test starts this test binary again as a child process
//! (`HOST_SECCOMP_CHILD` names what the child does), the child installs a profile and makes
//! one syscall, and the parent checks how the child ended. A filter is never installed in the
//! test harness's own process: it cannot be removed, and it would apply to every other test.

#[path = "lockdown/sys.rs"]
mod sys;

use std::ffi::CString;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use host_seccomp::{Group, Mode, Profile};

/// Set in the child; names the case it runs.
const CHILD_ENV: &str = "HOST_SECCOMP_CHILD";
/// A scratch folder the parent made for cases that open files.
const DIR_ENV: &str = "HOST_SECCOMP_DIR";
/// What a child prints when the syscall it was meant to die of returned.
const SURVIVED: &str = "survived";
/// What a child prints once its profile is installed.
const LOCKED: &str = "locked down";

/// The child's side: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    run_child(&case);
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn lock(groups: &[Group], mode: Mode) {
    if let Err(e) = Profile::new(groups).install(mode) {
        say(&format!("install failed: {e}"));
        std::process::exit(99);
    }
    say(LOCKED);
}

/// The child's cases. Each installs a profile, makes its syscall(s), reports and exits; a
/// forbidden syscall should end it with SIGSYS before it reports.
fn run_child(case: &str) -> ! {
    let dir = std::env::var(DIR_ENV).unwrap_or_else(|_| "/tmp".into());
    let file = CString::new(format!("{dir}/file.txt")).unwrap_or_default();
    let dev_null = c"/dev/null";
    let bin_true = c"/bin/true";
    match case {
        // --- the base profile still runs code -------------------------------------------------
        "base_writes_stdout" => {
            lock(&[], Mode::Enforce);
            say("hello from under the lockdown");
            let page = sys::mmap(libc::PROT_READ | libc::PROT_WRITE);
            say(&format!("rw mmap: {}", page.is_ok()));
            let named = sys::prctl(libc::PR_SET_NAME, c"locked".as_ptr() as libc::c_ulong);
            say(&format!("prctl(PR_SET_NAME): {}", named.is_ok()));
            let woke = sys::futex(libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG);
            say(&format!("futex wake: {}", woke.is_ok()));
        }
        "base_read_only_open_is_refused" => {
            lock(&[], Mode::Enforce);
            let e = sys::open(dev_null, libc::O_RDONLY).err();
            say(&format!("errno {:?}", e.and_then(|e| e.raw_os_error())));
        }
        // --- forbidden under the base profile -------------------------------------------------
        "execve" => {
            lock(&[], Mode::Enforce);
            let e = sys::execve(bin_true);
            say(&format!("{SURVIVED}: {e}"));
        }
        "fork" => {
            lock(&[], Mode::Enforce);
            let r = sys::fork();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "fork_with_threads" => {
            lock(&[Group::Threads], Mode::Enforce);
            let r = sys::fork();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "thread_without_threads_group" => {
            lock(&[], Mode::Enforce);
            let r = std::thread::spawn(|| 7).join();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "ptrace" => {
            lock(&[], Mode::Enforce);
            let r = sys::ptrace_traceme();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "socket" => {
            lock(&[], Mode::Enforce);
            let r = sys::socket(libc::AF_INET);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "open_write" => {
            lock(&[], Mode::Enforce);
            let r = sys::open(&file, libc::O_WRONLY | libc::O_CREAT);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "mmap_exec" => {
            lock(&[], Mode::Enforce);
            let r = sys::mmap(libc::PROT_READ | libc::PROT_EXEC);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "mprotect_exec" => {
            let page = sys::mmap(libc::PROT_READ | libc::PROT_WRITE);
            lock(&[], Mode::Enforce);
            let r = page.and_then(|p| sys::mprotect(p, libc::PROT_READ | libc::PROT_EXEC));
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "bpf" => {
            lock(&[], Mode::Enforce);
            let r = sys::bpf();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "io_uring_setup" => {
            lock(&[], Mode::Enforce);
            let r = sys::io_uring_setup();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "seccomp" => {
            lock(&[], Mode::Enforce);
            let r = sys::seccomp();
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "prctl" => {
            lock(&[], Mode::Enforce);
            let r = sys::prctl(libc::PR_SET_DUMPABLE, 0);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "futex_requeue" => {
            lock(&[], Mode::Enforce);
            let r = sys::futex(libc::FUTEX_CMP_REQUEUE | libc::FUTEX_PRIVATE_FLAG);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        // --- groups ---------------------------------------------------------------------------
        "threads_spawn" => {
            lock(&[Group::Threads], Mode::Enforce);
            let r = std::thread::spawn(|| 7).join();
            say(&format!("joined {r:?}"));
        }
        "file_read" => {
            lock(&[Group::FileRead], Mode::Enforce);
            let r = sys::open(dev_null, libc::O_RDONLY);
            say(&format!("read-only open: {r:?}"));
            let r = sys::open(dev_null, libc::O_WRONLY);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "file_read_truncate" => {
            lock(&[Group::FileRead], Mode::Enforce);
            let r = sys::open(&file, libc::O_RDONLY | libc::O_TRUNC);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "file_write" => {
            lock(&[Group::FileWrite], Mode::Enforce);
            let r = sys::open(&file, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC);
            say(&format!("write open: {r:?}"));
        }
        "stdin_tiocsti" => {
            lock(&[Group::Stdin], Mode::Enforce);
            let r = sys::ioctl(0, libc::TIOCSTI);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        "network_inet" => {
            lock(&[Group::Network], Mode::Enforce);
            let r = sys::socket(libc::AF_INET);
            say(&format!("inet socket: {r:?}"));
            let r = sys::socket(libc::AF_PACKET);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        // --- Mode::Log ------------------------------------------------------------------------
        "log_mode" => {
            lock(&[], Mode::Log);
            let r = sys::socket(libc::AF_INET);
            say(&format!("socket under log: {r:?}"));
            let r = sys::prctl(libc::PR_SET_DUMPABLE, 1);
            say(&format!("prctl under log: {r:?}"));
        }
        other if other.starts_with("zero_args:") => {
            let nr: libc::c_long = other["zero_args:".len()..].parse().unwrap_or(-1);
            lock(&[], Mode::Enforce);
            let r = sys::zero_args(nr);
            say(&format!("{SURVIVED}: {r:?}"));
        }
        other => say(&format!("unknown case {other}")),
    }
    std::process::exit(0)
}

/// Runs `case` in a child process and returns how it ended.
fn spawn(case: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("host-seccomp-{}-{case}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .env(DIR_ENV, &dir)
        .output()
        .expect("the child starts");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The child was killed by SIGSYS after installing its profile, without reporting that it
/// survived.
fn assert_killed(case: &str) -> Output {
    let out = spawn(case);
    let text = stdout(&out);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "{case}: expected death by SIGSYS, got {:?}; stdout: {text}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(LOCKED),
        "{case} died before its lockdown: {text}"
    );
    assert!(!text.contains(SURVIVED), "{case}: {text}");
    out
}

/// The child exited 0, having printed `expected`.
fn assert_exits_with(case: &str, expected: &str) {
    let out = spawn(case);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{case}: expected exit 0, got {:?}; stdout: {text}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(expected),
        "{case}: `{expected}` not in: {text}"
    );
}

#[test]
fn this_system_supports_seccomp() {
    host_seccomp::supported().expect("the tests need a kernel with seccomp filters");
}

#[test]
fn the_base_profile_still_writes_stdout_and_exits_0() {
    assert_exits_with("base_writes_stdout", "hello from under the lockdown");
    let out = spawn("base_writes_stdout");
    let text = stdout(&out);
    assert!(text.contains("rw mmap: true"), "{text}");
    assert!(text.contains("prctl(PR_SET_NAME): true"), "{text}");
    assert!(text.contains("futex wake: true"), "{text}");
}

#[test]
fn the_base_profile_refuses_a_read_only_open_with_eacces() {
    assert_exits_with(
        "base_read_only_open_is_refused",
        &format!("errno Some({})", libc::EACCES),
    );
}

#[test]
fn execve_is_killed() {
    assert_killed("execve");
}

#[test]
fn fork_is_killed() {
    assert_killed("fork");
}

#[test]
fn clone_without_clone_thread_is_killed_even_with_the_threads_group() {
    assert_killed("fork_with_threads");
}

#[test]
fn starting_a_thread_without_the_threads_group_is_killed() {
    assert_killed("thread_without_threads_group");
}

/// The rest of the never-allowed classes, each made with zero arguments: the filter must
/// kill on the syscall number alone. `vfork` is left out: were it let through, the child
/// would run on the parent's stack.
#[test]
fn every_other_never_allowed_syscall_is_killed() {
    let never = [
        ("execveat", libc::SYS_execveat),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("mount", libc::SYS_mount),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("keyctl", libc::SYS_keyctl),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("kexec_load", libc::SYS_kexec_load),
        ("init_module", libc::SYS_init_module),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
    ];
    for (name, nr) in never {
        let out = assert_killed(&format!("zero_args:{nr}"));
        assert!(out.status.signal().is_some(), "{name}");
    }
}

#[test]
fn ptrace_is_killed() {
    assert_killed("ptrace");
}

#[test]
fn socket_without_network_is_killed() {
    assert_killed("socket");
}

#[test]
fn openat_for_writing_without_file_write_is_killed() {
    assert_killed("open_write");
}

#[test]
fn executable_mmap_is_killed() {
    assert_killed("mmap_exec");
}

#[test]
fn mprotect_to_executable_is_killed() {
    assert_killed("mprotect_exec");
}

#[test]
fn bpf_is_killed() {
    assert_killed("bpf");
}

#[test]
fn io_uring_setup_is_killed() {
    assert_killed("io_uring_setup");
}

#[test]
fn seccomp_is_killed() {
    assert_killed("seccomp");
}

#[test]
fn prctl_other_than_set_name_is_killed() {
    assert_killed("prctl");
}

#[test]
fn futex_requeue_is_killed() {
    assert_killed("futex_requeue");
}

#[test]
fn the_threads_group_starts_threads_through_the_clone3_fallback() {
    assert_exits_with("threads_spawn", "joined Ok(7)");
}

#[test]
fn file_read_opens_read_only_but_kills_a_write_open() {
    let out = assert_killed("file_read");
    let text = stdout(&out);
    assert!(text.contains("read-only open: Ok(())"), "{text}");
}

#[test]
fn file_read_kills_a_read_only_open_that_truncates() {
    assert_killed("file_read_truncate");
}

#[test]
fn file_write_opens_for_writing() {
    assert_exits_with("file_write", "write open: Ok(())");
}

#[test]
fn stdin_allows_no_ioctl_but_tcgets() {
    assert_killed("stdin_tiocsti");
}

#[test]
fn network_allows_inet_sockets_only() {
    let out = assert_killed("network_inet");
    let text = stdout(&out);
    assert!(text.contains("inet socket: Ok(())"), "{text}");
}

#[test]
fn log_mode_reports_instead_of_killing() {
    assert_exits_with("log_mode", "socket under log: Ok(())");
}
