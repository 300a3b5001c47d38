//! Routine reminders with injected time: once per instant, across
//! restarts, caught up within the hour, recorded as missed beyond; shift
//! reminders; the yearly plan review.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Paris;

use crate::harness::{TestDaemon, eventually};

fn paris(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Paris
        .with_ymd_and_hms(y, m, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

const REMINDERS: &str = r#"
[[reminder]]
id = "snp-creneaux"
title = "Publier vos créneaux de soins non programmés"
schedule = "0 10 * * fri"
audience = { ids = ["ref1", "inf-nomail"] }
channels = ["email"]
template = "rappel_snp"

[template.rappel_snp]
subject = "{{ reminder.title }}"
text = """
Bonjour {{ recipient.name }},
Pensez à publier vos créneaux pour la semaine prochaine ({{ date }}).
"""
"#;

const ROSTER: &str = r#"
[roster]
id = "pdsa"
title = "Permanence des soins"
eligible = { professions = ["medecin"] }
remind_before = "18h"
check = { schedule = "0 9 * * mon", horizon = "7d", notify = ["bureau"] }

[[roster.shift]]
name = "soir"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "20:00"
end = "00:00"

[[assignment]]
date = 2026-06-16
shift = "soir"
who = ["ref1"]
"#;

/// Adds reminders and a roster to the fixture and reloads.
async fn with_reminders(d: &TestDaemon) {
    let dir = d.dir.path();
    std::fs::write(dir.join("config/reminders.toml"), REMINDERS).unwrap();
    std::fs::create_dir_all(dir.join("config/rosters")).unwrap();
    std::fs::write(dir.join("config/rosters/pdsa.toml"), ROSTER).unwrap();
    let config = dir.join("config/vigie.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "directory = \"directory.toml\"",
        "directory = \"directory.toml\"\nreminders = \"reminders.toml\"\nrosters = \"rosters\"",
    );
    std::fs::write(&config, text).unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
}

async fn tick(d: &TestDaemon) -> vigie::schedule::reminders::TickOutcome {
    d.daemon().state.reminder_tick().await.unwrap()
}

async fn firings(d: &TestDaemon) -> Vec<vigie::store::reminders::FiringRow> {
    d.daemon()
        .state
        .store
        .call(|c| vigie::store::reminders::firings(c, ""))
        .await
        .unwrap()
}

fn snp_mails(d: &TestDaemon) -> usize {
    d.smtp
        .messages()
        .iter()
        .filter(|m| m.subject().starts_with("Publier vos créneaux"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_reminder_fires_once_per_instant_in_french() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    // Monday 15 June 10:00 → Friday 19 June 10:00:30.
    d.clock
        .set(paris(2026, 6, 19, 10, 0) + Duration::seconds(30));
    tick(&d).await;
    tick(&d).await;
    d.daemon().state.kick();
    eventually(10, "the reminder mailed", || async { snp_mails(&d) == 1 }).await;
    let m = &d.smtp.to("claire.martin@example.org")[0];
    assert_eq!(m.subject(), "Publier vos créneaux de soins non programmés");
    assert!(m.text().contains("Bonjour Claire Martin,"), "{}", m.text());
    assert!(m.text().contains("(vendredi 19 juin 2026)"), "{}", m.text());
    // The nurse without e-mail gets a skipped delivery, not a lost one.
    let f = firings(&d).await;
    let snp: Vec<_> = f
        .iter()
        .filter(|x| x.job == "reminder:snp-creneaux")
        .collect();
    assert_eq!(snp.len(), 1);
    assert_eq!(snp[0].status, "fired");
    // Ticking again the same minute: nothing more.
    tick(&d).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(snp_mails(&d), 1);
    // A week later: once more.
    d.advance(Duration::days(7));
    tick(&d).await;
    eventually(10, "the next week's reminder", || async {
        snp_mails(&d) == 2
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_two_instants_neither_repeats_nor_skips() {
    let mut d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    d.clock
        .set(paris(2026, 6, 19, 10, 0) + Duration::seconds(5));
    tick(&d).await;
    eventually(10, "mailed", || async { snp_mails(&d) == 1 }).await;
    // Restarted a few minutes later: the instant is not fired again.
    d.restart_at(paris(2026, 6, 19, 10, 7)).await;
    tick(&d).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(snp_mails(&d), 1);
    // Next Friday, on time.
    d.clock
        .set(paris(2026, 6, 26, 10, 0) + Duration::seconds(1));
    tick(&d).await;
    d.daemon().state.kick();
    eventually(10, "next instant", || async { snp_mails(&d) == 2 }).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_missed_while_down_is_caught_up_within_the_hour_and_recorded_missed_beyond() {
    let mut d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    // Down at 09:55 on Friday, back at 10:40: 40 minutes late, caught up.
    d.restart_at(paris(2026, 6, 19, 9, 55)).await;
    tick(&d).await;
    d.restart_at(paris(2026, 6, 19, 10, 40)).await;
    let out = tick(&d).await;
    assert_eq!((out.fired, out.missed), (1, 0));
    eventually(10, "caught up", || async { snp_mails(&d) == 1 }).await;
    // Down the next Friday from 09:00 to 12:00: two hours late, missed.
    d.restart_at(paris(2026, 6, 26, 9, 0)).await;
    tick(&d).await;
    d.restart_at(paris(2026, 6, 26, 12, 0)).await;
    let out = tick(&d).await;
    assert_eq!((out.fired, out.missed), (0, 1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(snp_mails(&d), 1, "a missed reminder is not sent late");
    let f = firings(&d).await;
    let statuses: Vec<&str> = f
        .iter()
        .filter(|x| x.job == "reminder:snp-creneaux")
        .map(|x| x.status.as_str())
        .collect();
    assert_eq!(statuses, ["fired", "missed"]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_assignee_is_reminded_once_before_each_shift() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    // Shift on Tuesday 16 June 20:00; reminder 18 h before: 02:00.
    d.clock.set(paris(2026, 6, 16, 1, 59));
    tick(&d).await;
    assert!(d.smtp.to("claire.martin@example.org").is_empty());
    d.clock
        .set(paris(2026, 6, 16, 2, 0) + Duration::seconds(10));
    tick(&d).await;
    tick(&d).await;
    d.daemon().state.kick();
    eventually(10, "shift reminder", || async {
        !d.smtp.to("claire.martin@example.org").is_empty()
    })
    .await;
    let mails = d.smtp.to("claire.martin@example.org");
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject(),
        "Rappel : garde « soir » le mardi 16 juin 2026"
    );
    assert!(
        mails[0].text().contains("de 20:00 à 00:00"),
        "{}",
        mails[0].text()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_owners_are_reminded_of_the_yearly_review_weekly_until_a_new_version_exists() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    let review_mails = |d: &TestDaemon| {
        d.smtp
            .messages()
            .iter()
            .filter(|m| m.subject().starts_with("Révision annuelle"))
            .count()
    };
    // review_by = 2026-11-30: first notice on 31 October at 09:00.
    d.clock.set(paris(2026, 10, 31, 8, 59));
    tick(&d).await;
    d.clock
        .set(paris(2026, 10, 31, 9, 0) + Duration::seconds(5));
    tick(&d).await;
    d.daemon().state.kick();
    eventually(10, "review to the three owners", || async {
        review_mails(&d) == 3
    })
    .await;
    d.advance(Duration::days(7));
    tick(&d).await;
    eventually(10, "again a week later", || async { review_mails(&d) == 6 }).await;
    // The 2027 version is written: no more reminders.
    let plan = std::fs::read_to_string(d.dir.path().join("plans/plan.toml")).unwrap();
    let next = plan
        .replace("version = \"2026.1\"", "version = \"2027.1\"")
        .replace("valid_from = 2026-01-01", "valid_from = 2027-01-01")
        .replace("valid_until = 2099-12-31", "valid_until = 2027-12-31")
        .replace("review_by = 2026-11-30", "review_by = 2027-11-30");
    std::fs::write(d.dir.path().join("plans/plan-2027.toml"), next).unwrap();
    assert!(d.daemon().state.reload().await.ok);
    d.advance(Duration::days(7));
    tick(&d).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(review_mails(&d), 6);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_roster_check_mails_the_holes_to_the_bureau_in_french() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    d.clock.set(paris(2026, 6, 22, 9, 0) + Duration::seconds(5));
    let out = tick(&d).await;
    assert!(out.fired >= 1);
    d.daemon().state.kick();
    eventually(10, "report to the bureau", || async {
        d.smtp.to("olivier.bilger@example.org").len() == 1
    })
    .await;
    let m = &d.smtp.to("olivier.bilger@example.org")[0];
    // Monday 22 to Sunday 28 June: the five weekday evenings are empty.
    assert!(
        m.subject()
            .starts_with("Planning « Permanence des soins » : 5 gardes à pourvoir"),
        "{}",
        m.subject()
    );
    assert!(
        m.text()
            .contains("lundi 22 juin 2026, garde « soir » de 20:00 à 00:00 : personne (1 requis)"),
        "{}",
        m.text()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roster_check_and_calendar_routes_need_a_token() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    let c = reqwest::Client::new();
    let r = c
        .get(d.url("/api/v1/rosters/pdsa/check?days=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s, v) = d
        .api(
            reqwest::Method::GET,
            "/api/v1/rosters/pdsa/check?days=7",
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["covered"], false);
    // 15–21 June: five weekday evenings, the 16th is covered.
    assert_eq!(v["gaps"].as_array().unwrap().len(), 4);
    let (s, _) = d
        .api(reqwest::Method::GET, "/api/v1/rosters/nope/check", None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = d
        .api(
            reqwest::Method::GET,
            "/api/v1/rosters/pdsa/check?days=0",
            None,
        )
        .await;
    assert_eq!(s, 400);

    let r = c.get(d.url("/calendar/pdsa.ics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(d.url("/calendar/pdsa.ics?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(d.url(&format!("/calendar/pdsa.ics?token={}", d.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = r.text().await.unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR"));
    assert!(ics.contains("BEGIN:VTIMEZONE") && ics.contains("TZID:Europe/Paris"));
    assert!(
        ics.contains("DTSTART;TZID=Europe/Paris:20260616T200000"),
        "{ics}"
    );
    let r = c
        .get(d.url(&format!("/calendar/nope.ics?token={}", d.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // The status sums up the gaps.
    let (_, st) = d.api(reqwest::Method::GET, "/api/v1/status", None).await;
    assert_eq!(st["rosters"][0]["id"], "pdsa");
    assert_eq!(st["rosters"][0]["covered"], false);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_roster_holes_and_upcoming_reminders() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = d.operator_cookie().await;
    let html = c
        .get(d.url("/bureau"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Permanence des soins — lundi 15 juin 2026, garde « soir » de 20:00 à 00:00 : personne (1 requis)"), "{html}");
    assert!(
        !html.contains("mardi 16 juin 2026, garde"),
        "the 16th is covered"
    );
    // (minijinja escapes '/' as &#x2f; in HTML.)
    assert!(
        html.contains("19&#x2f;06 à 10:00 — Publier vos créneaux de soins non programmés"),
        "{html}"
    );
    assert!(
        html.contains("Rappel de garde « soir » du 16&#x2f;06 pour Claire Martin"),
        "{html}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_call_audience_reaches_whoever_is_on_shift_when_the_step_fires() {
    let d = TestDaemon::start().await;
    with_reminders(&d).await;
    let plan = d.dir.path().join("plans/plan.toml");
    let mut text = std::fs::read_to_string(&plan).unwrap();
    text.push_str(
        r#"
[audience.garde]
on_call = "pdsa"

[[scenario]]
id = "renfort_garde"
title = "Renfort du médecin de garde"

[[scenario.escalation]]
audience = ["garde"]
channels = ["email"]
timeout = "10m"
"#,
    );
    std::fs::write(&plan, text).unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    // Tuesday 16 June at 21:00: Claire Martin holds the evening shift.
    d.clock.set(paris(2026, 6, 16, 21, 0));
    d.declare(serde_json::json!({"scenario": "renfort_garde"}))
        .await;
    eventually(10, "the doctor on call mailed", || async {
        d.smtp.messages().len() == 1
    })
    .await;
    assert_eq!(d.smtp.messages()[0].to, ["claire.martin@example.org"]);
    d.stop().await;
}

// ------------------------------------------------------------------------------------------------
// Seasons: someone away is neither reminded nor alerted
// ------------------------------------------------------------------------------------------------

/// Gives Claire Martin (`ref1`) a winter season in the directory.
fn claire_in_winter_only(dir: &std::path::Path) {
    let path = dir.join("config/directory.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "email = \"claire.martin@example.org\"",
        "email = \"claire.martin@example.org\"\nseason = \"10-01..04-30\"",
        1,
    );
    std::fs::write(&path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_shift_reminder_goes_to_an_assignee_out_of_their_season() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    claire_in_winter_only(d.dir.path());
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    // Her shift of Tuesday 16 June 20:00 would be reminded at 02:00.
    d.clock
        .set(paris(2026, 6, 16, 2, 0) + Duration::seconds(10));
    let out = tick(&d).await;
    assert_eq!(out.fired, 0, "nothing due in June for a winter doctor");
    d.daemon().state.kick();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(d.smtp.to("claire.martin@example.org").is_empty());
    assert!(
        firings(&d)
            .await
            .iter()
            .all(|f| !f.job.starts_with("shift:")),
        "no shift reminder recorded"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_out_of_their_season_is_not_alerted_and_is_in_season() {
    let d = TestDaemon::start_setup(false, claire_in_winter_only).await;
    // Monday 15 June: the referents are Claire Martin (away) and Hélène Fuchs.
    d.declare(serde_json::json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    eventually(10, "the referent in season mailed", || async {
        !d.smtp.to("helene.fuchs@example.org").is_empty()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        d.smtp.to("claire.martin@example.org").is_empty(),
        "out of season in June"
    );
    // Tuesday 1 December: she is back.
    d.clock.set(paris(2026, 12, 1, 10, 0));
    d.declare(serde_json::json!({"scenario": "cellule_crise"}))
        .await;
    eventually(10, "the winter doctor mailed in December", || async {
        !d.smtp.to("claire.martin@example.org").is_empty()
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winter_roster_is_not_checked_all_summer_but_is_before_its_season() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    let winter = ROSTER
        .replace(
            "remind_before = \"18h\"",
            "season = \"12-01..04-30\"\nremind_before = \"24h\"",
        )
        .replace("date = 2026-06-16", "date = 2026-12-15");
    std::fs::write(d.dir.path().join("config/rosters/pdsa.toml"), winter).unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    let checks = |f: &[vigie::store::reminders::FiringRow]| {
        f.iter().filter(|x| x.job == "roster-check:pdsa").count()
    };
    // Monday 22 June, 09:00: nothing of the roster runs within 7 days.
    d.clock.set(paris(2026, 6, 22, 9, 0) + Duration::seconds(5));
    tick(&d).await;
    assert_eq!(checks(&firings(&d).await), 0, "no summer check");
    // Monday 30 November, 09:00: the window reaches 1 December.
    d.clock
        .set(paris(2026, 11, 30, 9, 0) + Duration::seconds(5));
    tick(&d).await;
    assert_eq!(checks(&firings(&d).await), 1);
    d.daemon().state.kick();
    eventually(10, "the first winter check mailed", || async {
        d.smtp.to("olivier.bilger@example.org").iter().any(|m| {
            m.subject()
                .starts_with("Planning « Permanence des soins » : 4 gardes")
        })
    })
    .await;
    d.stop().await;
}

/// After [`with_reminders`]: an evening reminder at 22:00 to Claire
/// Martin, and `quiet` as the daemon's quiet hours; reloaded. Returns the
/// reload's errors.
async fn with_quiet_hours(d: &TestDaemon, quiet: &str) -> Vec<String> {
    let dir = d.dir.path();
    let evening = format!(
        "{REMINDERS}\n[[reminder]]\nid = \"soir\"\ntitle = \"Relevé du soir\"\nschedule = \"0 22 * * *\"\naudience = {{ ids = [\"ref1\"] }}\nchannels = [\"email\"]\n"
    );
    std::fs::write(dir.join("config/reminders.toml"), evening).unwrap();
    let config = dir.join("config/vigie.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "timezone = \"Europe/Paris\"\n",
        &format!("timezone = \"Europe/Paris\"\nquiet_hours = \"{quiet}\"\n"),
    );
    std::fs::write(&config, text).unwrap();
    d.daemon().state.reload().await.errors
}

fn mails_to_claire(d: &TestDaemon, subject: &str) -> usize {
    d.smtp
        .to("claire.martin@example.org")
        .iter()
        .filter(|m| m.subject().starts_with(subject))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_routine_and_shift_reminders_until_morning_but_never_a_crisis() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    let errors = with_quiet_hours(&d, "21:00-07:00").await;
    assert!(errors.is_empty(), "{errors:?}");
    // Monday 15 June, 22:00: the evening reminder fires, and waits.
    d.clock
        .set(paris(2026, 6, 15, 22, 0) + Duration::seconds(10));
    assert_eq!(tick(&d).await.fired, 1);
    d.daemon().state.kick();
    // 23:00: a crisis goes at once, quiet hours or not.
    d.clock.set(paris(2026, 6, 15, 23, 0));
    d.declare(serde_json::json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    eventually(10, "the crisis mailed at 23:00", || async {
        !d.smtp.to("helene.fuchs@example.org").is_empty()
    })
    .await;
    assert_eq!(mails_to_claire(&d, "[Mobilisation]"), 1);
    // Tuesday 02:00: the shift reminder (18 h before 20:00) fires, and waits.
    d.clock
        .set(paris(2026, 6, 16, 2, 0) + Duration::seconds(10));
    assert_eq!(tick(&d).await.fired, 1);
    d.clock.set(paris(2026, 6, 16, 6, 59));
    d.daemon().state.kick();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(mails_to_claire(&d, "Relevé du soir"), 0, "not in the night");
    assert_eq!(mails_to_claire(&d, "Rappel : garde"), 0, "not in the night");
    // 07:00: both leave.
    d.clock.set(paris(2026, 6, 16, 7, 0));
    d.daemon().state.kick();
    eventually(10, "the night's reminders at 07:00", || async {
        mails_to_claire(&d, "Relevé du soir") == 1 && mails_to_claire(&d, "Rappel : garde") == 1
    })
    .await;
    // During the day, a reminder leaves at once.
    d.clock
        .set(paris(2026, 6, 19, 10, 0) + Duration::seconds(10));
    tick(&d).await;
    d.daemon().state.kick();
    eventually(10, "the Friday reminder at 10:00", || async {
        snp_mails(&d) == 1
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_that_mean_nothing_are_refused_with_their_place() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    for (quiet, says) in [
        ("21:00-21:00", "starts and ends at the same time"),
        ("25:00-07:00", "invalid time of day \"25:00\""),
        ("21h-7h", "invalid time of day \"21h\""),
        ("21:00", "write START-END"),
    ] {
        let errors = with_quiet_hours(&d, quiet).await;
        let config = d.dir.path().join("config/vigie.toml");
        let want = format!("{}:4:15: ", config.display());
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&want) && e.contains(says)),
            "{quiet}: {errors:?}"
        );
        // Put back as it was, for the next case.
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace(&format!("quiet_hours = \"{quiet}\"\n"), "");
        std::fs::write(&config, text).unwrap();
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shift_reminder_the_quiet_hours_would_hold_past_its_shift_leaves_before_the_night() {
    let d = TestDaemon::start_manual().await;
    with_reminders(&d).await;
    // A 00:00 shift on Wednesday 17 June, reminded 1 h before (23:00),
    // inside quiet hours that end at 07:00: after the shift has begun.
    std::fs::write(
        d.dir.path().join("config/rosters/pdsa.toml"),
        r#"
[roster]
id = "pdsa"
title = "Permanence des soins"
eligible = { professions = ["medecin"] }
remind_before = "1h"

[[roster.shift]]
name = "nuit"
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "08:00"

[[assignment]]
date = 2026-06-17
shift = "nuit"
who = ["ref1"]
"#,
    )
    .unwrap();
    let errors = with_quiet_hours(&d, "21:00-07:00").await;
    assert!(errors.is_empty(), "{errors:?}");
    d.clock.set(paris(2026, 6, 16, 20, 59));
    tick(&d).await;
    assert_eq!(mails_to_claire(&d, "Rappel : garde"), 0);
    // 21:00, the start of the quiet hours: it leaves now, before the night.
    d.clock
        .set(paris(2026, 6, 16, 21, 0) + Duration::seconds(10));
    tick(&d).await;
    d.daemon().state.kick();
    eventually(10, "the shift reminder at 21:00", || async {
        mails_to_claire(&d, "Rappel : garde") == 1
    })
    .await;
    // 23:00, its remind_before instant: not a second time.
    d.clock
        .set(paris(2026, 6, 16, 23, 0) + Duration::seconds(10));
    tick(&d).await;
    d.daemon().state.kick();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(mails_to_claire(&d, "Rappel : garde"), 1);
    let shifts: Vec<_> = firings(&d)
        .await
        .into_iter()
        .filter(|f| f.job.starts_with("shift:"))
        .collect();
    assert_eq!(shifts.len(), 1, "{shifts:?}");
    d.stop().await;
}
