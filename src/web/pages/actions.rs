//! The actions checklist on the event page (SPEC §12): each action with
//! who does it, when it is expected and whether it is done; an overdue one
//! (expected time passed, not done) in red *and* said in words; a form to
//! tick each (`POST /bureau/events/{id}/actions/{n}/done`, CSRF as the
//! other forms), whose outcome is shown on top of the event page.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::Deserialize;

use super::event::event_response;
use super::{Operator, forbidden, fr_time};
use crate::config::ConfigSet;
use crate::engine::EngineError;
use crate::model::labels::count;
use crate::store::actions::ActionRow;
use crate::web::WebState;
use crate::web::error::{ApiError, for_page};

/// The checklist as the event page shows it.
pub(super) fn checklist(set: &ConfigSet, rows: &[ActionRow], now: DateTime<Utc>) -> Vec<Value> {
    rows.iter()
        .map(|a| {
            context! {
                n => a.n, title => a.title.clone(), who => a.who.clone(),
                detail => a.detail.as_deref().map(crate::web::markdown::to_html),
                due => a.due_at.map(|t| fr_time(set, t)),
                done => a.done_at.map(|t| fr_time(set, t)), done_by => a.done_by.as_deref().map(super::author_label),
                note => a.note.clone(), overdue => a.overdue(now),
            }
        })
        .collect()
}

/// For the dashboard's event cards: per event id, "1 faite sur 3" and how
/// many are overdue; events without actions are left out.
pub(super) async fn summaries(
    state: &WebState,
    ids: Vec<i64>,
    now: DateTime<Utc>,
) -> std::collections::BTreeMap<String, Value> {
    let rows = state
        .store
        .call(move |c| {
            ids.into_iter()
                .map(|id| Ok((id, crate::store::actions::list(c, id)?)))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap_or_default();
    rows.into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(id, list)| {
            let done = list.iter().filter(|a| a.done_at.is_some()).count() as u64;
            let late = list.iter().filter(|a| a.overdue(now)).count() as u64;
            let text = format!("{} sur {}", count(done, "faite", "faites"), list.len());
            let late = (late > 0).then(|| count(late, "en retard", "en retard"));
            (id.to_string(), context! { text, late })
        })
        .collect()
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

pub async fn action_done(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path((id, n)): Path<(i64, i64)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let note = Some(f.note).filter(|n| !n.trim().is_empty());
    match state.action_done(&op.name, id, n, note).await {
        Ok(a) => {
            state.flashes.put(
                &op.cookie,
                "ok",
                format!("Action n° {n} « {} » cochée comme faite.", a.title),
            );
            Redirect::to(&format!("/bureau/events/{id}")).into_response()
        }
        Err(e) => {
            let (status, text) = refused(e, n);
            let mut r =
                event_response(&state, &op, id, Some(context! { kind => "bad", text })).await;
            *r.status_mut() = status;
            r
        }
    }
}

fn refused(e: EngineError, n: i64) -> (axum::http::StatusCode, String) {
    let e = for_page(e, "action form");
    let text = match &e {
        ApiError::Conflict(_) => format!("L'action n° {n} est déjà cochée : rien n'a changé."),
        ApiError::NotFound(_) => {
            format!("L'action n° {n} n'existe pas dans la liste de cet événement.")
        }
        ApiError::BadRequest(_) | ApiError::Unprocessable(_) => {
            "La remarque dépasse 1 000 caractères : raccourcissez-la.".to_string()
        }
        _ => "Erreur interne : l'action n'a pas été cochée.".to_string(),
    };
    (e.status(), text)
}
