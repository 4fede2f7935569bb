//! The secret scanner never panics; whatever the data, a planted value (raw, hex, percent- or
//! base64-encoded, at any offset) is found, and redaction leaves no fragment of it in any view
//! (so not the value either).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::scan::{MIN_FRAGMENT, Scanner, StreamScan};

// The input: one byte for the secret's length, one for the form, one for where to plant it,
// the secret, then the data.
fuzz_target!(|input: &[u8]| {
    let [len, form, at, rest @ ..] = input else {
        return;
    };
    let len = MIN_FRAGMENT + usize::from(*len) % 57; // 8..=64 bytes
    if rest.len() < len {
        return;
    }
    let (secret, data) = rest.split_at(len);
    let s = Scanner::new([secret]);

    // Anything: no panic, and redaction leaves nothing.
    let _ = s.found(data);
    if let Some(clean) = s.redact(data) {
        assert!(s.ranges(&clean).is_empty());
        assert!(!clean.windows(secret.len()).any(|w| w == secret));
    }
    let mut stream = StreamScan::new();
    for chunk in data.chunks(usize::from(*at % 16) + 1) {
        let _ = stream.write(&s, chunk, |_| true);
    }

    // The secret planted in the data in one of its forms.
    let encoded: Vec<u8> = match form % 4 {
        0 => secret.to_vec(),
        1 => secret
            .iter()
            .flat_map(|b| format!("{b:02X}").into_bytes())
            .collect(),
        2 => secret
            .iter()
            .flat_map(|b| format!("%{b:02x}").into_bytes())
            .collect(),
        _ => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .encode(secret)
                .into_bytes()
        }
    };
    let at = usize::from(*at).min(data.len());
    let planted = [&data[..at], &encoded, &data[at..]].concat();
    assert_eq!(s.found(&planted), vec![0]);
    let clean = s.redact(&planted).unwrap_or_default();
    assert!(s.ranges(&clean).is_empty());
    assert!(!clean.windows(secret.len()).any(|w| w == secret));
});
