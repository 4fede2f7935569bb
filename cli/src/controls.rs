//! Which of warden's controls a manifest implements, and which it leaves open, in the terms of
//! the frameworks security teams report against (docs/controls.md has the mapping and the tests
//! that prove each control).
//!
//! The facts only: [`assess`] returns one [`Finding`] per control; `warden check --controls`
//! renders them. A control is [`Status::Open`] when the manifest weakens it (a secret the guest
//! may read, a read-write folder, a wide address range, …), each reason stated.

use std::net::IpAddr;
use warden::Policy;
use warden::manifest::{Access, FileKind, Host};

/// Whether a manifest keeps a control whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The manifest keeps the control.
    Implemented,
    /// The manifest weakens it; [`Finding::open`] says how.
    Open,
    /// A property of how warden is run, not of the manifest (e.g. `--audit`).
    Run,
}

impl Status {
    /// The status as `warden check --controls` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Open => "open",
            Status::Run => "at run time",
        }
    }
}

/// One control and where it stands for a manifest.
#[derive(Debug, Clone)]
pub struct Finding {
    /// A short stable name: `deny-by-default`, `least-privilege-files`, ….
    pub control: &'static str,
    /// Whether the manifest implements the control or leaves it open.
    pub status: Status,
    /// What the control does, in a sentence.
    pub summary: &'static str,
    /// How this manifest weakens it (empty unless [`Status::Open`]).
    pub open: Vec<String>,
    /// NIST CSF 2.0 subcategories.
    pub csf: &'static [&'static str],
    /// NIST SP 800-207 tenets (section 2.1), by number.
    pub sp800_207: &'static [u8],
    /// OWASP Non-Human Identities Top 10 (2025) risks the control mitigates.
    pub owasp_nhi: &'static [&'static str],
}

/// An IPv4 range wider than this many addresses' prefix (a /24) is reported as broad.
pub(crate) const BROAD_V4_PREFIX: u8 = 24;
/// An IPv6 range wider than a /64 (one subnet) is reported as broad.
pub(crate) const BROAD_V6_PREFIX: u8 = 64;

/// Environment variable names that look like credentials: passed as plain `[env]` the guest
/// holds their value, where a `[secrets]` entry would keep it out of reach.
const CREDENTIAL_WORDS: [&str; 6] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY"];

/// Methods that change something on the server.
const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

fn finding(
    control: &'static str,
    summary: &'static str,
    open: Vec<String>,
    csf: &'static [&'static str],
    sp800_207: &'static [u8],
    owasp_nhi: &'static [&'static str],
) -> Finding {
    Finding {
        control,
        status: if open.is_empty() {
            Status::Implemented
        } else {
            Status::Open
        },
        summary,
        open,
        csf,
        sp800_207,
        owasp_nhi,
    }
}

/// Whether `host` of an `http://` URL is a loopback address or `localhost`.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host and path of an `http(s)://host[:port]/path` URL, and whether it is https.
fn split_url(url: &str) -> Option<(bool, &str, &str)> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let host = if authority.starts_with('[') {
        authority.find(']').map_or(authority, |i| &authority[..=i])
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    Some((https, host, path))
}

/// Assesses `policy` against every control, in a fixed order.
pub fn assess(policy: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();

    out.push(finding(
        "deny-by-default",
        "every capability the manifest does not grant is refused, and each refusal is audited",
        Vec::new(),
        &["PR.AA-05", "PR.PS-01"],
        &[3, 6],
        &["NHI5"],
    ));

    out.push(finding(
        "identity",
        "every run acts as one named identity, written with a run id on every audit record",
        identity_open(policy),
        &["PR.AA-01", "ID.AM-08"],
        &[1],
        &["NHI1", "NHI9"],
    ));

    let open = match &policy.sha256 {
        Some(_) => Vec::new(),
        None => vec![
            "[workload] has no `sha256`: any module given on the command line runs as this \
             identity"
                .to_owned(),
        ],
    };
    out.push(finding(
        "module-pin",
        "the module's SHA-256 is pinned: a changed or swapped module does not start",
        open,
        &["PR.PS-05", "ID.RA-09"],
        &[5],
        &["NHI3"],
    ));

    out.push(finding(
        "least-privilege-files",
        "files are granted one by one or by folder, read unless read-write is declared; a \
         single file is staged so nothing beside it is visible",
        files_open(policy),
        &["PR.AA-05", "PR.DS-01"],
        &[3, 6],
        &["NHI5"],
    ));

    out.push(finding(
        "egress-rules",
        "outbound requests only to the listed URL prefixes and methods, connections only to \
         listed hosts; private, loopback and metadata addresses refused unless named",
        egress_open(policy),
        &["PR.IR-01", "ID.AM-03", "DE.CM-01"],
        &[2, 6],
        &["NHI3", "NHI5", "NHI8"],
    ));

    out.push(finding(
        "brokered-secrets",
        "secrets are read by the host at each run's start and added to requests bound for \
         their URL; the guest never holds the value, and any copy of it leaving is refused",
        secrets_open(policy),
        &["PR.AA-01", "PR.DS-02", "PR.DS-10"],
        &[6],
        &["NHI2", "NHI4", "NHI7"],
    ));

    out.push(finding(
        "limits",
        "memory, fuel, wall time, output, requests and egress are bounded; past a bound the \
         run stops with its own exit code",
        Vec::new(),
        &["PR.IR-04"],
        &[],
        &["NHI3"],
    ));

    let mut audit = finding(
        "audit",
        "every allow and deny, every limit and the exit, as JSON Lines with the identity and \
         run id, secrets redacted (`warden run --audit FILE`)",
        Vec::new(),
        &["PR.PS-04", "DE.CM-09"],
        &[5, 7],
        &["NHI1", "NHI10"],
    );
    audit.status = Status::Run;
    out.push(audit);

    out.push(finding(
        "host-lockdown",
        "warden's own process runs under a seccomp allow list derived from the manifest: no \
         exec, no fork, no sockets unless network is granted, no new executable memory",
        Vec::new(),
        &["PR.PS-05", "PR.IR-01"],
        &[6],
        &["NHI8"],
    ));

    let mut review = finding(
        "least-privilege-review",
        "`warden learn` writes the narrowest manifest a run needs; `warden check --against` \
         lists grants real runs never used",
        Vec::new(),
        &["PR.AA-05", "ID.IM-01"],
        &[4, 7],
        &["NHI1", "NHI5"],
    );
    review.status = Status::Run;
    out.push(review);
    out
}

