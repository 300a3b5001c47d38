//! Vigie's integration tests, one binary. Each module reads as sentences:
//! what a coordinator or a sysadmin would notice.

mod api;
mod check;
mod cli;
mod crash;
mod daemon;
mod events;
mod fuzz;
mod harness;
mod import;
mod smtp;
mod support;
mod systemd;
mod webhook;
