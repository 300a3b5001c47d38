//! The HTML pages (SPEC §9): the public situation page (no personal data),
//! the login form, the bureau's dashboard and event pages with their forms.
//! Server-side templates (minijinja, HTML auto-escaping), no JavaScript.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use minijinja::{Environment, Value, context};
use serde::Deserialize;

use super::auth;
use super::respond::response_label;
use crate::config::ConfigSet;
use crate::daemon::AppState;
use crate::engine::{self, DeclareRequest, EngineError};
use crate::store::events::{self as q, EventRow, EventState};
use crate::store::outbox::{self, DeliveryRow};

/// The compiled page templates.
pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, src) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("index.html", include_str!("templates/index.html")),
            ("login.html", include_str!("templates/login.html")),
            ("bureau.html", include_str!("templates/bureau.html")),
            ("event.html", include_str!("templates/event.html")),
        ] {
            env.add_template(name, src).expect("page templates compile");
        }
        Pages { env }
    }
}

impl Pages {
    pub fn render(&self, name: &str, ctx: Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(page = name, error = %e, "page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne").into_response()
            }
        }
    }
}

pub fn state_label(s: EventState) -> &'static str {
    match s {
        EventState::Active => "En cours",
        EventState::Acknowledged => "Pris en charge",
        EventState::Exhausted => "Sans réponse suffisante",
        EventState::Resolved => "Terminé",
    }
}

fn delivery_label(s: &str) -> &'static str {
    match s {
        "pending" => "en attente",
        "sending" => "en cours d'envoi",
        "sent" => "envoyé",
        "retrying" => "nouvel essai prévu",
        "failed" => "échec",
        "skipped" => "non envoyé",
        "cancelled" => "annulé",
        _ => "?",
    }
}

fn profession_label(p: &str) -> String {
    match p {
        "medecin" => "Médecins".into(),
        "pharmacien" => "Pharmaciens".into(),
        "infirmier" => "Infirmiers".into(),
        "masseur_kinesitherapeute" => "Masseurs-kinésithérapeutes".into(),
        "sage_femme" => "Sages-femmes".into(),
        "chirurgien_dentiste" => "Chirurgiens-dentistes".into(),
        "orthophoniste" => "Orthophonistes".into(),
        "orthoptiste" => "Orthoptistes".into(),
        "pedicure_podologue" => "Pédicures-podologues".into(),
        other => response_label(other),
    }
}

fn fr_time(set: &ConfigSet, t: DateTime<Utc>) -> String {
    t.with_timezone(&set.daemon.timezone)
        .format("%d/%m/%Y à %H:%M")
        .to_string()
}

// ---------------------------------------------------------------- public

/// `GET /`: the situation, for anyone. No name, no address, no note.
pub async fn index(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let set = state.config();
    let now = state.clock.now();
    let situation = super::situation(&state).await.ok();
    let events: &[q::EventRow] = situation.as_ref().map_or(&[], |s| &s.events);
    let events = &events[..events.len().min(100)];
    let plan = set.plans_in_force(state.today()).first().map(|p| {
        context! { title => p.title.clone(), version => p.version.value.0.clone(), valid_until => p.valid_until.value.format("%d/%m/%Y").to_string() }
    });
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            context! {
                title => e.title.clone(), level => e.level.clone(), exercise => e.exercise,
                state_label => state_label(e.state), since => fr_time(&set, e.declared_at),
            }
        })
        .collect();
    let operator = current_operator(&state, &headers).await;
    state.pages.render(
        "index.html",
        context! {
            cpts => set.daemon.name.clone(), plan, events, updated => fr_time(&set, now),
            operator => operator.as_ref().map(|o| o.name.clone()),
            csrf => operator.as_ref().map(|o| state.sessions.csrf(&o.cookie)),
        },
    )
}

// ---------------------------------------------------------------- login

/// A logged-in operator.
pub struct Operator {
    pub name: String,
    /// The session's cookie value (its id).
    pub cookie: String,
}