/// What the `identity` control leaves open: an identity the organisation did not issue, or
/// one nobody owns.
fn identity_open(policy: &Policy) -> Vec<String> {
    let mut open = Vec::new();
    let id = &policy.identity;
    if id.id == format!("warden://local/{}", id.name) {
        open.push(format!(
            "[identity] has no `id`: the default {} is not an identity your organisation issued",
            id.id
        ));
    }
    if id.owner.is_none() {
        open.push("[identity] has no `owner`: nobody is named to review or retire it".to_owned());
    }
    open
}

/// What `least-privilege-files` leaves open: read-write folders.
fn files_open(policy: &Policy) -> Vec<String> {
    policy
        .files
        .iter()
        .filter(|g| g.kind == FileKind::Dir && g.access == Access::ReadWrite)
        .map(|g| {
            format!(
                "{} is a read-write folder: the guest may create, change and delete anything in \
                 it (grant single files where you can)",
                g.guest
            )
        })
        .collect()
}

/// What `egress-rules` leaves open: broad ranges and wildcards, listening on every interface,
/// writes on a whole origin, cleartext HTTP off the host.
fn egress_open(policy: &Policy) -> Vec<String> {
    let mut open = Vec::new();
    for rule in &policy.network {
        let entry = &rule.entry;
        match rule.host {
            Host::Cidr { net, prefix } => {
                let broad = match net {
                    IpAddr::V4(_) => prefix < BROAD_V4_PREFIX,
                    IpAddr::V6(_) => prefix < BROAD_V6_PREFIX,
                };
                if broad {
                    open.push(format!(
                        "[network] connect {entry}: a range of {} addresses",
                        range_size(net, prefix)
                    ));
                }
            }
            Host::Wildcard(_) => open.push(format!(
                "[network] connect {entry}: any name under the suffix, including ones created \
                 later"
            )),
            Host::Name(_) | Host::Ip(_) => {}
        }
    }
    for rule in &policy.listen {
        if rule.ip.is_unspecified() {
            open.push(format!(
                "[network] listen {}: every interface of the host, reachable from its networks",
                rule.entry
            ));
        }
    }
    for rule in &policy.http {
        let Some((https, host, path)) = split_url(&rule.url) else {
            continue;
        };
        let writes: Vec<&str> = rule
            .methods
            .iter()
            .map(String::as_str)
            .filter(|m| WRITE_METHODS.contains(m))
            .collect();
        if path == "/" && !writes.is_empty() {
            open.push(format!(
                "[[http]] {}: {} on a whole origin (narrow the path)",
                rule.url,
                writes.join(", ")
            ));
        }
        if !https && !is_loopback(host) {
            open.push(format!(
                "[[http]] {}: cleartext HTTP to a host that is not loopback",
                rule.url
            ));
        }
    }
    open
}

/// What `brokered-secrets` leaves open: revealed secrets, and credentials handed over as
/// `[env]`.
fn secrets_open(policy: &Policy) -> Vec<String> {
    let mut open = Vec::new();
    for s in &policy.secrets {
        if s.reveal {
            open.push(format!(
                "[secrets.{}] reveal = true: the guest can read the value",
                s.name
            ));
        }
    }
    for v in &policy.env {
        let upper = v.name.to_ascii_uppercase();
        if CREDENTIAL_WORDS.iter().any(|w| upper.contains(w)) {
            open.push(format!(
                "[env] {}: looks like a credential, and [env] hands its value to the guest \
                 (use [secrets] with inject)",
                v.name
            ));
        }
    }
    open
}

fn range_size(net: IpAddr, prefix: u8) -> String {
    let bits = match net {
        IpAddr::V4(_) => 32u32,
        IpAddr::V6(_) => 128,
    }
    .saturating_sub(u32::from(prefix));
    if bits < 64 {
        (1u64 << bits).to_string()
    } else {
        format!("2^{bits}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_scheme_host_and_path() {
        assert_eq!(
            split_url("https://api.example:8443/v1/x"),
            Some((true, "api.example", "/v1/x"))
        );
        assert_eq!(
            split_url("http://127.0.0.1:8787"),
            Some((false, "127.0.0.1", "/"))
        );
        assert_eq!(split_url("http://[::1]:80/a"), Some((false, "[::1]", "/a")));
        assert!(is_loopback("[::1]") && is_loopback("localhost") && !is_loopback("10.0.0.1"));
        let v4: IpAddr = "10.0.0.0".parse().expect("an IPv4 address");
        let v6: IpAddr = "::".parse().expect("an IPv6 address");
        assert_eq!(range_size(v4, 8), "16777216");
        assert_eq!(range_size(v6, 0), "2^128");
    }
}
