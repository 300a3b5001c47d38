//! Each occurrence's assignees judged against the directory, the roster's
//! `eligible` selector and every roster's bookings ([`assess`]): the common
//! ground of the coverage check and the calendar export.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::coverage::{Conflict, ProblemKind};
use super::occurrence::{Occurrence, occurrences};
use crate::config::{ConfigSet, Professional, Roster};
use crate::schedule::oncall;

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
                } else if !p.available.contains(occ.date) {
                    // Out of their season: not there that day.
                    problems.push((ProblemKind::Absent, None));
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
