//! Quiet hours at work (SPEC §14): when a routine message written now may
//! leave. Crisis messages (events, escalation, relances) never ask.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::oncall::local_to_utc;
use crate::model::QuietHours;

/// The end of the quiet hours `at` falls in, in the time zone `tz` (a wall
/// time, so DST-correct: 07:00 is 07:00 on the night the clocks change);
/// `None` when `at` is outside them.
pub fn release(q: &QuietHours, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&tz);
    let time = local.time();
    if !q.contains(time) {
        return None;
    }
    let mut day = local.date_naive();
    // In the evening part of a window across midnight: it ends tomorrow.
    if q.crosses_midnight() && time >= q.start.0 {
        day += Duration::days(1);
    }
    Some(local_to_utc(tz, day.and_time(q.end.0)))
}

/// The start of the quiet hours `at` falls in (a wall time in `tz`);
/// `None` when `at` is outside them.
pub fn window_start(q: &QuietHours, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&tz);
    let time = local.time();
    if !q.contains(time) {
        return None;
    }
    let mut day = local.date_naive();
    // In the morning part of a window across midnight: it began yesterday.
    if q.crosses_midnight() && time < q.end.0 {
        day -= Duration::days(1);
    }
    Some(local_to_utc(tz, day.and_time(q.start.0)))
}

/// When the reminder of a shift starting at `start`, due at `due`, goes
/// out: at `due`, unless the quiet hours would hold it until after the
/// shift has begun (a 00:00 shift, reminded 1 h before, quiet until
/// 07:00); then at the start of those quiet hours, before the night.
pub fn shift_reminder_at(
    q: Option<&QuietHours>,
    tz: Tz,
    due: DateTime<Utc>,
    start: DateTime<Utc>,
) -> DateTime<Utc> {
    match q {
        Some(q) if release(q, tz, due).is_some_and(|end| end > start) => {
            window_start(q, tz, due).unwrap_or(due)
        }
        _ => due,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Europe::Paris;

    use super::*;

    fn paris(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Paris
            .with_ymd_and_hms(y, m, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_message_of_the_night_leaves_at_the_end_of_it_local_time_across_dst() {
        let q = QuietHours::parse("21:00-07:00").unwrap();
        assert_eq!(
            release(&q, Paris, paris(2026, 6, 15, 22, 0)),
            Some(paris(2026, 6, 16, 7, 0))
        );
        assert_eq!(
            release(&q, Paris, paris(2026, 6, 16, 3, 0)),
            Some(paris(2026, 6, 16, 7, 0))
        );
        assert_eq!(release(&q, Paris, paris(2026, 6, 16, 7, 0)), None);
        assert_eq!(release(&q, Paris, paris(2026, 6, 16, 20, 59)), None);
        // The night the clocks go forward (29 March 2026): 07:00 CEST.
        let r = release(&q, Paris, paris(2026, 3, 28, 23, 0)).unwrap();
        assert_eq!(r, paris(2026, 3, 29, 7, 0));
        assert_eq!(r.to_rfc3339(), "2026-03-29T05:00:00+00:00");
        // And back (25 October 2026): 07:00 CET.
        let r = release(&q, Paris, paris(2026, 10, 24, 23, 0)).unwrap();
        assert_eq!(r.to_rfc3339(), "2026-10-25T06:00:00+00:00");
    }

    #[test]
    fn a_shift_reminder_the_night_would_hold_too_long_leaves_at_its_start() {
        let q = QuietHours::parse("21:00-07:00").unwrap();
        let start = paris(2026, 6, 16, 0, 0);
        let due = paris(2026, 6, 15, 23, 0);
        assert_eq!(
            window_start(&q, Paris, due),
            Some(paris(2026, 6, 15, 21, 0))
        );
        assert_eq!(
            window_start(&q, Paris, paris(2026, 6, 16, 3, 0)),
            Some(paris(2026, 6, 15, 21, 0))
        );
        assert_eq!(
            shift_reminder_at(Some(&q), Paris, due, start),
            paris(2026, 6, 15, 21, 0)
        );
        // A shift starting at 08:00: held until 07:00 is still in time.
        let start = paris(2026, 6, 16, 8, 0);
        let due = paris(2026, 6, 16, 6, 0);
        assert_eq!(shift_reminder_at(Some(&q), Paris, due, start), due);
        assert_eq!(shift_reminder_at(None, Paris, due, start), due);
    }
}
