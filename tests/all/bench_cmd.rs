//! `warden bench`: hello world under warden against its native build.

use crate::guests;
use crate::util::{Scene, finish, warden};
use serde_json::Value;

/// `warden bench [EXTRA…] HELLO_P1 --native HELLO_NATIVE -n 3 -- nhi`.
fn bench_hello(extra: &[&str]) -> crate::util::Outcome {
    let mut cmd = warden();
    cmd.arg("bench").args(extra).arg(guests::HELLO_P1).args([
        "--native",
        guests::HELLO_NATIVE,
        "-n",
        "3",
        "--",
        "nhi",
    ]);
    finish(cmd, None)
}

/// The cells after the row's name, split at runs of two or more spaces.
fn cells<'a>(table: &'a str, row: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("{row} ")))
        .unwrap_or_else(|| panic!("no {row:?} row in:\n{table}"));
    line[row.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn bench_prints_both_sides_and_their_ratios() {
    let r = bench_hello(&[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.starts_with("3 runs each, alternating"), "{r:#?}");
    assert!(
        r.stdout
            .contains(&format!("native: {}", guests::HELLO_NATIVE)),
        "{r:#?}"
    );
    assert!(r.stdout.contains(" run "), "the warden command: {r:#?}");
    for row in ["native", "warden"] {
        let c = cells(&r.stdout, row);
        assert_eq!(c.len(), 4, "{row}: {c:?}");
        for time in &c[..3] {
            assert!(
                time.ends_with(" ms") || time.ends_with(" µs") || time.ends_with(" s"),
                "{row}: {time:?}"
            );
        }
        assert!(c[3].ends_with("iB"), "{row}: {:?}", c[3]);
    }
    let ratios = cells(&r.stdout, "warden/native");
    assert_eq!(ratios.len(), 4, "{ratios:?}");
    for ratio in &ratios[..3] {
        let x: f64 = ratio
            .strip_suffix('x')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a ratio: {ratio:?}"));
        assert!(x > 0.0, "{ratio}");
    }
    // Nothing of the runs' own output comes through.
    assert!(!r.stdout.contains("hello, nhi"), "{r:#?}");
}

#[test]
fn bench_json_parses() {
    let r = bench_hello(&["--json", "--warmup", "0"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["runs"], 3);
    assert_eq!(v["warmup"], 0);
    assert_eq!(v["native"]["command"][0], guests::HELLO_NATIVE);
    let warden_cmd = v["warden"]["command"].as_array().expect("warden command");
    assert_eq!(warden_cmd[1], "run", "{v:#}");
    assert_eq!(warden_cmd.last().expect("args"), "nhi", "{v:#}");
    for side in ["native", "warden"] {
        assert_eq!(
            v[side]["wall_ms"].as_array().map(Vec::len),
            Some(3),
            "{v:#}"
        );
        for stat in ["wall_median_ms", "wall_p90_ms", "cpu_median_ms"] {
            assert!(
                v[side][stat].as_f64().is_some_and(|x| x > 0.0),
                "{side} {stat}: {v:#}"
            );
        }
        assert!(
            v[side]["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0),
            "{v:#}"
        );
    }
    for ratio in ["wall_median", "wall_p90", "cpu_median"] {
        assert!(
            v["ratio"][ratio].as_f64().is_some_and(|x| x > 0.0),
            "{ratio}: {v:#}"
        );
    }
}

#[test]
fn bench_refuses_bad_input_in_one_line() {
    let run = |args: &[&str]| {
        let mut cmd = warden();
        cmd.arg("bench").args(args);
        finish(cmd, None)
    };
    run(&["no-such.wasm", "--native", guests::HELLO_NATIVE])
        .assert_one_line_error("no-such.wasm: module not found");
    run(&[guests::HELLO_P1, "--native", "no-such-program --flag"])
        .assert_one_line_error("native command not found: no-such-program");
    run(&[guests::HELLO_P1, "--native", "'unclosed"]).assert_one_line_error("--native: unclosed");
    run(&[guests::HELLO_P1, "--native", "false"])
        .assert_one_line_error("the native command failed (exit code 1) in warm-up run 1");
    run(&[guests::PROBE_P1, "--native", "true", "--", "exit", "3"])
        .assert_one_line_error("the warden command failed (exit code 3)");
    run(&[
        guests::HELLO_P1,
        "--native",
        "true",
        "--stdin",
        "/no/such/input",
    ])
    .assert_one_line_error("--stdin /no/such/input");
}

#[test]
fn bench_warns_when_the_guest_cannot_read_the_stdin_given() {
    let s = Scene::new();
    let input = s.file("input.txt", "some input\n");
    let mut cmd = warden();
    cmd.arg("bench")
        .arg(guests::HELLO_P1)
        .args(["--native", "true", "-n", "1", "--warmup", "0", "--stdin"])
        .arg(&input);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(
        r.stderr.contains("the manifest does not grant stdin"),
        "{r:#?}"
    );
    // Granted, no warning.
    let m = s.manifest("[stdio]\nstdin = \"inherit\"\n");
    let mut cmd = warden();
    cmd.arg("bench")
        .arg("--manifest")
        .arg(&m)
        .arg(guests::HELLO_P1)
        .args(["--native", "true", "-n", "1", "--warmup", "0", "--stdin"])
        .arg(&input);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(!r.stderr.contains("warning"), "{r:#?}");
}

/// `examples/report-connector/` (config, data, an empty out folder, manifest) copied into a
/// scene, so that neither side writes into the repository.
fn report_connector_scene() -> (Scene, std::path::PathBuf) {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/report-connector");
    let s = Scene::new();
    std::fs::copy(example.join("report.toml"), s.path("report.toml")).unwrap();
    std::fs::copy(
        example.join("report.warden.toml"),
        s.path("report.warden.toml"),
    )
    .unwrap();
    s.mkdir("data");
    for csv in ["october.csv", "november.csv"] {
        std::fs::copy(
            example.join("data").join(csv),
            s.path(&format!("data/{csv}")),
        )
        .unwrap();
    }
    s.mkdir("out");
    let manifest = s.path("report.warden.toml");
    (s, manifest)
}

#[test]
fn bench_runs_the_example_connector_against_its_native_twin() {
    let (s, manifest) = report_connector_scene();
    let native_out = s.mkdir("native-out");
    let native = format!(
        "{} {} {} {}",
        guests::REPORT_CONNECTOR_NATIVE,
        s.path("report.toml").display(),
        s.path("data").display(),
        native_out.display()
    );
    let mut cmd = warden();
    cmd.env("REGION", "ignored-by-the-manifest")
        .arg("bench")
        .arg("--manifest")
        .arg(&manifest)
        .arg(guests::REPORT_CONNECTOR_P1)
        .args(["--native", &native, "-n", "3", "--warmup", "1", "--json"]);
    let r = finish(cmd, None);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["native"]["command"][0], guests::REPORT_CONNECTOR_NATIVE);
    for side in ["native", "warden"] {
        assert!(
            v[side]["wall_median_ms"].as_f64().is_some_and(|x| x > 0.0),
            "{side}: {v:#}"
        );
    }
    assert!(v["ratio"]["wall_median"].as_f64().is_some_and(|x| x > 0.0));

    // Both twins did the same work: the connector under its manifest wrote to the granted out
    // folder, the native twin to the folder it was given, and the reports agree, except for
    // the region, which the guest sees from its manifest and the native twin from warden's
    // environment.
    let wasm = std::fs::read_to_string(s.path("out/report.txt")).unwrap();
    let native = std::fs::read_to_string(native_out.join("report.txt")).unwrap();
    assert!(wasm.starts_with("Monthly payouts (eu-west)\n"), "{wasm}");
    assert!(
        native.starts_with("Monthly payouts (ignored-by-the-manifest)\n"),
        "{native}"
    );
    let body = |r: &str| r.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&wasm), body(&native));
    assert!(wasm.contains("grand total 599.75"), "{wasm}");
}
