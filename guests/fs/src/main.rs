//! A small file tool, to drive warden's filesystem grants from inside the sandbox.
//!
//! ```text
//! fs read PATH         the file's bytes, to stdout
//! fs write PATH TEXT   create or truncate PATH, write TEXT: `wrote N bytes`
//! fs append PATH TEXT  append TEXT, creating PATH if missing: `appended N bytes`
//! fs ls DIR            entry names, sorted, one a line
//! fs mkdir PATH        `ok`
//! fs rm PATH           remove a file: `ok`
//! fs stat PATH         `file N` (its size) or `dir`
//! fs symlink TARGET PATH  make PATH a symlink to TARGET: `ok`
//! fs link SRC DST      hard link: `ok`
//! fs rename A B        `ok`
//! fs setlen PATH N     truncate or extend (sparse) PATH to N bytes: `ok`
//! fs rmdir PATH        remove an empty folder: `ok`
//! fs stdin             read stdin to its end: `read N bytes`
//! fs churn PATH        print `churning`, then rewrite PATH's first 20 bytes with an
//!                      ever-growing counter (20 digits), forever
//! fs seq 'OP ARGS' …   run each quoted op (split at spaces) in turn; stops at the first
//!                      error or bad usage
//! ```
//!
//! An io error prints `error: KIND: MESSAGE` to stderr (KIND is the `io::ErrorKind`'s `Debug`)
//! and exits with 1; bad usage prints the usage line to stderr and exits with 2.

use std::fs;
use std::io::{self, Write};
use std::process::ExitCode;

const USAGE: &str = "usage: fs read PATH | write PATH TEXT | append PATH TEXT | ls DIR | mkdir PATH | rm PATH | stat PATH | symlink TARGET PATH | link SRC DST | rename A B | setlen PATH N | rmdir PATH | stdin | churn PATH | seq 'OP ARGS'...";

/// A writer that never stops: every write leaves PATH holding a whole 20-digit number.
fn churn(path: &str) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    println!("churning");
    let mut n: u64 = 1;
    loop {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{n:020}").as_bytes())?;
        n += 1;
    }
}

fn run(args: &[String]) -> Option<io::Result<()>> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["read", path] => fs::read(path).and_then(|bytes| {
            let mut out = io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()
        }),
        ["write", path, text] => {
            fs::write(path, text).map(|()| println!("wrote {} bytes", text.len()))
        }
        ["append", path, text] => fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map(|()| println!("appended {} bytes", text.len())),
        ["ls", dir] => fs::read_dir(dir)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map(|mut names| {
                names.sort();
                for name in names {
                    println!("{name}");
                }
            }),
        ["mkdir", path] => fs::create_dir(path).map(|()| println!("ok")),
        ["rm", path] => fs::remove_file(path).map(|()| println!("ok")),
        ["stat", path] => fs::metadata(path).map(|m| {
            if m.is_dir() {
                println!("dir");
            } else if m.is_file() {
                println!("file {}", m.len());
            } else {
                println!("other");
            }
        }),
        #[allow(deprecated)] // the one portable way to make a symlink on every wasi target
        ["symlink", target, path] => fs::soft_link(target, path).map(|()| println!("ok")),
        ["link", src, dst] => fs::hard_link(src, dst).map(|()| println!("ok")),
        ["rename", a, b] => fs::rename(a, b).map(|()| println!("ok")),
        ["setlen", path, n] => {
            let n: u64 = n.parse().ok()?;
            fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(n))
                .map(|()| println!("ok"))
        }
        ["rmdir", path] => fs::remove_dir(path).map(|()| println!("ok")),
        ["stdin"] => {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut io::stdin(), &mut bytes).map(|n| println!("read {n} bytes"))
        }
        ["churn", path] => churn(path),
        // `stat` of PREFIX0 .. PREFIX{N-1}: N distinct operations without N arguments.
        ["stat-each", prefix, n] => n
            .parse::<usize>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            .and_then(|n| {
                (0..n).try_for_each(|i| fs::metadata(format!("{prefix}{i}")).map(drop))?;
                println!("statted {n}");
                Ok(())
            }),
        ["seq", ops @ ..] => {
            for op in ops {
                let words: Vec<String> = op.split(' ').map(str::to_string).collect();
                match run(&words)? {
                    Ok(()) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            Ok(())
        }
        _ => return None,
    };
    Some(result)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("error: {:?}: {e}", e.kind());
            ExitCode::from(1)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
