//! On-call rosters at work (SPEC §5): shifts expanded into dated
//! occurrences, the coverage check and its text rendering, the iCalendar
//! export ([`ics`]) and the CSV import of assignments ([`import`]).
//!
//! The files are read and validated by [`crate::config::roster`]; this module
//! only computes from a valid [`ConfigSet`]. It never sends anything, never
//! touches the database, and reads the wall clock only for the `DTSTAMP` of
//! the iCalendar export: the window to look at is always given.
//!
//! # API
//! - [`occurrences`]`(set, roster, from, days) -> Vec<Occurrence>`: every
//!   occurrence of the roster's shifts starting on a day of
//!   `[from, from + days)`, with its UTC start and end, date, shift name and
//!   assignee ids, in start order.
//! - [`check`]`(set, roster, from, days) -> RosterReport`: what is missing
//!   over that window. The report is serde-serializable (the JSON of
//!   `GET /api/v1/rosters/{id}/check` and `vigie roster check --json`), and
//!   has [`RosterReport::is_covered`] and [`RosterReport::to_text`] (English,
//!   for the CLI and the bureau's mail).
//! - [`to_ics`]`(set, roster, from, days) -> String`: RFC 5545 calendar of
//!   the occurrences with their assignees; [`ics_feed`] uses the usual
//!   window (30 days back, 90 ahead).
//! - [`import::parse_csv`] and [`import::to_toml`]: assignments from a
//!   spreadsheet export (`date,shift,who`).
//!
//! # Rules where SPEC is silent
//! - A shift occurs on each date whose weekday is in its `days`, and on
//!   every public holiday of `daemon.holidays` when `holidays = true` (once
//!   when both apply). A shift whose end is not after its start ends the next
//!   day. Wall times are in the daemon's time zone: a 20:00–08:00 night over
//!   the spring change lasts 11 h, over the autumn change 13 h. A start in the
//!   spring gap is taken one hour later
//!   ([`local_to_utc`](crate::schedule::oncall::local_to_utc)).
//! - The assignees of an occurrence are the union of the `who` of every
//!   `[[assignment]]` with its date and shift.
//! - An assignee is *not counted* toward `need` when unknown to the
//!   directory, inactive, not eligible (the roster's `eligible` selector), on
//!   another occurrence that overlaps this one (same roster or any other
//!   roster of the set: both occurrences lose them), or without a usable
//!   contact (no e-mail and no phone: Vigie could neither remind them nor
//!   reach the person on call in a crisis). Back-to-back shifts (20:00–00:00
//!   then 00:00–08:00) do not overlap.
//! - The roster is *covered* when no occurrence has fewer counted assignees
//!   than `need` and no assignee has a problem: an invalid assignee is worth
//!   fixing even on a shift that has enough others.

pub mod ics;
pub mod import;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::roster::Shift;
use crate::config::{ConfigSet, Professional, Roster};
use crate::schedule::oncall;

pub use ics::{ics_feed, to_ics};

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

