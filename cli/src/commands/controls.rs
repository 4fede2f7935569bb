//! `warden check --controls`: the controls a manifest implements and leaves open, as a table
//! or as JSON (the facts come from `warden_cli::controls`).

use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use warden_cli::controls::{Status, assess};

pub(crate) fn print(path: &Path, as_json: bool) -> ExitCode {
    // Read as `warden check` reads it: an unset `from-host` variable does not hide the report.
    let policy = match super::warnings::load(path) {
        Ok((policy, _)) => policy,
        Err(e) => return crate::fail(e),
    };
    let findings = assess(&policy);
    if as_json {
        let controls: Vec<_> = findings
            .iter()
            .map(|f| {
                json!({
                    "control": f.control,
                    "status": f.status.name(),
                    "summary": f.summary,
                    "open": f.open,
                    "nist_csf_2": f.csf,
                    "nist_sp_800_207_tenets": f.sp800_207,
                    "owasp_nhi_top10_2025": f.owasp_nhi,
                })
            })
            .collect();
        let doc = json!({
            "identity": policy.identity.id,
            "manifest": path.display().to_string(),
            "controls": controls,
        });
        println!("{doc:#}");
        return ExitCode::SUCCESS;
    }
    let open = findings.iter().filter(|f| f.status == Status::Open).count();
    println!(
        "controls of {} ({}): {} of {} open",
        path.display(),
        policy.identity.id,
        open,
        findings.len()
    );
    for f in &findings {
        let mut refs = vec![format!("NIST CSF 2.0 {}", f.csf.join(", "))];
        if !f.sp800_207.is_empty() {
            let tenets: Vec<String> = f.sp800_207.iter().map(u8::to_string).collect();
            let word = if tenets.len() == 1 { "tenet" } else { "tenets" };
            refs.push(format!("SP 800-207 {word} {}", tenets.join(", ")));
        }
        if !f.owasp_nhi.is_empty() {
            refs.push(format!("OWASP NHI Top 10 {}", f.owasp_nhi.join(", ")));
        }
        println!();
        println!("{:<12} {}", f.status.name(), f.control);
        println!("             {}", f.summary);
        for why in &f.open {
            println!("             open: {why}");
        }
        println!("             {}", refs.join(" · "));
    }
    ExitCode::SUCCESS
}
