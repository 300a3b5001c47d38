//! The main courante, bulletins, lessons learned and the RETEX report in
//! the API (SPEC §12): `GET|POST /api/v1/events/{id}/log`,
//! `POST /api/v1/events/{id}/bulletin`, `POST /api/v1/events/{id}/retex`,
//! `GET /api/v1/events/{id}/report`. Nothing edits or deletes an entry: a
//! correction is a new entry naming the one it corrects.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::parse_id;
use super::api::{ApiJson, Authenticated};
use super::error::ApiError;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/events/{id}/log", get(log).post(note))
        .route("/api/v1/events/{id}/bulletin", post(bulletin))
        .route("/api/v1/events/{id}/retex", post(retex))
        .route("/api/v1/events/{id}/report", get(report))
}

async fn log(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entries = state.event_log(parse_id(&id)?).await?;
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    text: String,
    #[serde(default)]
    corrects: Option<i64>,
}

async fn note(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> Result<Response, ApiError> {
    let entry = state
        .log_note(
            &format!("token:{who}"),
            parse_id(&id)?,
            req.text,
            req.corrects,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(entry))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextRequest {
    text: String,
}

async fn bulletin(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TextRequest>,
) -> Result<Response, ApiError> {
    let b = state
        .publish_bulletin(&format!("token:{who}"), parse_id(&id)?, req.text)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(b))).into_response())
}

async fn retex(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TextRequest>,
) -> Result<Response, ApiError> {
    let l = state
        .add_lesson(&format!("token:{who}"), parse_id(&id)?, req.text)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(l))).into_response())
}

async fn report(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = state.report(parse_id(&id)?).await?;
    Ok(Json(json!(r)))
}
