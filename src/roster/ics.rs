//! iCalendar (RFC 5545) export of a roster, for professionals and the bureau
//! to subscribe to (`GET /calendar/{roster}.ics`).
//!
//! Events are built with the `icalendar` crate (escaping, line folding,
//! CRLF). That crate has no VTIMEZONE component yet (its `Other` component
//! would add a DTSTAMP and a random UID to it), so the VTIMEZONE is written
//! here and placed before the first event. It is derived from the time zone
//! database for the years around the window: yearly rules (`RRULE`) when the
//! changes follow one (Europe/Paris: last Sunday of March and of October),
//! one observance per change otherwise, a single `STANDARD` for a zone
//! without daylight saving time (the overseas departments).
//!
//! Every occurrence is an event, covered or not: `[NON POURVU]` and
//! `[INCOMPLET n/m]` in the summary and `STATUS:TENTATIVE` mark the holes.
//! The UID is stable (`{roster}-{yyyymmdd}-{shift}@{host of public_url}`),
//! so a client updates an event when the assignees change. Names appear in
//! the description; e-mails and phone numbers never do.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc, Weekday,
};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use icalendar::{Calendar, CalendarDateTime, Component, EventLike, EventStatus, Property};

use super::{Assessed, assess};
use crate::config::{ConfigSet, Roster};

/// Days before today shown by [`ics_feed`].
pub const FEED_DAYS_BACK: u32 = 30;
/// Days from today shown by [`ics_feed`].
pub const FEED_DAYS_AHEAD: u32 = 90;

/// The calendar feed: [`to_ics`] from 30 days before `today` to 90 days
/// after it.
pub fn ics_feed(set: &ConfigSet, roster: &Roster, today: NaiveDate) -> String {
    let from = today - Duration::days(i64::from(FEED_DAYS_BACK));
    to_ics(set, roster, from, FEED_DAYS_BACK + FEED_DAYS_AHEAD)
}

/// The roster's occurrences starting on a day of `[from, from + days)` as an
/// iCalendar object (CRLF line ends, folded at 75 octets).
pub fn to_ics(set: &ConfigSet, roster: &Roster, from: NaiveDate, days: u32) -> String {
    to_ics_at(set, roster, from, days, Utc::now())
}

/// [`to_ics`] with the creation instant (`DTSTAMP`) given.
pub fn to_ics_at(
    set: &ConfigSet,
    roster: &Roster,
    from: NaiveDate,
    days: u32,
    now: DateTime<Utc>,
) -> String {
    let tz = set.daemon.timezone;
    let host = uid_host(&set.daemon.public_url);
    let mut cal = Calendar::empty();
    cal.append_property(Property::new("VERSION", "2.0"));
    cal.append_property(Property::new(
        "PRODID",
        format!("-//Vigie//Vigie {}//FR", env!("CARGO_PKG_VERSION")),
    ));
    cal.append_property(Property::new("CALSCALE", "GREGORIAN"));
    // NAME (RFC 7986) is not escaped by the crate; the X- properties are.
    cal.append_property(Property::new("NAME", escape_text(&roster.title)));
    cal.append_property(Property::new("X-WR-CALNAME", &roster.title));
    cal.append_property(Property::new(
        "X-WR-CALDESC",
        format!("{} — {}", roster.title, set.daemon.name),
    ));
    cal.append_property(Property::new("X-WR-TIMEZONE", tz.name()));
    cal.ttl(&Duration::hours(1));

    for a in assess(set, roster, from, days) {
        let o = &a.occ;
        let local = |t: DateTime<Utc>| CalendarDateTime::WithTimezone {
            date_time: t.with_timezone(&tz).naive_local(),
            tzid: tz.name().to_string(),
        };
        let mut ev = icalendar::Event::new();
        ev.uid(&format!(
            "{}-{}-{}@{host}",
            o.roster,
            o.date.format("%Y%m%d"),
            o.shift
        ))
        .timestamp(now)
        .starts(local(o.start))
        .ends(local(o.end))
        .summary(&summary(&a, &roster.title))
        .description(&description(&a, roster, set))
        .status(if a.is_short() {
            EventStatus::Tentative
        } else {
            EventStatus::Confirmed
        });
        cal.push(ev.done());
    }

    let text = cal.to_string();
    let first = from.year() - 1;
    let last = (from + Duration::days(i64::from(days))).year() + 1;
    let vtz = vtimezone(tz, first, last);
    let at = text
        .find("BEGIN:VEVENT\r\n")
        .or_else(|| text.find("END:VCALENDAR"))
        .unwrap_or(text.len());
    let mut out = String::with_capacity(text.len() + vtz.len());
    out.push_str(&text[..at]);
    out.push_str(&vtz);
    out.push_str(&text[at..]);
    refold(&out)
}

