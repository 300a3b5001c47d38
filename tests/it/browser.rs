//! A real browser (headless Chromium driven through WebDriver) logs in,
//! declares an exercise from the form, sees it on the dashboard and on the
//! public page, answers through a response link, and saves screenshots
//! under `target/screenshots/`. `.ci/run` installs chromium and
//! chromium-driver; without them the test is skipped locally, and fails
//! in CI.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::harness::{TestDaemon, eventually};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<&'static str> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

async fn browser() -> Option<(Driver, Client)> {
    // Two TLS back ends are linked in the test binary: pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(bin) = chromedriver() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium-driver"
        );
        eprintln!(
            "chromedriver not found: browser test skipped (apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1500", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-quic", "--lang=fr-FR"]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if let Ok(c) = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return Some((driver, c));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to chromedriver");
}

/// The text of `main` once it shows `needle` (at most 5 s): after a click
/// that submits a form, the old page may still be there, or going away.
async fn main_text(c: &Client, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css("main")).await
            && let Ok(t) = e.text().await
        {
            if t.contains(needle) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

async fn wait_path(c: &Client, path: &str) {
    for _ in 0..100 {
        if c.current_url()
            .await
            .map(|u| u.path() == path)
            .unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser never reached {path}");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = crate::support::repo().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_runs_an_exercise_from_the_browser() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let d = TestDaemon::start().await;

    // Log in.
    c.goto(&d.url("/bureau")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    fill_login(&c, &d).await;

    // Declare an exercise from the form.
    click(&c, Locator::Css("#choice option[value='canicule:orange']")).await;
    type_in(
        &c,
        Locator::Id("note"),
        "Exercice annuel : vigilance orange simulée.",
    )
    .await;
    click(&c, Locator::Css("form[action='/bureau/declare'] button")).await;
    // The confirmation page: who will be alerted; nothing declared yet.
    let body = main_text(&c, "Qui sera alerté").await;
    assert!(
        body.contains("Confirmer le déclenchement")
            && body.contains("EXERCICE")
            && body.contains("Palier 1 — Référents")
            && body.contains("Claire Martin — médecin, Thann"),
        "{body}"
    );
    screenshot(&c, "confirm").await;
    let (_, events) = d.api(reqwest::Method::GET, "/api/v1/events", None).await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        0,
        "not before confirming"
    );
    click(&c, Locator::Id("confirm")).await;
    let body = main_text(&c, "Exercice n° 1 déclenché").await;
    assert!(body.contains("Exercice n° 1 déclenché"), "{body}");
    assert!(
        body.contains("Vague de chaleur") && body.contains("Exercice"),
        "{body}"
    );
    eventually(10, "mails sent", || async { d.smtp.messages().len() >= 4 }).await;

    // Answer through a response link, on a phone-sized window.
    let link = d.link_for("claire.martin@example.org");
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&d.url(link.trim_start_matches("http://vigie.test")))
        .await
        .unwrap();
    screenshot(&c, "response-page").await;
    // The arrival delay and the comment, typed on the phone, fit its width.
    let eta = c.find(Locator::Css("input[name='eta']")).await.unwrap();
    let (x, _, w, _) = eta.rectangle().await.unwrap();
    assert!(
        x >= 0.0 && x + w <= 390.0,
        "the delay field fits: {x} + {w}"
    );
    eta.send_keys("15").await.unwrap();
    type_in(
        &c,
        Locator::Css("textarea[name='comment']"),
        "Je pars du cabinet",
    )
    .await;
    click(&c, Locator::Css("button[value='disponible']")).await;
    let text = main_text(&c, "Merci, votre réponse").await;
    assert!(
        text.contains(
            "Merci, votre réponse « Disponible » est enregistrée, arrivée prévue dans 15 min."
        ),
        "{text}"
    );
    assert!(
        text.contains("Votre commentaire : « Je pars du cabinet »"),
        "{text}"
    );
    screenshot(&c, "response-recorded").await;
    assert_eq!(d.event("1").await["state"], "acknowledged");

    // The public page shows it.
    c.goto(&d.url("/")).await.unwrap();
    let text = main_text(&c, "Vague de chaleur").await;
    assert!(
        text.contains("Vague de chaleur")
            && text.contains("Exercice")
            && text.contains("Pris en charge"),
        "{text}"
    );
    screenshot(&c, "situation-phone").await;
    c.set_window_size(1280, 1500).await.unwrap();
    screenshot(&c, "situation").await;

    // The dashboard and the event page.
    c.goto(&d.url("/bureau")).await.unwrap();
    click(&c, Locator::Css("details summary")).await;
    screenshot(&c, "bureau").await;
    c.goto(&d.url("/bureau/events/1")).await.unwrap();
    let text = main_text(&c, "Claire Martin").await;
    assert!(
        text.contains("Claire Martin") && text.contains("Disponible"),
        "{text}"
    );
    screenshot(&c, "event").await;

    // On a phone, Claire Martin's answer is on screen without scrolling
    // sideways, and so is every answer cell.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&d.url("/bureau/events/1")).await.unwrap();
    main_text(&c, "Claire Martin").await;
    let (width, scroll) = page_widths(&c).await;
    assert!(width <= 390.0, "{width}");
    assert!(
        scroll <= width,
        "the page scrolls sideways: {scroll} > {width}"
    );
    // The recipients table, found by its section's heading; its columns
    // by their headings (hidden or not).
    let table = c
        .find(Locator::XPath(
            "//h2[starts-with(., 'Destinataires')]/following::table[1]",
        ))
        .await
        .unwrap();
    let mut columns = Vec::new();
    for th in table.find_all(Locator::Css("thead th")).await.unwrap() {
        columns.push(th.prop("textContent").await.unwrap().unwrap_or_default());
    }
    let column = |name: &str| {
        1 + columns
            .iter()
            .position(|c| c.trim() == name)
            .unwrap_or_else(|| panic!("no column {name}: {columns:?}"))
    };
    let mut seen = false;
    for row in table.find_all(Locator::Css("tbody tr")).await.unwrap() {
        // The essential columns, the answer above all, are on screen.
        for name in ["Nom", "Réponse", "État"] {
            let cell = row
                .find(Locator::Css(&format!("td:nth-child({})", column(name))))
                .await
                .unwrap();
            let (x, _, w, h) = cell.rectangle().await.unwrap();
            assert!(
                x >= 0.0 && x + w <= width && w > 0.0 && h > 0.0,
                "the {name} cell at x={x}, width {w} (viewport {width})"
            );
        }
        if row.text().await.unwrap().contains("Claire Martin") {
            let answer = row
                .find(Locator::Css(&format!(
                    "td:nth-child({})",
                    column("Réponse")
                )))
                .await
                .unwrap();
            let t = answer.text().await.unwrap();
            assert!(t.contains("Disponible"), "{t}");
            seen = true;
        }
    }
    assert!(seen, "Claire Martin's row");
    c.execute(
        "document.querySelectorAll('main table')[1].scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "event-phone").await;
    c.set_window_size(1280, 1500).await.unwrap();
    c.close().await.unwrap();
    d.stop().await;
}

/// Two taps each on a phone: Claire asks for a replacement on her
/// Saturday from her page, Paul takes it from his (SPEC §15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_hands_her_saturday_to_a_colleague_on_a_phone() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let d = crate::swaps::start(false, 0).await;
    c.set_window_size(390, 844).await.unwrap();
    // Claire: her link, then "Chercher un remplaçant".
    let claire = crate::swaps::page_of(&d, "ref1").await;
    c.goto(&d.url(&claire)).await.unwrap();
    let text = main_text(&c, "samedi 20 juin 2026").await;
    assert!(text.contains("Mes prochaines gardes"), "{text}");
    screenshot(&c, "personal-page").await;
    click(
        &c,
        Locator::XPath("//button[normalize-space(.)='Chercher un remplaçant']"),
    )
    .await;
    let text = main_text(&c, "Demande envoyée").await;
    assert!(text.contains("Annuler la demande"), "{text}");
    // Paul: his link, then "Je prends cette garde".
    eventually(10, "Paul asked", || async {
        !d.smtp.to("paul.fuchs@example.org").is_empty()
    })
    .await;
    let paul = crate::swaps::page_of(&d, "med2").await;
    c.goto(&d.url(&paul)).await.unwrap();
    main_text(&c, "Gardes à reprendre").await;
    screenshot(&c, "personal-offer").await;
    let (width, scroll) = page_widths(&c).await;
    assert!(
        scroll <= width,
        "the page scrolls sideways: {scroll} > {width}"
    );
    click(
        &c,
        Locator::XPath("//button[normalize-space(.)='Je prends cette garde']"),
    )
    .await;
    let text = main_text(&c, "maintenant la vôtre").await;
    assert!(text.contains("samedi 20 juin 2026"), "{text}");
    screenshot(&c, "personal-taken").await;
    assert_eq!(
        crate::swaps::assignees(&d).await,
        vec![("med2".to_string(), "swap".to_string())]
    );
    c.set_window_size(1280, 1500).await.unwrap();
    c.close().await.unwrap();
    d.stop().await;
}

/// A Chrome DevTools command through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(&'static str, serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.0, "params": self.1});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// The whole page (beyond the window), as a PNG under target/screenshots/.
async fn full_page(c: &Client, name: &str) {
    use base64::Engine as _;
    let size = c
        .execute(
            "const e = document.documentElement; return [Math.max(e.scrollWidth, window.innerWidth), e.scrollHeight]",
            vec![],
        )
        .await
        .unwrap();
    let clip = serde_json::json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
    let shot = c
        .issue_cmd(Cdp(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        ))
        .await
        .unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let dir = crate::support::repo().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The page's width on screen and the width it scrolls to.
async fn page_widths(c: &Client) -> (f64, f64) {
    let px = |v: serde_json::Value| v.as_f64().unwrap();
    let width = c
        .execute("return document.documentElement.clientWidth", vec![])
        .await
        .unwrap();
    let scroll = c
        .execute("return document.documentElement.scrollWidth", vec![])
        .await
        .unwrap();
    (px(width), px(scroll))
}

/// Clicks the element `at`.
async fn click(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

/// Types `text` into the field `at`.
async fn type_in(c: &Client, at: Locator<'_>, text: &str) {
    c.find(at).await.unwrap().send_keys(text).await.unwrap();
}

async fn log_in(c: &Client, d: &TestDaemon) {
    c.goto(&d.url("/login")).await.unwrap();
    fill_login(c, d).await;
}

/// On the login page: the operator's name and password, sent; the desk
/// comes.
async fn fill_login(c: &Client, d: &TestDaemon) {
    let password = std::fs::read_to_string(d.dir.path().join("var/operator-password")).unwrap();
    type_in(c, Locator::Id("name"), "bureau").await;
    type_in(c, Locator::Id("password"), password.trim()).await;
    click(c, Locator::Css("form button[type=submit]")).await;
    wait_path(c, "/bureau").await;
}

/// The scripted exercise of `report.rs` (declared, three answers with
/// delays, one action done, one bulletin, one note, resolved), seen in
/// Chromium: the event page with its timeline, then the report as printed
/// on A4 (print media, 794 px wide): nothing wider than the page, no
/// English, times in Paris.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_scripted_exercise_prints_on_a4() {
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let d = crate::report::start().await;
    let id = crate::report::scripted_exercise(&d).await;
    log_in(&c, &d).await;

    c.goto(&d.url(&format!("/bureau/events/{id}")))
        .await
        .unwrap();
    let text = main_text(&c, "Pharmacie de garde prévenue").await;
    for want in [
        "Action n° 1 faite : Convoquer la cellule de crise",
        "Bulletin publié",
        "Pharmacie de garde prévenue par téléphone",
        "Exercice terminé",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    full_page(&c, "exercise-event").await;

    c.set_window_size(794, 1123).await.unwrap();
    c.issue_cmd(Cdp(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": "print"}),
    ))
    .await
    .unwrap();
    c.goto(&d.url(&format!("/bureau/events/{id}/report")))
        .await
        .unwrap();
    let text = main_text(&c, "Qui vient et quand").await;
    for want in [
        "Retour d'expérience : Vague de chaleur (exercice)",
        "1 action faite sur 2 : 1 à temps, 0 en retard ; 1 non faite.",
        "Non faite, en retard de 30 min",
        "Hélène Fuchs",
        "15/06/2026 à 10:15",
        "Pharmacie de garde prévenue par téléphone",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    // Printed: no navigation, no form, nothing wider than the page.
    let hidden = c
        .execute(
            "return [...document.querySelectorAll('header.top, .noprint')].every(e => e.offsetParent === null)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hidden, serde_json::json!(true), "navigation printed");
    full_page(&c, "exercise-report-print").await;
    let widths = c
        .execute(
            "const w = document.documentElement.clientWidth; \
             return [w, document.documentElement.scrollWidth, \
             [...document.querySelectorAll('main .card, main table, main svg')] \
               .filter(e => e.getBoundingClientRect().right > w || e.scrollWidth > e.clientWidth + 1) \
               .map(e => (e.id || e.tagName) + ':' + e.getBoundingClientRect().right)]",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths[1].as_f64() <= widths[0].as_f64(),
        "the report scrolls sideways: {widths}"
    );
    assert_eq!(widths[2], serde_json::json!([]), "cut on A4: {widths}");
    c.close().await.unwrap();
    d.stop().await;
}