/// Whether `shift` occurs on `date` (`holiday`: the date is a public holiday).
pub fn occurs_on(shift: &Shift, date: NaiveDate, holiday: bool) -> bool {
    shift.days.contains(&date.weekday()) || (shift.holidays && holiday)
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
            if !occurs_on(shift, date, holiday.is_some()) {
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

// ------------------------------------------------------------------------------------------------
// The check
// ------------------------------------------------------------------------------------------------

/// What a roster check found over a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterReport {
    pub roster: String,
    pub title: String,
    /// The daemon's time zone, in which `local_start`/`local_end` are given.
    pub timezone: String,
    /// First day of the window.
    pub from: NaiveDate,
    /// Last day of the window (included).
    pub until: NaiveDate,
    pub days: u32,
    /// No gap and no problem.
    pub covered: bool,
    /// How many shift occurrences the window holds.
    pub occurrences: usize,
    /// Occurrences with fewer counted assignees than `need`, in start order.
    pub gaps: Vec<Gap>,
    /// Assignees with a problem, in start order of their occurrence.
    pub problems: Vec<Problem>,
}

/// When and what: the occurrence a gap or a problem is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub date: NaiveDate,
    /// `mon` … `sun`.
    pub weekday: String,
    pub shift: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Wall-clock start and end in the daemon's time zone, `HH:MM`.
    pub local_start: String,
    pub local_end: String,
    /// The end falls on a later date than `date`.
    pub ends_next_day: bool,
    /// French name of the public holiday on `date`.
    pub holiday: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapStatus {
    /// Nobody counted.
    Uncovered,
    /// Some, fewer than `need`.
    Understaffed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    /// From the directory; `None` for an unknown id.
    pub name: Option<String>,
}

impl Person {
    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(flatten)]
    pub slot: Slot,
    pub status: GapStatus,
    pub need: u32,
    /// Assignees counted toward `need`.
    pub counted: u32,
    /// `need - counted`.
    pub missing: u32,
    pub assignees: Vec<Person>,
    /// Assignees listed but not counted (see `problems` for why).
    pub not_counted: Vec<Person>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Not in the directory.
    Unknown,
    /// In the directory with `active = false`.
    Inactive,
    /// Not matched by the roster's `eligible` selector.
    NotEligible,
    /// Also on an overlapping occurrence (`conflict` says which).
    DoubleBooked,
    /// Neither an e-mail nor a phone number.
    NoContact,
}

impl ProblemKind {
    /// Short English words, for the text report.
    pub fn describe(self) -> &'static str {
        match self {
            ProblemKind::Unknown => "unknown",
            ProblemKind::Inactive => "inactive",
            ProblemKind::NotEligible => "not eligible",
            ProblemKind::DoubleBooked => "double-booked",
            ProblemKind::NoContact => "no contact",
        }
    }

    /// The same in French, for what professionals read (the calendar).
    pub fn describe_fr(self) -> &'static str {
        match self {
            ProblemKind::Unknown => "absent de l'annuaire",
            ProblemKind::Inactive => "inactif dans l'annuaire",
            ProblemKind::NotEligible => "non éligible pour ce tableau",
            ProblemKind::DoubleBooked => "déjà de garde sur un créneau qui chevauche",
            ProblemKind::NoContact => "sans e-mail ni téléphone",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(flatten)]
    pub slot: Slot,
    /// The professional id as written in the assignment.
    pub who: String,
    pub name: Option<String>,
    pub kind: ProblemKind,
    /// English, one line.
    pub message: String,
    /// For `double_booked`: the other occurrence.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conflict: Option<Conflict>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub roster: String,
    pub shift: String,
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Every shift occurrence someone is assigned to, across all rosters.
struct Booking<'a> {
    roster: &'a str,
    shift: &'a str,
    date: NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// An occurrence with its assignees judged: the common ground of the check
/// and the calendar export.
pub(crate) struct Assessed<'a> {
    pub occ: Occurrence,
    /// Counted toward `need`, with their directory entry.
    pub counted: Vec<&'a Professional>,
    pub not_counted: Vec<NotCounted<'a>>,
}

/// An assignee not counted toward `need`, with every problem found.
pub(crate) struct NotCounted<'a> {
    /// As written in the assignment.
    pub id: String,
    /// The directory entry, `None` for an unknown id.
    pub professional: Option<&'a Professional>,
    /// The other occurrence for `DoubleBooked`.
    pub problems: Vec<(ProblemKind, Option<Conflict>)>,
}

impl Assessed<'_> {
    pub fn is_short(&self) -> bool {
        (self.counted.len() as u32) < self.occ.need
    }
}

