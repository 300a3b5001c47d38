//! Declared events, escalation and deliveries, end to end: the daemon in
//! process with a manual clock, a real SMTP server and real webhook
//! receivers on loopback.

use std::collections::{BTreeSet, HashMap};

use chrono::Duration;
use reqwest::Method;
use serde_json::json;
use vigie::engine::render::EXERCISE_LINE;

use crate::harness::{TestDaemon, count, eventually};
use crate::smtp::Mode;

fn addresses(d: &TestDaemon) -> BTreeSet<String> {
    d.smtp
        .messages()
        .iter()
        .flat_map(|m| m.to.clone())
        .collect()
}

async fn all_sent(d: &TestDaemon, id: &str) -> bool {
    let ev = d.event(id).await;
    count(&ev, "pending") + count(&ev, "sending") + count(&ev, "retrying") == 0
}

/// Declares the orange heatwave and waits (up to `secs`) until every
/// delivery is sent or failed: the event as it then is.
async fn orange_settled(d: &TestDaemon, secs: u64) -> serde_json::Value {
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(secs, "settled", || all_sent(d, &id)).await;
    d.event(&id).await
}

/// The deliveries of `ev` that failed for good.
fn failed(ev: &serde_json::Value) -> Vec<&serde_json::Value> {
    ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["state"] == "failed")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_reaches_exactly_the_audience_on_every_channel() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange", "note": "Vigilance orange dès demain midi."}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    assert_eq!(ev["updated"], false);
    assert_eq!(ev["state"], "active");
    assert_eq!(ev["plan"]["version"], "2026.1");
    // The answer counts the deliveries written with the event (5 e-mails,
    // one of them skipped, 3 SMS).
    let written: i64 = ev["deliveries_by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(written, 8, "{ev}");
    eventually(10, "every delivery handed over", || all_sent(&d, &id)).await;

    // E-mail: the nurses (broadcast) and the active referents (tier 0).
    let expected: BTreeSet<String> = [
        "kevin.ott@example.org",
        "isabelle.walch@example.org",
        "claire.martin@example.org",
        "helene.fuchs@example.org",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        addresses(&d),
        expected,
        "nobody outside the audience, nobody inactive"
    );
    // SMS webhook: the three nurses, including the one without e-mail.
    let calls = d.sms.accepted();
    let phones: BTreeSet<&str> = calls
        .iter()
        .map(|c| c.body["recipient"]["phone"].as_str().unwrap())
        .collect();
    assert_eq!(
        phones,
        BTreeSet::from(["+33639980105", "+33639980107", "+33639980108"])
    );
    assert!(calls.iter().all(|c| c.signature_ok), "every call is signed");
    // The nurse without e-mail has a skipped delivery with its reason.
    let ev = d.event(&id).await;
    let skipped: Vec<_> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["state"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["recipient_id"], "inf-nomail");
    assert_eq!(skipped[0]["reason"], "pas d'adresse e-mail dans l'annuaire");

    // The broadcast uses the plan's template, with its HTML part.
    let nurse = &d.smtp.to("kevin.ott@example.org")[0];
    assert_eq!(nurse.subject(), "Canicule niveau orange");
    assert!(nurse.text().contains("Kevin Ott, canicule niveau orange."));
    assert!(nurse.text().contains("Vigilance orange dès demain midi."));
    assert!(nurse.data.contains("multipart/alternative"));
    assert!(nurse.data.contains("text/html"));
    assert_eq!(
        nurse.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let mid = nurse.header("Message-ID").unwrap();
    let delivery_ids: Vec<i64> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert!(
        delivery_ids
            .iter()
            .any(|i| mid.contains(&format!(".{i}.")) && mid.ends_with("@example.org>")),
        "Message-ID {mid} is derived from a delivery id"
    );
    // The referents get the built-in mobilisation message with a personal link.
    let referent = &d.smtp.to("claire.martin@example.org")[0];
    assert!(
        referent
            .subject()
            .starts_with("[Mobilisation] Vague de chaleur"),
        "{}",
        referent.subject()
    );
    assert!(d.link_for("claire.martin@example.org") != d.link_for("helene.fuchs@example.org"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_1_is_called_when_tier_0_misses_its_quorum_in_time_and_not_before() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "tier 0 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;

    // One second before the 15-minute timeout: nothing moves.
    d.advance(Duration::minutes(15) - Duration::seconds(1));
    let state = &d.daemon().state;
    let moved = state.escalation_tick().await.unwrap();
    assert_eq!(moved, 0);
    assert_eq!(d.event(&id).await["tier"], 0);
    assert!(d.smtp.to("olivier.bilger@example.org").is_empty());

    // At the timeout: the bureau (tier 1) is called.
    d.advance(Duration::seconds(2));
    eventually(10, "tier 1 mailed", || async {
        d.smtp.messages().len() == 5
    })
    .await;
    let ev = d.event(&id).await;
    assert_eq!(ev["tier"], 1);
    assert_eq!(ev["tiers"].as_array().unwrap().len(), 2);
    for a in [
        "olivier.bilger@example.org",
        "isabelle.walch@example.org",
        "benoit.oberlin@example.org",
    ] {
        assert_eq!(d.smtp.to(a).len(), 1, "{a}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_stops_when_the_quorum_is_reached() {
    // Timers tick only by hand: the tick below is the only one that can
    // escalate, so "not escalated" is read once it has run, not raced.
    let d = TestDaemon::start_manual().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "tier 0 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;

    // "indisponible" is not an acknowledgement.
    assert_eq!(
        d.answer(&d.link_for("helene.fuchs@example.org"), "indisponible")
            .await,
        200
    );
    assert_eq!(d.event(&id).await["state"], "active");
    // "disponible" is: quorum 1 reached.
    assert_eq!(
        d.answer(&d.link_for("claire.martin@example.org"), "disponible")
            .await,
        200
    );
    let ev = d.event(&id).await;
    assert_eq!(ev["state"], "acknowledged");
    assert_eq!(ev["acks"], 1);
    assert_eq!(ev["responses"].as_array().unwrap().len(), 2);

    d.advance(Duration::hours(2));
    let state = &d.daemon().state;
    assert_eq!(
        state.escalation_tick().await.unwrap(),
        0,
        "the tier timed out long ago, but its quorum is reached: nothing moves"
    );
    let ev = d.event(&id).await;
    assert_eq!(ev["state"], "acknowledged");
    assert_eq!(ev["tier"], 0, "{ev}");
    assert_eq!(ev["tiers"].as_array().unwrap().len(), 1, "{ev}");
    assert_eq!(
        ev["deliveries"].as_array().unwrap().len(),
        2,
        "only tier 0's two deliveries: {ev}"
    );
    assert!(
        d.smtp.to("olivier.bilger@example.org").is_empty(),
        "the bureau is not called"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_tier_times_out_the_plan_owners_are_alerted() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "tier 0 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;
    d.advance(Duration::minutes(16));
    eventually(10, "tier 1 mailed", || async {
        d.smtp.messages().len() == 5
    })
    .await;
    // One of the bureau answers: 1 < quorum 2.
    assert_eq!(
        d.answer(&d.link_for("olivier.bilger@example.org"), "disponible")
            .await,
        200
    );
    d.advance(Duration::minutes(31));
    eventually(10, "event exhausted", || async {
        d.event(&id).await["state"] == "exhausted"
    })
    .await;
    eventually(10, "owners alerted", || async {
        d.smtp.messages().len() == 8
    })
    .await;
    for a in [
        "olivier.bilger@example.org",
        "isabelle.walch@example.org",
        "benoit.oberlin@example.org",
    ] {
        let mails = d.smtp.to(a);
        assert_eq!(mails.len(), 2, "{a}: the tier 1 call and the alert");
        assert!(
            mails[1]
                .subject()
                .starts_with("[Sans réponse] Vague de chaleur"),
            "{}",
            mails[1].subject()
        );
    }
    // A late second acknowledgement still closes the gap.
    assert_eq!(
        d.answer(&d.link_for("isabelle.walch@example.org"), "disponible")
            .await,
        200
    );
    assert_eq!(d.event(&id).await["state"], "acknowledged");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_chain_calls_again_only_those_who_have_not_answered() {
    let d = TestDaemon::start().await;
    let ev = d.declare(json!({"scenario": "cellule_crise"})).await;
    let id = ev["id"].as_str().unwrap().to_string();
    assert_eq!(ev["level"], serde_json::Value::Null);
    eventually(10, "tier 0 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;
    // The per-step webhook (a chat room) gets one call for the broadcast,
    // with the audience as a whole and no recipient.
    eventually(10, "room webhook called", || async {
        d.room.accepted().len() == 1
    })
    .await;
    let call = &d.room.accepted()[0];
    assert!(call.signature_ok);
    assert!(call.body.get("recipient").is_none());
    assert_eq!(call.body["event"]["scenario"], "cellule_crise");

    assert_eq!(
        d.answer(&d.link_for("claire.martin@example.org"), "disponible")
            .await,
        200
    );
    d.advance(Duration::minutes(11));
    eventually(10, "round 1", || async { d.event(&id).await["round"] == 1 }).await;
    eventually(10, "second call mailed", || async {
        d.smtp.messages().len() == 3
    })
    .await;
    assert_eq!(
        d.smtp.to("claire.martin@example.org").len(),
        1,
        "she answered: not called again"
    );
    assert_eq!(d.smtp.to("helene.fuchs@example.org").len(), 2);
    d.advance(Duration::minutes(11));
    eventually(10, "exhausted after the repeat", || async {
        d.event(&id).await["state"] == "exhausted"
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_the_same_scenario_again_updates_the_open_event() {
    let d = TestDaemon::start().await;
    let (s1, first) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "jaune"})),
        )
        .await;
    assert_eq!(s1, 201);
    let (s2, second) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "orange"})),
        )
        .await;
    assert_eq!(s2, 200);
    assert_eq!(second["updated"], true);
    assert_eq!(second["level_changed"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["level"], "orange");
    // The orange broadcast went out; tier 0 was not called twice.
    let id = second["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &id)).await;
    assert_eq!(d.smtp.to("kevin.ott@example.org").len(), 1);
    assert_eq!(d.smtp.to("claire.martin@example.org").len(), 1);
    // Same level again: nothing new.
    let (s3, third) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "orange"})),
        )
        .await;
    assert_eq!((s3, third["queued"].as_u64()), (200, Some(0)));
    // Another key is another event.
    let (s4, other) = d
        .api(
            Method::POST,
            "/api/v1/events",
            Some(json!({"scenario": "canicule", "level": "jaune", "key": "cernay"})),
        )
        .await;
    assert_eq!(s4, 201);
    assert_ne!(other["id"], first["id"]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_marks_every_message_whatever_the_template() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange", "exercise": true}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    assert_eq!(ev["exercise"], true);
    eventually(10, "sent", || all_sent(&d, &id)).await;
    let mails = d.smtp.messages();
    assert_eq!(mails.len(), 4);
    for m in &mails {
        assert!(m.subject().starts_with("[EXERCICE] "), "{}", m.subject());
        assert!(m.text().starts_with(EXERCISE_LINE), "{}", m.text());
    }
    for c in d.sms.accepted() {
        assert!(
            c.body["subject"]
                .as_str()
                .unwrap()
                .starts_with("[EXERCICE] ")
        );
        assert!(c.body["text"].as_str().unwrap().starts_with(EXERCISE_LINE));
        assert_eq!(c.body["event"]["exercise"], true);
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_tells_everyone_notified_and_closes_the_links() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || all_sent(&d, &id)).await;
    let link = d.link_for("claire.martin@example.org");
    let (status, resolved) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/resolve"),
            Some(json!({"note": "Fin de la vigilance orange."})),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    eventually(10, "notices sent", || all_sent(&d, &id)).await;
    for a in [
        "kevin.ott@example.org",
        "isabelle.walch@example.org",
        "claire.martin@example.org",
        "helene.fuchs@example.org",
    ] {
        let mails = d.smtp.to(a);
        assert_eq!(mails.len(), 2, "{a}");
        assert_eq!(mails[1].subject(), "Fin d'alerte : Vague de chaleur");
        assert!(mails[1].text().contains("Fin de la vigilance orange."));
    }
    // The SMS recipients are told too, once each.
    assert_eq!(d.sms.accepted().len(), 6);
    // The links now answer 410 Gone, GET and POST.
    let path = link.trim_start_matches("http://vigie.test");
    assert_eq!(
        d.http
            .get(d.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        410
    );
    assert_eq!(d.answer(&link, "disponible").await, 410);
    // Resolving again is a conflict.
    let (again, _) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/resolve"), None)
        .await;
    assert_eq!(again, 409);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_cancels_what_was_not_yet_sent_and_tells_only_those_reached() {
    let d = TestDaemon::start().await;
    d.smtp.set_mode(Mode::TempFail);
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "retrying", || async {
        count(&d.event(&id).await, "retrying") == 2
    })
    .await;
    let (status, _) = d
        .api(Method::POST, &format!("/api/v1/events/{id}/resolve"), None)
        .await;
    assert_eq!(status, 200);
    d.smtp.set_mode(Mode::Accept);
    d.advance(Duration::minutes(5));
    let ev = d.event(&id).await;
    assert_eq!(count(&ev, "cancelled"), 2);
    assert_eq!(
        count(&ev, "pending"),
        0,
        "no notice to people who never got the alert"
    );
    assert!(d.smtp.messages().is_empty());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_smtp_server_down_then_back_everything_is_delivered_once() {
    let mut d = TestDaemon::start().await;
    d.smtp.stop().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "e-mails retrying", || async {
        count(&d.event(&id).await, "retrying") == 4
    })
    .await;
    // Still down 15 s later: the channel is paused and probes with one
    // delivery at a time; the others wait without another attempt.
    d.advance(Duration::seconds(15));
    eventually(10, "one probe", || async {
        let ev = d.event(&id).await;
        ev["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["channel"] == "email" && x["attempts"] == 2)
            .count()
            == 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ev = d.event(&id).await;
    let attempts: Vec<_> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "email")
        .map(|x| x["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts.iter().sum::<u64>(), 5, "{attempts:?}");
    d.smtp.restart().await;
    for _ in 0..10 {
        d.advance(Duration::seconds(60));
        if all_sent(&d, &id).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eventually(10, "all sent", || all_sent(&d, &id)).await;
    let mut per_address: HashMap<String, usize> = HashMap::new();
    for m in d.smtp.messages() {
        for t in m.to {
            *per_address.entry(t).or_default() += 1;
        }
    }
    assert_eq!(per_address.len(), 4);
    assert!(
        per_address.values().all(|&n| n == 1),
        "nothing twice: {per_address:?}"
    );
    let ev = d.event(&id).await;
    assert_eq!(count(&ev, "sent"), 4 + 3);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_answering_503_is_retried_until_it_accepts() {
    let d = TestDaemon::start().await;
    d.sms.answer_with(&[503, 503, 429]);
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "first attempts made", || async {
        d.sms.calls().len() >= 3
    })
    .await;
    for _ in 0..20 {
        if d.sms.accepted().len() == 3 {
            break;
        }
        d.advance(Duration::seconds(30));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eventually(10, "all accepted", || async { d.sms.accepted().len() == 3 }).await;
    let calls = d.sms.calls();
    assert_eq!(calls.len(), 6, "3 refused then 3 accepted");
    // Retries carry the same Idempotency-Key: the delivery id.
    let ev = d.event(&id).await;
    let sms_ids: BTreeSet<String> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "sms" && x["state"] == "sent")
        .map(|x| x["id"].to_string())
        .collect();
    let keys: BTreeSet<String> = calls.iter().map(|c| c.idempotency_key.clone()).collect();
    assert_eq!(keys, sms_ids);
    assert!(calls.iter().all(|c| c.signature_ok));
    // Every attempt is recorded.
    let attempts: u64 = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "sms")
        .map(|x| x["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(attempts, 6);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_at_once_and_says_why() {
    let d = TestDaemon::start().await;
    d.smtp
        .set_mode(Mode::RejectRecipient("claire.martin@example.org".into()));
    d.sms.answer_with(&[400]);
    let ev = orange_settled(&d, 10).await;
    let failed = failed(&ev);
    assert_eq!(failed.len(), 2, "{failed:?}");
    let mail = failed.iter().find(|x| x["channel"] == "email").unwrap();
    assert_eq!(mail["recipient_id"], "ref1");
    assert_eq!(mail["attempts"], 1);
    assert!(mail["reason"].as_str().unwrap().contains("550"), "{mail}");
    let sms = failed.iter().find(|x| x["channel"] == "sms").unwrap();
    assert!(sms["reason"].as_str().unwrap().contains("400"), "{sms}");
    assert_eq!(count(&ev, "sent"), 3 + 2);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_pipelining_gets_the_commands_one_by_one() {
    let d = TestDaemon::start().await;
    d.smtp.set_pipelining(false);
    d.smtp
        .set_mode(Mode::RejectRecipient("claire.martin@example.org".into()));
    let ev = orange_settled(&d, 10).await;
    // The same messages as with PIPELINING (the first test), less the
    // refused recipient, whose delivery failed for good.
    let expected: BTreeSet<String> = [
        "kevin.ott@example.org",
        "isabelle.walch@example.org",
        "helene.fuchs@example.org",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(addresses(&d), expected);
    assert!(
        d.smtp
            .messages()
            .iter()
            .all(|m| m.header("Auto-Submitted").as_deref() == Some("auto-generated"))
    );
    assert_eq!(count(&ev, "failed"), 1);
    // What the test is about: each command waited for the answer to the
    // one before (the server did not offer PIPELINING).
    assert_eq!(
        d.smtp.pipelined.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "commands sent before the previous one was answered"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_goes_out_chained_each_message_once_to_its_own_recipient() {
    // 300 nurses and a pool of 4: more deliveries than connections, so the
    // messages go out chained (each one's end with the next envelope). One
    // recipient refused in the middle fails alone.
    let d = TestDaemon::start_setup(true, |dir| crate::drills::many_nurses(dir, 300)).await;
    d.smtp
        .set_mode(Mode::RejectRecipient("idel150@example.org".into()));
    let ev = orange_settled(&d, 20).await;
    let failed = failed(&ev);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["recipient_id"], "idel150");
    assert_eq!(failed[0]["attempts"], 1);
    assert!(failed[0]["reason"].as_str().unwrap().contains("550"));
    let emails = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "email" && x["state"] == "sent")
        .count();
    assert_eq!(
        emails,
        300 + 2 + 2 - 1,
        "the new nurses, 2 fixture nurses with e-mail, 2 referents, less the refused one"
    );
    // Each message once, and to the person its envelope names.
    let messages = d.smtp.messages();
    assert_eq!(messages.len(), emails);
    let mut per: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        assert_eq!(m.to.len(), 1);
        let to = m.header("To").unwrap_or_default();
        assert!(to.contains(&m.to[0]), "envelope {} but To: {to}", m.to[0]);
        *per.entry(m.to[0].clone()).or_default() += 1;
    }
    assert_eq!(per.len(), emails);
    assert!(per.values().all(|&n| n == 1));
    let chained = d.smtp.chained.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        chained >= emails / 4,
        "a good share of the messages chained on their connection: {chained} of {emails}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_event_keeps_the_quorum_of_its_own_plan_after_a_new_version_is_loaded() {
    let d = TestDaemon::start_manual().await;
    let first = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let first = first["id"].as_str().unwrap().to_string();
    eventually(10, "tier 0 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;

    // Version 2026.2, in force from 1 June, asks both referents to answer
    // at tier 0 (2026.1 asks one).
    let plans = d.dir.path().join("plans");
    let v1 = std::fs::read_to_string(plans.join("plan.toml")).unwrap();
    let v2 = v1
        .replace("version = \"2026.1\"", "version = \"2026.2\"")
        .replace("valid_from = 2026-01-01", "valid_from = 2026-06-01")
        .replacen("quorum = 1", "quorum = 2", 1);
    assert_ne!(v1, v2);
    std::fs::write(plans.join("plan-2026.2.toml"), v2).unwrap();
    let (status, v) = d.api(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(status, 200, "{v}");

    // The event declared under 2026.1 is still governed by it: one answer
    // acknowledges it.
    assert_eq!(
        d.answer(&d.link_for("claire.martin@example.org"), "disponible")
            .await,
        200
    );
    let ev = d.event(&first).await;
    assert_eq!(ev["state"], "acknowledged", "{ev}");
    assert_eq!(ev["acks"], 1);

    // A new declaration falls under 2026.2: one answer is not enough.
    let second = d
        .declare(json!({"scenario": "canicule", "level": "jaune", "key": "vallee"}))
        .await;
    assert_eq!(second["plan"]["version"], "2026.2", "{second}");
    let second = second["id"].as_str().unwrap().to_string();
    eventually(10, "tier 0 of the second event mailed", || async {
        d.smtp.messages().len() == 4
    })
    .await;
    assert_eq!(
        d.answer(&d.link_for("claire.martin@example.org"), "disponible")
            .await,
        200
    );
    let ev = d.event(&second).await;
    assert_eq!(ev["state"], "active", "{ev}");
    assert_eq!(ev["acks"], 1);
    d.stop().await;
}
