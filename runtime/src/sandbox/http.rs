//! Serving components that export `wasi:http/incoming-handler`: [`Workload::handle_http`] runs
//! one request through a fresh instance, under the same limits, audit records and watchdog as
//! [`Workload::run`]. The component's outbound requests go through the broker as in any run,
//! so the manifest's `[[http]]` grants apply to them.

use super::options::RunOptions;
use super::outcome::GuestResult;
use super::outcome::RunReport;
use super::{ComponentCtx, ComponentEntry, Host, Prepared, Workload};
use crate::error::{LoadError, RunError};
use crate::stdio::OutputBudget;
use crate::watchdog::Reply;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The authority a request names when the caller gave none: the component only sees it, warden
/// never connects to it.
const DEFAULT_AUTHORITY: &str = "localhost";

/// One HTTP request for a component that exports `wasi:http/incoming-handler`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path and query the component sees, starting with `/`.
    pub path_with_query: String,
    /// The authority (`Host`) the component sees; `localhost` when empty.
    pub authority: String,
    /// Header names and values, in order; a name may repeat.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body, whole.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers and no body.
    pub fn new(method: &str, path_with_query: &str) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path_with_query: path_with_query.into(),
            ..HttpRequest::default()
        }
    }
}

/// A component's response. Its body counts against the run's `[limits] output` (with anything
/// the component writes to stdout and stderr).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code the component set.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The response body, whole.
    pub body: Vec<u8>,
}

/// How one request through a component ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpReport {
    /// The run: outcome, wall time, run id, as for [`Workload::run`].
    pub run: RunReport,
    /// The component's response, whole: `None` when it set none, answered with an error code,
    /// or its body did not complete (a trap, a limit); `message` says which.
    pub response: Option<HttpResponse>,
    /// Why `response` is `None`; `None` when there is a response.
    pub message: Option<String>,
}

/// A request on its way into a run, and where the run leaves the response.
pub(super) struct Exchange {
    pub(super) request: hyper::Request<Full<Bytes>>,
    pub(super) answer: Answer,
}

impl Workload {
    /// Whether the workload is a component exporting `wasi:http/incoming-handler` (and no
    /// `wasi:cli/run`, and no `[workload] invoke`): served by [`Workload::handle_http`], not
    /// by [`Workload::run`].
    pub fn handles_http(&self) -> bool {
        matches!(
            &self.inner.pre,
            Prepared::Component {
                entry: ComponentEntry::Http(_),
                ..
            }
        )
    }

    /// Runs one HTTP request through the component, in a fresh instance, with the same limits
    /// (memory, fuel, wall time with the watchdog, output, network), grants and audit records
    /// as [`Workload::run`]; the component's response body counts against `[limits] output`.
    /// `opts.stdin` is ignored (the request's body is the input).
    ///
    /// Blocks as [`Workload::run`] does.
    ///
    /// # Errors
    /// [`LoadError::Entry`] when the workload does not export `wasi:http/incoming-handler`
    /// ([`Workload::handles_http`]); [`LoadError::HttpRequest`] when the method, path, a
    /// header name or value is not valid HTTP; otherwise as [`Workload::run`].
    pub fn handle_http(
        &self,
        request: HttpRequest,
        opts: RunOptions,
    ) -> Result<HttpReport, RunError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let answer = self.start_http(request, opts, Reply::Blocking(tx))?;
        let run = rx.recv().unwrap_or(Err(RunError::Lost))?;
        Ok(report(run, &answer))
    }

    /// [`Workload::handle_http`] for async callers, as [`Workload::run_async`] is to
    /// [`Workload::run`]: the component runs on a thread of its own and the future completes
    /// when the run ends.
    ///
    /// # Errors
    /// As [`Workload::handle_http`].
    pub async fn handle_http_async(
        &self,
        request: HttpRequest,
        opts: RunOptions,
    ) -> Result<HttpReport, RunError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let answer = self.start_http(request, opts, Reply::Async(tx))?;
        let run = rx.await.unwrap_or(Err(RunError::Lost))?;
        Ok(report(run, &answer))
    }

    /// Starts a run of the handler on `request`; the response is left in the returned cell.
    fn start_http(
        &self,
        request: HttpRequest,
        opts: RunOptions,
        reply: Reply,
    ) -> Result<Answer, RunError> {
        if !self.handles_http() {
            return Err(RunError::Start(LoadError::Entry {
                path: self.inner.path.clone(),
                message: "the component does not export wasi:http/incoming-handler".into(),
            }));
        }
        let answer = Arc::new(std::sync::Mutex::new(None));
        let exchange = Exchange {
            request: to_hyper(request).map_err(|e| RunError::Start(LoadError::HttpRequest(e)))?,
            answer: answer.clone(),
        };
        self.start(opts, Some(exchange), reply)?;
        Ok(answer)
    }
}

