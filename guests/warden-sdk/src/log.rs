//! Log lines on stderr, one per message: `level: message`.
//!
//! stderr is where warden's manifests expect a connector's diagnostics (`[stdio] stderr`),
//! and it counts against the run's output limit like stdout.

use std::fmt::Display;
use std::io::Write as _;

/// Writes `info: message`.
pub fn info(message: impl Display) {
    line("info", message);
}

/// Writes `warn: message`.
pub fn warn(message: impl Display) {
    line("warn", message);
}

/// Writes `error: message`.
pub fn error(message: impl Display) {
    line("error", message);
}

fn line(level: &str, message: impl Display) {
    // One write per line, so lines from a log and from `eprintln!` never interleave; a
    // closed stderr is not worth failing a connector for.
    let text = format!("{level}: {message}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
