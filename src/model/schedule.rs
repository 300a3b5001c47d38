//! Cron schedules: standard 5-field crontab (`"0 10 * * fri"`) or 6 fields
//! with seconds first.
//!
//! Parsing is delegated to the `cron` crate, which wants 6 or 7 fields and
//! numbers days of the week from 1 (Sunday) to 7. Crontab numbers them 0
//! (Sunday) to 6, with 7 also Sunday, so numeric days are translated here:
//! `"0 10 * * 5"` means Friday, as it does in a crontab.
//!
//! Days and months may be written in French as a coordinator would
//! (`lun`, `lundi`… `dim`, `janv`, `juil`, `août`…): they are read as their
//! English abbreviations. An hour written `9h` or `9h30` gets a message that
//! says how to write it.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug)]
pub struct CronSchedule {
    source: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        let mut fields: Vec<String> = match fields.len() {
            5 => std::iter::once("0")
                .chain(fields.iter().copied())
                .map(String::from)
                .collect(),
            6 => fields.iter().map(|f| f.to_string()).collect(),
            n => {
                return Err(format!(
                    "invalid cron schedule \"{s}\": {n} fields, expected 5 \
                     (minute hour day month weekday) or 6 (seconds first)"
                ));
            }
        };
        if let Some(f) = fields.iter().find(|f| is_french_hour(f)) {
            return Err(format!(
                "invalid cron schedule \"{s}\": \"{f}\" is not a cron field; write the minute and the \
                 hour as numbers, each in its own field: \"30 9 * * lun\" is 9h30 on Mondays \
                 (minute hour day month weekday)"
            ));
        }
        fields[4] = english_names(&fields[4], FRENCH_MONTHS);
        fields[5] = english_names(&fields[5], FRENCH_DAYS);
        for (field, &(name, min, max)) in fields.iter().zip(FIELDS.iter()) {
            check_numbers(field, name, min, max)
                .map_err(|e| format!("invalid cron schedule \"{s}\": {e}"))?;
        }
        fields[5] = translate_weekdays(&fields[5])
            .map_err(|e| format!("invalid cron schedule \"{s}\": {e}"))?;
        let translated = fields.join(" ");
        let schedule = cron::Schedule::from_str(&translated).map_err(|e| {
            format!(
                "invalid cron schedule \"{s}\": {}",
                crate_reason(&e.to_string(), &translated)
            )
        })?;
        Ok(CronSchedule {
            source: s.to_string(),
            schedule,
        })
    }

    pub fn inner(&self) -> &cron::Schedule {
        &self.schedule
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// French day names and abbreviations, as the `cron` crate's English ones.
const FRENCH_DAYS: &[(&str, &str)] = &[
    ("lundi", "mon"),
    ("lun", "mon"),
    ("mardi", "tue"),
    ("mar", "tue"),
    ("mercredi", "wed"),
    ("mer", "wed"),
    ("jeudi", "thu"),
    ("jeu", "thu"),
    ("vendredi", "fri"),
    ("ven", "fri"),
    ("samedi", "sat"),
    ("sam", "sat"),
    ("dimanche", "sun"),
    ("dim", "sun"),
];

/// French month names and abbreviations (with or without accents).
const FRENCH_MONTHS: &[(&str, &str)] = &[
    ("janvier", "jan"),
    ("janv", "jan"),
    ("fevrier", "feb"),
    ("février", "feb"),
    ("fevr", "feb"),
    ("févr", "feb"),
    ("mars", "mar"),
    ("avril", "apr"),
    ("avr", "apr"),
    ("mai", "may"),
    ("juin", "jun"),
    ("juillet", "jul"),
    ("juil", "jul"),
    ("aout", "aug"),
    ("août", "aug"),
    ("septembre", "sep"),
    ("sept", "sep"),
    ("octobre", "oct"),
    ("novembre", "nov"),
    ("decembre", "dec"),
    ("décembre", "dec"),
    ("déc", "dec"),
];

/// `field` with each French name of `names` replaced by its English
/// abbreviation (any case); other words are left to the `cron` crate.
fn english_names(field: &str, names: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let lower = word.to_lowercase();
        match names.iter().find(|(fr, _)| *fr == lower) {
            Some((_, en)) => out.push_str(en),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in field.chars() {
        if c.is_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `9h`, `9h30`, `18H`: an hour as a French speaker writes it.
fn is_french_hour(field: &str) -> bool {
    let lower = field.to_lowercase();
    match lower.split_once('h') {
        Some((h, m)) => {
            !h.is_empty()
                && h.bytes().all(|b| b.is_ascii_digit())
                && m.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The fields before the weekday, seconds first: name and numeric range.
const FIELDS: [(&str, u32, u32); 5] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
];

/// Checks the numbers of one field against its range, so that the message
/// names the field in crontab terms (the `cron` crate's own messages are off
/// by one and echo the translated expression). Names (`jan`, `fri`) and
/// other syntax are left to the crate.
fn check_numbers(field: &str, name: &str, min: u32, max: u32) -> Result<(), String> {
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n >= 1 && n <= max.max(1) => {}
                _ => return Err(format!("invalid step \"{step}\" in the {name} field")),
            }
        }
        let bounds: Vec<&str> = match range.split_once('-') {
            Some((a, b)) => vec![a, b],
            None => vec![range],
        };
        for b in bounds {
            if b.is_empty() || !b.bytes().all(|c| c.is_ascii_digit()) {
                continue;
            }
            match b.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => {}
                _ => return Err(format!("{name} {b} is out of range {min}-{max}")),
            }
        }
    }
    Ok(())
}

/// The `cron` crate reports parse errors on several lines: the expression it
/// was given (ours, with seconds added and weekdays renumbered), a caret,
/// then the reason. Keeps the reason only, on one line.
fn crate_reason(message: &str, translated: &str) -> String {
    let reason: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "^" && *l != translated.trim())
        .collect();
    let reason = reason.join(" ");
    let reason = reason.trim().trim_end_matches('.');
    if reason.is_empty() {
        "not a cron schedule (write e.g. \"0 10 * * fri\")".to_string()
    } else {
        reason.to_string()
    }
}

/// Rewrites numeric crontab weekdays (0–7, 0 and 7 = Sunday) into the
/// `cron` crate's numbering (1 = Sunday … 7 = Saturday); names pass through.
fn translate_weekdays(field: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in field.split(',') {
        if !item.chars().any(|c| c.is_ascii_digit()) || item.starts_with('*') && !item.contains('/')
        {
            out.push(item.to_string());
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("invalid step in weekday \"{item}\""))?,
            ),
            None => (item, 1),
        };
        if step == 0 {
            return Err(format!("invalid step in weekday \"{item}\""));
        }
        let num = |t: &str| -> Result<u32, String> {
            match t.parse::<u32>() {
                Ok(n) if n <= 7 => Ok(n),
                Ok(_) => Err(format!("weekday {t} out of range 0-7")),
                Err(_) => Err(format!(
                    "weekday \"{item}\": mix of names and numbers is not supported"
                )),
            }
        };
        let (lo, hi) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None if step > 1 => (num(r)?, 6),
                None => (num(r)?, num(r)?),
            },
        };
        if lo > hi {
            return Err(format!("weekday range \"{range}\" goes backwards"));
        }
        for d in (lo..=hi).step_by(step as usize) {
            out.push(((d % 7) + 1).to_string());
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Weekday};

    fn next_weekday(expr: &str) -> Weekday {
        let s = CronSchedule::parse(expr).unwrap();
        // 2026-11-23 is a Monday.
        let from = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .unwrap();
        s.inner().after(&from).next().unwrap().weekday()
    }

    #[test]
    fn numeric_weekdays_follow_crontab() {
        assert_eq!(next_weekday("0 10 * * 5"), Weekday::Fri);
        assert_eq!(next_weekday("0 10 * * fri"), Weekday::Fri);
        assert_eq!(next_weekday("0 10 * * 0"), Weekday::Sun);
        assert_eq!(next_weekday("0 10 * * 7"), Weekday::Sun);
        assert_eq!(next_weekday("0 10 * * 2-3"), Weekday::Tue);
        assert_eq!(next_weekday("0 9 * * mon"), Weekday::Mon);
    }

    #[test]
    fn french_days_and_months_are_read() {
        assert_eq!(next_weekday("0 10 * * ven"), Weekday::Fri);
        assert_eq!(next_weekday("0 10 * * Vendredi"), Weekday::Fri);
        assert_eq!(next_weekday("0 10 * * mar"), Weekday::Tue);
        assert_eq!(next_weekday("0 9 * * sam,dim"), Weekday::Sat);
        assert_eq!(next_weekday("0 9 * * lun-ven"), Weekday::Tue);
        assert_eq!(next_weekday("0 9 * * lun,jeu"), Weekday::Thu);
        // Months: `mar` is March there, as in English; `août` is August.
        let s = CronSchedule::parse("0 9 1 août,déc *").unwrap();
        let from = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .unwrap();
        let next = s.inner().after(&from).next().unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        assert_eq!(
            CronSchedule::parse("0 9 * * lun").unwrap().to_string(),
            "0 9 * * lun",
            "shown as written"
        );
    }

    #[test]
    fn an_hour_written_9h_says_how_to_write_it() {
        let e = CronSchedule::parse("0 9h * * lundi").unwrap_err();
        assert_eq!(
            e,
            "invalid cron schedule \"0 9h * * lundi\": \"9h\" is not a cron field; write the \
             minute and the hour as numbers, each in its own field: \"30 9 * * lun\" is 9h30 on \
             Mondays (minute hour day month weekday)"
        );
        assert!(CronSchedule::parse("9h30 * * lun").is_err());
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let s = CronSchedule::parse("30 0 10 * * fri").unwrap();
        let from = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .unwrap();
        let next = s.inner().after(&from).next().unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-27T10:00:30+00:00");
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(CronSchedule::parse("0 10 * *").is_err());
        assert!(CronSchedule::parse("0 25 * * *").is_err());
        assert!(CronSchedule::parse("0 10 * * 8").is_err());
        assert!(CronSchedule::parse("every friday").is_err());
    }

    #[test]
    fn errors_are_one_line_in_crontab_terms() {
        let e = CronSchedule::parse("0 25 * * mon").unwrap_err();
        assert_eq!(
            e,
            "invalid cron schedule \"0 25 * * mon\": hour 25 is out of range 0-23"
        );
        let e = CronSchedule::parse("0 9 1 * vendredy").unwrap_err();
        assert_eq!(
            e,
            "invalid cron schedule \"0 9 1 * vendredy\": 'vendredy' is not a valid day of the week"
        );
        let e = CronSchedule::parse("0 9 0 * *").unwrap_err();
        assert!(e.ends_with("day of month 0 is out of range 1-31"), "{e}");
        for bad in ["0 10 * * fri,", "x 10 * * *", "0 10 * 13 *", "0 10 */0 * *"] {
            let e = CronSchedule::parse(bad).unwrap_err();
            assert!(!e.contains('\n') && !e.contains('^'), "{bad}: {e}");
        }
    }
}
