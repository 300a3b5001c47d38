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
}
