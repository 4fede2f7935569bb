//! `warden run`'s grant flags → a manifest: any argument list parses or is refused, never a
//! panic; and when the flags amount to a policy, the manifest `--print-manifest` prints for
//! them loads back to the same grants, so saving it changes nothing.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use warden_cli::quick;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    flags: quick::QuickFlags,
}

// The input: the arguments, separated by NUL bytes.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args = std::iter::once("warden").chain(text.split('\0'));
    let Ok(cli) = Cli::try_parse_from(args) else {
        return;
    };
    let Ok(merged) = quick::merge(None, &cli.flags) else {
        return;
    };
    let Ok(policy) = merged.policy() else {
        return;
    };
    let saved = merged.to_toml(None, &[]);
    let again = warden::Manifest::from_str_at(&saved, Path::new("saved.toml"), Path::new("/"))
        .unwrap_or_else(|e| panic!("the printed manifest does not load: {e}\n{saved}"));
    let again = warden::Policy::from_manifest(again);
    assert_eq!(
        policy.grants_json(),
        again.grants_json(),
        "the printed manifest grants something else:\n{saved}"
    );
});
