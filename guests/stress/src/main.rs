//! Drives the host functions a grant allows at their extremes, printing what it achieved, so
//! warden's tests can check that no ordinary workload trips the host's seccomp filter.
//!
//! ```text
//! stress read PATH           reads PATH whole: `read N bytes sum S`
//! stress write PATH MIB      writes MIB MiB in one write, then again in 64 KiB writes:
//!                            `wrote N bytes`
//! stress open-many PATH N    opens PATH N times, keeping every file open, until N or an
//!                            error: `opened K` then `stopped: KIND` or `stopped: none`
//! stress ls DIR              lists DIR: `entries N`
//! stress paths ROOT          opens, stats and lists paths with `.`, `..` and a trailing `/`
//!                            under ROOT (which holds `file.txt` and `sub/inner.txt`), one
//!                            line each: `NAME: ok …` or `NAME: err KIND`
//! stress mutate ROOT         mkdir, write, append, rename, link, symlink, readlink, truncate,
//!                            set times (by descriptor and by path), sync, unlink and rmdir
//!                            under ROOT: `STEP: ok` each
//! stress misc PATH          the rarer calls on a writable file PATH: advise, allocate, set
//!                            flags, seek, set size, sleep, yield: `STEP: ok` each
//! stress grow                grows linear memory 1 MiB at a time until refused:
//!                            `grew N MiB`
//! stress clocks              wall and monotonic time and resolution:
//!                            `wall=S wall_res_ns=N mono_ns=N mono_res_ns=N`
//! stress random MIB          MIB MiB of random bytes in one call: `random N bytes nonzero K`
//! stress stdin               reads stdin to its end: `stdin N bytes`
//! ```
//!
//! Components only (wasm32-wasip2):
//!
//! ```text
//! stress handles N           N `fields`, N pollables (polled together) and N output streams,
//!                            all alive at once: `fields N pollables N ready N streams N`
//! stress http-get URL        one GET: `status S bytes N`
//! stress http-post URL MIB   one POST with a MIB MiB body: `status S body TEXT`
//! stress http-many URL N     N GETs one after the other: `ok K of N`
//! stress tcp ADDR KIB        connects, writes KIB KiB, closes its write half, reads the echo
//!                            to its end: `sent N received M`
//! ```
//!
//! An error the host returns is a line of output (`…: err KIND` or `error: …`) and exit 1, not
//! a trap: the tests tell a refusal from a kill by the exit code.

use std::fs;
use std::io::{self, Read, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: stress read PATH | write PATH MIB | open-many PATH N | ls DIR | paths ROOT \
     | mutate ROOT | misc PATH | grow | clocks | random MIB | stdin | handles N | http-get URL \
     | http-post URL MIB | http-many URL N | tcp ADDR KIB";

const MIB: usize = 1024 * 1024;

/// The size of the small writes of `write`: what a buffered writer hands the host.
const SMALL_WRITE: usize = 64 * 1024;

fn number(s: &str) -> io::Result<usize> {
    s.parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("not a number: {s}")))
}

/// A byte pattern that is not all zeros, so a short or misplaced read shows in the sum.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn read(path: &str) -> io::Result<()> {
    let bytes = fs::read(path)?;
    let sum = bytes
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    println!("read {} bytes sum {sum}", bytes.len());
    Ok(())
}

fn write(path: &str, mib: usize) -> io::Result<()> {
    let data = pattern(mib * MIB);
    fs::write(path, &data)?;
    let mut f = fs::OpenOptions::new().append(true).open(path)?;
    for chunk in data.chunks(SMALL_WRITE) {
        f.write_all(chunk)?;
    }
    f.sync_all()?;
    let len = fs::metadata(path)?.len();
    println!("wrote {len} bytes");
    Ok(())
}