pub(crate) fn assess<'a>(
    set: &'a ConfigSet,
    roster: &Roster,
    from: NaiveDate,
    days: u32,
) -> Vec<Assessed<'a>> {
    let tz = set.daemon.timezone;
    let dir = &set.directory;
    let eligible: Option<HashSet<&str>> = roster.eligible.as_ref().map(|sel| {
        dir.select(sel, &|_: &str| Vec::new())
            .into_iter()
            .map(|p| p.id.as_str())
            .collect()
    });
    // Who is booked when, in every roster: assignments that point at a date
    // where their shift does not occur are refused by `vigie check`.
    let mut bookings: HashMap<&str, Vec<Booking<'_>>> = HashMap::new();
    for r in &set.rosters {
        for a in &r.assignments {
            let Some(shift) = r.shift(&a.shift.value) else {
                continue;
            };
            let (start, end) = oncall::occurrence(tz, shift, a.date.value);
            for w in &a.who {
                let list = bookings.entry(w.value.as_str()).or_default();
                let dup = list.iter().any(|b| {
                    b.roster == r.id.value && b.shift == a.shift.value && b.date == a.date.value
                });
                if !dup {
                    list.push(Booking {
                        roster: &r.id.value,
                        shift: &a.shift.value,
                        date: a.date.value,
                        start,
                        end,
                    });
                }
            }
        }
    }
    occurrences(set, roster, from, days)
        .into_iter()
        .map(|occ| {
            let mut counted = Vec::new();
            let mut not_counted = Vec::new();
            for id in &occ.assignees {
                let Some(p) = dir.get(id) else {
                    not_counted.push(NotCounted {
                        id: id.clone(),
                        professional: None,
                        problems: vec![(ProblemKind::Unknown, None)],
                    });
                    continue;
                };
                let mut problems = Vec::new();
                if !p.active {
                    problems.push((ProblemKind::Inactive, None));
                } else if eligible
                    .as_ref()
                    .is_some_and(|e| !e.contains(p.id.as_str()))
                {
                    problems.push((ProblemKind::NotEligible, None));
                }
                for b in bookings.get(id.as_str()).into_iter().flatten() {
                    let same = b.roster == occ.roster && b.shift == occ.shift && b.date == occ.date;
                    if !same && occ.overlaps(b.start, b.end) {
                        problems.push((
                            ProblemKind::DoubleBooked,
                            Some(Conflict {
                                roster: b.roster.to_string(),
                                shift: b.shift.to_string(),
                                date: b.date,
                                start: b.start,
                                end: b.end,
                            }),
                        ));
                    }
                }
                if p.email.is_none() && p.phone.is_none() {
                    problems.push((ProblemKind::NoContact, None));
                }
                if problems.is_empty() {
                    counted.push(p);
                } else {
                    not_counted.push(NotCounted {
                        id: id.clone(),
                        professional: Some(p),
                        problems,
                    });
                }
            }
            Assessed {
                occ,
                counted,
                not_counted,
            }
        })
        .collect()
}

/// Checks a roster over the days `[from, from + days)`.
pub fn check(set: &ConfigSet, roster: &Roster, from: NaiveDate, days: u32) -> RosterReport {
    let tz = set.daemon.timezone;
    let assessed = assess(set, roster, from, days);
    let mut gaps = Vec::new();
    let mut problems = Vec::new();
    for a in &assessed {
        let slot = slot(tz, &a.occ);
        for n in &a.not_counted {
            let p = n.professional;
            for (kind, conflict) in &n.problems {
                problems.push(Problem {
                    slot: slot.clone(),
                    who: n.id.clone(),
                    name: p.map(|p| p.name.clone()),
                    kind: *kind,
                    message: problem_message(tz, &a.occ, &n.id, p, *kind, conflict.as_ref()),
                    conflict: conflict.clone(),
                });
            }
        }
        if a.is_short() {
            let counted = a.counted.len() as u32;
            gaps.push(Gap {
                slot,
                status: if counted == 0 {
                    GapStatus::Uncovered
                } else {
                    GapStatus::Understaffed
                },
                need: a.occ.need,
                counted,
                missing: a.occ.need - counted,
                assignees: a
                    .counted
                    .iter()
                    .map(|p| Person {
                        id: p.id.clone(),
                        name: Some(p.name.clone()),
                    })
                    .collect(),
                not_counted: a
                    .not_counted
                    .iter()
                    .map(|n| Person {
                        id: n.id.clone(),
                        name: n.professional.map(|p| p.name.clone()),
                    })
                    .collect(),
            });
        }
    }
    let until = from
        .checked_add_signed(Duration::days(i64::from(days.max(1)) - 1))
        .unwrap_or(from);
    RosterReport {
        roster: roster.id.value.clone(),
        title: roster.title.clone(),
        timezone: tz.name().to_string(),
        from,
        until,
        days,
        covered: gaps.is_empty() && problems.is_empty(),
        occurrences: assessed.len(),
        gaps,
        problems,
    }
}

