//! Who is on shift: the assignments of a roster whose shift occurrence
//! covers an instant, in the daemon's time zone.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::ConfigSet;
use crate::config::roster::Shift;

/// The UTC instant of a local wall time. A time in the spring-forward gap
/// (02:30 on the last Sunday of March) is taken one hour later; an
/// ambiguous one (autumn) is the first occurrence.
pub fn local_to_utc(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&t) {
        chrono::LocalResult::Single(x) => x.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => local_to_utc(tz, t + Duration::hours(1)),
    }
}

/// The UTC start and end of the occurrence of `shift` that starts on `date`.
pub fn occurrence(tz: Tz, shift: &Shift, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = local_to_utc(tz, date.and_time(shift.start.0));
    let end_date = if shift.crosses_midnight() {
        date + Duration::days(1)
    } else {
        date
    };
    let end = local_to_utc(tz, end_date.and_time(shift.end.0));
    (start, end)
}

/// The ids assigned to a roster's shifts that cover `at`, minus those the
/// directory says are away on the day the shift starts (as the roster check
/// counts them); an id the directory does not know is kept (the selector
/// matches nobody for it).
pub fn on_call(set: &ConfigSet, roster_id: &str, at: DateTime<Utc>) -> Vec<String> {
    let Some(roster) = set.roster(roster_id) else {
        return Vec::new();
    };
    let tz = set.daemon.timezone;
    let mut out = Vec::new();
    for a in &roster.assignments {
        let Some(shift) = roster
            .shift(&a.shift.value)
            .filter(|s| roster.runs_on(s, a.date.value))
        else {
            continue;
        };
        let (start, end) = occurrence(tz, shift, a.date.value);
        if start <= at && at < end {
            for w in &a.who {
                let away = set
                    .directory
                    .get(&w.value)
                    .is_some_and(|p| !p.present_on(a.date.value));
                if !away && !out.contains(&w.value) {
                    out.push(w.value.clone());
                }
            }
        }
    }
    out
}
