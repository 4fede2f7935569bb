//! The manifest parser's unit tests: every error names the right place and says what was
//! expected.
#![allow(clippy::unwrap_used)]

use super::raw::{format_size, normalise_guest, parse_duration, parse_size};
use super::resolve::{guest_within, line_column, parse};
use super::*;
use std::path::Path;

type Result<T> = std::result::Result<T, ManifestError>;

fn is_uri(s: &str) -> bool {
    super::raw::is_uri(s)
}

fn check_connect(entry: &str) -> std::result::Result<(), String> {
    ConnectRule::parse(entry).map(drop)
}

fn check_url(url: &str) -> std::result::Result<(), String> {
    UrlPrefix::parse(url).map(drop)
}

const SHA: &str = "9F2C000000000000000000000000000000000000000000000000000000000ABC";

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_in(dir: &Path, text: &str) -> Result<Manifest> {
    parse(text, Path::new("test.warden.toml"), dir, &no_env)
}

fn parse_text(text: &str) -> Result<Manifest> {
    parse_in(Path::new("/nonexistent-base"), text)
}

/// Asserts that `text` fails at `line:column` with a message containing `fragment`.
#[track_caller]
fn assert_invalid(result: Result<Manifest>, line: usize, column: usize, fragment: &str) {
    match result {
        Ok(m) => panic!("expected an error, got {m:?}"),
        Err(ManifestError::Invalid {
            path,
            line: l,
            column: c,
            message,
        }) => {
            assert_eq!(path, Path::new("test.warden.toml"));
            assert!(
                message.contains(fragment),
                "message {message:?} does not contain {fragment:?}"
            );
            assert_eq!((l, c), (line, column), "position of {message:?}");
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

#[track_caller]
fn assert_text_invalid(text: &str, line: usize, column: usize, fragment: &str) {
    assert_invalid(parse_text(text), line, column, fragment);
}

const ID: &str = "[identity]\nname = \"conn\"\n";

#[test]
fn full_manifest_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("config.toml"), "x = 1").unwrap();
    let text = format!(
        r#"
[identity]
name = "payments-connector"
id = "spiffe://acme.example/connectors/payments"
owner = "team-payments"

[workload]
module = "payments.wasm"
sha256 = "{SHA}"
args = ["--region", "eu"]
invoke = "transform"

[[files]]
host = "config.toml"
guest = "/config/payments.toml"
access = "read"

[[files]]
host = "data"
guest = "/data/"
access = "read-write"

[env]
ZED = "last-alphabetically-first-in-file"
REGION = "eu"
API_BASE = {{ from-host = "PAYMENTS_API_BASE" }}

[stdio]
stdin = "inherit"
stdout = "null"

[clocks]
wall = true
monotonic = true

[random]
secure = true

[network]
connect = ["api.stripe.com:443", "10.1.0.0/16:5432", "*.svc.example:8080", "[fd00::1]:80", "[fd00::]/8:22", "192.168.1.1:1"]
listen = ["127.0.0.1:8080", "[::1]:0"]
udp = ["10.0.0.53:53"]

[[http]]
url = "https://api.stripe.com/v1/charges"
methods = ["post", "GET"]

[[http]]
url = "http://localhost:8080"

[secrets.zeta]
from = "file:secrets/zeta"

[secrets.stripe]
from = "env:STRIPE_API_KEY"
inject = {{ header = "Authorization", format = "Bearer {{secret}}", url = "https://api.stripe.com/" }}
reveal = true

[limits]
memory = "64MiB"
fuel = 10_000_000_000
wall = "2m"
output = 0
http-requests = 5
egress = "1 KB"
staged-file = "2MiB"
handles = 10_000
"#
    );
    let env = |name: &str| (name == "PAYMENTS_API_BASE").then(|| "https://x".to_owned());
    let m = parse(&text, Path::new("m.toml"), dir.path(), &env).unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let expected = Manifest {
        source: PathBuf::from("m.toml"),
        base_dir: dir.path().to_owned(),
        identity: Identity {
            name: "payments-connector".into(),
            id: "spiffe://acme.example/connectors/payments".into(),
            owner: Some("team-payments".into()),
        },
        workload: Workload {
            module: Some(dir.path().join("payments.wasm")),
            sha256: Some(SHA.to_ascii_lowercase()),
            args: vec!["--region".into(), "eu".into()],
            invoke: Some("transform".into()),
            cwd: None,
        },
        files: vec![
            FileGrant {
                host: root.join("config.toml"),
                guest: "/config/payments.toml".into(),
                access: Access::Read,
                kind: FileKind::File,
            },
            FileGrant {
                host: root.join("data"),
                guest: "/data".into(),
                access: Access::ReadWrite,
                kind: FileKind::Dir,
            },
        ],
        env: vec![
            EnvVar {
                name: "ZED".into(),
                value: "last-alphabetically-first-in-file".into(),
                source: EnvSource::Literal,
            },
            EnvVar {
                name: "REGION".into(),
                value: "eu".into(),
                source: EnvSource::Literal,
            },
            EnvVar {
                name: "API_BASE".into(),
                value: "https://x".into(),
                source: EnvSource::FromHost("PAYMENTS_API_BASE".into()),
            },
        ],
        stdio: Stdio {
            stdin: StdinMode::Inherit,
            stdout: OutputMode::Null,
            stderr: OutputMode::Inherit,
        },
        clocks: Clocks {
            wall: true,
            monotonic: true,
        },
        random: Random { secure: true },
        network: vec![
            ConnectRule::parse("api.stripe.com:443").unwrap(),
            ConnectRule::parse("10.1.0.0/16:5432").unwrap(),
            ConnectRule::parse("*.svc.example:8080").unwrap(),
            ConnectRule::parse("[fd00::1]:80").unwrap(),
            ConnectRule::parse("[fd00::]/8:22").unwrap(),
            ConnectRule::parse("192.168.1.1:1").unwrap(),
        ],
        listen: vec![
            ListenRule::parse("127.0.0.1:8080").unwrap(),
            ListenRule::parse("[::1]:0").unwrap(),
        ],
        udp: vec![UdpRule::parse("10.0.0.53:53").unwrap()],
        http: vec![
            HttpRule {
                url: "https://api.stripe.com/v1/charges".into(),
                prefix: UrlPrefix::parse("https://api.stripe.com/v1/charges").unwrap(),
                methods: vec!["POST".into(), "GET".into()],
            },
            HttpRule {
                url: "http://localhost:8080".into(),
                prefix: UrlPrefix::parse("http://localhost:8080").unwrap(),
                methods: vec!["GET".into()],
            },
        ],
        secrets: vec![
            Secret {
                name: "stripe".into(),
                from: SecretSource::Env("STRIPE_API_KEY".into()),
                inject: Some(Inject {
                    header: "Authorization".into(),
                    format: "Bearer {secret}".into(),
                    url: "https://api.stripe.com/".into(),
                    prefix: UrlPrefix::parse("https://api.stripe.com/").unwrap(),
                }),
                reveal: true,
            },
            Secret {
                name: "zeta".into(),
                from: SecretSource::File(dir.path().join("secrets/zeta")),
                inject: None,
                reveal: false,
            },
        ],
        limits: Limits {
            memory: 64 << 20,
            fuel: Some(10_000_000_000),
            wall: Duration::from_secs(120),
            output: 0,
            http_requests: 5,
            egress: 1000,
            staged_file: 2 << 20,
            handles: 10_000,
        },
    };
    assert_eq!(m, expected);
}

#[test]
fn minimal_manifest_takes_defaults() {
    let m = parse_text(ID).unwrap();
    assert_eq!(m.identity.id, "warden://local/conn");
    assert_eq!(m.identity.owner, None);
    assert_eq!(m.workload, Workload::default());
    assert!(m.files.is_empty() && m.env.is_empty() && m.network.is_empty());
    assert!(m.http.is_empty() && m.secrets.is_empty());
    assert_eq!(m.stdio, Stdio::default());
    assert_eq!(m.stdio.stdin, StdinMode::Null);
    assert_eq!(m.clocks, Clocks::default());
    assert_eq!(m.random, Random::default());
    assert_eq!(m.limits, Limits::default());
    assert_eq!(m.base_dir, Path::new("/nonexistent-base"));
}

#[test]
fn inline_and_dotted_forms_are_accepted() {
    let m = parse_text(
        "identity = { name = \"a1\" }\nclocks.wall = true\nfiles = []\n\
             http = [{ url = \"https://h/\", methods = [\"DELETE\", \"delete\"] }]\n",
    )
    .unwrap();
    assert_eq!(m.identity.name, "a1");
    assert!(m.clocks.wall);
    assert!(!m.clocks.monotonic);
    assert_eq!(m.http[0].methods, vec!["DELETE".to_owned()]);
}

#[test]
fn absolute_module_path_is_kept() {
    let m = parse_text(&format!("{ID}[workload]\nmodule = \"/abs/x.wasm\"\n")).unwrap();
    assert_eq!(m.workload.module, Some(PathBuf::from("/abs/x.wasm")));
}

#[test]
fn empty_text_is_missing_identity() {
    assert_text_invalid("", 1, 1, "missing [identity] table");
    assert_text_invalid("  \n# nothing\n", 1, 1, "missing [identity] table");
    assert_text_invalid(
        "[stdio]\nstdin = \"null\"\n",
        1,
        1,
        "missing [identity] table",
    );
}

#[test]
fn malformed_toml() {
    assert_text_invalid(
        "[identity]\nname = \n",
        2,
        8,
        "string values must be quoted",
    );
    assert_text_invalid("[identity\nname = \"x\"\n", 1, 10, "unclosed table");
    assert_text_invalid(
        "[identity]\nname = \"a\"\nname = \"b\"\n",
        3,
        1,
        "duplicate key",
    );
}

#[test]
fn unknown_key_at_top_level() {
    assert_text_invalid(
        &format!("{ID}\n[colours]\nred = 1\n"),
        4,
        2,
        "unknown key `colours` at the top level; expected one of: identity, workload, files",
    );
    assert_text_invalid(
        "name = \"x\"\n",
        1,
        1,
        "unknown key `name` at the top level",
    );
}

#[test]
fn unknown_key_in_table() {
    assert_text_invalid(
        &format!("{ID}[stdio]\nstdin = \"null\"\n  colour = \"red\"\n"),
        5,
        3,
        "unknown key `colour` in [stdio]; expected one of: stdin, stdout, stderr",
    );
    assert_text_invalid(
        &format!("{ID}[[files]]\nhost = \"/\"\nmode = \"r\"\n"),
        5,
        1,
        "unknown key `mode` in [[files]]; expected one of: host, guest, access",
    );
    assert_text_invalid(
        &format!("{ID}[identity.extra]\n"),
        3,
        11,
        "unknown key `extra` in [identity]",
    );
    assert_text_invalid(
        &format!("{ID}[env]\nA = {{ from-host = \"X\", default = \"y\" }}\n"),
        4,
        24,
        "unknown key `default` in [env.A]; expected `from-host`",
    );
}

#[test]
fn wrong_types() {
    assert_text_invalid(
        &format!("{ID}[clocks]\nwall = \"yes\"\n"),
        4,
        8,
        "clocks.wall: expected true or false, found \"yes\"",
    );
    assert_text_invalid(
        "[identity]\nname = 42\n",
        2,
        8,
        "identity.name: expected a name",
    );
    assert_text_invalid(
        &format!("{ID}[workload]\nargs = [\"a\", 2]\n"),
        4,
        14,
        "workload.args[1]: expected a string, found integer 2",
    );
    assert_text_invalid(
        &format!("stdio = \"inherit\"\n{ID}"),
        1,
        9,
        "stdio: expected a table ([stdio]), found \"inherit\"",
    );
    assert_text_invalid(
        &format!("{ID}[files]\nhost = \"/\"\n"),
        3,
        1,
        "files: expected an array of tables ([[files]]), found a table",
    );
    assert_text_invalid(
        &format!("{ID}[env]\nPORT = 8080\n"),
        4,
        8,
        "env.PORT: expected a string or { from-host = \"NAME\" }, found integer 8080",
    );
    assert_text_invalid(
        &format!("{ID}[stdio]\nstdout = \"file\"\n"),
        4,
        10,
        "stdio.stdout: expected \"inherit\" or \"null\", found \"file\"",
    );
}

#[test]
fn bad_size() {
    assert_text_invalid(
        &format!("{ID}[limits]\nmemory = \"lots\"\n"),
        4,
        10,
        "limits.memory: expected a size such as \"64MiB\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nmemory = \"lots\"\n"),
        4,
        10,
        "found \"lots\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\noutput = \"5mb\"\n"),
        4,
        10,
        "limits.output: expected a size",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\negress = -1\n"),
        4,
        10,
        "limits.egress: expected a size such as \"64MiB\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nmemory = \"32KiB\"\n"),
        4,
        10,
        "limits.memory: expected a size from 64KiB to 16GiB, found \"32KiB\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nmemory = \"17GiB\"\n"),
        4,
        10,
        "from 64KiB to 16GiB",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nmemory = \"99999999999999999999GiB\"\n"),
        4,
        10,
        "expected a size",
    );
}

