//! The seccomp allow list that wraps warden's own host process.
//!
//! This crate knows nothing of wasmtime or of the manifest format: it takes a list of syscall
//! groups and turns them into a filter. It is filled in by the host-lockdown work; for now it
//! only names the groups a run asks for.

/// A group of syscalls that one kind of grant needs on the host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// What the runtime needs to run already-loaded code: memory, signals for traps, futex,
    /// clocks, exit.
    Base,
    /// Reading granted files.
    FileRead,
    /// Writing granted files.
    FileWrite,
    /// Outbound network connections.
    Network,
}
