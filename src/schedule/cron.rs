//! Cron schedules evaluated in the daemon's time zone, across DST.
//!
//! The schedule is matched on wall-clock time (what a coordinator means by
//! "every day at 02:30"), then each wall-clock instant is turned into a UTC
//! instant: in the spring-forward gap (02:30 does not exist on the last
//! Sunday of March in Europe/Paris) it fires one hour later, at 03:30;
//! when the autumn hour repeats it fires at the first 02:30 only. No
//! instant is skipped, none is doubled.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;

use super::oncall::local_to_utc;
use crate::model::CronSchedule;

/// The UTC instants of `schedule` in `(from, to]`, in order, each once.
pub fn instants_between(
    schedule: &CronSchedule,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    if to <= from {
        return Vec::new();
    }
    // Wall-clock bounds, widened by the largest DST shift, then filtered
    // exactly on UTC.
    let start = from.with_timezone(&tz).naive_local() - Duration::hours(3);
    let end = to.with_timezone(&tz).naive_local() + Duration::hours(3);
    let mut out: Vec<DateTime<Utc>> = Vec::new();
    // The cron crate iterates on a time zone; UTC stands for "wall clock".
    for wall in schedule.inner().after(&Utc.from_utc_datetime(&start)) {
        let wall = wall.naive_utc();
        if wall > end {
            break;
        }
        let at = local_to_utc(tz, wall);
        if at > from && at <= to && !out.contains(&at) {
            out.push(at);
        }
    }
    out.sort();
    out
}

/// The next instant of `schedule` after `after`.
pub fn next_after(schedule: &CronSchedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut window = Duration::days(2);
    while window <= Duration::days(800) {
        if let Some(first) = instants_between(schedule, tz, after, after + window)
            .into_iter()
            .next()
        {
            return Some(first);
        }
        window = window * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;

    fn paris(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Paris
            .with_ymd_and_hms(y, m, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_0230_fires_once_on_the_spring_forward_sunday() {
        let s = CronSchedule::parse("30 2 * * *").unwrap();
        // 2027-03-28: 02:00 → 03:00 in Paris.
        let got = instants_between(
            &s,
            Paris,
            paris(2027, 3, 27, 12, 0),
            paris(2027, 3, 29, 12, 0),
        );
        let local: Vec<String> = got
            .iter()
            .map(|t| t.with_timezone(&Paris).format("%d %H:%M %z").to_string())
            .collect();
        assert_eq!(local, ["28 03:30 +0200", "29 02:30 +0200"]);
    }

    #[test]
    fn a_daily_0230_fires_once_on_the_autumn_sunday() {
        let s = CronSchedule::parse("30 2 * * *").unwrap();
        // 2026-10-25: 03:00 → 02:00, 02:30 happens twice.
        let got = instants_between(
            &s,
            Paris,
            paris(2026, 10, 24, 12, 0),
            paris(2026, 10, 26, 12, 0),
        );
        let local: Vec<String> = got
            .iter()
            .map(|t| t.with_timezone(&Paris).format("%d %H:%M %z").to_string())
            .collect();
        assert_eq!(local, ["25 02:30 +0200", "26 02:30 +0100"]);
    }

    #[test]
    fn weekly_schedules_are_in_local_time_all_year() {
        let s = CronSchedule::parse("0 10 * * fri").unwrap();
        let winter = next_after(&s, Paris, paris(2026, 11, 23, 12, 0)).unwrap();
        assert_eq!(
            winter
                .with_timezone(&Paris)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            "2026-11-27 10:00"
        );
        let summer = next_after(&s, Paris, paris(2026, 7, 1, 12, 0)).unwrap();
        assert_eq!(
            summer
                .with_timezone(&Paris)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            "2026-07-03 10:00"
        );
        assert_eq!(summer.format("%H:%M").to_string(), "08:00");
    }

    #[test]
    fn the_window_is_open_at_the_start_and_closed_at_the_end() {
        let s = CronSchedule::parse("0 9 * * *").unwrap();
        let nine = paris(2026, 11, 23, 9, 0);
        assert!(instants_between(&s, Paris, nine, nine + Duration::hours(1)).is_empty());
        assert_eq!(
            instants_between(&s, Paris, nine - Duration::seconds(1), nine),
            vec![nine]
        );
    }
}
