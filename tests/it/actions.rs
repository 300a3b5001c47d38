//! Crisis conduct (SPEC §12): the action cards of a level become the
//! event's checklist, ticked from the API or the event page and logged;
//! the instructions on the response page, the public advice on the public
//! page, and the exercise warning on the dashboard. The daemon in process,
//! real HTTP, a manual clock.

use chrono::Duration;
use reqwest::Method;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::harness::{TestDaemon, csrf_of};

/// The action cards, instructions and advice of the canicule scenario of
/// the event fixture, and `exercise_every` on its plan.
const CARDS: &str = r#"
[[scenario.action]]
title = "Convoquer la cellule de crise"
who = "coordination"
due = "30m"
detail = "Visio permanente : **lien dans l'agenda**."

[[scenario.action]]
levels = ["orange", "rouge"]
title = "Appeler l'astreinte de l'ARS"
who = "Président de la CPTS"
due = "1h"

[[scenario.action]]
levels = ["rouge"]
title = "Point de situation à H+2"
due = "2h"

[scenario.instructions]
orange = "Repérez vos **patients fragiles** <script>alert(1)</script>.\n\n- appelez-les\n- rappelez-leur de boire"

[scenario.public_advice]
orange = "Buvez régulièrement de l'eau et mangez en quantité suffisante."
"#;

fn with_cards(dir: &std::path::Path) {
    let path = dir.join("plans/plan.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "quorum = 2\ntimeout = \"30m\"\n",
        &format!("quorum = 2\ntimeout = \"30m\"\n{CARDS}"),
        1,
    );
    let text = text.replacen(
        "owners = { groups = [\"bureau\"] }",
        "owners = { groups = [\"bureau\"] }\nexercise_every = \"12mo\"",
        1,
    );
    std::fs::write(&path, text).unwrap();
}

async fn start() -> TestDaemon {
    TestDaemon::start_setup(false, with_cards).await
}

