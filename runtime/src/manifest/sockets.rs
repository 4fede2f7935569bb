//! `[network] listen` and `[network] udp` entries, typed: parsed once, when the manifest is
//! read, into the rules [`crate::net`] decides with. Std only.
//!
//! Both name an IP address literally (no DNS names, no ranges): a listening address is one of
//! the host's own, and a UDP peer is checked on every datagram, where resolving a name each
//! time is not an option.

use std::net::{IpAddr, SocketAddr};

use super::connect::split_host_port;

/// One `[network] listen` entry: a local address the guest may bind a TCP socket to and
/// listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenRule {
    /// The address, literally: `0.0.0.0` and `::` (every interface) only when written so.
    pub ip: IpAddr,
    /// `0`: any port of `ip`; otherwise that port only.
    pub port: u16,
    /// The entry as written, for audit reasons.
    pub entry: String,
}

/// One `[network] udp` entry: a peer the guest may send datagrams to and receive them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpRule {
    /// The peer's address and port (a port from 1; never `0.0.0.0` or `::`).
    pub addr: SocketAddr,
    /// The entry as written, for audit reasons.
    pub entry: String,
}

/// What a listen entry looks like, for errors and the schema.
pub(crate) const LISTEN_ENTRY: &str = "\"address:port\" where address is an IPv4 address or an \
                                       [IPv6] address of this host and port is 0-65535 (0: any \
                                       port)";

/// What a UDP entry looks like, for errors and the schema.
pub(crate) const UDP_ENTRY: &str = "\"address:port\" where address is an IPv4 address or an \
                                    [IPv6] address and port is 1-65535";

/// `address:port` with an IP literal (IPv6 in brackets) and a decimal port.
fn ip_port(entry: &str) -> Result<(IpAddr, u16), String> {
    let (host, port) = split_host_port(entry)?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the port {port:?} is not a number"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("the port {port} is outside 0-65535"))?;
    let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?,
        None => host
            .parse::<std::net::Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| {
                if host.contains('/') {
                    format!("{host:?} is a range; name one address")
                } else {
                    format!("{host:?} is not an IP address (names are not resolved here)")
                }
            })?,
    };
    if ip.is_multicast() {
        return Err(format!("{ip} is a multicast address"));
    }
    Ok((ip, port))
}

impl ListenRule {
    /// Parses one entry; the error says what is wrong with it (not which entry it was).
    pub fn parse(entry: &str) -> Result<ListenRule, String> {
        let (ip, port) = ip_port(entry)?;
        Ok(ListenRule {
            ip,
            port,
            entry: entry.to_owned(),
        })
    }

    /// Whether this entry allows binding or listening at `addr`. The address must be the
    /// entry's exactly (so `127.0.0.1` never allows `0.0.0.0`, every interface); the port
    /// must be the entry's, unless the entry's is 0. A request for port 0 (an ephemeral
    /// port) is allowed only by an entry with port 0.
    pub fn covers(&self, addr: SocketAddr) -> bool {
        self.ip == addr.ip() && (self.port == 0 || self.port == addr.port())
    }
}

impl UdpRule {
    /// Parses one entry; the error says what is wrong with it (not which entry it was).
    pub fn parse(entry: &str) -> Result<UdpRule, String> {
        let (ip, port) = ip_port(entry)?;
        if port == 0 {
            return Err("the port 0 is outside 1-65535".to_owned());
        }
        if ip.is_unspecified() {
            return Err(format!("{ip} is not a peer's address"));
        }
        Ok(UdpRule {
            addr: SocketAddr::new(ip, port),
            entry: entry.to_owned(),
        })
    }

    /// Whether this entry is the peer `addr` (an IPv4-mapped IPv6 address is the IPv4
    /// address it embeds).
    pub fn covers(&self, addr: SocketAddr) -> bool {
        self.addr.ip().to_canonical() == addr.ip().to_canonical() && self.addr.port() == addr.port()
    }
}

macro_rules! entry_type {
    ($ty:ident, $expect:expr, $desc:expr, $examples:expr) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.entry)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.entry)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::de::from_str(d, $expect, |entry| {
                    $ty::parse(entry)
                        .map_err(|why| format!("{why} in {entry:?}; expected {}", $expect))
                })
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": format!("{}: {}.", $desc, $expect),
                    "examples": $examples,
                })
            }
        }
    };
}

entry_type!(
    ListenRule,
    LISTEN_ENTRY,
    "A local address the guest may bind a TCP socket to and listen on",
    ["127.0.0.1:8080", "127.0.0.1:0", "[::1]:8080"]
);
entry_type!(
    UdpRule,
    UDP_ENTRY,
    "A UDP peer the guest may send datagrams to and receive them from",
    ["10.0.0.53:53", "[fd00::53]:53"]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_entries() {
        let r = ListenRule::parse("127.0.0.1:8080").expect("valid");
        assert!(r.covers("127.0.0.1:8080".parse().expect("addr")));
        assert!(!r.covers("127.0.0.1:8081".parse().expect("addr")));
        assert!(
            !r.covers("127.0.0.1:0".parse().expect("addr")),
            "ephemeral needs port 0"
        );
        assert!(!r.covers("0.0.0.0:8080".parse().expect("addr")));
        let any = ListenRule::parse("127.0.0.1:0").expect("valid");
        assert!(any.covers("127.0.0.1:0".parse().expect("addr")));
        assert!(any.covers("127.0.0.1:41234".parse().expect("addr")));
        assert!(!any.covers("0.0.0.0:41234".parse().expect("addr")));
        let v6 = ListenRule::parse("[::1]:0").expect("valid");
        assert!(v6.covers("[::1]:9".parse().expect("addr")));
        assert!(!v6.covers("[::]:9".parse().expect("addr")));
        let all = ListenRule::parse("0.0.0.0:8080").expect("valid");
        assert!(all.covers("0.0.0.0:8080".parse().expect("addr")));
        assert!(!all.covers("127.0.0.1:8080".parse().expect("addr")));
        for bad in [
            "localhost:80",
            "127.0.0.1",
            "10.0.0.0/8:80",
            "::1:80",
            "1.2.3.4:70000",
            "224.0.0.1:5",
        ] {
            assert!(ListenRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn udp_entries() {
        let r = UdpRule::parse("10.0.0.53:53").expect("valid");
        assert!(r.covers("10.0.0.53:53".parse().expect("addr")));
        assert!(r.covers("[::ffff:10.0.0.53]:53".parse().expect("addr")));
        assert!(!r.covers("10.0.0.53:54".parse().expect("addr")));
        assert!(!r.covers("10.0.0.54:53".parse().expect("addr")));
        for bad in [
            "dns.example:53",
            "10.0.0.53:0",
            "0.0.0.0:53",
            "10.0.0.0/8:53",
            "10.0.0.53",
        ] {
            assert!(UdpRule::parse(bad).is_err(), "{bad}");
        }
    }
}