/// The operator of the request's session: stored, unexpired, and still an
/// operator with the same credential in the configuration in force (a
/// session that is no longer is deleted on the way).
async fn current_operator(state: &AppState, headers: &HeaderMap) -> Option<Operator> {
    let cookie = auth::cookie_value(headers.get(header::COOKIE).and_then(|v| v.to_str().ok()))?;
    let row = match state.sessions.find(&cookie, state.clock.now()).await {
        Ok(row) => row?,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the sessions");
            return None;
        }
    };
    let current = auth::credential_of(
        &state.config(),
        state.generated_operator.as_ref(),
        &row.operator,
    );
    if current.as_deref() != Some(row.credential.as_str()) {
        // Removed, or its password changed: this session is over.
        if let Err(e) = state.sessions.close(&cookie).await {
            tracing::error!(error = %e, "cannot delete a stale session");
        }
        return None;
    }
    Some(Operator {
        name: row.operator,
        cookie,
    })
}

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        current_operator(state, &parts.headers)
            .await
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

pub async fn login_form(State(state): State<Arc<AppState>>) -> Response {
    let set = state.config();
    state.pages.render(
        "login.html",
        context! { cpts => set.daemon.name.clone(), name => "" },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: the limits of [`auth::LoginLimiter`] first (429 without
/// hashing), then the password check on the hashing threads (503 when too
/// many wait), then a new session.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let set = state.config();
    let ip = auth::client_ip(peer.ip(), &headers, &set.daemon.trusted_proxies);
    let page = |status: StatusCode, error: &str| {
        let mut r = state.pages.render(
            "login.html",
            context! { cpts => set.daemon.name.clone(), name => form.name.clone(), error },
        );
        *r.status_mut() = status;
        r
    };
    let attempt = match state.login_limiter.begin(ip, &form.name) {
        Ok(a) => a,
        Err(auth::Refused::TooMany(wait)) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            tracing::debug!(%ip, "login refused: too many failures from this address");
            let text = if minutes == 1 {
                "Trop de tentatives de connexion depuis cette adresse. Réessayez dans une minute."
                    .to_string()
            } else {
                format!(
                    "Trop de tentatives de connexion depuis cette adresse. Réessayez dans {minutes} minutes."
                )
            };
            return page(StatusCode::TOO_MANY_REQUESTS, &text);
        }
    };
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    let credential = auth::Credential::of(&set, state.generated_operator.as_ref(), &form.name);
    let known = credential.is_known();
    let fingerprint = auth::credential_of(&set, state.generated_operator.as_ref(), &form.name);
    let Some(ok) = state
        .login_limiter
        .check(credential, form.password.clone())
        .await
    else {
        attempt.abandoned();
        tracing::warn!(%ip, "login not checked: too many password checks waiting");
        let mut r = page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Le service reçoit trop de demandes de connexion. Réessayez dans quelques secondes.",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return r;
    };
    let (true, Some(fingerprint)) = (ok, fingerprint) else {
        let blocked = attempt.failed();
        // The name is logged only when it is an operator's: anything else
        // may be a password typed in the wrong field.
        if known {
            tracing::warn!(%ip, operator = %auth::log_safe(&form.name), "failed login");
        } else {
            tracing::warn!(%ip, name_chars = form.name.chars().count(), "failed login: unknown operator name");
        }
        if blocked {
            tracing::warn!(%ip, minutes = auth::WINDOW.as_secs() / 60, "login refused from this address for a while: too many failures");
        }
        return page(
            StatusCode::UNAUTHORIZED,
            "Identifiant ou mot de passe incorrect.",
        );
    };
    attempt.succeeded();
    let now = state.clock.now();
    let cookie = match state.sessions.open(&form.name, &fingerprint, now).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot record a session");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Erreur interne : la connexion n'a pas pu être enregistrée. Réessayez.",
            );
        }
    };
    tracing::info!(%ip, operator = %auth::log_safe(&form.name), "operator logged in");
    audit(&state, &form.name, "login", &ip.to_string()).await;
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, state.sessions.set_cookie(&cookie)),
            (header::LOCATION, "/bureau".to_string()),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session server-side, so a copy of the cookie
/// is worth nothing after.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    if let Err(e) = state.sessions.close(&op.cookie).await {
        tracing::error!(error = %e, "cannot end a session");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<p>Erreur interne : la déconnexion n'a pas pu être enregistrée. Réessayez.</p>"),
        )
            .into_response();
    }
    audit(&state, &op.name, "logout", "").await;
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, state.sessions.clear_cookie()),
            (header::LOCATION, "/".to_string()),
        ],
    )
        .into_response()
}