fn open_many(path: &str, n: usize) -> io::Result<()> {
    let mut files = Vec::new();
    let mut stopped = String::from("none");
    while files.len() < n {
        match fs::File::open(path) {
            Ok(f) => files.push(f),
            Err(e) => {
                stopped = format!("{:?}: {e}", e.kind());
                break;
            }
        }
    }
    println!("opened {}", files.len());
    println!("stopped: {stopped}");
    // Each still works, and closing them all goes through the host too.
    let mut byte = [0u8; 1];
    if let Some(f) = files.last_mut() {
        f.read_exact(&mut byte)?;
    }
    drop(files);
    // With every file closed, opening works again.
    fs::File::open(path)?;
    println!("reopened");
    Ok(())
}

fn ls(dir: &str) -> io::Result<()> {
    let n = fs::read_dir(dir)?.try_fold(0usize, |n, e| e.map(|_| n + 1))?;
    println!("entries {n}");
    Ok(())
}

fn show<T>(name: &str, r: io::Result<T>, ok: impl FnOnce(T) -> String) {
    match r {
        Ok(v) => println!("{name}: ok {}", ok(v)),
        Err(e) => println!("{name}: err {:?}", e.kind()),
    }
}

fn paths(root: &str) -> io::Result<()> {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).trim().to_string();
    let kind = |m: fs::Metadata| if m.is_dir() { "dir" } else { "file" }.to_string();
    let count = |d: fs::ReadDir| d.count().to_string();
    show(
        "read-dotdot",
        fs::read(format!("{root}/sub/../file.txt")),
        text,
    );
    show(
        "read-dot",
        fs::read(format!("{root}/./sub/./inner.txt")),
        text,
    );
    show(
        "read-dotdot-twice",
        fs::read(format!("{root}/sub/../sub/../sub/inner.txt")),
        text,
    );
    show(
        "read-trailing-slash",
        fs::read(format!("{root}/file.txt/")),
        text,
    );
    show(
        "stat-trailing-slash",
        fs::metadata(format!("{root}/sub/")),
        kind,
    );
    show("stat-dotdot", fs::metadata(format!("{root}/sub/..")), kind);
    show("stat-dot", fs::metadata(format!("{root}/sub/.")), kind);
    show(
        "stat-file-dotdot",
        fs::metadata(format!("{root}/sub/../file.txt")),
        kind,
    );
    show(
        "ls-trailing-slash",
        fs::read_dir(format!("{root}/sub/")),
        count,
    );
    show("ls-dotdot", fs::read_dir(format!("{root}/sub/..")), count);
    show("ls-dot", fs::read_dir(format!("{root}/.")), count);
    show(
        "open-dir-dotdot",
        fs::File::open(format!("{root}/sub/..")),
        |_| String::new(),
    );
    // Up and out of the grant: refused by the sandbox, as an error, not a kill.
    show(
        "read-escape",
        fs::read(format!("{root}/sub/../../../etc/passwd")),
        text,
    );
    Ok(())
}

fn step(name: &str, r: io::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) => {
            println!("{name}: ok");
            Ok(())
        }
        Err(e) => {
            println!("{name}: err {:?}: {e}", e.kind());
            Err(e)
        }
    }
}

