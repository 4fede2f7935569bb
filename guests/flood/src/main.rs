//! Hostile guest: writes a 64 KiB line of `A`s to stdout, over and over, forever. Exits with 3
//! as soon as a write fails.

use std::io::Write;

const LINE: usize = 64 * 1024;

fn main() {
    let mut line = vec![b'A'; LINE];
    line[LINE - 1] = b'\n';
    let mut out = std::io::stdout().lock();
    loop {
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            std::process::exit(3);
        }
    }
}
