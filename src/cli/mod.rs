//! The command line (SPEC §10): the clap definitions, the dispatch of a
//! parsed command line ([`run`]), and the small commands that need no other
//! home: `run` (the daemon), `check`, `token new`, `hash-password`.
//!
//! The other commands live in submodules: [`events`] (the API-backed event
//! commands), [`plan`] (`plan list`, `plan preview`), [`roster`],
//! [`directory`], [`backup`] (`backup`, `restore`), [`test_send`]; [`client`] is the API
//! client they share.
//!
//! Commands print for people on standard output and return the process exit
//! code; `main` only parses, sets up logging and calls [`run`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand};

use crate::config;
use crate::schedule::clock::SystemClock;

pub mod backup;
pub mod client;
pub mod directory;
pub mod events;
pub mod journal;
pub mod plan;
pub mod roster;
pub mod test_send;

pub use plan::{plan_list, preview};

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
    /// Print the main courante (crisis log) of an event, or add a note to it.
    Log {
        id: String,
        /// The note to add (nothing: print the main courante).
        text: Option<String>,
        /// The note corrects entry N (nothing is edited: the correction is
        /// a new entry that names it).
        #[arg(long, value_name = "N", requires = "text")]
        corrects: Option<i64>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// The RETEX report of an event (text, or the API's JSON with --json).
    Report {
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
    /// The actions checklist of an event (the plan's action cards).
    Actions {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Tick action N of an event's checklist as done, with an optional note.
    Done {
        id: String,
        n: String,
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
    /// Copy the database while the daemon runs, check the copy and say what it holds.
    Backup(backup::BackupArgs),
    /// Put a checked copy in place of the database (daemon stopped); the
    /// current database is kept aside.
    Restore {
        /// A copy made by `vigie backup`.
        file: PathBuf,
    },
    /// Send one message marked [TEST] through a channel of the configuration
    /// (email, an [email.NAME] such as mssante, an [sms.NAME], a webhook) and say what failed;
    /// exit 0 only when the server accepted it.
    TestSend {
        /// The channel's name, as plans write it.
        channel: String,
        /// Where to send: an e-mail address; a phone number for an SMS
        /// channel (`[sms.NAME]`: +33612345678, or "06 12 34 56 78" in quotes) or a webhook.
        address: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token and the `tokens` entry to paste in vigie.toml.
    New {
        name: String,
        /// A read-only calendar token (`[[auth.calendar_tokens]]`) for the
        /// roster feeds `/calendar/{roster}.ics?token=`.
        #[arg(long)]
        calendar: bool,
    },
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
        } => events::declare(
            &path,
            events::Declare {
                scenario,
                level,
                note,
                exercise,
                key,
                downgrade,
            },
            &api,
        ),
        Command::Events { all, api } => events::events(&path, all, &api),
        Command::Show { id, api } => events::show(&path, &id, &api),
        Command::Log {
            id,
            text,
            corrects,
            api,
        } => journal::log(&path, &id, text, corrects, &api),
        Command::Report { id, api } => journal::report(&path, &id, &api),
        Command::Level { id, level, api } => events::level(&path, &id, &level, &api),
        Command::Resolve { id, note, api } => events::resolve(&path, &id, note, &api),
        Command::Actions { id, api } => events::actions(&path, &id, &api),
        Command::Done { id, n, note, api } => events::done(&path, &id, &n, note, &api),
        Command::Status { api } => events::status(&path, &api),
        Command::Token(TokenCommand::New { name, calendar }) => {
            token_new(&name, calendar, &mut std::io::stdout())
        }
        Command::HashPassword => hash_password(),
        Command::Directory(cmd) => {
            directory::run(cmd, &mut std::io::stdout().lock(), &mut std::io::stderr())
        }
        Command::Reload { api } => events::reload(&path, &api),
        Command::Backup(args) => backup::run_backup(&path, args, &mut std::io::stdout()),
        Command::Restore { file } => backup::run_restore(&path, &file, &mut std::io::stdout()),
        Command::TestSend { channel, address } => {
            test_send::test_send(&path, &channel, &address, &mut std::io::stdout())
        }
    }
}

/// `vigie token new NAME`.
pub fn token_new(name: &str, calendar: bool, out: &mut dyn Write) -> i32 {
    use rand::RngCore;
    if crate::model::parse_slug(name, "token name").is_err() {
        eprintln!("vigie: a token name is lower-case letters, digits, '_' and '-'");
        return 2;
    }
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    let token = format!("vigie_{}", hex::encode(b));
    let _ = writeln!(out, "{token}");
    if calendar {
        let _ = writeln!(
            out,
            "# add to [auth] calendar_tokens in vigie.toml, then reload; it only reads the roster calendars\n# (/calendar/ROSTER.ics?token=…), and once one exists the API tokens no longer do:\n{{ name = \"{name}\", sha256 = \"{}\" }}",
            crate::web::auth::token_sha256(&token)
        );
        return 0;
    }
    let _ = writeln!(
        out,
        "# add to [auth] tokens in vigie.toml, then reload; keep the token above secret:\n{{ name = \"{name}\", sha256 = \"{}\" }}",
        crate::web::auth::token_sha256(&token)
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
    let result = rt.block_on(async {
        let shutdown =
            crate::daemon::shutdown_signal().map_err(crate::daemon::DaemonError::Serve)?;
        crate::daemon::run(path, Arc::new(SystemClock), None, shutdown).await
    });
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
                "OK: {} ({} active), {}, {} (in force: {}), {}, {}; {}",
                plural(set.directory.professionals.len(), "professional"),
                active,
                plural(set.directory.groups.len(), "group"),
                plural(set.plans.len(), "plan file"),
                if in_force.is_empty() {
                    "none".to_string()
                } else {
                    in_force.join(", ")
                },
                plural(set.rosters.len(), "roster"),
                plural(set.reminders.reminders.len(), "reminder"),
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
