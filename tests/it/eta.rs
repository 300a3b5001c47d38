//! Who is coming and when (SPEC §12): answers with an arrival delay and a
//! comment, the event page's counts per tier and audience and its list of
//! those coming, and "relancer les non-répondants" — the daemon in process,
//! a real SMTP server, real webhook receivers, the clock injected.

use chrono::Duration;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestDaemon, csrf_of, eventually};

/// Declares `body`, waits until every delivery has left: the event's id.
async fn declared_and_sent(d: &TestDaemon, body: Value) -> String {
    let id = d.declare_id(body).await;
    eventually(10, "everything sent", || d.all_sent(&id)).await;
    id
}

/// The responses of the event's detail whose recipient is `who`, oldest first.
fn responses_of<'a>(ev: &'a Value, who: &str) -> Vec<&'a Value> {
    ev["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["recipient_id"] == who)
        .collect()
}

async fn event_page(d: &TestDaemon, cookie: &str, id: &str) -> String {
    d.page(cookie, &format!("/bureau/events/{id}")).await.1
}

/// The HTML between `from` and the next `</section>`.
fn section<'a>(html: &'a str, from: &str) -> &'a str {
    let i = html
        .find(from)
        .unwrap_or_else(|| panic!("no {from} in {html}"));
    let end = html[i..].find("</section>").unwrap() + i;
    &html[i..end]
}