/// Records an operator's action in the audit log (a failure to record is
/// logged, the action stands).
pub async fn audit(state: &AppState, who: &str, action: &str, detail: &str) {
    if let Err(e) = state
        .store
        .audit(state.clock.now(), who, action, detail)
        .await
    {
        tracing::error!(error = %e, action, "cannot write the audit log");
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("<p>Formulaire expiré ou invalide : rechargez la page et recommencez.</p>"),
    )
        .into_response()
}

// ---------------------------------------------------------------- dashboard

/// One-shot messages shown on top of the dashboard after a form, kept here
/// per session (never taken from the address: a crafted link must not make
/// an operator read "Alerte n° 5 levée").
#[derive(Default)]
pub struct Flashes {
    by_session: Mutex<HashMap<String, (Instant, Value)>>,
}

/// A message not read within this time is dropped.
const FLASH_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// At most this many messages wait (one per open session at most).
const FLASH_MAX: usize = 1000;

impl Flashes {
    /// Leaves `text` (`kind`: "ok", "warn", "bad") for the next dashboard of
    /// this session.
    pub fn put(&self, session: &str, kind: &str, text: String) {
        let mut map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (at, _)| at.elapsed() < FLASH_TTL);
        if map.len() >= FLASH_MAX {
            return;
        }
        map.insert(
            session.to_string(),
            (Instant::now(), context! { kind, text }),
        );
    }

    /// The message left for this session, once.
    pub fn take(&self, session: &str) -> Option<Value> {
        let mut map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(session)
            .filter(|(at, _)| at.elapsed() < FLASH_TTL)
            .map(|(_, v)| v)
    }
}

/// The dashboard's message after a declaration, in plain French; says so
/// when an exercise and a real event of the scenario now run side by side.
fn declared_text(d: &engine::Declared) -> (&'static str, String) {
    let n = d.event_id;
    let kind = if d.event.exercise {
        "l'exercice"
    } else {
        "l'alerte"
    };
    let mut text = if !d.updated {
        if d.event.exercise {
            format!("Exercice n° {n} déclenché : les messages partent avec la mention [EXERCICE].")
        } else {
            format!("Alerte réelle n° {n} déclenchée : les messages partent.")
        }
    } else if d.level_changed {
        format!(
            "N° {n} : {kind} était déjà en cours pour ce scénario ; son niveau passe à {}.",
            d.event.level.as_deref().unwrap_or("—")
        )
    } else {
        format!(
            "N° {n} : {kind} était déjà en cours pour ce scénario au même niveau ; rien n'a été renvoyé."
        )
    };
    let Some(other) = d.beside.first() else {
        return ("ok", text);
    };
    if d.event.exercise {
        text.push_str(&format!(
            " Attention : une alerte RÉELLE de ce scénario est en cours (n° {}). L'exercice reste séparé d'elle.",
            other.id
        ));
    } else {
        text.push_str(&format!(
            " Attention : un exercice de ce scénario est en cours (n° {}). Cette alerte est RÉELLE et reste séparée de l'exercice : ses messages ne portent pas la mention [EXERCICE].",
            other.id
        ));
    }
    ("warn", text)
}

/// Scenarios with an exercise and a real event unresolved at the same time,
/// one sentence each, for the top of the dashboard.
fn side_by_side(all: &[EventRow]) -> Vec<String> {
    let open: Vec<&EventRow> = all
        .iter()
        .filter(|e| e.state != EventState::Resolved)
        .collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for e in &open {
        if !seen.insert(e.scenario.as_str()) {
            continue;
        }
        let ids = |exercise: bool| {
            open.iter()
                .filter(|o| o.scenario == e.scenario && o.exercise == exercise)
                .map(|o| format!("n° {}", o.id))
                .collect::<Vec<_>>()
        };
        let (real, drills) = (ids(false), ids(true));
        if !real.is_empty() && !drills.is_empty() {
            out.push(format!(
                "« {} » : une alerte RÉELLE ({}) et un exercice ({}) sont en cours en même temps. Ils restent séparés : seuls les messages de l'exercice portent la mention [EXERCICE].",
                e.title,
                real.join(", "),
                drills.join(", ")
            ));
        }
    }
    out
}

