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
//!   has [`RosterReport::is_covered`] and [`RosterReport::to_text`] (French,
//!   for the CLI).
//! - [`to_ics`]`(set, roster, from, days) -> String`: RFC 5545 calendar of
//!   the occurrences with their assignees; [`ics_feed`] uses the usual
//!   window (30 days back, 90 ahead).
//! - [`import::parse_csv`] and [`import::to_toml`]: assignments from a
//!   spreadsheet export (`date,shift,who`).
//! - [`swaps`]: the swaps of SPEC §15 folded on top of the files
//!   ([`swaps::apply`]), who may take a shift, a person's shifts, the
//!   effective assignments with their source and their TOML export.
//!
//! # Rules where SPEC is silent
//! - A shift occurs on each date whose weekday is in its `days`, and on
//!   every public holiday of `daemon.holidays` when `holidays = true` (once
//!   when both apply). A shift whose end is not after its start ends the next
//!   day. Wall times are in the daemon's time zone: a 20:00–08:00 night over
//!   the spring change lasts 11 h, over the autumn change 13 h. A start in the
//!   spring gap is taken one hour later
//!   ([`local_to_utc`](crate::schedule::oncall::local_to_utc)).
//! - Only on the days inside the roster's period and the shift's
//!   (`valid_from`, `valid_until`, `season`, see
//!   [`Roster::runs_on`](crate::config::Roster::runs_on)): a shift crossing
//!   midnight belongs to the day it starts. Out of season there is no
//!   occurrence, hence no gap.
//! - The assignees of an occurrence are the union of the `who` of every
//!   `[[assignment]]` with its date and shift.
//! - An assignee is *not counted* toward `need` when unknown to the
//!   directory, inactive, absent that day (outside their `available_from`,
//!   `available_until` or `season`), not eligible (the roster's `eligible` selector), on
//!   another occurrence that overlaps this one (same roster or any other
//!   roster of the set: both occurrences lose them), or without a usable
//!   contact (no e-mail and no phone: Vigie could neither remind them nor
//!   reach the person on call in a crisis). Back-to-back shifts (20:00–00:00
//!   then 00:00–08:00) do not overlap.
//! - The roster is *covered* when no occurrence has fewer counted assignees
//!   than `need` and no assignee has a problem: an invalid assignee is worth
//!   fixing even on a shift that has enough others.

mod assessment;
mod coverage;
pub mod ics;
pub mod import;
mod occurrence;
pub mod swaps;
mod text;

pub(crate) use assessment::{Assessed, assess};
pub use coverage::{
    Conflict, Gap, GapStatus, Person, Problem, ProblemKind, RosterReport, Slot, check,
};
pub use ics::{ics_feed, to_ics};
pub use occurrence::{Occurrence, occurrences, occurs_on};
pub(crate) use text::{weekday_en, weekday_slug};
