//! When something holds: a recurring [`Season`] (`"12-01..04-30"`, every
//! year, inclusive, may wrap over New Year) and a [`Period`] that combines
//! it with one-off bounds (`valid_from` / `valid_until`, `available_from` /
//! `available_until`, inclusive). Rosters, shifts and professionals use it.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// Every year from one month-day to another, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Season {
    /// (month, day).
    from: (u32, u32),
    until: (u32, u32),
}

impl Season {
    /// `"MM-DD..MM-DD"`; `"12-01..04-30"` is 1 December to 30 April.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid season \"{s}\": write MM-DD..MM-DD, e.g. \"12-01..04-30\" \
                 (1 December to 30 April, every year)"
            )
        };
        let (a, b) = s.trim().split_once("..").ok_or_else(bad)?;
        let day = |t: &str| -> Result<(u32, u32), String> {
            let (m, d) = t.split_once('-').ok_or_else(bad)?;
            if m.len() != 2 || d.len() != 2 {
                return Err(bad());
            }
            let m: u32 = m.parse().map_err(|_| bad())?;
            let d: u32 = d.parse().map_err(|_| bad())?;
            // 2024 is a leap year: 02-29 is a day of the year.
            if NaiveDate::from_ymd_opt(2024, m, d).is_none() {
                return Err(format!(
                    "invalid season \"{s}\": {t} is not a day of the year (MM-DD)"
                ));
            }
            Ok((m, d))
        };
        Ok(Season {
            from: day(a)?,
            until: day(b)?,
        })
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        let md = (date.month(), date.day());
        if self.from <= self.until {
            self.from <= md && md <= self.until
        } else {
            md >= self.from || md <= self.until
        }
    }
}

impl fmt::Display for Season {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}-{:02}..{:02}-{:02}",
            self.from.0, self.from.1, self.until.0, self.until.1
        )
    }
}

/// The days something holds: inside `from..=until` (each optional) and
/// inside `season` when there is one. The default holds every day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Period {
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    pub season: Option<Season>,
}

impl Period {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= date)
            && self.until.is_none_or(|u| date <= u)
            && self.season.is_none_or(|s| s.contains(date))
    }

    /// Every day.
    pub fn is_always(&self) -> bool {
        *self == Period::default()
    }

    /// In French, for what a coordinator reads: `saison 12-15..04-15`,
    /// `du 2026-12-01 au 2027-04-30`, `à partir du 2026-12-01`… joined by
    /// `, `; empty for every day.
    pub fn describe_fr(&self) -> String {
        let mut parts = Vec::new();
        match (self.from, self.until) {
            (Some(f), Some(u)) => parts.push(format!("du {f} au {u}")),
            (Some(f), None) => parts.push(format!("à partir du {f}")),
            (None, Some(u)) => parts.push(format!("jusqu'au {u}")),
            (None, None) => {}
        }
        if let Some(s) = self.season {
            parts.push(format!("saison {s}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_winter_season_wraps_over_new_year() {
        let s = Season::parse("12-01..04-30").unwrap();
        assert!(s.contains(d(2026, 12, 1)));
        assert!(s.contains(d(2027, 1, 15)));
        assert!(s.contains(d(2027, 4, 30)));
        assert!(!s.contains(d(2027, 5, 1)));
        assert!(!s.contains(d(2026, 11, 30)));
        assert!(!s.contains(d(2026, 7, 14)));
        assert_eq!(s.to_string(), "12-01..04-30");
        let summer = Season::parse("06-15..09-15").unwrap();
        assert!(summer.contains(d(2026, 8, 1)) && !summer.contains(d(2026, 12, 1)));
    }

    #[test]
    fn bad_seasons_say_how_to_write_them() {
        assert_eq!(
            Season::parse("1201..0430").unwrap_err(),
            "invalid season \"1201..0430\": write MM-DD..MM-DD, e.g. \"12-01..04-30\" \
             (1 December to 30 April, every year)"
        );
        assert_eq!(
            Season::parse("12-32..04-30").unwrap_err(),
            "invalid season \"12-32..04-30\": 12-32 is not a day of the year (MM-DD)"
        );
        assert!(Season::parse("12-32").is_err());
        assert!(Season::parse("02-29..03-01").is_ok());
    }

    #[test]
    fn a_period_combines_bounds_and_season() {
        let p = Period {
            from: Some(d(2026, 12, 10)),
            until: None,
            season: Some(Season::parse("12-01..04-30").unwrap()),
        };
        assert!(!p.contains(d(2026, 12, 5)));
        assert!(p.contains(d(2026, 12, 10)));
        assert!(!p.contains(d(2027, 6, 1)));
        assert!(p.contains(d(2027, 12, 1)));
        assert_eq!(
            p.describe_fr(),
            "à partir du 2026-12-10, saison 12-01..04-30"
        );
        assert!(Period::default().contains(d(2026, 7, 1)));
    }
}
