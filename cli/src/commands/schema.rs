//! `warden schema`: the manifest's JSON Schema, for editors and other tools.

use std::process::ExitCode;

pub(crate) fn schema() -> ExitCode {
    print!("{}", warden::manifest::schema_text());
    ExitCode::SUCCESS
}