fn slot(tz: Tz, o: &Occurrence) -> Slot {
    let ls = o.start.with_timezone(&tz);
    let le = o.end.with_timezone(&tz);
    Slot {
        date: o.date,
        weekday: weekday_slug(o.date.weekday()).to_string(),
        shift: o.shift.clone(),
        start: o.start,
        end: o.end,
        local_start: ls.format("%H:%M").to_string(),
        local_end: le.format("%H:%M").to_string(),
        ends_next_day: le.date_naive() > o.date,
        holiday: o.holiday.clone(),
    }
}

fn problem_message(
    tz: Tz,
    occ: &Occurrence,
    id: &str,
    p: Option<&Professional>,
    kind: ProblemKind,
    conflict: Option<&Conflict>,
) -> String {
    let who = match p {
        Some(p) => format!("{} ({id})", p.name),
        None => format!("`{id}`"),
    };
    match kind {
        ProblemKind::Unknown => format!("{who} is not in the directory"),
        ProblemKind::Inactive => format!("{who} is inactive in the directory"),
        ProblemKind::NotEligible => format!(
            "{who} ({}) is not eligible for this roster",
            p.map(|p| p.profession.as_str()).unwrap_or("?")
        ),
        ProblemKind::NoContact => format!("{who} has neither an e-mail nor a phone number"),
        ProblemKind::DoubleBooked => match conflict {
            Some(c) => {
                let s = c.start.with_timezone(&tz);
                let e = c.end.with_timezone(&tz);
                let whose = if c.roster == occ.roster {
                    "this roster".to_string()
                } else {
                    format!("roster {}", c.roster)
                };
                format!(
                    "{who} is also on {whose}, shift {} of {} {} {}–{}",
                    c.shift,
                    weekday_en(c.date.weekday()),
                    c.date,
                    s.format("%H:%M"),
                    e.format("%H:%M"),
                )
            }
            None => format!("{who} is on two overlapping shifts"),
        },
    }
}

impl RosterReport {
    /// No gap and no problem.
    pub fn is_covered(&self) -> bool {
        self.covered
    }

