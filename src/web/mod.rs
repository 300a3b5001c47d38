//! The HTTP interface (SPEC §9). This module only reads the daemon's state
//! and the store; it never decides anything itself.
//!
//! Served here: `GET /healthz` (liveness: the process answers) and
//! `GET /readyz` (readiness: the database answers and a valid configuration
//! is loaded). `/readyz` is public, so it says only *whether* the last
//! reload was accepted: a refused reload's errors may quote the directory
//! (names, addresses), and they are on the authenticated
//! `GET /api/v1/status` (`reload`), the dashboard and `vigie status`.
//!
//! Every response (pages, API, errors, 404) carries [`SECURITY_HEADERS`]
//! unless its handler set them itself. The pages use no script, no frame,
//! no external resource; their CSS is inline (`<style>` and a few `style`
//! attributes), hence `style-src 'unsafe-inline'` and nothing else allowed.
//! The connection-level defences (timeouts, connection cap) are in
//! [`server`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub mod actions;
pub mod api;
pub mod auth;
pub mod cap;
pub mod error;
pub mod extras;
pub mod inbound;
pub mod journal;
pub mod markdown;
pub mod pages;
pub mod personal;
pub mod remind;
pub mod respond;
pub mod server;
pub mod swaps_api;
pub mod vigilance;
use serde_json::json;

/// The web's own state beside the application core: compiled pages,
/// operators' sessions, the login limiter, caches, and the credentials
/// generated at first start. It reads the app through `Deref` (so a
/// handler says `state.config()`, `state.store`, `state.declare(…)`); the
/// app never reads it.
pub struct WebState {
    pub app: Arc<crate::app::App>,
    /// Compiled page templates.
    pub pages: pages::Pages,
    /// Operators' sessions (stored in the database) and CSRF tokens.
    pub sessions: auth::Sessions,
    /// Login attempts per address and name, and the password-checking
    /// threads (bounded: argon2id takes 19 MiB per check).
    pub login_limiter: auth::LoginLimiter,
    /// SHA-256 (hex) of the token generated at first start
    /// (`data_dir/api-token`), accepted while the configuration names no
    /// token.
    pub generated_token: Option<String>,
    /// SHA-256 (hex) of the local token (`data_dir/local-token`), for the
    /// commands run on the server: accepted by the API (not in calendar
    /// URLs) unless tokens are named and `[auth] local_token = false`.
    pub local_token: String,
    /// (name, password) of the operator generated at first start, used
    /// while the configuration names no operator.
    pub generated_operator: Option<(String, String)>,
    /// The unresolved events and delivery counts the pages and the status
    /// show, kept while the database does not change.
    pub situation: SituationCache,
    /// The dashboard's one-shot messages, per session.
    pub flashes: pages::Flashes,
}

impl std::ops::Deref for WebState {
    type Target = crate::app::App;
    fn deref(&self) -> &crate::app::App {
        &self.app
    }
}

impl WebState {
    /// (name, SHA-256) of the API tokens accepted now (re-read at each
    /// reload): the configured ones, else the generated one; and the local
    /// one while none is configured or `[auth] local_token` is on.
    pub fn token_hashes(&self) -> Vec<(String, String)> {
        let auth = &self.config().daemon.auth;
        let mut hashes = self.calendar_token_hashes();
        if auth.tokens.is_empty() || auth.local_token {
            hashes.push(("local".to_string(), self.local_token.clone()));
        }
        hashes
    }

    /// The tokens a calendar URL (`?token=`) may carry: the API tokens but
    /// the local one, which is for commands on the server and never meant
    /// to be pasted in a URL.
    pub fn calendar_token_hashes(&self) -> Vec<(String, String)> {
        let auth = &self.config().daemon.auth;
        if auth.tokens.is_empty() {
            self.generated_token
                .iter()
                .map(|h| ("generated".to_string(), h.clone()))
                .collect()
        } else {
            auth.tokens
                .iter()
                .map(|t| (t.name.clone(), t.sha256.clone()))
                .collect()
        }
    }

    /// Reloads every file ([`crate::app::App::reload`]); an accepted reload
    /// also ends the sessions of operators removed or whose password
    /// changed (they would be refused at their next request anyway).
    pub async fn reload(&self) -> crate::app::ReloadStatus {
        let status = self.app.reload().await;
        if status.ok {
            let valid =
                auth::operator_credentials(&self.config(), self.generated_operator.as_ref());
            match self.sessions.forget_stale(valid).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "sessions ended by the reload"),
                Err(e) => tracing::error!(error = %e, "cannot end the sessions of the reload"),
            }
        }
        status
    }
}

/// Request bodies over this size are refused (413).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the public page and the status show of the database: the
/// unresolved events (newest first, at most [`SITUATION_EVENTS`]) and the
/// deliveries counted by state.
pub struct Situation {
    pub events: Vec<crate::store::events::EventRow>,
    pub deliveries: Vec<(String, i64)>,
    /// The bulletins of the unresolved events, newest first, by event.
    pub bulletins: std::collections::HashMap<i64, Vec<crate::store::journal::Bulletin>>,
}

