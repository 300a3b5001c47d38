//! Vigie's integration tests, one binary. Each module reads as sentences:
//! what a coordinator or a sysadmin would notice.

mod actions;
mod api;
mod backup;
mod browser;
mod cap;
mod check;
mod cli;
mod crash;
mod daemon;
mod docs;
mod drills;
mod eta;
mod events;
mod files_secrets;
mod fuzz;
mod harness;
mod http_hardening;
mod import;
mod journal;
mod layering;
mod login;
mod outbox;
mod pages;
mod reference;
mod reminders;
mod rosters;
mod safety;
mod sms;
mod smtp;
mod smtp_tls;
mod support;
mod swaps;
mod systemd;
mod vigilance;
mod webhook;