    /// For a coordinator, in English: the window, the verdict, then each
    /// shift short of people and each assignee problem, one line each.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("Roster {} — {}\n", self.roster, self.title));
        s.push_str(&format!(
            "{} {} to {} {} ({} {}, {}): {} shift{} checked\n",
            weekday_en(self.from.weekday()),
            self.from,
            weekday_en(self.until.weekday()),
            self.until,
            self.days,
            if self.days == 1 { "day" } else { "days" },
            self.timezone,
            self.occurrences,
            if self.occurrences == 1 { "" } else { "s" },
        ));
        if self.covered {
            s.push_str(
                "COVERED: every shift has enough assignees and no assignee has a problem.\n",
            );
            return s;
        }
        s.push_str(&format!(
            "NOT COVERED: {} short of people, {}.\n",
            count(self.gaps.len(), "shift", "shifts"),
            count(self.problems.len(), "assignee problem", "assignee problems"),
        ));
        if !self.gaps.is_empty() {
            s.push_str("\nShifts short of people:\n");
            for g in &self.gaps {
                let status = match g.status {
                    GapStatus::Uncovered if g.not_counted.is_empty() => {
                        format!("UNCOVERED, nobody assigned (need {})", g.need)
                    }
                    GapStatus::Uncovered => format!("UNCOVERED, 0 of {} counted", g.need),
                    GapStatus::Understaffed => format!(
                        "understaffed, {} of {} counted: {}; {} missing",
                        g.counted,
                        g.need,
                        names(&g.assignees),
                        g.missing
                    ),
                };
                s.push_str(&format!("  {}: {status}", slot_text(&g.slot)));
                if !g.not_counted.is_empty() {
                    s.push_str(&format!("; not counted: {}", names(&g.not_counted)));
                }
                s.push('\n');
            }
        }
        if !self.problems.is_empty() {
            s.push_str("\nAssignee problems:\n");
            for p in &self.problems {
                s.push_str(&format!(
                    "  {}: {}: {}\n",
                    slot_text(&p.slot),
                    p.kind.describe(),
                    p.message
                ));
            }
        }
        s
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 0 {
        format!("no {one}")
    } else if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn names(people: &[Person]) -> String {
    people
        .iter()
        .map(Person::label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Fri 2026-12-25 (Noël) soir 20:00–00:00`, `Sat 2026-03-28 nuit 20:00–08:00 (next day)`.
fn slot_text(s: &Slot) -> String {
    let mut t = format!("{} {}", weekday_en(s.date.weekday()), s.date);
    if let Some(h) = &s.holiday {
        t.push_str(&format!(" ({h})"));
    }
    t.push_str(&format!(" {} {}–{}", s.shift, s.local_start, s.local_end));
    if s.ends_next_day && s.local_end != "00:00" {
        t.push_str(" (next day)");
    }
    t
}

pub(crate) fn weekday_slug(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

pub(crate) fn weekday_en(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

impl RosterReport {
    /// One line per shift short of people, in French, for the dashboard
    /// and the mailed report.
    pub fn gap_lines_fr(&self) -> Vec<String> {
        self.gaps
            .iter()
            .map(|g| {
                let holiday = g
                    .slot
                    .holiday
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                let what = match g.status {
                    GapStatus::Uncovered => format!("personne ({} requis)", g.need),
                    GapStatus::Understaffed => format!("{} sur {} requis", g.counted, g.need),
                };
                format!(
                    "{}{holiday}, garde « {} » de {} à {} : {what}",
                    ics::date_fr(g.slot.date),
                    g.slot.shift,
                    g.slot.local_start,
                    g.slot.local_end
                )
            })
            .collect()
    }

    /// The scheduled check as an e-mail to the bureau: (subject, text).
    pub fn mail_fr(&self, cpts: &str) -> (String, String) {
        let period = format!(
            "du {} au {}",
            ics::date_fr(self.from),
            ics::date_fr(self.until)
        );
        if self.covered {
            return (
                format!("Planning « {} » : complet {period}", self.title),
                format!(
                    "Bonjour,\n\nToutes les gardes du planning « {} » {period} sont pourvues ({} créneaux vérifiés).\n\nMessage automatique de Vigie pour {cpts}.\n",
                    self.title, self.occurrences
                ),
            );
        }
        let mut text = format!(
            "Bonjour,\n\nLa vérification du planning « {} » {period} a trouvé des manques.\n",
            self.title
        );
        if !self.gaps.is_empty() {
            text.push_str("\nGardes non pourvues ou incomplètes :\n");
            for l in self.gap_lines_fr() {
                text.push_str(&format!("- {l}\n"));
            }
        }
        if !self.problems.is_empty() {
            text.push_str("\nInscriptions à revoir :\n");
            for p in &self.problems {
                let who = p.name.clone().unwrap_or_else(|| p.who.clone());
                text.push_str(&format!(
                    "- {}, garde « {} » : {who}, {}\n",
                    ics::date_fr(p.slot.date),
                    p.slot.shift,
                    p.kind.describe_fr()
                ));
            }
        }
        text.push_str(&format!("\nMessage automatique de Vigie pour {cpts}.\n"));
        (
            format!(
                "Planning « {} » : {} à pourvoir {period}",
                self.title,
                match self.gaps.len() {
                    0 => "des inscriptions".to_string(),
                    1 => "1 garde".to_string(),
                    n => format!("{n} gardes"),
                }
            ),
            text,
        )
    }
}
