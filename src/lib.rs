//! Vigie: the alerting daemon of a CPTS (communauté professionnelle
//! territoriale de santé). It activates the yearly *plan de gestion de
//! crise*, broadcasts prevention alerts, escalates when nobody answers and
//! keeps on-call rosters covered. The contract is `SPEC.md`.
//!
//! # Layout
//! - [`cli`]: the command line (clap definitions and the commands that run
//!   without the daemon: `check`, `plan list`).
//! - [`config`]: the files a CPTS writes (daemon config, directory, plans,
//!   rosters, reminders), read into typed values with `file:line:col`
//!   diagnostics.
//! - [`import`]: outside registers (the Annuaire Santé extract) turned into
//!   directory TOML, read as a stream.
//! - [`model`]: typed domain values with `parse` constructors (durations,
//!   cron schedules, e-mail, phone, RPPS, versions).
//! - [`schedule`]: public holidays and the injected clock.
//! - [`roster`]: on-call rosters at work: dated occurrences, coverage check,
//!   iCalendar export, CSV import of assignments.
//! - [`store`]: SQLite (WAL, embedded migrations); the only place with SQL.
//! - [`web`]: the axum router (health and readiness so far).
//! - [`sdnotify`]: the systemd notification protocol (`READY=1`, watchdog).
//! - [`daemon`]: wiring: load, store, serve, reload on SIGHUP, stop on
//!   SIGTERM/SIGINT.
//!
//! Data flows one way: files → config (validated) → engine decides → store
//! (outbox) → deliver → channels; web and CLI only read the store or ask the
//! engine.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod engine;
pub mod import;
pub mod model;
pub mod roster;
pub mod schedule;
pub mod sdnotify;
pub mod store;
pub mod web;
