//! The RETEX report of a scripted exercise (SPEC §12): declared, three
//! answers with arrival delays, one action done, one bulletin, one
//! operator note, resolved — the report says which actions were done on
//! time, late or not at all, and who came and when, in its JSON, its page
//! and `vigie report`. The daemon in process, real HTTP and SMTP, the
//! clock injected. `browser::the_report_of_a_scripted_exercise_prints_on_a4`
//! looks at the same exercise in Chromium.

use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestDaemon, eventually, run_vigie_async};

/// Two action cards on the canicule scenario: one due 30 min after the
/// level is entered, one (orange and red only) due after 1 h.
const CARDS: &str = r#"
[[scenario.action]]
title = "Convoquer la cellule de crise"
who = "coordination"
due = "30m"

[[scenario.action]]
levels = ["orange", "rouge"]
title = "Appeler l'astreinte de l'ARS"
who = "Président de la CPTS"
due = "1h"
"#;

/// A daemon with the cards, a manual clock (10:00 in Paris), and a
/// configuration the command line can reach.
pub async fn start() -> TestDaemon {
    let d = TestDaemon::start_setup(false, |dir| {
        let path = dir.join("plans/plan.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let with = text.replacen(
            "quorum = 2\ntimeout = \"30m\"\n",
            &format!("quorum = 2\ntimeout = \"30m\"\n{CARDS}"),
            1,
        );
        assert_ne!(with, text, "the canicule scenario of the fixture");
        std::fs::write(&path, with).unwrap();
    })
    .await;
    d.config_for_cli();
    d
}

async fn answer_with(d: &TestDaemon, email: &str, eta: &str, comment: &str) {
    let (status, _) = d
        .answer_with(&d.link_for(email), "disponible", eta, comment)
        .await;
    assert_eq!(status, 200, "{email} answers");
}

