//! Shifts expanded into dated occurrences: [`Occurrence`], whether a shift
//! occurs on a date ([`occurs_on`]), every occurrence of a roster over a
//! window ([`occurrences`]) with the assignees its assignments give it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::roster::Shift;
use crate::config::{ConfigSet, Roster};
use crate::schedule::oncall;

/// One dated occurrence of a shift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// The roster id.
    pub roster: String,
    /// The local date the occurrence starts on.
    pub date: NaiveDate,
    /// The shift name.
    pub shift: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The French name of the public holiday on `date`, if it is one.
    pub holiday: Option<String>,
    pub need: u32,
    /// Professional ids as written in the assignments, each once.
    pub assignees: Vec<String>,
}

impl Occurrence {
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    /// Whether two occurrences share some time (touching ends do not).
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.start < end && start < self.end
    }
}

/// Whether `shift` of `roster` occurs on `date` (`holiday`: the date is a
/// public holiday): on one of its days or a holiday, inside the roster's
/// and the shift's periods (`valid_from`, `valid_until`, `season`).
pub fn occurs_on(roster: &Roster, shift: &Shift, date: NaiveDate, holiday: bool) -> bool {
    (shift.days.contains(&date.weekday()) || (shift.holidays && holiday))
        && roster.runs_on(shift, date)
}

/// Every occurrence of the roster's shifts starting on a day of
/// `[from, from + days)`, in start order (shift order for equal starts).
pub fn occurrences(
    set: &ConfigSet,
    roster: &Roster,
    from: NaiveDate,
    days: u32,
) -> Vec<Occurrence> {
    let tz = set.daemon.timezone;
    let cal = set.daemon.holidays;
    let mut out = Vec::new();
    for date in from.iter_days().take(days as usize) {
        let holiday = cal.holiday(date);
        for shift in &roster.shifts {
            if !occurs_on(roster, shift, date, holiday.is_some()) {
                continue;
            }
            let (start, end) = oncall::occurrence(tz, shift, date);
            out.push(Occurrence {
                roster: roster.id.value.clone(),
                date,
                shift: shift.name.value.clone(),
                start,
                end,
                holiday: holiday.map(str::to_string),
                need: shift.need,
                assignees: assignees_of(roster, date, &shift.name.value),
            });
        }
    }
    // Dates are visited in order; a shift starting after midnight on the
    // same date can start before another of that date: sort by instant.
    out.sort_by_key(|o| o.start);
    out
}

fn assignees_of(roster: &Roster, date: NaiveDate, shift: &str) -> Vec<String> {
    let mut who: Vec<String> = Vec::new();
    for a in &roster.assignments {
        if a.date.value == date && a.shift.value == shift {
            for w in &a.who {
                if !who.contains(&w.value) {
                    who.push(w.value.clone());
                }
            }
        }
    }
    who
}
