//! The dashboard's "Échanges de gardes" (SPEC §15): requests still open,
//! swaps waiting for the bureau's approval (those of shifts not yet
//! started) (with the approve and refuse
//! form, `POST /bureau/swaps/{id}`, fields `csrf` and `decision` =
//! `approve` | `refuse`), and the last swaps decided. The directory's
//! "Renvoyer son lien" form (`POST /bureau/links`, fields `csrf`, `id`)
//! mails someone their personal page's link again.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use minijinja::{Value, context};
use serde::Deserialize;

use super::dashboard::{done, form_error};
use super::{DecisionForm, Operator, forbidden, fr_time};
use crate::store::swaps as q;
use crate::web::WebState;

/// How many decided swaps the dashboard lists.
const RECENT: u32 = 10;

/// The section's context: `open`, `pending`, `recent` (lists of lines).
pub(super) async fn view(state: &WebState) -> Value {
    let set = state.config();
    let live = state
        .store
        .call(|c| q::in_states(c, &[q::OPEN, q::PENDING]))
        .await
        .unwrap_or_default();
    let recent = state
        .store
        .call(|c| q::recent_done(c, RECENT))
        .await
        .unwrap_or_default();
    let name = |id: &str| {
        set.directory
            .get(id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    // Requests of shifts that have started are past deciding.
    let now = state.clock.now();
    let live: Vec<_> = live
        .into_iter()
        .filter(|r| {
            set.roster(&r.roster)
                .and_then(|x| crate::roster::swaps::occurrence_on(&set, x, r.date, &r.shift))
                .is_some_and(|o| o.start > now)
        })
        .collect();
    let line = |r: &q::SwapRow| {
        let roster = set
            .roster(&r.roster)
            .map(|x| x.title.clone())
            .unwrap_or_else(|| r.roster.clone());
        context! {
            id => r.id,
            what => format!("{} — garde « {} » du {}", roster, r.shift, crate::roster::ics::date_fr(r.date)),
            requester => name(&r.requester),
            taker => r.taker.as_deref().map(name),
            since => fr_time(&set, r.created_at),
            by => r.decided_by.clone(),
        }
    };
    context! {
        open => live.iter().filter(|r| r.state == q::OPEN).map(line).collect::<Vec<_>>(),
        pending => live.iter().filter(|r| r.state == q::PENDING).map(line).collect::<Vec<_>>(),
        recent => recent.iter().map(line).collect::<Vec<_>>(),
    }
}

pub async fn decide(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<DecisionForm>,
) -> axum::response::Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let approve = match f.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => {
            return form_error(
                &state,
                &op,
                crate::engine::EngineError::Invalid("decision".into()),
            )
            .await;
        }
    };
    match state.decide_swap(&op.name, id, approve).await {
        Ok(()) if approve => done(
            &state,
            &op,
            "ok",
            format!("Échange n° {id} validé : il compte dès maintenant."),
        ),
        Ok(()) => done(
            &state,
            &op,
            "ok",
            format!("Échange n° {id} refusé : la demande est de nouveau ouverte."),
        ),
        Err(e) => {
            let (status, m) = match &e {
                crate::engine::EngineError::Invalid(m) => {
                    (axum::http::StatusCode::UNPROCESSABLE_ENTITY, m.clone())
                }
                crate::engine::EngineError::Conflict(m) => {
                    (axum::http::StatusCode::CONFLICT, m.clone())
                }
                _ => return form_error(&state, &op, e).await,
            };
            let verb = if approve { "validé" } else { "refusé" };
            let text = format!("Échange n° {id} non {verb} : {m}.");
            let ctx =
                super::dashboard::dashboard(&state, &op, Some(context! { kind => "bad", text }))
                    .await;
            let mut r = state.pages.render("bureau.html", ctx);
            *r.status_mut() = status;
            r
        }
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

pub async fn send_link(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Form(f): Form<LinkForm>,
) -> axum::response::Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    match state.send_personal_link(&op.name, f.id.trim()).await {
        Ok(name) => done(
            &state,
            &op,
            "ok",
            format!("Lien de sa page de gardes envoyé à {name}."),
        ),
        Err(e) => {
            let text = match &e {
                crate::engine::EngineError::NotFound(_) => format!(
                    "Aucun professionnel actif n'a l'identifiant « {} » dans l'annuaire.",
                    f.id.trim()
                ),
                crate::engine::EngineError::Invalid(m) => format!("Lien non envoyé : {m}."),
                _ => return form_error(&state, &op, e).await,
            };
            let ctx =
                super::dashboard::dashboard(&state, &op, Some(context! { kind => "bad", text }))
                    .await;
            let mut r = state.pages.render("bureau.html", ctx);
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
    }
}
