//! The commands of `warden`, one module per command family; `main.rs` parses the command line
//! and calls into them.

pub(crate) mod bench;
pub(crate) mod check;
pub(crate) mod complete;
pub(crate) mod controls;
pub(crate) mod learn;
pub(crate) mod paths;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod seccomp;
pub(crate) mod serve;
pub(crate) mod warnings;
pub(crate) mod wit;
