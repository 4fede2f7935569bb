//! Probes what the sandbox provides.
//!
//! ```text
//! probe clock     `wall=SECS` (since the UNIX epoch), then `mono_ns=N` across a fixed busy loop
//! probe random    `random=HEX`: 16 random bytes as 32 hex digits
//! probe stdin     `stdin=N bytes`, then stdin echoed back
//! probe args ...  each argument, argv[0] included, one a line
//! probe exit N    exits with code N
//! ```

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Iterations of the busy loop timed by `probe clock`: a few milliseconds of work.
const SPINS: u64 = 20_000_000;

const USAGE: &str = "usage: probe clock | random | stdin | args | exit N";

fn clock() -> io::Result<()> {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(io::Error::other)?;
    println!("wall={}", wall.as_secs());
    // A fixed amount of work, not a wait for time to pass: under a frozen clock that
    // wait would never end.
    let start = Instant::now();
    let mut spins = 0u64;
    for _ in 0..SPINS {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
    println!("mono_ns={}", start.elapsed().as_nanos());
    Ok(())
}

fn random() -> io::Result<()> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("random={hex}");
    Ok(())
}

fn stdin() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input)?;
    let mut out = io::stdout().lock();
    writeln!(out, "stdin={} bytes", input.len())?;
    out.write_all(&input)?;
    out.flush()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let result = match rest.as_slice() {
        ["clock"] => clock(),
        ["random"] => random(),
        ["stdin"] => stdin(),
        ["args", ..] => {
            for arg in &args {
                println!("{arg}");
            }
            Ok(())
        }
        ["exit", code] => match code.parse::<i32>() {
            Ok(code) => std::process::exit(code),
            Err(_) => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {:?}: {e}", e.kind());
            ExitCode::from(1)
        }
    }
}
