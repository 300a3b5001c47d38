//! The pages and their security: the public page shows no personal data,
//! the bureau pages need a login, forms need their CSRF token, failed
//! logins are rate-limited.

use reqwest::redirect::Policy;
use serde_json::json;

use crate::harness::{TestDaemon, count, eventually};
use crate::support::run_vigie;

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
            ("confirm", "oui"),
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
        .form(&[
            ("csrf", csrf.as_str()),
            ("note", "Fin de l'exercice"),
            ("confirm", "oui"),
        ])
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

/// The status of `GET path` with `bearer` as its token (none if empty).
async fn status_with(d: &TestDaemon, path: &str, bearer: &str) -> u16 {
    let mut req = client().get(d.url(path));
    if !bearer.is_empty() {
        req = req.bearer_auth(bearer);
    }
    req.send().await.unwrap().status().as_u16()
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
        s, 401,
        "the generated token (data_dir/api-token) no longer works"
    );
    // The local token (data_dir/local-token) goes on working for the API,
    // never in a calendar URL (401 there; an accepted token gets 404 for a
    // roster this fixture does not have).
    let local = std::fs::read_to_string(d.dir.path().join("var/local-token")).unwrap();
    let local = local.trim();
    assert_eq!(
        status_with(&d, "/api/v1/status", local).await,
        200,
        "the local token beside named ones"
    );
    assert_eq!(
        status_with(&d, &format!("/calendar/garde.ics?token={local}"), "").await,
        401,
        "the local token is not a calendar token"
    );
    assert_eq!(
        status_with(&d, &format!("/calendar/garde.ics?token={token}"), "").await,
        404,
        "a named token is"
    );
    assert_eq!(status_with(&d, "/api/v1/status", token).await, 200);

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
    assert_eq!(
        status_with(&d, "/api/v1/status", local).await,
        401,
        "the local token is refused once turned off"
    );
    assert_eq!(status_with(&d, "/api/v1/status", token).await, 200);
    d.stop().await;
}

/// The page's HTML with the escapes of its text undone (`'`, `/`…), to
/// look for sentences as people read them.
fn unescaped(html: String) -> String {
    html.replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A page of the bureau, read with the session `cookie`: (status, HTML).
async fn get(d: &TestDaemon, cookie: &str, path: &str) -> (u16, String) {
    let r = client()
        .get(d.url(path))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), unescaped(r.text().await.unwrap()))
}

