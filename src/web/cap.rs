//! The CAP export (SPEC §13): `GET /api/v1/events/{id}/cap` (API token)
//! answers an event's latest message as a CAP 1.2 `<alert>`, exercises
//! included (`status` Exercise); `GET /cap.atom` (public) is the Atom feed
//! of the real events unresolved or resolved in the last
//! [`FEED_KEEPS_RESOLVED_DAYS`] days. Both are written by [`engine::cap`],
//! which puts no personal data and not the internal `note` in them.
//!
//! [`engine::cap`]: crate::engine::cap

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::WebState;
use super::api::Authenticated;
use super::error::ApiError;
use crate::engine::cap::{self, CapMessage, CapSource, FEED_KEEPS_RESOLVED_DAYS};
use crate::store::cap as sq;
use crate::store::events::{self as q, EventRow};

/// At most this many events in the feed (newest first).
const FEED_EVENTS: u32 = 200;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/events/{id}/cap", get(event_cap))
        .route("/cap.atom", get(feed))
}

async fn event_cap(
    State(state): State<Arc<WebState>>,
    _auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = super::api::parse_id(&id)?;
    let (install, found) = state
        .store
        .call(move |c| {
            let install = sq::meta(c, "install_id")?.unwrap_or_default();
            let Some(ev) = q::get_event(c, id)? else {
                return Ok((install, None));
            };
            let history = sq::level_history(c, id)?;
            Ok((install, Some((ev, history))))
        })
        .await?;
    let Some((ev, history)) = found else {
        return Err(crate::engine::no_event(id).into());
    };
    let set = state.config();
    let src = source(&set.daemon, &install);
    let msgs = cap::messages(&ev, &history);
    let body = cap::document(&src, &ev, &msgs);
    Ok((
        [(header::CONTENT_TYPE, "application/cap+xml; charset=utf-8")],
        body,
    )
        .into_response())
}

async fn feed(State(state): State<Arc<WebState>>) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let since = now - chrono::Duration::days(FEED_KEEPS_RESOLVED_DAYS);
    let (install, events) = state
        .store
        .call(move |c| {
            let install = sq::meta(c, "install_id")?.unwrap_or_default();
            let mut out: Vec<(EventRow, Vec<_>)> = Vec::new();
            for ev in sq::feed_events(c, since, FEED_EVENTS)? {
                let history = sq::level_history(c, ev.id)?;
                out.push((ev, history));
            }
            Ok((install, out))
        })
        .await?;
    let set = state.config();
    let src = source(&set.daemon, &install);
    let events: Vec<(EventRow, Vec<CapMessage>)> = events
        .into_iter()
        .map(|(ev, history)| {
            let msgs = cap::messages(&ev, &history);
            (ev, msgs)
        })
        .collect();
    let body = cap::feed(&src, &events, now);
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        body,
    )
        .into_response())
}

fn source<'a>(d: &'a crate::config::daemon::DaemonConfig, install: &'a str) -> CapSource<'a> {
    CapSource {
        sender: CapSource::host_of(&d.public_url),
        install_id: install,
        name: &d.name,
        public_url: d.public_url.trim_end_matches('/'),
        timezone: d.timezone,
        departements: d.vigilance.as_ref().map_or(&[], |v| &v.departements),
    }
}