/// Where a handler's run leaves its response (or why there is none).
type Answer = Arc<std::sync::Mutex<Option<Result<HttpResponse, String>>>>;

/// The report of a handler's run that ended as `run`.
fn report(run: RunReport, answer: &Answer) -> HttpReport {
    let taken = answer.lock().unwrap_or_else(|p| p.into_inner()).take();
    let (response, message) = match taken {
        Some(Ok(r)) => (Some(r), None),
        Some(Err(m)) => (None, Some(m)),
        None => (
            None,
            Some("the run ended before the handler answered".into()),
        ),
    };
    HttpReport {
        run,
        response,
        message,
    }
}

fn to_hyper(r: HttpRequest) -> Result<hyper::Request<Full<Bytes>>, String> {
    let authority = if r.authority.is_empty() {
        DEFAULT_AUTHORITY
    } else {
        r.authority.as_str()
    };
    if !r.path_with_query.starts_with('/') {
        return Err(format!(
            "the path `{}` does not start with `/`",
            r.path_with_query.escape_debug()
        ));
    }
    let method = hyper::Method::from_bytes(r.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", r.method.escape_debug()))?;
    let uri: hyper::Uri = format!("http://{authority}{}", r.path_with_query)
        .parse()
        .map_err(|e| format!("not a valid request target: {e}"))?;
    let mut builder = hyper::Request::builder().method(method).uri(uri);
    for (name, value) in &r.headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{}` is not a header name", name.escape_debug()))?;
        let value = hyper::header::HeaderValue::from_bytes(value)
            .map_err(|_| format!("header `{name}`: not a valid value"))?;
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(r.body)))
        .map_err(|e| format!("{e}"))
}

/// Hands the request to the component's handler in `store` and starts collecting its
/// response on wasmtime-wasi's runtime (the response body streams through a bounded channel
/// while the guest writes it, so it is read concurrently). Returns the collector, which ends
/// once the store (holding the body's writer) is dropped.
pub(super) fn call_handler(
    store: &mut Store<Host<ComponentCtx>>,
    proxy: &wasmtime_wasi_http::p2::bindings::sync::ProxyPre<Host<ComponentCtx>>,
    request: hyper::Request<Full<Bytes>>,
    budget: &Arc<OutputBudget>,
) -> (
    GuestResult,
    Option<wasmtime_wasi::runtime::AbortOnDropJoinHandle<Result<HttpResponse, String>>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let resources = {
        let mut view = store.data_mut().http();
        view.new_incoming_request(Scheme::Http, request)
            .and_then(|req| Ok((req, view.new_response_outparam(tx)?)))
    };
    let (req, out) = match resources {
        Ok(r) => r,
        Err(e) => return (Err(e), None),
    };
    let collector = wasmtime_wasi::runtime::spawn(collect(rx, budget.clone()));
    let result = proxy.instantiate(&mut *store).and_then(|proxy| {
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, req, out)
    });
    (result.map(|()| 0), Some(collector))
}

/// The component's response, its body bounded by the run's output budget.
async fn collect(
    rx: tokio::sync::oneshot::Receiver<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
    budget: Arc<OutputBudget>,
) -> Result<HttpResponse, String> {
    let response = match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(code)) => return Err(format!("the handler answered with an error: {code:?}")),
        Err(_) => return Err("the handler set no response".into()),
    };
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the response body failed: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if !budget.charge(data.len()) {
                return Err(format!(
                    "the response body passed the output limit of {} bytes",
                    budget.limit()
                ));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(HttpResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: bytes,
    })
}
