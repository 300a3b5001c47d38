//! Swaps on top of the files (SPEC §15): the effective assignments
//! ([`apply`]), who may take a shift ([`candidates`]), a person's next
//! shifts on every roster ([`shifts_of`]) and the effective assignments of
//! a window with their source ([`assignments`], [`to_toml`]).
//!
//! Pure: the swaps come from the database through the caller.
//!
//! # Rules where SPEC is silent
//! - A swap replaces its requester by its taker in every `[[assignment]]`
//!   of its roster, date and shift; swaps apply in the order they were
//!   decided, so a taker can hand the shift on again. A swap whose
//!   requester the file no longer assigns there (the coordinator folded it
//!   back, or changed the plan) changes nothing; nor does one whose taker
//!   the file already assigns there (folded back, then the requester added
//!   again: both stay).
//! - A colleague may take a shift when they are eligible (the roster's
//!   `eligible`, everyone when it has none), active and there that day
//!   (`available_from`, `available_until`, `season`), not already on that
//!   occurrence, and *free*: on no occurrence of any roster that overlaps it
//!   (back-to-back is free), and taking none that overlaps it while it
//!   waits for the bureau's approval.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::occurrence::{Occurrence, occurrences};
use crate::config::diag::Located;
use crate::config::{ConfigSet, Professional, Roster};
use crate::schedule::oncall;

/// A decided swap: `to` replaces `from` on one occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swap {
    pub roster: String,
    pub date: NaiveDate,
    pub shift: String,
    pub from: String,
    pub to: String,
}

/// The set with every swap folded into its rosters' assignments, and, for
/// each swap, whether it changed something.
pub fn apply(set: &ConfigSet, swaps: &[Swap]) -> (ConfigSet, Vec<bool>) {
    let mut out = set.clone();
    let mut applied = Vec::with_capacity(swaps.len());
    for s in swaps {
        let mut did = false;
        if let Some(r) = out.rosters.iter_mut().find(|r| r.id.value == s.roster) {
            for a in r
                .assignments
                .iter_mut()
                .filter(|a| a.date.value == s.date && a.shift.value == s.shift)
            {
                // The taker is already there (the file took the swap in,
                // then put the requester back): the file decides.
                if a.who.iter().any(|w| w.value == s.to) {
                    continue;
                }
                let mut kept: Vec<Located<String>> = Vec::with_capacity(a.who.len());
                for w in a.who.drain(..) {
                    if w.value == s.from {
                        did = true;
                        kept.push(Located {
                            value: s.to.clone(),
                            loc: w.loc,
                        });
                    } else {
                        kept.push(w);
                    }
                }
                a.who = kept;
            }
        }
        applied.push(did);
    }
    (out, applied)
}

/// The occurrence of `shift` of `roster` on `date`, if it occurs.
pub fn occurrence_on(
    set: &ConfigSet,
    roster: &Roster,
    date: NaiveDate,
    shift: &str,
) -> Option<Occurrence> {
    occurrences(set, roster, date, 1)
        .into_iter()
        .find(|o| o.shift == shift && o.date == date)
}

/// Whether `who` is on no occurrence of any roster overlapping
/// `[start, end)`, the occurrence `except` (roster, date, shift) aside,
/// nor taking one in `pending` (takes waiting for the bureau: `to` is
/// the taker) that overlaps it.
pub fn is_free(
    set: &ConfigSet,
    who: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    except: (&str, NaiveDate, &str),
    pending: &[Swap],
) -> bool {
    let tz = set.daemon.timezone;
    for p in pending.iter().filter(|p| p.to == who) {
        let Some(r) = set.roster(&p.roster) else {
            continue;
        };
        let Some(shift) = r.shift(&p.shift).filter(|s| r.runs_on(s, p.date)) else {
            continue;
        };
        let (s, e) = oncall::occurrence(tz, shift, p.date);
        if s < end && start < e {
            return false;
        }
    }
    for r in &set.rosters {
        for a in &r.assignments {
            if !a.who.iter().any(|w| w.value == who) {
                continue;
            }
            if r.id.value == except.0 && a.date.value == except.1 && a.shift.value == except.2 {
                continue;
            }
            let Some(shift) = r
                .shift(&a.shift.value)
                .filter(|s| r.runs_on(s, a.date.value))
            else {
                continue;
            };
            let (s, e) = oncall::occurrence(tz, shift, a.date.value);
            if s < end && start < e {
                return false;
            }
        }
    }
    true
}

