//! Météo-France vigilance drives the heatwave scenario (SPEC §13). A
//! loopback server plays the DPVigilance API and the test changes its map
//! between polls; each poll is one `vigilance_step` the test calls itself
//! (the daemon's own loop is off), so nothing moves behind its back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestDaemon, eventually, june_15};
use crate::support::{Sandbox, copy_dir, repo, run_vigie};

const API_KEY: &str = "cle-portail-de-test";

/// What the fake DPVigilance answers next, and the keys it was sent.
#[derive(Default)]
struct FeedState {
    status: u16,
    body: String,
    delay: Duration,
    keys: Vec<String>,
    /// Where a 3xx answer sends the client.
    location: Option<String>,
}

struct Feed {
    addr: SocketAddr,
    state: Arc<Mutex<FeedState>>,
}

impl Feed {
    async fn start() -> Feed {
        let state = Arc::new(Mutex::new(FeedState {
            status: 200,
            body: map("2026-06-15T04:00:00Z", 1, 1),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/carte", get(serve))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Feed { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/carte", self.addr)
    }

    /// Answers 200 with this body from now on.
    fn set(&self, body: String) {
        let mut s = self.state.lock().unwrap();
        s.status = 200;
        s.body = body;
    }

    fn fail(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    /// Answers 302 to `to` from now on.
    fn redirect(&self, to: String) {
        let mut s = self.state.lock().unwrap();
        s.status = 302;
        s.location = Some(to);
    }

    fn keys(&self) -> Vec<String> {
        self.state.lock().unwrap().keys.clone()
    }
}

async fn serve(
    State(state): State<Arc<Mutex<FeedState>>>,
    headers: HeaderMap,
) -> (StatusCode, HeaderMap, String) {
    let (status, body, delay, location) = {
        let mut s = state.lock().unwrap();
        if let Some(k) = headers.get("apikey").and_then(|v| v.to_str().ok()) {
            s.keys.push(k.to_string());
        }
        (s.status, s.body.clone(), s.delay, s.location.clone())
    };
    tokio::time::sleep(delay).await;
    let mut out = HeaderMap::new();
    if let Some(l) = location {
        out.insert("location", l.parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, body)
}

/// A DPVigilance map: canicule (phenomenon 6) today and tomorrow in the
/// 68, vent (1) jaune, the 67 rouge (not followed), and fields Vigie does
/// not read.
fn map(update: &str, today: u8, tomorrow: u8) -> String {
    let domain = |id: &str, canicule: u8| {
        json!({
            "domain_id": id,
            "max_color_id": canicule,
            "phenomenon_items": [
                {"phenomenon_id": "1", "phenomenon_max_color_id": 2, "timelaps_items": []},
                {"phenomenon_id": "6", "phenomenon_max_color_id": canicule, "timelaps_items": []}
            ]
        })
    };
    json!({
        "meta": {"product_datetime": update, "generation_timestamp": update},
        "product": {
            "warning_type": "vigilance",
            "update_time": update,
            "periods": [
                {"echeance": "J", "begin_validity_time": update,
                 "timelaps": {"domain_ids": [domain("68", today), domain("67", 4)]}},
                {"echeance": "J1", "begin_validity_time": update,
                 "timelaps": {"domain_ids": [domain("68", tomorrow), domain("67", 4)]}}
            ]
        }
    })
    .to_string()
}

/// A daemon whose canicule scenario has a trigger in `mode`, polling `feed`.
async fn start(feed: &Feed, mode: &str) -> TestDaemon {
    start_timers(feed, mode, false).await
}

/// [`start`], with the daemon's own loops when `timers` is true.
async fn start_timers(feed: &Feed, mode: &str, timers: bool) -> TestDaemon {
    let source = "source = \"meteofrance\"\napi_key_file = \"secrets/meteofrance\"\n";
    start_source(feed, mode, timers, source).await
}

/// A daemon polling `feed` with these `source` lines of `[vigilance]`.
async fn start_source(feed: &Feed, mode: &str, timers: bool, source: &str) -> TestDaemon {
    let url = feed.url();
    let mode = mode.to_string();
    let source = source.to_string();
    TestDaemon::start_setup(timers, move |dir| {
        std::fs::write(dir.join("config/secrets/meteofrance"), API_KEY).unwrap();
        let config = dir.join("config/vigie.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[vigilance]\n{source}departements = [\"68\"]\n\
             url = \"{url}\"\nevery = \"1s\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        let plan = dir.join("plans/plan.toml");
        let text = std::fs::read_to_string(&plan).unwrap().replacen(
            "notify_on_resolve = true\n",
            &format!(
                "notify_on_resolve = true\n\n[[scenario.trigger]]\nphenomenon = \"canicule\"\n\
                 levels = {{ jaune = \"jaune\", orange = \"orange\", rouge = \"rouge\" }}\n\
                 mode = \"{mode}\"\n"
            ),
            1,
        );
        std::fs::write(&plan, text).unwrap();
    })
    .await
}

async fn step(d: &TestDaemon) -> vigie::app::VigilanceOutcome {
    d.daemon().state.app.vigilance_step().await
}

async fn vigilance(d: &TestDaemon) -> Value {
    let (status, v) = d.api(Method::GET, "/api/v1/vigilance", None).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn canicule_events(d: &TestDaemon) -> Vec<Value> {
    let (status, v) = d.api(Method::GET, "/api/v1/events", None).await;
    assert_eq!(status, 200, "{v}");
    let list = v
        .as_array()
        .cloned()
        .unwrap_or_else(|| v["events"].as_array().cloned().unwrap_or_default());
    list.into_iter()
        .filter(|e| e["scenario"] == "canicule")
        .collect()
}

fn outcome(ok: bool, proposals: usize, declared: usize) -> vigie::app::VigilanceOutcome {
    vigie::app::VigilanceOutcome {
        ok,
        proposals,
        declared,
    }
}

#[tokio::test]
async fn each_change_of_colour_makes_one_proposal_and_accepting_declares_at_its_level() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;

    // Vert: nothing to propose.
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    // Orange: one proposal, and only one however often it is polled.
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    assert_eq!(feed.state.lock().unwrap().keys[0], API_KEY);

    let v = vigilance(&d).await;
    let proposals = v["proposals"].as_array().unwrap();
    assert_eq!(proposals.len(), 1, "{v}");
    let p = &proposals[0];
    assert_eq!(p["source"], "meteofrance");
    assert_eq!(p["departement"], "68");
    assert_eq!(p["phenomenon"], "canicule");
    assert_eq!(p["colour"], "orange");
    assert_eq!(p["level"], "orange");
    assert_eq!(p["update_time"], "2026-06-15T06:00:00Z");
    assert!(canicule_events(&d).await.is_empty(), "nothing declared yet");

    // The plan's owners (the bureau) are told by e-mail.
    eventually(5, "the e-mail to the bureau", || async {
        d.smtp
            .messages()
            .iter()
            .any(|m| m.subject() == "Vigilance canicule orange : déclencher « Vague de chaleur » ?")
    })
    .await;
    let mail = d
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().starts_with("Vigilance canicule orange"))
        .unwrap();
    let text = mail.text();
    assert!(
        text.contains(
            "vigilance canicule orange pour le département 68 (bulletin du 15/06/2026 à 08:00)"
        ),
        "{text}"
    );

    // Accepting declares at orange with the key vigilance-canicule.
    let id = p["id"].as_i64().unwrap();
    let (status, accepted) = decide(&d, id, "accept").await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["state"], "accepted");
    let events = canicule_events(&d).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["level"], "orange");
    assert_eq!(events[0]["key"], "vigilance-canicule");
    // Decided once.
    let (status, _) = decide(&d, id, "accept").await;
    assert_eq!(status, 409);

    // Rouge: proposed, accepted, the event goes up.
    feed.set(map("2026-06-15T10:00:00Z", 4, 4));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let id = vigilance(&d).await["proposals"][0]["id"].as_i64().unwrap();
    let (status, _) = decide(&d, id, "accept").await;
    assert_eq!(status, 200);
    assert_eq!(canicule_events(&d).await[0]["level"], "rouge");

    // Back to vert: a proposal to resolve, never a resolution.
    feed.set(map("2026-06-16T04:00:00Z", 1, 1));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let v = vigilance(&d).await;
    assert_eq!(v["proposals"][0]["action"], "resolve", "{v}");
    let events = canicule_events(&d).await;
    assert_eq!(events[0]["level"], "rouge");
    assert_ne!(events[0]["state"], "resolved");

    // Dismissed, it is gone from the open proposals.
    let id = v["proposals"][0]["id"].as_i64().unwrap();
    let (status, _) = decide(&d, id, "dismiss").await;
    assert_eq!(status, 200);
    assert_eq!(vigilance(&d).await["proposals"], json!([]));
    assert_ne!(canicule_events(&d).await[0]["state"], "resolved");
    // Still vert at the next poll: nothing changed, nothing proposed again.
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    assert_eq!(vigilance(&d).await["proposals"], json!([]));
}

#[tokio::test]
async fn the_daemon_polls_by_itself_from_the_start() {
    let feed = Feed::start().await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    let d = start_timers(&feed, "propose", true).await;
    eventually(5, "a poll and its proposal", || async {
        vigilance(&d).await["proposals"]
            .as_array()
            .is_some_and(|p| p.len() == 1)
    })
    .await;
    assert_eq!(feed.state.lock().unwrap().keys[0], API_KEY);
}

#[tokio::test]
async fn tomorrow_alone_is_shown_as_demain_and_proposes_nothing() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 1, 4));
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    let v = vigilance(&d).await;
    let canicule = v["colours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["phenomenon"] == "canicule")
        .cloned()
        .unwrap();
    assert_eq!(
        canicule,
        json!({"departement": "68", "phenomenon": "canicule", "today": "vert", "demain": "rouge"})
    );
    assert_eq!(v["proposals"], json!([]));
}

