//! The analysis behind the `warden` command line, as a library for the binary and for the fuzz
//! targets in fuzz/: what `warden check` reports of a manifest ([`check`], [`grants`],
//! [`controls`]) and of the audit logs of its runs ([`usage`]), the manifest `warden learn`
//! writes from a run ([`learn`]), `warden run`'s grant flags as a manifest ([`quick`]), and
//! what `warden serve` reads from a request target and from its workers ([`serve`]).
//!
//! Facts and text only: nothing here prints, runs a workload or touches the network. The
//! runtime itself is the `warden` library (package `warden-runtime`); this package adds
//! the command line's dependencies (clap, the HTTP server, the signal handling) on top of it.

#![deny(missing_docs)]

pub mod check;
pub mod controls;
pub mod grants;
pub mod learn;
pub mod quick;
pub mod usage;

/// What `warden serve` reads from outside: request targets and the frames of its workers.
pub mod serve {
    pub mod proto;
    pub mod route;
}