/// Who may take `requester`'s place on `occ` of `roster` (see the module
/// docs), in directory order; `pending` are the takes waiting for the
/// bureau, which keep their takers busy.
pub fn candidates<'a>(
    set: &'a ConfigSet,
    roster: &Roster,
    occ: &Occurrence,
    requester: &str,
    pending: &[Swap],
) -> Vec<&'a Professional> {
    let dir = &set.directory;
    let eligible: Vec<&Professional> = match &roster.eligible {
        Some(sel) => dir.select(sel, &|_: &str| Vec::new()),
        None => dir.professionals.iter().collect(),
    };
    eligible
        .into_iter()
        .filter(|p| {
            p.id != requester
                && p.present_on(occ.date)
                && !occ.assignees.contains(&p.id)
                && is_free(set, &p.id, occ.start, occ.end, ("", occ.date, ""), pending)
        })
        .collect()
}

/// `who`'s occurrences on every roster starting in `[from, from + days)`,
/// in start order.
pub fn shifts_of(set: &ConfigSet, who: &str, from: NaiveDate, days: u32) -> Vec<Occurrence> {
    let mut out: Vec<Occurrence> = set
        .rosters
        .iter()
        .flat_map(|r| occurrences(set, r, from, days))
        .filter(|o| o.assignees.iter().any(|a| a == who))
        .collect();
    out.sort_by_key(|o| o.start);
    out
}

/// One effective assignment: a person on an occurrence, and whether the
/// file or a swap put them there.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Effective {
    pub date: NaiveDate,
    pub shift: String,
    pub who: String,
    /// `file` or `swap`.
    pub source: &'static str,
}

/// The effective assignments of `roster` over `[from, from + days)` of the
/// set with the swaps applied (`set`), in start order; `swaps` are the
/// swaps that were applied, to tell each assignment's source.
pub fn assignments(
    set: &ConfigSet,
    roster: &Roster,
    swaps: &[Swap],
    from: NaiveDate,
    days: u32,
) -> Vec<Effective> {
    let mut out = Vec::new();
    for occ in occurrences(set, roster, from, days) {
        for who in &occ.assignees {
            // The last swap of this occurrence that touched `who` decides.
            let by_swap = swaps
                .iter()
                .rev()
                .filter(|s| s.roster == occ.roster && s.date == occ.date && s.shift == occ.shift)
                .find(|s| &s.to == who || &s.from == who)
                .is_some_and(|s| &s.to == who);
            out.push(Effective {
                date: occ.date,
                shift: occ.shift.clone(),
                who: who.clone(),
                source: if by_swap { "swap" } else { "file" },
            });
        }
    }
    out
}

/// The effective assignments as `[[assignment]]` TOML, one per occurrence,
/// for the coordinator to fold back into the roster file.
pub fn to_toml(roster: &Roster, from: NaiveDate, days: u32, list: &[Effective]) -> String {
    let mut s = format!(
        "# Inscriptions en vigueur au planning {} à partir du {} sur {}, échanges compris\n",
        roster.id.value,
        from,
        crate::model::labels::count(u64::from(days), "jour", "jours")
    );
    let mut i = 0;
    while i < list.len() {
        let (date, shift) = (list[i].date, &list[i].shift);
        let mut who = Vec::new();
        let mut swapped = Vec::new();
        while i < list.len() && list[i].date == date && &list[i].shift == shift {
            who.push(toml_string(&list[i].who));
            if list[i].source == "swap" {
                swapped.push(list[i].who.as_str());
            }
            i += 1;
        }
        // What differs from the file, for the coordinator folding it back.
        let mark = if swapped.is_empty() {
            String::new()
        } else {
            format!("# échange : {}\n", swapped.join(", "))
        };
        s.push_str(&format!(
            "\n{mark}[[assignment]]\ndate = {date}\nshift = {}\nwho = [{}]\n",
            toml_string(shift),
            who.join(", ")
        ));
    }
    s
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
