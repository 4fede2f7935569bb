//! `warden check`'s grants table: one row per capability, granted or denied, then the limits
//! (the facts are the library's `warden::check`; this is how a person reads them).

use std::fmt::Write;
use warden::Policy;
use warden::manifest::format_size;
use warden::manifest::{Access, EnvSource, FileKind, OutputMode, SecretSource, StdinMode};

/// The grants table printed by `warden check`: one row per grant, then the limits. Every
/// kind of capability gets a row, so what is denied is as visible as what is granted.
///
/// Kept whole: the table's rows in the order it prints them, one short block per section.
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
    if !policy.has_sockets() {
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
    for l in &policy.listen {
        let port = if l.port == 0 { "any port" } else { "this port" };
        row(
            "net",
            &l.entry,
            "allow",
            format!("listen: TCP bind, listen and accept on this address, {port}"),
        );
    }
    for u in &policy.udp {
        row(
            "net",
            &u.entry,
            "allow",
            "udp: datagrams to and from this peer only".into(),
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
        ("handles", l.handles.to_string()),
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
    if let Some(cwd) = &policy.cwd {
        let _ = writeln!(out, "cwd       {cwd}");
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

#[cfg(test)]
mod tests {
    use super::*;

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
