//! A core module with a custom export, for warden's core-module tests: `transform` prints
//! `transform called` and returns 7.

/// Prints `transform called` to stdout and returns 7.
#[unsafe(no_mangle)]
pub extern "C" fn transform() -> i32 {
    println!("transform called");
    7
}
