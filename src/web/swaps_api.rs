//! The API of the rosters the professionals keep themselves (SPEC §15):
//! `GET /api/v1/rosters/{id}/assignments?from=&days=` (the effective
//! assignments, each with its source `file` or `swap`) and
//! `GET /api/v1/professionals/{id}/link` (`{"url"}`: the personal page to
//! send someone again). Bearer tokens, as the rest of the API.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::api::{Authenticated, DaysQuery};
use super::error::ApiError;
use crate::web::WebState;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/rosters/{id}/assignments", get(assignments))
        .route("/api/v1/professionals/{id}/link", get(link))
}

/// `{"roster", "from", "days", "assignments": [{date, shift, who, source}]}`
/// (default: from today, 14 days).
async fn assignments(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
    query: Result<Query<DaysQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let days = q.days.unwrap_or(14);
    if !(1..=366).contains(&days) {
        return Err(ApiError::BadRequest(
            "days must be between 1 and 366".into(),
        ));
    }
    let from = q.from.unwrap_or_else(|| state.today());
    let list = state
        .roster_assignments(&id, from, days)
        .ok_or_else(|| ApiError::NotFound(format!("no roster `{id}`")))?;
    Ok(Json(json!({
        "roster": id, "from": from.to_string(), "days": days, "assignments": list,
    })))
}

/// `{"url"}`: the personal page of professional `id`.
async fn link(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let url = state
        .personal_url(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no professional `{id}`")))?;
    Ok(Json(json!({ "url": url })))
}
