//! Shows the environment the sandbox lets through.
//!
//! With no arguments, prints every variable as `NAME=VALUE`, sorted by name, then `count=N`.
//! `env get NAME` prints NAME's value, or `NAME is not set` to stderr and exits with 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            let mut vars: Vec<(String, String)> = std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect();
            vars.sort();
            for (name, value) in &vars {
                println!("{name}={value}");
            }
            println!("count={}", vars.len());
            ExitCode::SUCCESS
        }
        [get, name] if get == "get" => match std::env::var_os(name) {
            Some(value) => {
                println!("{}", value.to_string_lossy());
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("{name} is not set");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: env | env get NAME");
            ExitCode::from(2)
        }
    }
}