/// A bureau form posted with the session `cookie`: (status, Location, HTML).
async fn post(
    d: &TestDaemon,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let r = client()
        .post(d.url(path))
        .header("Cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, unescaped(r.text().await.unwrap()))
}

/// The names `vigie plan preview` lists for a scenario (the engine's preview).
fn preview_names(d: &TestDaemon, scenario: &str, level: &str) -> Vec<String> {
    let config = d.dir.path().join("config/vigie.toml");
    let (code, out, err) = run_vigie(&[
        "plan",
        "preview",
        scenario,
        "--level",
        level,
        "--exercise",
        "--date",
        "2026-06-15",
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let names: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(|l| l.split(" (").next().unwrap().to_string())
        .collect();
    assert!(!names.is_empty(), "{out}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_from_the_bureau_shows_who_will_be_alerted_and_declares_only_when_confirmed() {
    let d = TestDaemon::start().await;
    let cookie = d.operator_cookie().await;
    let (_, html) = get(&d, &cookie, "/bureau").await;
    // No scenario chosen in advance: the first option asks for a choice.
    let select = &html[html
        .find("<select id=\"choice\"")
        .expect("the declare form")..];
    let select = &select[..select.find("</select>").unwrap()];
    assert!(
        select.contains("<option value=\"\" selected>— choisir —</option>"),
        "{select}"
    );
    assert_eq!(select.matches(" selected").count(), 1, "{select}");
    let csrf = csrf_of(&html);

    // The form itself declares nothing: it shows what would happen.
    let (status, _, page) = post(
        &d,
        &cookie,
        "/bureau/declare",
        &[
            ("csrf", &csrf),
            ("choice", "canicule:orange"),
            ("note", "Simulation annuelle"),
            ("exercise", "on"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Confirmer le déclenchement"), "{page}");
    assert!(page.contains("<strong>EXERCICE</strong>"), "{page}");
    assert!(
        page.contains("Vague de chaleur")
            && page
                .contains("<dt>Niveau</dt><dd><span class=\"badge b-orange\">orange</span></dd>"),
        "{page}"
    );
    assert!(
        page.contains("Plan de gestion de crise — CPTS de test (version 2026.1)"),
        "{page}"
    );
    assert!(page.contains("<h3>Palier 1 — Référents</h3>"), "{page}");
    assert!(page.contains("<h3>Palier 2 — Bureau</h3>"), "{page}");
    assert!(page.contains("<h3>Diffusion — Infirmiers</h3>"), "{page}");
    assert!(
        page.contains("Claire Martin — médecin, "),
        "profession and commune: {page}"
    );
    for name in preview_names(&d, "canicule", "orange") {
        assert!(
            page.contains(&name),
            "{name} is listed by the preview: {page}"
        );
    }
    assert!(page.contains("3 personnes"), "{page}");
    assert!(page.contains("name=\"confirm\" value=\"oui\""), "{page}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, events) = d.api(reqwest::Method::GET, "/api/v1/events", None).await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        0,
        "nothing declared"
    );
    assert!(d.smtp.messages().is_empty(), "nothing sent");

    // Confirmed: declared.
    let (status, location, _) = post(
        &d,
        &cookie,
        "/bureau/declare",
        &[
            ("csrf", &csrf),
            ("choice", "canicule:orange"),
            ("note", "Simulation annuelle"),
            ("exercise", "on"),
            ("confirm", "oui"),
        ],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/bureau"));
    let ev = d.event("1").await;
    assert_eq!(
        (ev["exercise"].as_bool(), ev["level"].as_str()),
        (Some(true), Some("orange"))
    );
    assert_eq!(ev["note"], "Simulation annuelle");
    let (_, html) = get(&d, &cookie, "/bureau").await;
    assert!(html.contains("Exercice n° 1 déclenché"), "{html}");

    // A real alert of the same scenario: said real, and the exercise beside it.
    let (status, _, page) = post(
        &d,
        &cookie,
        "/bureau/declare",
        &[("csrf", &csrf), ("choice", "canicule:orange")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("<strong>ALERTE RÉELLE</strong>"), "{page}");
    assert!(
        page.contains("Attention : un exercice de ce scénario est en cours (n° 1)."),
        "{page}"
    );
    // The same exercise again: no new event, said before confirming.
    let (_, _, page) = post(
        &d,
        &cookie,
        "/bureau/declare",
        &[
            ("csrf", &csrf),
            ("choice", "canicule:orange"),
            ("exercise", "on"),
        ],
    )
    .await;
    assert!(
        page.contains("Un exercice de ce scénario est déjà en cours au niveau orange (n° 1) : confirmer ne crée pas de nouvel événement et ne renvoie rien."),
        "{page}"
    );
    // Nothing chosen: refused, in French.
    let (status, _, page) = post(
        &d,
        &cookie,
        "/bureau/declare",
        &[("csrf", &csrf), ("choice", ""), ("confirm", "oui")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Choisissez d'abord un scénario"), "{page}");
    let (_, events) = d.api(reqwest::Method::GET, "/api/v1/events", None).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "{events}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_page_changes_the_level_and_resolves_and_shows_labels_not_ids() {
    let d = TestDaemon::start().await;
    d.declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    let cookie = d.operator_cookie().await;
    let (status, html) = get(&d, &cookie, "/bureau/events/1").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    assert!(
        html.contains("Plan de gestion de crise — CPTS de test (version 2026.1)"),
        "{html}"
    );
    assert!(
        !html.contains("canicule") && !html.contains("pgc"),
        "no ids: {html}"
    );
    assert!(html.contains("Palier 1 — Référents"), "{html}");
    assert!(
        html.contains("<td data-label=\"Canal\">e-mail</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td data-label=\"Délai\">15 min</td>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"jaune\" selected>Niveau jaune (actuel)</option>"),
        "{html}"
    );
    assert!(html.contains("action=\"/bureau/events/1/level\""), "{html}");

    // Up: done at once, back to the event page with the outcome.
    let level = "/bureau/events/1/level";
    let up = [
        ("csrf", csrf.as_str()),
        ("level", "rouge"),
        ("from", "event"),
    ];
    let (status, location, _) = post(&d, &cookie, level, &up).await;
    assert_eq!((status, location.as_str()), (303, "/bureau/events/1"));
    assert_eq!(d.event("1").await["level"], "rouge");
    let (_, html) = get(&d, &cookie, "/bureau/events/1").await;
    assert!(
        html.contains("Événement n° 1 : le niveau passe à rouge"),
        "{html}"
    );
    assert!(html.contains("Diffusion — Infirmiers"), "{html}");

    // Down: only with the box ticked.
    let down = [
        ("csrf", csrf.as_str()),
        ("level", "jaune"),
        ("from", "event"),
    ];
    let (status, _, html) = post(&d, &cookie, level, &down).await;
    assert_eq!(status, 409);
    assert!(
        html.contains("Cochez « Je confirme la baisse du niveau »"),
        "{html}"
    );
    assert_eq!(d.event("1").await["level"], "rouge");
    let down = [
        ("csrf", csrf.as_str()),
        ("level", "jaune"),
        ("from", "event"),
        ("downgrade", "oui"),
    ];
    let (status, _, _) = post(&d, &cookie, level, &down).await;
    assert_eq!(status, 303);
    assert_eq!(d.event("1").await["level"], "jaune");

    // Resolve: only with its box ticked; then the forms are gone.
    let (status, _, html) = post(
        &d,
        &cookie,
        "/bureau/events/1/resolve",
        &[("csrf", &csrf), ("from", "event")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("cochez « Je confirme la levée »"), "{html}");
    assert_eq!(d.event("1").await["state"], "active");
    let (status, location, _) = post(
        &d,
        &cookie,
        "/bureau/events/1/resolve",
        &[
            ("csrf", &csrf),
            ("from", "event"),
            ("note", "Fin de l'épisode <b>caniculaire</b>"),
            ("confirm", "oui"),
        ],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/bureau/events/1"));
    assert_eq!(d.event("1").await["state"], "resolved");
    let (_, html) = get(&d, &cookie, "/bureau/events/1").await;
    assert!(html.contains("Événement n° 1 levé."), "{html}");
    assert!(html.contains("Terminé"), "{html}");
    // The end note is shown (`get` reads the page's text unescaped).
    assert!(
        html.contains("<strong>Message de fin :</strong> Fin de l'épisode <b>caniculaire</b>"),
        "{html}"
    );
    assert!(
        !html.contains("/bureau/events/1/level") && !html.contains("/bureau/events/1/resolve"),
        "no forms once resolved: {html}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_speak_correct_french_plurals_dates_and_one_cpts_name() {
    let d = TestDaemon::start().await;
    d.declare(json!({"scenario": "canicule", "level": "jaune", "exercise": true}))
        .await;
    eventually(10, "both referents mailed", || async {
        count(&d.event("1").await, "sent") == 2
    })
    .await;
    let cookie = d.operator_cookie().await;
    let ev = d.event("1").await;
    let sent = count(&ev, "sent");
    assert!(sent > 1, "{ev}");
    for path in ["/bureau", "/bureau/events/1"] {
        let (_, html) = get(&d, &cookie, path).await;
        assert!(
            html.contains(&format!(">{sent} envoyés</span>")),
            "{path}: {html}"
        );
        // The next tier at 10:15, Paris time, on 15 June: "le … à …".
        assert!(
            html.contains("palier suivant le 15/06/2026 à 10:15"),
            "{path}: {html}"
        );
        assert!(!html.contains("à 15/06/2026"), "{path}: {html}");
        assert!(
            html.contains("déclenché le 15/06/2026 à 10:00"),
            "{path}: {html}"
        );
    }
    let (_, html) = get(&d, &cookie, "/bureau").await;
    assert!(
        html.contains("Destinataires et réponses (2 envois)"),
        "{html}"
    );

    // The response page: the CPTS named once in its header, the date said once.
    let link = d.link_for("claire.martin@example.org");
    let page = unescaped(
        client()
            .get(d.url(link.trim_start_matches("http://vigie.test")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let header = &page[page.find("<header>").unwrap()..page.find("</header>").unwrap()];
    assert_eq!(header.matches("CPTS de test").count(), 1, "{header}");
    assert!(
        header.contains("Plan de gestion de crise — CPTS de test"),
        "{header}"
    );
    assert!(
        page.contains("Exercice déclenché le 15/06/2026 à 10:00."),
        "{page}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_page_folds_a_long_list_and_names_who_no_channel_reaches() {
    let d = TestDaemon::start_setup(true, |dir| {
        let path = dir.join("config/directory.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for i in 1..=10 {
            text.push_str(&format!(
                "\n[[professional]]\nid = \"idel{i}\"\nname = \"Infirmière {i:02}\"\nprofession = \"infirmier\"\ncommune = \"Cernay\"\nemail = \"idel{i}@example.org\"\n"
            ));
        }
        text.push_str("\n[[professional]]\nid = \"sans\"\nname = \"Paul Sanscontact\"\nprofession = \"infirmier\"\ncommune = \"Thann\"\n");
        std::fs::write(&path, text).unwrap();
    })
    .await;
    let cookie = d.operator_cookie().await;
    let (_, html) = get(&d, &cookie, "/bureau").await;
    let csrf = csrf_of(&html);
    let (status, _, page) = post(
        &d,
        &cookie,
        "/bureau/declare",
        &[
            ("csrf", &csrf),
            ("choice", "canicule:orange"),
            ("exercise", "on"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<details><summary>Voir la liste (14 personnes)</summary>"),
        "{page}"
    );
    assert!(page.contains("Infirmière 07 — infirmier, Cernay"), "{page}");
    assert!(
        page.contains("Aucun canal de cette étape ne permet de joindre : Paul Sanscontact."),
        "{page}"
    );
    assert!(
        page.contains("2 personnes sans adresse e-mail : rien ne leur sera envoyé par e-mail (Céline Kuentz, Paul Sanscontact)."),
        "{page}"
    );
    // The referents (2 people): listed plainly, not folded.
    assert_eq!(page.matches("<details>").count(), 1, "{page}");
    d.stop().await;
}
