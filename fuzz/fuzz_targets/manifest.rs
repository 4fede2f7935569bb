//! The manifest parser never panics: any text is a manifest or a `ManifestError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warden::Manifest::from_str_at(text, Path::new("<fuzz>"), Path::new("/nonexistent"));
    }
});
