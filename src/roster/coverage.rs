//! The coverage check ([`check`]) and the serde-serializable report it
//! returns ([`RosterReport`] with its gaps and problems), including the
//! French one-line message of each problem.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::assessment::assess;
use super::ics::date_fr;
use super::occurrence::Occurrence;
use super::text::weekday_slug;
use crate::config::{ConfigSet, Professional, Roster};

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
    /// The roster's own period in French (`saison 12-01..04-30`), when it
    /// has one: said when the window holds no shift of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
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
    /// Outside their availability that day (`available_from`,
    /// `available_until`, `season` in the directory).
    Absent,
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
            ProblemKind::Absent => "absent",
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
            ProblemKind::Absent => "absent à cette date",
            ProblemKind::NotEligible => "non éligible pour ce planning",
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
    /// French, one line: `Nom (id) : ce qui ne va pas`.
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

impl RosterReport {
    /// No gap and no problem.
    pub fn is_covered(&self) -> bool {
        self.covered
    }
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
        period: (!roster.period.is_always()).then(|| roster.period.describe_fr()),
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
    let what = kind.describe_fr();
    match kind {
        ProblemKind::Unknown | ProblemKind::Inactive | ProblemKind::NoContact => {
            format!("{who} : {what}")
        }
        ProblemKind::Absent => match p.map(|p| p.available.describe_fr()) {
            Some(period) if !period.is_empty() => format!("{who} : {what} ({period})"),
            _ => format!("{who} : {what}"),
        },
        ProblemKind::NotEligible => format!(
            "{who} : {what} ({})",
            p.map(|p| p.profession.as_str()).unwrap_or("?")
        ),
        ProblemKind::DoubleBooked => match conflict {
            Some(c) => {
                let s = c.start.with_timezone(&tz);
                let e = c.end.with_timezone(&tz);
                let whose = if c.roster == occ.roster {
                    "ce planning".to_string()
                } else {
                    format!("le planning {}", c.roster)
                };
                format!(
                    "{who} : aussi de garde sur {whose}, garde « {} » du {} de {} à {}",
                    c.shift,
                    date_fr(c.date),
                    s.format("%H:%M"),
                    e.format("%H:%M"),
                )
            }
            None => format!("{who} : {what}"),
        },
    }
}