#[test]
fn sizes_use_the_largest_exact_unit() {
    assert_eq!(format_size(64 << 20), "64 MiB");
    assert_eq!(format_size(1536 << 10), "1536 KiB");
    assert_eq!(format_size(1000), "1000 B");
    assert_eq!(format_size(0), "0 B");
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("64MiB"), Some(64 << 20));
    assert_eq!(parse_size("64 MiB"), Some(64 << 20));
    assert_eq!(parse_size("0B"), Some(0));
    assert_eq!(parse_size("2KB"), Some(2000));
    assert_eq!(parse_size("3GB"), Some(3_000_000_000));
    assert_eq!(parse_size("16GiB"), Some(16 << 30));
    assert_eq!(parse_size("1kib"), None);
    assert_eq!(parse_size("MiB"), None);
    assert_eq!(parse_size("1  MiB"), None);
    assert_eq!(parse_size("1.5MiB"), None);
    assert_eq!(parse_size("-1MiB"), None);
    assert_eq!(parse_size("18446744073709551615GiB"), None);
    let m = parse_text(&format!(
        "{ID}[limits]\nmemory = 65536\noutput = \"0B\"\negress = 0\n"
    ))
    .unwrap();
    assert_eq!(
        (m.limits.memory, m.limits.output, m.limits.egress),
        (65536, 0, 0)
    );
    let m = parse_text(&format!("{ID}[limits]\nmemory = \"16GiB\"\n")).unwrap();
    assert_eq!(m.limits.memory, 16 << 30);
}

