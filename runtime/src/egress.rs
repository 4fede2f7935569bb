//! The network limits of a run, `[limits] http-requests` and `egress`: one [`EgressMeter`]
//! per run, charged by the HTTP broker (requests, their bytes and the lookups it makes) and by
//! the socket checks (connections' writes, datagrams, name lookups), and read by the store's
//! epoch callback, which ends the run once a limit is reached. Its own file so that the broker
//! and the sockets both depend on it and not on each other.

use crate::audit::Audit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A network limit that stopped the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetLimit {
    /// `[limits] http-requests`: the run made as many outbound HTTP requests as it may.
    HttpRequests,
    /// `[limits] egress`: the bytes sent over the network and HTTP reached the limit.
    Egress,
}

impl NetLimit {
    /// The name of the limit in the manifest and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            NetLimit::HttpRequests => "http-requests",
            NetLimit::Egress => "egress",
        }
    }
}

/// The error a run stops with when a network limit is reached.
#[derive(Debug, thiserror::Error)]
#[error("{} limit reached", .0.name())]
pub struct NetLimitReached(pub NetLimit);

/// Counters of one run's egress, shared by the HTTP broker, the socket checks and the store's
/// epoch callback (which stops the run once a limit is reached).
#[derive(Debug)]
pub struct EgressMeter {
    requests: AtomicU64,
    bytes: AtomicU64,
    /// `[limits] http-requests`.
    pub(crate) max_requests: u64,
    /// `[limits] egress`, in bytes.
    pub(crate) max_bytes: u64,
    reached: Mutex<Option<NetLimit>>,
    audit: Audit,
}

impl EgressMeter {
    pub fn new(max_requests: u64, max_bytes: u64, audit: &Audit) -> Arc<EgressMeter> {
        Arc::new(EgressMeter {
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            max_requests,
            max_bytes,
            reached: Mutex::new(None),
            audit: audit.clone(),
        })
    }

    /// The limit reached, if any.
    pub fn reached(&self) -> Option<NetLimit> {
        *self.reached.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hit(&self, limit: NetLimit) {
        let mut reached = self.reached.lock().unwrap_or_else(|p| p.into_inner());
        if reached.is_none() {
            *reached = Some(limit);
            let value = match limit {
                NetLimit::HttpRequests => self.max_requests,
                NetLimit::Egress => self.max_bytes,
            };
            self.audit.limit(limit.name(), value);
        }
    }

    /// The `egress` limit in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Counts one request; false (and the limit recorded) when it is one too many.
    pub fn take_request(&self) -> bool {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.max_requests {
            self.hit(NetLimit::HttpRequests);
            return false;
        }
        true
    }

    /// The bytes counted so far (refused ones included: they were attempted).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Gives back `n` bytes counted by [`EgressMeter::take_bytes`] that never left: a request
    /// whose host did not resolve or could not be reached. A limit already recorded stays.
    pub fn refund_bytes(&self, n: u64) {
        // Saturating: a refund never takes back more than was counted.
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    /// Counts `n` bytes about to leave; false (and the limit recorded) when they do not fit.
    pub fn take_bytes(&self, n: u64) -> bool {
        let before = self.bytes.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.max_bytes {
            self.hit(NetLimit::Egress);
            return false;
        }
        true
    }
}

/// Bytes a lookup of `name` sends, as counted against `[limits] egress`: an A and an AAAA
/// query, each a 12-byte header, the name in labels (its length plus 2) and 4 bytes of type
/// and class.
pub(crate) fn dns_query_bytes(name: &str) -> u64 {
    2 * (name.len() as u64 + 18)
}

#[cfg(test)]
mod tests {
    use super::{EgressMeter, NetLimit};
    use crate::audit::Audit;

    #[test]
    fn meters_stop_at_their_limits() {
        let audit = Audit::new(crate::AuditSink::disabled(), "warden://local/t");
        let m = EgressMeter::new(2, 100, &audit);
        assert!(m.take_request() && m.take_request());
        assert!(!m.take_request());
        assert_eq!(m.reached(), Some(NetLimit::HttpRequests));
        let m = EgressMeter::new(2, 100, &audit);
        assert!(m.take_bytes(60) && m.take_bytes(40));
        assert!(!m.take_bytes(1));
        assert_eq!(m.reached(), Some(NetLimit::Egress));
    }
}
