//! Hostile guest: writes a 64 KiB line of `A`s to stdout, over and over, forever. Exits with 3
//! as soon as a write fails, after saying on stderr how it failed (`write failed: KIND`, the
//! `std::io::ErrorKind`: `BrokenPipe` when the reader has gone).

use std::io::Write;

const LINE: usize = 64 * 1024;

fn main() {
    let mut line = vec![b'A'; LINE];
    line[LINE - 1] = b'\n';
    let mut out = std::io::stdout().lock();
    loop {
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            eprintln!("write failed: {:?}", e.kind());
            std::process::exit(3);
        }
    }
}