/// One professional's read-only calendar (their personal page's, SPEC
/// §15): their occurrences on every roster from 30 days before `today` to
/// 90 days after it, with the same stable UIDs as the roster feeds.
pub fn personal_ics(set: &ConfigSet, who: &str, today: NaiveDate, now: DateTime<Utc>) -> String {
    let tz = set.daemon.timezone;
    let host = uid_host(&set.daemon.public_url);
    let from = today - Duration::days(i64::from(FEED_DAYS_BACK));
    let days = FEED_DAYS_BACK + FEED_DAYS_AHEAD;
    let title = format!("Mes gardes — {}", set.daemon.name);
    let mut cal = Calendar::empty();
    cal.append_property(Property::new("VERSION", "2.0"));
    cal.append_property(Property::new(
        "PRODID",
        format!("-//Vigie//Vigie {}//FR", env!("CARGO_PKG_VERSION")),
    ));
    cal.append_property(Property::new("CALSCALE", "GREGORIAN"));
    cal.append_property(Property::new("NAME", escape_text(&title)));
    cal.append_property(Property::new("X-WR-CALNAME", &title));
    cal.append_property(Property::new("X-WR-TIMEZONE", tz.name()));
    cal.ttl(&Duration::hours(1));
    for o in super::swaps::shifts_of(set, who, from, days) {
        let roster_title = set
            .roster(&o.roster)
            .map(|r| r.title.as_str())
            .unwrap_or(&o.roster);
        let local = |t: DateTime<Utc>| CalendarDateTime::WithTimezone {
            date_time: t.with_timezone(&tz).naive_local(),
            tzid: tz.name().to_string(),
        };
        let mut ev = icalendar::Event::new();
        ev.uid(&format!(
            "{}-{}-{}@{host}",
            o.roster,
            o.date.format("%Y%m%d"),
            o.shift
        ))
        .timestamp(now)
        .starts(local(o.start))
        .ends(local(o.end))
        .summary(&format!("Garde {} — {}", o.shift, roster_title))
        .status(EventStatus::Confirmed);
        cal.push(ev.done());
    }
    let text = cal.to_string();
    let vtz = vtimezone(
        tz,
        from.year() - 1,
        (from + Duration::days(i64::from(days))).year() + 1,
    );
    let at = text
        .find("BEGIN:VEVENT\r\n")
        .or_else(|| text.find("END:VCALENDAR"))
        .unwrap_or(text.len());
    refold(&format!("{}{vtz}{}", &text[..at], &text[at..]))
}

/// Unfolds then folds every content line at 75 octets on character
/// boundaries (RFC 5545 §3.1). The crate folds too, but its last piece of a
/// long line can be 76 octets.
fn refold(text: &str) -> String {
    let mut logical: Vec<String> = Vec::new();
    for l in text.split("\r\n") {
        match (
            l.strip_prefix(' ').or_else(|| l.strip_prefix('\t')),
            logical.last_mut(),
        ) {
            (Some(rest), Some(prev)) => prev.push_str(rest),
            _ => logical.push(l.to_string()),
        }
    }
    let mut out = String::with_capacity(text.len() + text.len() / 64);
    for l in logical.iter().filter(|l| !l.is_empty()) {
        let mut limit = 75;
        let mut rest = l.as_str();
        while rest.len() > limit {
            let mut cut = limit;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&rest[..cut]);
            out.push_str("\r\n ");
            rest = &rest[cut..];
            limit = 74;
        }
        out.push_str(rest);
        out.push_str("\r\n");
    }
    out
}

