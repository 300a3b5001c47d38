//! On-call rosters (SPEC §5): shifts by weekday and public holiday, and the
//! assignments the bureau fills in; the days a roster and each shift run
//! (`valid_from`, `valid_until`, `season`, read by `read_period`, which
//! the directory uses too for `available_from`/`available_until`/`season`).
//!
//! Besides the file's own errors, two roster rules are checked here: an
//! assignment on a day its shift does not run (out of season) is an error,
//! and a `remind_before` that sends some shift's reminder between 22:00
//! and 07:00 is a warning with the hour and a value that avoids the night.
//!
//! This module reads and checks the files. Expanding shifts into dated
//! occurrences and checking coverage belongs to the roster engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime, Timelike, Weekday};

use super::diag::{Diagnostics, Loc, Located};
use super::directory::merge;
use super::reader::{Ctx, Table};
use super::selector::Selector;
use crate::model::{
    CronSchedule, DurationValue, Period, QuietHours, Season, TimeOfDay, parse_slug, parse_weekday,
};

#[derive(Clone, Debug)]
pub struct Roster {
    pub path: PathBuf,
    pub id: Located<String>,
    pub title: String,
    /// Who may be assigned; anyone active when `None`.
    pub eligible: Option<Selector>,
    /// Each assignee is reminded this long before each shift.
    pub remind_before: Option<Located<DurationValue>>,
    /// `swap_approval = true`: a swap counts only once the bureau approved
    /// it on the dashboard (SPEC §15).
    pub swap_approval: bool,
    /// `monthly_shifts = true`: each assignee gets a "vos gardes" message on
    /// the 1st of each month at 09:00 with their personal link.
    pub monthly_shifts: bool,
    /// The days the roster runs (`valid_from`, `valid_until`, `season`).
    pub period: Period,
    pub check: Option<RosterCheckConfig>,
    pub shifts: Vec<Shift>,
    pub assignments: Vec<Assignment>,
}

#[derive(Clone, Debug)]
pub struct RosterCheckConfig {
    pub schedule: Located<CronSchedule>,
    pub horizon: DurationValue,
    pub notify: Selector,
}

#[derive(Clone, Debug)]
pub struct Shift {
    pub name: Located<String>,
    pub days: Vec<Weekday>,
    /// Also every public holiday.
    pub holidays: bool,
    pub start: TimeOfDay,
    /// `end <= start`: the shift ends the next day.
    pub end: TimeOfDay,
    pub need: u32,
    /// The days the shift runs, within the roster's.
    pub period: Period,
}

impl Shift {
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }
}

#[derive(Clone, Debug)]
pub struct Assignment {
    pub date: Located<NaiveDate>,
    pub shift: Located<String>,
    pub who: Vec<Located<String>>,
}

impl Roster {
    pub fn shift(&self, name: &str) -> Option<&Shift> {
        self.shifts.iter().find(|s| s.name.value == name)
    }

    /// Whether `date` is inside the roster's period and the shift's: the
    /// only days the shift can occur (its weekdays and holidays aside).
    pub fn runs_on(&self, shift: &Shift, date: NaiveDate) -> bool {
        self.period.contains(date) && shift.period.contains(date)
    }

    /// Why `shift` does not run on `date`, naming the keys to change:
    /// `None` when it does.
    pub fn out_of_period(&self, shift: &Shift, date: NaiveDate) -> Option<String> {
        if !self.period.contains(date) {
            Some(format!(
                "outside the period of roster `{}` ({})",
                self.id.value,
                describe_keys(&self.period, "valid_from", "valid_until")
            ))
        } else if !shift.period.contains(date) {
            Some(format!(
                "outside the period of shift `{}` ({})",
                shift.name.value,
                describe_keys(&shift.period, "valid_from", "valid_until")
            ))
        } else {
            None
        }
    }
}

/// A period as the keys that wrote it: `season = "12-01..04-30"`,
/// `valid_from = 2026-12-01`.
pub fn describe_keys(p: &Period, from_key: &str, until_key: &str) -> String {
    let mut parts = Vec::new();
    if let Some(f) = p.from {
        parts.push(format!("{from_key} = {f}"));
    }
    if let Some(u) = p.until {
        parts.push(format!("{until_key} = {u}"));
    }
    if let Some(s) = p.season {
        parts.push(format!("season = \"{s}\""));
    }
    parts.join(", ")
}

/// Reads `from_key`, `until_key` (TOML dates) and `season` (`"MM-DD..MM-DD"`)
/// of a table; errors go to the table's context.
pub(crate) fn read_period(t: &Table<'_, '_>, from_key: &str, until_key: &str) -> Period {
    let ctx = t.ctx();
    let from = t.date(from_key);
    let mut until = t.date(until_key);
    if let (Some(f), Some(u)) = (&from, &until)
        && f.value > u.value
    {
        // Refused here; not also the cause of every assignment's error.
        ctx.error(
            &u.loc,
            format!(
                "`{until_key}` ({}) is before `{from_key}` ({}): nothing would be left",
                u.value, f.value
            ),
        );
        until = None;
    }
    let season = t.str("season").and_then(|s| {
        Season::parse(&s.value)
            .map_err(|e| ctx.error(&s.loc, e))
            .ok()
    });
    Period {
        from: from.map(|d| d.value),
        until: until.map(|d| d.value),
        season,
    }
}

