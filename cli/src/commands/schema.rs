//! `warden schema`: the manifest's JSON Schema, or with `--audit` the audit record's, for
//! editors and other tools. Both are derived from the types warden reads them with.

use std::process::ExitCode;

pub(crate) fn schema(audit: bool) -> ExitCode {
    if audit {
        print!("{}", warden::audit::record::schema_text());
    } else {
        print!("{}", warden::manifest::schema_text());
    }
    ExitCode::SUCCESS
}
