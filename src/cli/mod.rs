//! The command line (SPEC §10): clap definitions, and the commands that work
//! from the files alone (`check`, `plan list`).
//!
//! Commands print for people on standard output and return the process exit
//! code; `main` only parses, sets up logging and calls [`run`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use clap::{Parser, Subcommand};

use crate::config::{self, Diagnostics, Plan, plan};
use crate::schedule::clock::SystemClock;

pub mod client;
pub mod directory;
pub mod roster;

#[derive(Debug, Parser)]
#[command(
    name = "vigie",
    version,
    about = "Crisis plans, alerts, escalation and on-call rosters for a CPTS"
)]
pub struct Cli {
    /// The configuration file (default: $VIGIE_CONFIG, else /etc/vigie/vigie.toml).
    #[arg(short = 'c', long = "config", global = true, value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Validate every file; list every problem as file:line:col; exit 1 on error.
    Check {
        /// Judge dates (plan in force, review due) as of this day instead of today.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
        /// Print errors only, not warnings.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Crisis plans.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// On-call rosters: coverage check, CSV import of assignments.
    #[command(subcommand)]
    Roster(roster::RosterCommand),
    /// Declare a scenario (or update the unresolved event with the same key).
    Declare {
        scenario: String,
        #[arg(long)]
        level: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// A drill: every message is marked [EXERCICE].
        #[arg(long)]
        exercise: bool,
        /// Tells two events of the same scenario apart (e.g. a commune).
        #[arg(long)]
        key: Option<String>,
        /// Allows lowering the level of the event already open (refused otherwise).
        #[arg(long)]
        downgrade: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List events (unresolved ones unless --all).
    Events {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show an event with its tiers, deliveries and responses.
    Show {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change the level of an event.
    Level {
        id: String,
        level: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Resolve an event.
    Resolve {
        id: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The daemon's status: plan in force, unresolved events, deliveries, last reload.
    Status {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read one password line on standard input and print its argon2id hash
    /// (for `[auth] operators`).
    HashPassword,
    /// Ask the daemon to reload its files (same as SIGHUP).
    Reload {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Build the professional directory.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token and the `tokens` entry to paste in vigie.toml.
    New { name: String },
}

/// How commands reach the daemon's API.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// A file holding the API token (default: $VIGIE_TOKEN, else the token
    /// the daemon generated in data_dir).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Every plan version found, its validity, the one in force, review dates.
    List {
        /// As of this day instead of today.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
    },
    /// Who would receive what on which channel, tier by tier, with the first
    /// rendered message. Sends nothing.
    Preview {
        scenario: String,
        #[arg(long)]
        level: Option<String>,
        /// Render as an exercise.
        #[arg(long)]
        exercise: bool,
        /// Use the plan in force on this day instead of today.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
    },
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let path = config::config_path(cli.config.as_deref());
    match cli.command {
        Command::Run => run_daemon(&path),
        Command::Check { date, quiet } => check(&path, date, quiet, &mut std::io::stdout()),
        Command::Plan(PlanCommand::List { date }) => plan_list(&path, date, &mut std::io::stdout()),
        Command::Plan(PlanCommand::Preview {
            scenario,
            level,
            exercise,
            date,
        }) => preview(
            &path,
            &scenario,
            level.as_deref(),
            exercise,
            date,
            &mut std::io::stdout(),
        ),
        Command::Roster(cmd) => roster::run(&path, cmd),
        Command::Declare {
            scenario,
            level,
            note,
            exercise,
            key,
            downgrade,
            api,
        } => {
            let mut body = client::declare_body(
                &scenario,
                level.as_deref(),
                note.as_deref(),
                exercise,
                key.as_deref(),
            );
            if downgrade {
                body["downgrade"] = serde_json::json!(true);
            }
            api_command(
                &path,
                &api,
                reqwest::Method::POST,
                "/api/v1/events".into(),
                Some(body),
                |out, status, v| {
                    let id = v["id"].as_str().unwrap_or("?");
                    let queued = v["queued"].as_u64().unwrap_or(0);
                    if status == 201 {
                        let _ = writeln!(
                            out,
                            "event {id} declared: {} ({} deliveries queued)",
                            describe(v),
                            queued
                        );
                    } else if v["level_changed"].as_bool() == Some(true) {
                        let _ = writeln!(
                            out,
                            "event {id} ({}) already open for this scenario and key: level changed to {} ({} deliveries queued)",
                            describe(v),
                            v["level"].as_str().unwrap_or("-"),
                            queued
                        );
                    } else {
                        let _ = writeln!(
                            out,
                            "event {id} ({}) already open for this scenario and key, level unchanged: nothing sent",
                            describe(v)
                        );
                    }
                    if let Some(w) = v["warning"].as_str() {
                        let _ = writeln!(out, "WARNING: {w}");
                    }
                },
            )
        }
        Command::Events { all, api } => {
            let path_q = if all {
                "/api/v1/events"
            } else {
                "/api/v1/events?state=unresolved"
            };
            api_command(
                &path,
                &api,
                reqwest::Method::GET,
                path_q.into(),
                None,
                |out, _, v| {
                    client::print_events(
                        out,
                        v["events"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                    );
                },
            )
        }
        Command::Show { id, api } => api_command(
            &path,
            &api,
            reqwest::Method::GET,
            format!("/api/v1/events/{id}"),
            None,
            |out, _, v| {
                client::print_event(out, v);
            },
        ),
        Command::Level { id, level, api } => api_command(
            &path,
            &api,
            reqwest::Method::POST,
            format!("/api/v1/events/{id}/level"),
            Some(serde_json::json!({"level": level})),
            |out, _, v| {
                if v["level_changed"].as_bool() == Some(true) {
                    let _ = writeln!(
                        out,
                        "event {id}: level {} ({} deliveries queued)",
                        v["level"].as_str().unwrap_or("-"),
                        v["queued"].as_u64().unwrap_or(0)
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "event {id}: already at level {}",
                        v["level"].as_str().unwrap_or("-")
                    );
                }
            },
        ),
        Command::Resolve { id, note, api } => api_command(
            &path,
            &api,
            reqwest::Method::POST,
            format!("/api/v1/events/{id}/resolve"),
            Some(match note {
                Some(n) => serde_json::json!({"note": n}),
                None => serde_json::json!({}),
            }),
            |out, _, v| {
                let _ = writeln!(
                    out,
                    "event {id} resolved ({} end-of-alert notices queued)",
                    v["queued"].as_u64().unwrap_or(0)
                );
            },
        ),
        Command::Status { api } => api_command(
            &path,
            &api,
            reqwest::Method::GET,
            "/api/v1/status".into(),
            None,
            |out, _, v| {
                client::print_status(out, v);
            },
        ),
        Command::Token(TokenCommand::New { name }) => token_new(&name, &mut std::io::stdout()),
        Command::HashPassword => hash_password(),
        Command::Directory(cmd) => {
            directory::run(cmd, &mut std::io::stdout().lock(), &mut std::io::stderr())
        }
        Command::Reload { api } => api_command(
            &path,
            &api,
            reqwest::Method::POST,
            "/api/v1/reload".into(),
            None,
            |out, _, v| {
                let _ = writeln!(
                    out,
                    "configuration reloaded (generation {})",
                    v["generation"]
                );
            },
        ),
    }
}

/// `vigie token new NAME`.
pub fn token_new(name: &str, out: &mut dyn Write) -> i32 {
    use rand::RngCore;
    if crate::model::parse_slug(name, "token name").is_err() {
        eprintln!("vigie: a token name is lower-case letters, digits, '_' and '-'");
        return 2;
    }
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    let token = format!("vigie_{}", hex::encode(b));
    let _ = writeln!(out, "{token}");
    let _ = writeln!(
        out,
        "# add to [auth] tokens in vigie.toml, then reload; keep the token above secret:\n{{ name = \"{name}\", sha256 = \"{}\" }}",
        crate::daemon::token_sha256(&token)
    );
    0
}

/// `vigie hash-password`: one line on stdin (not echoed on a terminal).
fn hash_password() -> i32 {
    use std::io::IsTerminal;
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
    } else {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map(|_| s)
    };
    let password = match line {
        Ok(l) => l.trim_end_matches(['\r', '\n']).to_string(),
        Err(e) => {
            eprintln!("vigie: cannot read the password: {e}");
            return 2;
        }
    };
    if password.chars().count() < 10 {
        eprintln!("vigie: the password must have at least 10 characters");
        return 2;
    }
    match crate::web::auth::hash_password(&password) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("vigie: {e}");
            2
        }
    }
}

fn describe(v: &serde_json::Value) -> String {
    let mut s = v["title"].as_str().unwrap_or("").to_string();
    if let Some(l) = v["level"].as_str() {
        s.push_str(&format!(", level {l}"));
    }
    if v["exercise"].as_bool() == Some(true) {
        s.push_str(", EXERCISE");
    }
    s
}

/// Runs one API call and prints its answer (text, or JSON with --json).
/// Exit 0 on success, 1 when the API refuses, 2 when it cannot be reached.
fn api_command(
    path: &Path,
    api: &ApiArgs,
    method: reqwest::Method,
    route: String,
    body: Option<serde_json::Value>,
    print: impl FnOnce(&mut dyn Write, u16, &serde_json::Value),
) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigie: {e}");
            return 2;
        }
    };
    let result = rt.block_on(async {
        let c = client::Client::from_config(path, api.token_file.as_deref())?;
        c.call(method, &route, body).await
    });
    let mut out = std::io::stdout();
    match result {
        Ok((status, v)) => {
            if api.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            } else {
                print(&mut out, status, &v);
            }
            0
        }
        Err(client::ClientError::Api { status, message }) => {
            eprintln!("vigie: {message} (HTTP {status})");
            1
        }
        Err(e) => {
            eprintln!("vigie: {e}");
            2
        }
    }
}

/// `vigie plan preview`: works from the files alone.
pub fn preview(
    path: &Path,
    scenario_id: &str,
    level: Option<&str>,
    exercise: bool,
    date: Option<NaiveDate>,
    out: &mut dyn Write,
) -> i32 {
    let loaded = config::load(path, today_in(date));
    let Some(set) = loaded.set else {
        for d in loaded.diagnostics.errors() {
            let _ = writeln!(out, "{d}");
        }
        return 1;
    };
    let tz = set.daemon.timezone;
    let now = match date {
        Some(d) => {
            crate::schedule::oncall::local_to_utc(tz, d.and_hms_opt(12, 0, 0).unwrap_or_default())
        }
        None => Utc::now(),
    };
    let today = now.with_timezone(&tz).date_naive();
    let set = Arc::new(set);
    let Some(plan) = set
        .plans_in_force(today)
        .into_iter()
        .find(|p| p.scenario(scenario_id).is_some())
    else {
        let _ = writeln!(
            out,
            "no plan in force on {today} has a scenario `{scenario_id}`"
        );
        return 1;
    };
    let scenario = plan.scenario(scenario_id).expect("found");
    let ctx = crate::engine::Ctx {
        set: set.clone(),
        links: crate::engine::links::LinkSigner::new(Vec::new()),
        now,
        handoff: None,
        actor: None,
    };
    let steps = match crate::engine::preview(&ctx, plan, scenario, level, exercise) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return 1;
        }
    };
    let _ = writeln!(
        out,
        "{} — {} (plan {} {}){}",
        scenario.id.value,
        scenario.title,
        plan.id.value,
        plan.version.value,
        match level.or(scenario.levels.first().map(|l| l.as_str())) {
            Some(l) => format!(", level {l}"),
            None => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "Nothing is sent. Responses offered: {}.",
        scenario.responses.join(", ")
    );
    for s in steps {
        let _ = writeln!(out, "\n== {} ==", s.title);
        let _ = writeln!(
            out,
            "channels: {}; {} recipients",
            s.channels.join(", "),
            s.recipients.len()
        );
        for (name, detail) in &s.recipients {
            let _ = writeln!(out, "  - {name} ({detail})");
        }
        for (ch, lacking) in &s.skipped {
            let _ = writeln!(
                out,
                "  skipped on {ch} (no contact): {}",
                lacking.join(", ")
            );
        }
        match &s.first {
            Some((to, r)) => {
                let _ = writeln!(out, "first message, to {to}:");
                let _ = writeln!(out, "  Subject: {}", r.subject);
                for line in r.text.lines() {
                    let _ = writeln!(out, "  | {line}");
                }
            }
            None => {
                let _ = writeln!(out, "  (nobody: this step would send nothing)");
            }
        }
    }
    0
}

