//! The vigilance API (SPEC §13): `GET /api/v1/vigilance` (the colours of
//! today and "demain" per département and phenomenon, the last poll, the
//! last error, the open proposals) and `POST
//! /api/v1/proposals/{id}/accept|dismiss` (accepting declares with key
//! `vigilance-PHENOMENON`, changes the level or resolves). Bearer tokens,
//! as the rest of the API; the work is the app's (`app::vigilance`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::api::Authenticated;
use super::error::ApiError;
use crate::web::WebState;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/vigilance", get(vigilance))
        .route("/api/v1/proposals/{id}/accept", post(accept))
        .route("/api/v1/proposals/{id}/dismiss", post(dismiss))
}

async fn vigilance(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let v = state.vigilance_status().await?;
    if v.is_null() {
        return Err(ApiError::NotFound(
            "no [vigilance] in the configuration".into(),
        ));
    }
    Ok(Json(v))
}

/// The decided proposal (with `event_id` when it declared).
async fn accept(
    State(state): State<Arc<WebState>>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let p = state
        .accept_proposal(&format!("token:{}", auth.0), id)
        .await?;
    Ok(Json(serde_json::to_value(p).unwrap_or(Value::Null)))
}

async fn dismiss(
    State(state): State<Arc<WebState>>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let p = state
        .dismiss_proposal(&format!("token:{}", auth.0), id)
        .await?;
    Ok(Json(serde_json::to_value(p).unwrap_or(Value::Null)))
}

/// The feed's counters for `/metrics` (nothing without `[vigilance]`).
pub fn render_metrics(state: &WebState, out: &mut String) {
    use std::fmt::Write;
    let Some((polls, failures, failing)) = state.vigilance_counts() else {
        return;
    };
    let _ = writeln!(out, "# HELP vigie_vigilance_polls_total Vigilance polls.");
    let _ = writeln!(out, "# TYPE vigie_vigilance_polls_total counter");
    let _ = writeln!(out, "vigie_vigilance_polls_total {polls}");
    let _ = writeln!(
        out,
        "# HELP vigie_vigilance_poll_failures_total Vigilance polls that failed (the last good map is kept)."
    );
    let _ = writeln!(out, "# TYPE vigie_vigilance_poll_failures_total counter");
    let _ = writeln!(out, "vigie_vigilance_poll_failures_total {failures}");
    let _ = writeln!(
        out,
        "# HELP vigie_vigilance_ok Whether the last vigilance poll succeeded."
    );
    let _ = writeln!(out, "# TYPE vigie_vigilance_ok gauge");
    let _ = writeln!(out, "vigie_vigilance_ok {}", u8::from(!failing));
}
