//! The JSON API (`/api/v1/…`, SPEC §9): bearer tokens stored as SHA-256 and
//! compared in constant time, JSON errors, bodies limited to 64 KiB.
//!
//! A declaration answers the event (SPEC §9's fields) with `updated`,
//! `level_changed` and `queued`, not the detail: an event sent to 50 000
//! professionals would answer 50 000 deliveries (15 MB of JSON, 0.35 s and
//! 250 MB of memory while the outbox starts sending). The detail, with
//! tiers, deliveries and responses, is `GET /api/v1/events/{id}`. It also
//! answers `beside`, the unresolved events of the same scenario of the
//! other kind (exercise or real), with a `warning` when there is one: they
//! are never merged, and whoever declared must know both are running.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::auth::token_sha256;
use super::error::ApiError;
use crate::engine::{self, DeclareRequest};
use crate::model::constant_time_eq;
use crate::store::events::{self as q, EventRow, EventState};
use crate::store::outbox;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/events", post(declare).get(list))
        .route("/api/v1/events/{id}", get(detail))
        .route("/api/v1/events/{id}/level", post(level))
        .route("/api/v1/events/{id}/resolve", post(resolve))
        .route("/api/v1/status", get(status))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/rosters/{id}/check", get(roster_check))
}

/// A caller that presented a valid API token; holds the token's name.
pub struct Authenticated(pub String);