#[test]
fn bad_duration() {
    assert_text_invalid(
        &format!("{ID}[limits]\nwall = 30\n"),
        4,
        8,
        "limits.wall: expected a duration such as \"30s\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nwall = 30\n"),
        4,
        8,
        "write e.g. \"30s\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nwall = \"soon\"\n"),
        4,
        8,
        "found \"soon\"",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nwall = \"0s\"\n"),
        4,
        8,
        "above 0 and at most 24h",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nwall = \"25h\"\n"),
        4,
        8,
        "above 0 and at most 24h",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nwall = \"99999999999999999999h\"\n"),
        4,
        8,
        "expected a duration",
    );
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
    assert_eq!(parse_duration("1 h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1d"), None);
    assert_eq!(parse_duration("s"), None);
    let m = parse_text(&format!("{ID}[limits]\nwall = \"24h\"\n")).unwrap();
    assert_eq!(m.limits.wall, Duration::from_secs(86400));
}

#[test]
fn bad_fuel_and_counts() {
    assert_text_invalid(
        &format!("{ID}[limits]\nfuel = 0\n"),
        4,
        8,
        "limits.fuel: expected a positive whole number",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nfuel = \"lots\"\n"),
        4,
        8,
        "limits.fuel: expected a positive whole number",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nhttp-requests = -3\n"),
        4,
        17,
        "limits.http-requests: expected a whole number",
    );
    let m = parse_text(&format!("{ID}[limits]\nhttp-requests = 0\n")).unwrap();
    assert_eq!(m.limits.http_requests, 0);
}