fn summary(a: &Assessed<'_>, title: &str) -> String {
    let o = &a.occ;
    let counted = a.counted.len();
    let mark = if counted == 0 {
        "[NON POURVU] ".to_string()
    } else if a.is_short() {
        format!("[INCOMPLET {counted}/{}] ", o.need)
    } else {
        String::new()
    };
    format!("{mark}{} — {title}", o.shift)
}

fn description(a: &Assessed<'_>, roster: &Roster, set: &ConfigSet) -> String {
    let tz = set.daemon.timezone;
    let o = &a.occ;
    let s = o.start.with_timezone(&tz);
    let e = o.end.with_timezone(&tz);
    let holiday = o
        .holiday
        .as_ref()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    let mut d = format!("{} — {}\n", roster.title, set.daemon.name);
    if e.date_naive() > o.date {
        d.push_str(&format!(
            "Garde « {} » du {}{holiday} à {} au {} à {}.\n",
            o.shift,
            date_fr(o.date),
            time_fr(s.naive_local()),
            date_fr(e.date_naive()),
            time_fr(e.naive_local()),
        ));
    } else {
        d.push_str(&format!(
            "Garde « {} » du {}{holiday}, de {} à {}.\n",
            o.shift,
            date_fr(o.date),
            time_fr(s.naive_local()),
            time_fr(e.naive_local()),
        ));
    }
    let counted = a.counted.len() as u32;
    if counted > 0 {
        let names: Vec<String> = a
            .counted
            .iter()
            .map(|p| format!("{} ({})", p.name, p.commune))
            .collect();
        d.push_str(&format!("De garde : {}.\n", names.join(", ")));
    }
    if counted == 0 {
        d.push_str(&format!(
            "NON POURVU : personne n'est de garde (besoin : {}).\n",
            o.need
        ));
    } else if counted < o.need {
        let missing = o.need - counted;
        d.push_str(&format!(
            "INCOMPLET : {counted} sur {} ; il manque {missing} professionnel{}.\n",
            o.need,
            if missing > 1 { "s" } else { "" }
        ));
    }
    if !a.not_counted.is_empty() {
        let listed: Vec<String> = a
            .not_counted
            .iter()
            .map(|n| {
                let why: Vec<&str> = n.problems.iter().map(|(k, _)| k.describe_fr()).collect();
                format!(
                    "{} ({})",
                    n.professional.map(|p| p.name.as_str()).unwrap_or(&n.id),
                    why.join(", ")
                )
            })
            .collect();
        d.push_str(&format!(
            "Inscription à vérifier par le bureau : {}.\n",
            listed.join(" ; ")
        ));
    }
    d.trim_end().to_string()
}

/// RFC 5545 §3.3.11 escaping, for the properties the crate writes raw.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The host of `public_url`, the right-hand side of every UID.
fn uid_host(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(public_url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        "vigie.invalid".to_string()
    } else {
        host.to_ascii_lowercase()
    }
}

fn weekday_fr(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "lundi",
        Weekday::Tue => "mardi",
        Weekday::Wed => "mercredi",
        Weekday::Thu => "jeudi",
        Weekday::Fri => "vendredi",
        Weekday::Sat => "samedi",
        Weekday::Sun => "dimanche",
    }
}

const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `vendredi 25 décembre 2026`, `mardi 1er décembre 2026`.
pub fn date_fr(d: NaiveDate) -> String {
    let day = if d.day() == 1 {
        "1er".to_string()
    } else {
        d.day().to_string()
    };
    format!(
        "{} {day} {} {}",
        weekday_fr(d.weekday()),
        MONTHS_FR[d.month0() as usize],
        d.year()
    )
}

/// `20h00`.
fn time_fr(t: NaiveDateTime) -> String {
    t.format("%Hh%M").to_string()
}

// ------------------------------------------------------------------------------------------------
// VTIMEZONE
// ------------------------------------------------------------------------------------------------

