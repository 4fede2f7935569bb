//! The wasm guest programs of `guests/`, built and ready to run.
//!
//! warden's tests and benches need real guests to run: well-behaved ones (`hello`, `fs`, `env`,
//! `probe`), hostile ones (`membomb`, `spin`, `flood`, `recurse`, `escape`) and ones with custom
//! exports (`component-export`, `reactor`). They live in `guests/`, a cargo workspace of their
//! own since they build for wasm targets. This crate's build script builds that workspace for
//! `wasm32-wasip1` (core modules) and `wasm32-wasip2` (components), into `guests/` under the
//! root target directory, and this crate exports the absolute path of every built `.wasm` as a
//! constant: `NAME_P1` for the core module, `NAME_P2` for the component. Depend on it as a
//! dev-dependency and write, say, `warden_guest_artifacts::HELLO_P2`.
//!
//! The benchmarks compare wasm with native code, so a few guests (`hello`, `bench-twins`) are
//! also built natively for the host, from the same source and without `target-cpu=native`:
//! `NAME_NATIVE` is the absolute path of that executable. `bench-twins` is built with the
//! guests' `twins` profile (optimised for speed) both ways.
//!
//! Building needs the two wasm targets: `rustup target add wasm32-wasip1 wasm32-wasip2`.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
