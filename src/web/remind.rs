//! `POST /api/v1/events/{id}/remind` (bearer token): "relancer les
//! non-répondants" (SPEC §12) through the app core; the event page's
//! button is in `pages::coming`. Answers `{"event", "people", "queued"}`:
//! how many people were re-notified and how many deliveries were queued;
//! 404 for an unknown event, 409 for a resolved one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::WebState;
use super::api::Authenticated;
use super::error::ApiError;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/api/v1/events/{id}/remind", post(remind))
}

async fn remind(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = super::api::parse_id(&id)?;
    let r = state.remind(&format!("token:{who}"), id).await?;
    Ok(Json(
        json!({"event": id.to_string(), "people": r.people, "queued": r.queued}),
    ))
}
