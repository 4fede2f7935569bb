//! Limits: each ends a hostile guest with its exit code and its audit records.

use crate::guests;
use crate::util::{Scene, both};

#[test]
fn a_memory_bomb_stops_at_the_memory_limit() {
    for (kind, bomb) in both(guests::MEMBOMB_P1, guests::MEMBOMB_P2) {
        let s = Scene::new();
        let m = s.manifest("[limits]\nmemory = \"48MiB\"\n");
        let r = s.run(Some(&m), bomb, &[]);
        assert_eq!(r.code, 121, "{kind}: {r:#?}");
        assert!(
            r.stdout.contains("allocated 16 MiB"),
            "{kind}: it ran first"
        );
        assert!(!r.stdout.contains("allocated 48 MiB"), "{kind}: {r:#?}");
        let limits = r.events("limit");
        assert_eq!(limits.len(), 1, "{kind}: {r:#?}");
        assert_eq!(limits[0]["limit"], "memory");
        assert_eq!(limits[0]["value"], 48u64 << 20);
        let exit = r.exit();
        assert_eq!(exit["outcome"], "memory-limit");
        assert!(
            exit["peak_memory"].as_u64().unwrap() <= 48 << 20,
            "{kind}: {exit}"
        );
        assert!(r.stderr.contains("memory limit reached"), "{kind}: {r:#?}");
    }
}

#[test]
fn an_infinite_loop_stops_at_the_wall_limit() {
    for (kind, spin) in both(guests::SPIN_P1, guests::SPIN_P2) {
        let s = Scene::new();
        let m = s.manifest("[limits]\nwall = \"300ms\"\n");
        let started = std::time::Instant::now();
        let r = s.run(Some(&m), spin, &[]);
        assert_eq!(r.code, 124, "{kind}: {r:#?}");
        assert_eq!(r.stdout, "spinning\n");
        assert_eq!(r.events("limit")[0]["limit"], "wall");
        assert_eq!(r.exit()["outcome"], "wall-limit");
        // Not a timing assertion on warden's speed: only that the limit, not the test
        // harness, ended the run.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}

#[test]
fn fuel_bounds_the_instructions_a_guest_may_run() {
    for (kind, spin) in both(guests::SPIN_P1, guests::SPIN_P2) {
        let s = Scene::new();
        let m = s.manifest("[limits]\nfuel = 5_000_000\n");
        let r = s.run(Some(&m), spin, &[]);
        assert_eq!(r.code, 122, "{kind}: {r:#?}");
        let exit = r.exit();
        assert_eq!(exit["outcome"], "fuel-limit");
        assert_eq!(exit["fuel_used"], 5_000_000, "{kind}: {exit}");
        assert_eq!(r.events("limit")[0]["limit"], "fuel");
    }
}

#[test]
fn a_well_behaved_guest_reports_the_fuel_it_used() {
    let s = Scene::new();
    let m = s.manifest("[limits]\nfuel = 1_000_000_000\n");
    let r = s.run(Some(&m), guests::HELLO_P1, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    let used = r.exit()["fuel_used"].as_u64().unwrap();
    assert!(used > 0 && used < 1_000_000_000, "{used}");
}

#[test]
fn an_output_flood_stops_at_the_output_limit() {
    for (kind, flood) in both(guests::FLOOD_P1, guests::FLOOD_P2) {
        let s = Scene::new();
        let m = s.manifest("[limits]\noutput = \"1MiB\"\n");
        let r = s.run(Some(&m), flood, &[]);
        assert_eq!(r.code, 120, "{kind}: {r:#?}");
        assert_eq!(
            r.stdout.len(),
            1 << 20,
            "{kind}: exactly the budget is written"
        );
        assert_eq!(r.events("limit")[0]["limit"], "output");
        assert_eq!(r.exit()["outcome"], "output-limit");
    }
}

#[test]
fn deep_recursion_is_a_trap_not_a_crash() {
    for (kind, recurse) in both(guests::RECURSE_P1, guests::RECURSE_P2) {
        let s = Scene::new();
        let r = s.run(None, recurse, &[]);
        assert_eq!(r.code, 123, "{kind}: {r:#?}");
        assert_eq!(r.signal, None, "{kind}: warden itself must not die");
        let exit = r.exit();
        assert_eq!(exit["outcome"], "trap");
        assert!(
            exit["message"]
                .as_str()
                .unwrap()
                .contains("call stack exhausted"),
            "{kind}: {exit}"
        );
        assert!(!r.stderr.contains("panicked"));
    }
}

#[test]
fn the_handles_limit_caps_a_components_live_handles() {
    let s = Scene::new();
    let m = s.manifest("[limits]\nhandles = 1000\n");
    // 2,000 live header-field resources do not fit 1,000 handles: the run ends as the
    // memory limit, with a record naming the handles limit.
    let r = s.run(Some(&m), guests::NET_PROBE_P2, &["hoard 2000 1"]);
    assert_eq!(r.code, 121, "{r:#?}");
    assert!(!r.stdout.contains("hoard: 2000"), "{r:#?}");
    let limits = r.events("limit");
    assert_eq!(limits.len(), 1, "{r:#?}");
    assert_eq!(limits[0]["scope"], "handles");
    assert_eq!(limits[0]["handles"], 1000);
    assert_eq!(r.events("start")[0]["grants"]["limits"]["handles"], 1000);
    // Control: 500 fit the same limit, and 2,000 fit the default.
    let r = s.run(Some(&m), guests::NET_PROBE_P2, &["hoard 500 1"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("hoard: 500"), "{r:#?}");
    let r = s.run(None, guests::NET_PROBE_P2, &["hoard 2000 1"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("hoard: 2000"), "{r:#?}");
}

#[test]
fn a_handles_limit_beyond_the_maximum_is_refused_where_it_is_written() {
    let s = Scene::new();
    let m = s.manifest("[limits]\nhandles = 1_000_000\n");
    let r = s.run(Some(&m), guests::NET_PROBE_P2, &[]);
    r.assert_one_line_error(
        "test.warden.toml:6:11: limits.handles: expected a whole number of handles from 1 to 90000",
    );
    // Control: the maximum itself is accepted.
    let m = s.manifest("[limits]\nhandles = 90000\n");
    let r = s.run(Some(&m), guests::NET_PROBE_P2, &["hoard 10 1"]);
    assert_eq!(r.code, 0, "{r:#?}");
}
