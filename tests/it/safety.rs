//! A real alert must never go out wrong (issue 12, SPEC §7): an exercise
//! and a real event of the same scenario never merge, a repeated
//! declaration never lowers a level or re-sends by accident, and a link
//! minted for an event lost in a database restore never opens a newer one.

use chrono::Duration;
use reqwest::Method;
use serde_json::json;
use vigie::engine::render::EXERCISE_LINE;
use vigie::schedule::clock::Clock;

use crate::harness::{TestDaemon, count, eventually};

async fn all_sent(d: &TestDaemon, id: &str) -> bool {
    let ev = d.event(id).await;
    count(&ev, "pending") + count(&ev, "sending") + count(&ev, "retrying") == 0
}

/// The e-mails of one event (their `Message-ID` carries no event number, so
/// by the recipients' response links, which do).
fn mails_of_event(d: &TestDaemon, id: &str) -> Vec<crate::smtp::Received> {
    let prefix = format!("http://vigie.test/r/{id}.");
    d.smtp
        .messages()
        .into_iter()
        .filter(|m| m.text().contains(&prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alert_during_an_exercise_opens_a_real_event_sent_without_the_exercise_mark() {
    let d = TestDaemon::start().await;
    let drill = d
        .declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    let drill_id = drill["id"].as_str().unwrap().to_string();
    eventually(10, "the exercise is sent", || all_sent(&d, &drill_id)).await;

    let (status, real) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "orange"})),
        )
        .await;
    assert_eq!(
        status, 201,
        "a new event, not an update of the exercise: {real}"
    );
    assert_eq!(real["updated"], false);
    assert_eq!(real["exercise"], false);
    assert_ne!(real["id"], drill["id"]);
    assert_eq!(real["beside"][0]["id"], drill["id"], "{real}");
    assert_eq!(real["beside"][0]["exercise"], true);
    assert!(
        real["warning"].as_str().unwrap().contains("EXERCISE"),
        "{real}"
    );
    let real_id = real["id"].as_str().unwrap().to_string();
    eventually(10, "the real alert is sent", || all_sent(&d, &real_id)).await;

    // What the professionals read: the real alert is not an exercise.
    let real_mails = mails_of_event(&d, &real_id);
    assert!(!real_mails.is_empty());
    for m in &real_mails {
        assert!(!m.subject().contains("EXERCICE"), "{}", m.subject());
        assert!(!m.text().contains(EXERCISE_LINE), "{}", m.text());
    }
    for m in mails_of_event(&d, &drill_id) {
        assert!(m.subject().starts_with("[EXERCICE] "), "{}", m.subject());
    }
    // The exercise kept its level.
    assert_eq!(d.event(&drill_id).await["level"], "jaune");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_during_a_real_alert_never_changes_the_real_event() {
    let d = TestDaemon::start().await;
    let real = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let real_id = real["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &real_id)).await;
    let before = d.smtp.messages().len();

    let (status, drill) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "rouge", "exercise": true})),
        )
        .await;
    assert_eq!(status, 201, "{drill}");
    assert_eq!(drill["exercise"], true);
    assert_ne!(drill["id"], real["id"]);
    assert!(
        drill["warning"].as_str().unwrap().contains("REAL"),
        "{drill}"
    );
    let drill_id = drill["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &drill_id)).await;

    let real_now = d.event(&real_id).await;
    assert_eq!(real_now["level"], "orange", "the real event stays orange");
    assert_eq!(real_now["exercise"], false);
    // Everything sent after the real alert belongs to the exercise.
    for m in &d.smtp.messages()[before..] {
        assert!(m.subject().starts_with("[EXERCICE] "), "{}", m.subject());
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_again_without_a_level_keeps_the_level_and_sends_nothing() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "rouge"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &id)).await;
    let sent = d.smtp.messages().len();

    let (status, again) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "note": "Point de situation"})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["updated"], true);
    assert_eq!(again["level_changed"], false);
    assert_eq!(again["level"], "rouge", "not back to the first level");
    assert_eq!(again["queued"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(d.smtp.messages().len(), sent, "nothing re-sent");
    assert_eq!(d.event(&id).await["level"], "rouge");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowering_a_level_by_declaring_again_needs_downgrade() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "rouge"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();

    let (status, err) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "jaune"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "conflict");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("downgrade"),
        "{err}"
    );
    assert_eq!(d.event(&id).await["level"], "rouge");

    // Raising it is a plain re-declaration, lowering it an explicit one.
    let (status, lowered) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "orange", "downgrade": true})),
        )
        .await;
    assert_eq!(status, 200, "{lowered}");
    assert_eq!(lowered["level"], "orange");
    assert_eq!(lowered["level_changed"], true);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_of_an_event_lost_in_a_restore_does_not_open_the_newer_event_with_its_number() {
    let mut d = TestDaemon::start().await;
    let var = d.dir.path().join("var");
    // A copy of the database taken before anything was declared (the
    // daemon stopped, so the copy is whole).
    d.daemon.take().unwrap().stop().await;
    let backup = d.dir.path().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    for f in ["vigie.db", "vigie.db-wal", "vigie.db-shm"] {
        if var.join(f).exists() {
            std::fs::copy(var.join(f), backup.join(f)).unwrap();
        }
    }
    let now = d.clock.now();
    d.restart_at(now).await;

    // An event declared after the copy: lost in the restore.
    let lost = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let lost_id = lost["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &lost_id)).await;
    let lost_link = d.link_for("claire.martin@example.org");

    // The database is restored from the copy, and the daemon starts again.
    d.daemon.take().unwrap().stop().await;
    for f in ["vigie.db", "vigie.db-wal", "vigie.db-shm"] {
        let _ = std::fs::remove_file(var.join(f));
        if backup.join(f).exists() {
            std::fs::copy(backup.join(f), var.join(f)).unwrap();
        }
    }
    d.restart_at(now + Duration::minutes(5)).await;
    let newer = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    assert_eq!(
        newer["id"], lost["id"],
        "the restored database hands the number out again (the case this guards)"
    );
    let newer_id = newer["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &newer_id)).await;

    // The lost event's link opens nothing, and answers nothing.
    let path = lost_link.trim_start_matches("http://vigie.test");
    let r = d.http.get(d.url(path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(d.answer(&lost_link, "disponible").await, 404);
    let ev = d.event(&newer_id).await;
    assert_eq!(ev["responses"].as_array().unwrap().len(), 0, "{ev}");
    assert_eq!(ev["state"], "active");

    // Her two messages carry two Message-IDs, though the restored database
    // gave the newer delivery the lost one's number: a mail system that
    // drops a Message-ID it has seen does not drop the newer alert.
    let to_her = d.smtp.to("claire.martin@example.org");
    assert_eq!(to_her.len(), 2);
    let (a, b) = (
        to_her[0].header("Message-ID").unwrap(),
        to_her[1].header("Message-ID").unwrap(),
    );
    assert_ne!(a, b);

    // The newer event's own link works.
    let link = d.link_for("claire.martin@example.org");
    assert_ne!(link, lost_link);
    assert_eq!(d.answer(&link, "disponible").await, 200);
    assert_eq!(d.event(&newer_id).await["state"], "acknowledged");
    d.stop().await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in as the generated operator: (session cookie pair, CSRF token).
async fn operator_session(d: &TestDaemon) -> (String, String) {
    let cookie = d.operator_cookie().await;
    let html = dashboard(d, &cookie, "/bureau").await;
    let i = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    let csrf = html[i..].split('"').next().unwrap().to_string();
    (cookie, csrf)
}

async fn dashboard(d: &TestDaemon, cookie: &str, path: &str) -> String {
    no_redirects()
        .get(d.url(path))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_says_plainly_that_a_real_alert_runs_beside_an_exercise() {
    let d = TestDaemon::start().await;
    let (cookie, csrf) = operator_session(&d).await;
    d.declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;

    // A real declaration from the dashboard's form (no "exercise" box).
    let r = no_redirects()
        .post(d.url("/bureau/declare"))
        .header("Cookie", &cookie)
        .form(&[
            ("choice", "canicule:orange"),
            ("csrf", csrf.as_str()),
            ("confirm", "oui"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let html = dashboard(&d, &cookie, "/bureau").await;
    assert!(html.contains("Alerte réelle n° 2 déclenchée"), "{html}");
    assert!(
        html.contains("un exercice de ce scénario est en cours (n° 1)"),
        "{html}"
    );
    // And on every later visit, as long as both run.
    let html = dashboard(&d, &cookie, "/bureau").await;
    assert!(
        !html.contains("Alerte réelle n° 2 déclenchée"),
        "shown once"
    );
    assert!(
        html.contains("une alerte RÉELLE (n° 2) et un exercice (n° 1) sont en cours en même temps"),
        "{html}"
    );

    // A lower level from the form is refused, in French, and changes nothing.
    let r = no_redirects()
        .post(d.url("/bureau/declare"))
        .header("Cookie", &cookie)
        .form(&[
            ("choice", "canicule:jaune"),
            ("csrf", csrf.as_str()),
            ("confirm", "oui"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("Changer de niveau"), "{html}");
    assert_eq!(d.event("2").await["level"], "orange");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_message_cannot_be_written_by_a_link() {
    let d = TestDaemon::start().await;
    let (cookie, _) = operator_session(&d).await;
    let html = dashboard(&d, &cookie, "/bureau?fait=leve&n=5").await;
    assert!(html.contains("Tableau de bord"), "{html}");
    assert!(
        !html.contains("n° 5"),
        "a message taken from the query: {html}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let d = TestDaemon::start().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = d
            .http
            .get(d.url("/api/v1/status"))
            .header("Authorization", format!("{scheme} {}", d.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{scheme}");
    }
    let r = d
        .http
        .get(d.url("/api/v1/status"))
        .header("Authorization", format!("Basic {}", d.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    d.stop().await;
}