#[test]
fn non_absolute_guest_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"data\"\naccess = \"read\"\n");
    assert_invalid(
        parse_in(dir.path(), &text),
        5,
        9,
        "expected an absolute guest path starting with '/'",
    );
}

#[test]
fn dot_dot_in_guest_path() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("{ID}[[files]]\nhost = \".\"\nguest = \"/data/../etc\"\naccess = \"read\"\n");
    assert_invalid(parse_in(dir.path(), &text), 5, 9, "has a `..` component");
    let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/a/./b\"\naccess = \"read\"\n");
    assert_invalid(parse_in(dir.path(), &text), 5, 9, "has a `.` component");
    let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/a//b\"\naccess = \"read\"\n");
    assert_invalid(parse_in(dir.path(), &text), 5, 9, "empty component");
    let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/a//\"\naccess = \"read\"\n");
    assert_invalid(parse_in(dir.path(), &text), 5, 9, "empty component");
}

#[test]
fn guest_paths_normalise() {
    assert_eq!(normalise_guest("/").unwrap(), "/");
    assert_eq!(normalise_guest("/data/").unwrap(), "/data");
    assert_eq!(normalise_guest("/a/b").unwrap(), "/a/b");
    assert_eq!(normalise_guest("/a/..b").unwrap(), "/a/..b");
    assert!(normalise_guest("//").is_err());
    assert!(normalise_guest("/a\0").is_err());
    assert!(normalise_guest("").is_err());
    assert!(guest_within("/data/x", "/data"));
    assert!(guest_within("/data", "/"));
    assert!(!guest_within("/database", "/data"));
    assert!(!guest_within("/data", "/data"));
}

#[test]
fn missing_host_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{ID}[[files]]\nhost   =   \"nope/missing.txt\"\nguest = \"/x\"\naccess = \"read\"\n"
    );
    assert_invalid(
        parse_in(dir.path(), &text),
        4,
        12,
        "host path `nope/missing.txt` (resolved to",
    );
    assert_invalid(parse_in(dir.path(), &text), 4, 12, "does not exist");
}

#[test]
fn missing_access() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{ID}\n[[files]]\nhost = \".\"\nguest = \"/x\"\n");
    assert_invalid(
        parse_in(dir.path(), &text),
        4,
        1,
        "missing `access` in [[files]]; expected \"read\" or \"read-write\"",
    );
    let text = format!("{ID}[[files]]\nhost = \".\"\nguest = \"/x\"\naccess = \"write\"\n");
    assert_invalid(parse_in(dir.path(), &text), 6, 10, "found \"write\"");
}

#[test]
fn overlapping_guest_paths() {
    let dir = tempfile::tempdir().unwrap();
    let grant =
        |guest: &str| format!("[[files]]\nhost = \".\"\nguest = \"{guest}\"\naccess = \"read\"\n");
    let text = format!("{ID}{}{}", grant("/data"), grant("/data/x"));
    assert_invalid(
        parse_in(dir.path(), &text),
        9,
        9,
        "`/data/x` overlaps the earlier grant of `/data`",
    );
    let text = format!("{ID}{}{}", grant("/data/x"), grant("/data"));
    assert_invalid(
        parse_in(dir.path(), &text),
        9,
        9,
        "`/data` overlaps the earlier grant of `/data/x`",
    );
    let text = format!("{ID}{}{}", grant("/data"), grant("/data/"));
    assert_invalid(
        parse_in(dir.path(), &text),
        9,
        9,
        "`/data` is already granted",
    );
    let text = format!("{ID}{}{}", grant("/"), grant("/etc"));
    assert_invalid(
        parse_in(dir.path(), &text),
        9,
        9,
        "overlaps the earlier grant of `/`",
    );
    let text = format!("{ID}{}{}", grant("/data"), grant("/database"));
    let m = parse_in(dir.path(), &text).unwrap();
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.files[0].kind, FileKind::Dir);
}

