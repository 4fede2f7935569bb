//! Network rules: the `[network]` entries of a manifest — `connect` (typed when the manifest is
//! read, see [`crate::manifest::ConnectRule`]), `listen` ([`ListenRule`]) and `udp`
//! ([`UdpRule`]) — and the decisions made from them. Pure logic, no I/O: the caller resolves
//! names and opens sockets, and asks this module first. What follows is about `connect`;
//! `listen` and `udp` entries are IP literals matched exactly ([`NetRules::listen_allowed`],
//! [`NetRules::udp_allowed`]).
//!
//! An entry names a host and a port: `api.example.com:443`, `*.svc.example:443`,
//! `192.0.2.7:8080`, `[2001:db8::7]:443`, `10.1.0.0/16:5432` or `[fd00::]/8:443`. Names are
//! matched case-insensitively and without a trailing dot; `*.svc.example` matches any name with
//! at least one more label than `svc.example`, but not `svc.example` itself.
//!
//! Addresses that are not ordinary public ones (loopback, private, link-local, cloud metadata
//! endpoints, multicast, …; see [`special_range`]) are refused unless an entry names that
//! address or a range containing it literally. A listed DNS name that resolves to such an
//! address does not make it reachable: otherwise anyone who controls that name's DNS could
//! point the guest at the host's own services or at the cloud metadata endpoint.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address they embed, for matching
//! as for refusal.

use crate::manifest::connect::{full_prefix, mask_v4, mask_v6};
pub use crate::manifest::{ConnectRule, Host, ListenRule, UdpRule};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

impl ConnectRule {
    /// Whether this is an `Ip` or `Cidr` rule covering `ip`, whatever the port.
    fn covers_ip(&self, ip: IpAddr) -> bool {
        let (net, prefix) = match self.host {
            Host::Ip(rule_ip) => canonical_range(rule_ip, full_prefix(rule_ip)),
            Host::Cidr { net, prefix } => canonical_range(net, prefix),
            Host::Name(_) | Host::Wildcard(_) => return false,
        };
        in_range(ip.to_canonical(), net, prefix)
    }

    /// Whether this is a `Name` or `Wildcard` rule matching `name`, which is already
    /// normalized (see [`normalize_name`]).
    fn covers_name(&self, name: &str) -> bool {
        match &self.host {
            Host::Name(rule) => rule == name,
            Host::Wildcard(suffix) => name
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
            Host::Ip(_) | Host::Cidr { .. } => false,
        }
    }
}

/// A decision and why, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The `[network]` entry that allowed it, as the manifest writes it.
    pub grant: Option<String>,
    pub reason: String,
}

impl Verdict {
    fn allow(reason: String) -> Self {
        Verdict {
            allowed: true,
            grant: None,
            reason,
        }
    }

    /// Allowed by the entry `grant`.
    fn granted(grant: &str, reason: String) -> Self {
        Verdict {
            allowed: true,
            grant: Some(grant.to_owned()),
            reason,
        }
    }

    fn deny(reason: String) -> Self {
        Verdict {
            allowed: false,
            grant: None,
            reason,
        }
    }
}

/// All `[network]` entries of a manifest: `connect` (the rules proper), `listen` and `udp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetRules {
    rules: Vec<ConnectRule>,
    listen: Vec<ListenRule>,
    udp: Vec<UdpRule>,
}

impl NetRules {
    /// The `connect` entries alone.
    pub fn new(rules: Vec<ConnectRule>) -> Self {
        NetRules {
            rules,
            listen: Vec::new(),
            udp: Vec::new(),
        }
    }

    /// These rules with `listen` entries.
    #[must_use]
    pub fn with_listen(mut self, listen: Vec<ListenRule>) -> Self {
        self.listen = listen;
        self
    }

    /// These rules with `udp` entries.
    #[must_use]
    pub fn with_udp(mut self, udp: Vec<UdpRule>) -> Self {
        self.udp = udp;
        self
    }

    /// Whether there are `listen` entries.
    pub fn has_listen(&self) -> bool {
        !self.listen.is_empty()
    }