#[tokio::test]
async fn declare_mode_declares_upward_at_once_and_only_proposes_downward() {
    let feed = Feed::start().await;
    let d = start(&feed, "declare").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 0, 1));
    let events = canicule_events(&d).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["level"], "orange");
    assert_eq!(events[0]["key"], "vigilance-canicule");
    assert_eq!(vigilance(&d).await["proposals"], json!([]));

    // Jaune: lower, so only proposed.
    feed.set(map("2026-06-15T10:00:00Z", 2, 2));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    assert_eq!(canicule_events(&d).await[0]["level"], "orange");
    assert_eq!(vigilance(&d).await["proposals"][0]["level"], "jaune");
}

/// A way to break the feed.
type Breakage = Box<dyn Fn(&Feed)>;

#[tokio::test]
async fn a_failed_poll_keeps_the_last_good_map_and_says_why() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 2));
    assert_eq!(step(&d).await, outcome(true, 1, 0));

    let cases: Vec<(Breakage, &str)> = vec![
        (
            Box::new(|f: &Feed| f.set("{\"product\": [1, 2".into())),
            "réponse JSON illisible (ligne 1, colonne 17)",
        ),
        (
            Box::new(|f: &Feed| {
                f.set("{\"product\": {\"update_time\": \"2026-06-15T07:00:00Z\"}}".into())
            }),
            "champ « product.periods » absent",
        ),
        (Box::new(|f: &Feed| f.fail(500)), "HTTP 500"),
        (
            Box::new(|f: &Feed| f.set(" ".repeat(9 << 20))),
            "réponse trop grande (plus de 8 Mio)",
        ),
        (
            Box::new(|f: &Feed| f.fail(401)),
            "HTTP 401 : clé API refusée",
        ),
        (
            Box::new(|f: &Feed| f.set(map("2026-06-15T02:00:00Z", 1, 1))),
            "bulletin périmé : mis à jour le 15/06/2026 à 04:00, plus ancien que celui en mémoire (15/06/2026 à 08:00)",
        ),
        (
            Box::new(|f: &Feed| {
                f.set(map("2026-06-15T09:00:00Z", 1, 1));
                f.state.lock().unwrap().delay = Duration::from_secs(3);
            }),
            "pas de réponse à temps",
        ),
    ];
    for (i, (breakage, why)) in cases.iter().enumerate() {
        breakage(&feed);
        assert_eq!(step(&d).await, outcome(false, 0, 0), "case {why}");
        let v = vigilance(&d).await;
        assert_eq!(v["last_error"], *why, "{v}");
        assert_eq!(v["failures"], (i + 1) as u64);
        // The last good map is kept: still orange, one proposal.
        let canicule = v["colours"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["phenomenon"] == "canicule")
            .cloned()
            .unwrap();
        assert_eq!(canicule["today"], "orange", "{v}");
        assert_eq!(v["update_time"], "2026-06-15T06:00:00Z");
        assert_eq!(v["proposals"].as_array().unwrap().len(), 1);
    }

    // Seen in the status and the metrics.
    let (status, s) = d.api(Method::GET, "/api/v1/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(s["vigilance"]["last_error"], "pas de réponse à temps");
    assert_eq!(s["vigilance"]["ok"], false);
    let metrics = d
        .http
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("vigie_vigilance_ok 0\n"), "{metrics}");
    assert!(
        metrics.contains("vigie_vigilance_poll_failures_total 7\n"),
        "{metrics}"
    );

    // Recovery clears the error.
    feed.state.lock().unwrap().delay = Duration::ZERO;
    feed.set(map("2026-06-15T12:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    assert_eq!(vigilance(&d).await["last_error"], Value::Null);
}

/// A copy of `tests/fixtures/minimal` with a `[vigilance]` and a trigger
/// on the canicule scenario.
fn minimal_with(vigilance: &str, trigger: &str) -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/minimal"), dir.path());
    let sb = Sandbox { dir };
    sb.write("config/secrets/meteofrance", "cle");
    let config = sb.read("config/vigie.toml");
    sb.write("config/vigie.toml", &format!("{config}\n{vigilance}"));
    sb.edit(
        "plans/pgc-2026.toml",
        "notify_on_resolve = true\n",
        &format!("notify_on_resolve = true\n\n{trigger}"),
    );
    sb
}