#[test]
fn read_and_read_write_single_files_need_separate_folders() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "").unwrap();
    std::fs::write(dir.path().join("b"), "").unwrap();
    let grant = |host: &str, guest: &str, access: &str| {
        format!("[[files]]\nhost = \"{host}\"\nguest = \"{guest}\"\naccess = \"{access}\"\n")
    };
    let text = format!(
        "{ID}{}{}",
        grant("a", "/etc/a", "read"),
        grant("b", "/etc/b", "read-write")
    );
    assert_invalid(
        parse_in(dir.path(), &text),
        9,
        9,
        "share the guest folder `/etc` with different access",
    );
    // Control: different folders, or the same access, are fine.
    for (g2, acc2) in [("/state/b", "read-write"), ("/etc/b", "read")] {
        let text = format!(
            "{ID}{}{}",
            grant("a", "/etc/a", "read"),
            grant("b", g2, acc2)
        );
        assert_eq!(parse_in(dir.path(), &text).unwrap().files.len(), 2);
    }
}

#[test]
fn a_fifo_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let text = format!("{ID}[[files]]\nhost = \"pipe\"\nguest = \"/p\"\naccess = \"read\"\n");
    assert_invalid(
        parse_in(dir.path(), &text),
        4,
        8,
        "host path `pipe` is a FIFO (named pipe); expected a regular file or a directory",
    );
}

#[test]
fn staged_file_limit_is_a_size() {
    let m = parse_text(&format!("{ID}[limits]\nstaged-file = \"1KiB\"\n")).unwrap();
    assert_eq!(m.limits.staged_file, 1024);
    let m = parse_text(&format!("{ID}[limits]\nstaged-file = 0\n")).unwrap();
    assert_eq!(m.limits.staged_file, 0);
    assert_eq!(parse_text(ID).unwrap().limits.staged_file, 16 << 20);
    assert_text_invalid(
        &format!("{ID}[limits]\nstaged-file = \"big\"\n"),
        4,
        15,
        "limits.staged-file: expected a size such as \"64MiB\"",
    );
}

#[test]
fn single_file_cannot_be_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "").unwrap();
    let text = format!("{ID}[[files]]\nhost = \"f\"\nguest = \"/\"\naccess = \"read\"\n");
    assert_invalid(
        parse_in(dir.path(), &text),
        5,
        9,
        "is a single file and cannot be granted at `/`",
    );
}

#[test]
fn unset_from_host() {
    let text = format!("{ID}[env]\nAPI_BASE = {{ from-host = \"PAYMENTS_API_BASE\" }}\n");
    assert_text_invalid(
        &text,
        4,
        26,
        "env.API_BASE: from-host variable `PAYMENTS_API_BASE` is not set in warden's \
             environment",
    );
    assert_text_invalid(
        &format!("{ID}[env]\nA = {{ from-host = \"\" }}\n"),
        4,
        19,
        "env.A.from-host: expected the name of a variable",
    );
    assert_text_invalid(
        &format!("{ID}[env]\nA = {{}}\n"),
        4,
        5,
        "missing `from-host` in [env.A]",
    );
}

#[test]
fn nul_bytes_in_args_and_env_values() {
    assert_text_invalid(
        &format!("{ID}[workload]\nargs = [\"a\", \"b\\u0000c\"]\n"),
        4,
        14,
        "workload.args[1]: the argument contains a NUL byte",
    );
    assert_text_invalid(
        &format!("{ID}[env]\nAPI_BASE = \"x\\u0000y\"\n"),
        4,
        12,
        "env.API_BASE: the value contains a NUL byte",
    );
    // `from-host` values: a real environment cannot hold NUL, an embedder's lookup can.
    let text = format!("{ID}[env]\nAPI_BASE = {{ from-host = \"HOST_BASE\" }}\n");
    let nul_env = |_: &str| Some("x\0y".to_owned());
    assert_invalid(
        parse(
            &text,
            Path::new("test.warden.toml"),
            Path::new("/"),
            &nul_env,
        ),
        4,
        12,
        "env.API_BASE: the value of warden's variable `HOST_BASE` contains a NUL byte",
    );
    // Controls: the same values without the NUL byte parse.
    let m = parse_text(&format!(
        "{ID}[workload]\nargs = [\"a\", \"bc\"]\n[env]\nAPI_BASE = \"xy\"\n"
    ))
    .unwrap();
    assert_eq!(m.workload.args, ["a", "bc"]);
    assert_eq!(m.env[0].value, "xy");
    let ok_env = |_: &str| Some("xy".to_owned());
    let m = parse(
        &text,
        Path::new("test.warden.toml"),
        Path::new("/"),
        &ok_env,
    )
    .unwrap();
    assert_eq!(m.env[0].value, "xy");
}

#[test]
fn bad_env_name() {
    assert_text_invalid(
        &format!("{ID}[env]\n\"A=B\" = \"x\"\n"),
        4,
        1,
        "`A=B` is not a valid variable name",
    );
    assert_text_invalid(
        &format!("{ID}[env]\n\"\" = \"x\"\n"),
        4,
        1,
        "is not a valid variable name",
    );
}

