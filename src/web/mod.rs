//! The HTTP interface (SPEC §9). This module only reads the daemon's state
//! and the store; it never decides anything itself.
//!
//! Served so far: `GET /healthz` (liveness: the process answers) and
//! `GET /readyz` (readiness: the database answers and a valid configuration
//! is loaded).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::daemon::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let db = state.store.ping().await;
    let config = state.config();
    let reload = state.reload_status();
    let today = state.today();
    let plans: Vec<_> = config
        .plans_in_force(today)
        .iter()
        .map(|p| json!({"id": p.id.value, "version": p.version.value.0}))
        .collect();
    let body = json!({
        "status": if db.is_ok() { "ready" } else { "unavailable" },
        "database": match &db { Ok(()) => "ok".to_string(), Err(e) => e.to_string() },
        "configuration": {
            "loaded_at": reload.last_good_at.to_rfc3339(),
            "plans_in_force": plans,
        },
        "reload": reload.to_json(),
    });
    let status = if db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