impl FromRequestParts<Arc<WebState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` too.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = token_sha256(token);
        let mut found = None;
        // Compare with every entry, in constant time, whatever matches.
        for (name, expected) in &state.token_hashes() {
            if constant_time_eq(hash.as_bytes(), expected.as_bytes()) {
                found = Some(name.clone());
            }
        }
        found.map(Authenticated).ok_or(ApiError::Unauthorized)
    }
}

/// `Json<T>` whose rejections are JSON errors with the right status.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(match rej {
                JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                    "send JSON with Content-Type: application/json".into(),
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
                }
                JsonRejection::JsonDataError(e) => {
                    ApiError::BadRequest(format!("invalid request: {}", e.body_text()))
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::TooLarge
                }
                other => {
                    if other.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::TooLarge
                    } else {
                        ApiError::BadRequest(other.body_text())
                    }
                }
            }),
        }
    }
}

/// An event id from a path: 404 when it is not a number, as for an id
/// that names no event.
pub(super) fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| engine::no_event(id).into())
}

/// An event as the API shows it (SPEC §9).
pub fn event_json(ev: &EventRow) -> Value {
    serde_json::to_value(EventOut::from(ev)).unwrap_or(Value::Null)
}

/// [`event_json`] serialized straight into a response (lists and status
/// are written without building a JSON tree first). Fields in the order a
/// JSON object of serde_json prints them (sorted), as before.
#[derive(serde::Serialize)]
pub struct EventOut<'a> {
    acknowledged_at: Option<String>,
    declared_at: String,
    exercise: bool,
    exhausted_at: Option<String>,
    id: String,
    key: &'a str,
    level: Option<&'a str>,
    next_escalation_at: Option<String>,
    note: &'a str,
    plan: PlanRef<'a>,
    resolve_note: Option<&'a str>,
    resolved_at: Option<String>,
    round: u32,
    scenario: &'a str,
    state: &'static str,
    tier: u32,
    title: &'a str,
    updated_at: String,
}

#[derive(serde::Serialize)]
struct PlanRef<'a> {
    id: &'a str,
    sha256: &'a str,
    version: &'a str,
}

impl<'a> From<&'a EventRow> for EventOut<'a> {
    fn from(ev: &'a EventRow) -> Self {
        let opt = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
        EventOut {
            acknowledged_at: opt(ev.acknowledged_at),
            declared_at: ev.declared_at.to_rfc3339(),
            exercise: ev.exercise,
            exhausted_at: opt(ev.exhausted_at),
            id: ev.id.to_string(),
            key: &ev.dedup_key,
            level: ev.level.as_deref(),
            next_escalation_at: opt(ev.escalation_due_at),
            note: &ev.note,
            plan: PlanRef {
                id: &ev.plan_id,
                sha256: &ev.plan_sha256,
                version: &ev.plan_version,
            },
            resolve_note: ev.resolve_note.as_deref(),
            resolved_at: opt(ev.resolved_at),
            round: ev.round,
            scenario: &ev.scenario,
            state: ev.state.as_str(),
            tier: ev.tier,
            title: &ev.title,
            updated_at: ev.updated_at.to_rfc3339(),
        }
    }
}

/// An event with its delivery counts by state: what the write routes
/// answer (the full list of deliveries of a large event is only in the
/// detail route).
async fn event_summary(state: &WebState, id: i64) -> Result<Value, ApiError> {
    let data = state
        .store
        .call(move |c| {
            let Some(ev) = q::get_event(c, id)? else {
                return Ok(None);
            };
            Ok(Some((ev, q::deliveries_by_state(c, id)?)))
        })
        .await?;
    let Some((ev, counts)) = data else {
        return Err(engine::no_event(id).into());
    };
    Ok(summary_json(&ev, counts))
}

fn summary_json(ev: &EventRow, by_state: Vec<(String, i64)>) -> Value {
    let mut v = event_json(ev);
    v["deliveries_by_state"] =
        Value::Object(by_state.into_iter().map(|(k, n)| (k, json!(n))).collect());
    v
}

async fn event_detail(state: &WebState, id: i64) -> Result<Value, ApiError> {
    let set = state.config();
    let data = state
        .store
        .call(move |c| {
            let Some(ev) = q::get_event(c, id)? else {
                return Ok(None);
            };
            let steps = q::steps(c, id)?;
            let deliveries = outbox::for_event(c, id)?;
            let responses = q::responses(c, id)?;
            let quorum = engine::event_quorum(c, &set, &ev)?;
            Ok(Some((ev, steps, deliveries, responses, quorum)))
        })
        .await?;
    let Some((ev, steps, deliveries, responses, quorum)) = data else {
        return Err(engine::no_event(id).into());
    };
    let tiers: Vec<Value> = steps
        .iter()
        .filter(|s| s.kind == "escalation")
        .map(|s| {
            let notified = deliveries
                .iter()
                .filter(|d| d.step_id == Some(s.id) && d.state != "skipped")
                .count();
            json!({
                "tier": s.tier, "round": s.round, "audience": s.audience, "quorum": s.quorum,
                "timeout_secs": s.timeout_secs, "notified_at": s.created_at, "deliveries": notified,
            })
        })
        .collect();
    let mut v = event_json(&ev);
    v["acks"] = json!(quorum.acks);
    v["tiers"] = json!(tiers);
    v["steps"] = json!(steps);
    v["deliveries"] = json!(deliveries);
    v["responses"] = json!(responses);
    Ok(v)
}

async fn declare(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    ApiJson(req): ApiJson<DeclareRequest>,
) -> Result<Response, ApiError> {
    let d = state.declare(&format!("token:{who}"), req).await?;
    let mut v = summary_json(&d.event, d.by_state);
    v["updated"] = json!(d.updated);
    v["level_changed"] = json!(d.level_changed);
    v["queued"] = json!(d.queued);
    // Never merged, always said: the events of the other kind (exercise or
    // real) of this scenario that run beside this one.
    v["beside"] = json!(
        d.beside
            .iter()
            .map(|e| json!({
                "id": e.id.to_string(),
                "exercise": e.exercise,
                "level": e.level,
                "key": e.dedup_key,
                "state": e.state.as_str(),
            }))
            .collect::<Vec<_>>()
    );
    if let Some(other) = d.beside.first() {
        v["warning"] = json!(if d.event.exercise {
            format!(
                "a REAL event of this scenario is running (event {}): this declaration is an exercise, kept apart from it",
                other.id
            )
        } else {
            format!(
                "an EXERCISE of this scenario is running (event {}): this declaration is REAL, kept apart from it",
                other.id
            )
        });
    }
    let status = if d.updated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(v)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = match query.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some("unresolved") => Some("unresolved".to_string()),
        Some(s) if EventState::parse(s).is_some() => Some(s.to_string()),
        Some(s) => {
            return Err(ApiError::BadRequest(format!(
                "unknown state `{s}` (active, acknowledged, exhausted, resolved, unresolved, all)"
            )));
        }
    };
    let limit = query.limit.unwrap_or(200).min(1000);
    let rows = state
        .store
        .call(move |c| q::list_events(c, filter.as_deref(), limit))
        .await?;
    Ok(Json(
        json!({"events": rows.iter().map(event_json).collect::<Vec<_>>()}),
    ))
}

async fn detail(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(event_detail(&state, parse_id(&id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelRequest {
    level: String,
}

async fn level(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LevelRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let d = state
        .change_level(&format!("token:{who}"), id, req.level)
        .await?;
    let mut v = event_summary(&state, id).await?;
    v["level_changed"] = json!(d.level_changed);
    v["queued"] = json!(d.queued);
    Ok(Json(v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResolveRequest {
    #[serde(default)]
    note: Option<String>,
}

async fn resolve(
    State(state): State<Arc<WebState>>,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    // An empty body is a resolve without note.
    let req: ResolveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResolveRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?
    };
    let queued = state.resolve(&format!("token:{who}"), id, req.note).await?;
    let mut v = event_summary(&state, id).await?;
    v["queued"] = json!(queued);
    Ok(Json(v))
}

async fn status(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
) -> Result<Response, ApiError> {
    let set = state.config();
    let today = state.today();
    let situation = super::situation(&state).await?;
    let (events, counts) = (&situation.events, &situation.deliveries);
    let plans: Vec<Value> = set
        .plans
        .iter()
        .map(|p| {
            json!({
                "id": p.id.value, "version": p.version.value.0, "title": p.title,
                "valid_from": p.valid_from.value.to_string(), "valid_until": p.valid_until.value.to_string(),
                "review_by": p.review_by.value.to_string(),
                "in_force": set.plans_in_force(today).iter().any(|f| std::ptr::eq(*f, p)),
                "sha256": p.sha256,
            })
        })
        .collect();
    let deliveries: serde_json::Map<String, Value> =
        counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect();
    let rosters: Vec<Value> = set
        .rosters
        .iter()
        .map(|r| {
            let report = crate::roster::check(&set, r, today, 14);
            json!({
                "id": r.id.value, "title": r.title, "days": 14, "covered": report.covered,
                "gaps": report.gaps, "problems": report.problems.len(),
            })
        })
        .collect();
    #[derive(serde::Serialize)]
    struct Status<'a> {
        cpts: &'a str,
        deliveries: serde_json::Map<String, Value>,
        events: Vec<EventOut<'a>>,
        plans: Vec<Value>,
        reload: Value,
        rosters: Vec<Value>,
        vigilance: Value,
    }
    Ok(Json(Status {
        cpts: &set.daemon.name,
        deliveries,
        events: events.iter().map(EventOut::from).collect(),
        plans,
        reload: state.reload_status().to_json(),
        rosters,
        vigilance: state.vigilance_status().await?,
    })
    .into_response())
}

async fn reload(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
) -> Result<Response, ApiError> {
    let st = state.reload().await;
    let code = if st.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((code, Json(st.to_json())).into_response())
}

#[derive(Deserialize)]
pub(crate) struct DaysQuery {
    pub days: Option<u32>,
    pub from: Option<chrono::NaiveDate>,
}

/// `GET /api/v1/rosters/{id}/check?days=N[&from=DATE]`: the roster check
/// as JSON (the same report as `vigie roster check --json`).
async fn roster_check(
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
    let set = state.config();
    let roster = set
        .roster(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no roster `{id}`")))?;
    let from = q.from.unwrap_or_else(|| state.today());
    let report = crate::roster::check(&set, roster, from, days);
    Ok(Json(
        serde_json::to_value(report).map_err(|e| ApiError::Internal(e.into()))?,
    ))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /calendar/{roster}.ics?token=`: the iCalendar feed of a roster
