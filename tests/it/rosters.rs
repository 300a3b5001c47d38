//! On-call rosters: what a coordinator sees when checking coverage, the
//! calendar professionals subscribe to, and the spreadsheet import.
//!
//! The fixture set (`tests/fixtures/rosters/`) has a GPs' on-call roster and
//! a régulation roster; `vigie.toml` uses the Alsace-Moselle holidays,
//! `vigie-france.toml` the national ones, over the same files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use vigie::config::{self, ConfigSet, Roster};
use vigie::roster::{self, GapStatus, ProblemKind, RosterReport};

use crate::support::{copy_dir, repo, run_vigie};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn fixture(file: &str) -> PathBuf {
    repo().join("tests/fixtures/rosters/config").join(file)
}

const ALSACE: &str = "vigie.toml";
const FRANCE: &str = "vigie-france.toml";

fn load(config: &Path) -> ConfigSet {
    let loaded = config::load(config, |_| date(2026, 12, 1));
    let errors: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
    loaded
        .set
        .unwrap_or_else(|| panic!("{} refused:\n{}", config.display(), errors.join("\n")))
}

fn roster<'a>(set: &'a ConfigSet, id: &str) -> &'a Roster {
    set.roster(id).unwrap_or_else(|| panic!("no roster {id}"))
}

fn check(config: &str, id: &str, from: NaiveDate, days: u32) -> RosterReport {
    let set = load(&fixture(config));
    roster::check(&set, roster(&set, id), from, days)
}

/// `(date, shift, status, counted)` of every gap.
fn gaps(r: &RosterReport) -> Vec<(NaiveDate, &str, GapStatus, u32)> {
    r.gaps
        .iter()
        .map(|g| (g.slot.date, g.slot.shift.as_str(), g.status, g.counted))
        .collect()
}

/// `(date, shift, who, kind)` of every problem.
fn problems(r: &RosterReport) -> Vec<(NaiveDate, &str, &str, ProblemKind)> {
    r.problems
        .iter()
        .map(|p| (p.slot.date, p.slot.shift.as_str(), p.who.as_str(), p.kind))
        .collect()
}

/// A copy of the fixture set in a temporary directory, to edit.
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/rosters"), dir.path());
    dir
}

// ------------------------------------------------------------------------------------------------
// Holidays
// ------------------------------------------------------------------------------------------------