struct EventData {
    ev: EventRow,
    steps: Vec<q::StepRow>,
    deliveries: Vec<DeliveryRow>,
    responses: Vec<q::ResponseRow>,
    quorum: engine::Quorum,
}

async fn load_events(state: &AppState, ids: Vec<i64>) -> Vec<EventData> {
    let set = state.config();
    state
        .store
        .call(move |c| {
            let mut out = Vec::new();
            for id in ids {
                if let Some(ev) = q::get_event(c, id)? {
                    out.push(EventData {
                        steps: q::steps(c, id)?,
                        deliveries: outbox::for_event(c, id)?,
                        responses: q::responses(c, id)?,
                        quorum: engine::event_quorum(c, &set, &ev)?,
                        ev,
                    });
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_default()
}

fn step_label(s: Option<&q::StepRow>) -> String {
    match s {
        Some(s) if s.kind == "escalation" => format!(
            "palier {}{}",
            s.tier.unwrap_or(0) + 1,
            if s.round > 0 {
                format!(" (tour {})", s.round + 1)
            } else {
                String::new()
            }
        ),
        Some(s) if s.kind == "broadcast" => "diffusion".into(),
        Some(s) if s.kind == "resolve" => "fin d'alerte".into(),
        Some(s) if s.kind == "exhausted" => "alerte sans réponse".into(),
        _ => "—".into(),
    }
}

fn event_view(set: &ConfigSet, d: &EventData) -> Value {
    let e = &d.ev;
    let scenario = engine::plan_of(set, e).ok().map(|(_, s)| s);
    let latest: HashMap<&str, &str> = d
        .responses
        .iter()
        .map(|r| (r.recipient_id.as_str(), r.response.as_str()))
        .collect();
    let tiers = scenario.map(|s| s.escalation.len()).unwrap_or(0);
    let steps: HashMap<i64, &q::StepRow> = d.steps.iter().map(|s| (s.id, s)).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for x in &d.deliveries {
        *counts.entry(x.state.as_str()).or_default() += 1;
    }
    let recipients: Vec<Value> = d
        .deliveries
        .iter()
        .map(|x| {
            context! {
                name => x.recipient_name.clone(),
                step => step_label(x.step_id.and_then(|s| steps.get(&s).copied())),
                channel => if x.channel == "email" { "e-mail".to_string() } else { x.channel.clone() },
                state => x.state.clone(), state_label => delivery_label(&x.state),
                reason => x.reason.clone().unwrap_or_default(), attempts => x.attempts,
                response => x.recipient_id.as_deref().and_then(|r| latest.get(r)).map(|r| response_label(r)).unwrap_or_default(),
            }
        })
        .collect();
    context! {
        id => e.id, title => e.title.clone(), level => e.level.clone(), state => e.state.as_str(),
        state_label => state_label(e.state), exercise => e.exercise, note => e.note.clone(),
        scenario => e.scenario.clone(), plan => format!("{} {}", e.plan_id, e.plan_version),
        since => fr_time(set, e.declared_at), resolved => e.resolved_at.map(|t| fr_time(set, t)),
        next => e.escalation_due_at.map(|t| fr_time(set, t)),
        tier_label => if tiers == 0 { "aucun".to_string() } else { format!("{} sur {tiers}", e.tier + 1) },
        acks => d.quorum.acks, quorum => d.quorum.needed,
        levels => scenario.map(|s| s.levels.iter().map(|l| l.value.clone()).collect::<Vec<_>>()).unwrap_or_default(),
        counts => counts.iter().map(|(s, n)| context! { state => *s, label => delivery_label(s), count => *n }).collect::<Vec<_>>(),
        recipients,
    }
}

fn directory_summary(set: &ConfigSet) -> Value {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    let active: Vec<_> = set
        .directory
        .professionals
        .iter()
        .filter(|p| p.active)
        .collect();
    for p in &active {
        *per.entry(p.profession.clone()).or_default() += 1;
    }
    context! {
        active => active.len(),
        inactive => set.directory.professionals.len() - active.len(),
        professions => per.iter().map(|(p, n)| context! { label => profession_label(p), count => *n }).collect::<Vec<_>>(),
        no_email => active.iter().filter(|p| p.email.is_none()).map(|p| p.name.clone()).collect::<Vec<_>>(),
        no_phone => active.iter().filter(|p| p.phone.is_none()).map(|p| p.name.clone()).collect::<Vec<_>>(),
    }
}

fn review_warnings(set: &ConfigSet, today: chrono::NaiveDate) -> Vec<String> {
    let mut out = Vec::new();
    for p in set.plans_in_force(today) {
        let newer = set.plans.iter().any(|o| {
            o.id.value == p.id.value
                && o.version.value > p.version.value
                && o.valid_from.value > today
        });
        let days = (p.review_by.value - today).num_days();
        if newer || days > 30 {
            continue;
        }
        out.push(if days >= 0 {
            format!(
                "La révision annuelle du plan « {} » (version {}) est attendue d'ici le {} ({} jours) : aucune nouvelle version n'est encore écrite.",
                p.title, p.version.value, p.review_by.value.format("%d/%m/%Y"), days
            )
        } else {
            format!(
                "La révision annuelle du plan « {} » (version {}) est en retard depuis le {}.",
                p.title, p.version.value, p.review_by.value.format("%d/%m/%Y")
            )
        });
    }
    out
}

/// The dashboard's context; `flash` is a message to show on top.
async fn dashboard(state: &AppState, op: &Operator, flash: Option<Value>) -> Value {
    let set = state.config();
    let now = state.clock.now();
    let today = state.today();
    let all = state
        .store
        .call(|c| q::list_events(c, None, 200))
        .await
        .unwrap_or_default();
    let unresolved: Vec<i64> = all
        .iter()
        .filter(|e| e.state != EventState::Resolved)
        .map(|e| e.id)
        .collect();
    let week_ago = now - Duration::days(7);
    let resolved: Vec<Value> = all
        .iter()
        .filter(|e| e.resolved_at.is_some_and(|t| t >= week_ago))
        .map(|e| context! { id => e.id, title => e.title.clone(), exercise => e.exercise, resolved => e.resolved_at.map(|t| fr_time(&set, t)) })
        .collect();
    let events: Vec<Value> = load_events(state, unresolved)
        .await
        .iter()
        .map(|d| event_view(&set, d))
        .collect();
    let since = now - Duration::hours(24);
    let failed = state
        .store
        .call(move |c| outbox::failed_since(c, since))
        .await
        .unwrap_or_default();
    let in_force = set.plans_in_force(today);
    let scenarios: Vec<Value> = in_force
        .iter()
        .flat_map(|p| p.scenarios.iter())
        .map(|s| context! { id => s.id.value.clone(), title => s.title.clone(), levels => s.levels.iter().map(|l| l.value.clone()).collect::<Vec<_>>() })
        .collect();
    let reload = state.reload_status();
    let (gaps, gaps_empty) = super::extras::roster_gaps(&set, today);
    let side_by_side = side_by_side(&all);
    context! {
        cpts => set.daemon.name.clone(), operator => op.name.clone(), csrf => state.sessions.csrf(&op.cookie),
        flash, side_by_side, plan => in_force.first().map(|p| p.title.clone()), review => review_warnings(&set, today),
        reload => context! { ok => reload.ok, at => fr_time(&set, reload.last_attempt_at), errors => reload.errors },
        scenarios, events, resolved, failed => crate::config::templates::json_value(serde_json::to_value(&failed).unwrap_or_default()), directory => directory_summary(&set),
        gaps, gaps_empty, reminders => super::extras::upcoming_reminders(&set, now),
    }
}

pub async fn bureau(State(state): State<Arc<AppState>>, op: Operator) -> Response {
    let ctx = dashboard(&state, &op, state.flashes.take(&op.cookie)).await;
    state.pages.render("bureau.html", ctx)
}

pub async fn event_page(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<String>,
) -> Response {
    let set = state.config();
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, Html("<p>Événement inconnu.</p>")).into_response();
    };
    let Some(d) = load_events(&state, vec![id]).await.pop() else {
        return (StatusCode::NOT_FOUND, Html("<p>Événement inconnu.</p>")).into_response();
    };
    let tiers: Vec<Value> = d
        .steps
        .iter()
        .filter(|s| s.kind == "escalation")
        .map(|s| {
            context! {
                tier => s.tier.map(|t| t + 1), round => s.round + 1, audience => s.audience.clone(), quorum => s.quorum,
                timeout => s.timeout_secs.map(|t| humantime::format_duration(std::time::Duration::from_secs(t)).to_string()),
                at => fr_time(&set, crate::store::parse_ts(&s.created_at)),
            }
        })
        .collect();
    let responses: Vec<Value> = d
        .responses
        .iter()
        .map(|r| context! { at => fr_time(&set, crate::store::parse_ts(&r.at)), name => r.name.clone(), label => response_label(&r.response) })
        .collect();
    state.pages.render(
        "event.html",
        context! {
            cpts => set.daemon.name.clone(), operator => op.name.clone(), csrf => state.sessions.csrf(&op.cookie),
            e => event_view(&set, &d), tiers, responses,
        },
    )
}

// ---------------------------------------------------------------- forms

#[derive(Deserialize)]
pub struct DeclareForm {
    #[serde(default)]
    csrf: String,
    /// `SCENARIO:LEVEL` (level empty for a scenario without levels).
    choice: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    exercise: Option<String>,
}

async fn form_error(state: &AppState, op: &Operator, e: EngineError) -> Response {
    let text = match e {
        EngineError::Store(err) => {
            tracing::error!(error = %err, "dashboard form failed");
            "Erreur interne : l'action n'a pas été enregistrée.".to_string()
        }
        other => format!("Action refusée : {other}"),
    };
    let ctx = dashboard(state, op, Some(context! { kind => "bad", text })).await;
    let mut r = state.pages.render("bureau.html", ctx);
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

/// Back to the dashboard, with `text` on top of it.
fn done(state: &AppState, op: &Operator, kind: &str, text: String) -> Response {
    state.flashes.put(&op.cookie, kind, text);
    Redirect::to("/bureau").into_response()
}

pub async fn declare(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Form(f): Form<DeclareForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let (scenario, level) = f.choice.split_once(':').unwrap_or((f.choice.as_str(), ""));
    let req = DeclareRequest {
        scenario: scenario.to_string(),
        level: (!level.is_empty()).then(|| level.to_string()),
        note: (!f.note.trim().is_empty()).then(|| f.note.trim().to_string()),
        exercise: f.exercise.is_some(),
        key: None,
        downgrade: false,
    };
    match engine::declare(&state.store, state.engine_ctx().by(&op.name), req).await {
        Ok(d) => {
            if !d.handed_over {
                state.queued();
            }
            let (kind, text) = declared_text(&d);
            done(&state, &op, kind, text)
        }
        Err(EngineError::Conflict(_)) => {
            let text = "Ce scénario est déjà en cours à un niveau plus élevé : une nouvelle déclaration ne baisse pas son niveau. Pour le baisser, utilisez « Changer de niveau » sur la page de l'événement.".to_string();
            let ctx = dashboard(&state, &op, Some(context! { kind => "bad", text })).await;
            let mut r = state.pages.render("bureau.html", ctx);
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) => form_error(&state, &op, e).await,
    }
}

#[derive(Deserialize)]
pub struct LevelForm {
    #[serde(default)]
    csrf: String,
    level: String,
}

pub async fn level(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<LevelForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    match engine::change_level(&state.store, state.engine_ctx().by(&op.name), id, f.level).await {
        Ok(_) => {
            state.queued();
            done(
                &state,
                &op,
                "ok",
                format!("Niveau de l'événement n° {id} modifié."),
            )
        }
        Err(e) => form_error(&state, &op, e).await,
    }
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

pub async fn resolve(
    State(state): State<Arc<AppState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<ResolveForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let note = (!f.note.trim().is_empty()).then(|| f.note.trim().to_string());
    match engine::resolve(&state.store, state.engine_ctx().by(&op.name), id, note).await {
        Ok(_) => {
            state.queued();
            done(&state, &op, "ok", format!("Événement n° {id} levé."))
        }
        Err(e) => form_error(&state, &op, e).await,
    }
}
