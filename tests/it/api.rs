//! The JSON API's guard rails: tokens, JSON errors, limits, unknown ids.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::TestDaemon;

async fn raw(
    d: &TestDaemon,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> (u16, Value) {
    let mut req = d.http.request(method, d.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ct, b)) = body {
        req = req.header("Content-Type", ct).body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no JSON error>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_refuses_a_missing_or_wrong_token() {
    let d = TestDaemon::start().await;
    let routes = [
        (Method::POST, "/api/v1/events"),
        (Method::GET, "/api/v1/events"),
        (Method::GET, "/api/v1/events/1"),
        (Method::POST, "/api/v1/events/1/level"),
        (Method::POST, "/api/v1/events/1/resolve"),
        (Method::GET, "/api/v1/status"),
        (Method::POST, "/api/v1/reload"),
    ];
    for (m, path) in routes {
        let (s, v) = raw(&d, m.clone(), path, None, None).await;
        assert_eq!(
            (s, error_code(&v)),
            (401, "unauthorized"),
            "{m} {path} without token"
        );
        let (s, _) = raw(&d, m.clone(), path, Some("not-the-token"), None).await;
        assert_eq!(s, 401, "{m} {path} with a wrong token");
    }
    // The right token passes.
    let (s, _) = raw(&d, Method::GET, "/api/v1/status", Some(&d.token), None).await;
    assert_eq!(s, 200);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let d = TestDaemon::start().await;
    let t = Some(d.token.as_str());
    let json_body = |s: &str| Some(("application/json", s.to_string()));

    let (s, v) = raw(
        &d,
        Method::POST,
        "/api/v1/events",
        t,
        json_body("{\"scenario\": "),
    )
    .await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"), "malformed JSON");
    let (s, v) = raw(
        &d,
        Method::POST,
        "/api/v1/events",
        t,
        json_body("{\"scenarioo\": \"canicule\"}"),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (400, "bad_request"),
        "unknown field: {v}"
    );
    let big = format!(
        "{{\"scenario\": \"canicule\", \"note\": \"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let (s, v) = raw(&d, Method::POST, "/api/v1/events", t, json_body(&big)).await;
    assert_eq!((s, error_code(&v)), (413, "payload_too_large"));
    let (s, v) = raw(
        &d,
        Method::POST,
        "/api/v1/events",
        t,
        Some(("text/plain", "{}".into())),
    )
    .await;
    assert_eq!((s, error_code(&v)), (415, "unsupported_media_type"));
    let (s, v) = raw(
        &d,
        Method::POST,
        "/api/v1/events",
        t,
        json_body("{\"scenario\": \"inondation\"}"),
    )
    .await;
    assert_eq!((s, error_code(&v)), (404, "not_found"), "unknown scenario");
    let (s, v) = raw(
        &d,
        Method::POST,
        "/api/v1/events",
        t,
        json_body("{\"scenario\": \"canicule\", \"level\": \"violet\"}"),
    )
    .await;
    assert_eq!((s, error_code(&v)), (422, "unprocessable"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("jaune, orange, rouge")
    );
    let (s, v) = raw(&d, Method::GET, "/api/v1/events/999", t, None).await;
    assert_eq!((s, error_code(&v)), (404, "not_found"));
    let (s, v) = raw(&d, Method::GET, "/api/v1/events/abc", t, None).await;
    assert_eq!((s, error_code(&v)), (404, "not_found"));
    let (s, v) = raw(&d, Method::GET, "/api/v1/events?state=open", t, None).await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));

    // Level changes: unknown level 422, resolved event 409.
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap();
    let (s, _) = raw(
        &d,
        Method::POST,
        &format!("/api/v1/events/{id}/level"),
        t,
        json_body("{\"level\": \"violet\"}"),
    )
    .await;
    assert_eq!(s, 422);
    let (s, v) = raw(
        &d,
        Method::POST,
        &format!("/api/v1/events/{id}/level"),
        t,
        json_body("{\"level\": \"rouge\"}"),
    )
    .await;
    assert_eq!((s, v["level"].as_str()), (200, Some("rouge")));
    let (s, _) = raw(
        &d,
        Method::POST,
        &format!("/api/v1/events/{id}/resolve"),
        t,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = raw(
        &d,
        Method::POST,
        &format!("/api/v1/events/{id}/level"),
        t,
        json_body("{\"level\": \"orange\"}"),
    )
    .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_by_state_and_status_sums_up() {
    let d = TestDaemon::start().await;
    let a = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    d.declare(json!({"scenario": "cellule_crise", "exercise": true}))
        .await;
    let (_, _) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{}/resolve", a["id"].as_str().unwrap()),
            None,
        )
        .await;

    let (s, v) = d
        .api(Method::GET, "/api/v1/events?state=active", None)
        .await;
    assert_eq!(s, 200);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["scenario"], "cellule_crise");
    for key in [
        "id",
        "scenario",
        "title",
        "level",
        "state",
        "exercise",
        "note",
        "declared_at",
        "plan",
    ] {
        assert!(events[0].get(key).is_some(), "event JSON has `{key}`");
    }
    assert!(events[0]["id"].is_string());
    let (_, all) = d.api(Method::GET, "/api/v1/events", None).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 2);

    let (s, st) = d.api(Method::GET, "/api/v1/status", None).await;
    assert_eq!(s, 200);
    for key in ["plans", "events", "deliveries", "rosters", "reload"] {
        assert!(st.get(key).is_some(), "status has `{key}`");
    }
    assert_eq!(st["events"].as_array().unwrap().len(), 1);
    assert_eq!(st["plans"][0]["in_force"], true);
    // Who did what is in the audit log, with the token's name.
    let audit = d.daemon().state.store.recent_audit(20).await.unwrap();
    let actions: Vec<(String, String)> = audit
        .iter()
        .map(|a| (a.actor.clone(), a.action.clone()))
        .collect();
    assert!(
        actions.contains(&("token:generated".into(), "declare".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("token:generated".into(), "resolve".into())),
        "{actions:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_response_link_gets_404_and_a_get_changes_nothing() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    crate::harness::eventually(10, "mailed", || async { d.smtp.messages().len() == 2 }).await;
    let link = d.link_for("claire.martin@example.org");
    let path = link.trim_start_matches("http://vigie.test").to_string();

    // A mail scanner opening the link: a page, no response recorded.
    let page = d.http.get(d.url(&path)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"fr\""));
    assert!(html.contains("Disponible") && html.contains("Indisponible"));
    assert!(html.contains("name=\"response\""));
    assert_eq!(d.event(&id).await["responses"].as_array().unwrap().len(), 0);

    // Another recipient number with the same signature: 404.
    let mut parts: Vec<String> = path
        .trim_start_matches("/r/")
        .split('.')
        .map(String::from)
        .collect();
    parts[1] = (parts[1].parse::<i64>().unwrap() + 1).to_string();
    let forged = format!("/r/{}", parts.join("."));
    assert_eq!(
        d.http
            .get(d.url(&forged))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        d.answer(&format!("http://vigie.test{forged}"), "disponible")
            .await,
        404
    );
    assert_eq!(
        d.http
            .get(d.url("/r/garbage"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    // An answer that is not offered: refused, nothing recorded.
    assert_eq!(d.answer(&link, "peut-etre").await, 422);
    assert_eq!(d.event(&id).await["responses"].as_array().unwrap().len(), 0);
    d.stop().await;
}
