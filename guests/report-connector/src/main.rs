//! An example connector: totals the `amount` column of every CSV file in `/data`, titles the
//! result from its config file and region, and writes the report to `/out/report.txt`.
//!
//! It needs exactly what its manifest (examples/report-connector) grants: one config file to
//! read, one folder to read, one folder to write, and one environment variable.
//!
//! The same source built for the host is its native twin, for `warden bench`: given
//! `CONFIG DATA OUT` (the host paths the manifest maps to `/config/report.toml`, `/data` and
//! `/out`), it does the same work there and prints the same report.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the config, the CSV files and the report are.
struct Paths {
    config: PathBuf,
    data: PathBuf,
    out: PathBuf,
}

impl Paths {
    /// The paths the manifest grants, or the three given as arguments.
    fn from_args() -> Result<Paths, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.as_slice() {
            [] => Ok(Paths {
                config: "/config/report.toml".into(),
                data: "/data".into(),
                out: "/out".into(),
            }),
            [config, data, out] => Ok(Paths {
                config: config.into(),
                data: data.into(),
                out: out.into(),
            }),
            _ => Err("usage: report-connector [CONFIG DATA OUT]".into()),
        }
    }
}

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

fn run(paths: &Paths) -> io::Result<String> {
    let config = fs::read_to_string(&paths.config)?;
    let region = std::env::var("REGION").unwrap_or_else(|_| "unknown".into());
    let mut files: Vec<_> = fs::read_dir(&paths.data)?
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
        // Named as the guest sees it, wherever the folder is.
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        report.push_str(&format!("/data/{name}: {rows} rows, total {sum:.2}\n"));
    }
    report.push_str(&format!("grand total {grand:.2}\n"));
    fs::write(paths.out.join("report.txt"), &report)?;
    Ok(report)
}

fn main() -> ExitCode {
    let paths = match Paths::from_args() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("report-connector: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&paths) {
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