async fn api_ok(d: &TestDaemon, method: Method, path: String, body: Option<Value>) -> Value {
    let (status, v) = d.api(method, &path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

/// The exercise, from 10:00 to 11:30 (Paris): its id.
pub async fn scripted_exercise(d: &TestDaemon) -> String {
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "orange", "exercise": true}))
        .await;
    eventually(10, "everything sent", || d.all_sent(&id)).await;
    // 10:00 Claire (tier 1) in 30 min; 10:05 Hélène (tier 1) in 10 min;
    // 10:10 Kevin (the nurses' broadcast) in 45 min.
    answer_with(
        d,
        "claire.martin@example.org",
        "30",
        "Je passe prendre le matériel",
    )
    .await;
    d.advance(Duration::minutes(5));
    answer_with(d, "helene.fuchs@example.org", "10", "").await;
    d.advance(Duration::minutes(5));
    answer_with(d, "kevin.ott@example.org", "45", "").await;
    // 10:20 the cell is convened (due 10:30) and a bulletin goes out.
    d.advance(Duration::minutes(10));
    api_ok(
        d,
        Method::POST,
        format!("/api/v1/events/{id}/actions/1/done"),
        Some(json!({"note": "Visio ouverte"})),
    )
    .await;
    api_ok(
        d,
        Method::POST,
        format!("/api/v1/events/{id}/bulletin"),
        Some(json!({"text": "Exercice : cellule de crise réunie, trois renforts annoncés."})),
    )
    .await;
    // 10:25 an operator note; 11:30 resolved, the ARS never called (due 11:00).
    d.advance(Duration::minutes(5));
    api_ok(
        d,
        Method::POST,
        format!("/api/v1/events/{id}/log"),
        Some(json!({"text": "Pharmacie de garde prévenue par téléphone"})),
    )
    .await;
    d.advance(Duration::minutes(65));
    api_ok(
        d,
        Method::POST,
        format!("/api/v1/events/{id}/resolve"),
        None,
    )
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_an_exercise_says_which_actions_were_late_and_who_came_when() {
    let d = start().await;
    let id = scripted_exercise(&d).await;

    let r = api_ok(&d, Method::GET, format!("/api/v1/events/{id}/report"), None).await;
    assert_eq!(r["duration_secs"], 90 * 60);
    let actions: Vec<(i64, &str, &Value, &Value)> = r["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["n"].as_i64().unwrap(),
                a["status"].as_str().unwrap(),
                &a["late_secs"],
                &a["done_at"],
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (1, "on_time", &Value::Null, &json!("2026-06-15T08:20:00Z")),
            (2, "not_done", &json!(1800), &Value::Null),
        ],
        "{r}"
    );
    assert_eq!(r["actions"][0]["note"], "Visio ouverte");
    assert_eq!(r["actions"][1]["due_at"], "2026-06-15T09:00:00Z");
    let coming: Vec<(&str, &Value, &Value, &str)> = r["coming"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                &c["tier"],
                &c["eta_minutes"],
                c["expected_at"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        coming,
        [
            (
                "Hélène Fuchs",
                &json!(1),
                &json!(10),
                "2026-06-15T08:15:00Z"
            ),
            (
                "Claire Martin",
                &json!(1),
                &json!(30),
                "2026-06-15T08:30:00Z"
            ),
            (
                "Kevin Ott",
                &Value::Null,
                &json!(45),
                "2026-06-15T08:55:00Z"
            ),
        ],
        "{r}"
    );
    assert_eq!(r["coming"][1]["comment"], "Je passe prendre le matériel");
    let kinds: Vec<&str> = r["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["action_done", "bulletin", "note", "resolved"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // The page: the two sections, times in Paris, in French.
    let cookie = d.operator_cookie().await;
    let html = d
        .page(&cookie, &format!("/bureau/events/{id}/report"))
        .await
        .1;
    assert!(
        html.contains("<p>1 action faite sur 2 : 1 à temps, 0 en retard ; 1 non faite.</p>"),
        "{html}"
    );
    assert!(
        html.contains("<tr class=\"action-ok\"><td>1</td><td>Convoquer la cellule de crise<div class=\"entry-corr note\">Visio ouverte</div></td><td>coordination</td><td>15&#x2f;06&#x2f;2026 à 10:30</td><td>15&#x2f;06&#x2f;2026 à 10:20, par API (generated)</td><td>Faite à temps</td></tr>"),
        "{html}"
    );
    assert!(
        html.contains("<td>15&#x2f;06&#x2f;2026 à 11:00</td><td>—</td><td>Non faite, en retard de 30 min</td></tr>"),
        "{html}"
    );
    assert!(
        html.contains("<tr><td><strong>15&#x2f;06&#x2f;2026 à 10:15</strong></td><td>Hélène Fuchs</td><td>Palier 1</td><td>Disponible</td><td>15&#x2f;06&#x2f;2026 à 10:05</td><td>10 min</td><td class=\"note\"></td></tr>"),
        "{html}"
    );
    let (helene, claire, kevin) = (
        html.find("<td>Hélène Fuchs</td>").unwrap(),
        html.find("<td>Claire Martin</td><td>Palier 1").unwrap(),
        html.find("<td>Kevin Ott</td><td>Diffusion — Infirmiers</td>")
            .unwrap(),
    );
    assert!(helene < claire && claire < kevin, "by expected arrival");
    // The main courante says who, in words.
    assert!(
        html.contains("<td>Note</td><td>API (generated)</td><td class=\"note\">Pharmacie de garde prévenue par téléphone</td>"),
        "{html}"
    );
    assert!(!html.contains("token:"), "{html}");
    // The event page names authors the same way (it showed `token:generated`).
    let (_, page) = d.page(&cookie, &format!("/bureau/events/{id}")).await;
    assert!(page.contains("API (generated)"), "{page}");
    assert!(!page.contains("token:"), "{page}");
    // Every answer is positive: the positive line is dashed over the other.
    assert!(
        html.contains("<polyline class=\"positive\" fill=\"none\" stroke=\"#145c2c\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points="),
        "{html}"
    );

    // `vigie report`: the same, as text.
    let c = d.dir.path().join("config/vigie.toml");
    let (code, out, err) = run_vigie_async(vec![
        "report".to_string(),
        id.clone(),
        "-c".into(),
        c.to_str().unwrap().into(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    for want in [
        "  Hélène Fuchs (palier 1) : disponible le 2026-06-15 10:05 CEST, arrivée prévue le 2026-06-15 10:15 CEST (délai annoncé 10 min)",
        "  Claire Martin (palier 1) : disponible le 2026-06-15 10:00 CEST, arrivée prévue le 2026-06-15 10:30 CEST (délai annoncé 30 min) — « Je passe prendre le matériel »",
        "  n° 1 Convoquer la cellule de crise (prévue pour le 2026-06-15 10:30 CEST) : faite le 2026-06-15 10:20 CEST par token:",
        "  n° 2 Appeler l'astreinte de l'ARS (prévue pour le 2026-06-15 11:00 CEST) : NON FAITE, en retard de 30 min",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    d.stop().await;
}
