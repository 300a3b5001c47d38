//! Rosters the professionals keep themselves (SPEC §15), with injected time
//! and a real SMTP sink: personal pages, swap requests to exactly the
//! colleagues who may take them, the first taker wins, the check, the
//! calendars, `on_call` and the reminders follow, approval, the 48 h alert.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use serde_json::Value;

use crate::harness::{TestDaemon, eventually};

fn paris(m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Paris
        .with_ymd_and_hms(2026, m, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Doctors beside the fixture's: two free (`med2`, `med5`), one busy on
/// another roster at the same time (`med3`), one out of season (`med4`).
const DOCTORS: &str = r#"
[[professional]]
id = "med2"
name = "Paul Fuchs"
profession = "medecin"
commune = "Thann"
email = "paul.fuchs@example.org"

[[professional]]
id = "med3"
name = "Anne Keller"
profession = "medecin"
commune = "Thann"
email = "anne.keller@example.org"

[[professional]]
id = "med4"
name = "Luc Moser"
profession = "medecin"
commune = "Oderen"
email = "luc.moser@example.org"
season = "12-01..03-31"

[[professional]]
id = "med5"
name = "Sophie Ehret"
profession = "medecin"
commune = "Cernay"
email = "sophie.ehret@example.org"
"#;

/// `ref1` (Claire Martin) is on Saturday 20 June, 08:00–20:00.
fn roster(approval: bool) -> String {
    format!(
        r#"
[roster]
id = "pdsa"
title = "Permanence des soins"
eligible = {{ professions = ["medecin"] }}
remind_before = "18h"
swap_approval = {approval}
check = {{ schedule = "0 9 * * mon", horizon = "7d", notify = ["bureau"] }}

[[roster.shift]]
name = "samedi"
days = ["sat"]
start = "08:00"
end = "20:00"

[[assignment]]
date = 2026-06-20
shift = "samedi"
who = ["ref1"]
"#
    )
}

const SMUR: &str = r#"
[roster]
id = "renfort"
title = "Renfort de midi"

[[roster.shift]]
name = "midi"
days = ["sat"]
start = "12:00"
end = "14:00"

[[assignment]]
date = 2026-06-20
shift = "midi"
who = ["med3"]
"#;

pub(crate) async fn start(approval: bool, extra: usize) -> TestDaemon {
    TestDaemon::start_setup(true, move |dir| {
        let dirfile = dir.join("config/directory.toml");
        let mut text = std::fs::read_to_string(&dirfile).unwrap();
        // Appended before the groups' tables would fall into them.
        let at = text.find("[group.").unwrap();
        let mut more = DOCTORS.to_string();
        for i in 0..extra {
            more.push_str(&format!(
                "\n[[professional]]\nid = \"dr{i:02}\"\nname = \"Docteur {i:02}\"\nprofession = \"medecin\"\ncommune = \"Thann\"\nemail = \"dr{i:02}@example.org\"\n"
            ));
        }
        text.insert_str(at, &format!("{more}\n"));
        std::fs::write(&dirfile, text).unwrap();
        std::fs::create_dir_all(dir.join("config/rosters")).unwrap();
        std::fs::write(dir.join("config/rosters/pdsa.toml"), roster(approval)).unwrap();
        std::fs::write(dir.join("config/rosters/renfort.toml"), SMUR).unwrap();
        let config = dir.join("config/vigie.toml");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "directory = \"directory.toml\"",
            "directory = \"directory.toml\"\nrosters = \"rosters\"",
        );
        std::fs::write(&config, text).unwrap();
    })
    .await
}

/// The personal page's path of a professional, from the API.
pub(crate) async fn page_of(d: &TestDaemon, id: &str) -> String {
    let (status, v) = d
        .api(
            reqwest::Method::GET,
            &format!("/api/v1/professionals/{id}/link"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with("http://vigie.test/g/"), "{url}");
    url.trim_start_matches("http://vigie.test").to_string()
}

async fn post(d: &TestDaemon, path: &str, form: &[(&str, &str)], json: bool) -> (u16, String) {
    let mut r = d.http.post(d.url(path)).form(form);
    if json {
        r = r.header("accept", "application/json");
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(d: &TestDaemon, path: &str) -> (u16, String) {
    let r = d.http.get(d.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Claire Martin asks for a replacement on her Saturday; the request's id.
async fn ask(d: &TestDaemon) -> i64 {
    let claire = page_of(d, "ref1").await;
    let (status, body) = post(
        d,
        &format!("{claire}/swap"),
        &[
            ("roster", "pdsa"),
            ("date", "2026-06-20"),
            ("shift", "samedi"),
        ],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "open");
    v["id"].as_i64().unwrap()
}

/// The calendar's path shown on a personal page.
async fn calendar_of(d: &TestDaemon, page: &str) -> String {
    let (status, html) = get(d, page).await;
    assert_eq!(status, 200, "{html}");
    let html = html.replace("&#x2f;", "/");
    let at = html
        .find("http://vigie.test/c/")
        .expect("a calendar address");
    let rest = &html[at + "http://vigie.test".len()..];
    rest[..rest.find(".ics").expect(".ics") + 4].to_string()
}

fn subjects_to(d: &TestDaemon, email: &str) -> Vec<String> {
    d.smtp.to(email).iter().map(|m| m.subject()).collect()
}

/// The first mail to `email` whose subject starts with `prefix`, once it
/// has arrived (waited for up to 10 s; `what` names it if it does not).
async fn mail_to(d: &TestDaemon, email: &str, prefix: &str, what: &str) -> crate::smtp::Received {
    eventually(10, what, || async {
        subjects_to(d, email).iter().any(|s| s.starts_with(prefix))
    })
    .await;
    d.smtp
        .to(email)
        .into_iter()
        .find(|m| m.subject().starts_with(prefix))
        .unwrap()
}

/// The bureau's dashboard, as the operator of `cookie` sees it.
async fn dashboard(d: &TestDaemon, cookie: &str) -> String {
    d.http
        .get(d.url("/bureau"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(crate) async fn assignees(d: &TestDaemon) -> Vec<(String, String)> {
    let (status, v) = d
        .api(
            reqwest::Method::GET,
            "/api/v1/rosters/pdsa/assignments?from=2026-06-20&days=1",
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["who"].as_str().unwrap().to_string(),
                a["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reaches_exactly_the_eligible_active_free_colleagues() {
    let d = start(false, 0).await;
    // Claire's page lists her Saturday with its button.
    let claire = page_of(&d, "ref1").await;
    let (status, html) = get(&d, &claire).await;
    assert_eq!(status, 200);
    assert!(html.contains("Bonjour Claire Martin."), "{html}");
    assert!(html.contains("samedi 20 juin 2026"), "{html}");
    assert!(html.contains("Chercher un remplaçant"), "{html}");
    assert!(
        html.contains("http:&#x2f;&#x2f;vigie.test&#x2f;c&#x2f;"),
        "{html}"
    );

    ask(&d).await;
    eventually(10, "both free doctors mailed", || async {
        d.smtp.to("paul.fuchs@example.org").len() == 1
            && d.smtp.to("sophie.ehret@example.org").len() == 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Exactly them: not the one busy at noon on another roster, not the
    // one out of season, not the inactive one, not the midwife, not Claire.
    for other in [
        "anne.keller@example.org",
        "luc.moser@example.org",
        "gerard.wetzel@example.org",
        "melanie.schwartz@example.org",
        "claire.martin@example.org",
    ] {
        assert!(d.smtp.to(other).is_empty(), "{other} was mailed");
    }
    // Each with their own link; that page offers the shift.
    let paul = page_of(&d, "med2").await;
    let mail = &d.smtp.to("paul.fuchs@example.org")[0];
    assert!(
        mail.subject().starts_with("Remplacement demandé"),
        "{}",
        mail.subject()
    );
    assert!(
        mail.text().contains(&format!("http://vigie.test{paul}")),
        "{}",
        mail.text()
    );
    assert!(
        mail.text().contains("Claire Martin cherche un remplaçant"),
        "{}",
        mail.text()
    );
    let (_, html) = get(&d, &paul).await;
    assert!(html.contains("Je prends cette garde"), "{html}");
    // Anne, busy, is not offered it.
    let anne = page_of(&d, "med3").await;
    let (_, html) = get(&d, &anne).await;
    assert!(!html.contains("Je prends cette garde"), "{html}");
    // Asking twice: 409.
    let (status, _) = post(
        &d,
        &format!("{claire}/swap"),
        &[
            ("roster", "pdsa"),
            ("date", "2026-06-20"),
            ("shift", "samedi"),
        ],
        true,
    )
    .await;
    assert_eq!(status, 409);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_parallel_takers_one_wins_and_nineteen_see_it_taken() {
    let d = start(false, 20).await;
    let id = ask(&d).await.to_string();
    let mut pages = Vec::new();
    for i in 0..20 {
        pages.push(page_of(&d, &format!("dr{i:02}")).await);
    }
    let mut tasks = Vec::new();
    for p in pages {
        let http = d.http.clone();
        let url = d.url(&format!("{p}/take"));
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("accept", "application/json")
                .form(&[("request", id.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 19, "{codes:?}");
    // One swap counts, and a later taker gets a clear page.
    let a = assignees(&d).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].0.starts_with("dr") && a[0].1 == "swap", "{a:?}");
    let paul = page_of(&d, "med2").await;
    let (status, html) = post(&d, &format!("{paul}/take"), &[("request", &id)], false).await;
    assert_eq!(status, 409);
    assert!(html.contains("Garde déjà prise"), "{html}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_swap_the_check_the_calendars_on_call_and_reminders_follow() {
    let d = start(false, 0).await;
    let id = ask(&d).await.to_string();
    let paul = page_of(&d, "med2").await;
    let (status, html) = post(&d, &format!("{paul}/take"), &[("request", &id)], false).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("cette garde est maintenant la vôtre"),
        "{html}"
    );
    assert_eq!(assignees(&d).await, vec![("med2".into(), "swap".into())]);
    // Claire and the bureau are told.
    eventually(10, "requester and bureau told", || async {
        subjects_to(&d, "claire.martin@example.org")
            .iter()
            .any(|s| s.starts_with("Remplacement trouvé"))
            && subjects_to(&d, "olivier.bilger@example.org")
                .iter()
                .any(|s| s.starts_with("Échange de garde"))
    })
    .await;
    let to_bureau = mail_to(
        &d,
        "olivier.bilger@example.org",
        "Échange de garde",
        "the bureau told",
    )
    .await;
    assert!(
        to_bureau
            .text()
            .contains("la commande vigie roster export pdsa")
            && !to_bureau.text().contains('`'),
        "{}",
        to_bureau.text()
    );
    // The roster check: Paul, booked at noon on the other roster by a
    // later edit of its file, is double-booked on Claire's old shift.
    let renfort = d.dir.path().join("config/rosters/renfort.toml");
    let text = std::fs::read_to_string(&renfort)
        .unwrap()
        .replace("who = [\"med3\"]", "who = [\"med2\"]");
    std::fs::write(&renfort, text).unwrap();
    assert!(d.daemon().state.reload().await.ok);
    let (status, v) = d
        .api(
            reqwest::Method::GET,
            "/api/v1/rosters/pdsa/check?from=2026-06-20&days=1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let problems = v["problems"].to_string();
    assert!(
        problems.contains("med2") && !problems.contains("ref1"),
        "{v}"
    );
    assert_eq!(v["covered"], false, "{v}");
    // The roster's calendar and Paul's own.
    let (_, ics) = get(&d, &format!("/calendar/pdsa.ics?token={}", d.token)).await;
    assert!(
        ics.contains("Paul Fuchs") && !ics.contains("Claire Martin"),
        "{ics}"
    );
    let (status, mine) = get(&d, &calendar_of(&d, &paul).await).await;
    assert_eq!(status, 200);
    assert!(
        mine.contains("DTSTART;TZID=Europe/Paris:20260620T080000"),
        "{mine}"
    );
    let claire = page_of(&d, "ref1").await;
    let (_, hers) = get(&d, &calendar_of(&d, &claire).await).await;
    assert!(!hers.contains("20260620T080000"), "{hers}");
    // on_call, as a plan's selector sees it.
    let set = d.daemon().state.config();
    let noon = paris(6, 20, 12, 0);
    assert_eq!(
        vigie::schedule::oncall::on_call(&set, "pdsa", noon),
        vec!["med2".to_string()]
    );
    // The shift reminder goes to Paul, with his page's link, not to Claire.
    d.clock.set(paris(6, 19, 14, 0) + Duration::seconds(30));
    d.daemon().state.reminder_tick().await.unwrap();
    d.daemon().state.kick();
    let reminder = mail_to(
        &d,
        "paul.fuchs@example.org",
        "Rappel : garde",
        "Paul reminded",
    )
    .await;
    assert!(
        reminder
            .text()
            .contains(&format!("Votre page de gardes : http://vigie.test{paul}")),
        "{}",
        reminder.text()
    );
    assert!(
        !subjects_to(&d, "claire.martin@example.org")
            .iter()
            .any(|s| s.starts_with("Rappel : garde"))
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approval_the_swap_counts_once_the_bureau_approves() {
    let d = start(true, 0).await;
    let id = ask(&d).await;
    let paul = page_of(&d, "med2").await;
    let (status, body) = post(
        &d,
        &format!("{paul}/take"),
        &[("request", &id.to_string())],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"pending\""), "{body}");
    // Claire hears of a proposal, not of a replacement found.
    eventually(10, "Claire told of the proposal", || async {
        subjects_to(&d, "claire.martin@example.org")
            .iter()
            .any(|s| s.starts_with("Proposition de remplacement"))
    })
    .await;
    assert!(
        !subjects_to(&d, "claire.martin@example.org")
            .iter()
            .any(|s| s.starts_with("Remplacement trouvé"))
    );
    // Not yet: Claire is still on it.
    assert_eq!(assignees(&d).await, vec![("ref1".into(), "file".into())]);
    // The dashboard lists it, with the approval form.
    let cookie = d.operator_cookie().await;
    let html = dashboard(&d, &cookie).await;
    assert!(html.contains("Échanges de gardes"), "{html}");
    assert!(html.contains("Paul Fuchs"), "{html}");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token on the dashboard")
        .to_string();
    let r = d
        .http
        .post(d.url(&format!("/bureau/swaps/{id}")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(assignees(&d).await, vec![("med2".into(), "swap".into())]);
    eventually(10, "both told of the approval", || async {
        subjects_to(&d, "paul.fuchs@example.org")
            .iter()
            .any(|s| s.starts_with("Échange de garde validé"))
            && subjects_to(&d, "claire.martin@example.org")
                .iter()
                .any(|s| s.starts_with("Échange de garde validé"))
    })
    .await;
    d.stop().await;
}

/// The bureau decides on a request from the dashboard: the status and the
/// dashboard's text (redirects followed).
async fn decide(d: &TestDaemon, id: i64, decision: &str) -> (u16, String) {
    let cookie = d.operator_cookie().await;
    let html = dashboard(d, &cookie).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF token on the dashboard")
        .to_string();
    let r = d
        .http
        .post(d.url(&format!("/bureau/swaps/{id}")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("decision", decision)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if r.status().is_redirection() {
        let html = dashboard(d, &cookie).await;
        return (status, html);
    }
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_take_keeps_its_taker_busy_and_approval_checks_again() {
    let d = start(true, 0).await;
    let id = ask(&d).await;
    let paul = page_of(&d, "med2").await;
    let (status, body) = post(
        &d,
        &format!("{paul}/take"),
        &[("request", &id.to_string())],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Anne asks for a replacement at noon on the other roster: Paul, who
    // waits for the bureau on Claire's Saturday, is not free for it.
    let anne = page_of(&d, "med3").await;
    let (status, body) = post(
        &d,
        &format!("{anne}/swap"),
        &[
            ("roster", "renfort"),
            ("date", "2026-06-20"),
            ("shift", "midi"),
        ],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let noon: Value = serde_json::from_str(&body).unwrap();
    let noon = noon["id"].as_i64().unwrap().to_string();
    let (_, html) = get(&d, &paul).await;
    assert!(!html.contains(&format!("offre-{noon}")), "{html}");
    let (status, body) = post(&d, &format!("{paul}/take"), &[("request", &noon)], true).await;
    assert_eq!(status, 422, "{body}");
    // Sophie, free, may take it.
    let sophie = page_of(&d, "med5").await;
    let (_, html) = get(&d, &sophie).await;
    assert!(html.contains(&format!("offre-{noon}")), "{html}");
    // The Saturday has started: the bureau can no longer approve Paul.
    d.clock.set(paris(6, 20, 9, 0));
    let (status, html) = decide(&d, id, "approve").await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("non validé"), "{html}");
    assert!(html.contains("cette garde a déjà commencé"), "{html}");
    assert_eq!(assignees(&d).await, vec![("ref1".into(), "file".into())]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_open_48_hours_before_its_shift_alerts_notify_once() {
    let d = start(false, 0).await;
    ask(&d).await;
    let state = &d.daemon().state;
    // Thursday 07:59: 48 h and a minute before; nothing yet.
    d.clock.set(paris(6, 18, 7, 59));
    assert_eq!(state.swap_alert_tick().await.unwrap(), 0);
    d.clock.set(paris(6, 18, 8, 0));
    assert_eq!(state.swap_alert_tick().await.unwrap(), 1);
    assert_eq!(state.swap_alert_tick().await.unwrap(), 0, "once");
    state.kick();
    let m = mail_to(
        &d,
        "olivier.bilger@example.org",
        "Garde sans remplaçant",
        "the bureau alerted",
    )
    .await;
    assert!(
        m.text()
            .contains("Claire Martin cherche toujours un remplaçant"),
        "{}",
        m.text()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_approval_alerts_too_and_past_ones_leave_the_dashboard() {
    let d = start(true, 0).await;
    let id = ask(&d).await;
    let paul = page_of(&d, "med2").await;
    let (status, body) = post(
        &d,
        &format!("{paul}/take"),
        &[("request", &id.to_string())],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let state = &d.daemon().state;
    d.clock.set(paris(6, 18, 7, 59));
    assert_eq!(state.swap_alert_tick().await.unwrap(), 0);
    d.clock.set(paris(6, 18, 8, 0));
    assert_eq!(state.swap_alert_tick().await.unwrap(), 1);
    assert_eq!(state.swap_alert_tick().await.unwrap(), 0);
    state.kick();
    eventually(10, "the bureau alerted", || async {
        d.smtp.to("olivier.bilger@example.org").iter().any(|m| {
            m.subject().starts_with("Garde sans remplaçant")
                && m.text().contains("pas encore validé")
        })
    })
    .await;
    let (_, html) = decide(&d, 0, "x").await;
    assert!(html.contains("Paul Fuchs remplacerait"), "{html}");
    // The shift has started: no longer listed, no longer decidable.
    d.clock.set(paris(6, 20, 9, 0));
    let (_, html) = decide(&d, 0, "x").await;
    assert!(!html.contains("Paul Fuchs remplacerait"), "{html}");
    let (status, html) = decide(&d, id, "refuse").await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("non refusé"), "{html}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_nobody_is_free_the_page_says_so_and_the_bureau_is_told_at_once() {
    let d = start(false, 0).await;
    // Only Claire and Anne (busy at noon) may hold the Saturday.
    let rosterfile = d.dir.path().join("config/rosters/pdsa.toml");
    let text = std::fs::read_to_string(&rosterfile).unwrap().replace(
        "eligible = { professions = [\"medecin\"] }",
        "eligible = { ids = [\"ref1\", \"med3\"] }",
    );
    std::fs::write(&rosterfile, text).unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    let claire = page_of(&d, "ref1").await;
    let (status, html) = post(
        &d,
        &format!("{claire}/swap"),
        &[
            ("roster", "pdsa"),
            ("date", "2026-06-20"),
            ("shift", "samedi"),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("aucun collègue n"), "{html}");
    assert!(html.contains("Le bureau est averti"), "{html}");
    assert!(
        !html.contains("vos collègues disponibles sont prévenus"),
        "{html}"
    );
    eventually(10, "the bureau told at once", || async {
        subjects_to(&d, "olivier.bilger@example.org")
            .iter()
            .any(|s| s.starts_with("Garde sans remplaçant"))
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_redirect_to_the_page_so_a_reload_posts_nothing_again() {
    let d = start(false, 0).await;
    let claire = page_of(&d, "ref1").await;
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = raw
        .post(d.url(&format!("{claire}/swap")))
        .form(&[
            ("roster", "pdsa"),
            ("date", "2026-06-20"),
            ("shift", "samedi"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, format!("{claire}?fait=demande"));
    eventually(10, "Paul mailed", || async {
        d.smtp.to("paul.fuchs@example.org").len() == 1
    })
    .await;
    // Reloading the page it landed on shows the sentence and sends nothing.
    for _ in 0..2 {
        let (status, html) = get(&d, &to).await;
        assert_eq!(status, 200);
        assert!(html.contains("Demande envoyée"), "{html}");
    }
    // Only fixed sentences: nothing of the query is echoed.
    let (_, html) = get(&d, &format!("{claire}?fait=%3Cb%3Epirate")).await;
    assert!(
        !html.contains("pirate") && !html.contains("Demande envoyée"),
        "{html}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(d.smtp.to("paul.fuchs@example.org").len(), 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_say_what_happened() {
    let d = start(false, 0).await;
    let id = ask(&d).await.to_string();
    let claire = page_of(&d, "ref1").await;
    let paul = page_of(&d, "med2").await;
    let swap = [
        ("roster", "pdsa"),
        ("date", "2026-06-20"),
        ("shift", "samedi"),
    ];
    let (status, html) = post(&d, &format!("{claire}/swap"), &swap, false).await;
    assert_eq!(status, 409);
    assert!(html.contains("Remplaçant déjà recherché"), "{html}");
    let (status, _) = post(&d, &format!("{claire}/cancel"), &[("request", &id)], false).await;
    assert_eq!(status, 200);
    let (status, html) = post(&d, &format!("{claire}/cancel"), &[("request", &id)], false).await;
    assert_eq!(status, 409);
    assert!(
        html.contains("Demande annulée") && html.contains("déjà annulée"),
        "{html}"
    );
    let (status, html) = post(&d, &format!("{paul}/take"), &[("request", &id)], false).await;
    assert_eq!(status, 409);
    assert!(html.contains("Demande annulée"), "{html}");
    // An unknown request: a clear page with the way back, not "Lien inconnu".
    let (status, html) = post(&d, &format!("{paul}/take"), &[("request", "99999")], false).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("Demande introuvable"), "{html}");
    assert!(html.contains("Revenir à mes gardes"), "{html}");
    assert!(!html.contains("Lien inconnu"), "{html}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_taker_cannot_take_again_and_the_others_are_told_again() {
    let d = start(true, 0).await;
    let id = ask(&d).await;
    eventually(10, "both free doctors mailed", || async {
        d.smtp.to("paul.fuchs@example.org").len() == 1
            && d.smtp.to("sophie.ehret@example.org").len() == 1
    })
    .await;
    let paul = page_of(&d, "med2").await;
    let (status, body) = post(
        &d,
        &format!("{paul}/take"),
        &[("request", &id.to_string())],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, html) = decide(&d, id, "refuse").await;
    assert!(status == 200 || status == 303, "{status} {html}");
    let requests = |d: &TestDaemon, to: &str| {
        subjects_to(d, to)
            .iter()
            .filter(|s| s.starts_with("Remplacement demandé"))
            .count()
    };
    eventually(10, "Sophie told again", || async {
        requests(&d, "sophie.ehret@example.org") == 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(requests(&d, "sophie.ehret@example.org"), 2);
    assert_eq!(requests(&d, "paul.fuchs@example.org"), 1);
    // Paul is not offered it again and cannot take it.
    let (_, html) = get(&d, &paul).await;
    assert!(!html.contains(&format!("offre-{id}")), "{html}");
    let (status, html) = post(
        &d,
        &format!("{paul}/take"),
        &[("request", &id.to_string())],
        false,
    )
    .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("Proposition refusée"), "{html}");
    let sophie = page_of(&d, "med5").await;
    let (status, body) = post(
        &d,
        &format!("{sophie}/take"),
        &[("request", &id.to_string())],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_follow_the_file_and_a_night_begun_yesterday_is_listed() {
    let d = start(false, 0).await;
    let id = ask(&d).await;
    let paul = page_of(&d, "med2").await;
    let (_, html) = get(&d, &paul).await;
    assert!(html.contains(&format!("offre-{id}")), "{html}");
    // The file gives Claire's Saturday to Sophie: the offer goes, and Paul
    // gets a night from Friday to Saturday.
    let rosterfile = d.dir.path().join("config/rosters/pdsa.toml");
    let text = std::fs::read_to_string(&rosterfile)
        .unwrap()
        .replace("who = [\"ref1\"]", "who = [\"med5\"]");
    std::fs::write(
        &rosterfile,
        format!(
            "{text}\n[[roster.shift]]\nname = \"nuit\"\ndays = [\"fri\"]\nstart = \"20:00\"\nend = \"08:00\"\n\n[[assignment]]\ndate = 2026-06-19\nshift = \"nuit\"\nwho = [\"med2\"]\n"
        )
        .replace("[[roster.shift]]\nname = \"samedi\"", "[[roster.shift]]\nname = \"samedi\""),
    )
    .unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    let (_, html) = get(&d, &paul).await;
    assert!(!html.contains(&format!("offre-{id}")), "{html}");
    // Saturday 02:00: the night begun on Friday still runs.
    d.clock.set(paris(6, 20, 2, 0));
    let (_, html) = get(&d, &paul).await;
    assert!(html.contains("vendredi 19 juin 2026"), "{html}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_inactive_and_other_peoples_tokens_get_nothing() {
    let d = start(false, 0).await;
    let id = ask(&d).await.to_string();
    let claire = page_of(&d, "ref1").await;
    let paul = page_of(&d, "med2").await;
    // A forged token, an altered one, an inactive professional's.
    let mut altered = claire.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == '0' { '1' } else { '0' });
    let retired = page_of(&d, "ref-retired").await;
    for p in [
        "/g/0123456789abcdef0123456789abcdef",
        "/g/x",
        &altered,
        &retired,
    ] {
        let (status, html) = get(&d, p).await;
        assert_eq!(status, 404, "{p}");
        assert!(html.contains("Lien inconnu"), "{html}");
        let (status, _) = post(&d, &format!("{p}/take"), &[("request", &id)], true).await;
        assert_eq!(status, 404, "{p}");
        let (status, _) = get(&d, &format!("{p}/calendar.ics")).await;
        assert_eq!(status, 404, "{p}");
    }
    // Paul cannot cancel Claire's request, nor ask for her shift.
    let (status, _) = post(&d, &format!("{paul}/cancel"), &[("request", &id)], true).await;
    assert_eq!(status, 409);
    let (status, _) = post(
        &d,
        &format!("{paul}/swap"),
        &[
            ("roster", "pdsa"),
            ("date", "2026-06-20"),
            ("shift", "samedi"),
        ],
        true,
    )
    .await;
    assert_eq!(status, 422);
    // A cross-site form cannot take the shift for him.
    let r = d
        .http
        .post(d.url(&format!("{paul}/take")))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("request", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(assignees(&d).await, vec![("ref1".into(), "file".into())]);
    // Claire cancels; then nobody can take it.
    let (status, html) = post(&d, &format!("{claire}/cancel"), &[("request", &id)], false).await;
    assert_eq!(status, 200);
    assert!(html.contains("Demande annulée"), "{html}");
    let (status, _) = post(&d, &format!("{paul}/take"), &[("request", &id)], true).await;
    assert_eq!(status, 409);
    assert_eq!(assignees(&d).await, vec![("ref1".into(), "file".into())]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_address_reads_the_calendar_and_does_nothing_else() {
    let d = start(false, 0).await;
    let id = ask(&d).await.to_string();
    let paul = page_of(&d, "med2").await;
    let cal = calendar_of(&d, &paul).await;
    let ctoken = cal
        .trim_start_matches("/c/")
        .trim_end_matches(".ics")
        .to_string();
    assert!(!paul.contains(&ctoken), "{paul} {cal}");
    // It reads the calendar...
    let (status, ics) = get(&d, &cal).await;
    assert_eq!(status, 200, "{ics}");
    assert!(ics.contains("BEGIN:VCALENDAR"), "{ics}");
    // ...and is no page: it opens nothing, takes nothing, asks nothing.
    let as_page = format!("/g/{ctoken}");
    assert_eq!(get(&d, &as_page).await.0, 404);
    for (path, form) in [
        ("take", vec![("request", id.as_str())]),
        ("cancel", vec![("request", id.as_str())]),
        (
            "swap",
            vec![
                ("roster", "pdsa"),
                ("date", "2026-06-20"),
                ("shift", "samedi"),
            ],
        ),
    ] {
        let (status, body) = post(&d, &format!("{as_page}/{path}"), &form, true).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(assignees(&d).await, vec![("ref1".into(), "file".into())]);
    // The page's token no longer serves a calendar.
    assert_eq!(get(&d, &format!("{paul}/calendar.ics")).await.0, 404);
    assert_eq!(get(&d, &format!("/c/{}.ics", &paul[3..])).await.0, 404);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_exports_and_checks_the_effective_assignments() {
    let d = start(false, 0).await;
    let id = ask(&d).await.to_string();
    let paul = page_of(&d, "med2").await;
    let (status, _) = post(&d, &format!("{paul}/take"), &[("request", &id)], true).await;
    assert_eq!(status, 200);
    let config = d.dir.path().join("config/vigie.toml");
    let config = config.to_str().unwrap();
    // The export, from the daemon's database beside the files.
    let (code, out, err) = crate::support::run_vigie(&[
        "roster",
        "export",
        "pdsa",
        "--from",
        "2026-06-20",
        "--days",
        "1",
        "-c",
        config,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "# échange : med2\n[[assignment]]\ndate = 2026-06-20\nshift = \"samedi\"\nwho = [\"med2\"]"
        ),
        "{out}"
    );
    // What it prints is a valid roster file once folded back.
    let rosterfile = d.dir.path().join("config/rosters/pdsa.toml");
    let text = std::fs::read_to_string(&rosterfile).unwrap();
    let head = &text[..text.find("[[assignment]]").unwrap()];
    std::fs::write(&rosterfile, format!("{head}{out}")).unwrap();
    let (code, _, err) = crate::support::run_vigie(&["check", "-c", config]);
    assert!(code == 0, "{err}");
    // The check sees Paul there: booked at noon on the other roster, he
    // is double-booked.
    let renfort = d.dir.path().join("config/rosters/renfort.toml");
    let text = std::fs::read_to_string(&renfort)
        .unwrap()
        .replace("who = [\"med3\"]", "who = [\"med2\"]");
    std::fs::write(&renfort, text).unwrap();
    let (code, out, err) = crate::support::run_vigie(&[
        "roster",
        "check",
        "pdsa",
        "--from",
        "2026-06-20",
        "--days",
        "1",
        "--json",
        "-c",
        config,
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["problems"].to_string().contains("med2"), "{v}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_tokens_replace_the_api_token_in_feed_addresses() {
    let d = start(false, 0).await;
    let feed = |t: &str| format!("/calendar/pdsa.ics?token={t}");
    assert_eq!(get(&d, &feed(&d.token)).await.0, 200);
    let (code, out, err) = crate::support::run_vigie(&["token", "new", "agenda", "--calendar"]);
    assert_eq!(code, 0, "{err}");
    let token = out.lines().next().unwrap().to_string();
    let entry = out.lines().last().unwrap().to_string();
    assert!(out.contains("calendar_tokens"), "{out}");
    let config = d.dir.path().join("config/vigie.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[auth]\ncalendar_tokens = [{entry}]\n"),
    )
    .unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    assert_eq!(get(&d, &feed(&token)).await.0, 200);
    assert_eq!(
        get(&d, &feed(&d.token)).await.0,
        401,
        "the API token no longer reads feeds"
    );
    // And the calendar token is no API token.
    let r = d
        .http
        .get(d.url("/api/v1/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_message_lists_the_shifts_with_the_personal_link() {
    let d = start(false, 0).await;
    let rosterfile = d.dir.path().join("config/rosters/pdsa.toml");
    let text = std::fs::read_to_string(&rosterfile).unwrap().replace(
        "swap_approval = false",
        "swap_approval = false\nmonthly_shifts = true",
    );
    std::fs::write(
        &rosterfile,
        format!(
            "{text}\n[[assignment]]\ndate = 2026-07-04\nshift = \"samedi\"\nwho = [\"ref1\"]\n"
        ),
    )
    .unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    d.clock.set(paris(7, 1, 9, 0) + Duration::seconds(30));
    d.daemon().state.reminder_tick().await.unwrap();
    d.daemon().state.kick();
    let monthly = |d: &TestDaemon| {
        d.smtp
            .to("claire.martin@example.org")
            .into_iter()
            .filter(|m| m.subject().starts_with("Vos gardes"))
            .collect::<Vec<_>>()
    };
    eventually(10, "Claire's monthly message", || async {
        monthly(&d).len() == 1
    })
    .await;
    let claire = page_of(&d, "ref1").await;
    let m = &monthly(&d)[0];
    assert!(
        m.text()
            .contains("samedi 4 juillet 2026 : garde « samedi », de 08:00 à 20:00"),
        "{}",
        m.text()
    );
    assert!(
        m.text().contains(&format!("http://vigie.test{claire}")),
        "{}",
        m.text()
    );
    // Once per month.
    d.daemon().state.reminder_tick().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(monthly(&d).len(), 1);
    d.stop().await;
}

#[test]
fn swaps_chain_in_decision_order_and_a_stale_one_changes_nothing() {
    use vigie::roster::swaps::{Swap, apply, assignments};
    let loaded = vigie::config::load(
        &crate::support::repo().join("tests/fixtures/rosters/config/vigie.toml"),
        |_| chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
    );
    let set = loaded.set.expect("the roster fixture loads");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 28).unwrap();
    let swap = |from: &str, to: &str| Swap {
        roster: "garde-thann".into(),
        date,
        shift: "nuit".into(),
        from: from.into(),
        to: to.into(),
    };
    // cmartin → pmeyer → tehrhart; then a swap from someone no longer there.
    let swaps = vec![
        swap("cmartin", "pmeyer"),
        swap("pmeyer", "tehrhart"),
        swap("cmartin", "sroth"),
    ];
    let (effective, applied) = apply(&set, &swaps);
    assert_eq!(applied, vec![true, true, false]);
    let roster = effective.roster("garde-thann").unwrap();
    let list = assignments(&effective, roster, &swaps, date, 1);
    let who: Vec<(&str, &str)> = list
        .iter()
        .filter(|a| a.shift == "nuit")
        .map(|a| (a.who.as_str(), a.source))
        .collect();
    assert_eq!(who, vec![("tehrhart", "swap")]);
    // The files themselves are untouched.
    let file = vigie::roster::occurrences(&set, set.roster("garde-thann").unwrap(), date, 1);
    assert!(
        file.iter()
            .any(|o| o.assignees == vec!["cmartin".to_string()])
    );
}

#[test]
fn a_swap_folded_back_changes_nothing_once_the_file_has_the_requester_again() {
    use vigie::roster::swaps::{Swap, apply};
    let loaded = vigie::config::load(
        &crate::support::repo().join("tests/fixtures/rosters/config/vigie.toml"),
        |_| chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
    );
    let mut set = loaded.set.expect("the roster fixture loads");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 28).unwrap();
    // The export folded back (pmeyer), then cmartin added again by hand.
    let r = set
        .rosters
        .iter_mut()
        .find(|r| r.id.value == "garde-thann")
        .unwrap();
    let a = r
        .assignments
        .iter_mut()
        .find(|a| a.date.value == date && a.shift.value == "nuit")
        .unwrap();
    assert_eq!(a.who[0].value, "cmartin");
    let mut taker = a.who[0].clone();
    taker.value = "pmeyer".into();
    a.who.push(taker);
    let swaps = vec![Swap {
        roster: "garde-thann".into(),
        date,
        shift: "nuit".into(),
        from: "cmartin".into(),
        to: "pmeyer".into(),
    }];
    let (effective, applied) = apply(&set, &swaps);
    assert_eq!(applied, vec![false]);
    let occ = vigie::roster::occurrences(
        &effective,
        effective.roster("garde-thann").unwrap(),
        date,
        1,
    );
    let night = occ.iter().find(|o| o.shift == "nuit").unwrap();
    assert_eq!(
        night.assignees,
        vec!["cmartin".to_string(), "pmeyer".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bureau_resends_someone_their_personal_link_from_the_dashboard() {
    let d = start(false, 0).await;
    let cookie = d.operator_cookie().await;
    let html = dashboard(&d, &cookie).await;
    assert!(html.contains("Renvoyer son lien"), "{html}");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let send = |id: &'static str| {
        d.http
            .post(d.url("/bureau/links"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("id", id)])
            .send()
    };
    let r = send("med5").await.unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    let sophie = page_of(&d, "med5").await;
    eventually(10, "Sophie's link mailed", || async {
        d.smtp
            .to("sophie.ehret@example.org")
            .iter()
            .any(|m| m.text().contains(&format!("http://vigie.test{sophie}")))
    })
    .await;
    let r = send("personne").await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Aucun professionnel actif n&#x27;a l&#x27;identifiant")
            || text.contains("Aucun professionnel actif n'a l'identifiant"),
        "{text}"
    );
    d.stop().await;
}