/// A change of UTC offset.
#[derive(Clone, Debug)]
struct Transition {
    at: DateTime<Utc>,
    from: i32,
    to: i32,
    dst: bool,
    name: String,
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> (i32, bool, String) {
    let o = tz.offset_from_utc_datetime(&t.naive_utc());
    (
        o.fix().local_minus_utc(),
        !o.dst_offset().is_zero(),
        o.abbreviation().unwrap_or("").to_string(),
    )
}

/// Every offset change from 1 January of `first` to 31 December of `last`.
fn transitions(tz: Tz, first: i32, last: i32) -> Vec<Transition> {
    let start = Utc
        .with_ymd_and_hms(first, 1, 1, 0, 0, 0)
        .single()
        .expect("1 January exists");
    let end = Utc
        .with_ymd_and_hms(last + 1, 1, 1, 0, 0, 0)
        .single()
        .expect("1 January exists");
    let mut out = Vec::new();
    let mut t = start;
    let mut cur = offset_at(tz, t);
    while t < end {
        let next = t + Duration::hours(6);
        let n = offset_at(tz, next);
        if (n.0, n.1) != (cur.0, cur.1) {
            // Bisect to the second: `lo` has the old offset, `hi` the new.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if (offset_at(tz, mid).0, offset_at(tz, mid).1) == (cur.0, cur.1) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let after = offset_at(tz, hi);
            out.push(Transition {
                at: hi,
                from: cur.0,
                to: after.0,
                dst: after.1,
                name: after.2.clone(),
            });
            cur = after;
        }
        t = next;
    }
    out
}

/// `+0100`, `-0330`, `+051545`.
fn fmt_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{s:02}")
    }
}

/// The onset of a transition in local time before it (RFC 5545 §3.6.5).
fn onset(t: &Transition) -> NaiveDateTime {
    t.at.naive_utc() + Duration::seconds(i64::from(t.from))
}

/// `BYDAY` for a date that is always the same weekday of its month:
/// `-1SU` for the last Sunday, `2SU` for the second.
fn byday(dates: &[NaiveDate]) -> Option<String> {
    let w = dates.first()?.weekday();
    if dates.iter().any(|d| d.weekday() != w) {
        return None;
    }
    let code = &weekday_code(w);
    if dates
        .iter()
        .all(|d| (*d + Duration::days(7)).month() != d.month())
    {
        return Some(format!("-1{code}"));
    }
    let nth = |d: &NaiveDate| (d.day() - 1) / 7 + 1;
    let n = nth(&dates[0]);
    dates
        .iter()
        .all(|d| nth(d) == n)
        .then(|| format!("{n}{code}"))
}

fn weekday_code(w: Weekday) -> String {
    super::weekday_slug(w)[..2].to_ascii_uppercase()
}

