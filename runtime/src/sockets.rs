//! `[network]` for components: the gate every `wasi:sockets` address passes, and warden's own
//! `wasi:sockets/ip-name-lookup`.
//!
//! wasmtime-wasi asks [`SocketGate::check`] before it binds, connects, listens, accepts, sends
//! or delivers a datagram; the gate allows outbound TCP connections that
//! [`NetRules::connect_allowed`] allows, TCP listening sockets on the addresses
//! [`NetRules::listen_allowed`] allows (`[network] listen`), datagrams with the peers
//! [`NetRules::udp_allowed`] allows (`[network] udp`), and nothing else, auditing each
//! decision. Bytes written to a connection (made or accepted) and datagrams sent are counted
//! against `[limits] egress` and scanned for secret values. Name lookups are warden's: only
//! names a `connect` entry lists are resolved (by the host's resolver, built before the host
//! is locked down), and the addresses found are remembered so that a connection to one of
//! them is checked against the name it came from — and again against the special ranges,
//! so a listed name that resolves to loopback or a metadata address is still refused.

use crate::audit::{Audit, Decided, Decision};
use crate::egress::{EgressMeter, dns_query_bytes};
use crate::net::NetRules;
use crate::scan::StreamScan;
use crate::secrets::Secrets;
use bytes::Bytes;
use hickory_resolver::TokioResolver;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::bindings::sync::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::bindings::sync::sockets::udp::{
    HostOutgoingDatagramStream, OutgoingDatagram, OutgoingDatagramStream,
};
use wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket;
use wasmtime_wasi::p2::pipe::ClosedOutputStream;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, OutputStream, Pollable, StreamError,
    StreamResult, TcpSocket, UdpSocket, subscribe,
};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};

/// How long one name lookup may take before the guest is told the resolver failed.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The `wasi:sockets` interfaces warden takes over, as wasmtime-wasi names them.
const IP_NAME_LOOKUP: &str = "wasi:sockets/ip-name-lookup@0.2.12";
const TCP_CREATE_SOCKET: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const UDP_CREATE_SOCKET: &str = "wasi:sockets/udp-create-socket@0.2.12";
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const UDP: &str = "wasi:sockets/udp@0.2.12";

/// Distinct UDP send and receive decisions (use, peer, verdict) a run remembers, to audit each
/// once; once this many are remembered, a new one is audited every time it occurs. A datagram
/// is one decision, so without this a chatty guest, or a remote sender of refused datagrams,
/// would write one record per packet.
const MAX_UDP_AUDITED: usize = 4096;

/// What `finish-connect` gives the guest: its two streams, or why not.
type ConnectResult = Result<(Resource<DynInputStream>, Resource<DynOutputStream>), ErrorCode>;

/// What `accept` gives the guest: the connection's socket and its two streams, or why not.
type AcceptResult = Result<
    (
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    ),
    ErrorCode,
>;

/// A run's socket policy.
pub struct SocketGate {
    rules: NetRules,
    secrets: Arc<Secrets>,
    resolver: Option<Arc<TokioResolver>>,
    /// Listed names and the addresses they resolved to in this run.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
    /// UDP decisions already audited (see [`MAX_UDP_AUDITED`]).
    udp_audited: Mutex<HashSet<(u8, SocketAddr, bool)>>,
    meter: Arc<EgressMeter>,
    audit: Audit,
}

impl std::fmt::Debug for SocketGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketGate")
            .field("rules", &self.rules.rules().len())
            .finish_non_exhaustive()
    }
}

impl SocketGate {
    pub fn new(
        rules: NetRules,
        secrets: Arc<Secrets>,
        resolver: Option<Arc<TokioResolver>>,
        meter: Arc<EgressMeter>,
        audit: &Audit,
    ) -> Arc<SocketGate> {
        Arc::new(SocketGate {
            rules,
            secrets,
            resolver,
            resolved: Mutex::new(HashMap::new()),
            udp_audited: Mutex::new(HashSet::new()),
            meter,
            audit: audit.clone(),
        })
    }