pub const SITUATION_EVENTS: u32 = 1000;

/// The last [`Situation`] read, with the database's change count then.
pub type SituationCache = std::sync::Mutex<Option<(u64, Arc<Situation>)>>;

/// The situation now: read again only when the database changed since the
/// last read (50 clients refreshing a page during a crisis cost one query).
pub async fn situation(state: &WebState) -> Result<Arc<Situation>, crate::store::StoreError> {
    state
        .store
        .read_cached(&state.situation, |c| {
            Ok(Situation {
                events: crate::store::events::list_events(c, Some("unresolved"), SITUATION_EVENTS)?,
                deliveries: crate::store::outbox::counts_by_state(c)?,
                bulletins: crate::store::journal::unresolved_bulletins(c)?,
            })
        })
        .await
}

pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .route(
            "/r/{token}",
            get(respond::get_page).post(respond::post_page),
        )
        .route("/", get(pages::index))
        .route("/calendar/{file}", get(api::calendar))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", axum::routing::post(pages::logout))
        .route("/bureau", get(pages::bureau))
        .route("/bureau/declare", axum::routing::post(pages::declare))
        .route("/bureau/events/{id}", get(pages::event_page))
        .route(
            "/bureau/events/{id}/level",
            axum::routing::post(pages::level),
        )
        .route(
            "/bureau/events/{id}/resolve",
            axum::routing::post(pages::resolve),
        )
        .route(
            "/bureau/events/{id}/log",
            axum::routing::post(pages::log_note),
        )
        .route(
            "/bureau/events/{id}/bulletin",
            axum::routing::post(pages::bulletin),
        )
        .route(
            "/bureau/events/{id}/retex",
            axum::routing::post(pages::retex),
        )
        .route("/bureau/events/{id}/report", get(pages::report_page))
        .route(
            "/bureau/events/{id}/actions/{n}/done",
            axum::routing::post(pages::action_done),
        )
        .route(
            "/bureau/events/{id}/remind",
            axum::routing::post(pages::remind_form),
        )
        .route(
            "/bureau/swaps/{id}",
            axum::routing::post(pages::decide_swap),
        )
        .route("/bureau/links", axum::routing::post(pages::send_link))
        .route(
            "/bureau/proposals/{id}",
            axum::routing::post(pages::decide_proposal),
        )
        .merge(actions::routes())
        .merge(api::routes())
        .merge(journal::routes())
        .merge(cap::routes())
        .merge(personal::routes())
        .merge(swaps_api::routes())
        .merge(vigilance::routes())
        .merge(remind::routes())
        .merge(inbound::routes())
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers put on every response. No script may run, nothing may frame the
/// pages (clickjacking of the bureau's forms), no `Referer` leaves with a
/// click (a response link `/r/…` is a credential), no MIME sniffing.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
];

async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(axum::http::HeaderName::from_static(name))
            .or_insert(axum::http::HeaderValue::from_static(value));
    }
    res
}

/// Prometheus text format; answered on loopback only (it tells how busy the
/// CPTS is, not who is who, but it has no business on the internet).
async fn metrics_page(
    State(state): State<Arc<WebState>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    let counts = state
        .store
        .call(|c| crate::store::counts::for_metrics(c))
        .await;
    let Ok(crate::store::counts::MetricsCounts { events, deliveries }) = counts else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
    };
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP vigie_events Events by state.");
    let _ = writeln!(out, "# TYPE vigie_events gauge");
    for s in ["active", "acknowledged", "exhausted", "resolved"] {
        let n = events
            .iter()
            .find(|(k, _)| k == s)
            .map(|x| x.1)
            .unwrap_or(0);
        let _ = writeln!(out, "vigie_events{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP vigie_deliveries Deliveries by channel and state."
    );
    let _ = writeln!(out, "# TYPE vigie_deliveries gauge");
    for (ch, s, n) in deliveries {
        let _ = writeln!(
            out,
            "vigie_deliveries{{channel=\"{ch}\",state=\"{s}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP vigie_reload_ok Whether the last configuration load was accepted."
    );
    let _ = writeln!(out, "# TYPE vigie_reload_ok gauge");
    let _ = writeln!(
        out,
        "vigie_reload_ok {}",
        u8::from(state.reload_status().ok)
    );
    vigilance::render_metrics(&state, &mut out);
    state.metrics.render(&mut out);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness, public: ready or not, reload accepted or not, nothing more
/// (see the module docs).
async fn readyz(State(state): State<Arc<WebState>>) -> Response {
    let db = state.store.ping().await;
    if let Err(e) = &db {
        tracing::warn!(error = %e, "readiness: the database does not answer");
    }
    let body = json!({
        "status": if db.is_ok() { "ready" } else { "unavailable" },
        "database": if db.is_ok() { "ok" } else { "unavailable" },
        "reload": { "ok": state.reload_status().ok },
    });
    let status = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