fn check(sb: &Sandbox) -> (i32, Vec<String>) {
    let config = sb.config();
    let (code, out, err) = run_vigie(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-06-01",
    ]);
    assert!(!err.contains("panicked"), "{err}");
    let dir = format!("{}/", sb.path().display());
    (
        code,
        out.lines()
            .filter(|l| l.starts_with(&dir))
            .map(|l| l.replacen(&dir, "", 1))
            .collect(),
    )
}

const GOOD_VIGILANCE: &str =
    "[vigilance]\ndepartements = [\"68\"]\napi_key_file = \"secrets/meteofrance\"\n";
const GOOD_TRIGGER: &str = "[[scenario.trigger]]\nphenomenon = \"canicule\"\nlevels = { orange = \"orange\", rouge = \"rouge\" }\n";

#[test]
fn check_accepts_a_good_trigger_and_vigilance() {
    let sb = minimal_with(GOOD_VIGILANCE, GOOD_TRIGGER);
    let (code, lines) = check(&sb);
    assert_eq!(code, 0, "{lines:?}");
}

#[test]
fn check_names_a_bad_trigger_at_its_place() {
    let sb = minimal_with(
        GOOD_VIGILANCE,
        "[[scenario.trigger]]\nphenomenon = \"canicul\"\nlevels = { jaune = \"jaune\", rouge = \"ecarlate\", violet = \"rouge\" }\nmode = \"auto\"\n",
    );
    let (code, lines) = check(&sb);
    assert_ne!(code, 0);
    assert_eq!(
        lines,
        [
            "plans/pgc-2026.toml:37:14: unknown phenomenon \"canicul\": one of vent, pluie-inondation, orages, crues, neige-verglas, canicule, grand-froid, avalanches, vagues-submersion",
            "plans/pgc-2026.toml:38:37: level \"ecarlate\" is not a level of this scenario (jaune, orange, rouge)",
            "plans/pgc-2026.toml:38:49: unknown key `violet` in [scenario.trigger.levels]",
            "plans/pgc-2026.toml:39:8: unknown mode \"auto\": \"propose\" or \"declare\"",
        ]
    );
}