    /// Whether wasmtime-wasi may use `addr` this way. Every answer is audited, but for two
    /// kinds: the wildcard, port-0 bind before each outbound connection (the connect that
    /// follows is audited), and repeats of a UDP decision already audited in this run (see
    /// [`MAX_UDP_AUDITED`]).
    pub fn check(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let target = addr.to_string();
        let (allowed, reason, grant) = match use_ {
            _ if self.rules.is_empty() => (false, "no [network] grant".to_owned(), None),
            SocketAddrUse::TcpConnect => {
                if self.meter.reached().is_some() {
                    (
                        false,
                        "a network limit of this run was reached".to_owned(),
                        None,
                    )
                } else {
                    let names = self
                        .resolved
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&addr.ip())
                        .cloned()
                        .unwrap_or_default();
                    let v = self.rules.connect_allowed(addr, &names);
                    (v.allowed, v.reason, v.grant)
                }
            }
            // The implicit bind of an outbound connection (any local address, an ephemeral
            // port), checked before every connect, which is audited itself. A socket bound so
            // and then put to listen is decided, and audited, at `TcpListen`, with its port.
            SocketAddrUse::TcpBind if addr.ip().is_unspecified() && addr.port() == 0 => {
                return true;
            }
            SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => {
                let v = self.rules.listen_allowed(addr);
                (v.allowed, v.reason, v.grant)
            }
            // Only a socket that passed `TcpListen` accepts: the address is the peer's.
            SocketAddrUse::TcpAccept => (
                self.rules.has_listen(),
                "a connection accepted on a listening socket a listen entry allows".to_owned(),
                None,
            ),
            SocketAddrUse::UdpBind => {
                if !self.rules.has_udp() {
                    (
                        false,
                        "no [network] udp entry: UDP is not granted".to_owned(),
                        None,
                    )
                } else if addr.port() == 0 {
                    (
                        true,
                        "an ephemeral local port for datagrams with udp entries' peers".to_owned(),
                        None,
                    )
                } else {
                    (
                        false,
                        "a fixed local UDP port would receive from anyone: [network] udp \
                         entries name peers, not local ports"
                            .to_owned(),
                        None,
                    )
                }
            }
            SocketAddrUse::UdpSend if self.meter.reached().is_some() => (
                false,
                "a network limit of this run was reached".to_owned(),
                None,
            ),
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                let v = self.rules.udp_allowed(addr);
                if !self.first_udp_decision(use_, addr, v.allowed) {
                    return v.allowed;
                }
                (v.allowed, v.reason, v.grant)
            }
        };
        let decision = if allowed {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let mut decided = Decided::new(
            "net",
            &target,
            decision,
            socket_op(use_),
            format!("{use_:?}: {reason}"),
        );
        if let Some(g) = grant {
            decided = decided.by(&g);
        }
        self.audit.decision(decided);
        allowed
    }

    /// Whether this UDP decision is the first of its kind in this run (and so audited).
    fn first_udp_decision(&self, use_: SocketAddrUse, addr: SocketAddr, allowed: bool) -> bool {
        let kind = match use_ {
            SocketAddrUse::UdpSend => 0,
            _ => 1,
        };
        let mut seen = self.udp_audited.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_UDP_AUDITED {
            return !seen.contains(&(kind, addr, allowed));
        }
        seen.insert((kind, addr, allowed))
    }

    /// Whether a UDP socket may be made at all: only with a `[network] udp` entry.
    fn udp_socket_allowed(&self) -> bool {
        if !self.rules.has_udp() {
            self.audit.decision(Decided::new(
                "net",
                "udp-socket",
                Decision::Deny,
                "socket",
                "no [network] udp entry: UDP is not granted",
            ));
            return false;
        }
        true
    }

    /// Admits datagrams about to be sent: refused whole if one carries a secret value or they
    /// do not fit `[limits] egress` (counted when handed over: a datagram the address check
    /// then refuses still counts, as a refused TCP write does).
    fn admit_datagrams(&self, datagrams: &[OutgoingDatagram]) -> Result<(), ErrorCode> {
        for d in datagrams {
            if let Some(s) = self.secrets.find_leak(&d.data, |_| false) {
                let peer = d.remote_address.map_or_else(
                    || "its peer".to_owned(),
                    |a| SocketAddr::from(a).to_string(),
                );
                self.audit.decision(Decided::new(
                    "secret",
                    &s.spec.name,
                    Decision::Deny,
                    "exfiltration",
                    format!(
                        "exfiltration attempt: a datagram to {peer} carries the secret's value"
                    ),
                ));
                return Err(ErrorCode::AccessDenied);
            }
        }
        let bytes: u64 = datagrams.iter().map(|d| d.data.len() as u64).sum();
        if !self.meter.take_bytes(bytes) {
            return Err(ErrorCode::AccessDenied);
        }
        Ok(())
    }

    /// Whether a TCP socket may be made at all: only with a `[network]` grant, so that a
    /// workload without one never causes a `socket` syscall (which the host's seccomp
    /// profile would answer by killing warden).
    fn tcp_socket_allowed(&self) -> bool {
        if self.rules.rules().is_empty() && !self.rules.has_listen() {
            self.audit.decision(Decided::new(
                "net",
                "tcp-socket",
                Decision::Deny,
                "socket",
                "no [network] connect or listen entry: TCP sockets are refused",
            ));
            return false;
        }
        true
    }

    /// Resolves a name the rules list; `Err` with the code the guest gets.
    fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
        // A name is data that leaves the host (to the resolvers, and under a wildcard entry to
        // whoever serves that domain): a secret in it is an exfiltration attempt.
        if let Some(s) = self.secrets.find_leak(name.as_bytes(), |_| false) {
            self.audit.decision(Decided::new(
                "secret",
                &s.spec.name,
                Decision::Deny,
                "exfiltration",
                format!("exfiltration attempt: a name lookup of {name} carries the secret's value"),
            ));
            return Err(ErrorCode::AccessDenied);
        }
        let verdict = self.rules.name_allowed(name);
        if !verdict.allowed {
            self.audit.decision(Decided::new(
                "net",
                name,
                Decision::Deny,
                "lookup",
                format!("lookup: {}", verdict.reason),
            ));
            return Err(ErrorCode::AccessDenied);
        }
        let host = name.trim_end_matches('.').to_ascii_lowercase();
        let found: Vec<IpAddr> = if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            vec![ip]
        } else {
            if !self.meter.take_bytes(dns_query_bytes(&host)) {
                self.audit.decision(Decided::new(
                    "net",
                    name,
                    Decision::Deny,
                    "lookup",
                    format!(
                        "lookup: egress limit ({} bytes) reached",
                        self.meter.max_bytes()
                    ),
                ));
                return Err(ErrorCode::AccessDenied);
            }
            let Some(resolver) = self.resolver.clone() else {
                self.audit.decision(Decided::new(
                    "net",
                    name,
                    Decision::Deny,
                    "lookup",
                    "lookup: no resolver is available on this host",
                ));
                return Err(ErrorCode::PermanentResolverFailure);
            };
            let lookup = wasmtime_wasi::runtime::in_tokio(async move {
                tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup_ip(host.as_str())).await
            });
            match lookup {
                Ok(Ok(found)) => found.iter().collect(),
                Ok(Err(e)) => {
                    self.audit.decision(Decided::new(
                        "net",
                        name,
                        Decision::Deny,
                        "lookup",
                        format!("lookup: the name does not resolve: {e}"),
                    ));
                    return Err(ErrorCode::NameUnresolvable);
                }
                Err(_) => return Err(ErrorCode::TemporaryResolverFailure),
            }
        };
        let mut resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        for ip in &found {
            let names = resolved.entry(*ip).or_default();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        drop(resolved);
        let list: Vec<String> = found.iter().map(ToString::to_string).collect();
        let mut decided = Decided::new(
            "net",
            name,
            Decision::Allow,
            "lookup",
            format!(
                "lookup: {} -> [{}] (each address is checked again on connect)",
                verdict.reason,
                list.join(", ")
            ),
        );
        if let Some(g) = &verdict.grant {
            decided = decided.by(g);
        }
        self.audit.decision(decided);
        Ok(found)
    }
}

