//! Test-only (feature `test-escape`): a host function through which a guest makes the host
//! do what an escaped guest would, so tests can check that the lockdown stops it.
//!
//! `warden_test::escape(what: i32) -> i32` performs, from inside the host:
//! - `0`: run a program (`/bin/sh -c 'touch $WARDEN_TEST_ESCAPE_MARKER'`): fork and exec;
//! - `1`: open a TCP socket to 127.0.0.1:9;
//! - `2`: create the file `$WARDEN_TEST_ESCAPE_MARKER`;
//! - `3`: compile new machine code (a fresh module): executable memory.
//!
//! It returns 0 when the action went through (no lockdown stopped it).

#[cfg(not(debug_assertions))]
compile_error!(
    "the `test-escape` feature simulates sandbox escapes and must never be in a release build"
);

use wasmtime::{Caller, Linker};

/// The import module name of the escape hatch.
pub(crate) const MODULE: &str = "warden_test";

/// `(module (func (export "f")))`: one function, so compiling it maps executable code.
const ONE_FUNCTION: &[u8] = &[
    0, b'a', b's', b'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, b'f', 0, 0, 10,
    4, 1, 2, 0, 0x0b,
];

fn marker() -> std::path::PathBuf {
    std::env::var_os("WARDEN_TEST_ESCAPE_MARKER")
        .map(Into::into)
        .unwrap_or_else(|| std::env::temp_dir().join("warden-test-escape-marker"))
}

pub(crate) fn add_to_linker<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "escape",
        |caller: Caller<'_, T>, what: i32| -> wasmtime::Result<i32> {
            let ok = match what {
                0 => std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg("touch \"$0\"")
                    .arg(marker())
                    .status()
                    .is_ok_and(|s| s.success()),
                1 => {
                    // Refused or not, the socket was made: that is the escape.
                    let _ = std::net::TcpStream::connect(("127.0.0.1", 9));
                    true
                }
                2 => std::fs::write(marker(), "escaped").is_ok(),
                3 => wasmtime::Module::new(caller.engine(), ONE_FUNCTION).is_ok(),
                _ => false,
            };
            Ok(if ok { 0 } else { 1 })
        },
    )?;
    Ok(())
}