/// (30 days back, 90 ahead). Calendar apps cannot send headers, so the
/// token is in the query: a read-only calendar token (`[[auth.calendar_tokens]]`),
/// or an API token while none is configured.
pub async fn calendar(
    State(state): State<Arc<WebState>>,
    Path(file): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = q.token.ok_or(ApiError::Unauthorized)?;
    let hash = token_sha256(&token);
    // Read-only calendar tokens, once there is one, replace the API
    // tokens here: a calendar URL is shared and stored in phones. The
    // local token is never one.
    let calendar = &state.config().daemon.auth.calendar_tokens;
    let accepted: Vec<String> = if calendar.is_empty() {
        state
            .calendar_token_hashes()
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    } else {
        calendar.iter().map(|t| t.sha256.clone()).collect()
    };
    if !accepted
        .iter()
        .any(|h| constant_time_eq(hash.as_bytes(), h.as_bytes()))
    {
        return Err(ApiError::Unauthorized);
    }
    let id = file
        .strip_suffix(".ics")
        .ok_or_else(|| ApiError::NotFound(format!("no calendar `{file}`")))?;
    let set = state.config();
    let roster = set
        .roster(id)
        .ok_or_else(|| ApiError::NotFound(format!("no roster `{id}`")))?;
    let body = crate::roster::ics::ics_feed(&set, roster, state.today());
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=300".to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
