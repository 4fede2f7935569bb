//! A loopback HTTP/1.1 server for the tests of outbound HTTP: it records every request it gets
//! and answers each with a small JSON body, or, in echo mode, with the request itself (to check
//! that warden keeps secrets out of what a guest reads back).
//!
//! std only, bound to 127.0.0.1 on a port the system picks, one thread per connection,
//! `Connection: close`. Bodies with `Content-Length` and chunked ones are both read: wasmtime's
//! HTTP client sends a chunked body when the guest gives no length. Dropping the server stops
//! it and joins its threads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a connection may sit idle before its thread gives up on it, so a stuck client
/// cannot keep a test (or the server's drop) waiting.
const IDLE: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) the server reads.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body the server reads.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    /// Headers in the order received, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header (its name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Everything the server got, as one string: for "the secret never reached the server".
    pub fn dump(&self) -> String {
        let headers: String = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        format!("{} {}\n{headers}\n{}", self.method, self.path, self.text())
    }
}

/// The whole response a hostile server writes for a request: status line, headers, body,
/// exactly as given (the tests' servers compress, split, lie about framing, redirect…).
pub type RawReply = Arc<dyn Fn(&Request) -> Vec<u8> + Send + Sync>;

/// What the server answers.
#[derive(Clone)]
pub enum Reply {
    /// `200` with `{"ok":true,"request":N}`.
    Ok,
    /// `200` with the request as JSON: method, path, headers and body.
    Echo,
    /// Whatever the function writes.
    Raw(RawReply),
}

struct State {
    reply: Reply,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

/// A running server; dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// A server answering every request with `200` and a small JSON body.
    pub fn start() -> Server {
        Server::with(Reply::Ok)
    }

    /// A server answering every request with the request itself.
    pub fn echo() -> Server {
        Server::with(Reply::Echo)
    }

    /// A server answering every request with the bytes `reply` makes of it.
    pub fn raw(reply: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static) -> Server {
        Server::with(Reply::Raw(Arc::new(reply)))
    }

    pub fn with(reply: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            reply,
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let accept = std::thread::Builder::new()
            .name(format!("test-http-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &shared))
            .expect("spawn the server thread");
        Server {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>) {
    let mut connections = Vec::new();
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let state = Arc::clone(state);
        connections.push(std::thread::spawn(move || {
            // A connection that fails to parse is simply closed: the client sees the error.
            let _ = serve(stream, &state);
        }));
        connections.retain(|c: &JoinHandle<()>| !c.is_finished());
    }
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader)?;
    let body = {
        let mut requests = state.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.push(request.clone());
        match &state.reply {
            Reply::Ok => serde_json::json!({ "ok": true, "request": requests.len() }),
            Reply::Echo => echo(&request),
            Reply::Raw(f) => {
                // Unlocked while the reply is made: a reply may wait for other requests.
                drop(requests);
                let raw = f(&request);
                let mut stream = stream;
                // A client that gives up early is the client's business.
                let _ = stream.write_all(&raw);
                return stream.flush();
            }
        }
        .to_string()
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn echo(request: &Request) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({
        "method": request.method,
        "path": request.path,
        "headers": headers,
        "body": request.text(),
    })
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

/// One line without its CRLF, counted against `budget`.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> std::io::Result<String> {
    let mut line = String::new();
    let n = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_line(&mut line)?;
    if n == 0 {
        return Err(invalid("the connection closed mid-request"));
    }
    if n > *budget {
        return Err(invalid("the request head is too large"));
    }
    *budget -= n;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Request> {
    let mut budget = MAX_HEAD;
    let start = read_line(reader, &mut budget)?;
    let mut parts = start.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {start:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("not HTTP/1.x: {start:?}")));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(reader)?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        if length > MAX_BODY {
            return Err(invalid("the body is too large"));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(request)
}

/// A chunked body: `SIZE[;ext]` CRLF, data, CRLF, …, `0` CRLF, trailers, CRLF.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEAD;
        let line = read_line(reader, &mut budget)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("the body is too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(invalid("a chunk is longer than its size"));
        }
    }
}

/// Sends `raw` to the server and returns the response's body.
fn exchange(server: &Server, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.write_all(raw).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap()
}

#[test]
fn the_test_server_reads_sized_and_chunked_bodies() {
    let server = Server::start();
    let body = exchange(
        &server,
        b"POST /v1/charges?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
          Authorization: Bearer t\r\n\r\nhello",
    );
    assert_eq!(body, r#"{"ok":true,"request":1}"#);
    exchange(
        &server,
        b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nwiki\r\n6;ext=1\r\npedia \r\n0\r\nx-trailer: 1\r\n\r\n",
    );
    exchange(&server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/charges?x=1");
    assert_eq!(requests[0].header("AUTHORIZATION"), Some("Bearer t"));
    assert_eq!(requests[0].text(), "hello");
    assert_eq!(requests[1].text(), "wikipedia ");
    assert_eq!(requests[2].method, "GET");
    assert!(requests[2].body.is_empty());
}

#[test]
fn the_echo_server_hands_the_request_back() {
    let server = Server::echo();
    let body = exchange(
        &server,
        b"PUT /x HTTP/1.1\r\nX-Api-Key: k1\r\nContent-Length: 2\r\n\r\nhi",
    );
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["path"], "/x");
    assert_eq!(echoed["headers"]["x-api-key"], "k1");
    assert_eq!(echoed["body"], "hi");
}

#[test]
fn a_dropped_test_server_stops_listening() {
    let server = Server::start();
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}