#[test]
fn bad_identity() {
    for bad in ["Payments", "-x", "a_b", "", "a b"] {
        assert_text_invalid(
            &format!("[identity]\nname = {bad:?}\n"),
            2,
            8,
            "identity.name: expected a name of lower-case letters",
        );
    }
    assert_text_invalid(
        "[identity]\nowner = \"me\"\n",
        1,
        1,
        "missing `name` in [identity]",
    );
    assert_text_invalid(
        &format!("{ID}id = \"not a uri\"\n"),
        3,
        6,
        "identity.id: expected a URI",
    );
    for bad in ["nocolon", "1x:y", "x:", ":y", "a:b c", "Http://x"] {
        assert!(!is_uri(bad), "{bad}");
    }
    assert!(is_uri("urn:x"));
    assert!(is_uri("spiffe+v1.x-y://a/b"));
    assert_text_invalid(
        &format!("{ID}owner = \"\"\n"),
        3,
        9,
        "identity.owner: expected a non-empty string",
    );
}

#[test]
fn bad_sha256() {
    assert_text_invalid(
        &format!("{ID}[workload]\nsha256 = \"abc\"\n"),
        4,
        10,
        "workload.sha256: expected 64 hexadecimal digits",
    );
    let not_hex = "g".repeat(64);
    assert_text_invalid(
        &format!("{ID}[workload]\nsha256 = \"{not_hex}\"\n"),
        4,
        10,
        "workload.sha256: expected 64 hexadecimal digits",
    );
}

#[test]
fn bad_workload() {
    assert_text_invalid(
        &format!("{ID}[workload]\ninvoke = \"\"\n"),
        4,
        10,
        "workload.invoke: expected the name of an exported function",
    );
    assert_text_invalid(
        &format!("{ID}[workload]\nmodule = 1\n"),
        4,
        10,
        "workload.module: expected a path",
    );
}

#[test]
fn bad_network_entry() {
    assert_text_invalid(
        &format!("{ID}[network]\nconnect = [\"api.example.com:443\", \"api.example.com\"]\n"),
        4,
        35,
        "network.connect[1]: there is no `:port` in \"api.example.com\"",
    );
    assert_text_invalid(
        &format!("{ID}[network]\nconnect = \"x:1\"\n"),
        4,
        11,
        "network.connect: expected an array",
    );
    for bad in [
        "h:0",
        "h:65536",
        "h:",
        ":80",
        "h:+80",
        "fd00::1:80",
        "[fd00::1:80",
        "[fd00::1]",
        "[zz::1]:80",
        "[fd00::]/129:80",
        "10.0.0.0/33:80",
        "10.0.0.0/:80",
        "300.1.1.1:80",
        "host.example/16:80",
        "-bad.example:80",
        "a..b:80",
        "a.*.b:80",
        "*:80",
        "under_score.example:80",
        "h :80",
    ] {
        assert!(check_connect(bad).is_err(), "{bad} should be rejected");
    }
    for good in [
        "localhost:5432",
        "a-b.c:1",
        "*.example.com:65535",
        "10.0.0.1:80",
        "0.0.0.0/0:80",
        "[::1]:80",
        "[::]/0:443",
    ] {
        assert_eq!(check_connect(good), Ok(()), "{good}");
    }
}

#[test]
fn bad_http_rules() {
    assert_text_invalid(
        &format!(
            "{ID}[[http]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\", \"FETCH\"]\n"
        ),
        5,
        19,
        "http[0].methods[1]: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, \
             found \"FETCH\"",
    );
    assert_text_invalid(
        &format!("{ID}[[http]]\nurl = \"ftp://x/\"\n"),
        4,
        7,
        "http[0].url: the scheme is not http:// or https://",
    );
    assert_text_invalid(
        &format!("{ID}[[http]]\nurl = \"https:///path\"\n"),
        4,
        7,
        "there is no host",
    );
    assert_text_invalid(
        &format!("{ID}[[http]]\nmethods = [\"GET\"]\n"),
        3,
        1,
        "missing `url` in [[http]]",
    );
    assert_text_invalid(
        &format!("{ID}[[http]]\nurl = \"https://h/\"\nmethods = []\n"),
        5,
        11,
        "expected at least one of",
    );
    assert!(check_url("https://user:pw@h/").is_err());
    assert!(check_url("https://h:0/").is_err());
    assert!(check_url("https://h:/").is_err());
    assert!(check_url("https://[::1]:8080/x").is_ok());
    assert!(check_url("https://[::1]x/").is_err());
    assert!(check_url("https://h/a b").is_err());
    assert!(check_url("http://h?q").is_ok());
}

#[test]
fn secret_format_missing_placeholder() {
    assert_text_invalid(
        &format!(
            "{ID}[secrets.stripe]\nfrom = \"env:K\"\n\
                 inject = {{ header = \"Authorization\", format = \"Bearer\", url = \"https://a/\" }}\n"
        ),
        5,
        47,
        "secrets.stripe.inject.format: expected a header value containing \"{secret}\"",
    );
}

