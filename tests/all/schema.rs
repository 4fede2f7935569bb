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

/// `warden schema --audit` prints the committed schema of one audit record, and every record
/// real runs write (start, allow and deny decisions with their machine fields, a limit, an
/// exit) is valid against it. Control: the same records with one field broken are not, so
/// the check is not vacuous.
#[test]
fn the_audit_schema_is_committed_and_every_record_of_real_runs_fits_it() {
    let out = warden().args(["schema", "--audit"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/audit.schema.json"
    ))
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "docs/audit.schema.json is not what `warden schema --audit` prints; regenerate it \
         with `cargo run -p warden-runtime --bin warden -- schema --audit > \
         docs/audit.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();

    let s = crate::util::Scene::new();
    s.file("data/a.txt", "a");
    let m = s.manifest(
        "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n\n\
         [limits]\nmemory = \"8MiB\"\n",
    );
    let mut records = Vec::new();
    for (module, args) in [
        (crate::guests::FS_P1, &["write", "/data/b.txt", "x"][..]),
        (crate::guests::FS_P2, &["write", "/data/b.txt", "x"][..]),
        (crate::guests::MEMBOMB_P1, &[][..]),
    ] {
        let r = s.run(Some(&m), module, args);
        records.extend(r.audit);
    }
    let kinds: std::collections::BTreeSet<&str> =
        records.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["decision", "exit", "limit", "start"],
        "{records:#?}"
    );
    let deny = records
        .iter()
        .find(|r| r["decision"] == "deny")
        .expect("a refused write");
    assert_eq!(deny["op"], "path_open", "{deny}");
    assert_eq!(deny["access"], "write", "{deny}");
    for r in &records {
        let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{r}: {errors:?}");
    }
    // Control: a broken record of each kind is refused by the schema.
    for r in &records {
        let mut broken = r.clone();
        match r["event"].as_str() {
            Some("decision") => broken["decision"] = "maybe".into(),
            Some("exit") => broken["code"] = "zero".into(),
            Some("limit") => broken["limit"] = 7.into(),
            _ => {
                broken.as_object_mut().unwrap().remove("run");
            }
        }
        assert!(!validator.is_valid(&broken), "{broken}");
    }
}