/// The VTIMEZONE of `tz` valid from 1 January of `first` to the end of
/// `last` (CRLF lines; none is longer than 75 octets).
pub fn vtimezone(tz: Tz, first: i32, last: i32) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push_str("\r\n");
    };
    line("BEGIN:VTIMEZONE".into());
    line(format!("TZID:{}", tz.name()));
    let all = transitions(tz, first, last);
    let observance = |line: &mut dyn FnMut(String),
                      dst: bool,
                      start: NaiveDateTime,
                      from: i32,
                      to: i32,
                      name: &str,
                      rrule: Option<String>| {
        let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
        line(format!("BEGIN:{kind}"));
        line(format!("DTSTART:{}", start.format("%Y%m%dT%H%M%S")));
        if let Some(r) = rrule {
            line(format!("RRULE:{r}"));
        }
        line(format!("TZOFFSETFROM:{}", fmt_offset(from)));
        line(format!("TZOFFSETTO:{}", fmt_offset(to)));
        if !name.is_empty() {
            line(format!("TZNAME:{name}"));
        }
        line(format!("END:{kind}"));
    };

    if all.is_empty() {
        let t0 = Utc
            .with_ymd_and_hms(first, 1, 1, 0, 0, 0)
            .single()
            .expect("1 January exists");
        let (off, dst, name) = offset_at(tz, t0);
        let start = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date");
        observance(&mut line, dst, start, off, off, &name, None);
    } else {
        // Group the changes that look alike (same offsets, same month, same
        // local time of day, same weekday): a group with one change per
        // year up to `last` is a yearly rule.
        let mut groups: Vec<Vec<&Transition>> = Vec::new();
        for t in &all {
            let key = |x: &Transition| {
                (
                    x.dst,
                    x.from,
                    x.to,
                    x.name.clone(),
                    onset(x).month(),
                    onset(x).time(),
                    onset(x).weekday(),
                )
            };
            match groups.iter_mut().find(|g| key(g[0]) == key(t)) {
                Some(g) => g.push(t),
                None => groups.push(vec![t]),
            }
        }
        let mut singles: Vec<&Transition> = Vec::new();
        for g in &groups {
            let years: Vec<i32> = g.iter().map(|t| onset(t).year()).collect();
            let yearly = years.windows(2).all(|w| w[1] == w[0] + 1)
                && years.last() == Some(&last)
                && years.len() >= 2;
            let dates: Vec<NaiveDate> = g.iter().map(|t| onset(t).date()).collect();
            match (yearly, byday(&dates)) {
                (true, Some(day)) => {
                    let t = g[0];
                    observance(
                        &mut line,
                        t.dst,
                        onset(t),
                        t.from,
                        t.to,
                        &t.name,
                        Some(format!(
                            "FREQ=YEARLY;BYMONTH={};BYDAY={day}",
                            onset(t).month()
                        )),
                    );
                }
                _ => singles.extend(g.iter().copied()),
            }
        }
        singles.sort_by_key(|t| t.at);
        for t in singles {
            observance(&mut line, t.dst, onset(t), t.from, t.to, &t.name, None);
        }
    }
    line("END:VTIMEZONE".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unfold(s: &str) -> String {
        s.replace("\r\n ", "")
    }

    #[test]
    fn paris_has_two_yearly_rules_on_the_last_sundays() {
        let v = unfold(&vtimezone(chrono_tz::Europe::Paris, 2025, 2027));
        assert!(
            v.starts_with("BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"),
            "{v}"
        );
        assert!(v.contains(
            "BEGIN:DAYLIGHT\r\nDTSTART:20250330T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
             TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nEND:DAYLIGHT\r\n"
        ), "{v}");
        assert!(v.contains(
            "BEGIN:STANDARD\r\nDTSTART:20251026T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
             TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nEND:STANDARD\r\n"
        ), "{v}");
        assert_eq!(v.matches("BEGIN:DAYLIGHT").count(), 1);
        assert_eq!(v.matches("BEGIN:STANDARD").count(), 1);
    }

    #[test]
    fn new_york_rules_use_the_second_and_first_sundays() {
        let v = vtimezone(chrono_tz::America::New_York, 2025, 2027);
        assert!(v.contains("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"), "{v}");
        assert!(v.contains("RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU"), "{v}");
    }

    #[test]
    fn a_zone_without_daylight_saving_has_one_standard_observance() {
        let v = vtimezone(chrono_tz::Indian::Reunion, 2025, 2027);
        assert_eq!(
            v,
            "BEGIN:VTIMEZONE\r\nTZID:Indian/Reunion\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n\
             TZOFFSETFROM:+0400\r\nTZOFFSETTO:+0400\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        );
    }

    #[test]
    fn long_lines_are_folded_at_75_octets_without_splitting_a_character() {
        let long = format!("DESCRIPTION:{}", "é".repeat(100));
        let folded = refold(&format!("BEGIN:X\r\n{long}\r\nEND:X\r\n"));
        for l in folded.split("\r\n") {
            assert!(l.len() <= 75, "{l:?}");
        }
        assert_eq!(unfold(&folded), format!("BEGIN:X\r\n{long}\r\nEND:X\r\n"));
        assert_eq!(refold(&folded), folded, "folding twice changes nothing");
    }

    #[test]
    fn uid_host_is_the_host_of_the_public_url() {
        assert_eq!(uid_host("http://127.0.0.1:8640"), "127.0.0.1");
        assert_eq!(
            uid_host("https://Vigie.CPTS.example/x"),
            "vigie.cpts.example"
        );
        assert_eq!(uid_host("http://[::1]:80/"), "::1");
        assert_eq!(uid_host(""), "vigie.invalid");
    }

    #[test]
    fn french_dates_read_naturally() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert_eq!(date_fr(d(12, 25)), "vendredi 25 décembre 2026");
        assert_eq!(date_fr(d(12, 1)), "mardi 1er décembre 2026");
    }
}
