//! The dashboard's "Vigilance météo" (Météo-France or MeteoAlarm) (SPEC §13): today's and
//! tomorrow's ("demain") colours that are not vert, the last poll and why
//! it failed, and the open proposals with their "Déclencher" (or "Lever")
//! and "Ignorer" form (`POST /bureau/proposals/{id}`, fields `csrf` and
//! `decision` = `accept` | `dismiss`).

use std::sync::Arc;

use super::DecisionForm;
use axum::Form;
use axum::extract::{Path, State};
use minijinja::{Value, context};

use super::dashboard::{done, form_error};
use super::{Operator, forbidden, fr_time};
use crate::web::WebState;

/// The section's context, `none` without `[vigilance]`: `error`, `polled`,
/// `bulletin`, `colours` (lines), `proposals` (`id`, `what`, `resolve`).
pub(super) async fn view(state: &WebState) -> Value {
    let Some(crate::app::VigilanceView { map, polled, error }) = state.vigilance_view() else {
        return Value::from(());
    };
    let set = state.config();
    let colours: Vec<String> = map
        .iter()
        .flat_map(|m| m.colours.iter())
        .filter(|(_, c)| c.today != "vert" || c.tomorrow.as_deref().is_some_and(|t| t != "vert"))
        .map(|((d, p), c)| match &c.tomorrow {
            Some(t) => format!("{p} ({d}) : {} aujourd'hui, {t} demain", c.today),
            None => format!("{p} ({d}) : {} aujourd'hui", c.today),
        })
        .collect();
    let today = state.today();
    let title = |id: &str| {
        set.plans_in_force(today)
            .iter()
            .find_map(|p| p.scenario(id).map(|s| s.title.clone()))
            .unwrap_or_else(|| id.to_string())
    };
    let proposals: Vec<Value> = state
        .open_proposals()
        .await
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let head = format!(
                "Vigilance {} {} ({}), bulletin du {}",
                p.phenomenon,
                p.colour,
                p.departement,
                fr_time(&set, p.update_time)
            );
            let what = match &p.level {
                Some(l) if p.action == "declare" => {
                    format!(
                        "{head} : déclencher « {} » au niveau {l}",
                        title(&p.scenario)
                    )
                }
                _ => format!("{head} : lever « {} »", title(&p.scenario)),
            };
            context! { id => p.id, what, resolve => p.action == "resolve" }
        })
        .collect();
    context! {
        error => error,
        polled => polled.map(|t| fr_time(&set, t)),
        bulletin => map.as_ref().map(|m| fr_time(&set, m.update_time)),
        colours,
        proposals,
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
    let r = match f.decision.as_str() {
        "accept" => state.accept_proposal(&op.name, id).await,
        "dismiss" => state.dismiss_proposal(&op.name, id).await,
        _ => Err(crate::engine::EngineError::Invalid("decision".into())),
    };
    match r {
        Ok(p) if p.state == "accepted" => done(
            &state,
            &op,
            "ok",
            format!("Proposition n° {id} acceptée : c'est fait."),
        ),
        Ok(_) => done(&state, &op, "ok", format!("Proposition n° {id} ignorée.")),
        Err(e) => form_error(&state, &op, e).await,
    }
}
