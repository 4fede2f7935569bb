//! An example connector: totals the `amount` column of every CSV file in `/data`, titles the
//! result from its config file and region, and writes the report to `/out/report.txt`.
//!
//! It needs exactly what its manifest (examples/report-connector) grants: one config file to
//! read, one folder to read, one folder to write, and one environment variable.

use std::fs;
use std::io;
use std::process::ExitCode;

fn title(config: &str) -> String {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "title")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "report".to_string())
}

/// Sum of the `amount` column, and the number of rows read.
fn total(csv: &str) -> (f64, usize) {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return (0.0, 0);
    };
    let Some(col) = header.split(',').position(|h| h.trim() == "amount") else {
        return (0.0, 0);
    };
    lines
        .filter_map(|l| l.split(',').nth(col)?.trim().parse::<f64>().ok())
        .fold((0.0, 0), |(sum, n), v| (sum + v, n + 1))
}

fn run() -> io::Result<String> {
    let config = fs::read_to_string("/config/report.toml")?;
    let region = std::env::var("REGION").unwrap_or_else(|_| "unknown".into());
    let mut files: Vec<_> = fs::read_dir("/data")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let mut report = format!("{} ({region})\n", title(&config));
    let mut grand = 0.0;
    for path in &files {
        let (sum, rows) = total(&fs::read_to_string(path)?);
        grand += sum;
        report.push_str(&format!(
            "{}: {rows} rows, total {sum:.2}\n",
            path.display()
        ));
    }
    report.push_str(&format!("grand total {grand:.2}\n"));
    fs::write("/out/report.txt", &report)?;
    Ok(report)
}

fn main() -> ExitCode {
    match run() {
        Ok(report) => {
            print!("{report}");
            println!("wrote /out/report.txt");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("report-connector: {e}");
            ExitCode::FAILURE
        }
    }
}
