//! Environment: only what the manifest declares, never warden's own.

use crate::guests;
use crate::util::{Scene, both};

#[test]
fn without_a_manifest_the_environment_is_empty() {
    let s = Scene::new();
    for (kind, env) in both(guests::ENV_P1, guests::ENV_P2) {
        let r = s.run_with(None, env, &[], |c| {
            c.env("AWS_SECRET_ACCESS_KEY", "AKIA-LEAK");
        });
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "count=0\n", "{kind}");
    }
}

#[test]
fn only_declared_variables_are_visible() {
    for (kind, env) in both(guests::ENV_P1, guests::ENV_P2) {
        let s = Scene::new();
        let m = s.manifest(
            "[env]\nREGION = \"eu\"\nAPI_BASE = { from-host = \"WARDEN_TEST_API_BASE\" }\n",
        );
        let r = s.run_with(Some(&m), env, &[], |c| {
            c.env("WARDEN_TEST_API_BASE", "https://api.test")
                .env("GITHUB_TOKEN", "ghp-LEAK");
        });
        assert_eq!(r.code, 0, "{kind}: {r:#?}");
        assert_eq!(
            r.stdout, "API_BASE=https://api.test\nREGION=eu\ncount=2\n",
            "{kind}"
        );
        // Decisions name the variables but never their values.
        let allowed: Vec<&str> = r
            .events("decision")
            .iter()
            .filter(|d| d["capability"] == "env")
            .map(|d| d["target"].as_str().unwrap())
            .collect();
        assert_eq!(allowed, ["REGION", "API_BASE"], "{kind}");
        let log = serde_json::to_string(&r.audit).unwrap();
        assert!(
            !log.contains("https://api.test"),
            "{kind}: value leaked into the audit log"
        );

        let r = s.run_with(Some(&m), env, &["get", "GITHUB_TOKEN"], |c| {
            c.env("WARDEN_TEST_API_BASE", "x")
                .env("GITHUB_TOKEN", "ghp-LEAK");
        });
        assert_eq!(r.code, 1, "{kind}: {r:#?}");
        assert_eq!(r.stderr, "GITHUB_TOKEN is not set\n");
    }
}

#[test]
fn an_unset_from_host_variable_is_a_start_error_with_its_position() {
    let s = Scene::new();
    let m = s.manifest("[env]\nTOKEN = { from-host = \"WARDEN_TEST_SURELY_UNSET\" }\n");
    let r = s.run_with(Some(&m), guests::ENV_P1, &[], |c| {
        c.env_remove("WARDEN_TEST_SURELY_UNSET");
    });
    // The manifest's header takes 4 lines, so [env] is line 5 and TOKEN's value line 6.
    r.assert_one_line_error("test.warden.toml:6:");
    assert!(r.stderr.contains("WARDEN_TEST_SURELY_UNSET"), "{r:#?}");
}
