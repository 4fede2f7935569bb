//! What `warden serve` reads from a request's target before anything else: which endpoint its
//! path names, the `arg=` values of its query, and the path a `wasi:http` component is handed.
//! Pure functions over the client's text, with no server state, so that the fuzz target
//! (`fuzz/fuzz_targets/serve_route.rs`) can drive them with any input.

/// The endpoint a request path names. Names are one path segment each (never holding `/`);
/// whether such a workload exists is for the server to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/healthz`
    Health,
    /// `/metrics`
    Metrics,
    /// `/v1/workloads`
    Workloads,
    /// `/v1/reload`
    Reload,
    /// `/v1/workloads/NAME/runs`
    Runs(&'a str),
    /// `/http/NAME` and anything below it.
    Http(&'a str),
    /// Any other path.
    Unknown,
}

/// The endpoint `path` (a request's path, without its query) names. Matching is exact, by
/// segment: `/healthz/` or `//healthz` name nothing.
pub fn endpoint(path: &str) -> Endpoint<'_> {
    let mut segments = path.split('/');
    if segments.next() != Some("") {
        return Endpoint::Unknown;
    }
    let rest: Vec<&str> = segments.collect();
    match rest.as_slice() {
        ["healthz"] => Endpoint::Health,
        ["metrics"] => Endpoint::Metrics,
        ["v1", "workloads"] => Endpoint::Workloads,
        ["v1", "reload"] => Endpoint::Reload,
        ["v1", "workloads", name, "runs"] if !name.is_empty() => Endpoint::Runs(name),
        ["http", name, ..] if !name.is_empty() => Endpoint::Http(name),
        _ => Endpoint::Unknown,
    }
}

/// The path (with the query) that a request to `/http/NAME/REST?QUERY` hands the component:
/// `/REST?QUERY`, and `/` when there is no REST.
pub fn guest_path(name: &str, path: &str, query: Option<&str>) -> String {
    let rest = path
        .strip_prefix("/http/")
        .and_then(|p| p.strip_prefix(name))
        .unwrap_or("/");
    let mut out = if rest.is_empty() { "/" } else { rest }.to_string();
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The query's `arg=` values, in order, percent-decoded (`+` is a space).
///
/// # Errors
/// A key other than `arg`, a malformed escape, or a value that is not UTF-8 once decoded.
pub fn parse_args(query: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "arg" {
            return Err(format!(
                "unknown query parameter `{key}` (only `arg=` is accepted)"
            ));
        }
        args.push(percent_decode(value)?);
    }
    Ok(args)
}

/// `s` with `+` as a space and each `%XX` (exactly two hex digits) as its byte.
///
/// # Errors
/// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Two hex digits exactly: `from_str_radix` alone would take `%+1` as 1.
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape in `{s}`"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{Endpoint, endpoint, guest_path, parse_args};

    #[test]
    fn query_args_are_decoded_in_order_and_other_keys_refused() {
        assert_eq!(
            parse_args("arg=a+b&arg=%2Fx%25&arg=").unwrap(),
            vec!["a b", "/x%", ""]
        );
        assert!(parse_args("args=1").is_err());
        assert!(parse_args("arg=%zz").is_err());
        assert!(parse_args("arg=%ff").is_err());
        assert!(parse_args("arg=%+1").is_err());
        assert_eq!(parse_args("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn endpoints_match_whole_segments_only() {
        assert_eq!(endpoint("/healthz"), Endpoint::Health);
        assert_eq!(endpoint("/healthz/"), Endpoint::Unknown);
        assert_eq!(endpoint("//healthz"), Endpoint::Unknown);
        assert_eq!(endpoint("/v1/workloads/a/runs"), Endpoint::Runs("a"));
        assert_eq!(endpoint("/v1/workloads//runs"), Endpoint::Unknown);
        assert_eq!(endpoint("/v1/workloads/a/b/runs"), Endpoint::Unknown);
        assert_eq!(endpoint("/http/a"), Endpoint::Http("a"));
        assert_eq!(endpoint("/http/a/x/y"), Endpoint::Http("a"));
        assert_eq!(endpoint("/http//x"), Endpoint::Unknown);
        assert_eq!(endpoint("healthz"), Endpoint::Unknown);
        assert_eq!(endpoint("/v1/reload"), Endpoint::Reload);
        assert_eq!(endpoint("/v1/reload/"), Endpoint::Unknown);
        assert_eq!(endpoint("/v1/workloads/reload"), Endpoint::Unknown);
    }

    #[test]
    fn the_component_sees_the_rest_of_the_path_and_the_query() {
        assert_eq!(guest_path("a", "/http/a", None), "/");
        assert_eq!(guest_path("a", "/http/a/x/y", Some("q=1")), "/x/y?q=1");
        assert_eq!(guest_path("a", "/http/a/", Some("")), "/?");
    }
}