    /// Whether there are `udp` entries.
    pub fn has_udp(&self) -> bool {
        !self.udp.is_empty()
    }

    /// May the guest bind a TCP socket to, or listen at, `addr` (`what`: "bind" or
    /// "listen", for the reason)? Only a `listen` entry naming that address exactly allows it
    /// (see [`ListenRule::covers`]): `0.0.0.0` and `::`, every interface, only when listed
    /// literally; a port-0 request (an ephemeral port) only by an entry with port 0.
    pub fn listen_allowed(&self, addr: SocketAddr) -> Verdict {
        if let Some(rule) = self.listen.iter().find(|r| r.covers(addr)) {
            return Verdict::granted(&rule.entry, format!("listen entry {:?}", rule.entry));
        }
        let why = if self.listen.is_empty() {
            "no [network] listen entry: listening sockets are not granted".to_owned()
        } else if addr.ip().is_unspecified() {
            format!(
                "{} is every interface of the host; only a listen entry naming it literally \
                 allows it",
                addr.ip()
            )
        } else if self.listen.iter().any(|r| r.ip == addr.ip()) {
            format!(
                "no [network] listen entry allows port {} of {}",
                addr.port(),
                addr.ip()
            )
        } else {
            format!("no [network] listen entry allows {addr}")
        };
        Verdict::deny(why)
    }

    /// May the guest exchange datagrams with `peer`? Only a `udp` entry naming it exactly
    /// (address and port) allows it.
    pub fn udp_allowed(&self, peer: SocketAddr) -> Verdict {
        match self.udp.iter().find(|r| r.covers(peer)) {
            Some(rule) => Verdict::granted(&rule.entry, format!("udp entry {:?}", rule.entry)),
            None if self.udp.is_empty() => {
                Verdict::deny("no [network] udp entry: UDP is not granted".to_owned())
            }
            None => Verdict::deny(format!("no [network] udp entry allows {peer}")),
        }
    }

