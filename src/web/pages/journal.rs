//! The event page's main courante (timeline, note and correction form),
//! bulletin and lessons forms, and the bulletins of the public page
//! (SPEC §12).
//!
//! The event page shows the main courante newest first: during a crisis
//! the cell reads what just happened, right under the form where it
//! writes; the report (a document read afterwards) shows it oldest first.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::event::event_response;
use super::{Operator, author_label, forbidden, fr_time};
use crate::config::ConfigSet;
use crate::engine::EngineError;
use crate::store::journal::{self, Entry};
use crate::web::WebState;
use crate::web::error::for_page;

/// A kind of entry as people read it.
pub(super) fn kind_label(kind: &str) -> &str {
    match kind {
        "declared" => "Déclenchement",
        "redeclared" => "Nouveau déclenchement",
        "level_changed" => "Changement de niveau",
        "tier_notified" => "Palier alerté",
        "acknowledged" => "Quorum atteint",
        "exhausted" => "Escalade épuisée",
        "response" => "Réponse",
        "delivery_failed" => "Échecs d'envoi",
        "action_done" => "Action faite",
        "note" => "Note",
        "bulletin" => "Bulletin",
        "resolved" => "Levée",
        "reminded" => "Relance des non-répondants",
        other => other,
    }
}

/// The entries as the pages show them, in the order given; a correction
/// says what it corrects.
pub(super) fn entries_view(set: &ConfigSet, entries: &[Entry]) -> Vec<Value> {
    let by_id: HashMap<i64, &Entry> = entries.iter().map(|e| (e.id, e)).collect();
    entries
        .iter()
        .map(|e| {
            let corrects = e.corrects.and_then(|c| by_id.get(&c)).map(|c| {
                context! { id => c.id, at => fr_time(set, c.at), text => c.text.clone() }
            });
            context! {
                id => e.id, at => fr_time(set, e.at), kind => e.kind.clone(),
                kind_label => kind_label(&e.kind), author => author_label(&e.author), text => e.text.clone(),
                corrects,
            }
        })
        .collect()
}

/// What the event page shows of the main courante (newest first), the
/// bulletins and the lessons learned.
pub(super) async fn event_extras(state: &WebState, id: i64) -> Value {
    let set = state.config();
    let data = state
        .store
        .call(move |c| {
            Ok((
                journal::list(c, id)?,
                journal::bulletins(c, id)?,
                journal::lessons(c, id)?,
            ))
        })
        .await;
    let Ok((log, bulletins, lessons)) = data else {
        return Value::UNDEFINED;
    };
    let mut log = entries_view(&set, &log);
    log.reverse();
    let texts = |v: &[journal::Bulletin]| -> Vec<Value> {
        v.iter()
            .map(|b| context! { at => fr_time(&set, b.at), author => author_label(&b.author), text => b.text.clone() })
            .collect()
    };
    context! {
        log, max => crate::engine::journal::MAX_TEXT,
        bulletins => texts(&bulletins), lessons => texts(&lessons),
    }
}

/// The newest bulletins of an event, for the public page: time and text
/// only (no author).
pub(super) fn public_bulletins(
    set: &ConfigSet,
    bulletins: Option<&Vec<journal::Bulletin>>,
) -> Vec<Value> {
    bulletins
        .into_iter()
        .flatten()
        .take(10)
        .map(|b| context! { at => fr_time(set, b.at), text => b.text.clone() })
        .collect()
}

#[derive(Deserialize)]
pub struct TextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    /// The entry a note corrects (its number), empty for a plain note.
    #[serde(default)]
    corrects: String,
}

/// `POST /bureau/events/{id}/log`: a note or a correction.
pub async fn note(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<TextForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let corrects = match f.corrects.trim() {
        "" => None,
        n => match n.trim_start_matches(['n', '°', ' ']).parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let text = format!(
                    "Entrée non ajoutée : « {n} » n'est pas un numéro d'entrée de la main courante."
                );
                return refused_page(&state, &op, id, StatusCode::UNPROCESSABLE_ENTITY, text).await;
            }
        },
    };
    let outcome = state.log_note(&op.name, id, f.text, corrects).await;
    let ok = if corrects.is_some() {
        "Correction ajoutée à la main courante."
    } else {
        "Note ajoutée à la main courante."
    };
    after(&state, &op, id, outcome.map(|_| ok)).await
}

/// `POST /bureau/events/{id}/bulletin`.
pub async fn bulletin(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<TextForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let outcome = state.publish_bulletin(&op.name, id, f.text).await;
    after(
        &state,
        &op,
        id,
        outcome.map(|_| "Bulletin publié sur la page publique."),
    )
    .await
}

/// `POST /bureau/events/{id}/retex`.
pub async fn retex(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<TextForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let outcome = state.add_lesson(&op.name, id, f.text).await;
    after(
        &state,
        &op,
        id,
        outcome.map(|_| "Enseignement ajouté au retour d'expérience."),
    )
    .await
}

async fn after(
    state: &WebState,
    op: &Operator,
    id: i64,
    outcome: Result<&str, EngineError>,
) -> Response {
    match outcome {
        Ok(text) => {
            state.flashes.put(&op.cookie, "ok", text.to_string());
            Redirect::to(&format!("/bureau/events/{id}")).into_response()
        }
        Err(e) => {
            let text = match &e {
                EngineError::NotFound(_) => "Action refusée : cet événement n'existe pas.".to_string(),
                EngineError::Conflict(_) => {
                    "Action refusée : l'événement est levé, sa page publique ne montre plus de bulletin."
                        .to_string()
                }
                EngineError::Invalid(_) => format!(
                    "Action refusée : le texte est vide, dépasse {} caractères (1 000 pour un bulletin), ou l'entrée à corriger n'est pas de cet événement.",
                    crate::engine::journal::MAX_TEXT
                ),
                _ => "Erreur interne : rien n'a été enregistré.".to_string(),
            };
            let status = for_page(e, "journal form").status();
            refused_page(state, op, id, status, text).await
        }
    }
}

async fn refused_page(
    state: &WebState,
    op: &Operator,
    id: i64,
    status: StatusCode,
    text: String,
) -> Response {
    let mut r = event_response(state, op, id, Some(context! { kind => "bad", text })).await;
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}