/// The numbers of the answers table's row that starts with `step`.
fn tally(html: &str, step: &str) -> Vec<String> {
    let table = section(html, "id=\"reponses-par-palier\"");
    let row = table
        .split("<tr>")
        .find(|r| r.contains(&format!(">{step}</td>")))
        .unwrap_or_else(|| panic!("no row {step} in {table}"));
    ["Prévenus", "Ont répondu", "Positives"]
        .iter()
        .map(|l| {
            let at = row.find(&format!("data-label=\"{l}\">")).unwrap() + l.len() + 14;
            row[at..].split('<').next().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_carries_an_arrival_delay_and_a_comment_within_their_bounds() {
    let d = TestDaemon::start_manual().await;
    let id = declared_and_sent(&d, json!({"scenario": "canicule", "level": "jaune"})).await;
    let claire = d.link_for("claire.martin@example.org");

    // The page offers both fields beside the buttons.
    let page = d
        .get_text(claire.trim_start_matches("http://vigie.test"))
        .await;
    assert!(
        page.contains("name=\"eta\"") && page.contains("name=\"comment\""),
        "{page}"
    );

    // Out of bounds: refused in French on the page, nothing recorded.
    for bad in ["1441", "-1", "abc", "2.5"] {
        let (status, html) = d.answer_with(&claire, "disponible", bad, "").await;
        assert_eq!(status, 422, "eta {bad}");
        assert!(
            html.contains(
                "le délai d&#x27;arrivée doit être un nombre entier de minutes, de 0 à 1440"
            ),
            "{html}"
        );
        assert!(
            html.contains(&format!("value=\"{bad}\"")),
            "what was typed stays: {html}"
        );
    }
    let long = "é".repeat(501);
    let (status, html) = d.answer_with(&claire, "disponible", "10", &long).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("le commentaire fait 501 caractères, 500 au plus"),
        "{html}"
    );
    assert!(
        d.event(&id).await["responses"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Within bounds: 0 and 1440 minutes, 500 characters.
    let (status, html) = d.answer_with(&claire, "disponible", "1440", "").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("arrivée prévue dans 1440 min"), "{html}");
    let (status, _) = d
        .answer_with(&claire, "disponible", "0", &"é".repeat(500))
        .await;
    assert_eq!(status, 200);
    // The API: the delay as an expected arrival time, the comment raw.
    d.advance(Duration::minutes(5));
    let (status, _) = d
        .answer_with(
            &claire,
            "disponible",
            " 20 ",
            "  Je passe par la pharmacie <b>d'abord</b> & j'arrive  ",
        )
        .await;
    assert_eq!(status, 200);
    let ev = d.event(&id).await;
    let mine = responses_of(&ev, "ref1");
    assert_eq!(mine.len(), 3, "every answer kept: {ev}");
    assert_eq!(mine[0]["eta_minutes"], 1440);
    assert_eq!(mine[0]["expected_at"], "2026-06-16T08:00:00.000Z");
    assert_eq!(mine[1]["eta_minutes"], 0);
    assert_eq!(mine[1]["comment"].as_str().unwrap().chars().count(), 500);
    let last = mine[2];
    assert_eq!(last["eta_minutes"], 20);
    assert_eq!(last["at"], "2026-06-15T08:05:00.000Z");
    assert_eq!(last["expected_at"], "2026-06-15T08:25:00.000Z");
    assert_eq!(
        last["comment"],
        "Je passe par la pharmacie <b>d'abord</b> & j'arrive"
    );

    // A later answer replaces the earlier one whole: no delay given, none kept.
    let (status, _) = d.answer_with(&claire, "indisponible", "", "").await;
    assert_eq!(status, 200);
    let ev = d.event(&id).await;
    let latest = *responses_of(&ev, "ref1").last().unwrap();
    assert_eq!(latest["response"], "indisponible");
    assert!(latest["eta_minutes"].is_null() && latest["expected_at"].is_null());
    assert!(latest["comment"].is_null());
    // The plain answer (no extra field, as before) still works.
    assert_eq!(
        d.answer(&d.link_for("helene.fuchs@example.org"), "disponible")
            .await,
        200
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_page_counts_answers_per_tier_and_lists_those_coming_by_arrival() {
    let d = TestDaemon::start_manual().await;
    // Orange: the nurses' broadcast (e-mail + SMS) and tier 0 (referents).
    let id = declared_and_sent(&d, json!({"scenario": "canicule", "level": "orange"})).await;
    // 10:00 Claire: coming in 30 min (10:30), with a comment holding HTML.
    let (s, _) = d
        .answer_with(
            &d.link_for("claire.martin@example.org"),
            "disponible",
            "30",
            "<script>alert('x')</script> garée devant",
        )
        .await;
    assert_eq!(s, 200);
    d.advance(Duration::minutes(10));
    // 10:10 Hélène: coming in 5 min (10:15), earlier than Claire.
    let (s, _) = d
        .answer_with(
            &d.link_for("helene.fuchs@example.org"),
            "disponible",
            "5",
            "",
        )
        .await;
    assert_eq!(s, 200);
    // Kevin (a nurse of the broadcast) comes without saying when; Isabelle
    // cannot come.
    assert_eq!(
        d.answer(&d.link_for("kevin.ott@example.org"), "disponible")
            .await,
        200
    );
    assert_eq!(
        d.answer(&d.link_for("isabelle.walch@example.org"), "indisponible")
            .await,
        200
    );

    let cookie = d.operator_cookie().await;
    let html = event_page(&d, &cookie, &id).await;
    // Per tier and audience: reached, answered, positive.
    assert_eq!(tally(&html, "Palier 1"), ["2", "2", "2"], "{html}");
    // The nurses: Kevin (e-mail + SMS), Isabelle (e-mail), Céline (SMS only).
    assert_eq!(tally(&html, "Diffusion"), ["3", "2", "1"], "{html}");
    let total = section(&html, "id=\"reponses-par-palier\"");
    assert!(
        total.contains("Au total : 5 personnes prévenues, 4 ont répondu, 3 réponses positives."),
        "{total}"
    );
    // Those coming, by expected arrival; those without a delay last.
    let coming = section(&html, "id=\"qui-vient\"");
    let at = |name: &str| {
        coming
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {coming}"))
    };
    assert!(at("Hélène Fuchs") < at("Claire Martin"), "{coming}");
    assert!(at("Claire Martin") < at("Kevin Ott"), "{coming}");
    assert!(!coming.contains("Isabelle Walch"), "not coming: {coming}");
    assert!(coming.contains("<strong>10:15</strong>") && coming.contains("<strong>10:30</strong>"));
    assert!(coming.contains("non précisée"), "{coming}");
    // The comment is shown, escaped.
    assert!(
        coming.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; garée devant"),
        "{coming}"
    );
    assert!(
        !html.contains("<script>alert"),
        "a comment never runs as HTML"
    );
    // The phone layout: the tables become cards.
    assert!(html.contains("<table class=\"cards coming\">"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relancer_reaches_each_non_responder_once_on_their_channels_and_never_a_resolved_event() {
    let d = TestDaemon::start_manual().await;
    // The crisis cell: the referents by e-mail and SMS, a second round for
    // those who have not answered after 10 minutes.
    let id = declared_and_sent(&d, json!({"scenario": "cellule_crise", "note": "Salle B"})).await;
    d.advance(Duration::minutes(11));
    assert_eq!(d.daemon().state.escalation_tick().await.unwrap(), 1);
    eventually(10, "round 2 sent", || d.all_sent(&id)).await;
    assert_eq!(d.smtp.to("helene.fuchs@example.org").len(), 2);
    assert_eq!(
        d.answer(&d.link_for("claire.martin@example.org"), "disponible")
            .await,
        200
    );
    let sms_before = d.sms.accepted().len();

    // The page says how many a relance reaches, and its button does it.
    let cookie = d.operator_cookie().await;
    let html = event_page(&d, &cookie, &id).await;
    let form = section(&html, "id=\"qui-vient\"");
    assert!(
        form.contains("à <strong>1 personne</strong> prévenue sans réponse : Hélène Fuchs."),
        "{form}"
    );
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .post(d.url(&format!("/bureau/events/{id}/remind")))
        .header("cookie", &cookie)
        .form(&[("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a form without its CSRF token");
    let r = no_redirect
        .post(d.url(&format!("/bureau/events/{id}/remind")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let html = event_page(&d, &cookie, &id).await;
    assert!(
        html.contains("Relance envoyée : 1 personne relancée (2 messages)."),
        "{html}"
    );
    eventually(10, "the relance sent", || d.all_sent(&id)).await;
    // Hélène once more by e-mail and by SMS, not twice though two rounds
    // reached her; Claire, who answered, not at all.
    let mails = d.smtp.to("helene.fuchs@example.org");
    assert_eq!(mails.len(), 3);
    assert_eq!(
        mails[2].subject(),
        "[Relance] Activation de la cellule de crise"
    );
    assert!(
        mails[2]
            .text()
            .contains("n'a pas encore reçu votre réponse")
    );
    assert!(mails[2].text().contains("http://vigie.test/r/"));
    assert_eq!(d.smtp.to("claire.martin@example.org").len(), 2);
    let sms: Vec<_> = d.sms.accepted()[sms_before..].to_vec();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].body["recipient"]["id"], "ref2");
    // Logged in the main courante, with the decision.
    let log = d.journal(&id).await;
    let reminded: Vec<_> = log.iter().filter(|e| e.kind == "reminded").collect();
    assert_eq!(reminded.len(), 1, "{log:?}");
    assert_eq!(reminded[0].author, "bureau");
    assert_eq!(
        reminded[0].text,
        "Relance des non-répondants : 1 personne relancée (Hélène Fuchs)."
    );

    // Through the API once Hélène has answered: nobody left.
    assert_eq!(
        d.answer(&d.link_for("helene.fuchs@example.org"), "indisponible")
            .await,
        200
    );
    let (status, v) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/remind"), None)
        .await;
    assert_eq!(
        (status, &v["people"], &v["queued"]),
        (200, &json!(0), &json!(0)),
        "{v}"
    );
    assert_eq!(d.smtp.to("helene.fuchs@example.org").len(), 3);

    // A resolved event refuses; an unknown one is not found.
    let (status, _) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/resolve"), None)
        .await;
    assert_eq!(status, 200);
    let (status, v) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/remind"), None)
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, _) = d.api(Method::POST, "/api/v1/events/999/remind", None).await;
    assert_eq!(status, 404);
    let r = d
        .http
        .post(d.url(&format!("/api/v1/events/{id}/remind")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the API needs its token");
    d.stop().await;
}

/// Only the tiers ask for an answer: a relance never reaches those a
/// broadcast informed (here the nurses of the orange heatwave), even when
/// its message carried a link, and no one else's answer is invited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relancer_reaches_the_tiers_not_those_a_broadcast_informed() {
    let d = TestDaemon::start_manual().await;
    let id = declared_and_sent(&d, json!({"scenario": "canicule", "level": "orange"})).await;
    assert_eq!(d.smtp.to("kevin.ott@example.org").len(), 1, "the broadcast");
    let (status, v) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/remind"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    eventually(10, "the relance sent", || d.all_sent(&id)).await;
    // The referents of tier 1, not the nurse.
    assert_eq!(d.smtp.to("kevin.ott@example.org").len(), 1);
    for referent in ["claire.martin@example.org", "helene.fuchs@example.org"] {
        let mails = d.smtp.to(referent);
        assert_eq!(mails.len(), 2, "{referent}");
        assert!(mails[1].subject().starts_with("[Relance]"), "{referent}");
    }
    d.stop().await;
}