#[test]
fn check_names_a_bad_vigilance_at_its_place() {
    let sb = minimal_with(
        "[vigilance]\nsource = \"meteofrance\"\ndepartements = [\"68\", \"20\"]\napi_key_file = \"secrets/meteofrance\"\nevery = \"500ms\"\n",
        GOOD_TRIGGER,
    );
    let (code, lines) = check(&sb);
    assert_ne!(code, 0);
    let l = vline(&sb, "departements");
    assert_eq!(
        lines,
        [
            format!(
                "config/vigie.toml:{l}:23: unknown département \"20\": a code such as \"68\", \"2A\" or \"974\""
            ),
            format!(
                "config/vigie.toml:{}:9: `every` must be at least 1s (e.g. \"15m\")",
                l + 2
            ),
        ]
    );
}

/// The line of `config/vigie.toml` that starts with `key`.
fn vline(sb: &Sandbox, key: &str) -> usize {
    sb.read("config/vigie.toml")
        .lines()
        .position(|l| l.starts_with(key))
        .unwrap()
        + 1
}

async fn bureau(d: &TestDaemon, c: &reqwest::Client, cookie: &str) -> String {
    c.get(d.url("/bureau"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
}

fn csrf_of(html: &str) -> String {
    let i =
        html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[i..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn the_dashboard_shows_the_proposal_and_declencher_declares_it() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 4));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let cookie = d.operator_cookie().await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = bureau(&d, &c, &cookie).await;
    assert!(
        html.contains("Carte du 15/06/2026 à 08:00, lue le 15/06/2026 à 10:00."),
        "{html}"
    );
    assert!(
        html.contains("<li>canicule (68) : orange aujourd'hui, rouge demain</li>"),
        "{html}"
    );
    assert!(
        html.contains("Vigilance canicule orange (68), bulletin du 15/06/2026 à 08:00 : déclencher « Vague de chaleur » au niveau orange"),
        "{html}"
    );
    assert!(html.contains(">Déclencher</button>") && html.contains(">Ignorer</button>"));

    // A failed poll is shown, the map kept.
    feed.fail(500);
    step(&d).await;
    let html = bureau(&d, &c, &cookie).await;
    assert!(
        html.contains("Dernière lecture de la carte en échec (15/06/2026 à 10:00) : HTTP 500. La carte du 15/06/2026 à 08:00 reste en mémoire."),
        "{html}"
    );

    let id = vigilance(&d).await["proposals"][0]["id"].as_i64().unwrap();
    let r = c
        .post(d.url(&format!("/bureau/proposals/{id}")))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf_of(&html).as_str()), ("decision", "accept")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let events = canicule_events(&d).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["level"], "orange");
    assert_eq!(events[0]["key"], "vigilance-canicule");
    let html = bureau(&d, &c, &cookie).await;
    assert!(html.contains("Proposition n° 1 acceptée"), "{html}");
}