#[test]
fn bad_secrets() {
    assert_text_invalid(
        &format!("{ID}[secrets.Stripe]\nfrom = \"env:K\"\n"),
        3,
        10,
        "`Stripe` is not a valid secret name",
    );
    assert_text_invalid(
        &format!("{ID}[secrets.s]\nfrom = \"vault:K\"\n"),
        4,
        8,
        "secrets.s.from: expected \"env:NAME\" or \"file:PATH\", found \"vault:K\"",
    );
    assert_text_invalid(
        &format!("{ID}[secrets.s]\nreveal = true\n"),
        3,
        1,
        "missing `from` in [secrets.s]",
    );
    assert_text_invalid(
        &format!(
            "{ID}[secrets.s]\nfrom = \"env:K\"\ninject = {{ header = \"A\", format = \"{{secret}}\" }}\n"
        ),
        5,
        10,
        "missing `url` in [secrets.s.inject]",
    );
    assert_text_invalid(
        &format!(
            "{ID}[secrets.s]\nfrom = \"env:K\"\ninject = {{ header = \"A\", format = \"{{secret}}\", url = \"a/\" }}\n"
        ),
        5,
        53,
        "secrets.s.inject.url: the scheme is not http:// or https://",
    );
    assert_text_invalid(
        &format!(
            "{ID}[secrets.s]\nfrom = \"env:K\"\ninject = {{ header = \"A\\r\\nB\", format = \"{{secret}}\", url = \"https://a/\" }}\n"
        ),
        5,
        21,
        "secrets.s.inject.header: expected an HTTP header name",
    );
    assert_text_invalid(
        &format!("{ID}[secrets.s]\nfrom = \"env:K\"\ninject = 3\n"),
        5,
        10,
        "secrets.s.inject: expected { header",
    );
    assert_text_invalid(
        &format!("{ID}[secrets]\ns = \"env:K\"\n"),
        4,
        5,
        "secrets.s: expected a table ([secrets.s])",
    );
    let m = parse_text(&format!(
        "{ID}[secrets.s]\nfrom = \"file:/run/s\"\n[secrets.s.inject]\nheader = \"X-Key\"\n\
             format = \"{{secret}}\"\nurl = \"http://h\"\n"
    ))
    .unwrap();
    assert_eq!(
        m.secrets[0].from,
        SecretSource::File(PathBuf::from("/run/s"))
    );
    assert_eq!(m.secrets[0].inject.as_ref().unwrap().header, "X-Key");
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(line_column("", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("ab\n", 3), (2, 1));
    assert_eq!(line_column("ab", 99), (1, 3));
    assert_eq!(line_column("é=1", 2), (1, 2));
    assert_eq!(line_column("é=1", 1), (1, 2));
    assert_text_invalid(
        &format!("{ID}[stdio]\n\"é\" = 1\n"),
        4,
        1,
        "unknown key `é` in [stdio]",
    );
    assert_text_invalid(&format!("{ID}[env]\n\"é\" = \"é\"\nX = 1\n"), 5, 5, "env.X");
    assert_text_invalid(
        &format!("{ID}[clocks] # ∑∑∑\nwall = 1  # é\nmonotonic = 1\n"),
        4,
        8,
        "clocks.wall",
    );
    assert_text_invalid(
        &format!("{ID}[stdio]\nstdin = \"∑\"\nstdout = \"∑∑\"\n"),
        4,
        9,
        "found \"∑\"",
    );
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "\u{feff}[identity]\nname = \"a\"",
        "[identity]\r\nname = \"a\"\r\nid = \"x\"\r\n",
        "[[identity]]\nname = \"a\"",
        "identity = 1",
        "[identity]\nname = \"a\"\n[limits]\nmemory = 1.5\nfuel = 0xFFFFFFFF\n",
        "[identity]\nname = \"a\"\n[limits]\nfuel = 1979-05-27\n",
        "[identity]\nname = \"a\"\nhttp = 1",
        "[identity]\nname = \"a\"\nhttp = [1]",
        "[identity]\nname = \"a\"\n[[files]]\nhost = \"\\u0000\"\nguest = \"/\"\naccess = \"read\"",
        "\0",
        "[",
        "a.b.c.d.e = 1",
    ] {
        let _ = parse_text(text);
    }
    assert_invalid(parse_text("[[identity]]\nname = \"a\""), 1, 1, "[identity]");
    assert_invalid(
        parse_text(&format!("http = [1]\n{ID}")),
        1,
        9,
        "http[0]: expected a table ([[http]]), found integer 1",
    );
    assert_invalid(
        parse_text("[identity]\r\nname = \"a\"\r\nid = \"x\"\r\n"),
        3,
        6,
        "identity.id",
    );
}

#[test]
fn a_misspelt_key_gets_a_suggestion() {
    assert_text_invalid(
        "[identity]\nnmae = \"a\"",
        2,
        1,
        "unknown key `nmae` in [identity]; expected one of: name, id, owner; did you mean `name`?",
    );
    assert_text_invalid(
        "[identity]\nname = \"a\"\n[limit]\nwall = \"1s\"",
        3,
        2,
        "did you mean `limits`?",
    );
    assert_text_invalid(
        "[identity]\nname = \"a\"\n[stdio]\nstdout = \"nul\"",
        4,
        10,
        "stdio.stdout: expected \"inherit\" or \"null\", found \"nul\"; did you mean `null`?",
    );
    // Nothing close: no guess.
    let err = parse_text("[identity]\nname = \"a\"\nzzzzzz = 1").unwrap_err();
    assert!(!err.to_string().contains("did you mean"), "{err}");
}

/// The committed schema is what the types give; run the command below after changing them.
#[test]
fn committed_schema_is_current() {
    let committed = include_str!("../../../docs/warden.schema.json");
    assert!(
        committed == schema_text(),
        "docs/warden.schema.json is out of date; regenerate it with \
         `cargo run -p warden-cli --bin warden -- schema > docs/warden.schema.json`"
    );
}

