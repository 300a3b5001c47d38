//! The event page (`GET /bureau/events/{id}`) and the view of an event
//! that the dashboard shows too: tiers, deliveries, responses.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Value, context};

use super::{Operator, audience_label, channel_label, fr_time, state_label, step_title};
use crate::config::ConfigSet;
use crate::engine;
use crate::model::labels::{self, count};
use crate::store::events::{self as q, EventRow};
use crate::store::outbox::{self, DeliveryRow};
use crate::web::WebState;
use crate::web::respond::response_label;

pub(super) struct EventData {
    pub(super) ev: EventRow,
    pub(super) steps: Vec<q::StepRow>,
    pub(super) deliveries: Vec<DeliveryRow>,
    pub(super) responses: Vec<q::ResponseRow>,
    quorum: engine::Quorum,
}

pub(super) async fn load_events(state: &WebState, ids: Vec<i64>) -> Vec<EventData> {
    let set = state.config();
    state
        .store
        .call(move |c| {
            let mut out = Vec::new();
            for id in ids {
                if let Some(ev) = q::get_event(c, id)? {
                    out.push(EventData {
                        steps: q::steps(c, id)?,
                        deliveries: outbox::for_event(c, id)?,
                        responses: q::responses(c, id)?,
                        quorum: engine::event_quorum(c, &set, &ev)?,
                        ev,
                    });
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_default()
}

fn step_label(s: Option<&q::StepRow>) -> String {
    match s {
        Some(s) if s.kind == "escalation" => {
            step_title(Some(s.tier.unwrap_or(0) as usize), s.round, &s.audience)
        }
        Some(s) if s.kind == "broadcast" => step_title(None, 0, &s.audience),
        Some(s) if s.kind == "resolve" => "Fin d'alerte".into(),
        Some(s) if s.kind == "exhausted" => "Alerte sans réponse".into(),
        None => "Relance".into(),
        _ => "—".into(),
    }
}

pub(super) fn event_view(set: &ConfigSet, d: &EventData) -> Value {
    let e = &d.ev;
    let found = engine::plan_of(set, e).ok();
    let scenario = found.map(|(_, s)| s);
    let plan = match found {
        Some((p, _)) if p.version.value.0 == e.plan_version => {
            format!("{} (version {})", p.title, e.plan_version)
        }
        _ => format!("{} (version {})", e.plan_id, e.plan_version),
    };
    let latest: HashMap<&str, &str> = d
        .responses
        .iter()
        .map(|r| (r.recipient_id.as_str(), r.response.as_str()))
        .collect();
    let tiers = scenario.map(|s| s.escalation.len()).unwrap_or(0);
    let steps: HashMap<i64, &q::StepRow> = d.steps.iter().map(|s| (s.id, s)).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for x in &d.deliveries {
        *counts.entry(x.state.as_str()).or_default() += 1;
    }
    let recipients: Vec<Value> = d
        .deliveries
        .iter()
        .map(|x| {
            context! {
                name => x.recipient_name.clone(),
                step => step_label(x.step_id.and_then(|s| steps.get(&s).copied())),
                channel => channel_label(&x.channel),
                state => x.state.clone(), state_label => labels::delivery_state(&x.state),
                reason => x.reason.clone().unwrap_or_default(), attempts => x.attempts,
                response => x.recipient_id.as_deref().and_then(|r| latest.get(r)).map(|r| response_label(r)).unwrap_or_else(|| "—".to_string()),
            }
        })
        .collect();
    context! {
        id => e.id, title => e.title.clone(), level => e.level.clone(), state => e.state.as_str(),
        state_label => state_label(e.state), exercise => e.exercise, note => e.note.clone(), resolve_note => e.resolve_note.clone(),
        resolved_state => e.state == q::EventState::Resolved, plan,
        since => fr_time(set, e.declared_at), resolved => e.resolved_at.map(|t| fr_time(set, t)),
        next => e.escalation_due_at.map(|t| fr_time(set, t)),
        tier_label => if tiers == 0 { "aucun".to_string() } else { format!("{} sur {tiers}", e.tier + 1) },
        acks => d.quorum.acks, quorum => d.quorum.needed,
        levels => scenario.map(|s| s.levels.iter().map(|l| context! { value => l.value.clone(), current => e.level.as_deref() == Some(l.value.as_str()) }).collect::<Vec<_>>()).unwrap_or_default(),
        counts => counts.iter().map(|(s, n)| context! { state => *s, label => labels::deliveries(*n as u64, s) }).collect::<Vec<_>>(),
        recipients_count => count(recipients.len() as u64, "envoi", "envois"),
        recipients,
    }
}

pub async fn event_page(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, Html("<p>Événement inconnu.</p>")).into_response();
    };
    let flash = state.flashes.take(&op.cookie);
    event_response(&state, &op, id, flash).await
}

/// The event page with `flash` on top (the outcome of its forms).
pub(super) async fn event_response(
    state: &WebState,
    op: &Operator,
    id: i64,
    flash: Option<Value>,
) -> Response {
    let set = state.config();
    let Some(d) = load_events(state, vec![id]).await.pop() else {
        return (StatusCode::NOT_FOUND, Html("<p>Événement inconnu.</p>")).into_response();
    };
    let tiers: Vec<Value> = d
        .steps
        .iter()
        .filter(|s| s.kind == "escalation")
        .map(|s| {
            context! {
                tier => s.tier.map(|t| t + 1), round => s.round + 1, audience => audience_label(&s.audience), quorum => s.quorum,
                timeout => s.timeout_secs.map(|t| labels::duration(std::time::Duration::from_secs(t))),
                at => fr_time(&set, crate::store::parse_ts(&s.created_at)),
            }
        })
        .collect();
    let responses: Vec<Value> = d
        .responses
        .iter()
        .map(|r| context! { at => fr_time(&set, crate::store::parse_ts(&r.at)), name => r.name.clone(), label => response_label(&r.response), eta => r.eta_minutes, comment => r.comment.clone() })
        .collect();
    let actions = state.actions(id).await.unwrap_or_default();
    // A resolved event's actions are judged at its resolution, as the
    // report does: one left undone stays "en retard" as it was then, not
    // later and later.
    let judged_at = d.ev.resolved_at.unwrap_or_else(|| state.clock.now());
    let actions = super::actions::checklist(&set, &actions, judged_at);
    let answers = super::coming::view(
        &set,
        &d,
        &super::coming::load(state, id).await,
        state.clock.now(),
    );
    state.pages.render(
        "event.html",
        context! {
            cpts => set.daemon.name.clone(), operator => op.name.clone(), csrf => state.sessions.csrf(&op.cookie),
            e => event_view(&set, &d), tiers, responses, flash, actions, answers,
            j => super::journal::event_extras(state, id).await,
        },
    )
}
