//! The main courante, bulletins, lessons learned and the RETEX report
//! (SPEC §12), end to end: the daemon in process with a manual clock, real
//! SMTP and webhook receivers, the API, the pages and the command line.

use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestDaemon, csrf_of, eventually, run_vigie_async};

async fn log(d: &TestDaemon, id: &str) -> Vec<Value> {
    let (status, v) = d
        .api(Method::GET, &format!("/api/v1/events/{id}/log"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}

fn kinds(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_of_a_scripted_event_is_logged_once_in_order_by_who_made_it() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune", "note": "Chaleur forte."}))
        .await;
    eventually(10, "tier 1 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;
    // Tier 1 times out: Vigie alerts tier 2 (the bureau).
    d.advance(Duration::minutes(15) + Duration::seconds(1));
    assert_eq!(d.daemon().state.escalation_tick().await.unwrap(), 1);
    eventually(10, "tier 2 mailed", || async {
        d.smtp.messages().len() == 5
    })
    .await;
    d.advance(Duration::minutes(4));
    assert_eq!(
        d.answer(&d.link_for("olivier.bilger@example.org"), "disponible")
            .await,
        200
    );
    assert_eq!(
        d.answer(&d.link_for("helene.fuchs@example.org"), "indisponible")
            .await,
        200
    );
    // The second "disponible" reaches tier 2's quorum (2).
    assert_eq!(
        d.answer(&d.link_for("isabelle.walch@example.org"), "disponible")
            .await,
        200
    );
    assert_eq!(d.event(&id).await["state"], "acknowledged");
    let (status, v) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/level"),
            Some(json!({"level": "orange"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // A declaration of the same scenario merges into the event: logged too.
    d.declare(json!({"scenario": "canicule", "level": "rouge"}))
        .await;
    let (status, v) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/resolve"), None)
        .await;
    assert_eq!(status, 200, "{v}");

    let entries = log(&d, &id).await;
    assert_eq!(
        kinds(&entries),
        [
            "declared",
            "tier_notified",
            "tier_notified",
            "response",
            "response",
            "response",
            "acknowledged",
            "level_changed",
            "level_changed",
            "resolved"
        ],
        "{entries:#?}"
    );
    let authors: Vec<&str> = entries
        .iter()
        .map(|e| e["author"].as_str().unwrap())
        .collect();
    let token = authors[0];
    assert!(token.starts_with("token:"), "{token}");
    assert_eq!(
        authors,
        [
            token,
            token,
            "vigie",
            "Olivier Bilger",
            "Hélène Fuchs",
            "Isabelle Walch",
            "Isabelle Walch",
            token,
            token,
            token
        ]
    );
    let text = |i: usize| entries[i]["text"].as_str().unwrap();
    assert_eq!(
        text(0),
        "Alerte déclenchée « Vague de chaleur », niveau jaune. Note : Chaleur forte."
    );
    // Times in the daemon's zone (declared at 10:00 in Paris, 15 min timeout).
    assert_eq!(
        text(1),
        "Palier 1 alerté (Référents) : 2 personnes. Quorum attendu : 1 ; échéance du palier à 10 h 15."
    );
    assert!(text(2).starts_with("Palier 2 alerté (Bureau) : 3 personnes. Quorum attendu : 2"));
    assert_eq!(text(4), "Hélène Fuchs a répondu « Indisponible ».");
    assert!(
        text(6).starts_with("Quorum atteint (2 sur 2)"),
        "{}",
        text(6)
    );
    assert_eq!(text(7), "Niveau changé : jaune → orange.");
    assert!(
        text(8).starts_with("Niveau changé : orange → rouge. Nouveau déclenchement fusionné"),
        "{}",
        text(8)
    );
    assert!(text(9).starts_with("Événement terminé."), "{}", text(9));
    // Oldest first, ids increasing, times in RFC 3339 UTC.
    assert!(
        entries
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64())
    );
    assert_eq!(entries[0]["at"], "2026-06-15T08:00:00Z");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_escalation_is_logged_by_vigie_with_what_was_missing() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    d.advance(Duration::minutes(16));
    assert_eq!(d.daemon().state.escalation_tick().await.unwrap(), 1);
    d.advance(Duration::minutes(31));
    assert_eq!(d.daemon().state.escalation_tick().await.unwrap(), 1);
    assert_eq!(d.event(&id).await["state"], "exhausted");
    let entries = log(&d, &id).await;
    assert_eq!(
        kinds(&entries),
        ["declared", "tier_notified", "tier_notified", "exhausted"],
        "{entries:#?}"
    );
    let last = entries.last().unwrap();
    assert_eq!(last["author"], "vigie");
    assert_eq!(
        last["text"],
        "Escalade épuisée sans quorum (0 réponse positive sur 2 attendues) : 3 messages d'alerte mis en file pour les responsables du plan."
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_and_an_unchanged_redeclaration_are_logged_as_such() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    d.declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    let entries = log(&d, &id).await;
    assert_eq!(
        kinds(&entries),
        ["declared", "tier_notified", "redeclared"],
        "{entries:#?}"
    );
    assert!(
        entries[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Exercice déclenché")
    );
    assert!(
        entries[2]["text"]
            .as_str()
            .unwrap()
            .contains("niveau inchangé, rien n'est renvoyé"),
        "{}",
        entries[2]["text"]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_failed_for_good_give_one_entry_per_step_with_the_count() {
    let d = TestDaemon::start().await;
    d.smtp.set_mode(crate::smtp::Mode::RejectRecipient(
        "claire.martin@example.org".into(),
    ));
    d.sms.answer_with(&[400, 400]);
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    eventually(20, "settled", || d.all_sent(&id)).await;
    let ev = d.event(&id).await;
    let failed: Vec<&Value> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    // The entries are written by the step that records the last outcome.
    eventually(10, "two delivery_failed entries", || async {
        log(&d, &id)
            .await
            .iter()
            .filter(|e| e["kind"] == "delivery_failed")
            .count()
            >= 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let entries: Vec<Value> = log(&d, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "delivery_failed")
        .collect();
    assert_eq!(entries.len(), 2, "one per step: {entries:#?}");
    let mut counts: Vec<u64> = entries
        .iter()
        .map(|e| e["data"]["failed"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [1, 2]);
    let texts: Vec<&str> = entries
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"2 envois ont échoué définitivement : diffusion (Infirmiers) — 2 par SMS."),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"1 envoi a échoué définitivement : palier 1 (Référents) — 1 par e-mail."),
        "{texts:?}"
    );
    assert!(entries.iter().all(|e| e["author"] == "vigie"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_names_the_entry_it_corrects_and_bad_notes_are_refused() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let other = d.declare_id(json!({"scenario": "cellule_crise"})).await;
    let post = |event: String, body: Value| {
        let d = &d;
        async move {
            d.api(
                Method::POST,
                &format!("/api/v1/events/{event}/log"),
                Some(body),
            )
            .await
        }
    };
    let (status, first) = post(
        id.clone(),
        json!({"text": "Salle de crise ouverte à Thann"}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["kind"], "note");
    let (status, fix) = post(
        id.clone(),
        json!({"text": "Salle de crise ouverte à Cernay", "corrects": first["id"]}),
    )
    .await;
    assert_eq!(status, 201, "{fix}");
    let entries = log(&d, &id).await;
    let last = entries.last().unwrap();
    assert_eq!(last["corrects"], first["id"]);
    assert_eq!(last["text"], "Salle de crise ouverte à Cernay");
    // The corrected entry is still there, unchanged.
    assert!(
        entries
            .iter()
            .any(|e| e["id"] == first["id"] && e["text"] == "Salle de crise ouverte à Thann")
    );

    let other_entry = log(&d, &other).await[0]["id"].clone();
    for (event, body, code) in [
        (id.clone(), json!({"text": "   "}), 422),
        (id.clone(), json!({"text": "x".repeat(4001)}), 422),
        (
            id.clone(),
            json!({"text": "a", "corrects": other_entry}),
            422,
        ),
        (id.clone(), json!({"text": "a", "corrects": 999999}), 422),
        ("999".to_string(), json!({"text": "a"}), 404),
        (id.clone(), json!({"texte": "a"}), 400),
    ] {
        let (status, v) = post(event, body.clone()).await;
        assert_eq!(status, code, "{body}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    // No route edits or deletes an entry.
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let (status, _) = d
            .api(method.clone(), &format!("/api/v1/events/{id}/log"), None)
            .await;
        assert_eq!(status, 405, "{method}");
    }
    // The dashboard shows what a correction corrects.
    let cookie = d.operator_cookie().await;
    let (_, html) = d.page(&cookie, &format!("/bureau/events/{id}")).await;
    assert!(
        html.contains(&format!(
            "Corrige l'entrée n° {} du 15&#x2f;06&#x2f;2026 à 10:00 : « Salle de crise ouverte à Thann »",
            first["id"]
        )),
        "{html}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_refuses_to_edit_or_delete_an_entry_of_the_main_courante() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let db = d.daemon().state.config().daemon.data_dir.join("vigie.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let update = c.execute(
        "UPDATE event_log SET text = 'réécrit' WHERE event_id = ?1",
        [&id],
    );
    assert!(
        update
            .as_ref()
            .is_err_and(|e| e.to_string().contains("append-only")),
        "{update:?}"
    );
    let delete = c.execute("DELETE FROM event_log WHERE event_id = ?1", [&id]);
    assert!(
        delete
            .as_ref()
            .is_err_and(|e| e.to_string().contains("append-only")),
        "{delete:?}"
    );
    assert!(
        log(&d, &id).await[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Alerte déclenchée")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_bulletins_and_lessons_from_the_dashboard_are_escaped_and_bulletins_go_public() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let cookie = d.operator_cookie().await;
    let (_, html) = d.page(&cookie, &format!("/bureau/events/{id}")).await;
    let csrf = csrf_of(&html);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = |path: String, text: &'static str, csrf: String| {
        let (c, cookie, url) = (no_redirect.clone(), cookie.clone(), d.url(&path));
        async move {
            c.post(url)
                .header("cookie", cookie)
                .form(&[("csrf", csrf.as_str()), ("text", text)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let evil = "<script>alert('x')</script> & <b>gras</b>";
    assert_eq!(
        form(format!("/bureau/events/{id}/log"), evil, csrf.clone()).await,
        303
    );
    // Without the CSRF token: refused, nothing written.
    assert_eq!(
        form(
            format!("/bureau/events/{id}/log"),
            "sans jeton",
            "0000".into()
        )
        .await,
        403
    );
    assert_eq!(
        form(
            format!("/bureau/events/{id}/bulletin"),
            "Point d'eau ouvert <place de la Mairie>",
            csrf.clone()
        )
        .await,
        303
    );
    assert_eq!(
        form(
            format!("/bureau/events/{id}/retex"),
            "Liste <à jour>",
            csrf.clone()
        )
        .await,
        303
    );
    d.advance(Duration::minutes(30));
    assert_eq!(
        form(
            format!("/bureau/events/{id}/bulletin"),
            "Second bulletin",
            csrf.clone()
        )
        .await,
        303
    );
    let entries = log(&d, &id).await;
    let note = entries.iter().find(|e| e["kind"] == "note").unwrap();
    assert_eq!(note["text"], evil);
    assert_eq!(note["author"], "bureau");
    assert!(!entries.iter().any(|e| e["text"] == "sans jeton"));
    assert_eq!(
        entries.iter().filter(|e| e["kind"] == "bulletin").count(),
        2
    );

    let escaped =
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; &lt;b&gt;gras&lt;&#x2f;b&gt;";
    for path in [
        format!("/bureau/events/{id}"),
        format!("/bureau/events/{id}/report"),
    ] {
        let (status, html) = d.page(&cookie, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains(escaped), "{path}: {html}");
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(html.contains("Liste &lt;à jour&gt;"), "{path}");
    }
    // The public page: bulletins newest first with their time, no author.
    let public = d.get_text("/").await;
    let second = public
        .find("<strong>15&#x2f;06&#x2f;2026 à 10:30</strong> — <span class=\"note\">Second bulletin</span>");
    let first = public.find(
        "<strong>15&#x2f;06&#x2f;2026 à 10:00</strong> — <span class=\"note\">Point d&#x27;eau ouvert &lt;place de la Mairie&gt;</span>",
    );
    assert!(
        second.is_some() && first.is_some() && second < first,
        "{public}"
    );
    assert!(!public.contains("bureau)"), "no author on the public page");
    assert!(!public.contains("gras"), "no note on the public page");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_gives_the_scripted_figures_and_the_chart_points() {
    let d = TestDaemon::start_manual().await;
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    eventually(10, "tier 1 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;
    eventually(10, "sent", || d.all_sent(&id)).await;
    d.advance(Duration::minutes(5));
    d.answer(&d.link_for("helene.fuchs@example.org"), "indisponible")
        .await;
    d.advance(Duration::minutes(3));
    d.answer(&d.link_for("claire.martin@example.org"), "disponible")
        .await;
    let (status, lesson) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/retex"),
            Some(json!({"text": "Joindre les référents par SMS aussi"})),
        )
        .await;
    assert_eq!(status, 201, "{lesson}");
    d.api(
        Method::POST,
        &format!("/api/v1/events/{id}/retex"),
        Some(json!({"text": "Tester l'annuaire avant l'été"})),
    )
    .await;

    let (status, r) = d
        .api(Method::GET, &format!("/api/v1/events/{id}/report"), None)
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["scenario"], "canicule");
    assert_eq!(r["plan_version"], "2026.1");
    assert_eq!(r["exercise"], false);
    assert_eq!(r["duration_secs"], 480);
    assert_eq!(r["levels"][0]["level"], "jaune");
    let tier = &r["tiers"][0];
    assert_eq!(
        (
            &tier["tier"],
            &tier["recipients"],
            &tier["answers"],
            &tier["positive"]
        ),
        (&json!(1), &json!(2), &json!(2), &json!(1)),
        "{tier}"
    );
    assert_eq!(tier["time_to_quorum_secs"], 480, "{tier}");
    let email = &r["channels"][0];
    assert_eq!(email["channel"], "email");
    assert_eq!((&email["sent"], &email["failed"]), (&json!(2), &json!(0)));
    assert_eq!(email["first_after_secs"], 0);
    assert_eq!(
        r["answers"],
        json!([
            {"at": "2026-06-15T08:05:00Z", "answers": 1, "positive": 0},
            {"at": "2026-06-15T08:08:00Z", "answers": 2, "positive": 1},
        ])
    );
    let lessons: Vec<&str> = r["lessons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        lessons,
        [
            "Joindre les référents par SMS aussi",
            "Tester l'annuaire avant l'été"
        ]
    );
    assert_eq!(r["log"][0]["kind"], "declared");

    // The page: printable A4, the figures, the chart's known points.
    let cookie = d.operator_cookie().await;
    let (status, html) = d
        .page(&cookie, &format!("/bureau/events/{id}/report"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("@page { size: A4"), "{html}");
    assert!(
        html.contains("header.top, footer.wrap, .noprint"),
        "no navigation printed"
    );
    assert!(
        html.contains("<td>2</td><td>2</td><td>1</td><td>1</td><td>8 min</td>"),
        "{html}"
    );
    // 10:00 → 10:08 spans x 56 → 624; 2 answers at most: y 248 (0) → 16.
    assert!(
        html.contains("<polyline class=\"answers\" fill=\"none\" stroke=\"#123a5a\" stroke-width=\"2\" points=\"56.0,248.0 411.0,248.0 411.0,132.0 624.0,132.0 624.0,16.0 624.0,16.0\"/>"),
        "{html}"
    );
    assert!(
        html.contains(
            "points=\"56.0,248.0 411.0,248.0 411.0,248.0 624.0,248.0 624.0,132.0 624.0,132.0\""
        ),
        "{html}"
    );
    assert!(html.contains("<title>10:05 : 1 réponse, dont 0 positive</title>"));
    assert!(html.contains("<title>10:08 : 2 réponses, dont 1 positive</title>"));
    assert!(html.contains(">Heure (Europe/Paris)</text>"));
    assert!(html.contains(">Palier 1</text>"));
    assert!(!html.contains("<script"), "no JavaScript");
    // Unknown events: 404 on the API and the page.
    let (status, _) = d.api(Method::GET, "/api/v1/events/999/report", None).await;
    assert_eq!(status, 404);
    assert_eq!(d.page(&cookie, "/bureau/events/999/report").await.0, 404);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigie_log_and_vigie_report_print_the_main_courante_and_the_report_in_french() {
    let d = TestDaemon::start_manual().await;
    // The command line reaches this daemon at its real address.
    let config = d.config_for_cli();
    let id = d
        .declare_id(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let c = config.to_str().unwrap().to_string();
    let (code, out, err) = run_vigie_async(vec![
        "log".into(),
        id.clone(),
        "Préfecture prévenue par téléphone".into(),
        "-c".into(),
        c.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ajoutée à la main courante de l'événement"),
        "{out}"
    );

    let (code, out, err) =
        run_vigie_async(vec!["log".into(), id.clone(), "-c".into(), c.clone()]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains("2026-06-15 10:00 CEST  token:"), "{out}");
    assert!(
        lines[0].ends_with("— Alerte déclenchée « Vague de chaleur », niveau jaune."),
        "{out}"
    );
    assert!(
        lines[2].ends_with("— Préfecture prévenue par téléphone"),
        "{out}"
    );
    // A correction from the command line names the entry it corrects.
    let note: String = lines[2]
        .trim_start_matches("n° ")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let (code, out, err) = run_vigie_async(vec![
        "log".into(),
        id.clone(),
        "Préfecture prévenue par courriel, pas par téléphone".into(),
        "--corrects".into(),
        note.clone(),
        "-c".into(),
        c.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("correction de l'entrée n° {note} (n° ")),
        "{out}"
    );
    let (_, out, _) = run_vigie_async(vec!["log".into(), id.clone(), "-c".into(), c.clone()]).await;
    assert!(
        out.lines().nth(3).is_some_and(|l| l.contains(&format!(
            "[corrige n° {note}] — Préfecture prévenue par courriel, pas par téléphone"
        ))),
        "{out}"
    );

    let (code, out, err) =
        run_vigie_async(vec!["report".into(), id.clone(), "-c".into(), c.clone()]).await;
    assert_eq!(code, 0, "{err}");
    for want in [
        &format!("Retour d'expérience — événement {id} : Vague de chaleur (alerte réelle)"),
        "Scénario canicule, plan pgc version 2026.1",
        "Déclenché le 2026-06-15 10:00 CEST, pas encore levé",
        "  jaune depuis le 2026-06-15 10:00 CEST",
        "  palier 1 (tour 1, Référents) alerté le 2026-06-15 10:00 CEST : 2 destinataires, 0 réponse, 0 positive ; quorum 1 non atteint pendant ce palier",
        "Main courante :",
        "— Préfecture prévenue par téléphone",
        "Enseignements :\n  aucun pour l'instant",
    ] {
        assert!(out.contains(want), "{want}\n---\n{out}");
    }
    let (code, out, _) = run_vigie_async(vec![
        "report".into(),
        id.clone(),
        "--json".into(),
        "-c".into(),
        c.clone(),
    ])
    .await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scenario"], "canicule");
    let (code, _, err) = run_vigie_async(vec!["log".into(), "999".into(), "-c".into(), c]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no event 999"), "{err}");
    d.stop().await;
}