#[test]
fn at_christmas_in_alsace_moselle_saint_stephens_day_needs_a_holiday_shift() {
    let r = check(ALSACE, "garde-thann", date(2026, 12, 21), 7);

    assert_eq!(
        r.occurrences, 9,
        "4 evenings, Christmas day and evening, 26 day and night, 27"
    );
    assert_eq!(
        gaps(&r),
        vec![
            (date(2026, 12, 24), "soir", GapStatus::Uncovered, 0),
            (date(2026, 12, 26), "jour", GapStatus::Uncovered, 0),
            (date(2026, 12, 27), "jour", GapStatus::Understaffed, 1),
        ]
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(!r.is_covered());
    let holiday = |d: NaiveDate| {
        r.gaps
            .iter()
            .find(|g| g.slot.date == d)
            .and_then(|g| g.slot.holiday.clone())
    };
    assert_eq!(
        holiday(date(2026, 12, 24)),
        None,
        "Christmas Eve is a working day"
    );
    assert_eq!(
        holiday(date(2026, 12, 26)).as_deref(),
        Some("Saint-Étienne")
    );

    let set = load(&fixture(ALSACE));
    let occ = roster::occurrences(&set, roster(&set, "garde-thann"), date(2026, 12, 25), 1);
    let names: Vec<(&str, Option<&str>)> = occ
        .iter()
        .map(|o| (o.shift.as_str(), o.holiday.as_deref()))
        .collect();
    assert_eq!(names, vec![("jour", Some("Noël")), ("soir", Some("Noël"))]);
}

#[test]
fn at_christmas_in_the_rest_of_france_the_26th_is_an_ordinary_saturday() {
    let r = check(FRANCE, "garde-thann", date(2026, 12, 21), 7);

    assert_eq!(r.occurrences, 8, "no holiday shift on 26 December");
    assert_eq!(
        gaps(&r),
        vec![
            (date(2026, 12, 24), "soir", GapStatus::Uncovered, 0),
            (date(2026, 12, 27), "jour", GapStatus::Understaffed, 1),
        ]
    );
    let set = load(&fixture(FRANCE));
    let occ = roster::occurrences(&set, roster(&set, "garde-thann"), date(2026, 12, 26), 1);
    assert_eq!(occ.len(), 1);
    assert_eq!(
        (occ[0].shift.as_str(), occ[0].holiday.as_deref()),
        ("nuit", None)
    );
}

#[test]
fn good_friday_is_a_holiday_only_in_alsace_moselle_and_easter_monday_everywhere() {
    let am = check(ALSACE, "garde-thann", date(2026, 4, 3), 4);
    let fr = check(FRANCE, "garde-thann", date(2026, 4, 3), 4);

    assert_eq!(am.occurrences, 6);
    assert_eq!(
        gaps(&am),
        vec![(date(2026, 4, 3), "jour", GapStatus::Uncovered, 0)]
    );
    assert_eq!(am.gaps[0].slot.holiday.as_deref(), Some("Vendredi saint"));

    assert_eq!(fr.occurrences, 5, "no day shift on Good Friday");
    assert!(fr.is_covered(), "{}", fr.to_text());

    for set in [load(&fixture(ALSACE)), load(&fixture(FRANCE))] {
        let occ = roster::occurrences(&set, roster(&set, "garde-thann"), date(2026, 4, 6), 1);
        let monday: Vec<(&str, Option<&str>, usize)> = occ
            .iter()
            .map(|o| (o.shift.as_str(), o.holiday.as_deref(), o.assignees.len()))
            .collect();
        assert_eq!(
            monday,
            vec![
                ("jour", Some("Lundi de Pâques"), 2),
                ("soir", Some("Lundi de Pâques"), 1)
            ]
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Time: midnight and daylight saving time
// ------------------------------------------------------------------------------------------------

#[test]
fn a_shift_ending_at_midnight_or_at_eight_ends_the_next_day() {
    let set = load(&fixture(ALSACE));
    let occ = roster::occurrences(&set, roster(&set, "garde-thann"), date(2026, 12, 25), 2);

    let evening = occ.iter().find(|o| o.shift == "soir").unwrap();
    assert_eq!(evening.date, date(2026, 12, 25));
    assert_eq!(evening.start, utc(2026, 12, 25, 19, 0), "20:00 CET");
    assert_eq!(
        evening.end,
        utc(2026, 12, 25, 23, 0),
        "midnight CET, 26 December"
    );
    assert_eq!(evening.duration(), Duration::hours(4));

    let night = occ.iter().find(|o| o.shift == "nuit").unwrap();
    assert_eq!(night.date, date(2026, 12, 26));
    assert_eq!(night.end, utc(2026, 12, 27, 7, 0), "08:00 CET on Sunday");
    assert_eq!(night.duration(), Duration::hours(12));

    let r = check(ALSACE, "garde-thann", date(2026, 12, 26), 1);
    let text = r.to_text();
    assert!(!text.contains("nuit"), "the night is covered: {text}");
    let r = check(FRANCE, "garde-thann", date(2026, 11, 21), 1);
    assert!(
        r.to_text().contains(
            "samedi 21 novembre 2026, garde « nuit » 20:00–08:00 (le lendemain) : PERSONNE"
        ),
        "{}",
        r.to_text()
    );
    assert!(r.gaps[0].slot.ends_next_day);
}

#[test]
fn night_shifts_across_the_clock_changes_last_11_hours_in_march_and_13_in_october() {
    let set = load(&fixture(ALSACE));
    let garde = roster(&set, "garde-thann");

    let march = roster::occurrences(&set, garde, date(2026, 3, 28), 1);
    assert_eq!(march.len(), 1);
    assert_eq!(march[0].start, utc(2026, 3, 28, 19, 0), "20:00 CET");
    assert_eq!(march[0].end, utc(2026, 3, 29, 6, 0), "08:00 CEST");
    assert_eq!(march[0].duration(), Duration::hours(11));
    assert_eq!(march[0].assignees, vec!["cmartin"]);

    let october = roster::occurrences(&set, garde, date(2026, 10, 24), 1);
    assert_eq!(october[0].start, utc(2026, 10, 24, 18, 0), "20:00 CEST");
    assert_eq!(october[0].end, utc(2026, 10, 25, 7, 0), "08:00 CET");
    assert_eq!(october[0].duration(), Duration::hours(13));

    // An ordinary night lasts 12 hours.
    let ordinary = roster::occurrences(&set, garde, date(2026, 3, 21), 1);
    assert_eq!(ordinary[0].duration(), Duration::hours(12));

    // The report gives wall-clock times, not the UTC ones.
    let r = roster::check(&set, garde, date(2026, 10, 17), 1);
    assert_eq!(
        (
            r.gaps[0].slot.local_start.as_str(),
            r.gaps[0].slot.local_end.as_str()
        ),
        ("20:00", "08:00")
    );
    assert!(roster::check(&set, garde, date(2026, 3, 28), 1).is_covered());
    assert!(roster::check(&set, garde, date(2026, 10, 24), 1).is_covered());
}

// ------------------------------------------------------------------------------------------------
// Assignees
// ------------------------------------------------------------------------------------------------

#[test]
fn someone_on_two_rosters_at_once_is_reported_on_both_and_counted_on_neither() {
    let garde = check(ALSACE, "garde-thann", date(2026, 12, 14), 1);
    let regulation = check(ALSACE, "regulation-15", date(2026, 12, 14), 1);

    assert_eq!(
        problems(&garde),
        vec![(
            date(2026, 12, 14),
            "soir",
            "cmartin",
            ProblemKind::DoubleBooked
        )]
    );
    let conflict = garde.problems[0].conflict.as_ref().unwrap();
    assert_eq!(
        (
            conflict.roster.as_str(),
            conflict.shift.as_str(),
            conflict.date
        ),
        ("regulation-15", "premiere", date(2026, 12, 14))
    );
    assert_eq!(
        gaps(&garde),
        vec![(date(2026, 12, 14), "soir", GapStatus::Uncovered, 0)]
    );
    assert_eq!(garde.gaps[0].not_counted[0].id, "cmartin");

    assert_eq!(
        problems(&regulation),
        vec![(
            date(2026, 12, 14),
            "premiere",
            "cmartin",
            ProblemKind::DoubleBooked
        )]
    );
    assert_eq!(
        regulation.problems[0].conflict.as_ref().unwrap().roster,
        "garde-thann"
    );
    assert!(
        regulation.to_text().contains(
            "Claire Martin (cmartin) : aussi de garde sur le planning garde-thann, garde « soir »"
        ),
        "{}",
        regulation.to_text()
    );
}

#[test]
fn overlapping_shifts_of_one_roster_are_a_double_booking_but_back_to_back_shifts_are_not() {
    let r = check(ALSACE, "regulation-15", date(2026, 12, 15), 1);
    assert_eq!(
        problems(&r),
        vec![
            (
                date(2026, 12, 15),
                "premiere",
                "pmeyer",
                ProblemKind::DoubleBooked
            ),
            (
                date(2026, 12, 15),
                "seconde",
                "pmeyer",
                ProblemKind::DoubleBooked
            ),
        ]
    );
    assert!(
        r.to_text().contains("aussi de garde sur ce planning"),
        "{}",
        r.to_text()
    );

    // Claire Martin works Christmas Day 08:00–20:00, then the evening 20:00–00:00.
    let christmas = check(ALSACE, "garde-thann", date(2026, 12, 25), 1);
    assert!(christmas.is_covered(), "{}", christmas.to_text());
}

#[test]
fn unknown_inactive_ineligible_and_unreachable_assignees_do_not_count() {
    let r = check(ALSACE, "garde-thann", date(2026, 11, 16), 5);

    assert_eq!(
        problems(&r),
        vec![
            (date(2026, 11, 16), "soir", "jdoe", ProblemKind::Unknown),
            (date(2026, 11, 17), "soir", "gwetzel", ProblemKind::Inactive),
            (
                date(2026, 11, 18),
                "soir",
                "hfuchs",
                ProblemKind::NotEligible
            ),
            (date(2026, 11, 19), "soir", "lbrun", ProblemKind::NoContact),
        ]
    );
    assert_eq!(r.gaps.len(), 4, "only Pierre Meyer on the 20th counts");
    assert!(r.gaps.iter().all(|g| g.status == GapStatus::Uncovered));
    assert_eq!(r.problems[0].name, None);
    assert_eq!(r.problems[1].name.as_deref(), Some("Gérard Wetzel"));

    let text = r.to_text();
    for line in [
        "INCOMPLET : 4 gardes à pourvoir, 4 inscriptions à revoir.",
        "lundi 16 novembre 2026, garde « soir » 20:00–00:00 : `jdoe` : absent de l'annuaire",
        "mardi 17 novembre 2026, garde « soir » 20:00–00:00 : Gérard Wetzel (gwetzel) : inactif dans l'annuaire",
        "mercredi 18 novembre 2026, garde « soir » 20:00–00:00 : Hélène Fuchs (hfuchs) : non éligible pour ce planning (pharmacien)",
        "jeudi 19 novembre 2026, garde « soir » 20:00–00:00 : Luc Brun (lbrun) : sans e-mail ni téléphone",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("vendredi 20 novembre 2026, garde « soir »"),
        "{text}"
    );
}

#[test]
fn an_e_mail_alone_or_a_phone_alone_is_a_usable_contact() {
    // Thomas Ehrhart has only an e-mail, Anne Schmitt only a phone.
    let r = check(ALSACE, "garde-thann", date(2026, 4, 6), 1);
    assert!(r.is_covered(), "{}", r.to_text());
}

// ------------------------------------------------------------------------------------------------
// The real binary
// ------------------------------------------------------------------------------------------------

fn vigie_check(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["roster", "check"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-c", config.to_str().unwrap()]);
    run_vigie(&all)
}

#[test]
fn roster_check_exits_0_when_covered_1_when_not_and_2_on_bad_input() {
    let am = fixture(ALSACE);

    let (code, out, err) =
        vigie_check(&am, &["garde-thann", "--from", "2026-04-04", "--days", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("COMPLET : chaque garde a assez d'inscrits"),
        "{out}"
    );

    let (code, out, _) = vigie_check(&am, &["garde-thann", "--from", "2026-12-21", "--days", "7"]);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "samedi 26 décembre 2026 (Saint-Étienne), garde « jour » 08:00–20:00 : PERSONNE, aucun inscrit (2 requis)"
        ),
        "{out}"
    );
    assert!(
        out.contains("dimanche 27 décembre 2026, garde « jour » 08:00–20:00 : incomplète, 1 sur 2 requis : Thomas Ehrhart (tehrhart) ; il en manque 1"),
        "{out}"
    );

    let (code, out, _) = vigie_check(
        &fixture(FRANCE),
        &["garde-thann", "--from", "2026-04-03", "--days", "4"],
    );
    assert_eq!(
        code, 0,
        "Good Friday is not a holiday in the rest of France: {out}"
    );

    let (code, _, err) = vigie_check(&am, &["pdsa-nowhere", "--from", "2026-04-04"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown roster `pdsa-nowhere` (rosters: garde-thann, regulation-15)"),
        "{err}"
    );

    let (code, _, _) = vigie_check(&am, &["garde-thann", "--days", "0"]);
    assert_eq!(code, 2, "zero days is refused");
    let (code, _, _) = vigie_check(&am, &["garde-thann", "--from", "2026-02-30"]);
    assert_eq!(code, 2, "an impossible date is refused");

    let sb = sandbox();
    let roster_file = sb.path().join("config/rosters/garde-thann.toml");
    let text = std::fs::read_to_string(&roster_file).unwrap();
    std::fs::write(&roster_file, text.replacen("need = 2", "need = 0", 1)).unwrap();
    let (code, out, err) = vigie_check(&sb.path().join("config/vigie.toml"), &["garde-thann"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("garde-thann.toml:") && err.contains("`need` must be at least 1"),
        "{err}"
    );
}

#[test]
fn roster_check_starts_today_in_the_daemon_time_zone_by_default() {
    // A fixed start: 14 days by default, and the one exit code of that
    // fortnight (the evening of 16 November is uncovered).
    let (code, out, err) = vigie_check(&fixture(ALSACE), &["garde-thann", "--from", "2026-11-16"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "Du lundi 16 novembre 2026 au dimanche 29 novembre 2026 (14 jours, heure de Paris)"
        ),
        "{out}"
    );

    // Without --from: exactly the report of `--from <today in Paris>`, exit
    // code included (run again if midnight passed in between).
    let paris_today = || {
        Utc::now()
            .with_timezone(&chrono_tz::Europe::Paris)
            .date_naive()
    };
    for _ in 0..3 {
        let today = paris_today();
        let default = vigie_check(&fixture(ALSACE), &["garde-thann"]);
        let explicit = vigie_check(
            &fixture(ALSACE),
            &["garde-thann", "--from", &today.to_string()],
        );
        if paris_today() != today {
            continue;
        }
        assert_eq!(default, explicit, "no --from is --from {today}");
        assert!(
            default
                .1
                .contains(&format!("Du {} au ", roster::ics::date_fr(today)))
                && default.1.contains("(14 jours, heure de Paris)"),
            "{}",
            default.1
        );
        return;
    }
    panic!("the day changed during every attempt");
}

#[test]
fn roster_check_json_parses_back_into_the_report() {
    let (code, out, err) = vigie_check(
        &fixture(ALSACE),
        &[
            "garde-thann",
            "--from",
            "2026-11-16",
            "--days",
            "5",
            "--json",
        ],
    );
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["roster"], "garde-thann");
    assert_eq!(v["covered"], false);
    assert_eq!(v["from"], "2026-11-16");
    assert_eq!(v["until"], "2026-11-20");
    assert_eq!(v["gaps"][0]["status"], "uncovered");
    assert_eq!(v["gaps"][0]["local_start"], "20:00");
    assert_eq!(v["gaps"][0]["start"], "2026-11-16T19:00:00Z");
    assert_eq!(v["problems"][2]["kind"], "not_eligible");
    assert_eq!(v["problems"][2]["who"], "hfuchs");

    let report: RosterReport = serde_json::from_str(&out).expect("a RosterReport");
    assert_eq!(report, check(ALSACE, "garde-thann", date(2026, 11, 16), 5));

    // Without an id: every roster, as an array; the holiday names stay French.
    let (code, out, _) = vigie_check(
        &fixture(ALSACE),
        &["--from", "2026-12-26", "--days", "1", "--json"],
    );
    assert_eq!(code, 1);
    let all: Vec<RosterReport> = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.roster.as_str()).collect();
    assert_eq!(ids, vec!["garde-thann", "regulation-15"]);
    assert_eq!(
        all[0].gaps[0].slot.holiday.as_deref(),
        Some("Saint-Étienne")
    );
    assert!(out.contains("\"holiday\": \"Saint-Étienne\""), "{out}");
}

#[test]
fn the_shipped_pdsa_roster_misses_exactly_the_five_december_shifts_its_comments_name() {
    let config = repo().join("config/vigie.toml");
    let (code, out, err) = vigie_check(
        &config,
        &[
            "pdsa-thann",
            "--from",
            "2026-12-01",
            "--days",
            "31",
            "--json",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    let r: RosterReport = serde_json::from_str(&out).unwrap();
    assert_eq!(
        gaps(&r),
        vec![
            (date(2026, 12, 5), "samedi", GapStatus::Uncovered, 0),
            (date(2026, 12, 24), "soir", GapStatus::Uncovered, 0),
            (date(2026, 12, 25), "soir", GapStatus::Uncovered, 0),
            (date(2026, 12, 26), "samedi", GapStatus::Uncovered, 0),
            (date(2026, 12, 31), "soir", GapStatus::Uncovered, 0),
        ]
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.gaps[2].slot.holiday.as_deref(), Some("Noël"));
    assert_eq!(r.gaps[3].slot.holiday.as_deref(), Some("Saint-Étienne"));

    let (code, text, _) = vigie_check(
        &config,
        &["pdsa-thann", "--from", "2026-12-01", "--days", "31"],
    );
    assert_eq!(code, 1);
    assert!(
        text.contains("INCOMPLET : 5 gardes à pourvoir, aucune inscription à revoir."),
        "{text}"
    );
}

// ------------------------------------------------------------------------------------------------
// iCalendar
// ------------------------------------------------------------------------------------------------

/// The content lines of an iCalendar text, unfolded (RFC 5545 §3.1).
fn unfolded_lines(ics: &str) -> Vec<String> {
    ics.replace("\r\n ", "")
        .replace("\r\n\t", "")
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn ics(config: &str, id: &str, from: NaiveDate, days: u32) -> String {
    let set = load(&fixture(config));
    roster::to_ics(&set, roster(&set, id), from, days)
}

#[test]
fn the_calendar_has_a_paris_time_zone_one_event_per_shift_and_marks_the_holes() {
    let text = ics(ALSACE, "garde-thann", date(2026, 12, 21), 7);

    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    for l in text.split("\r\n") {
        assert!(l.len() <= 75, "not folded at 75 octets: {l:?}");
    }
    let lines = unfolded_lines(&text);
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert!(has("VERSION:2.0"));
    assert!(has("BEGIN:VTIMEZONE"));
    assert!(has("TZID:Europe/Paris"));
    assert!(has("RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"));
    assert!(has("RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU"));
    let vtz = lines.iter().position(|l| l == "BEGIN:VTIMEZONE").unwrap();
    let first_event = lines.iter().position(|l| l == "BEGIN:VEVENT").unwrap();
    assert!(vtz < first_event, "the time zone comes before the events");
    assert_eq!(lines.iter().filter(|l| *l == "BEGIN:VEVENT").count(), 9);

    assert!(has("DTSTART;TZID=Europe/Paris:20261225T080000"));
    assert!(has("DTEND;TZID=Europe/Paris:20261225T200000"));
    assert!(has("DTSTART;TZID=Europe/Paris:20261225T200000"));
    assert!(has("DTEND;TZID=Europe/Paris:20261226T000000"));
    assert!(has("UID:garde-thann-20261225-jour@vigie.cpts-test.example"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("DTSTAMP:") && l.ends_with('Z'))
    );

    // Parsed back with the icalendar crate.
    let unfolded = icalendar::parser::unfold(&text);
    let parsed = icalendar::parser::read_calendar(&unfolded).unwrap();
    let tz: Vec<_> = parsed
        .components
        .iter()
        .filter(|c| c.name == "VTIMEZONE")
        .collect();
    assert_eq!(tz.len(), 1);
    let events: Vec<_> = parsed
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .collect();
    assert_eq!(events.len(), 9);
    let prop = |c: &icalendar::parser::Component<'_>, name: &str| {
        c.find_prop(name)
            .map(|p| p.val.to_string())
            .unwrap_or_default()
    };
    let by_uid = |uid: &str| {
        events
            .iter()
            .find(|e| prop(e, "UID") == format!("{uid}@vigie.cpts-test.example"))
            .unwrap_or_else(|| panic!("no event {uid}"))
    };

    let christmas = by_uid("garde-thann-20261225-jour");
    assert_eq!(
        prop(christmas, "SUMMARY"),
        "jour — Permanence des soins — secteur de Thann"
    );
    let description = prop(christmas, "DESCRIPTION");
    assert!(
        description
            .contains("Garde « jour » du vendredi 25 décembre 2026 (Noël), de 08h00 à 20h00."),
        "{description}"
    );
    assert!(
        description.contains("De garde : Pierre Meyer (Thann), Claire Martin (Thann)."),
        "{description}"
    );
    assert_eq!(prop(christmas, "STATUS"), "CONFIRMED");

    let eve = by_uid("garde-thann-20261224-soir");
    assert_eq!(
        prop(eve, "SUMMARY"),
        "[NON POURVU] soir — Permanence des soins — secteur de Thann"
    );
    assert_eq!(prop(eve, "STATUS"), "TENTATIVE");
    assert!(
        prop(eve, "DESCRIPTION").contains("NON POURVU : personne n'est de garde (besoin : 1).")
    );

    let stephen = by_uid("garde-thann-20261226-jour");
    assert!(prop(stephen, "SUMMARY").starts_with("[NON POURVU] jour"));
    assert!(prop(stephen, "DESCRIPTION").contains("samedi 26 décembre 2026 (Saint-Étienne)"));

    let sunday = by_uid("garde-thann-20261227-jour");
    assert!(
        prop(sunday, "SUMMARY").starts_with("[INCOMPLET 1/2] jour"),
        "{}",
        prop(sunday, "SUMMARY")
    );
    assert!(prop(sunday, "DESCRIPTION").contains("il manque 1 professionnel."));

    // No e-mail or phone number leaks into the feed.
    assert!(
        !text.contains("example.org") && !text.contains("+336"),
        "{text}"
    );

    // The same window in the rest of France: no event on St Stephen's Day.
    let fr = ics(FRANCE, "garde-thann", date(2026, 12, 21), 7);
    assert_eq!(fr.matches("BEGIN:VEVENT").count(), 8);
    assert!(!fr.contains("garde-thann-20261226-jour"));
}

#[test]
fn calendar_events_across_the_clock_changes_keep_their_wall_times() {
    let march = unfolded_lines(&ics(ALSACE, "garde-thann", date(2026, 3, 28), 1));
    assert!(march.contains(&"DTSTART;TZID=Europe/Paris:20260328T200000".to_string()));
    assert!(march.contains(&"DTEND;TZID=Europe/Paris:20260329T080000".to_string()));
    let october = unfolded_lines(&ics(ALSACE, "garde-thann", date(2026, 10, 24), 1));
    assert!(october.contains(&"DTSTART;TZID=Europe/Paris:20261024T200000".to_string()));
    assert!(october.contains(&"DTEND;TZID=Europe/Paris:20261025T080000".to_string()));
    assert!(october.contains(&"TZOFFSETFROM:+0200".to_string()));
    assert!(october.contains(&"TZOFFSETTO:+0100".to_string()));
    let description: String = october
        .iter()
        .find(|l| l.starts_with("DESCRIPTION"))
        .unwrap()
        .clone();
    assert!(
        description.contains(
            "Garde « nuit » du samedi 24 octobre 2026 à 20h00 au dimanche 25 octobre 2026 à 08h00."
        ),
        "{description}"
    );
}

#[test]
fn calendar_uids_are_stable_from_one_export_to_the_next() {
    let uids = |text: &str| -> Vec<String> {
        unfolded_lines(text)
            .into_iter()
            .filter(|l| l.starts_with("UID:"))
            .collect()
    };
    let a = uids(&ics(ALSACE, "garde-thann", date(2026, 12, 21), 7));
    let b = uids(&ics(ALSACE, "garde-thann", date(2026, 12, 21), 7));
    assert_eq!(a.len(), 9);
    assert_eq!(a, b);
    let set = load(&fixture(ALSACE));
    let feed = roster::ics_feed(&set, roster(&set, "garde-thann"), date(2026, 12, 21));
    let feed_uids = uids(&feed);
    assert!(
        a.iter().all(|u| feed_uids.contains(u)),
        "the feed holds the same events"
    );
    assert!(feed.contains("garde-thann-20261121-nuit@"), "30 days back");
    assert!(feed.contains("garde-thann-20270320-nuit@"), "90 days ahead");
    assert!(!feed.contains("garde-thann-20270321-jour@"), "not 91");
}

// ------------------------------------------------------------------------------------------------
// CSV import
// ------------------------------------------------------------------------------------------------

/// `vigie roster import-csv ROSTER CSV -c CONFIG`: (exit code, stdout, stderr).
fn import_csv(
    roster: &str,
    csv: &std::path::Path,
    config: &std::path::Path,
) -> (i32, String, String) {
    run_vigie(&[
        "roster",
        "import-csv",
        roster,
        csv.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
    ])
}

#[test]
fn assignments_imported_from_a_spreadsheet_cover_the_holes_once_appended() {
    let sb = sandbox();
    let config = sb.path().join("config/vigie.toml");
    let csv = sb.path().join("noel.csv");
    std::fs::write(
        &csv,
        "\u{feff}date,shift,who\n\
         24/12/2026,soir,aschmitt\n\
         2026-12-26,jour,\"cmartin; Thomas EHRHART\"\n\
         2026-12-27,jour,pmeyer\n\
         2026-12-31,soir,\n",
    )
    .unwrap();

    let (code, toml_text, err) = import_csv("garde-thann", &csv, &config);
    assert_eq!(code, 0, "{err}");
    assert!(
        toml_text.contains(
            "[[assignment]]\ndate = 2026-12-26      # Saturday\nshift = \"jour\"\nwho = [\"cmartin\", \"tehrhart\"]\n"
        ),
        "{toml_text}"
    );
    assert_eq!(
        toml_text.matches("[[assignment]]").count(),
        3,
        "the empty row is a hole"
    );
    assert!(
        err.contains("noel.csv:4:1: warning: 2026-12-27 jour is already assigned"),
        "{err}"
    );

    let roster_file = sb.path().join("config/rosters/garde-thann.toml");
    let mut text = std::fs::read_to_string(&roster_file).unwrap();
    text.push('\n');
    text.push_str(&toml_text);
    std::fs::write(&roster_file, text).unwrap();

    let (code, out, err) = vigie_check(
        &config,
        &["garde-thann", "--from", "2026-12-21", "--days", "7"],
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_spreadsheet_saved_with_semicolons_and_crlf_is_read_the_same() {
    let sb = sandbox();
    let config = sb.path().join("config/vigie.toml");
    let csv = sb.path().join("noel.csv");
    std::fs::write(
        &csv,
        "\u{feff}date;shift;who\r\n\
         24/12/2026;soir;aschmitt\r\n\
         2026-12-26;jour;\"cmartin; Thomas EHRHART\"\r\n\
         2026-12-27;jour;pmeyer\r\n\
         2026-12-28;jour;personne\r\n",
    )
    .unwrap();
    let (code, toml_text, err) = import_csv("garde-thann", &csv, &config);
    assert_eq!(code, 2, "the unknown person is refused: {toml_text}{err}");
    assert!(
        err.contains("noel.csv:5:17: "),
        "the row and column of the unknown person, after CRLF lines: {err}"
    );
    assert!(
        err.contains("noel.csv:4:1: warning: 2026-12-27 jour is already assigned"),
        "{err}"
    );
}

#[test]
fn a_bad_spreadsheet_is_refused_with_file_line_and_column_and_exit_2() {
    let sb = sandbox();
    let config = sb.path().join("config/vigie.toml");
    let csv = sb.path().join("bad.csv");
    std::fs::write(
        &csv,
        "date,shift,who\n\
         2026-12-24,soir,cmartin\n\
         2026-13-01,soir,cmartin\n\
         2026-12-24,matin,cmartin\n\
         2026-12-24,jour,cmartin\n\
         2026-12-22,soir,nobody\n\
         2026-12-24,soir,pmeyer\n\
         2026-12-23,soir,hfuchs\n",
    )
    .unwrap();
    let (code, out, err) = import_csv("garde-thann", &csv, &config);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "nothing to append: {out}");
    let bad = csv.display().to_string();
    for expected in [
        format!("{bad}:3:1: invalid date \"2026-13-01\""),
        format!(
            "{bad}:4:12: unknown shift \"matin\" (shifts of roster garde-thann: soir, nuit, jour)"
        ),
        format!(
            "{bad}:5:1: shift `jour` does not occur on 2026-12-24 (a Thu, not a public holiday)"
        ),
        format!("{bad}:6:17: unknown professional \"nobody\""),
        format!("{bad}:7:1: 2026-12-24 soir is already on line 2 of this file"),
        format!("{bad}:8:17: warning: `hfuchs` is not eligible for roster garde-thann"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("5 errors in"), "{err}");

    let (code, _, err) = import_csv("nowhere", &csv, &config);
    assert_eq!(code, 2);
    assert!(err.contains("unknown roster `nowhere`"), "{err}");

    std::fs::write(&csv, "jour;garde;qui\n").unwrap();
    let (code, _, err) = import_csv("garde-thann", &csv, &config);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "{bad}:1:1: the header must name the columns date, shift and who"
        )),
        "{err}"
    );
}

// ------------------------------------------------------------------------------------------------
// Seasons
// ------------------------------------------------------------------------------------------------

/// A winter roster of a ski station: weekend days from December to April,
/// a Saturday night only in the high season.
const WINTER: &str = r#"
[roster]
id = "station-hiver"
title = "Permanence de station — hiver"
eligible = { professions = ["medecin"], tags = ["pdsa"] }
season = "12-01..04-30"

[[roster.shift]]
name = "journee"
days = ["sat", "sun"]
start = "09:00"
end = "19:00"

[[roster.shift]]
name = "nuit"
days = ["sat"]
season = "12-20..03-31"
start = "19:00"
end = "08:00"

[[assignment]]
date = 2027-01-09
shift = "journee"
who = ["jblanc"]

[[assignment]]
date = 2027-01-09
shift = "nuit"
who = ["tehrhart"]

[[assignment]]
date = 2026-12-05
shift = "journee"
who = ["jblanc"]
"#;

/// A doctor of the station, there from mid-December to mid-April.
const SEASONAL_DOCTOR: &str = r#"
[[professional]]
id = "jblanc"
name = "Julie Blanc"
profession = "medecin"
commune = "Le Markstein"
email = "julie.blanc@example.org"
tags = ["pdsa"]
season = "12-15..04-15"
"#;

/// The roster sandbox with the winter roster and the seasonal doctor.
fn winter_sandbox() -> tempfile::TempDir {
    let sb = sandbox();
    let config = sb.path().join("config");
    std::fs::write(config.join("rosters/station-hiver.toml"), WINTER).unwrap();
    let mut dir = std::fs::read_to_string(config.join("directory.toml")).unwrap();
    dir.push_str(SEASONAL_DOCTOR);
    std::fs::write(config.join("directory.toml"), dir).unwrap();
    sb
}

#[test]
fn a_winter_roster_has_no_summer_weekend_to_cover_but_reports_a_january_one() {
    let sb = winter_sandbox();
    let set = load(&sb.path().join("config/vigie.toml"));
    let r = roster(&set, "station-hiver");

    let summer = roster::check(&set, r, date(2027, 6, 1), 92);
    assert_eq!(summer.occurrences, 0, "{}", summer.to_text());
    assert!(summer.is_covered(), "{}", summer.to_text());
    // The report says why there is nothing to check, rather than "COMPLET".
    assert!(
        summer.to_text().ends_with(
            "HORS SAISON : le planning n'a aucune garde sur ces dates (saison 12-01..04-30).\n"
        ),
        "{}",
        summer.to_text()
    );

    // 9–10 January: the Saturday is covered, day and night; the Sunday not.
    let january = roster::check(&set, r, date(2027, 1, 9), 2);
    assert_eq!(january.occurrences, 3, "{}", january.to_text());
    assert_eq!(
        gaps(&january),
        [(date(2027, 1, 10), "journee", GapStatus::Uncovered, 0)]
    );

    // Early December: the days run, the high-season night does not yet.
    let december: Vec<(NaiveDate, &str)> = roster::occurrences(&set, r, date(2026, 12, 12), 15)
        .iter()
        .map(|o| (o.date, if o.shift == "nuit" { "nuit" } else { "journee" }))
        .collect();
    assert_eq!(
        december,
        [
            (date(2026, 12, 12), "journee"),
            (date(2026, 12, 13), "journee"),
            (date(2026, 12, 19), "journee"),
            (date(2026, 12, 20), "journee"),
            (date(2026, 12, 26), "journee"),
            (date(2026, 12, 26), "nuit"),
        ],
        "the night starts on 20 December: the 19th's is before it"
    );
}

#[test]
fn a_seasonal_doctor_assigned_before_their_season_is_reported_absent_in_french() {
    let sb = winter_sandbox();
    let config = sb.path().join("config/vigie.toml");
    let set = load(&config);
    let r = roster::check(&set, roster(&set, "station-hiver"), date(2026, 12, 5), 1);
    assert_eq!(
        problems(&r),
        [(date(2026, 12, 5), "journee", "jblanc", ProblemKind::Absent)]
    );
    assert_eq!(
        r.problems[0].message,
        "Julie Blanc (jblanc) : absent à cette date (saison 12-15..04-15)"
    );
    assert_eq!(
        gaps(&r),
        [(date(2026, 12, 5), "journee", GapStatus::Uncovered, 0)]
    );

    // The real command, in French, times in the daemon's time zone.
    let (code, out, err) = vigie_check(
        &config,
        &["station-hiver", "--from", "2026-12-05", "--days", "1"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out,
        "Planning station-hiver — Permanence de station — hiver\n\
         Du samedi 5 décembre 2026 au samedi 5 décembre 2026 (1 jour, heure de Paris) : 1 garde vérifiée\n\
         INCOMPLET : 1 garde à pourvoir, 1 inscription à revoir.\n\
         \n\
         Gardes à pourvoir :\n  \
         samedi 5 décembre 2026, garde « journee » 09:00–19:00 : PERSONNE, aucun inscrit valable sur 1 requis ; non comptés : Julie Blanc (jblanc)\n\
         \n\
         Inscriptions à revoir :\n  \
         samedi 5 décembre 2026, garde « journee » 09:00–19:00 : Julie Blanc (jblanc) : absent à cette date (saison 12-15..04-15)\n"
    );
    // The JSON keeps its keys; the kind is a new value.
    let (_, json, _) = vigie_check(
        &config,
        &[
            "station-hiver",
            "--from",
            "2026-12-05",
            "--days",
            "1",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["problems"][0]["kind"], "absent");
    assert_eq!(v["gaps"][0]["status"], "uncovered");

    // In season (January) she counts.
    let r = roster::check(&set, roster(&set, "station-hiver"), date(2027, 1, 9), 1);
    assert!(r.is_covered(), "{}", r.to_text());

    // `vigie check` says it too, at the assignment (a warning, as for an
    // inactive assignee).
    let (code, out, err) = run_vigie(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "config/rosters/station-hiver.toml:34:8: warning: `jblanc` is not available on \
             2026-12-05 (saison 12-15..04-15): this shift is not covered by them"
        ),
        "{out}"
    );
}

/// `vigie check -c CONFIG`: (exit code, stdout + stderr).
fn check_files(config: &Path) -> (i32, String) {
    let (code, out, err) = run_vigie(&["check", "-c", config.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[test]
fn an_assignment_out_of_season_and_bad_periods_are_refused_at_their_place() {
    let sb = winter_sandbox();
    let config = sb.path().join("config/vigie.toml");
    let file = sb.path().join("config/rosters/station-hiver.toml");
    let winter = WINTER
        .replace(
            "date = 2026-12-05\nshift = \"journee\"",
            "date = 2027-07-10\nshift = \"journee\"",
        )
        .replace(
            "date = 2027-01-09\nshift = \"nuit\"",
            "date = 2027-04-10\nshift = \"nuit\"",
        );
    std::fs::write(&file, &winter).unwrap();
    let (code, out) = check_files(&config);
    assert_eq!(code, 1, "{out}");
    let f = file.display();
    for expected in [
        format!(
            "{f}:27:8: shift `nuit` does not occur on 2027-04-10: outside the period of shift `nuit` (season = \"12-20..03-31\")"
        ),
        format!(
            "{f}:32:8: shift `journee` does not occur on 2027-07-10: outside the period of roster `station-hiver` (season = \"12-01..04-30\")"
        ),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }

    let bad = WINTER
        .replace("season = \"12-01..04-30\"", "season = \"1201..0430\"")
        .replace(
            "season = \"12-20..03-31\"",
            "season = \"12-32..03-31\"\nvalid_from = 2027-01-01\nvalid_until = 2026-12-01",
        );
    std::fs::write(&file, &bad).unwrap();
    let (code, out) = check_files(&config);
    assert_eq!(code, 1, "{out}");
    for expected in [
        format!(
            "{f}:6:10: invalid season \"1201..0430\": write MM-DD..MM-DD, e.g. \"12-01..04-30\" (1 December to 30 April, every year)"
        ),
        format!(
            "{f}:17:10: invalid season \"12-32..03-31\": 12-32 is not a day of the year (MM-DD)"
        ),
        format!(
            "{f}:19:15: `valid_until` (2026-12-01) is before `valid_from` (2027-01-01): nothing would be left"
        ),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.contains("3 errors found"), "nothing else: {out}");
}

#[test]
fn a_misspelt_shift_name_gets_the_shift_meant() {
    let sb = sandbox();
    let config = sb.path().join("config/vigie.toml");
    let file = sb.path().join("config/rosters/garde-thann.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n[[assignment]]\ndate = 2026-12-21\nshift = \"soire\"\nwho = [\"cmartin\"]\n");
    std::fs::write(&file, &text).unwrap();
    let line = text.lines().count() - 1;
    let (code, out) = check_files(&config);
    assert_eq!(code, 1, "{out}");
    let expected = format!(
        "{}:{line}:9: unknown shift `soire`: did you mean `soir`? (shifts of this roster: jour, nuit, soir)",
        file.display()
    );
    assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
}

#[test]
fn importing_a_seasonal_doctor_before_their_season_is_a_warning() {
    let sb = winter_sandbox();
    let config = sb.path().join("config/vigie.toml");
    let csv = sb.path().join("hiver.csv");
    std::fs::write(
        &csv,
        "date,shift,who\n2026-12-05,journee,jblanc\n2026-12-19,journee,jblanc\n",
    )
    .unwrap();
    let (code, out, err) = import_csv("station-hiver", &csv, &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{}:2:20: warning: `jblanc` is away on 2026-12-05 (season = \"12-15..04-15\")",
            csv.display()
        )),
        "{err}"
    );
    assert!(!err.contains("2026-12-19"), "in season on the 19th: {err}");
}

/// A night shift every day of the winter, for the doctor of the station.
const WINTER_NIGHTS: &str = r#"
[roster]
id = "nuits-station"
title = "Nuits de la station"
eligible = { professions = ["medecin"], tags = ["pdsa"] }

[[roster.shift]]
name = "nuit"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"

[[assignment]]
date = 2027-04-15
shift = "nuit"
who = ["jblanc"]

[[assignment]]
date = 2027-04-16
shift = "nuit"
who = ["jblanc"]
"#;

#[test]
fn a_night_shift_begun_on_the_last_day_of_a_season_keeps_its_doctor_on_call_until_morning() {
    // Julie Blanc's season ends on 15 April: the night of the 15th is hers
    // (the roster counts it), the night of the 16th is not.
    let sb = winter_sandbox();
    std::fs::write(
        sb.path().join("config/rosters/nuits-station.toml"),
        WINTER_NIGHTS,
    )
    .unwrap();
    // A directory group that names the roster's on-call doctor, as a plan
    // audience may.
    let dir = sb.path().join("config/directory.toml");
    let text = std::fs::read_to_string(&dir).unwrap();
    std::fs::write(
        &dir,
        format!("{text}\n[group.nuit_station]\non_call = [\"nuits-station\"]\n"),
    )
    .unwrap();
    let set = load(&sb.path().join("config/vigie.toml"));
    let r = roster::check(&set, roster(&set, "nuits-station"), date(2027, 4, 15), 2);
    assert_eq!(
        problems(&r),
        [(date(2027, 4, 16), "nuit", "jblanc", ProblemKind::Absent)]
    );

    // At 02:00 on the 16th (Paris), she is on call and an alert to the
    // roster's on-call doctor reaches her, though the 16th is out of her
    // season; at 22:00 on the 16th nobody is.
    let named = |s: &str| {
        vec![vigie::config::Located::new(
            s.to_string(),
            vigie::config::Loc::file_start(Path::new("test")),
        )]
    };
    let on_call_doctor = vigie::config::Selector {
        on_call: named("nuits-station"),
        ..Default::default()
    };
    let through_a_group = vigie::config::Selector {
        groups: named("nuit_station"),
        ..Default::default()
    };
    for sel in [&on_call_doctor, &through_a_group] {
        for (at, expected) in [
            (utc(2027, 4, 16, 0, 0), vec!["jblanc"]),
            (utc(2027, 4, 16, 20, 0), vec![]),
        ] {
            let on_call = |r: &str| vigie::schedule::oncall::on_call(&set, r, at);
            let today = at.with_timezone(&set.daemon.timezone).date_naive();
            let who: Vec<&str> = set
                .directory
                .select_on(sel, &on_call, today)
                .iter()
                .map(|p| p.id.as_str())
                .collect();
            assert_eq!(who, expected, "at {at}, {sel:?}");
        }
    }
}
