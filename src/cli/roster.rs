//! `vigie roster …`: the roster commands that work from the files, with
//! the swaps the professionals made (SPEC §15) read from the daemon's
//! database when there is one (`data_dir/vigie.db`, opened read-only).
//!
//! Exit codes: `check` 0 when everything is covered, 1 when something is
//! not, 2 on bad input (invalid configuration, unknown roster id);
//! `export` 0 with the TOML on standard output, 2 on bad input;
//! `import-csv` 0 with the TOML on standard output, 2 on any error (each as
//! `file:line:col: message` on standard error).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use clap::Subcommand;

use crate::config::{self, ConfigSet, Roster};
use crate::roster;

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Check coverage; exit 0 when covered, 1 when not, 2 on bad input.
    ///
    /// Reports every shift with fewer valid assignees than it needs, and
    /// every assignee who is unknown, inactive, not eligible, double-booked
    /// or without an e-mail or a phone number.
    Check {
        /// The roster id (default: every roster).
        id: Option<String>,
        /// First day to check (default: today in the daemon's time zone).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<NaiveDate>,
        /// Number of days to check (default 14).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: Option<u32>,
        /// Print the report as JSON (an object for one roster, an array
        /// without ID).
        #[arg(long)]
        json: bool,
    },
    /// Turn a spreadsheet's CSV export into `[[assignment]]` TOML.
    ///
    /// The CSV has a header naming the columns `date` (2026-12-24 or
    /// 24/12/2026), `shift` and `who` (ids or full names separated by `;`).
    /// The TOML to append to the roster file goes to standard output; errors
    /// go to standard error as file:line:col (exit 2).
    ImportCsv {
        /// The roster id.
        roster: String,
        /// The CSV file.
        file: PathBuf,
    },
    /// Print the effective assignments (the file's, with the swaps the
    /// professionals made through Vigie) as `[[assignment]]` TOML, to fold
    /// back into the roster file.
    Export {
        /// The roster id.
        id: String,
        /// First day (default: today in the daemon's time zone).
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: Option<NaiveDate>,
        /// Number of days (default 30).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: Option<u32>,
    },
}

/// Runs a roster command; returns the exit code.
pub fn run(path: &Path, cmd: RosterCommand) -> i32 {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match cmd {
        RosterCommand::Check {
            id,
            from,
            days,
            json,
        } => check(
            path,
            id.as_deref(),
            from,
            days.unwrap_or(14),
            json,
            &mut out,
            &mut err,
        ),
        RosterCommand::ImportCsv { roster, file } => {
            import_csv(path, &roster, &file, &mut out, &mut err)
        }
        RosterCommand::Export { id, from, days } => {
            export(path, &id, from, days.unwrap_or(30), &mut out, &mut err)
        }
    }
}

/// Loads the set; on errors prints them and returns `None`.
fn load(path: &Path, err: &mut dyn Write) -> Option<ConfigSet> {
    let loaded = config::load(path, |tz| Utc::now().with_timezone(&tz).date_naive());
    match loaded.set {
        Some(set) => Some(set),
        None => {
            for d in loaded.diagnostics.errors() {
                let _ = writeln!(err, "{d}");
            }
            let _ = writeln!(
                err,
                "vigie: the configuration is refused (run `vigie check` for details)"
            );
            None
        }
    }
}

/// The set with the swaps of the daemon's database (`data_dir/vigie.db`)
/// folded in, and those swaps; the files alone when there is no database.
fn with_swaps(set: ConfigSet, err: &mut dyn Write) -> (ConfigSet, Vec<roster::swaps::Swap>) {
    let db = set.daemon.data_dir.join("vigie.db");
    let rows = match crate::store::swaps::read_done(&db) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = writeln!(
                err,
                "vigie: cannot read the swaps in {}: {e} (the files' assignments only)",
                db.display()
            );
            Vec::new()
        }
    };
    let swaps: Vec<roster::swaps::Swap> = rows
        .into_iter()
        .filter_map(|r| {
            Some(roster::swaps::Swap {
                roster: r.roster,
                date: r.date,
                shift: r.shift,
                from: r.requester,
                to: r.taker?,
            })
        })
        .collect();
    if swaps.is_empty() {
        return (set, swaps);
    }
    (roster::swaps::apply(&set, &swaps).0, swaps)
}

/// `vigie roster export`.
pub fn export(
    path: &Path,
    id: &str,
    from: Option<NaiveDate>,
    days: u32,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Some(set) = load(path, err) else {
        return 2;
    };
    let (set, swaps) = with_swaps(set, err);
    let Some(r) = find(&set, id, err) else {
        return 2;
    };
    let from = from.unwrap_or_else(|| Utc::now().with_timezone(&set.daemon.timezone).date_naive());
    let list = roster::swaps::assignments(&set, r, &swaps, from, days);
    let _ = write!(out, "{}", roster::swaps::to_toml(r, from, days, &list));
    0
}

fn find<'a>(set: &'a ConfigSet, id: &str, err: &mut dyn Write) -> Option<&'a Roster> {
    let r = set.roster(id);
    if r.is_none() {
        let known: Vec<&str> = set.rosters.iter().map(|r| r.id.as_str()).collect();
        let _ = writeln!(
            err,
            "vigie: unknown roster `{id}` (rosters: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    r
}

/// `vigie roster check`.
pub fn check(
    path: &Path,
    id: Option<&str>,
    from: Option<NaiveDate>,
    days: u32,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Some(set) = load(path, err) else {
        return 2;
    };
    let (set, _) = with_swaps(set, err);
    let from = from.unwrap_or_else(|| Utc::now().with_timezone(&set.daemon.timezone).date_naive());
    let rosters: Vec<&Roster> = match id {
        Some(id) => match find(&set, id, err) {
            Some(r) => vec![r],
            None => return 2,
        },
        None => set.rosters.iter().collect(),
    };
    let reports: Vec<roster::RosterReport> = rosters
        .iter()
        .map(|r| roster::check(&set, r, from, days))
        .collect();
    if json {
        let text = if id.is_some() {
            serde_json::to_string_pretty(&reports[0])
        } else {
            serde_json::to_string_pretty(&reports)
        };
        let _ = writeln!(out, "{}", text.unwrap_or_default());
    } else if reports.is_empty() {
        let _ = writeln!(out, "aucun planning n'est configuré : rien à vérifier");
    } else {
        for (i, r) in reports.iter().enumerate() {
            if i > 0 {
                let _ = writeln!(out);
            }
            let _ = write!(out, "{}", r.to_text());
        }
    }
    if reports.iter().all(|r| r.is_covered()) {
        0
    } else {
        1
    }
}

/// `vigie roster import-csv`.
pub fn import_csv(
    path: &Path,
    id: &str,
    file: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Some(set) = load(path, err) else {
        return 2;
    };
    let Some(r) = find(&set, id, err) else {
        return 2;
    };
    let text = match crate::config::source::read_text(file) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "{}:1:1: cannot read the file: {e}", file.display());
            return 2;
        }
    };
    let (assignments, diags) = roster::import::parse_csv(&set, r, file, &text);
    for d in diags.iter() {
        let _ = writeln!(err, "{d}");
    }
    if diags.has_errors() {
        let _ = writeln!(
            err,
            "vigie: {} error{} in {}: nothing imported",
            diags.errors().count(),
            if diags.errors().count() == 1 { "" } else { "s" },
            file.display()
        );
        return 2;
    }
    let _ = write!(out, "{}", roster::import::to_toml(r, file, &assignments));
    0
}
