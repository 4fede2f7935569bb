//! Example connector: a deploy controller that restarts a service after a config change.
//!
//! It reads the approved config `/etc/deploy/app.toml` (service, version, control plane) and
//! POSTs `/v1/services/<service>/restart` to the control plane naming the `control-plane`
//! secret. The secret comes from a file that the platform rotates; warden reads it when the
//! run starts, so every run carries the current credential and the controller never holds
//! one. Its manifest is `examples/deploy-controller/deploy-controller.warden.toml`.
//!
//! The `--try-…` flags attempt what a controller with a bug, or a bad config, could, print
//! `refused: …` for each refusal or `ALLOWED: …` when one got through (exit code 2):
//!
//! - `--try-other-paths`: read config beside the approved file, the credential file itself
//!   and system files, and rewrite the approved config;
//! - `--try-other-hosts`: other control-plane paths, and another control plane with the
//!   credential.

use std::fmt::Display;
use std::process::ExitCode;

use serde::Deserialize;
use warden_sdk::http::Request;
use warden_sdk::{Error, fs, log, secrets};

const CONFIG: &str = "/etc/deploy/app.toml";
const SECRET: &str = "control-plane";

#[derive(Deserialize)]
struct Config {
    service: String,
    version: String,
    /// `scheme://host:port` of the control plane.
    control_plane: String,
    reason: String,
}

/// A service name safe to put in a URL path: `[a-z0-9-]+`.
fn valid_service(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn restart(config: &Config) -> Result<(), String> {
    if !valid_service(&config.service) {
        return Err(format!(
            "{CONFIG}: service {:?} is not a service name ([a-z0-9-]+)",
            config.service
        ));
    }
    let url = format!(
        "{}/v1/services/{}/restart",
        config.control_plane.trim_end_matches('/'),
        config.service
    );
    // Only where the credential goes: its value stays with warden.
    let secret = secrets::open(SECRET).map_err(|e| e.to_string())?;
    if let (Some(header), Some(binding)) = (secret.header(), secret.binding()) {
        println!(
            "credential {}: warden adds it as {header} to {binding}",
            secret.name()
        );
    }
    let body = serde_json::json!({ "version": config.version, "reason": config.reason });
    let response = Request::post(&url)
        .secret(SECRET)
        .json(&body.to_string())
        .send()
        .map_err(|e| e.to_string())?;
    if !response.is_success() {
        return Err(format!(
            "the control plane refused the restart: {} {}",
            response.status,
            response.text()
        ));
    }
    println!(
        "restart of {} at {} requested: {}",
        config.service, config.version, response.status
    );
    Ok(())
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

fn try_other_paths(tries: &mut Tries) {
    for path in [
        "/etc/deploy/secrets.toml",
        "/etc/deploy/../passwd",
        "/etc/passwd",
        "/run/secrets/control-plane.token",
        "/secrets/control-plane.token",
    ] {
        tries.expect_refused(&format!("read {path}"), fs::read_to_string(path));
    }
    tries.expect_refused(
        &format!("rewrite {CONFIG}"),
        fs::write(CONFIG, "service = \"everything\"\n"),
    );
}

fn try_other_hosts(tries: &mut Tries, config: &Config) {
    let base = config.control_plane.trim_end_matches('/');
    let drain = format!("{base}/v1/clusters/prod/drain");
    tries.expect_refused(
        &format!("POST {drain}"),
        Request::post(&drain).secret(SECRET).json("{}").send(),
    );
    let delete = format!("{base}/v1/services/{}", config.service);
    tries.expect_refused(
        &format!("DELETE {delete}"),
        Request::new("DELETE", &delete).secret(SECRET).send(),
    );
    let other = format!(
        "https://control-plane.staging.example/v1/services/{}/restart",
        config.service
    );
    tries.expect_refused(
        &format!("POST {other} with the {SECRET} secret"),
        Request::post(&other).secret(SECRET).json("{}").send(),
    );
}

fn main() -> ExitCode {
    let mut flags = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--try-other-paths" | "--try-other-hosts" => flags.push(arg),
            other => {
                log::error(format_args!("unknown argument {other:?}"));
                return ExitCode::from(64);
            }
        }
    }
    let config: Config = match fs::read_to_string(CONFIG)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| format!("{CONFIG}: {e}")))
    {
        Ok(config) => config,
        Err(e) => {
            log::error(e);
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = restart(&config) {
        log::error(e);
        return ExitCode::FAILURE;
    }
    let mut tries = Tries::default();
    for flag in &flags {
        match flag.as_str() {
            "--try-other-paths" => try_other_paths(&mut tries),
            _ => try_other_hosts(&mut tries, &config),
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