async fn actions(d: &TestDaemon, id: &str) -> Vec<Value> {
    let (status, v) = d
        .api(Method::GET, &format!("/api/v1/events/{id}/actions"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    v["actions"].as_array().unwrap().clone()
}

fn titles(list: &[Value]) -> Vec<(i64, String)> {
    list.iter()
        .map(|a| {
            (
                a["n"].as_i64().unwrap(),
                a["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn level(d: &TestDaemon, id: &str, level: &str) {
    let (status, v) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/level"),
            Some(json!({ "level": level })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_level_adds_its_actions_once_with_their_due_time() {
    let d = start().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let list = actions(&d, &id).await;
    assert_eq!(
        titles(&list),
        [(1, "Convoquer la cellule de crise".to_string())]
    );
    // Declared at 10:00 in Paris, due within 30 minutes (UTC, as the API).
    assert_eq!(list[0]["due_at"], "2026-06-15T08:30:00+00:00");
    assert_eq!(list[0]["who"], "coordination");
    assert_eq!(list[0]["done_at"], Value::Null);

    // Orange ten minutes later: the ARS call joins, due an hour after that.
    d.advance(Duration::minutes(10));
    level(&d, &id, "orange").await;
    let list = actions(&d, &id).await;
    assert_eq!(
        titles(&list),
        [
            (1, "Convoquer la cellule de crise".to_string()),
            (2, "Appeler l'astreinte de l'ARS".to_string())
        ]
    );
    assert_eq!(list[1]["due_at"], "2026-06-15T09:10:00+00:00");
    assert_eq!(list[0]["due_at"], "2026-06-15T08:30:00+00:00", "kept");

    // Declared again at orange, back to jaune, orange again: nothing twice.
    d.declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    level(&d, &id, "jaune").await;
    level(&d, &id, "orange").await;
    assert_eq!(actions(&d, &id).await.len(), 2);

    // Rouge adds its own card only.
    level(&d, &id, "rouge").await;
    let list = actions(&d, &id).await;
    assert_eq!(list.len(), 3);
    assert_eq!(list[2]["title"], "Point de situation à H+2");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticking_an_action_through_the_api_records_who_and_logs_it_once() {
    let d = start().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    d.advance(Duration::minutes(5));
    let path = format!("/api/v1/events/{id}/actions/2/done");
    let (status, a) = d
        .api(
            Method::POST,
            &path,
            Some(json!({"note": "Astreinte ARS jointe, rappel à 14 h"})),
        )
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["n"], 2);
    assert_eq!(a["done_at"], "2026-06-15T08:05:00+00:00");
    assert!(a["done_by"].as_str().unwrap().starts_with("token:"), "{a}");
    assert_eq!(a["note"], "Astreinte ARS jointe, rappel à 14 h");

    // Twice: 409, as JSON, and the first tick stands.
    let (status, e) = d.api(Method::POST, &path, None).await;
    assert_eq!(status, 409, "{e}");
    assert!(e["error"]["message"].is_string(), "{e}");
    let list = actions(&d, &id).await;
    assert_eq!(list[1]["note"], "Astreinte ARS jointe, rappel à 14 h");
    assert_eq!(list[0]["done_at"], Value::Null);

    // Unknown action or event: 404 JSON.
    let (status, e) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/actions/9/done"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{e}");
    assert!(e["error"]["code"].is_string(), "{e}");
    let (status, e) = d.api(Method::GET, "/api/v1/events/999/actions", None).await;
    assert_eq!(status, 404, "{e}");
    // Without a token: refused.
    let r = d
        .http
        .post(d.url(&path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(r, 401);

    // The main courante has the tick, once, in the same transaction.
    let log = d.journal(&id).await;
    let done: Vec<_> = log.iter().filter(|e| e.kind == "action_done").collect();
    assert_eq!(done.len(), 1, "{log:?}");
    assert!(
        done[0].text.contains("Appeler l'astreinte de l'ARS")
            && done[0].text.contains("rappel à 14 h"),
        "{}",
        done[0].text
    );

    // Once resolved the checklist is closed: a late tick would read "on
    // time" in the RETEX report.
    let (status, _) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/resolve"), None)
        .await;
    assert_eq!(status, 200);
    let (status, e) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/actions/1/done"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(actions(&d, &id).await[0]["done_at"], Value::Null);
    let cookie = d.operator_cookie().await;
    let html = page(&d, &cookie, &format!("/bureau/events/{id}")).await;
    assert!(!html.contains("Cocher comme faite"), "{html}");
    assert!(row(&html, 1).contains("Non faite"), "{html}");
    d.stop().await;
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// `&#x27;` and the like back to characters, to read a page's text.
fn unescaped(html: &str) -> String {
    html.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
}

async fn page(d: &TestDaemon, cookie: &str, path: &str) -> String {
    let (status, html) = d.page(cookie, path).await;
    assert_eq!(status, 200, "{path}");
    unescaped(&html)
}

/// The row of action `n` on the event page.
fn row(html: &str, n: i64) -> String {
    let start = html
        .find(&format!("<tr id=\"action-{n}\""))
        .unwrap_or_else(|| panic!("no row for action {n}:\n{html}"));
    let end = html[start..].find("</tr>").unwrap();
    html[start..start + end].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_page_shows_overdue_actions_in_red_and_in_words_and_ticks_them() {
    let d = start().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let cookie = d.operator_cookie().await;
    let path = format!("/bureau/events/{id}");

    // 10:40: the cell was due at 10:30, the ARS call at 11:00.
    d.advance(Duration::minutes(40));
    let html = page(&d, &cookie, &path).await;
    let first = row(&html, 1);
    assert!(first.contains("class=\"overdue\""), "{first}");
    assert!(first.contains("En retard"), "{first}");
    assert!(first.contains("15/06/2026 à 10:30"), "{first}");
    assert!(
        first.contains("<strong>lien dans l'agenda</strong>"),
        "{first}"
    );
    let list = actions(&d, &id).await;
    assert_eq!(list[0]["overdue"], true, "{list:?}");
    assert_eq!(list[1]["overdue"], false, "{list:?}");
    let second = row(&html, 2);
    assert!(
        !second.contains("overdue") && !second.contains("En retard"),
        "{second}"
    );
    assert!(second.contains("15/06/2026 à 11:00"), "{second}");

    // The dashboard's card of the event counts them.
    let dash = page(&d, &cookie, "/bureau").await;
    assert!(
        dash.contains("#actions\">Actions</a> : 0 faite sur 2 <span class=\"badge b-failed\">1 en retard</span>"),
        "{dash}"
    );

    // Ticked from the page: done, by the operator, no longer late.
    let csrf = csrf_of(&html);
    let r = client()
        .post(d.url(&format!("/bureau/events/{id}/actions/1/done")))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("note", "Cellule réunie en visio")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let html = page(&d, &cookie, &path).await;
    assert!(
        html.contains("Action n° 1 « Convoquer la cellule de crise » cochée comme faite."),
        "{html}"
    );
    let first = row(&html, 1);
    assert!(
        !first.contains("overdue") && !first.contains("En retard"),
        "{first}"
    );
    assert!(
        first.contains("Faite</span> le 15/06/2026 à 10:40 par bureau — Cellule réunie en visio"),
        "{first}"
    );
    let list = actions(&d, &id).await;
    assert_eq!(list[0]["done_by"], "bureau");
    let dash = page(&d, &cookie, "/bureau").await;
    assert!(
        dash.contains("#actions\">Actions</a> : 1 faite sur 2</p>"),
        "{dash}"
    );

    // Ticked again (an old page): refused, said in French, nothing changes.
    let r = client()
        .post(d.url(&format!("/bureau/events/{id}/actions/1/done")))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("note", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let html = unescaped(&r.text().await.unwrap());
    assert!(html.contains("L'action n° 1 est déjà cochée"), "{html}");
    // Without the CSRF token: refused.
    let r = client()
        .post(d.url(&format!("/bureau/events/{id}/actions/2/done")))
        .header("Cookie", &cookie)
        .form(&[("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(actions(&d, &id).await[1]["done_at"], Value::Null);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instructions_reach_the_response_page_escaped_and_the_templates_and_advice_the_public_page()
{
    let d = TestDaemon::start_setup(true, |dir| {
        with_cards(dir);
        let path = dir.join("plans/plan.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen(
                "{{ event.note }}\n",
                "{{ event.note }}\n{{ instructions }}\n",
                1,
            ),
        )
        .unwrap();
    })
    .await;
    // Before anything is declared, the public page gives no advice.
    let html = d.get_text("/").await;
    assert!(!html.contains("Conseils à la population"), "{html}");

    d.declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    crate::harness::eventually(10, "mailed", || async {
        !d.smtp.to("claire.martin@example.org").is_empty()
            && d.smtp
                .messages()
                .iter()
                .any(|m| m.subject() == "Canicule niveau orange")
    })
    .await;

    // The plan's template used `{{ instructions }}`: the level's text.
    let broadcast = d
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.subject() == "Canicule niveau orange")
        .unwrap();
    assert!(
        broadcast.text().contains("Repérez vos patients fragiles"),
        "{}",
        broadcast.text()
    );

    // The response page shows them as safe HTML: bold and a list, the
    // script written in the plan only as text.
    let link = d.link_for("claire.martin@example.org");
    let path = link.trim_start_matches("http://vigie.test").to_string();
    let html = d.get_text(&path).await;
    assert!(
        html.contains("<h2 id=\"consignes\">Consignes</h2>"),
        "{html}"
    );
    assert!(
        html.contains("Repérez vos <strong>patients fragiles</strong>"),
        "{html}"
    );
    assert!(html.contains("<li>appelez-les</li>"), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );

    // The public page: the level's advice to the population.
    let html = d.get_text("/").await;
    let html = unescaped(&html).replace("&#39;", "'");
    assert!(html.contains("Conseils à la population"), "{html}");
    assert!(
        html.contains("Buvez régulièrement de l'eau et mangez en quantité suffisante."),
        "{html}"
    );
    assert!(!html.contains("EXERCICE"), "{html}");

    // An exercise's advice is marked as such: nobody takes it for real.
    let ex = d
        .declare(json!({"scenario": "canicule", "level": "orange", "exercise": true}))
        .await;
    assert_eq!(ex["exercise"], true, "{ex}");
    let html = d.get_text("/").await;
    let html = unescaped(&html).replace("&#39;", "'");
    assert!(
        html.contains("EXERCICE — aucune situation réelle."),
        "{html}"
    );
    assert!(
        html.contains("Exercice — conseils à la population"),
        "{html}"
    );
    d.stop().await;
}

/// The plan of [`with_cards`], to be exercised every three months.
fn every_three_months(dir: &std::path::Path) {
    with_cards(dir);
    let path = dir.join("plans/plan.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("exercise_every = \"12mo\"", "exercise_every = \"3mo\"", 1),
    )
    .unwrap();
}

fn paris(y: i32, m: u32, d: u32, h: u32, mi: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(y, m, d, h, mi, 0)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The exercise notices of the dashboard: (kind, text).
async fn exercise_notices(d: &TestDaemon, cookie: &str) -> Vec<(String, String)> {
    let html = page(d, cookie, "/bureau").await;
    html.split("<div class=\"alert ")
        .skip(1)
        .filter(|s| s.contains("exercise-notice"))
        .map(|s| {
            let kind = s.split(' ').next().unwrap().to_string();
            let text = s.split('>').nth(1).unwrap().split('<').next().unwrap();
            (kind, text.replace("&#39;", "'"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_says_when_the_plan_was_last_exercised_and_warns_when_it_is_overdue() {
    let d = TestDaemon::start_setup(false, every_three_months).await;
    let cookie = d.operator_cookie().await;
    let plan = "Plan de gestion de crise — CPTS de test";
    // A real event is not an exercise.
    d.declare(json!({"scenario": "cellule_crise"})).await;
    assert_eq!(
        exercise_notices(&d, &cookie).await,
        [(
            "warn".to_string(),
            format!(
                "Aucun exercice du plan « {plan} » n'a encore été fait : le plan demande un \
                 exercice tous les 3 mois. Prévoyez-en un."
            )
        )]
    );
    d.declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    assert_eq!(
        exercise_notices(&d, &cookie).await,
        [(
            "ok".to_string(),
            format!(
                "Dernier exercice du plan « {plan} » : le 15/06/2026 (un exercice tous les 3 mois)."
            )
        )]
    );
    // Three months and a half later, in the same plan's year.
    d.clock.set(paris(2026, 10, 1, 9, 0));
    let cookie = d.operator_cookie().await;
    assert_eq!(
        exercise_notices(&d, &cookie).await,
        [(
            "warn".to_string(),
            format!(
                "Aucun exercice du plan « {plan} » depuis le 15/06/2026 : le plan demande un \
                 exercice tous les 3 mois. Prévoyez-en un."
            )
        )]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_reminder_says_when_the_plan_was_last_exercised() {
    let d = TestDaemon::start_setup(false, every_three_months).await;
    d.declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    // review_by = 2026-11-30: first notice on 31 October at 09:00.
    d.clock.set(paris(2026, 10, 31, 8, 59));
    d.daemon().state.reminder_tick().await.unwrap();
    d.clock
        .set(paris(2026, 10, 31, 9, 0) + Duration::seconds(5));
    d.daemon().state.reminder_tick().await.unwrap();
    d.daemon().state.kick();
    let review = || {
        d.smtp
            .messages()
            .into_iter()
            .filter(|m| m.subject().starts_with("Révision annuelle"))
            .collect::<Vec<_>>()
    };
    crate::harness::eventually(10, "review mails", || async { !review().is_empty() }).await;
    let text = review()[0].text();
    assert!(
        text.contains(
            "Aucun exercice du plan « Plan de gestion de crise — CPTS de test » depuis le \
             15/06/2026 : le plan demande un exercice tous les 3 mois."
        ),
        "{text}"
    );
    d.stop().await;
}

#[test]
fn the_shipped_plan_gives_every_scenario_action_cards_and_instructions_and_has_pollution() {
    let mut diags = vigie::config::Diagnostics::default();
    let plan = vigie::config::plan::load_file(
        &crate::support::repo().join("plans/pgc-2026.toml"),
        &mut diags,
    )
    .unwrap_or_else(|| panic!("{diags:?}"));
    assert!(plan.exercise_every.is_some());
    for s in &plan.scenarios {
        assert!(s.actions.len() >= 3, "{}: too few action cards", s.id.value);
        let levels: Vec<Option<&str>> = if s.levels.is_empty() {
            vec![None]
        } else {
            s.levels.iter().map(|l| Some(l.value.as_str())).collect()
        };
        for l in levels {
            assert!(
                s.instructions.get(l).is_some(),
                "{}: no instructions at {l:?}",
                s.id.value
            );
            assert!(
                s.actions.iter().any(|a| a.applies_to(l)),
                "{}: no action at {l:?}",
                s.id.value
            );
        }
    }
    for id in ["canicule", "grand_froid", "pollution"] {
        let s = plan
            .scenario(id)
            .unwrap_or_else(|| panic!("no scenario {id}"));
        for l in &s.levels {
            assert!(
                s.public_advice.get(Some(&l.value)).is_some(),
                "{id}: no public advice at {}",
                l.value
            );
        }
    }
}

#[test]
fn a_coordinator_lists_and_ticks_the_actions_from_the_command_line() {
    let sb = crate::support::Sandbox::shipped();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sb.edit(
        "config/vigie.toml",
        "listen = \"127.0.0.1:8640\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let _d = crate::support::DaemonProcess::start(&sb.config());
    let config = sb.config();
    let c = config.to_str().unwrap();
    let run = crate::support::run_vigie;
    let (code, out, err) = run(&["declare", "cellule_crise", "--exercise", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = run(&["actions", "1", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with(
            "1. [à faire] Ouvrir la main courante et désigner un secrétaire de séance — coordination · attendue "
        ),
        "{out}"
    );

    let (code, out, err) = run(&["done", "1", "1", "Main courante ouverte", "-c", c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("1. [fait] Ouvrir la main courante"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with(" : Main courante ouverte"),
        "{out}"
    );

    // Ticked twice: refused, exit 1, the daemon's message.
    let (code, out, err) = run(&["done", "1", "1", "-c", c]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("already done") && err.contains("HTTP 409"),
        "{err}"
    );
}
