//! The actions checklist API (SPEC §12): `GET /api/v1/events/{id}/actions`
//! and `POST /api/v1/events/{id}/actions/{n}/done {"note"?}` (bearer
//! tokens; ticking twice is 409, an unknown event or action 404, as JSON).
//! The checklist's rows, as the API and the pages show them, are here too.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Authenticated;
use super::error::ApiError;
use crate::store::actions::ActionRow;
use crate::web::WebState;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/events/{id}/actions", get(list))
        .route("/api/v1/events/{id}/actions/{n}/done", post(done))
}

/// An action as the API shows it; times in RFC 3339 (UTC), as the rest
/// of the API; `overdue` as the daemon's clock says at `now`.
pub fn action_json(a: &ActionRow, now: DateTime<Utc>) -> Value {
    let t = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    json!({
        "n": a.n, "title": a.title, "who": a.who, "due_at": t(a.due_at),
        "done_at": t(a.done_at), "done_by": a.done_by, "note": a.note,
        "overdue": a.overdue(now),
    })
}

fn number(s: &str, what: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::NotFound(format!("no {what} {s}")))
}

async fn list(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = number(&id, "event")?;
    let rows = state.actions(id).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "actions": rows.iter().map(|a| action_json(a, now)).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DoneRequest {
    #[serde(default)]
    note: Option<String>,
}

async fn done(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path((id, n)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = number(&id, "event")?;
    let n = number(&n, "action")?;
    // An empty body ticks without a note.
    let req: DoneRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DoneRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?
    };
    let row = state
        .action_done(&format!("token:{who}"), id, n, req.note)
        .await?;
    Ok(Json(action_json(&row, state.clock.now())))
}