/// Loads every `*.toml` of the rosters directory, in name order.
pub fn load_dir(dir: &Path, quiet: Option<QuietHours>, diags: &mut Diagnostics) -> Vec<Roster> {
    super::toml_files(dir, "rosters", diags)
        .iter()
        .filter_map(|f| load_file(f, quiet, diags))
        .collect()
}

/// Loads one roster file. A file with errors still gives its roster as far
/// as it could be read (when it has an `id` and a `title`): the errors in
/// `diags` refuse the whole set anyway, and other files that name the roster
/// (`on_call = "…"`) are then not also told that it does not exist.
/// `quiet`: the daemon's `quiet_hours`, the night of the reminders'
/// warning (22:00-07:00 without).
pub fn load_file(
    path: &Path,
    quiet: Option<QuietHours>,
    diags: &mut Diagnostics,
) -> Option<Roster> {
    let src = super::source::read_source(path, "roster", diags)?;
    let ctx = Ctx::new(&src);
    let roster = ctx.parse().and_then(|doc| read(&ctx, &doc, path, quiet));
    merge(diags, ctx.into_diagnostics());
    roster
}

fn read(
    ctx: &Ctx<'_>,
    doc: &toml::Spanned<toml::de::DeTable<'_>>,
    path: &Path,
    quiet: Option<QuietHours>,
) -> Option<Roster> {
    let root = Table::root(ctx, doc);
    let r = root.req_table("roster");
    let assignments: Vec<Assignment> = root
        .tables("assignment")
        .into_iter()
        .filter_map(|a| {
            let date = a.req_date("date");
            let shift = a.req_str("shift");
            let who = a.req_str_list("who");
            a.finish();
            Some(Assignment {
                date: date?,
                shift: shift?,
                who: who?,
            })
        })
        .collect();
    root.finish();

    let r = r?;
    let id = r.req_str("id");
    if let Some(id) = &id
        && let Err(e) = parse_slug(id, "roster id")
    {
        ctx.error(&id.loc, e);
    }
    let title = r.req_str("title");
    let eligible = Selector::read_key(&r, "eligible");
    let remind_before = r.str("remind_before").and_then(|s| {
        DurationValue::parse(&s.value)
            .map_err(|e| ctx.error(&s.loc, e))
            .ok()
            .map(|d| Located::new(d, s.loc.clone()))
    });
    let swap_approval = r.bool("swap_approval").is_some_and(|b| b.value);
    let monthly_shifts = r.bool("monthly_shifts").is_some_and(|b| b.value);
    let period = read_period(&r, "valid_from", "valid_until");
    let check = r.table("check").and_then(|c| {
        let schedule = c.req_str("schedule").and_then(|s| {
            CronSchedule::parse(&s.value)
                .map_err(|e| ctx.error(&s.loc, e))
                .ok()
                .map(|cs| Located::new(cs, s.loc.clone()))
        });
        let horizon = match c.str("horizon") {
            None => Some(DurationValue(std::time::Duration::from_secs(14 * 86_400))),
            Some(h) => DurationValue::parse(&h.value)
                .map_err(|e| ctx.error(&h.loc, e))
                .ok(),
        };
        let notify = if c.has("notify") {
            Selector::read_key(&c, "notify")
        } else {
            ctx.error(
                &c.loc(),
                "missing required key `notify` in the roster check (who receives the report)",
            );
            None
        };
        c.finish();
        Some(RosterCheckConfig {
            schedule: schedule?,
            horizon: horizon?,
            notify: notify?,
        })
    });
    let shifts: Vec<Shift> = r
        .tables("shift")
        .into_iter()
        .filter_map(|s| read_shift(ctx, s))
        .collect();
    let has_shifts = r.has("shift");
    let roster_loc = r.loc();
    r.finish();

    if !has_shifts {
        ctx.error(&roster_loc, "the roster has no shift ([[roster.shift]])");
    }
    let mut names: BTreeMap<&str, &Loc> = BTreeMap::new();
    for s in &shifts {
        if let Some(first) = names.insert(s.name.as_str(), &s.name.loc) {
            ctx.error(
                &s.name.loc,
                format!("duplicate shift name `{}` (first at {first})", s.name.value),
            );
        }
    }
    for a in &assignments {
        if !shifts.is_empty() && !names.contains_key(a.shift.as_str()) {
            let hint = super::diag::did_you_mean(&a.shift.value, names.keys().copied());
            ctx.error(
                &a.shift.loc,
                format!(
                    "unknown shift `{}`{hint} (shifts of this roster: {})",
                    a.shift.value,
                    names.keys().copied().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        for (i, w) in a.who.iter().enumerate() {
            if a.who[..i].iter().any(|o| o.value == w.value) {
                ctx.error(
                    &w.loc,
                    format!("`{}` is listed twice on this shift", w.value),
                );
            }
        }
    }
    let roster = Roster {
        path: path.to_path_buf(),
        id: id?,
        title: title?.value,
        eligible,
        remind_before,
        swap_approval,
        monthly_shifts,
        period,
        check,
        shifts,
        assignments,
    };
    for a in &roster.assignments {
        if let Some(shift) = roster.shift(&a.shift.value)
            && let Some(why) = roster.out_of_period(shift, a.date.value)
        {
            ctx.error(
                &a.date.loc,
                format!(
                    "shift `{}` does not occur on {}: {why}",
                    a.shift.value, a.date.value
                ),
            );
        }
    }
    night_reminders(ctx, &roster, quiet);
    Some(roster)
}

/// The night is the quiet hours, else 22:00 to 07:00: a reminder is not
/// sent then.
fn at_night(quiet: Option<QuietHours>, minute_of_day: i64) -> bool {
    match quiet {
        Some(q) => {
            let m = minute_of_day as u32;
            NaiveTime::from_hms_opt(m / 60, m % 60, 0).is_some_and(|t| q.contains(t))
        }
        None => !(7 * 60..22 * 60).contains(&minute_of_day),
    }
}

/// The wall-clock minute of the day a reminder `before` minutes ahead of a
/// shift starting at `start` goes out (a change of time aside).
fn reminder_minute(start: TimeOfDay, before: i64) -> i64 {
    let s = i64::from(start.0.hour() * 60 + start.0.minute());
    (s - before).rem_euclid(24 * 60)
}

/// Warns (at `remind_before`) when a shift's reminder would go out at
/// night (the quiet hours, else 22:00 to 07:00), with the hour and the
/// nearest whole number of hours that sends every shift's reminder in the
/// day.
fn night_reminders(ctx: &Ctx<'_>, roster: &Roster, quiet: Option<QuietHours>) {
    let Some(before) = &roster.remind_before else {
        return;
    };
    let minutes = before.value.as_chrono().num_minutes();
    let night: Vec<String> = roster
        .shifts
        .iter()
        .filter_map(|s| {
            let m = reminder_minute(s.start, minutes);
            at_night(quiet, m).then(|| {
                format!(
                    "shift `{}` (starts {}) at {:02}:{:02}",
                    s.name.value,
                    s.start.0.format("%H:%M"),
                    m / 60,
                    m % 60
                )
            })
        })
        .collect();
    if night.is_empty() {
        return;
    }
    let by_day = |h: i64| {
        roster
            .shifts
            .iter()
            .all(|s| !at_night(quiet, reminder_minute(s.start, h * 60)))
    };
    let (day_from, day_to) = match quiet {
        Some(q) => (q.end.to_string(), q.start.to_string()),
        None => ("07:00".to_string(), "22:00".to_string()),
    };
    let hours = minutes / 60;
    let suggestion = (0..48)
        .flat_map(|d| [hours - d, hours + d])
        .find(|&h| (1..=72).contains(&h) && by_day(h))
        .map(|h| format!(": try remind_before = \"{h}h\""))
        .unwrap_or_else(|| {
            format!(
                ": no single value sends every shift's reminder between {day_from} and {day_to}; \
                 split the roster or remove `remind_before`"
            )
        });
    ctx.warning(
        &before.loc,
        format!(
            "remind_before = \"{}\" sends reminders at night (between {day_to} and {day_from}{}): {}{suggestion}",
            before.value,
            if quiet.is_some() { ", the quiet_hours" } else { "" },
            night.join(", ")
        ),
    );
}

fn read_shift(ctx: &Ctx<'_>, s: Table<'_, '_>) -> Option<Shift> {
    let name = s.req_str("name");
    if let Some(n) = &name
        && let Err(e) = parse_slug(n, "shift name")
    {
        ctx.error(&n.loc, e);
    }
    let days: Vec<Weekday> = s
        .str_list("days")
        .unwrap_or_default()
        .iter()
        .filter_map(|d| parse_weekday(d).map_err(|e| ctx.error(&d.loc, e)).ok())
        .collect();
    let holidays = s.bool("holidays").map(|b| b.value).unwrap_or(false);
    let time = |key: &str| {
        s.req_str(key).and_then(|t| {
            TimeOfDay::parse(&t.value)
                .map_err(|e| ctx.error(&t.loc, e))
                .ok()
        })
    };
    let start = time("start");
    let end = time("end");
    let need = match s.int("need") {
        None => Some(1),
        Some(n) if (1..=1000).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            ctx.error(&n.loc, "`need` must be at least 1");
            None
        }
    };
    if days.is_empty() && !holidays && (s.has("days") || !s.has("holidays")) {
        ctx.error(
            &s.loc(),
            format!(
                "{} never occurs: give `days` or `holidays = true`",
                s.name()
            ),
        );
    }
    if let (Some(a), Some(b)) = (start, end)
        && a == b
    {
        ctx.warning(
            &s.loc(),
            format!("{} starts and ends at {a}: it lasts 24 hours", s.name()),
        );
    }
    let period = read_period(&s, "valid_from", "valid_until");
    s.finish();
    Some(Shift {
        name: name?,
        days,
        holidays,
        start: start?,
        end: end?,
        need: need?,
        period,
    })
}
