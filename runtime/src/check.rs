//! `warden check`: the effective grants of a policy as a table a person can read.

use crate::manifest::{Access, EnvSource, FileKind, OutputMode, SecretSource, StdinMode};
use crate::policy::Policy;
use std::fmt::Write;

/// `bytes` in the largest binary unit that divides it evenly (`64 MiB`, `1536 KiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} B")
}

/// The grants table printed by `warden check`: one row per grant, then the limits. Every
/// kind of capability gets a row, so what is denied is as visible as what is granted.
pub fn grants_table(policy: &Policy) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut row = |a: &str, b: &str, c: &str, d: String| {
        rows.push([a.to_string(), b.to_string(), c.to_string(), d]);
    };

    if policy.files.is_empty() {
        row(
            "fs",
            "-",
            "deny",
            "no [[files]] grant: no filesystem".into(),
        );
    }
    for f in &policy.files {
        let access = match f.access {
            Access::Read => "read",
            Access::ReadWrite => "read-write",
        };
        let kind = match f.kind {
            FileKind::Dir => "directory",
            FileKind::File => "file",
        };
        row(
            "fs",
            &f.guest,
            access,
            format!("{kind} {}", f.host.display()),
        );
    }
    if policy.env.is_empty() {
        row("env", "-", "deny", "no [env]: empty environment".into());
    }
    for e in &policy.env {
        let from = match &e.source {
            EnvSource::Literal => "literal value".to_string(),
            EnvSource::FromHost(h) => format!("copied from host ${h}"),
        };
        row("env", &e.name, "allow", from);
    }
    let stdin = match policy.stdio.stdin {
        StdinMode::Null => ("deny", "closed"),
        StdinMode::Inherit => ("allow", "inherited"),
    };
    row("stdio", "stdin", stdin.0, stdin.1.into());
    for (name, mode) in [
        ("stdout", policy.stdio.stdout),
        ("stderr", policy.stdio.stderr),
    ] {
        match mode {
            OutputMode::Inherit => row("stdio", name, "allow", "inherited".into()),
            OutputMode::Null => row("stdio", name, "deny", "discarded".into()),
        }
    }
    for (name, granted) in [
        ("wall", policy.clocks.wall),
        ("monotonic", policy.clocks.monotonic),
    ] {
        if granted {
            row("clock", name, "allow", "host clock".into());
        } else {
            row("clock", name, "deny", "frozen, deterministic".into());
        }
    }
    if policy.random.secure {
        row("random", "secure", "allow", "host CSPRNG".into());
    } else {
        row("random", "secure", "deny", "deterministic, seeded".into());
    }
    if policy.network.is_empty() {
        row("net", "-", "deny", "no [network]: no sockets".into());
    }
    for n in &policy.network {
        row(
            "net",
            n,
            "allow",
            "outbound TCP; names resolved by the host, every address checked".into(),
        );
    }
    if policy.http.is_empty() {
        row("http", "-", "deny", "no [[http]]: no outbound HTTP".into());
    }
    for h in &policy.http {
        row("http", &h.url, "allow", h.methods.join(","));
    }
    if policy.secrets.is_empty() {
        row("secret", "-", "deny", "no [secrets]".into());
    }
    for s in &policy.secrets {
        let from = match &s.from {
            SecretSource::Env(v) => format!("env:{v}"),
            SecretSource::File(p) => format!("file:{}", p.display()),
        };
        let mut how = match &s.inject {
            Some(i) => format!("injected as {} into {}", i.header, i.url),
            None => "not injected".into(),
        };
        if s.reveal {
            how.push_str("; revealed to the guest on request (audited)");
        }
        row("secret", &s.name, "allow", format!("{how}; from {from}"));
    }

    let l = &policy.limits;
    let limits = [
        ("memory", format_size(l.memory)),
        (
            "fuel",
            l.fuel.map_or_else(|| "off".to_string(), |f| f.to_string()),
        ),
        ("wall", format!("{:?}", l.wall)),
        ("output", format_size(l.output)),
        ("http-requests", l.http_requests.to_string()),
        ("egress", format_size(l.egress)),
        ("staged-file", format_size(l.staged_file)),
    ];
    for (name, value) in limits {
        row("limit", name, "", value);
    }

    let mut out = String::new();
    let id = &policy.identity;
    let _ = writeln!(out, "identity  {} ({})", id.name, id.id);
    if let Some(owner) = &id.owner {
        let _ = writeln!(out, "owner     {owner}");
    }
    if let Some(m) = &policy.module {
        let _ = writeln!(out, "module    {}", m.display());
    }
    if let Some(pin) = &policy.sha256 {
        let _ = writeln!(out, "sha256    {pin} (pinned)");
    }
    if let Some(inv) = &policy.invoke {
        let _ = writeln!(out, "invoke    {inv}");
    }
    out.push('\n');
    let header = ["KIND", "TARGET", "DECISION", "DETAIL"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A capability a module's imports show it can use, and whether the policy grants it.
struct Use {
    capability: &'static str,
    /// The policy's section that grants it.
    grant: &'static str,
    granted: bool,
    /// The imports that show the use, as the module names them.
    imports: Vec<String>,
}

/// What a module imports that the policy does not grant, and what the policy grants that the
/// module cannot use: the second part of `warden check` when the module is at hand.
///
/// # Errors
/// The bytes are not a WebAssembly module or component.
pub fn module_report(policy: &Policy, bytes: &[u8]) -> Result<String, String> {
    let (is_component, imports) = imports_of(bytes)?;
    let mut uses = [
        Use {
            capability: "fs",
            grant: "[[files]]",
            granted: !policy.files.is_empty(),
            imports: Vec::new(),
        },
        Use {
            capability: "env",
            grant: "[env]",
            granted: !policy.env.is_empty(),
            imports: Vec::new(),
        },
        Use {
            capability: "net",
            grant: "[network]",
            granted: !policy.network.is_empty(),
            imports: Vec::new(),
        },
        Use {
            capability: "http",
            grant: "[[http]]",
            granted: !policy.http.is_empty(),
            imports: Vec::new(),
        },
        Use {
            capability: "secret",
            grant: "[secrets]",
            granted: !policy.secrets.is_empty(),
            imports: Vec::new(),
        },
    ];
    for import in &imports {
        let capability = if is_component {
            let name = import.split('@').next().unwrap_or(import);
            match name {
                n if n.starts_with("wasi:filesystem/") => "fs",
                "wasi:cli/environment" => "env",
                n if n.starts_with("wasi:sockets/") => "net",
                "wasi:http/outgoing-handler" => "http",
                "warden:host/secrets" => "secret",
                _ => continue,
            }
        } else {
            match import.strip_prefix("wasi_snapshot_preview1::") {
                Some(f) if f.starts_with("path_") || f == "fd_prestat_get" => "fs",
                Some("environ_get" | "environ_sizes_get") => "env",
                Some(f) if f.starts_with("sock_") => "net",
                _ => continue,
            }
        };
        if let Some(u) = uses.iter_mut().find(|u| u.capability == capability) {
            u.imports.push(import.clone());
        }
    }
    // A secret is used through wasi:http (injection) as much as through warden:host/secrets.
    let uses_http = uses
        .iter()
        .any(|u| u.capability == "http" && !u.imports.is_empty());

    let mut out = String::new();
    let kind = if is_component {
        "component"
    } else {
        "core module"
    };
    let _ = writeln!(out, "\nmodule imports ({kind}):");
    let mut any = false;
    for u in uses.iter().filter(|u| !u.imports.is_empty()) {
        any = true;
        let verdict = match (u.granted, u.capability) {
            (true, _) => format!("granted by {}", u.grant),
            (false, "fs") => "NOT GRANTED: no [[files]], the guest sees no filesystem".into(),
            (false, "env") => "not granted: no [env], the guest sees an empty environment".into(),
            (false, _) => format!(
                "NOT GRANTED: no {}, refused (and audited) at run time",
                u.grant
            ),
        };
        let _ = writeln!(
            out,
            "  {:7} {verdict}: {}",
            u.capability,
            u.imports.join(", ")
        );
    }
    if !any {
        let _ = writeln!(out, "  none of fs, env, net, http, secrets");
    }
    let unused: Vec<String> = uses
        .iter()
        .filter(|u| u.granted && u.imports.is_empty())
        .filter(|u| !(u.capability == "secret" && uses_http))
        .map(|u| {
            let why = if !is_component && matches!(u.capability, "net" | "http" | "secret") {
                "a core module cannot use it (warden refuses to run it)"
            } else {
                "the module imports nothing that uses it"
            };
            format!("  {:7} {}: {why}", u.capability, u.grant)
        })
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(out, "\ngrants the module cannot use:");
        for line in unused {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(out)
}

/// Whether `bytes` is a component, and its imports: interface names for a component's
/// top level, `module::name` for a core module.
fn imports_of(bytes: &[u8]) -> Result<(bool, Vec<String>), String> {
    use wasmparser::{Encoding, Parser, Payload};
    let mut imports = Vec::new();
    let mut is_component = false;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a WebAssembly module or component: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    is_component = encoding == Encoding::Component;
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ImportSection(section) if depth == 1 && !is_component => {
                for import in section.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    imports.push(format!("{}::{}", import.module, import.name));
                }
            }
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| e.to_string())?;
                    imports.push(import.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((is_component, imports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_largest_exact_unit() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1536 << 10), "1536 KiB");
        assert_eq!(format_size(1000), "1000 B");
        assert_eq!(format_size(0), "0 B");
    }

    #[test]
    fn an_empty_policy_shows_every_capability_denied() {
        let table = grants_table(&Policy::anonymous());
        for kind in ["fs ", "env ", "net ", "http "] {
            let line = table
                .lines()
                .find(|l| l.starts_with(kind))
                .unwrap_or_default();
            assert!(line.contains("deny"), "{kind}: {table}");
        }
    }
}
