//! The pages and their security: the public page shows no personal data,
//! the bureau pages need a login, forms need their CSRF token, failed
//! logins are rate-limited.

use reqwest::redirect::Policy;
use serde_json::json;

use crate::harness::{TestDaemon, eventually};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn operator_password(d: &TestDaemon) -> String {
    std::fs::read_to_string(d.dir.path().join("var/operator-password"))
        .unwrap()
        .trim()
        .to_string()
}

/// Logs in as the generated operator; returns the session cookie pair.
async fn login(d: &TestDaemon) -> String {
    let resp = client()
        .post(d.url("/login"))
        .form(&[("name", "bureau"), ("password", &operator_password(d))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains("Secure"),
        "plain http public_url: no Secure flag"
    );
    set_cookie.split(';').next().unwrap().to_string()
}

fn csrf_of(html: &str) -> String {
    let i =
        html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[i..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_page_shows_the_situation_without_any_personal_data() {
    let d = TestDaemon::start().await;
    d.declare(json!({"scenario": "canicule", "level": "orange", "exercise": true, "note": "Note interne : appeler Claire Martin au 06 39 98 01 01"}))
        .await;
    eventually(10, "mailed", || async { d.smtp.messages().len() >= 4 }).await;
    let link = d.link_for("claire.martin@example.org");
    assert_eq!(d.answer(&link, "disponible").await, 200);

    let html = client()
        .get(d.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Vague de chaleur")
            && html.contains("Niveau orange")
            && html.contains("Exercice"),
        "{html}"
    );
    assert!(html.contains("CPTS de test") && html.contains("version 2026.1"));
    assert!(
        !html.contains("Note interne"),
        "no internal note on the public page"
    );
    let dir = std::fs::read_to_string(d.dir.path().join("config/directory.toml")).unwrap();
    for line in dir.lines() {
        for key in ["name = ", "email = ", "phone = "] {
            if let Some(v) = line.strip_prefix(key) {
                let v = v.trim_matches('"');
                assert!(!html.contains(v), "the public page shows {v}");
            }
        }
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bureau_pages_need_a_login_and_forms_need_their_csrf_token() {
    let d = TestDaemon::start().await;
    let c = client();
    for path in ["/bureau", "/bureau/events/1"] {
        let r = c.get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login");
    }
    let r = c
        .post(d.url("/bureau/declare"))
        .form(&[("choice", "canicule:jaune")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "no session, no declaration");

    let cookie = login(&d).await;
    let html = c
        .get(d.url("/bureau"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Tableau de bord du bureau"));
    assert!(
        html.contains("Olivier Bilger") || html.contains("Sans adresse e-mail"),
        "the directory summary"
    );
    // A forged session cookie is not a session.
    let forged = cookie.replacen("vigie_session=", "vigie_session=00", 1);
    let r = c
        .get(d.url("/bureau"))
        .header("Cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);

    // Without the CSRF token: refused, nothing declared.
    let r = c
        .post(d.url("/bureau/declare"))
        .header("Cookie", &cookie)
        .form(&[("choice", "canicule:jaune"), ("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (_, events) = d.api(reqwest::Method::GET, "/api/v1/events", None).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 0);

    // With it: declared, redirected to the dashboard with a message.
    let csrf = csrf_of(&html);
    let r = c
        .post(d.url("/bureau/declare"))
        .header("Cookie", &cookie)
        .form(&[
            ("choice", "canicule:orange"),
            ("csrf", csrf.as_str()),
            ("note", "Exercice"),
            ("exercise", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // The message is kept for this session, not carried in the address.
    assert_eq!(r.headers()["location"], "/bureau");
    let html = c
        .get(d.url("/bureau"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Exercice n° 1 déclenché"), "{html}");
    assert!(html.contains("Vague de chaleur") && html.contains("Niveau orange"));
    let ev = d.event("1").await;
    assert_eq!(ev["exercise"], true);
    assert_eq!(ev["level"], "orange");

    // Resolve from the event's form.
    let r = c
        .post(d.url("/bureau/events/1/resolve"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("note", "Fin de l'exercice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(d.event("1").await["state"], "resolved");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_refused_for_a_while() {
    let d = TestDaemon::start().await;
    let c = client();
    for _ in 0..5 {
        let r = c
            .post(d.url("/login"))
            .form(&[("name", "bureau"), ("password", "nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    // Even the right password is refused now.
    let r = c
        .post(d.url("/login"))
        .form(&[("name", "bureau"), ("password", &operator_password(&d))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.text().await.unwrap().contains("Trop de tentatives"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_operators_replace_the_generated_one_and_named_tokens_join_the_local_one() {
    let d = TestDaemon::start().await;
    let hash = vigie::web::auth::hash_password("mot de passe du bureau").unwrap();
    let token = "vigie_configured_token_for_tests";
    let sha = vigie::web::auth::token_sha256(token);
    let config = d.dir.path().join("config/vigie.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[auth]\noperators = [ {{ name = \"presidente\", password_hash = \"{hash}\" }} ]\ntokens = [ {{ name = \"cli\", sha256 = \"{sha}\" }} ]\n"
    ));
    std::fs::write(&config, text).unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);

    let (s, _) = d.api(reqwest::Method::GET, "/api/v1/status", None).await;
    assert_eq!(
        s, 200,
        "the local token (data_dir/api-token) still works beside them"
    );
    let r = client()
        .get(d.url("/api/v1/status"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let c = client();
    let r = c
        .post(d.url("/login"))
        .form(&[("name", "bureau"), ("password", &operator_password(&d))])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "the generated operator no longer works"
    );
    let r = c
        .post(d.url("/login"))
        .form(&[
            ("name", "presidente"),
            ("password", "mot de passe du bureau"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);

    // `local_token = false`: only the named tokens are accepted.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[auth]\n", "[auth]\nlocal_token = false\n"),
    )
    .unwrap();
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    let (s, _) = d.api(reqwest::Method::GET, "/api/v1/status", None).await;
    assert_eq!(s, 401, "the local token is refused once turned off");
    let r = client()
        .get(d.url("/api/v1/status"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    d.stop().await;
}
