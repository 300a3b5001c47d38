//! Everything a CPTS writes, read and validated: the daemon configuration,
//! the directory, the plans, the rosters and the reminders (SPEC §1–§6).
//!
//! [`load`] reads the whole set and returns it only when it has no error;
//! the diagnostics come back either way, so `vigie check` lists every
//! problem at once and a reload can keep the last good set. Nothing here
//! touches the database or sends anything.
//!
//! Every file is read through [`source`]: regular files of at most 16 MiB,
//! opened without waiting, so a FIFO or a device in `plans/` is an error
//! naming it, never a read that hangs a reload.

pub mod conduct;
pub mod daemon;
pub mod diag;
pub mod directory;
pub mod plan;
pub mod professions;
pub mod reader;
pub mod reminders;
pub mod roster;
pub mod selector;
pub mod source;
pub mod templates;
mod validate;
pub mod vigilance;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

pub use daemon::DaemonConfig;
pub use diag::{Diagnostic, Diagnostics, Loc, Located, Severity};
pub use directory::{Contact, Directory, Professional};
pub use plan::{Plan, Scenario};
pub use reminders::Reminders;
pub use roster::Roster;
pub use selector::Selector;

/// The `*.toml` files of a folder, in name order; an unreadable folder is
/// reported (`what` names it: "plans", "rosters").
pub(crate) fn toml_files(dir: &Path, what: &str, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            diags.error(
                &Loc::file_start(dir),
                format!("cannot read the {what} directory: {e}"),
            );
            return Vec::new();
        }
    };
    files.sort();
    files
}

/// A complete, valid set of files.
#[derive(Clone, Debug)]
pub struct ConfigSet {
    pub daemon: DaemonConfig,
    pub directory: Directory,
    pub plans: Vec<Plan>,
    pub rosters: Vec<Roster>,
    pub reminders: Reminders,
}

/// The result of loading: the set when it has no error, and every
/// diagnostic (errors and warnings) sorted by place.
pub struct Loaded {
    pub set: Option<ConfigSet>,
    pub diagnostics: Diagnostics,
}

impl ConfigSet {
    /// The plan versions in force on `date`, one per plan id.
    pub fn plans_in_force(&self, date: NaiveDate) -> Vec<&Plan> {
        plan::in_force(&self.plans, date)
    }

    /// The next version of `plan` that exists on `today`, if any: see
    /// [`plan::newer_version`], the one rule of "a newer version exists".
    pub fn newer_version(&self, plan: &Plan, today: NaiveDate) -> Option<&Plan> {
        plan::newer_version(&self.plans, plan, today)
    }

    pub fn roster(&self, id: &str) -> Option<&Roster> {
        self.rosters.iter().find(|r| r.id.value == id)
    }
}

/// The configuration file to use: the one given, else `$VIGIE_CONFIG`,
/// else `/etc/vigie/vigie.toml`.
pub fn config_path(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    match std::env::var_os("VIGIE_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/etc/vigie/vigie.toml"),
    }
}

/// Loads and validates everything reachable from the configuration file,
/// judging dates (plans in force, review due) as of the date `today` gives
/// in the daemon's time zone.
pub fn load(config: &Path, today: impl FnOnce(chrono_tz::Tz) -> NaiveDate) -> Loaded {
    let mut diags = Diagnostics::default();
    let Some(daemon) = daemon::load(config, &mut diags) else {
        diags.sort();
        return Loaded {
            set: None,
            diagnostics: diags,
        };
    };
    // Files with errors are kept as far as they could be read, so that the
    // cross-file checks below still run and every problem is listed; any
    // error refuses the whole set at the end.
    let directory = directory::load(&daemon.directory, &daemon.extra_professions, &mut diags);
    let plans = plan::load_dir_as_read(&daemon.plans, &mut diags);
    let rosters = match &daemon.rosters {
        Some(dir) => roster::load_dir(dir, daemon.quiet_hours, &mut diags),
        None => Vec::new(),
    };
    let reminders = match &daemon.reminders {
        Some(path) => reminders::load(path, &mut diags),
        None => Some(Reminders::default()),
    };
    // Without a directory, every group would look unknown: no cross-file
    // check then. A reminders file that cannot be parsed only leaves its
    // reminders out of them.
    let set = directory.map(|directory| ConfigSet {
        daemon,
        directory,
        plans,
        rosters,
        reminders: reminders.unwrap_or_default(),
    });
    if let Some(set) = &set {
        validate::validate(set, today(set.daemon.timezone), &mut diags);
    }
    diags.sort();
    let set = if diags.has_errors() { None } else { set };
    Loaded {
        set,
        diagnostics: diags,
    }
}
