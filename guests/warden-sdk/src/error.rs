//! The one error type of the SDK.

use std::fmt;
use std::io;

use wasip2::http::types::ErrorCode;

/// Why an SDK operation failed.
///
/// Refusals by warden's policy ([`Error::Denied`], [`Error::NotGranted`],
/// [`Error::NotRevealable`]) are kept apart from transport failures ([`Error::Http`]) and from
/// the connector's own mistakes ([`Error::InvalidUrl`], [`Error::InvalidHeader`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// warden refused the request (`HTTP-request-denied`): its URL or method is outside the
    /// manifest's `[[http]]` rules, or it would carry a secret outside the secret's binding.
    /// The refusal is in the audit log.
    Denied {
        /// The refused request's URL.
        url: String,
    },
    /// The request failed for another reason: connection refused, timeout, a response body
    /// over warden's cap, …
    Http {
        /// The failed request's URL.
        url: String,
        /// The wasi:http error code.
        code: ErrorCode,
    },
    /// A URL the SDK cannot send to: it needs `scheme://authority/path`.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header name or value that wasi:http refuses (bad syntax, or one the host forbids a
    /// guest to set, such as `Host` or `Connection`).
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// The manifest grants no secret by this name.
    NotGranted {
        /// The secret's name.
        name: String,
    },
    /// The secret is granted for injection only: its manifest entry does not set
    /// `reveal = true`.
    NotRevealable {
        /// The secret's name.
        name: String,
    },
    /// A file operation failed; outside every `[[files]]` grant a path does not exist.
    Io {
        /// The path the operation was about.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// Whether warden's policy refused the operation (rather than it failing on its own).
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Denied { .. } | Error::NotGranted { .. } | Error::NotRevealable { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::ReadOnlyFilesystem
            ),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Denied { url } => write!(f, "{url}: refused by warden's policy"),
            Error::Http { url, code } => write!(f, "{url}: {}", describe(code)),
            Error::InvalidUrl { url, reason } => write!(f, "{url:?} is not a usable URL: {reason}"),
            Error::InvalidHeader { name } => {
                write!(f, "header {name:?} cannot be set on an outbound request")
            }
            Error::NotGranted { name } => {
                write!(f, "secret {name:?}: not granted by the manifest")
            }
            Error::NotRevealable { name } => write!(
                f,
                "secret {name:?}: granted for injection only, its value cannot be read"
            ),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Http { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A wasi:http error code in words, for the common ones.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::HttpRequestDenied => "refused by warden's policy".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "connection timed out".into(),
        ErrorCode::ConnectionTerminated => "connection closed by the server".into(),
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => "host not found".into(),
        ErrorCode::HttpResponseBodySize(Some(n)) => {
            format!("response body over the allowed size ({n} bytes)")
        }
        ErrorCode::HttpResponseBodySize(None) => "response body over the allowed size".into(),
        ErrorCode::HttpResponseTimeout => "no response in time".into(),
        ErrorCode::InternalError(Some(message)) => format!("internal error: {message}"),
        other => format!("{other:?}"),
    }
}
