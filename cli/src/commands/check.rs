//! `warden check MANIFEST [--against LOG…]`: the manifest's grants, what its module cannot use,
//! and, with audit logs, what the runs used and were refused (`--controls` is in `controls`).

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

use super::paths as warden_paths;
use super::warnings;
use crate::fail;
use warden_cli::grants;

/// Exit code of `warden check --strict` when the manifest grants something unused.
const EXIT_OVER_GRANTED: u8 = 1;

pub(crate) fn check(
    path: &std::path::Path,
    logs: &[PathBuf],
    as_json: bool,
    strict: bool,
) -> ExitCode {
    let (policy, unset) = match warnings::load(path) {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    // Everything that can fail is done before anything is printed.
    let usage = if logs.is_empty() {
        None
    } else {
        // One pass over each log, record by record: a log is never held whole.
        let mut judge = warden_cli::usage::Judge::new(&policy);
        for log in logs {
            if let Err(e) = judge.read_log(log) {
                return fail(e);
            }
        }
        match judge.finish(logs) {
            Ok(u) => Some(u),
            Err(e) => return fail(e),
        }
    };
    // With the module at hand: what it imports against what the manifest grants.
    let lint = match &policy.module {
        None => Err(None),
        Some(module) => match warden::read_regular_file(module) {
            Ok(bytes) => match warden_cli::check::module_lint(&policy, &bytes) {
                Ok(lint) => Ok(lint),
                Err(e) => return fail(format!("{}: {e}", module.display())),
            },
            Err(e) => Err(Some((module, e))),
        },
    };
    let over_granted = lint.as_ref().is_ok_and(|l| !l.cannot_use.is_empty())
        || usage.as_ref().is_some_and(|u| !u.unused.is_empty());
    let mut warnings = warnings::unset_variables(&unset);
    warnings.extend(warnings::secret_sources(&policy));
    for w in &warnings {
        eprintln!("warden: warning: {w}");
    }

    if as_json {
        let report = Report {
            path,
            logs,
            lint: &lint,
            usage: usage.as_ref(),
        };
        println!("{:#}", report.json(&policy, over_granted, &warnings));
    } else {
        print!("{}", grants::grants_table(&policy));
        match &lint {
            Ok(l) => print!("{}", l.text()),
            Err(None) => {}
            Err(Some((module, e))) => println!(
                "\nmodule {} not read ({e}): its imports are not checked",
                warden_paths::shown(module).display()
            ),
        }
        if let Some(u) = &usage {
            print!("{}", u.render_text(logs.len()));
        }
    }
    if strict && over_granted {
        return ExitCode::from(EXIT_OVER_GRANTED);
    }
    ExitCode::SUCCESS
}

/// What `warden check` found, for its `--json` report.
struct Report<'a> {
    path: &'a std::path::Path,
    logs: &'a [PathBuf],
    /// The module's lint; `Err(None)` without a module, `Err(Some(..))` when it was unreadable.
    lint: &'a Result<warden_cli::check::ModuleLint, Option<(&'a PathBuf, std::io::Error)>>,
    usage: Option<&'a warden_cli::usage::Usage>,
}

impl Report<'_> {
    /// The `--json` report: the grants, the module, the logs' findings, unused grants from
    /// both (each with its `source`), `over_granted` and the warnings.
    fn json(&self, policy: &warden::Policy, over_granted: bool, warnings: &[String]) -> Value {
        let list = |fs: &[warden_cli::check::Finding]| {
            fs.iter()
                .map(warden_cli::check::Finding::to_json)
                .collect::<Vec<_>>()
        };
        let module = match self.lint {
            Ok(l) => json!({
                "path": policy.module.as_ref().map(|m| warden_paths::shown(m).display().to_string()),
                "kind": if l.is_component { "component" } else { "core module" },
                "checked": true,
            }),
            Err(None) => Value::Null,
            Err(Some((m, e))) => json!({
                "path": warden_paths::shown(m).display().to_string(),
                "checked": false,
                "error": e.to_string(),
            }),
        };
        // Static findings first (the module cannot use them), then the logs' (never used).
        let mut unused: Vec<Value> = Vec::new();
        if let Ok(l) = self.lint {
            unused.extend(l.cannot_use.iter().map(|f| {
                let mut v = f.to_json();
                v["source"] = json!("module");
                v
            }));
        }
        let mut out = json!({
            "identity": policy.identity.id,
            "name": policy.identity.name,
            "manifest": warden_paths::shown(self.path).display().to_string(),
            "module": module,
            "grants": list(&warden_cli::check::grant_list(policy)),
            "logs": self.logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>(),
            "used": [],
            "unobservable": [],
            "ungranted": [],
            "refused": [],
        });
        if let Some(u) = self.usage {
            let from_logs = u.to_json();
            if let (Value::Object(o), Value::Object(f)) = (&mut out, from_logs) {
                for (k, v) in f {
                    if k == "unused" {
                        if let Value::Array(items) = v {
                            unused.extend(items.into_iter().map(|mut i| {
                                i["source"] = json!("logs");
                                i
                            }));
                        }
                    } else {
                        o.insert(k, v);
                    }
                }
            }
        }
        out["unused"] = Value::Array(unused);
        out["over_granted"] = json!(over_granted);
        out["warnings"] = json!(warnings);
        out
    }
}
