//! File reads written the way a connector author would write them, with the crates they would
//! reach for, so that warden's tests run real third-party code paths and not only its own test
//! tools.
//!
//! ```text
//! corpus-rust bufread PATH      std::fs::File behind a 64 KiB BufReader, line by line:
//!                               `N lines, M bytes, fnv1a64 HEX`
//! corpus-rust json PATH         a config file parsed with serde_json into typed structs:
//!                               `NAME: K endpoints, retries R, weights W` then one line an
//!                               endpoint
//! corpus-rust stream PATH       (components) the file read through a wasi:filesystem input
//!                               stream, waiting on its pollable with wasi:io/poll before each
//!                               read: `N bytes through a stream, fnv1a64 HEX`
//! corpus-rust stream-copy SRC DST
//!                               (components) SRC read through an input stream, written to
//!                               DST (created or truncated) through an output stream, each
//!                               write after `check-write` and the stream's pollable:
//!                               `copied N bytes`
//! ```
//!
//! An error prints `corpus-rust: WHAT: DETAIL` to stderr (DETAIL for std errors is the
//! `io::ErrorKind`'s `Debug`, for wasi:filesystem the `error-code`'s name) and exits with 1; bad
//! usage exits with 2.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;

const USAGE: &str =
    "usage: corpus-rust bufread PATH | json PATH | stream PATH | stream-copy SRC DST";

/// The FNV-1a 64-bit hash, folded in as bytes arrive (the C corpus's `sum` uses the same).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn bufread(path: &str) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("open {path}: {:?}", e.kind()))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let (mut lines, mut bytes, mut hash) = (0u64, 0u64, Fnv::new());
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("read {path}: {:?}", e.kind()))?;
        if n == 0 {
            break;
        }
        lines += u64::from(line.ends_with(b"\n"));
        bytes += n as u64;
        hash.update(&line);
    }
    Ok(format!(
        "{lines} lines, {bytes} bytes, fnv1a64 {:016x}",
        hash.0
    ))
}

/// A connector's configuration, as the connector's author would type it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    name: String,
    #[serde(default)]
    retries: u32,
    endpoints: Vec<Endpoint>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Endpoint {
    url: String,
    weight: f64,
    #[serde(default)]
    tags: Vec<String>,
}

fn json(path: &str) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("open {path}: {:?}", e.kind()))?;
    let config: Config =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| format!("parse {path}: {e}"))?;
    let weights: f64 = config.endpoints.iter().map(|e| e.weight).sum();
    let mut out = format!(
        "{}: {} endpoints, retries {}, weights {weights}",
        config.name,
        config.endpoints.len(),
        config.retries
    );
    for e in &config.endpoints {
        out.push_str(&format!("\n{} {} [{}]", e.url, e.weight, e.tags.join(",")));
    }
    Ok(out)
}

#[cfg(target_env = "p2")]
mod streams {
    //! wasi:filesystem through the `wasip2` crate: preopens, descriptors and streams.

    use super::Fnv;
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};
    use wasip2::io::poll::poll;
    use wasip2::io::streams::StreamError;

    /// How much one `read` asks for.
    const CHUNK: u64 = 64 * 1024;

    /// Opens `path` under the preopened folder that holds it (the longest guest path that is a
    /// prefix of it, component by component), as std does for paths.
    fn open(path: &str, open: OpenFlags, flags: DescriptorFlags) -> Result<Descriptor, String> {
        let mut best: Option<(Descriptor, String)> = None;
        for (dir, guest) in get_directories() {
            let inside = path == guest
                || path
                    .strip_prefix(guest.as_str())
                    .is_some_and(|rest| rest.starts_with('/') || guest.ends_with('/'));
            if inside && best.as_ref().is_none_or(|(_, b)| guest.len() > b.len()) {
                best = Some((dir, guest));
            }
        }
        let (dir, guest) =
            best.ok_or_else(|| format!("open {path}: no preopened folder holds it"))?;
        let rest = path[guest.len()..].trim_start_matches('/');
        let rest = if rest.is_empty() { "." } else { rest };
        dir.open_at(PathFlags::SYMLINK_FOLLOW, rest, open, flags)
            .map_err(|e| format!("open {path}: {}", e.name()))
    }

    pub fn read(path: &str) -> Result<String, String> {
        let file = open(path, OpenFlags::empty(), DescriptorFlags::READ)?;
        let stream = file
            .read_via_stream(0)
            .map_err(|e| format!("read-via-stream {path}: {}", e.name()))?;
        let (mut bytes, mut hash) = (0u64, Fnv::new());
        loop {
            let ready = stream.subscribe();
            poll(&[&ready]);
            match stream.read(CHUNK) {
                Ok(chunk) => {
                    bytes += chunk.len() as u64;
                    hash.update(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!("read {path}: {}", e.to_debug_string()));
                }
            }
        }
        Ok(format!(
            "{bytes} bytes through a stream, fnv1a64 {:016x}",
            hash.0
        ))
    }

    pub fn copy(src: &str, dst: &str) -> Result<String, String> {
        let from = open(src, OpenFlags::empty(), DescriptorFlags::READ)?;
        let to = open(
            dst,
            OpenFlags::CREATE | OpenFlags::TRUNCATE,
            DescriptorFlags::WRITE,
        )?;
        let input = from
            .read_via_stream(0)
            .map_err(|e| format!("read-via-stream {src}: {}", e.name()))?;
        let output = to
            .write_via_stream(0)
            .map_err(|e| format!("write-via-stream {dst}: {}", e.name()))?;
        let failed = |what: &str, e: StreamError| match e {
            StreamError::Closed => format!("{what}: stream closed"),
            StreamError::LastOperationFailed(e) => format!("{what}: {}", e.to_debug_string()),
        };
        let mut copied = 0u64;
        loop {
            let ready = input.subscribe();
            poll(&[&ready]);
            let mut chunk = match input.read(CHUNK) {
                Ok(chunk) => chunk,
                Err(StreamError::Closed) => break,
                Err(e) => return Err(failed(&format!("read {src}"), e)),
            };
            while !chunk.is_empty() {
                let room = loop {
                    let n = output
                        .check_write()
                        .map_err(|e| failed(&format!("check-write {dst}"), e))?;
                    if n > 0 {
                        break n;
                    }
                    let writable = output.subscribe();
                    poll(&[&writable]);
                };
                let take = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                output
                    .write(&chunk[..take])
                    .map_err(|e| failed(&format!("write {dst}"), e))?;
                copied += take as u64;
                chunk.drain(..take);
            }
        }
        output
            .blocking_flush()
            .map_err(|e| failed(&format!("flush {dst}"), e))?;
        Ok(format!("copied {copied} bytes"))
    }
}

#[cfg(not(target_env = "p2"))]
mod streams {
    //! Core modules have no wasi:filesystem streams.

    pub fn read(_: &str) -> Result<String, String> {
        Err("stream: wasi:filesystem streams need the wasm32-wasip2 build".into())
    }

    pub fn copy(_: &str, _: &str) -> Result<String, String> {
        read("")
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["bufread", path] => bufread(path),
        ["json", path] => json(path),
        ["stream", path] => streams::read(path),
        ["stream-copy", src, dst] => streams::copy(src, dst),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corpus-rust: {e}");
            ExitCode::FAILURE
        }
    }
}
