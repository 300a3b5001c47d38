//! Vigie: the alerting daemon of a CPTS (communauté professionnelle
//! territoriale de santé). It activates the yearly *plan de gestion de
//! crise*, broadcasts prevention alerts, escalates when nobody answers and
//! keeps on-call rosters covered. Every file format, command and route is
//! in `docs/REFERENCE.md`.
//!
//! # Layout
//! - [`cli`]: the command line: clap definitions, the commands that work
//!   from the files (`check`, `plan list/preview`, `roster check`,
//!   `directory import-rpps`, `token new`, `hash-password`, `backup`,
//!   `restore`, `test-send`: one message through a channel built as the
//!   daemon builds it, with why it failed) and the API client behind
//!   `declare`, `events`, `show`, `level`, `resolve`, `status`, `log`,
//!   `report`, `actions`, `done`; what a coordinator reads is in French.
//! - [`config`]: the files a CPTS writes (daemon config, directory, plans,
//!   rosters, reminders), read into typed values with `file:line:col`
//!   diagnostics; `config::source` is the one reader of files by name
//!   (regular files of at most 16 MiB, never a FIFO or a device);
//!   `config::conduct` the crisis conduct of a plan (instructions, public
//!   advice, action cards, the exercise period and its one rule).
//! - [`import`]: outside registers (the Annuaire Santé extract) turned into
//!   directory TOML, read as a stream.
//! - [`model`]: typed domain values with `parse` constructors (durations,
//!   cron schedules, e-mail, phone, RPPS, versions, seasons and periods) and
//!   the French words people read for them (`model::labels`: states,
//!   counts that agree, durations), shared by the pages and the CLI.
//! - [`engine`]: events and escalation: declare, level, resolve, responses,
//!   timers, preview; every decision written to the outbox in its
//!   transaction; events written as CAP 1.2 alerts and their Atom feed
//!   (`engine::cap`); the crisis conduct: the main courante's automatic
//!   entries written in each decision's transaction (`engine::journal`),
//!   the actions of a level (`engine::actions`), the relance of those who
//!   have not answered (`engine::remind`), answers by SMS
//!   (`engine::respond`) and the RETEX report's figures
//!   (`engine::report`). It declares what it needs of the outbox
//!   ([`engine::OutboxPort`]: claim inside a transaction, wake up).
//! - [`deliver`]: the outbox worker (one [`deliver::Outbox::step`] at a
//!   time, which tests drive) and the channels (SMTP or `.eml` files, signed
//!   webhooks, SMS providers with the network's segment count in
//!   `deliver::sms`; `deliver::channels` builds them by name for the daemon
//!   and `vigie test-send`), retries with backoff, rate limits, lanes; implements the
//!   engine's `OutboxPort`.
//! - [`app`]: the application core, the one door into the engine for the
//!   API, the pages, the CLI's daemon commands and the timers: the
//!   configuration snapshot and its reload, the store, the clock, the link
//!   key, the metrics and the outbox wake-up; the swaps of the rosters the
//!   professionals keep themselves (`app::swaps`: the effective
//!   configuration every reader sees, personal tokens, request, take,
//!   approve, the 48 h alert); the vigilance feed (`app::vigilance`: one
//!   poll of Météo-France's map or MeteoAlarm's feed per step, proposals, accept / dismiss).
//! - [`metrics`]: counters and histograms; every layer may count, only web
//!   renders them.
//! - [`schedule`]: public holidays, the injected clock, cron across DST, who
//!   is on call, routine reminders fired once per instant, held through
//!   the quiet hours (`schedule::quiet`).
//! - [`roster`]: on-call rosters at work: dated occurrences, coverage check,
//!   iCalendar export, CSV import of assignments, swaps folded on top of
//!   the files (`roster::swaps`).
//! - [`store`]: SQLite (WAL, embedded migrations); the only place with SQL
//!   (events, outbox, reminders, operators' sessions, swap requests, the
//!   events' actions checklists and a plan's last exercise, the main
//!   courante (append-only: triggers refuse UPDATE and DELETE), bulletins
//!   and lessons learned (`store::journal`), the relances, the
//!   online backup and its checks, the data directory's lock, the health
//!   probe of the heartbeat, the vigilance proposals).
//! - [`web`]: the axum router and its own state ([`web::WebState`]: pages,
//!   server-side sessions, the login limiter, caches): public and bureau
//!   pages (login, CSRF, the two-step declaration), the JSON API with bearer
//!   tokens, response pages, personal pages `/g/{token}` (`web::personal`),
//!   the main courante, bulletins, lessons and report routes
//!   (`web::journal`), the relance (`web::remind`),
//!   the actions checklist API (`web::actions`), the safe Markdown subset
//!   of the plans' texts (`web::markdown`), answers by SMS (`web::inbound`),
//!   calendar feeds, the CAP export (`web::cap`), `/metrics`, security headers; `web::server` serves it
//!   with header timeouts and a connection cap that evicts the idlest.
//! - [`sdnotify`]: the systemd notification protocol (`READY=1`, watchdog).
//! - [`daemon`]: wiring: load, secrets of a first start, build the app and
//!   the web state, serve, run the outbox, the timers, the heartbeat and
//!   the vigilance poll,
//!   reload on SIGHUP, stop when the caller's shutdown future completes
//!   (`run(…, listener, shutdown)`).
//!
//! Data flows one way: files → config (validated) → engine decides → store
//! (outbox) → deliver → channels; web and CLI only read the store or ask the
//! app.
//!
//! # Layering rules
//! Enforced by `tests/it/layering.rs`, which reads every `crate::` path:
//! - `config`, `model`, `store`, `schedule`, `engine` and `deliver` never
//!   name `web`, `cli`, `daemon` or `app`;
//! - `web` never names `daemon` (it reaches the engine through `app`);
//! - no file in `src/` is longer than 700 lines: a longer one is split along
//!   a real seam.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod engine;
pub mod import;
pub mod metrics;
pub mod model;
pub mod roster;
pub mod schedule;
pub mod sdnotify;
pub mod store;
pub mod web;
