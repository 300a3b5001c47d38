//! The CAP export (SPEC §13): an event read as an OASIS CAP 1.2 alert
//! through the API, and the public Atom feed, against the real daemon; the
//! XML parsed back and checked field by field.

use chrono::Duration;
use reqwest::Method;
use serde_json::json;

use crate::harness::TestDaemon;

const CAP_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// The text of the child `name` (CAP namespace) of `node`.
fn field<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|n| n.has_tag_name((CAP_NS, name)))
        .map(|n| n.text().unwrap_or(""))
}

fn child<'a>(node: roxmltree::Node<'a, 'a>, ns: &str, name: &str) -> roxmltree::Node<'a, 'a> {
    node.children()
        .find(|n| n.has_tag_name((ns, name)))
        .unwrap_or_else(|| panic!("no <{name}> in <{}>", node.tag_name().name()))
}

/// `GET /api/v1/events/{id}/cap` with the token: (status, content type, body).
async fn cap_of(d: &TestDaemon, id: &str) -> (u16, String, String) {
    let r = d
        .http
        .get(d.url(&format!("/api/v1/events/{id}/cap")))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

/// The fields of one alert, checked to be in the CAP namespace.
struct Alert {
    identifier: String,
    sender: String,
    sent: String,
    status: String,
    msg_type: String,
    references: Option<String>,
    info: Vec<(String, String)>,
    area_desc: String,
    /// `<geocode>`s of the `<area>`: (valueName, value).
    geocodes: Vec<(String, String)>,
}

impl Alert {
    fn info(&self, name: &str) -> &str {
        self.info
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no <{name}> in <info>"))
    }
}

fn read_alert(alert: roxmltree::Node<'_, '_>) -> Alert {
    assert!(
        alert.has_tag_name((CAP_NS, "alert")),
        "root is a CAP 1.2 <alert>"
    );
    let info = child(alert, CAP_NS, "info");
    let area = child(info, CAP_NS, "area");
    Alert {
        identifier: field(alert, "identifier").unwrap().to_string(),
        sender: field(alert, "sender").unwrap().to_string(),
        sent: field(alert, "sent").unwrap().to_string(),
        status: field(alert, "status").unwrap().to_string(),
        msg_type: field(alert, "msgType").unwrap().to_string(),
        references: field(alert, "references").map(str::to_string),
        info: info
            .children()
            .filter(|n| n.is_element() && n.children().all(|c| c.is_text()))
            .map(|n| {
                (
                    n.tag_name().name().to_string(),
                    n.text().unwrap_or("").to_string(),
                )
            })
            .collect(),
        area_desc: field(area, "areaDesc").unwrap().to_string(),
        geocodes: area
            .children()
            .filter(|n| n.has_tag_name((CAP_NS, "geocode")))
            .map(|g| {
                (
                    field(g, "valueName").unwrap().to_string(),
                    field(g, "value").unwrap().to_string(),
                )
            })
            .collect(),
    }
}

async fn alert_of(d: &TestDaemon, id: &str) -> Alert {
    let (status, ct, body) = cap_of(d, id).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/cap+xml"), "{ct}");
    let doc = roxmltree::Document::parse(&body).expect("well-formed XML");
    read_alert(doc.root_element())
}

#[tokio::test]
async fn an_event_reads_as_a_cap_alert_then_update_then_cancel() {
    let d = TestDaemon::start_manual().await;
    let ev = d
        .declare(
            json!({"scenario": "canicule", "level": "orange", "note": "Note interne du bureau"}),
        )
        .await;
    let id = ev["id"].as_str().unwrap().to_string();

    let first = alert_of(&d, &id).await;
    assert!(
        first.identifier.starts_with("vigie-"),
        "{}",
        first.identifier
    );
    assert!(
        first.identifier.ends_with(&format!("-{id}-0")),
        "{}",
        first.identifier
    );
    assert_eq!(first.sender, "vigie.test");
    // 15 June 10:00 in Paris, with the daemon's offset, whole seconds.
    assert_eq!(first.sent, "2026-06-15T10:00:00+02:00");
    assert_eq!(first.status, "Actual");
    assert_eq!(first.msg_type, "Alert");
    assert_eq!(first.references, None);
    assert_eq!(first.info("language"), "fr-FR");
    assert_eq!(first.info("category"), "Health");
    assert_eq!(first.info("event"), "Vague de chaleur");
    assert_eq!(first.info("urgency"), "Immediate");
    assert_eq!(first.info("severity"), "Severe");
    assert_eq!(first.info("certainty"), "Observed");
    // No [vigilance]: no département to name.
    assert_eq!(first.geocodes, Vec::<(String, String)>::new());
    assert_eq!(first.info("senderName"), "CPTS de test");
    assert!(first.info("headline").contains("Vague de chaleur"));
    assert_eq!(first.area_desc, "CPTS de test");
    // Read again: the same message, the same identifier.
    assert_eq!(alert_of(&d, &id).await.identifier, first.identifier);
    let reference = format!("vigie.test,{},2026-06-15T10:00:00+02:00", first.identifier);

    d.advance(Duration::minutes(5));
    let (status, v) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/level"),
            Some(json!({"level": "rouge"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let update = alert_of(&d, &id).await;
    assert_eq!(update.msg_type, "Update");
    assert_eq!(update.status, "Actual");
    assert_ne!(update.identifier, first.identifier);
    assert!(
        update.identifier.ends_with(&format!("-{id}-1")),
        "{}",
        update.identifier
    );
    assert_eq!(update.sent, "2026-06-15T10:05:00+02:00");
    assert_eq!(update.references.as_deref(), Some(reference.as_str()));
    assert_eq!(update.info("severity"), "Extreme");
    assert_eq!(update.info("category"), "Health");

    d.advance(Duration::minutes(10));
    let (status, v) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{id}/resolve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let cancel = alert_of(&d, &id).await;
    assert_eq!(cancel.msg_type, "Cancel");
    assert!(
        cancel.identifier.ends_with(&format!("-{id}-fin")),
        "{}",
        cancel.identifier
    );
    assert_eq!(cancel.sent, "2026-06-15T10:15:00+02:00");
    assert_eq!(cancel.references.as_deref(), Some(reference.as_str()));
    assert_eq!(cancel.info("urgency"), "Past");

    let (_, _, body) = cap_of(&d, &id).await;
    assert!(
        !body.contains("Note interne"),
        "the note is internal: {body}"
    );
}

#[tokio::test]
async fn an_exercise_reads_as_status_exercise_and_the_route_wants_a_token() {
    let d = TestDaemon::start_manual().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    let alert = alert_of(&d, &id).await;
    assert_eq!(alert.status, "Exercise");
    assert_eq!(alert.msg_type, "Alert");
    assert_eq!(alert.info("severity"), "Moderate");

    let r = d
        .http
        .get(d.url(&format!("/api/v1/events/{id}/cap")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (status, _, body) = cap_of(&d, "999999").await;
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(v["error"].is_string() || v["error"].is_object(), "{v}");
}

#[tokio::test]
async fn the_public_feed_lists_recent_real_events_only_and_no_names() {
    let d = TestDaemon::start_manual().await;
    let names: Vec<String> = std::fs::read_to_string(d.dir.path().join("config/directory.toml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"').to_string())
        .collect();
    assert!(names.len() > 3, "the directory's names: {names:?}");

    // Resolved ten days ago: out of the feed.
    let old = d
        .declare(json!({"scenario": "cellule_crise", "note": format!("Appeler {}", names[0])}))
        .await;
    let old_id = old["id"].as_str().unwrap().to_string();
    let (status, _) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{old_id}/resolve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    d.advance(Duration::days(9));
    // Resolved a day ago: still in the feed, as its cancel.
    let recent = d.declare(json!({"scenario": "cellule_crise"})).await;
    let recent_id = recent["id"].as_str().unwrap().to_string();
    assert_ne!(recent_id, old_id);
    let (status, _) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{recent_id}/resolve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    d.advance(Duration::days(1));
    // An exercise: never in the feed.
    let exercise = d
        .declare(json!({"scenario": "canicule", "level": "rouge", "exercise": true}))
        .await;
    let exercise_id = exercise["id"].as_str().unwrap().to_string();
    // The running real event, with a note naming someone.
    let active = d
        .declare(json!({"scenario": "canicule", "level": "jaune", "note": format!("Prévenir {}", names[1])}))
        .await;
    let active_id = active["id"].as_str().unwrap().to_string();
    d.advance(Duration::minutes(1));

    let r = d.http.get(d.url("/cap.atom")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/atom+xml"), "{ct}");
    let body = r.text().await.unwrap();
    for name in &names {
        assert!(
            !body.contains(name.as_str()),
            "{name} is in the feed: {body}"
        );
    }
    assert!(
        !body.contains("Prévenir") && !body.contains("Appeler"),
        "a note: {body}"
    );

    let doc = roxmltree::Document::parse(&body).expect("well-formed XML");
    let feed = doc.root_element();
    assert!(feed.has_tag_name((ATOM_NS, "feed")), "an Atom feed");
    for name in ["id", "updated", "title", "link"] {
        child(feed, ATOM_NS, name);
    }
    let updated = child(feed, ATOM_NS, "updated").text().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(updated).is_ok(),
        "{updated}"
    );
    let entries: Vec<_> = feed
        .children()
        .filter(|n| n.has_tag_name((ATOM_NS, "entry")))
        .collect();
    let mut seen = Vec::new();
    for entry in &entries {
        for name in ["id", "updated", "title", "link"] {
            child(*entry, ATOM_NS, name);
        }
        let href = child(*entry, ATOM_NS, "link").attribute("href").unwrap();
        assert!(href.starts_with("http://vigie.test/"), "{href}");
        let content = child(*entry, ATOM_NS, "content");
        let alert = read_alert(child(content, CAP_NS, "alert"));
        assert_eq!(alert.status, "Actual", "no exercise in the feed");
        assert_eq!(alert.info("category"), "Health");
        let event_id = alert.identifier.rsplit('-').nth(1).unwrap().to_string();
        seen.push((
            event_id,
            alert.msg_type.clone(),
            alert.info("severity").to_string(),
        ));
    }
    seen.sort();
    let mut want = vec![
        (active_id, "Alert".to_string(), "Moderate".to_string()),
        (recent_id, "Cancel".to_string(), "Unknown".to_string()),
    ];
    want.sort();
    assert_eq!(
        seen, want,
        "exercise {exercise_id} and old {old_id} left out"
    );
}

#[tokio::test]
async fn the_area_names_the_vigilance_departements_as_geocodes() {
    let d = TestDaemon::start_setup(false, |dir| {
        let config = dir.join("config/vigie.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(
            "\n[vigilance]\nsource = \"meteoalarm\"\ndepartements = [\"68\", \"2A\"]\n\
             url = \"http://127.0.0.1:9/feed\"\n",
        );
        std::fs::write(&config, text).unwrap();
    })
    .await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let alert = alert_of(&d, ev["id"].as_str().unwrap()).await;
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        alert.geocodes,
        [
            pair("INSEE-departement", "68"),
            pair("EMMA_ID", "FR068"),
            pair("INSEE-departement", "2A"),
            pair("EMMA_ID", "FR02A"),
        ]
    );
    assert_eq!(alert.area_desc, "CPTS de test");
}

#[tokio::test]
async fn each_level_change_has_its_own_update_even_one_that_sends_nothing() {
    // Jaune has no broadcast in this plan: the change to it sends no
    // message, yet it is an Update of its own, and the later change to
    // rouge another one (it reused jaune's identifier when the history was
    // read from the messages sent).
    let d = TestDaemon::start_manual().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    for (minutes, level, severity) in [(5, "jaune", "Moderate"), (5, "rouge", "Extreme")] {
        d.advance(Duration::minutes(minutes));
        let (status, v) = d
            .api(
                Method::POST,
                &format!("/api/v1/events/{id}/level"),
                Some(json!({"level": level})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let update = alert_of(&d, &id).await;
        assert_eq!(update.msg_type, "Update");
        assert_eq!(update.info("severity"), severity, "{level}");
        assert!(!seen.contains(&update.identifier), "{seen:?}");
        seen.push(update.identifier);
    }
    assert!(seen[0].ends_with(&format!("-{id}-1")), "{seen:?}");
    assert!(seen[1].ends_with(&format!("-{id}-2")), "{seen:?}");
    // Read again later: the same message, the same instant.
    d.advance(Duration::minutes(30));
    let again = alert_of(&d, &id).await;
    assert_eq!(again.identifier, seen[1]);
    assert_eq!(again.sent, "2026-06-15T10:10:00+02:00");
}
