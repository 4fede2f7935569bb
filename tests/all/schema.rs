//! `warden schema`: the manifest's JSON Schema, as committed in docs/warden.schema.json.

use crate::util::warden;

#[test]
fn warden_schema_prints_the_committed_schema() {
    let out = warden().arg("schema").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/warden.schema.json"
    ))
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "docs/warden.schema.json is not what `warden schema` prints; regenerate it with \
         `cargo run -p warden-cli --bin warden -- schema > docs/warden.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}
