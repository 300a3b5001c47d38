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
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Every plan version found, its validity, the one in force, review dates.
    List {
        /// As of this day instead of today.
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
    }
}

fn run_daemon(path: &Path) -> i32 {
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
    match rt.block_on(crate::daemon::run(path, Arc::new(SystemClock))) {
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
