//! `[daemon] quiet_hours` (SPEC §14): the hours of the night when routine
//! messages wait.

use std::fmt;

use chrono::NaiveTime;

use super::TimeOfDay;

/// A daily window `HH:MM-HH:MM` of local time, which may cross midnight
/// (`21:00-07:00`): the start is inside, the end is not. Both ends equal
/// is refused (a window of nothing, or of the whole day: say which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl QuietHours {
    pub fn parse(s: &str) -> Result<QuietHours, String> {
        let (a, b) = s.split_once('-').ok_or_else(|| {
            format!("invalid quiet_hours \"{s}\": write START-END, e.g. \"21:00-07:00\"")
        })?;
        let start = TimeOfDay::parse(a.trim()).map_err(|e| format!("quiet_hours: {e}"))?;
        let end = TimeOfDay::parse(b.trim()).map_err(|e| format!("quiet_hours: {e}"))?;
        if start == end {
            return Err(format!(
                "quiet_hours \"{s}\" starts and ends at the same time: write a real window, e.g. \"21:00-07:00\", or remove the key"
            ));
        }
        Ok(QuietHours { start, end })
    }

    /// The window crosses midnight (`21:00-07:00`).
    pub fn crosses_midnight(&self) -> bool {
        self.end.0 < self.start.0
    }

    /// Whether a local time of day is inside the window.
    pub fn contains(&self, t: NaiveTime) -> bool {
        let (s, e) = (self.start.0, self.end.0);
        if self.crosses_midnight() {
            t >= s || t < e
        } else {
            t >= s && t < e
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn a_window_across_midnight_holds_the_night_and_not_its_end() {
        let q = QuietHours::parse("21:00-07:00").unwrap();
        assert!(q.crosses_midnight());
        assert!(q.contains(t(21, 0)) && q.contains(t(23, 59)) && q.contains(t(3, 0)));
        assert!(!q.contains(t(7, 0)) && !q.contains(t(20, 59)) && !q.contains(t(12, 0)));
        let day = QuietHours::parse("12:00-14:00").unwrap();
        assert!(day.contains(t(13, 0)) && !day.contains(t(14, 0)) && !day.contains(t(11, 0)));
        assert_eq!(q.to_string(), "21:00-07:00");
    }

    #[test]
    fn equal_ends_and_bad_times_are_refused() {
        assert!(
            QuietHours::parse("07:00-07:00")
                .unwrap_err()
                .contains("same time")
        );
        assert!(QuietHours::parse("25:00-07:00").is_err());
        assert!(
            QuietHours::parse("21:00")
                .unwrap_err()
                .contains("START-END")
        );
        assert!(QuietHours::parse("21h-7h").is_err());
    }
}
