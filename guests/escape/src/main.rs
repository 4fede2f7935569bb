//! Hostile guest: tries to get out of the directory it was granted, given as its first argument.
//!
//! In order, it tries to
//!
//! - `dotdot`: read `D/../../../../../../etc/passwd`;
//! - `absolute`: read `/etc/passwd`;
//! - `symlink`: read `D/link-out/secret.txt`, where the test made `link-out` a symlink that
//!   points outside D;
//! - `create-root`: create `/escape-created.txt`.
//!
//! Each prints `NAME: blocked (KIND)` (the `io::ErrorKind`'s `Debug`) or `NAME: ESCAPED (N
//! bytes)`. Exits with 0 if every attempt was blocked, 1 if any escaped, 2 on bad usage.

use std::fs;
use std::io;
use std::process::ExitCode;

/// What an escaped `create-root` writes.
const PLANTED: &[u8] = b"warden escape test\n";

/// Reads a file, giving its size.
fn read(path: &str) -> io::Result<usize> {
    fs::read(path).map(|bytes| bytes.len())
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: escape GRANTED_DIR");
        return ExitCode::from(2);
    };
    let dir = dir.trim_end_matches('/');
    let attempts = [
        (
            "dotdot",
            read(&format!("{dir}/../../../../../../etc/passwd")),
        ),
        ("absolute", read("/etc/passwd")),
        ("symlink", read(&format!("{dir}/link-out/secret.txt"))),
        (
            "create-root",
            fs::write("/escape-created.txt", PLANTED).map(|()| PLANTED.len()),
        ),
    ];
    let mut escaped = false;
    for (name, attempt) in attempts {
        match attempt {
            Ok(n) => {
                escaped = true;
                println!("{name}: ESCAPED ({n} bytes)");
            }
            Err(e) => println!("{name}: blocked ({:?})", e.kind()),
        }
    }
    if escaped {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