/// `vigie run`. What the daemon creates (data_dir, the database and its
/// journal, secrets, `.eml` files) is for its user only, whatever the
/// umask it was started with: systemd sets `UMask=0077`, a shell or
/// another supervisor usually 022. The other commands write nothing but
/// their output.
fn run_daemon(path: &Path) -> i32 {
    // SAFETY: umask(2) only sets the process's file creation mask; it is
    // set before any thread is started.
    unsafe {
        libc::umask(0o077);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigie: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(crate::daemon::run(path, Arc::new(SystemClock)));
    // A reload cut short by SIGTERM may still be reading files on a
    // blocking thread: exit without waiting for it (dropping the runtime
    // would).
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vigie: {e}");
            1
        }
    }
}

fn today_in(date: Option<NaiveDate>) -> impl FnOnce(chrono_tz::Tz) -> NaiveDate {
    move |tz| date.unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive())
}

/// `vigie check`: exit 0 when valid (warnings allowed), 1 on any error.
pub fn check(path: &Path, date: Option<NaiveDate>, quiet: bool, out: &mut dyn Write) -> i32 {
    let loaded = config::load(path, today_in(date));
    let d = &loaded.diagnostics;
    for diag in d.iter() {
        if !quiet || diag.severity == config::Severity::Error {
            let _ = writeln!(out, "{diag}");
        }
    }
    let errors = d.errors().count();
    let warnings = d.warnings().count();
    match &loaded.set {
        Some(set) => {
            let today = today_in(date)(set.daemon.timezone);
            let in_force: Vec<String> = set
                .plans_in_force(today)
                .iter()
                .map(|p| format!("{} {}", p.id.value, p.version.value))
                .collect();
            let active = set
                .directory
                .professionals
                .iter()
                .filter(|p| p.active)
                .count();
            let _ = writeln!(
                out,
                "OK: {} professionals ({} active), {} groups, {} plan files (in force: {}), {} rosters, {} reminders; {}",
                set.directory.professionals.len(),
                active,
                set.directory.groups.len(),
                set.plans.len(),
                if in_force.is_empty() {
                    "none".to_string()
                } else {
                    in_force.join(", ")
                },
                set.rosters.len(),
                set.reminders.reminders.len(),
                plural(warnings, "warning"),
            );
            0
        }
        None => {
            let _ = writeln!(
                out,
                "{} found, {}: the configuration is refused",
                plural(errors.max(1), "error"),
                plural(warnings, "warning")
            );
            1
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `vigie plan list`: reads the daemon config and the plans only, so it
/// works even when another file is broken.
pub fn plan_list(path: &Path, date: Option<NaiveDate>, out: &mut dyn Write) -> i32 {
    let mut diags = Diagnostics::default();
    let Some(daemon) = config::daemon::load(path, &mut diags) else {
        for d in diags.iter() {
            let _ = writeln!(out, "{d}");
        }
        return 1;
    };
    let today = today_in(date)(daemon.timezone);
    let mut plans = plan::load_dir(&daemon.plans, &mut diags);
    plans.sort_by(|a, b| (a.id.as_str(), &a.version.value).cmp(&(b.id.as_str(), &b.version.value)));
    let in_force: Vec<&Plan> = plan::in_force(&plans, today);
    let base = path.parent().unwrap_or(Path::new("."));
    let rows: Vec<[String; 8]> = plans
        .iter()
        .map(|p| {
            let status = plan_status(p, &plans, &in_force, today);
            let file = p
                .path
                .strip_prefix(base)
                .unwrap_or(&p.path)
                .display()
                .to_string();
            [
                p.id.value.clone(),
                p.version.value.0.clone(),
                p.valid_from.value.to_string(),
                p.valid_until.value.to_string(),
                p.approved
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.review_by.value.to_string(),
                status,
                file,
            ]
        })
        .collect();
    let header = [
        "PLAN",
        "VERSION",
        "VALID FROM",
        "VALID UNTIL",
        "APPROVED",
        "REVIEW BY",
        "STATUS",
        "FILE",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    let _ = writeln!(out, "as of {today}");
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
    if plans.is_empty() {
        let _ = writeln!(out, "(no plan in {})", daemon.plans.display());
    }
    if in_force.is_empty() {
        let _ = writeln!(out, "warning: no plan is in force on {today}");
    }
    for d in diags.iter() {
        let _ = writeln!(out, "{d}");
    }
    if diags.has_errors() { 1 } else { 0 }
}

fn plan_status(p: &Plan, all: &[Plan], in_force: &[&Plan], today: NaiveDate) -> String {
    if in_force.iter().any(|f| std::ptr::eq(*f, p)) {
        let notice = p.review_by.value - Duration::days(30);
        let newer = all.iter().any(|o| {
            o.id.value == p.id.value
                && o.version.value > p.version.value
                && o.valid_from.value > today
        });
        let days = (p.review_by.value - today).num_days();
        if newer {
            "in force (next version written)".to_string()
        } else if days < 0 {
            format!("in force, review overdue by {} days", -days)
        } else if today >= notice {
            format!("in force, review due in {days} days")
        } else {
            "in force".to_string()
        }
    } else if p.valid_until.value < today {
        "expired".to_string()
    } else if p.valid_from.value > today {
        "upcoming".to_string()
    } else {
        "superseded".to_string()
    }
}