/// `symlink(2)` through wasi-libc, which resolves `path` against the preopened folders (std's
/// own `symlink_path` is unstable).
fn symlink(target: &str, path: &str) -> io::Result<()> {
    unsafe extern "C" {
        fn symlink(target: *const std::ffi::c_char, path: *const std::ffi::c_char) -> i32;
    }
    let c = |s: &str| std::ffi::CString::new(s).map_err(io::Error::other);
    let (target, path) = (c(target)?, c(path)?);
    // SAFETY: both are NUL-terminated strings that outlive the call.
    match unsafe { symlink(target.as_ptr(), path.as_ptr()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `utimensat(AT_FDCWD, path, NULL, flags)` through wasi-libc: sets a path's times to now
/// (`path_filestat_set_times`), following a final symlink unless `nofollow`.
fn touch(path: &str, nofollow: bool) -> io::Result<()> {
    /// wasi-libc's `AT_FDCWD` and `AT_SYMLINK_NOFOLLOW`.
    const AT_FDCWD: i32 = -2;
    const AT_SYMLINK_NOFOLLOW: i32 = 1;
    unsafe extern "C" {
        fn utimensat(fd: i32, path: *const std::ffi::c_char, times: *const u8, flags: i32) -> i32;
    }
    let path = std::ffi::CString::new(path).map_err(io::Error::other)?;
    let flags = if nofollow { AT_SYMLINK_NOFOLLOW } else { 0 };
    // SAFETY: `path` is NUL-terminated and outlives the call; NULL times means "now".
    match unsafe { utimensat(AT_FDCWD, path.as_ptr(), std::ptr::null(), flags) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn mutate(root: &str) -> io::Result<()> {
    let dir = format!("{root}/m");
    let a = format!("{dir}/a");
    let b = format!("{dir}/b");
    let c = format!("{dir}/c");
    let link = format!("{dir}/link");
    step("mkdir", fs::create_dir(&dir))?;
    step("mkdir-nested", fs::create_dir_all(format!("{dir}/x/y/z")))?;
    step("write", fs::write(&a, "hello"))?;
    step(
        "append",
        fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .and_then(|mut f| f.write_all(b" world")),
    )?;
    step("rename", fs::rename(&a, &b))?;
    step("rename-dotdot", fs::rename(&b, format!("{dir}/x/../b2")))?;
    step("rename-back", fs::rename(format!("{dir}/b2"), &b))?;
    step("hard-link", fs::hard_link(&b, &c))?;
    step("symlink", symlink("b", &link))?;
    step(
        "readlink",
        fs::read_link(&link).and_then(|t| {
            if t.as_os_str() == "b" {
                Ok(())
            } else {
                Err(io::Error::other(format!("link points at {}", t.display())))
            }
        }),
    )?;
    step(
        "read-through-symlink",
        fs::read_to_string(&link).and_then(|s| {
            if s == "hello world" {
                Ok(())
            } else {
                Err(io::Error::other(format!("read {s:?}")))
            }
        }),
    )?;
    step(
        "truncate",
        fs::OpenOptions::new()
            .write(true)
            .open(&c)
            .and_then(|f| f.set_len(3)),
    )?;
    step(
        "set-times",
        fs::File::options()
            .write(true)
            .open(&b)
            .and_then(|f| f.set_modified(std::time::UNIX_EPOCH)),
    )?;
    step(
        "sync",
        fs::OpenOptions::new()
            .write(true)
            .open(&b)
            .and_then(|f| f.sync_all().and_then(|()| f.sync_data())),
    )?;
    step("touch", touch(&b, false))?;
    step("touch-dir", touch(&dir, false))?;
    step("touch-through-symlink", touch(&link, false))?;
    step("touch-symlink", touch(&link, true))?;
    step("stat-symlink", fs::symlink_metadata(&link).map(drop))?;
    step("ls", fs::read_dir(&dir).map(drop))?;
    step("unlink-symlink", fs::remove_file(&link))?;
    step("unlink", fs::remove_file(&c))?;
    step("remove-tree", fs::remove_dir_all(&dir))?;
    Ok(())
}

fn misc(path: &str) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
        fn posix_fallocate(fd: i32, offset: i64, len: i64) -> i32;
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    }
    /// wasi-libc's `POSIX_FADV_SEQUENTIAL`, `F_GETFL`, `F_SETFL` and `O_APPEND`.
    const FADV_SEQUENTIAL: i32 = 2;
    const F_GETFL: i32 = 3;
    const F_SETFL: i32 = 4;
    const O_APPEND: i32 = 1;
    let errno = |e: i32| match e {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    };
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let fd = f.as_raw_fd();
    // SAFETY: `fd` is an open descriptor for the whole block.
    step(
        "advise",
        errno(unsafe { posix_fadvise(fd, 0, 0, FADV_SEQUENTIAL) }),
    )?;
    // Preview 1 has fd_allocate (wasmtime answers "not supported"); an error is fine here.
    // SAFETY: as above.
    let allocated = errno(unsafe { posix_fallocate(fd, 0, 4096) });
    println!(
        "allocate: {}",
        if allocated.is_ok() { "ok" } else { "refused" }
    );
    // SAFETY: as above; F_GETFL/F_SETFL take and return an int.
    step("set-flags", unsafe {
        let flags = fcntl(fd, F_GETFL);
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_APPEND) != 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    })?;
    step("append-write", f.write_all(b"0123456789"))?;
    step("seek", f.seek(SeekFrom::Start(2)).map(drop))?;
    step("tell", f.stream_position().map(drop))?;
    step("set-size", f.set_len(1 << 20))?;
    step("sleep", {
        std::thread::sleep(std::time::Duration::from_millis(20));
        Ok(())
    })?;
    step("yield", {
        std::thread::yield_now();
        Ok(())
    })?;
    step("metadata", f.metadata().map(drop))?;
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn grow() -> io::Result<()> {
    // Print once first, so that stdout's buffer exists before memory runs out.
    println!("growing");
    let pages_per_mib = MIB / 65536;
    let mut mib = 0usize;
    while core::arch::wasm32::memory_grow(0, pages_per_mib) != usize::MAX {
        mib += 1;
    }
    println!("grew {mib} MiB");
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn grow() -> io::Result<()> {
    Err(io::Error::other("grow needs wasm32"))
}

#[cfg(target_env = "p1")]
mod clocks {
    //! Preview 1's clock calls, which std does not expose the resolution of.
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn clock_res_get(id: u32, resolution: *mut u64) -> u16;
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }

    pub const REALTIME: u32 = 0;
    pub const MONOTONIC: u32 = 1;

    pub fn now(id: u32) -> Result<u64, u16> {
        let mut t = 0u64;
        // SAFETY: `t` is a valid place for the host to write a u64.
        match unsafe { clock_time_get(id, 1, &mut t) } {
            0 => Ok(t),
            e => Err(e),
        }
    }

    pub fn resolution(id: u32) -> Result<u64, u16> {
        let mut r = 0u64;
        // SAFETY: `r` is a valid place for the host to write a u64.
        match unsafe { clock_res_get(id, &mut r) } {
            0 => Ok(r),
            e => Err(e),
        }
    }
}

#[cfg(target_env = "p1")]
fn clocks() -> io::Result<()> {
    use clocks::{MONOTONIC, REALTIME, now, resolution};
    let err = |e: u16| io::Error::other(format!("errno {e}"));
    let wall = now(REALTIME).map_err(err)?;
    let wall_res = resolution(REALTIME).map_err(err)?;
    let mono = now(MONOTONIC).map_err(err)?;
    let mono_res = resolution(MONOTONIC).map_err(err)?;
    println!(
        "wall={} wall_res_ns={wall_res} mono_ns={mono} mono_res_ns={mono_res}",
        wall / 1_000_000_000
    );
    Ok(())
}

#[cfg(target_env = "p2")]
fn clocks() -> io::Result<()> {
    use wasip2::clocks::{monotonic_clock, wall_clock};
    let wall = wall_clock::now();
    let wall_res = wall_clock::resolution();
    let mono = monotonic_clock::now();
    let mono_res = monotonic_clock::resolution();
    println!(
        "wall={} wall_res_ns={} mono_ns={mono} mono_res_ns={mono_res}",
        wall.seconds,
        u64::from(wall_res.nanoseconds) + wall_res.seconds * 1_000_000_000
    );
    Ok(())
}

#[cfg(not(any(target_env = "p1", target_env = "p2")))]
fn clocks() -> io::Result<()> {
    Err(io::Error::other("clocks needs a wasi target"))
}

fn random(mib: usize) -> io::Result<()> {
    let mut bytes = vec![0u8; mib * MIB];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let nonzero = bytes.iter().filter(|&&b| b != 0).count();
    println!("random {} bytes nonzero {nonzero}", bytes.len());
    Ok(())
}

fn stdin() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input)?;
    println!("stdin {} bytes", input.len());
    Ok(())
}

#[cfg(target_env = "p2")]
mod p2 {
    use std::io::{self, Read, Write};
    use warden_sdk::http::Request;
    use wasip2::clocks::monotonic_clock;
    use wasip2::http::types::Fields;

    pub fn handles(n: usize) -> io::Result<()> {
        let fields: Vec<Fields> = (0..n)
            .map(|i| {
                let f = Fields::new();
                let _ = f.append("x-stress", i.to_string().as_bytes());
                f
            })
            .collect();
        let pollables: Vec<_> = (0..n)
            .map(|_| monotonic_clock::subscribe_duration(0))
            .collect();
        let refs: Vec<_> = pollables.iter().collect();
        let ready = wasip2::io::poll::poll(&refs);
        let streams: Vec<_> = (0..n).map(|_| wasip2::cli::stdout::get_stdout()).collect();
        println!(
            "fields {} pollables {} ready {} streams {}",
            fields.len(),
            pollables.len(),
            ready.len(),
            streams.len()
        );
        Ok(())
    }

    fn failed(e: warden_sdk::Error) -> io::Error {
        io::Error::other(e.to_string())
    }

    pub fn http_get(url: &str) -> io::Result<()> {
        let r = Request::get(url).send().map_err(failed)?;
        println!("status {} bytes {}", r.status, r.body.len());
        Ok(())
    }

    pub fn http_post(url: &str, mib: usize) -> io::Result<()> {
        let r = Request::post(url)
            .body(super::pattern(mib * super::MIB))
            .send()
            .map_err(failed)?;
        println!("status {} body {}", r.status, r.text().trim());
        Ok(())
    }

    pub fn http_many(url: &str, n: usize) -> io::Result<()> {
        let mut ok = 0;
        for _ in 0..n {
            match Request::get(url).send() {
                Ok(r) if r.is_success() => ok += 1,
                Ok(r) => println!("status {}", r.status),
                Err(e) => println!("error: {e}"),
            }
        }
        println!("ok {ok} of {n}");
        Ok(())
    }

    pub fn tcp(addr: &str, kib: usize) -> io::Result<()> {
        let mut s = std::net::TcpStream::connect(addr)?;
        let data = super::pattern(kib * 1024);
        s.write_all(&data)?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut back = Vec::new();
        s.read_to_end(&mut back)?;
        println!("sent {} received {}", data.len(), back.len());
        Ok(())
    }
}

fn run(args: &[&str]) -> Option<io::Result<()>> {
    let r = match args {
        ["read", path] => read(path),
        ["write", path, mib] => number(mib).and_then(|m| write(path, m)),
        ["open-many", path, n] => number(n).and_then(|n| open_many(path, n)),
        ["ls", dir] => ls(dir),
        ["paths", root] => paths(root),
        ["mutate", root] => mutate(root),
        ["misc", path] => misc(path),
        ["grow"] => grow(),
        ["clocks"] => clocks(),
        ["random", mib] => number(mib).and_then(random),
        ["stdin"] => stdin(),
        #[cfg(target_env = "p2")]
        ["handles", n] => number(n).and_then(p2::handles),
        #[cfg(target_env = "p2")]
        ["http-get", url] => p2::http_get(url),
        #[cfg(target_env = "p2")]
        ["http-post", url, mib] => number(mib).and_then(|m| p2::http_post(url, m)),
        #[cfg(target_env = "p2")]
        ["http-many", url, n] => number(n).and_then(|n| p2::http_many(url, n)),
        #[cfg(target_env = "p2")]
        ["tcp", addr, kib] => number(kib).and_then(|k| p2::tcp(addr, k)),
        _ => return None,
    };
    Some(r)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match run(&args) {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            println!("error: {:?}: {e}", e.kind());
            ExitCode::from(1)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    };
    let _ = io::stdout().flush();
    code
}
