//! The bureau's login (`GET`/`POST /login`, `POST /logout`) and the
//! [`Operator`] extractor: the operator of a request is the one of its
//! stored, unexpired session whose credential is still in force.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::forbidden;
use crate::web::WebState;
use crate::web::auth;

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
pub(super) async fn current_operator(state: &WebState, headers: &HeaderMap) -> Option<Operator> {
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

impl FromRequestParts<Arc<WebState>> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Self, Response> {
        current_operator(state, &parts.headers)
            .await
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

pub async fn login_form(State(state): State<Arc<WebState>>) -> Response {
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
    State(state): State<Arc<WebState>>,
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
    State(state): State<Arc<WebState>>,
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
async fn audit(state: &WebState, who: &str, action: &str, detail: &str) {
    if let Err(e) = state
        .store
        .audit(state.clock.now(), who, action, detail)
        .await
    {
        tracing::error!(error = %e, action, "cannot write the audit log");
    }
}
