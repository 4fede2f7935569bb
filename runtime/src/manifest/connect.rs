//! `[network] connect` entries, typed: parsed once, when the manifest is read, into the rules
//! [`crate::net`] decides with. Std only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host of one `[network] connect` entry, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lower-case, without a trailing dot.
    Name(String),
    /// `*.suffix`: the suffix, lower-case. Matches any name with at least one more label than
    /// the suffix, never the bare suffix itself.
    Wildcard(String),
    /// One address.
    Ip(IpAddr),
    /// A range; `net` is already masked to `prefix` bits.
    Cidr {
        /// The range's first address.
        net: IpAddr,
        /// The prefix length in bits.
        prefix: u8,
    },
}

/// One `[network] connect` entry, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRule {
    /// What the entry names: a DNS name, a wildcard, an address or a range.
    pub host: Host,
    /// The one port the entry allows, 1-65535.
    pub port: u16,
    /// The entry as written, for audit reasons.
    pub entry: String,
}

impl ConnectRule {
    /// Parses one entry; the error says what is wrong with it (not which entry it was).
    pub fn parse(entry: &str) -> Result<ConnectRule, String> {
        let (host, port) = split_host_port(entry)?;
        let port = parse_port(port)?;
        let host = parse_host(host)?;
        Ok(ConnectRule {
            host,
            port,
            entry: entry.to_owned(),
        })
    }
}

/// Splits `host:port`: a host starting with `[` ends at the
/// first `]` plus whatever comes before the last `:` after it (so `[fd00::]/8:443` has the host
/// `[fd00::]/8`); otherwise the host may not contain a `:`.
pub(crate) fn split_host_port(entry: &str) -> Result<(&str, &str), String> {
    if entry.starts_with('[') {
        let close = entry
            .find(']')
            .ok_or("an IPv6 address is missing its closing `]`")?;
        let after = &entry[close + 1..];
        let colon = after.rfind(':').ok_or("there is no `:port`")?;
        return Ok((&entry[..close + 1 + colon], &after[colon + 1..]));
    }
    match entry.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err("an IPv6 address must be written in brackets, like [fd00::1]".to_owned())
        }
        Some(parts) => Ok(parts),
        None => Err("there is no `:port`".to_owned()),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the port {port:?} is not a number"));
    }
    match port.parse::<u16>() {
        Ok(n) if n != 0 => Ok(n),
        _ => Err(format!("the port {port} is outside 1-65535")),
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    let (ip, prefix) = if let Some(inner) = host.strip_prefix('[') {
        let (addr, tail) = inner
            .split_once(']')
            .ok_or("an IPv6 address is missing its closing `]`")?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
        let prefix = match tail {
            "" => None,
            _ => Some(
                tail.strip_prefix('/')
                    .ok_or_else(|| format!("unexpected {tail:?} after `]`"))?,
            ),
        };
        (IpAddr::V6(addr), prefix)
    } else if let Some((addr, prefix)) = host.split_once('/') {
        let addr: Ipv4Addr = addr.parse().map_err(|_| {
            format!("{addr:?} is not an IPv4 address (a CIDR needs an IP address before the `/`)")
        })?;
        (IpAddr::V4(addr), Some(prefix))
    } else if let Ok(addr) = host.parse::<Ipv4Addr>() {
        (IpAddr::V4(addr), None)
    } else {
        return parse_name(host);
    };
    let Some(prefix) = prefix else {
        return Ok(Host::Ip(ip));
    };
    let prefix = parse_prefix(prefix, full_prefix(ip))?;
    let net = match ip {
        IpAddr::V4(v4) => IpAddr::V4(mask_v4(u32::from(v4), prefix).into()),
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), prefix).into()),
    };
    Ok(Host::Cidr { net, prefix })
}

/// `name` or `*.name`, validated and lower-cased.
fn parse_name(host: &str) -> Result<Host, String> {
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(suffix) => (true, suffix),
        None => (false, host),
    };
    if name.contains('*') {
        return Err("a wildcard may only be a leading `*.`".to_owned());
    }
    if !is_dns_name(name) {
        return Err(format!("{host:?} is not a DNS name or IP address"));
    }
    let name = name.to_ascii_lowercase();
    Ok(if wildcard {
        Host::Wildcard(name)
    } else {
        Host::Name(name)
    })
}

/// A CIDR prefix length: one to three digits, at most `max`.
fn parse_prefix(prefix: &str, max: u8) -> Result<u8, String> {
    let ok = !prefix.is_empty() && prefix.len() <= 3 && prefix.bytes().all(|b| b.is_ascii_digit());
    match prefix.parse::<u8>() {
        Ok(n) if ok && n <= max => Ok(n),
        _ => Err(format!("the CIDR prefix length {prefix:?} is not 0-{max}")),
    }
}

pub(crate) fn full_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

pub(crate) fn mask_v4(bits: u32, prefix: u8) -> u32 {
    bits & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

pub(crate) fn mask_v6(bits: u128, prefix: u8) -> u128 {
    bits & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// Letters, digits and `-` in dot-separated labels of 1-63 characters, no label starting or
/// ending with `-`, at most 253 characters, and not ending in an all-digit label (which would
/// be a malformed IPv4 address).
pub(crate) fn is_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric
}

/// What a connect entry looks like, for errors and the schema.
pub(crate) const ENTRY: &str = "\"host:port\" where host is a DNS name, *.domain, an IPv4 \
                                address, an [IPv6] address or a CIDR such as \"10.1.0.0/16\", \
                                and port is 1-65535";

impl ConnectRule {
    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.entry
    }
}

/// A rule reads as the entry it was written as, so listing and comparing rules stays simple.
impl std::ops::Deref for ConnectRule {
    type Target = str;
    fn deref(&self) -> &str {
        &self.entry
    }
}

impl std::fmt::Display for ConnectRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.entry)
    }
}

impl PartialEq<&str> for ConnectRule {
    fn eq(&self, other: &&str) -> bool {
        self.entry == *other
    }
}

impl PartialEq<str> for ConnectRule {
    fn eq(&self, other: &str) -> bool {
        self.entry == other
    }
}

impl serde::Serialize for ConnectRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.entry)
    }
}

impl<'de> serde::Deserialize<'de> for ConnectRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de::from_str(d, ENTRY, |entry| {
            ConnectRule::parse(entry).map_err(|why| format!("{why} in {entry:?}; expected {ENTRY}"))
        })
    }
}

impl schemars::JsonSchema for ConnectRule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConnectRule".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": format!("A destination the guest may open sockets to: {ENTRY}."),
            "examples": ["api.example.com:443", "*.svc.example:443", "10.1.0.0/16:5432", "[2001:db8::7]:443"],
        })
    }
}