/// The `op` of a socket decision.
fn socket_op(use_: SocketAddrUse) -> &'static str {
    match use_ {
        SocketAddrUse::TcpConnect => "connect",
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => "bind",
        SocketAddrUse::TcpListen => "listen",
        SocketAddrUse::TcpAccept => "accept",
        SocketAddrUse::UdpSend => "send",
        SocketAddrUse::UdpReceive => "receive",
    }
}

/// A connected TCP socket's output stream, metered against `[limits] egress` and scanned for
/// secret values: a write that carries one, or that does not fit the limit, fails. The scan
/// follows the whole connection, so a value split across writes is refused in the write that
/// completes it (see [`StreamScan`]).
struct MeteredOutput {
    inner: DynOutputStream,
    gate: Arc<SocketGate>,
    peer: String,
    scan: StreamScan,
}

impl MeteredOutput {
    fn admit(&mut self, bytes: &[u8]) -> StreamResult<()> {
        let secrets = &self.gate.secrets;
        if let Some(s) = secrets.find_leak_in_stream(&mut self.scan, bytes, |_| false) {
            self.gate.audit.decision(Decided::new(
                "secret",
                &s.spec.name,
                Decision::Deny,
                "exfiltration",
                format!(
                    "exfiltration attempt: a TCP write to {} carries the secret's value",
                    self.peer
                ),
            ));
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "refused by warden: the data carries a secret"
            )));
        }
        if !self.gate.meter.take_bytes(bytes.len() as u64) {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "refused by warden: egress limit reached"
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Pollable for MeteredOutput {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait::async_trait]
impl OutputStream for MeteredOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.admit(&bytes)?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

/// Replaces a connection's output stream in the guest's table by a [`MeteredOutput`] around it.
fn meter_output<T: WasiView>(
    host: &mut T,
    output: &Resource<DynOutputStream>,
    gate: Arc<SocketGate>,
    peer: String,
) -> wasmtime::Result<()> {
    let stream: &mut DynOutputStream = host.ctx().table.get_mut(output)?;
    let inner = std::mem::replace(stream, Box::new(ClosedOutputStream));
    *stream = Box::new(MeteredOutput {
        inner,
        gate,
        peer,
        scan: StreamScan::new(),
    });
    Ok(())
}

/// The addresses one lookup found, handed out one at a time.
pub struct Resolved(std::vec::IntoIter<IpAddr>);

#[async_trait::async_trait]
impl Pollable for Resolved {
    async fn ready(&mut self) {
        // Resolved before the resource is made: always ready.
    }
}

/// Takes over socket creation, `accept`, datagram sending and `wasi:sockets/ip-name-lookup`
/// from wasmtime-wasi, so that `gate` decides them: TCP sockets only with a `connect` or
/// `listen` entry, UDP sockets only with a `udp` entry, names only when listed; the output of
/// every connection (made or accepted) and every datagram is metered and scanned.
///
/// # Errors
/// The linker lacks wasmtime-wasi's sockets interfaces.
///
/// Kept whole: one registration per function taken over, each a few lines that hand the call
/// to `gate`; a list read top to bottom.
pub fn add_to_linker<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    gate: fn(&mut T) -> Arc<SocketGate>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(TCP_CREATE_SOCKET)?.func_wrap(
        "create-tcp-socket",
        move |mut store: StoreContextMut<'_, T>,
              (family,): (IpAddressFamily,)|
              -> wasmtime::Result<(Result<Resource<TcpSocket>, ErrorCode>,)> {
            if !gate(store.data_mut()).tcp_socket_allowed() {
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            let mut sockets = WasiSocketsView::sockets(store.data_mut());
            match tcp_create_socket::Host::create_tcp_socket(&mut sockets, family) {
                Ok(socket) => Ok((Ok(socket),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    linker.instance(TCP)?.func_wrap(
        "[method]tcp-socket.finish-connect",
        move |mut store: StoreContextMut<'_, T>,
              (socket,): (Resource<TcpSocket>,)|
              -> wasmtime::Result<(ConnectResult,)> {
            let gate = gate(store.data_mut());
            let mut sockets = WasiSocketsView::sockets(store.data_mut());
            let peer =
                HostTcpSocket::remote_address(&mut sockets, Resource::new_borrow(socket.rep()))
                    .map(|a| format!("{:?}", std::net::SocketAddr::from(a)))
                    .unwrap_or_else(|_| "its peer".to_owned());
            let (input, output) = match HostTcpSocket::finish_connect(&mut sockets, socket) {
                Ok(streams) => streams,
                Err(e) => return Ok((Err(e.downcast()?),)),
            };
            meter_output(store.data_mut(), &output, gate, peer)?;
            Ok((Ok((input, output)),))
        },
    )?;
    linker.instance(TCP)?.func_wrap(
        "[method]tcp-socket.accept",
        move |mut store: StoreContextMut<'_, T>,
              (socket,): (Resource<TcpSocket>,)|
              -> wasmtime::Result<(AcceptResult,)> {
            let gate = gate(store.data_mut());
            let mut sockets = WasiSocketsView::sockets(store.data_mut());
            let (conn, input, output) = match HostTcpSocket::accept(&mut sockets, socket) {
                Ok(accepted) => accepted,
                Err(e) => return Ok((Err(e.downcast()?),)),
            };
            let peer =
                HostTcpSocket::remote_address(&mut sockets, Resource::new_borrow(conn.rep()))
                    .map(|a| std::net::SocketAddr::from(a).to_string())
                    .unwrap_or_else(|_| "its peer".to_owned());
            meter_output(store.data_mut(), &output, gate, peer)?;
            Ok((Ok((conn, input, output)),))
        },
    )?;
    linker.instance(UDP_CREATE_SOCKET)?.func_wrap(
        "create-udp-socket",
        move |mut store: StoreContextMut<'_, T>,
              (family,): (IpAddressFamily,)|
              -> wasmtime::Result<(Result<Resource<UdpSocket>, ErrorCode>,)> {
            if !gate(store.data_mut()).udp_socket_allowed() {
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            let mut sockets = WasiSocketsView::sockets(store.data_mut());
            match udp_create_socket::Host::create_udp_socket(&mut sockets, family) {
                Ok(socket) => Ok((Ok(socket),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    linker.instance(UDP)?.func_wrap(
        "[method]outgoing-datagram-stream.send",
        move |mut store: StoreContextMut<'_, T>,
              (stream, datagrams): (Resource<OutgoingDatagramStream>, Vec<OutgoingDatagram>)|
              -> wasmtime::Result<(Result<u64, ErrorCode>,)> {
            if let Err(code) = gate(store.data_mut()).admit_datagrams(&datagrams) {
                return Ok((Err(code),));
            }
            let mut sockets = WasiSocketsView::sockets(store.data_mut());
            match HostOutgoingDatagramStream::send(&mut sockets, stream, datagrams) {
                Ok(n) => Ok((Ok(n),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    let mut inst = linker.instance(IP_NAME_LOOKUP)?;
    inst.resource(
        "resolve-address-stream",
        wasmtime::component::ResourceType::host::<Resolved>(),
        |mut store: StoreContextMut<'_, T>, rep| {
            store
                .data_mut()
                .ctx()
                .table
                .delete(Resource::<Resolved>::new_own(rep))?;
            Ok(())
        },
    )?;
    inst.func_wrap(
        "resolve-addresses",
        move |mut store: StoreContextMut<'_, T>,
              (network, name): (Resource<Network>, String)|
              -> wasmtime::Result<(Result<Resource<Resolved>, ErrorCode>,)> {
            // The network handle is the capability to look names up at all.
            store.data_mut().ctx().table.get(&network)?;
            match gate(store.data_mut()).lookup(&name) {
                Ok(found) => {
                    let stream = Resolved(found.into_iter());
                    Ok((Ok(store.data_mut().ctx().table.push(stream)?),))
                }
                Err(code) => Ok((Err(code),)),
            }
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, T>,
         (stream,): (Resource<Resolved>,)|
         -> wasmtime::Result<(Result<Option<IpAddress>, ErrorCode>,)> {
            let stream = store.data_mut().ctx().table.get_mut(&stream)?;
            Ok((Ok(stream.0.next().map(IpAddress::from)),))
        },
    )?;
    inst.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: StoreContextMut<'_, T>,
         (stream,): (Resource<Resolved>,)|
         -> wasmtime::Result<(Resource<DynPollable>,)> {
            Ok((subscribe(store.data_mut().ctx().table, stream)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
