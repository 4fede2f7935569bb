//! Outbound HTTP over `wasi:http/outgoing-handler`.
//!
//! ```no_run
//! use warden_sdk::http::Request;
//!
//! # fn main() -> Result<(), warden_sdk::Error> {
//! let response = Request::post("https://api.example.com/v1/charges")
//!     .secret("stripe")
//!     .json(r#"{"amount":1999}"#)
//!     .send()?;
//! println!("{}: {}", response.status, response.text());
//! # Ok(())
//! # }
//! ```
//!
//! warden checks every request against the manifest's `[[http]]` rules (scheme, host, port,
//! path prefix and method) before it leaves; a request outside them fails with
//! [`Error::Denied`] and is audited. A request names the secret it means to carry with
//! [`Request::secret`]: warden removes that name, adds the secret's value in the header the
//! manifest configures if the URL lies inside the secret's binding, and refuses the request
//! otherwise. Requests inside a binding carry its secret whether they name it or not.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use crate::Error;

pub use wasip2::http::types::ErrorCode;

/// The request header that names the secret a request should carry. warden removes it before
/// the request leaves.
pub const SECRET_HEADER: &str = "warden-secret";

/// The most bytes one `blocking-write-and-flush` may be given: wasi:io guarantees that much
/// and no more.
const MAX_WRITE_CHUNK: usize = 4096;

/// How much one read of the response body asks for: large enough that a body of a few
/// megabytes takes few host calls, small enough not to matter for memory.
const READ_CHUNK: u64 = 64 * 1024;

/// An outbound HTTP request, built step by step and sent with [`Request::send`].
///
/// A new request has no headers, no body and names no secret.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with this method (`"GET"`, `"POST"`, … or any other token) and URL
    /// (`scheme://host[:port]/path[?query]`). Nothing is checked until [`Request::send`].
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// Adds a header. `Content-Length` is computed by [`Request::send`]; `Host` and
    /// `Connection` are the host's to set and make `send` fail.
    pub fn header(&mut self, name: &str, value: &str) -> &mut Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Names the secret this request should carry (the `warden-secret` header), replacing one
    /// named before. The guest never sees the value: warden adds it on the way out, and
    /// refuses the request if its URL is outside the secret's binding.
    pub fn secret(&mut self, name: &str) -> &mut Request {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(SECRET_HEADER));
        self.header(SECRET_HEADER, name)
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json(&mut self, json: &str) -> &mut Request {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.header("content-type", "application/json");
        self.body(json.as_bytes().to_vec())
    }

    /// Sets the body.
    pub fn body(&mut self, body: Vec<u8>) -> &mut Request {
        self.body = body;
        self
    }

    /// The URL this request goes to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request and reads the whole response.
    ///
    /// The body is streamed to the host in chunks, then the response's body is read to its
    /// end. Any status is a response, not an error: check [`Response::status`].
    ///
    /// # Errors
    ///
    /// [`Error::Denied`] when warden's policy refuses the request, [`Error::Http`] when it
    /// fails on the way (connection refused, timeout, a response over warden's size cap),
    /// [`Error::InvalidUrl`] and [`Error::InvalidHeader`] when it cannot be built.
    pub fn send(&self) -> Result<Response, Error> {
        let target = Target::parse(&self.url)?;
        let fail = |code: ErrorCode| self.error(code);

        let headers = Fields::new();
        for (name, value) in &self.headers {
            headers
                .append(name, value.as_bytes())
                .map_err(|_| Error::InvalidHeader { name: name.clone() })?;
        }
        if !self.body.is_empty() || !matches!(self.method.as_str(), "GET" | "HEAD") {
            // A known length: the body goes out as is rather than chunked.
            headers
                .set(
                    "content-length",
                    &[self.body.len().to_string().into_bytes()],
                )
                .map_err(|_| Error::InvalidHeader {
                    name: "content-length".into(),
                })?;
        }

        let request = OutgoingRequest::new(headers);
        request
            .set_method(&method(&self.method))
            .map_err(|()| fail(ErrorCode::HttpRequestMethodInvalid))?;
        request
            .set_scheme(Some(&target.scheme))
            .map_err(|()| self.invalid("the scheme is not valid"))?;
        request
            .set_authority(Some(target.authority))
            .map_err(|()| self.invalid("the host and port are not valid"))?;
        request
            .set_path_with_query(Some(target.path_with_query))
            .map_err(|()| self.invalid("the path is not valid"))?;
        let body = request
            .body()
            .map_err(|()| fail(internal("the request body was already taken")))?;

        // Hand the request over first, then stream the body: the host reads the body as it
        // goes, so writing all of it before `handle` could block on a full buffer.
        let future = outgoing_handler::handle(request, None).map_err(fail)?;
        let written = write_body(body, &self.body);

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(fail(code)),
            Some(Err(())) | None => {
                return Err(fail(written.err().unwrap_or_else(|| {
                    internal("the response was not available after waiting for it")
                })));
            }
        };
        drop(future);

        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| fail(internal("the response body was already taken")))?;
        let body = read_body(&incoming).map_err(fail)?;
        drop(IncomingBody::finish(incoming));
        drop(response);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn error(&self, code: ErrorCode) -> Error {
        match code {
            ErrorCode::HttpRequestDenied => Error::Denied {
                url: self.url.clone(),
            },
            code => Error::Http {
                url: self.url.clone(),
                code,
            },
        }
    }

    fn invalid(&self, reason: &'static str) -> Error {
        Error::InvalidUrl {
            url: self.url.clone(),
            reason,
        }
    }
}

/// A response, read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of a header, its name compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A URL cut into the parts wasi:http sets one by one.
struct Target<'a> {
    scheme: Scheme,
    authority: &'a str,
    path_with_query: &'a str,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Target<'a>, Error> {
        let invalid = |reason| Error::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("it has no scheme (http:// or https://)"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "" => return Err(invalid("the scheme is empty")),
            _ => Scheme::Other(scheme.to_string()),
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_with_query) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid("it has no host"));
        }
        let path_with_query = match path_with_query {
            "" => "/",
            p if p.starts_with('?') => return Err(invalid("a query needs a path before it")),
            p => p,
        };
        Ok(Target {
            scheme,
            authority,
            path_with_query,
        })
    }
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

fn internal(message: &str) -> ErrorCode {
    ErrorCode::InternalError(Some(message.to_string()))
}

/// The error code behind a failed stream operation.
fn stream_error(e: StreamError) -> ErrorCode {
    match e {
        StreamError::LastOperationFailed(e) => wasip2::http::types::http_error_code(&e)
            .unwrap_or_else(|| ErrorCode::InternalError(Some(e.to_debug_string()))),
        StreamError::Closed => ErrorCode::ConnectionTerminated,
    }
}

/// Streams `bytes` into the request body and finishes it.
fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ErrorCode> {
    {
        // The stream is a child of the body: it must be gone before the body is finished.
        let stream = body
            .write()
            .map_err(|()| internal("the request body stream was already taken"))?;
        for chunk in bytes.chunks(MAX_WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
    }
    OutgoingBody::finish(body, None)
}

/// Reads the response body to its end.
fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, ErrorCode> {
    let stream = incoming
        .stream()
        .map_err(|()| internal("the response body stream was already taken"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(StreamError::Closed) => return Ok(body),
            Err(e) => return Err(stream_error(e)),
        }
    }
}