/// `POST /api/v1/proposals/{id}/{decision}`: (status, JSON).
async fn decide(d: &TestDaemon, id: i64, decision: &str) -> (u16, Value) {
    d.api(
        Method::POST,
        &format!("/api/v1/proposals/{id}/{decision}"),
        None,
    )
    .await
}

/// The id of the only open proposal.
async fn only_proposal(d: &TestDaemon) -> i64 {
    let v = vigilance(d).await;
    let p = v["proposals"].as_array().unwrap();
    assert_eq!(p.len(), 1, "{v}");
    p[0]["id"].as_i64().unwrap()
}

/// Today's canicule colour in the 68 as the daemon has it.
async fn canicule_today(d: &TestDaemon) -> Value {
    vigilance(d).await["colours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["phenomenon"] == "canicule" && c["departement"] == "68")
        .map(|c| c["today"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_change_of_colour_closes_the_open_proposal_and_it_cannot_be_accepted() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let id = only_proposal(&d).await;

    // Back to vert with no event running: nothing to propose, and the
    // orange proposal is closed with its colour.
    feed.set(map("2026-06-15T08:00:00Z", 1, 1));
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    assert_eq!(vigilance(&d).await["proposals"], json!([]));
    let (status, v) = decide(&d, id, "accept").await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v.to_string()
            .contains("dépassée par un changement de couleur"),
        "{v}"
    );
    assert!(canicule_events(&d).await.is_empty(), "nothing declared");
}

#[tokio::test]
async fn after_a_restart_what_was_dismissed_or_lifted_stays_so() {
    // Propose: dismissed, restart, the same bulletin proposes nothing.
    let feed = Feed::start().await;
    let mut d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let id = only_proposal(&d).await;
    assert_eq!(decide(&d, id, "dismiss").await.0, 200);
    let subject = "Vigilance canicule orange : déclencher « Vague de chaleur » ?";
    eventually(5, "the e-mail to the bureau", || async {
        d.smtp.messages().iter().any(|m| m.subject() == subject)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = |d: &TestDaemon| {
        d.smtp
            .messages()
            .iter()
            .filter(|m| m.subject() == subject)
            .count()
    };
    let before = sent(&d);
    d.restart_at(june_15()).await;
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    assert_eq!(vigilance(&d).await["proposals"], json!([]));
    assert_eq!(canicule_today(&d).await, "orange");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sent(&d), before, "no e-mail again");

    // Declare: declared, lifted by hand, restart, the same bulletin
    // declares nothing.
    let feed = Feed::start().await;
    let mut d = start(&feed, "declare").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 0, 1));
    let ev = canicule_events(&d).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = d
        .api(
            Method::POST,
            &format!("/api/v1/events/{ev}/resolve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    d.restart_at(june_15()).await;
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    let events = canicule_events(&d).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["state"], "resolved");
}

#[tokio::test]
async fn an_old_bulletin_is_refused_even_after_a_restart() {
    let feed = Feed::start().await;
    let mut d = start(&feed, "propose").await;
    // More than 36 h before now (15/06 at 10:00 in Paris).
    feed.set(map("2026-06-13T19:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(false, 0, 0));
    assert_eq!(
        vigilance(&d).await["last_error"],
        "bulletin périmé : mis à jour le 13/06/2026 à 21:00, il y a plus de 36 h"
    );
    // 36 h is still good.
    feed.set(map("2026-06-13T20:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    feed.set(map("2026-06-15T06:00:00Z", 2, 2));
    assert_eq!(step(&d).await, outcome(true, 1, 0));

    // After a restart, the older bulletin is refused: the newer is kept.
    d.restart_at(june_15()).await;
    feed.set(map("2026-06-15T04:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(false, 0, 0));
    let v = vigilance(&d).await;
    assert_eq!(
        v["last_error"],
        "bulletin périmé : mis à jour le 15/06/2026 à 06:00, plus ancien que celui en mémoire (15/06/2026 à 08:00)"
    );
    assert_eq!(canicule_today(&d).await, "jaune");
    assert_eq!(v["proposals"][0]["colour"], "jaune", "{v}");
}

#[tokio::test]
async fn accepting_never_lowers_the_running_event_but_may_lift_it() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 4, 4));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    assert_eq!(decide(&d, only_proposal(&d).await, "accept").await.0, 200);
    assert_eq!(canicule_events(&d).await[0]["level"], "rouge");

    feed.set(map("2026-06-15T07:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let id = only_proposal(&d).await;
    let (status, v) = decide(&d, id, "accept").await;
    assert_eq!(status, 409, "{v}");
    assert!(v.to_string().contains("« Changer de niveau »"), "{v}");
    assert_eq!(canicule_events(&d).await[0]["level"], "rouge");
    // Still open: the bureau may dismiss it.
    assert_eq!(only_proposal(&d).await, id);

    // Lifting stays allowed.
    feed.set(map("2026-06-15T08:00:00Z", 1, 1));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    assert_eq!(decide(&d, only_proposal(&d).await, "accept").await.0, 200);
    assert_eq!(canicule_events(&d).await[0]["state"], "resolved");
}

/// `n` accepts and `m` dismisses of proposal `id` at once: their statuses.
async fn at_once(d: &TestDaemon, id: i64, n: usize, m: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for i in 0..n + m {
        let what = if i < n { "accept" } else { "dismiss" };
        let req = d
            .http
            .post(d.url(&format!("/api/v1/proposals/{id}/{what}")))
            .bearer_auth(&d.token);
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_proposal_is_carried_out_once_however_many_decide_at_once() {
    let feed = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let id = only_proposal(&d).await;
    let statuses = at_once(&d, id, 10, 0).await;
    assert_eq!(statuses, [vec![200], vec![409; 9]].concat());
    let audit = d.daemon().state.store.recent_audit(500).await.unwrap();
    let carried = audit
        .iter()
        .filter(|a| a.action == "vigilance" && a.detail.starts_with("Vigilance Météo-France"))
        .count();
    assert_eq!(carried, 1);
    assert_eq!(canicule_events(&d).await.len(), 1);

    // Accepts and dismisses racing: one of them wins.
    feed.set(map("2026-06-15T07:00:00Z", 4, 4));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let id = only_proposal(&d).await;
    let statuses = at_once(&d, id, 5, 5).await;
    assert_eq!(statuses, [vec![200], vec![409; 9]].concat());
}

#[tokio::test]
async fn a_redirect_is_a_failed_poll_and_the_key_goes_nowhere_else() {
    let feed = Feed::start().await;
    let elsewhere = Feed::start().await;
    let d = start(&feed, "propose").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 1, 0));

    elsewhere.set(map("2026-06-15T07:00:00Z", 4, 4));
    feed.redirect(elsewhere.url());
    assert_eq!(step(&d).await, outcome(false, 0, 0));
    assert!(elsewhere.keys().is_empty(), "{:?}", elsewhere.keys());
    let v = vigilance(&d).await;
    assert_eq!(
        v["last_error"],
        "HTTP 302 : redirection refusée (la clé API n'est envoyée qu'à l'adresse configurée)"
    );
    assert_eq!(canicule_today(&d).await, "orange");
    assert_eq!(v["update_time"], "2026-06-15T06:00:00Z");
}

#[tokio::test]
async fn a_map_that_leaves_out_a_departement_is_a_failed_poll() {
    let feed = Feed::start().await;
    let d = start(&feed, "declare").await;
    feed.set(map("2026-06-15T06:00:00Z", 3, 3));
    assert_eq!(step(&d).await, outcome(true, 0, 1));

    // Today's period without the 68 (only the 67).
    let mut m: Value = serde_json::from_str(&map("2026-06-15T07:00:00Z", 3, 3)).unwrap();
    m["product"]["periods"][0]["timelaps"]["domain_ids"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    feed.set(m.to_string());
    assert_eq!(step(&d).await, outcome(false, 0, 0));
    let v = vigilance(&d).await;
    assert_eq!(
        v["last_error"],
        "la carte d'aujourd'hui ne donne pas le département 68"
    );
    assert_eq!(canicule_today(&d).await, "orange");
    assert_eq!(v["proposals"], json!([]));
}

// MeteoAlarm's keyless Atom/CAP feed (`source = "meteoalarm"`): the same
// proposals from another format. The clock is at 15/06/2026 10:00 Paris.

/// One Atom `<entry>` of MeteoAlarm: its EMMA_ID, awareness type,
/// severity, onset and expiry.
fn entry(emma: &str, awareness: &str, severity: &str, onset: &str, expires: &str) -> String {
    format!(
        r#"<entry>
    <cap:areaDesc>Zone</cap:areaDesc>
    <cap:event>Warning</cap:event>
    <cap:certainty>Likely</cap:certainty>
    <cap:severity>{severity}</cap:severity>
    <cap:urgency>Immediate</cap:urgency>
    <cap:effective>2026-06-15T05:00:00+00:00</cap:effective>
    <cap:onset>{onset}</cap:onset>
    <cap:expires>{expires}</cap:expires>
    <cap:status>Actual</cap:status>
    <cap:message_type>Alert</cap:message_type>
    <cap:identifier>2.49.0.0.250.0.FR.{emma}.{severity}</cap:identifier>
    <cap:geocode><valueName>EMMA_ID</valueName><value>{emma}</value></cap:geocode>
    <cap:parameter><valueName>awareness_level</valueName><value>3; orange; Severe</value></cap:parameter>
    <cap:parameter><valueName>awareness_type</valueName><value>{awareness}</value></cap:parameter>
    <id>urn:test:{emma}</id>
    <updated>2026-06-15T05:00:00+00:00</updated>
    <title>Test</title>
  </entry>"#
    )
}

/// A MeteoAlarm Atom feed updated at `updated` with these entries.
fn atom(updated: &str, entries: &[String]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
  <id>https://feeds.meteoalarm.org/feeds/meteoalarm-legacy-atom-france</id>
  <title>MeteoAlarm France</title>
  <updated>{updated}</updated>
  {}
</feed>"#,
        entries.join("\n  ")
    )
}

const HEAT: &str = "5; high-temperature";
const TODAY: &str = "2026-06-15T06:00:00+02:00";
const LATER: &str = "2026-06-17T06:00:00+02:00";

/// Canicule in the 68 at `severity` today (EMMA_ID `emma`), with a rouge
/// in the 67 (not followed) and fog in the 68 (not a phenomenon of Vigie).
fn alarm(updated: &str, emma: &str, severity: &str) -> String {
    atom(
        updated,
        &[
            entry(emma, HEAT, severity, TODAY, LATER),
            entry("FR067", HEAT, "Extreme", TODAY, LATER),
            entry("FR068", "4; fog", "Extreme", TODAY, LATER),
        ],
    )
}

async fn start_meteoalarm(feed: &Feed) -> TestDaemon {
    feed.set(atom("2026-06-15T04:00:00Z", &[]));
    start_source(feed, "propose", false, "source = \"meteoalarm\"\n").await
}

async fn accept(d: &TestDaemon) {
    let id = vigilance(d).await["proposals"][0]["id"].as_i64().unwrap();
    let (status, v) = decide(d, id, "accept").await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn meteoalarm_changes_of_colour_make_one_proposal_each_and_accepting_declares() {
    let feed = Feed::start().await;
    let d = start_meteoalarm(&feed).await;

    // No warning: vert, nothing proposed, no key sent.
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    // Severe in the 68 (EMMA_ID FR068): orange, one proposal only.
    feed.set(alarm("2026-06-15T06:00:00Z", "FR068", "Severe"));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    assert!(feed.state.lock().unwrap().keys.is_empty());
    let v = vigilance(&d).await;
    assert_eq!(v["source"], "meteoalarm");
    let p = &v["proposals"][0];
    assert_eq!(v["proposals"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(p["source"], "meteoalarm");
    assert_eq!(p["departement"], "68");
    assert_eq!(p["colour"], "orange");
    assert_eq!(p["level"], "orange");
    assert_eq!(p["update_time"], "2026-06-15T06:00:00Z");
    // The 67 and the fog are not read.
    let colours = v["colours"].as_array().unwrap();
    assert_eq!(
        colours,
        &[
            json!({"departement": "68", "phenomenon": "canicule", "today": "orange", "demain": "orange"})
        ],
        "{v}"
    );
    eventually(5, "the e-mail naming MeteoAlarm", || async {
        d.smtp.messages().iter().any(|m| {
            m.subject() == "Vigilance canicule orange : déclencher « Vague de chaleur » ?"
                && m.text().contains(
                    "MeteoAlarm annonce une vigilance canicule orange pour le département 68",
                )
        })
    })
    .await;
    accept(&d).await;
    let events = canicule_events(&d).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["level"], "orange");
    assert_eq!(events[0]["key"], "vigilance-canicule");

    // Extreme (EMMA_ID FR68, without the zero): rouge, accepted.
    feed.set(alarm("2026-06-15T07:00:00Z", "FR68", "Extreme"));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    accept(&d).await;
    assert_eq!(canicule_events(&d).await[0]["level"], "rouge");

    // Minor: back to vert, a proposal to resolve and nothing resolved.
    feed.set(alarm("2026-06-15T08:00:00Z", "FR068", "Minor"));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let v = vigilance(&d).await;
    assert_eq!(v["proposals"][0]["action"], "resolve", "{v}");
    assert_ne!(canicule_events(&d).await[0]["state"], "resolved");
}

#[tokio::test]
async fn meteoalarm_tomorrow_alone_is_demain_and_another_departement_is_ignored() {
    let feed = Feed::start().await;
    let d = start_meteoalarm(&feed).await;
    feed.set(atom(
        "2026-06-15T06:00:00Z",
        &[
            entry("FR068", HEAT, "Extreme", "2026-06-16T06:00:00+02:00", LATER),
            entry("FR067", HEAT, "Extreme", TODAY, LATER),
            // Expired this morning.
            entry("FR068", HEAT, "Severe", "2026-06-14T06:00:00+02:00", TODAY),
        ],
    ));
    assert_eq!(step(&d).await, outcome(true, 0, 0));
    let v = vigilance(&d).await;
    assert_eq!(
        v["colours"],
        json!([{"departement": "68", "phenomenon": "canicule", "today": "vert", "demain": "rouge"}]),
        "{v}"
    );
    assert_eq!(v["proposals"], json!([]));
}

#[tokio::test]
async fn meteoalarm_a_malformed_feed_keeps_the_last_good_map_and_says_why() {
    let feed = Feed::start().await;
    let d = start_meteoalarm(&feed).await;
    feed.set(alarm("2026-06-15T06:00:00Z", "FR068", "Severe"));
    assert_eq!(step(&d).await, outcome(true, 1, 0));
    let cases = [
        (
            "<feed><entry></feed>".to_string(),
            "réponse XML illisible (ligne 1, colonne 14)",
        ),
        (
            "{\"product\": {}}".to_string(),
            "réponse XML illisible (ligne 1, colonne 1)",
        ),
        (
            "<rss></rss>".to_string(),
            "ce n'est pas un flux Atom (élément racine « rss »)",
        ),
        (
            alarm("2026-06-15T07:00:00Z", "FR068", "Severe")
                .replace("Severe</cap:severity>", "Grave</cap:severity>"),
            "entrée « 2.49.0.0.250.0.FR.FR068.Severe » : sévérité « Grave » inconnue (Minor, Moderate, Severe, Extreme)",
        ),
        (
            alarm("2026-06-15T02:00:00Z", "FR068", "Minor"),
            "bulletin périmé : mis à jour le 15/06/2026 à 04:00, plus ancien que celui en mémoire (15/06/2026 à 08:00)",
        ),
    ];
    for (i, (body, why)) in cases.into_iter().enumerate() {
        feed.set(body);
        assert_eq!(step(&d).await, outcome(false, 0, 0), "case {why}");
        let v = vigilance(&d).await;
        assert_eq!(v["last_error"], why, "{v}");
        assert_eq!(v["failures"], (i + 1) as u64);
        assert_eq!(v["colours"][0]["today"], "orange", "{v}");
        assert_eq!(v["proposals"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn check_accepts_meteoalarm_without_a_key() {
    let sb = minimal_with(
        "[vigilance]\nsource = \"meteoalarm\"\ndepartements = [\"68\"]\n",
        GOOD_TRIGGER,
    );
    let (code, lines) = check(&sb);
    assert_eq!(code, 0, "{lines:?}");
}

/// The shipped configuration and plan, run by the real daemon on the real
/// clock, with MeteoAlarm's feed on loopback: a grand froid Severe in the
/// 68 is proposed to the bureau for the shipped `grand_froid` scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_plan_proposes_grand_froid_from_meteoalarm() {
    use crate::support::{DaemonProcess, http_request};
    let feed = Feed::start().await;
    let now = chrono::Utc::now();
    let at = |h: i64| (now + chrono::Duration::hours(h)).to_rfc3339();
    feed.set(atom(
        &at(-1),
        &[entry(
            "FR068",
            "6; low-temperature",
            "Severe",
            &at(-1),
            &at(24),
        )],
    ));
    let sb = Sandbox::shipped_in_force();
    // Port 0: the daemon takes a free port and says which (a port picked
    // here and let go could be taken by another test before it binds).
    sb.edit(
        "config/vigie.toml",
        "listen = \"127.0.0.1:8640\"",
        "listen = \"127.0.0.1:0\"",
    );
    let config = sb.read("config/vigie.toml");
    sb.write(
        "config/vigie.toml",
        &format!(
            "{config}\n[vigilance]\nsource = \"meteoalarm\"\ndepartements = [\"68\"]\nurl = \"{}\"\nevery = \"1s\"\n",
            feed.url()
        ),
    );
    let d = tokio::task::spawn_blocking({
        let c = sb.config();
        move || DaemonProcess::start(&c)
    })
    .await
    .unwrap();
    let auth = format!("Bearer {}", sb.read("var/api-token").trim());
    let addr = d.addr;
    let proposals = move || {
        let (code, body) = http_request(
            addr,
            "GET",
            "/api/v1/vigilance",
            &[("Authorization", &auth)],
            "",
        );
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["proposals"].as_array().cloned().unwrap_or_default()
    };
    let mut found = Vec::new();
    for _ in 0..100 {
        found = tokio::task::spawn_blocking(proposals.clone())
            .await
            .unwrap();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["scenario"], "grand_froid");
    assert_eq!(found[0]["phenomenon"], "grand-froid");
    assert_eq!(found[0]["colour"], "orange");
    assert_eq!(found[0]["level"], "orange");
    drop(d);
}