/// The schema describes what the parser reads: the top level's keys are the parser's.
#[test]
fn schema_lists_the_manifest_keys() {
    let s = schema();
    let keys: Vec<&str> = s["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "identity", "workload", "files", "env", "stdio", "clocks", "random", "network", "http",
            "secrets", "limits"
        ]
    );
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(s["required"], serde_json::json!(["identity"]));
    let limits = &s["$defs"]["Limits"]["properties"];
    assert!(limits.get("http-requests").is_some(), "{limits}");
}

/// A table's fields are keys: serde's other form of a struct, an array of its fields in
/// order, is refused wherever a table is expected.
#[test]
fn a_table_written_as_an_array_is_refused() {
    assert_text_invalid(
        "files = [[\"a\", \"/b\", \"read\"]]\n[identity]\nname = \"a\"",
        1,
        10,
        "files[0]: expected a table ([[files]]), found an array",
    );
    assert_text_invalid(
        "http = [[\"https://a.example/\"]]\n[identity]\nname = \"a\"",
        1,
        9,
        "http[0]: expected a table ([[http]]), found an array",
    );
    assert_text_invalid(
        "[identity]\nname = \"a\"\n[secrets]\ns = [\"env:K\"]",
        4,
        5,
        "secrets.s: expected a table ([secrets.s]), found an array",
    );
    assert_text_invalid(
        "identity = [\"a\"]",
        1,
        12,
        "identity: expected a table ([identity])",
    );
    // Control: the same grants as tables are read.
    let m = parse_text(
        "http = [{ url = \"https://a.example/\" }]\n[identity]\nname = \"a\"\n\
         [secrets]\ns = { from = \"env:K\" }",
    )
    .unwrap();
    assert_eq!((m.http.len(), m.secrets.len()), (1, 1));
}

#[test]
fn listen_and_udp_entries_are_ip_literals() {
    assert_text_invalid(
        &format!("{ID}[network]\nlisten = [\"localhost:8080\"]\n"),
        4,
        11,
        "network.listen[0]: \"localhost\" is not an IP address",
    );
    assert_text_invalid(
        &format!("{ID}[network]\nlisten = [\"127.0.0.1\"]\n"),
        4,
        11,
        "there is no `:port`",
    );
    assert_text_invalid(
        &format!("{ID}[network]\nudp = [\"10.0.0.53:0\"]\n"),
        4,
        8,
        "network.udp[0]: the port 0 is outside 1-65535",
    );
    assert_text_invalid(
        &format!("{ID}[network]\nudp = [\"10.0.0.0/8:53\"]\n"),
        4,
        8,
        "is a range; name one address",
    );
    let m = parse_text(&format!(
        "{ID}[network]\nlisten = [\"127.0.0.1:0\", \"[::1]:8080\"]\nudp = [\"127.0.0.1:53\"]\n"
    ))
    .unwrap();
    assert_eq!(m.listen.len(), 2);
    assert_eq!(m.listen[0].port, 0);
    assert_eq!(m.udp[0].to_string(), "127.0.0.1:53");
}

#[test]
fn handles_limit_is_bounded() {
    assert_eq!(
        parse_text(ID).unwrap().limits.handles,
        crate::host_memory::MAX_HANDLES as u64
    );
    let m = parse_text(&format!("{ID}[limits]\nhandles = 10_000\n")).unwrap();
    assert_eq!(m.limits.handles, 10_000);
    assert_text_invalid(
        &format!("{ID}[limits]\nhandles = 0\n"),
        4,
        11,
        "limits.handles: expected a whole number of handles from 1 to 90000",
    );
    assert_text_invalid(
        &format!("{ID}[limits]\nhandles = 90001\n"),
        4,
        11,
        "wasmtime's own per-store cap",
    );
}

#[test]
fn cwd_must_be_inside_a_folder_grant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("one.txt"), "x").unwrap();
    let grants = "[[files]]\nhost = \"data\"\nguest = \"/data\"\naccess = \"read\"\n\n\
                  [[files]]\nhost = \"one.txt\"\nguest = \"/one.txt\"\naccess = \"read\"\n";
    for ok in ["/data", "/data/sub/deeper"] {
        let m = parse_in(
            dir.path(),
            &format!("{ID}[workload]\ncwd = \"{ok}\"\n\n{grants}"),
        )
        .unwrap();
        assert_eq!(m.workload.cwd.as_deref(), Some(ok));
    }
    // Outside every grant, a single file's path, a name that only starts like a grant's.
    for bad in ["/elsewhere", "/one.txt", "/database"] {
        assert_invalid(
            parse_in(
                dir.path(),
                &format!("{ID}[workload]\ncwd = \"{bad}\"\n\n{grants}"),
            ),
            4,
            7,
            "is not inside a folder granted by [[files]]",
        );
    }
    // Relative: not a guest path at all.
    assert_invalid(
        parse_in(
            dir.path(),
            &format!("{ID}[workload]\ncwd = \"data\"\n\n{grants}"),
        ),
        4,
        7,
        "absolute guest path",
    );
}
