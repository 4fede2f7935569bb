//! URLs of `[[http]]` rules and of a secret's `inject.url`, typed: parsed once, when the
//! manifest is read, into the prefix the broker matches requests against. Std only.

use std::net::Ipv6Addr;

/// What a rule URL looks like, for errors and the schema.
pub(crate) const URL: &str =
    "an http:// or https:// URL with a host, such as \"https://api.example.com/v1/\"";

/// A URL prefix: what an `[[http]]` rule or a secret's `inject.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPrefix {
    /// `true` for an `https://` URL, `false` for `http://`.
    pub https: bool,
    /// Lower case, without a trailing dot; an IPv6 address without brackets.
    pub host: String,
    /// The URL's port, or the scheme's (443, 80).
    pub port: u16,
    /// The path, starting with `/`, without query or fragment.
    pub path: String,
}

impl UrlPrefix {
    /// Parses an `http://` or `https://` URL with a host (no credentials, no whitespace, ASCII
    /// only); the error says what is wrong with it.
    ///
    /// # Errors
    /// The URL is not such a URL.
    pub fn parse(url: &str) -> Result<UrlPrefix, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("the scheme is not http:// or https://".to_owned());
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it contains whitespace or a control character".to_owned());
        }
        if !url.is_ascii() {
            return Err("it contains a non-ASCII character (percent-encode it)".to_owned());
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(
                "credentials do not belong in the URL (use [secrets] with inject)".to_owned(),
            );
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err("an IPv6 host is missing its closing `]`".to_owned());
            };
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err("the host is malformed".to_owned()),
            };
            if addr.is_empty() {
                return Err("there is no host".to_owned());
            }
            if addr.parse::<Ipv6Addr>().is_err() {
                return Err(format!("{addr:?} is not an IPv6 address"));
            }
            (addr, port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err("there is no host".to_owned());
            }
            let ok = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                return Err(format!("the host {host:?} is not a DNS name or IP address"));
            }
            (host, port)
        };
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("the port {p:?} is not 1-65535")),
            },
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err("there is no host".to_owned());
        }
        let path = tail.split(['?', '#']).next().unwrap_or("");
        Ok(UrlPrefix {
            https,
            host,
            port,
            path: if path.is_empty() { "/" } else { path }.to_owned(),
        })
    }
}

/// A URL as written in the manifest, with its typed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleUrl {
    pub text: String,
    pub prefix: UrlPrefix,
}

impl<'de> serde::Deserialize<'de> for RuleUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de::from_str(d, URL, |url| {
            let prefix =
                UrlPrefix::parse(url).map_err(|why| format!("{why} in {url:?}; expected {URL}"))?;
            Ok(RuleUrl {
                text: url.to_owned(),
                prefix,
            })
        })
    }
}

impl schemars::JsonSchema for RuleUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RuleUrl".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^https?://[^@/?#\\s]+",
            "description": format!("A URL prefix: {URL}. A path ending in `/` covers everything below it."),
        })
    }
}