    /// Parses every entry (with [`ConnectRule::parse`], as the manifest does); the error names
    /// the first bad one.
    pub fn parse(entries: &[String]) -> Result<NetRules, String> {
        let rules = entries
            .iter()
            .map(|entry| {
                ConnectRule::parse(entry)
                    .map_err(|err| format!("[network] connect entry {entry:?}: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetRules::new(rules))
    }

    /// Whether no entry of any kind grants sockets.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.listen.is_empty() && self.udp.is_empty()
    }

    pub fn rules(&self) -> &[ConnectRule] {
        &self.rules
    }

    /// Whether the guest may resolve this name: an exact `Name` rule or a `Wildcard` rule
    /// matches it (case-insensitive, a trailing dot ignored). An IP literal given as a name is
    /// allowed only if some `Ip`/`Cidr` rule covers that address (any port). The reason names
    /// the matching entry.
    pub fn name_allowed(&self, name: &str) -> Verdict {
        if let Some(ip) = parse_ip_literal(name) {
            return match self.rules.iter().find(|rule| rule.covers_ip(ip)) {
                Some(rule) => {
                    Verdict::granted(&rule.entry, format!("connect entry {:?}", rule.entry))
                }
                None => Verdict::deny(format!("no [network] connect entry covers {ip}")),
            };
        }
        let Some(normal) = normalize_name(name) else {
            return Verdict::deny(format!("{name:?} is not a DNS name"));
        };
        match self.rules.iter().find(|rule| rule.covers_name(&normal)) {
            Some(rule) => Verdict::granted(&rule.entry, format!("connect entry {:?}", rule.entry)),
            None => Verdict::deny(format!("no [network] connect entry names {normal}")),
        }
    }

    /// May the guest connect to `addr`? `via_names` are the listed names that, in this run,
    /// resolved to `addr.ip()` (the caller keeps that record).
    ///
    /// An entry naming the address or a range containing it, with the same port, allows it
    /// even if it is in a [`special_range`]; otherwise a special address is refused, even if a
    /// listed name resolved to it; otherwise a `Name`/`Wildcard` entry with the same port that
    /// matches one of `via_names` allows it.
    pub fn connect_allowed(&self, addr: SocketAddr, via_names: &[String]) -> Verdict {
        let (ip, port) = (addr.ip(), addr.port());
        let mut other_port = false;
        // A cloud metadata endpoint hands out the host's own credentials: only an entry naming
        // that exact address reaches it, never a range that happens to contain it.
        let metadata = special_range(ip) == Some(CLOUD_METADATA);
        let covering = self
            .rules
            .iter()
            .filter(|rule| rule.covers_ip(ip))
            .filter(|rule| !metadata || matches!(rule.host, Host::Ip(_)));
        for rule in covering {
            if rule.port == port {
                return Verdict::granted(&rule.entry, format!("connect entry {:?}", rule.entry));
            }
            other_port = true;
        }
        let names: Vec<(String, &String)> = via_names
            .iter()
            .filter_map(|name| normalize_name(name).map(|normal| (normal, name)))
            .collect();
        if let Some(kind) = special_range(ip) {
            let via = match names.first() {
                Some((_, name)) => format!(" (resolved from {name:?})"),
                None => String::new(),
            };
            return Verdict::deny(format!(
                "{ip}{via} is {kind}; only an entry naming that address or range literally \
                 allows it"
            ));
        }
        for (normal, name) in &names {
            for rule in self.rules.iter().filter(|rule| rule.covers_name(normal)) {
                if rule.port == port {
                    return Verdict::granted(
                        &rule.entry,
                        format!("connect entry {:?} (via name {name:?})", rule.entry),
                    );
                }
                other_port = true;
            }
        }
        if other_port {
            Verdict::deny(format!(
                "no [network] connect entry allows port {port} of {ip}"
            ))
        } else {
            Verdict::deny(format!("no [network] connect entry allows {addr}"))
        }
    }
}

/// For a connection made on behalf of an `[[http]]` rule whose host is `url_host` (a name or
/// an IP literal as written in the rule, IPv6 possibly in brackets): allowed iff the address is
/// not in a [`special_range`], or `url_host` is an IP literal equal to `ip`.
pub fn http_address_allowed(url_host: &str, ip: IpAddr) -> Verdict {
    if parse_ip_literal(url_host).is_some_and(|lit| lit.to_canonical() == ip.to_canonical()) {
        return Verdict::allow(format!("the [[http]] URL names {ip} literally"));
    }
    match special_range(ip) {
        Some(kind) => Verdict::deny(format!(
            "{ip} (resolved from {url_host:?}) is {kind}; an [[http]] URL reaches it only by \
             naming that address literally"
        )),
        None => Verdict::allow(format!("{ip} (for {url_host:?}) is a public address")),
    }
}

/// Why an address is not an ordinary public address; such addresses are refused unless a rule
/// names them literally. IPv4-mapped, IPv4-compatible, NAT64 (`64:ff9b::/96`) and 6to4
/// addresses are judged by the IPv4 address they embed.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

/// The reason [`special_range`] gives for a cloud metadata endpoint.
pub const CLOUD_METADATA: &str = "cloud metadata";

/// IPv4 ranges that are not ordinary public addresses; the first match names the reason, so
/// the cloud metadata endpoints come before the ranges that contain them.
const SPECIAL_V4: &[([u8; 4], u8, &str)] = &[
    ([169, 254, 169, 254], 32, CLOUD_METADATA), // AWS, GCP, Azure, OCI, … instance metadata
    ([169, 254, 170, 2], 32, CLOUD_METADATA),   // AWS ECS task metadata and credentials
    ([169, 254, 170, 23], 32, CLOUD_METADATA),  // AWS EKS Pod Identity agent
    ([100, 100, 100, 200], 32, CLOUD_METADATA), // Alibaba Cloud metadata
    ([168, 63, 129, 16], 32, CLOUD_METADATA),   // Azure wire server
    ([0, 0, 0, 0], 32, "unspecified"),
    ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([10, 0, 0, 0], 8, "private"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 168, 0, 0], 16, "private"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([255, 255, 255, 255], 32, "broadcast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

/// The same for IPv6, after the ranges that embed an IPv4 address (see [`special_v6`]).
const SPECIAL_V6: &[(u128, u8, &str)] = &[
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        CLOUD_METADATA,
    ), // AWS instance metadata
    (
        0xfd00_0ec2_0000_0000_0000_0000_0000_0023,
        128,
        CLOUD_METADATA,
    ), // AWS EKS Pod Identity
    (0, 128, "unspecified"),
    (1, 128, "loopback"),
    (0x0064_ff9b_0001 << 80, 48, "local-use NAT64"),
    (0x0100 << 112, 64, "discard-only"),
    (0x2001_0db8 << 96, 32, "documentation"),
    (0xfc00 << 112, 7, "unique local"),
    (0xfe80 << 112, 10, "link-local"),
    (0xfec0 << 112, 10, "site-local (deprecated)"),
    (0xff00 << 112, 8, "multicast"),
];

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    SPECIAL_V4
        .iter()
        .find(|(net, prefix, _)| in_range_v4(bits, u32::from_be_bytes(*net), *prefix))
        .map(|(_, _, kind)| *kind)
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let o = ip.octets();
    // IPv4-compatible (`::a.b.c.d`, but not `::` or `::1`), IPv4-mapped and NAT64 addresses:
    // the low 32 bits decide. 6to4 (`2002::/16`): bits 16..48 do.
    let compatible = in_range_v6(bits, 0, 96) && bits > 1;
    if compatible || in_range_v6(bits, 0xffff << 32, 96) || in_range_v6(bits, 0x64_ff9b << 96, 96) {
        return special_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if in_range_v6(bits, 0x2002 << 112, 16) {
        return special_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    SPECIAL_V6
        .iter()
        .find(|(net, prefix, _)| in_range_v6(bits, *net, *prefix))
        .map(|(_, _, kind)| *kind)
}

/// A name the guest asked for, lower-case and without one trailing dot; `None` if it has empty
/// labels or characters no host name has (`_` is kept: some service names use it).
fn normalize_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| name.to_ascii_lowercase())
}

/// An IPv4 or IPv6 literal, the latter possibly in brackets.
fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    inner.parse().ok()
}

/// A rule's range with an IPv4-mapped IPv6 range (`::ffff:0:0/96` or narrower) turned into the
/// IPv4 range it stands for, so it matches addresses compared in their canonical form.
fn canonical_range(net: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match net {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (net, prefix),
        },
        _ => (net, prefix),
    }
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => in_range_v4(u32::from(ip), u32::from(net), prefix),
        (IpAddr::V6(ip), IpAddr::V6(net)) => in_range_v6(u128::from(ip), u128::from(net), prefix),
        _ => false,
    }
}

