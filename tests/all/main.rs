//! Integration tests: the real `warden` binary, driven as a user would, against the guests in
//! `guests/` (built by `warden-guest-artifacts`).
#![allow(clippy::unwrap_used)]

mod against;
mod architecture;
mod audit;
mod badinput;
mod bench_cmd;
mod cache;
mod check;
mod cli;
mod cli_tools;
mod conformance;
mod connectors;
mod container;
mod controls;
mod copyback;
mod corpus_c;
mod corpus_python;
mod corpus_rust;
mod egress;
mod env;
mod epochs;
mod fs;
mod guests_js;
mod guests_python;
mod hostile;
mod image;
mod invoke;
mod learn;
mod learn_connectors;
mod library;
mod library_async;
mod library_http;
mod library_plug;
mod limits;
mod lockdown;
mod net_listen;
mod observe;
mod ocsf;
mod outputs;
mod packages;
mod quickflags;
mod scanner;
mod schema;
mod serve;
mod serve_cgroup2;
mod serve_files;
mod serve_front;
mod serve_http;
mod serve_reload;
mod server;
mod stdio;
mod stress;
mod util;
mod wit;

use warden_guest_artifacts as guests;
