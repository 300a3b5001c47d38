//! Small values: durations, times of day, weekdays, slugs, plan versions.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use chrono::{NaiveTime, Weekday};

/// A duration written humantime-style: `"90s"`, `"15m"`, `"1h 30m"`, `"14d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationValue(pub Duration);

impl DurationValue {
    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err("empty duration (write e.g. \"15m\", \"2h\", \"1h 30m\")".into());
        }
        match humantime::parse_duration(trimmed) {
            Ok(d) if d.is_zero() => Err(format!("duration \"{s}\" must be more than zero")),
            Ok(d) => Ok(DurationValue(d)),
            Err(e) => Err(format!(
                "invalid duration \"{s}\": {e} (write e.g. \"15m\", \"2h\", \"1h 30m\")"
            )),
        }
    }

    pub fn as_std(&self) -> Duration {
        self.0
    }

    pub fn as_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A time of day, `"20:00"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(pub NaiveTime);

impl TimeOfDay {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid time of day \"{s}\" (write HH:MM, e.g. \"20:00\")");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        NaiveTime::from_hms_opt(h, m, 0)
            .map(TimeOfDay)
            .ok_or_else(bad)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

/// `mon` … `sun`.
pub fn parse_weekday(s: &str) -> Result<Weekday, String> {
    Ok(match s {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => {
            return Err(format!(
                "invalid weekday \"{s}\" (use mon, tue, wed, thu, fri, sat, sun)"
            ));
        }
    })
}

/// Identifiers (professional ids, plan, scenario, roster, group names):
/// lower-case letters, digits, `_` and `-`, starting with a letter or digit.
pub fn parse_slug(s: &str, what: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} \"{s}\": use lower-case letters, digits, '_' and '-' (at most 64)"
        ))
    }
}

/// A plan version such as `"2026.1"`, ordered segment by segment, numbers as
/// numbers: `2026.10` > `2026.9`, and `2026.01` equals `2026.1`.
#[derive(Clone, Debug)]
pub struct Version(pub String);

impl Version {
    fn segments(&self) -> impl Iterator<Item = Segment<'_>> {
        self.0
            .split(['.', '-', '_'])
            .map(|p| match p.parse::<u64>() {
                Ok(n) => Segment::Num(n),
                Err(_) => Segment::Text(p),
            })
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Segment<'a> {
    Num(u64),
    Text(&'a str),
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.segments();
        let mut b = other.segments();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => match x.cmp(&y) {
                    Ordering::Equal => continue,
                    o => return o,
                },
            }
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(
            DurationValue::parse("15m").unwrap().0,
            Duration::from_secs(900)
        );
        assert_eq!(
            DurationValue::parse("1h 30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            DurationValue::parse("14d").unwrap().0,
            Duration::from_secs(14 * 86400)
        );
        assert!(DurationValue::parse("quinze minutes").is_err());
        assert!(DurationValue::parse("0s").is_err());
        assert!(DurationValue::parse("").is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s: &str| Version(s.to_string());
        assert!(v("2026.10") > v("2026.9"));
        assert!(v("2026.1") > v("2025.3"));
        assert_eq!(v("2026.01"), v("2026.1"));
        assert!(v("2026.1.1") > v("2026.1"));
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert_eq!(TimeOfDay::parse("20:00").unwrap().to_string(), "20:00");
        assert!(TimeOfDay::parse("24:00").is_err());
        assert!(TimeOfDay::parse("8:00").is_err());
        assert!(TimeOfDay::parse("20h").is_err());
    }
}

/// Folds a label for loose comparison: lower case, French accents removed,
/// hyphens, apostrophes and runs of spaces made one space. `"SAINT-AMARIN"`,
/// `"Saint Amarin"` and `"saint-amarin"` fold alike, as do `"Lès"` and `"les"`.
pub fn fold(s: &str) -> String {
    fold_chars(s).collect()
}

/// Whether two labels fold alike, without building either folded string
/// (selectors compare communes with every professional of the directory).
pub fn fold_eq(a: &str, b: &str) -> bool {
    fold_chars(a).eq(fold_chars(b))
}

/// The characters of [`fold`]`(s)`, one at a time.
pub fn fold_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    Fold {
        chars: s.chars().flat_map(char::to_lowercase),
        out: ['\0'; 3],
        len: 0,
        pos: 0,
        started: false,
        space: false,
    }
}

struct Fold<I> {
    chars: I,
    /// Characters ready to be returned: `out[pos..len]`.
    out: [char; 3],
    len: usize,
    pos: usize,
    /// A character was returned: spaces before the next one count.
    started: bool,
    /// Spaces seen since the last character: one is returned before the
    /// next character, none at the end.
    space: bool,
}

impl<I: Iterator<Item = char>> Iterator for Fold<I> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            if self.pos < self.len {
                self.pos += 1;
                return Some(self.out[self.pos - 1]);
            }
            let c = self.chars.next()?;
            let (before, c) = match c {
                'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => (None, 'a'),
                'ç' => (None, 'c'),
                'è' | 'é' | 'ê' | 'ë' => (None, 'e'),
                'ì' | 'í' | 'î' | 'ï' => (None, 'i'),
                'ñ' => (None, 'n'),
                'ò' | 'ó' | 'ô' | 'ö' | 'õ' => (None, 'o'),
                'ù' | 'ú' | 'û' | 'ü' => (None, 'u'),
                'ý' | 'ÿ' => (None, 'y'),
                'œ' => (Some('o'), 'e'),
                'æ' => (Some('a'), 'e'),
                '-' | '\'' | '’' | '_' | '.' => (None, ' '),
                c => (None, c),
            };
            if c.is_whitespace() {
                self.space = self.started;
                continue;
            }
            self.len = 0;
            self.pos = 0;
            if self.space {
                self.out[self.len] = ' ';
                self.len += 1;
                self.space = false;
            }
            if let Some(b) = before {
                self.out[self.len] = b;
                self.len += 1;
            }
            self.out[self.len] = c;
            self.len += 1;
            self.started = true;
        }
    }
}

#[cfg(test)]
mod fold_tests {
    use super::fold;

    #[test]
    fn commune_labels_fold_alike() {
        assert_eq!(fold("SAINT-AMARIN"), fold("Saint Amarin"));
        assert_eq!(fold("Bitschwiller-lès-Thann"), "bitschwiller les thann");
        assert_eq!(fold("  Husseren  Wesserling "), "husseren wesserling");
        assert_eq!(fold("Cœur-de-l'Œuvre"), "coeur de l oeuvre");
        assert_eq!(fold(" - "), "");
        assert!(super::fold_eq("SAINT-AMARIN", "Saint  Amarin "));
        assert!(!super::fold_eq("Thann", "Vieux-Thann"));
    }
}