fn in_range_v4(ip: u32, net: u32, prefix: u8) -> bool {
    mask_v4(ip, prefix) == mask_v4(net, prefix)
}

fn in_range_v6(ip: u128, net: u128, prefix: u8) -> bool {
    mask_v6(ip, prefix) == mask_v6(net, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(entries: &[&str]) -> NetRules {
        NetRules::parse(&strings(entries)).expect("valid entries")
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    fn host(entry: &str) -> Host {
        ConnectRule::parse(entry).expect("valid entry").host
    }

    fn cidr(net: &str, prefix: u8) -> Host {
        Host::Cidr {
            net: ip(net),
            prefix,
        }
    }

    /// `connect_allowed` for `addr` (`ip:port`, IPv6 in brackets) reached through `via`.
    fn connect(r: &NetRules, addr: &str, via: &[&str]) -> Verdict {
        r.connect_allowed(addr.parse().expect("a socket address"), &strings(via))
    }

    #[test]
    fn parses_every_entry_form() {
        let rule = ConnectRule::parse("Api.Example.COM:443").expect("valid");
        assert_eq!(rule.host, Host::Name("api.example.com".into()));
        assert_eq!(
            (rule.port, rule.entry.as_str()),
            (443, "Api.Example.COM:443")
        );
        assert_eq!(
            host("*.Svc.example:1"),
            Host::Wildcard("svc.example".into())
        );
        assert_eq!(host("1.2.3.4:65535"), Host::Ip(ip("1.2.3.4")));
        assert_eq!(host("[::1]:80"), Host::Ip(ip("::1")));
        assert_eq!(host("10.1.0.0/16:5432"), cidr("10.1.0.0", 16));
        assert_eq!(host("[fd00::]/8:443"), cidr("fd00::", 8));
        // The network address is masked to the prefix.
        assert_eq!(host("10.1.2.3/16:1"), cidr("10.1.0.0", 16));
        assert_eq!(host("[fd12:3456::1]/16:1"), cidr("fd12::", 16));
        assert_eq!(host("8.8.8.8/0:1"), cidr("0.0.0.0", 0));
    }

    #[test]
    fn rejects_what_the_manifest_parser_rejects() {
        let junk = "example.com example.com: example.com:0 example.com:65536 example.com:x1 :80 \
                    ::1:80 [::1:80 [::1] [::1]x:80 [1.2.3.4]:80 [::1]/129:80 10.0.0.0/33:80 \
                    10.0.0.0/:80 10.0.0/8:80 example.com/8:80 a.*.example:80 *example.com:80 \
                    -bad.example:80 under_score.example:80 1.2.3:80 example.123:80 a..b:80";
        for bad in junk.split_whitespace().chain(["", "exa mple.com:80"]) {
            assert!(ConnectRule::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let err = NetRules::parse(&strings(&["ok.example:1", "nope"])).expect_err("bad entry");
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn wildcard_needs_at_least_one_more_label() {
        let r = rules(&["*.svc.example:443"]);
        let verdict = r.name_allowed("a.svc.example");
        assert_eq!(verdict.reason, "connect entry \"*.svc.example:443\"");
        assert!(verdict.allowed && r.name_allowed("x.y.svc.example").allowed);
        for name in [
            "svc.example",
            "evilsvc.example",
            ".svc.example",
            "svc.example.evil",
        ] {
            assert!(!r.name_allowed(name).allowed, "{name}");
        }
    }

    #[test]
    fn names_ignore_case_and_one_trailing_dot() {
        let r = rules(&["api.example.com:443", "*.Svc.Example:443"]);
        for name in [
            "API.example.com",
            "api.example.com.",
            "Api.Example.Com.",
            "A.SVC.example.",
        ] {
            assert!(r.name_allowed(name).allowed, "{name}");
        }
        for name in ["api.example.com..", "other.example.com", "", "."] {
            assert!(!r.name_allowed(name).allowed, "{name}");
        }
        assert!(connect(&r, "93.184.216.34:443", &["API.Example.com."]).allowed);
    }

    #[test]
    fn ip_literal_names_need_an_ip_rule() {
        let r = rules(&["10.0.0.0/8:5432", "[2001:db8::1]:443", "localhost:80"]);
        for name in ["10.9.8.7", "[2001:db8::1]", "2001:db8::1", "localhost"] {
            assert!(r.name_allowed(name).allowed, "{name}");
        }
        assert!(!r.name_allowed("11.0.0.1").allowed);
        // Listing a name lets the guest resolve it, not reach a loopback address it resolves to.
        assert!(!connect(&r, "127.0.0.1:80", &["localhost"]).allowed);
    }

    #[test]
    fn special_ranges_with_reasons() {
        // reason | addresses (IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms included)
        let table = "
            loopback | 127.0.0.1 127.255.255.254 ::1 ::ffff:127.0.0.1 ::127.0.0.1 2002:7f00:1::
            private | 10.0.0.1 172.16.0.1 172.31.255.255 192.168.1.1 64:ff9b::192.168.0.1
            link-local | 169.254.0.1 169.254.255.255 fe80::1 febf::1 ::ffff:169.254.1.1
            cloud metadata | 169.254.169.254 169.254.170.2 100.100.100.200 168.63.129.16
            cloud metadata | fd00:ec2::254 ::ffff:169.254.169.254 64:ff9b::169.254.169.254
            shared address space (CGNAT) | 100.64.0.1 100.127.255.255 ::ffff:100.64.0.1
            unspecified | 0.0.0.0 :: ::ffff:0.0.0.0
            \"this network\" (0.0.0.0/8) | 0.1.2.3
            broadcast | 255.255.255.255
            multicast | 224.0.0.1 239.255.255.250 ff02::1 ::ffff:224.0.0.1
            reserved | 240.0.0.1 255.255.255.254
            unique local | fc00::1 fd12:3456::1 fdff:ffff::1
            documentation | 192.0.2.1 2001:db8::1";
        for line in table.lines().filter(|line| !line.trim().is_empty()) {
            let (kind, addrs) = line.trim().split_once(" | ").expect("a table row");
            for addr in addrs.split_whitespace() {
                assert_eq!(special_range(ip(addr)), Some(kind), "{addr}");
            }
        }
        let public = "8.8.8.8 172.32.0.1 172.15.255.255 100.128.0.1 168.63.129.17 \
                      2606:4700::1111 ::ffff:8.8.8.8 64:ff9b::8.8.8.8 2002:808:808:: fe00::1";
        for addr in public.split_whitespace() {
            assert_eq!(special_range(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn a_literal_rule_allows_a_special_address() {
        let r = rules(&["127.0.0.1:8080", "169.254.169.254:80"]);
        let verdict = connect(&r, "127.0.0.1:8080", &[]);
        assert_eq!(
            verdict,
            Verdict::granted("127.0.0.1:8080", "connect entry \"127.0.0.1:8080\"".into())
        );
        // The same address written as IPv4-mapped IPv6 is the same address.
        assert!(connect(&r, "[::ffff:127.0.0.1]:8080", &[]).allowed);
        assert!(connect(&r, "169.254.169.254:80", &[]).allowed);
        assert!(!connect(&r, "127.0.0.2:8080", &[]).allowed);
        assert!(connect(&rules(&["[::ffff:127.0.0.1]:8080"]), "127.0.0.1:8080", &[]).allowed);
    }

    #[test]
    fn a_listed_name_resolving_to_a_special_address_is_refused() {
        let r = rules(&["db.example.com:5432", "*.svc.example:443"]);
        for (addr, name, kind) in [
            ("127.0.0.1:5432", "db.example.com", "loopback"),
            ("10.0.0.5:5432", "db.example.com", "private"),
            ("[::ffff:192.168.0.9]:5432", "db.example.com", "private"),
            ("169.254.169.254:443", "meta.svc.example", CLOUD_METADATA),
            ("[fd00:ec2::254]:443", "meta.svc.example", CLOUD_METADATA),
        ] {
            let verdict = connect(&r, addr, &[name]);
            assert!(!verdict.allowed, "{addr}");
            assert!(verdict.reason.contains(kind), "{}", verdict.reason);
            assert!(verdict.reason.contains("literally"), "{}", verdict.reason);
        }
        assert_eq!(
            connect(&r, "127.0.0.1:5432", &[]).reason,
            "127.0.0.1 is loopback; only an entry naming that address or range literally allows it"
        );
    }

    #[test]
    fn a_listed_name_allows_its_public_address_on_its_port_only() {
        let r = rules(&["db.example.com:5432", "1.2.3.4:80"]);
        let verdict = connect(&r, "93.184.216.34:5432", &["db.example.com"]);
        assert!(verdict.allowed);
        assert!(
            verdict.reason.contains("db.example.com:5432"),
            "{}",
            verdict.reason
        );
        let verdict = connect(&r, "93.184.216.34:5433", &["db.example.com"]);
        assert!(!verdict.allowed);
        assert!(verdict.reason.contains("port 5433"), "{}", verdict.reason);
        let verdict = connect(&r, "1.2.3.4:81", &[]);
        assert_eq!(
            verdict.reason,
            "no [network] connect entry allows port 81 of 1.2.3.4"
        );
        let verdict = connect(&r, "93.184.216.34:5432", &[]);
        assert_eq!(
            verdict.reason,
            "no [network] connect entry allows 93.184.216.34:5432"
        );
        assert!(!connect(&r, "93.184.216.34:5432", &["x.example"]).allowed);
    }

    #[test]
    fn cidr_edges() {
        let r = rules(&[
            "10.1.0.0/16:5432",
            "[2001:db8:1::]/48:443",
            "[::ffff:10.0.0.0]/104:80",
        ]);
        // First and last address in, one past either end out; an IPv4-mapped range covers the
        // IPv4 addresses it maps.
        let inside = "10.1.0.0:5432 10.1.255.255:5432 [2001:db8:1::]:443 \
                      [2001:db8:1:ffff:ffff:ffff:ffff:ffff]:443 10.0.0.0:80 10.255.255.255:80";
        let outside = "10.0.255.255:5432 10.2.0.0:5432 10.1.0.1:5433 [2001:db8:2::]:443 \
                       [2001:db8:0:ffff:ffff:ffff:ffff:ffff]:443 9.255.255.255:80 11.0.0.0:80";
        for addr in inside.split_whitespace() {
            assert!(connect(&r, addr, &[]).allowed, "{addr}");
        }
        for addr in outside.split_whitespace() {
            assert!(!connect(&r, addr, &[]).allowed, "{addr}");
        }
        let all = rules(&["0.0.0.0/0:443", "169.254.0.0/16:80"]);
        assert!(connect(&all, "127.0.0.1:443", &[]).allowed);
        assert!(!connect(&all, "[2606:4700::1]:443", &[]).allowed);
        // A range never reaches a metadata endpoint inside it; only its exact address does.
        assert!(!connect(&all, "169.254.169.254:443", &[]).allowed);
        assert!(!connect(&all, "169.254.169.254:80", &[]).allowed);
        assert!(connect(&all, "169.254.1.1:80", &[]).allowed);
        let exact = rules(&["169.254.169.254:80"]);
        assert!(connect(&exact, "169.254.169.254:80", &[]).allowed);
    }

    #[test]
    fn http_addresses() {
        let allowed = |url_host: &str, addr: &str| http_address_allowed(url_host, ip(addr)).allowed;
        assert!(allowed("api.example.com", "93.184.216.34"));
        assert!(!allowed("api.example.com", "127.0.0.1"));
        assert!(!allowed("api.example.com", "::ffff:169.254.169.254"));
        assert!(!allowed("api.example.com", "10.0.0.1"));
        assert!(allowed("127.0.0.1", "127.0.0.1"));
        assert!(allowed("[::1]", "::1"));
        assert!(allowed("127.0.0.1", "::ffff:127.0.0.1"));
        assert!(!allowed("127.0.0.1", "127.0.0.2"));
        assert!(!allowed("[::1]", "127.0.0.1"));
        let reason = http_address_allowed("meta.example", ip("169.254.169.254")).reason;
        assert!(reason.contains(CLOUD_METADATA), "{reason}");
    }

    #[test]
    fn listen_and_udp_decisions() {
        let r = NetRules::default()
            .with_listen(vec![ListenRule::parse("127.0.0.1:8080").expect("valid")])
            .with_udp(vec![UdpRule::parse("127.0.0.1:5353").expect("valid")]);
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert!(r.listen_allowed(addr("127.0.0.1:8080")).allowed);
        let other = r.listen_allowed(addr("127.0.0.1:8081"));
        assert!(
            !other.allowed && other.reason.contains("port 8081"),
            "{other:?}"
        );
        let every = r.listen_allowed(addr("0.0.0.0:8080"));
        assert!(
            !every.allowed && every.reason.contains("every interface"),
            "{every:?}"
        );
        assert!(r.udp_allowed(addr("127.0.0.1:5353")).allowed);
        assert!(!r.udp_allowed(addr("127.0.0.1:5354")).allowed);
        assert!(!r.is_empty());
        let none = NetRules::default();
        assert!(none.is_empty());
        assert!(!none.listen_allowed(addr("127.0.0.1:8080")).allowed);
        assert!(!none.udp_allowed(addr("127.0.0.1:5353")).allowed);
    }
}
