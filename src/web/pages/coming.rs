//! Who is coming and when (SPEC §12), on the event page: per tier and per
//! audience, how many were notified, answered, answered yes; those coming,
//! by expected arrival (answer time + delay), with their comments; and the
//! "Relancer les non-répondants" form (`POST /bureau/events/{id}/remind`).
//!
//! "Notified" is a message sent (or being sent): a delivery still waiting,
//! skipped, failed or cancelled reached nobody. "Positive" is a latest
//! answer among the scenario's `ack` responses.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::Deserialize;

use super::event::{EventData, event_response};
use super::{Operator, audience_label, forbidden, fr_time, step_title};
use crate::config::ConfigSet;
use crate::engine;
use crate::model::labels::count;
use crate::store::events::{EventState, ResponseRow};
use crate::store::parse_ts;
use crate::store::remind::{self, RemindRow, Silent};
use crate::web::WebState;
use crate::web::error::{ApiError, for_page};
use crate::web::respond::response_label;

/// What the page needs beyond [`EventData`]: who a relance would reach,
/// and the relances done.
pub(super) struct RemindData {
    silent: Vec<Silent>,
    done: Vec<RemindRow>,
}

pub(super) async fn load(state: &WebState, id: i64) -> RemindData {
    state
        .store
        .call(move |c| {
            Ok(RemindData {
                silent: remind::silent(c, id)?,
                done: remind::list(c, id)?,
            })
        })
        .await
        .unwrap_or(RemindData {
            silent: Vec::new(),
            done: Vec::new(),
        })
}

/// "10:20" today, "16/06 à 10:20" another day: in the daemon's time zone.
fn short_time(set: &ConfigSet, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let tz = set.daemon.timezone;
    let (t, now) = (t.with_timezone(&tz), now.with_timezone(&tz));
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%d/%m à %H:%M").to_string()
    }
}

/// The answers block of the event page.
pub(super) fn view(set: &ConfigSet, d: &EventData, r: &RemindData, now: DateTime<Utc>) -> Value {
    let acks: HashSet<&str> = engine::plan_of(set, &d.ev)
        .map(|(_, s)| s.ack.iter().map(|a| a.value.as_str()).collect())
        .unwrap_or_default();
    let latest: HashMap<&str, &ResponseRow> = d
        .responses
        .iter()
        .map(|x| (x.recipient_id.as_str(), x))
        .collect();
    // Per step (a tier of a round, a broadcast): the people it reached.
    let mut rows = Vec::new();
    let mut everyone: BTreeSet<&str> = BTreeSet::new();
    let tally = |who: &BTreeSet<&str>| {
        let answered: Vec<&&ResponseRow> = who.iter().filter_map(|w| latest.get(w)).collect();
        let positive = answered
            .iter()
            .filter(|x| acks.contains(x.response.as_str()))
            .count();
        (who.len(), answered.len(), positive)
    };
    for s in d
        .steps
        .iter()
        .filter(|s| s.kind == "escalation" || s.kind == "broadcast")
    {
        let who: BTreeSet<&str> = d
            .deliveries
            .iter()
            .filter(|x| x.step_id == Some(s.id) && matches!(x.state.as_str(), "sent" | "sending"))
            .filter_map(|x| x.recipient_id.as_deref())
            .collect();
        everyone.extend(who.iter().copied());
        let (notified, answered, positive) = tally(&who);
        let tier = (s.kind == "escalation").then(|| s.tier.unwrap_or(0) as usize);
        rows.push(context! {
            step => step_title(tier, s.round, ""),
            audience => audience_label(&s.audience),
            at => fr_time(set, parse_ts(&s.created_at)),
            notified, answered, positive,
        });
    }
    let (notified, answered, positive) = tally(&everyone);
    // Those coming: the latest answer positive; by expected arrival, then
    // those who gave no delay, by answer time.
    let mut coming: Vec<&ResponseRow> = latest
        .values()
        .copied()
        .filter(|x| acks.contains(x.response.as_str()))
        .collect();
    coming.sort_by_key(|x| (x.expected().is_none(), x.expected(), parse_ts(&x.at)));
    let coming: Vec<Value> = coming
        .iter()
        .map(|x| {
            context! {
                name => x.name.clone(), label => response_label(&x.response),
                answered => short_time(set, parse_ts(&x.at), now),
                eta => x.eta_minutes.map(|m| format!("{m} min")),
                expected => x.expected().map(|t| short_time(set, t, now)),
                comment => x.comment.clone(),
            }
        })
        .collect();
    let silent: Vec<&Silent> = r
        .silent
        .iter()
        .filter(|s| set.directory.get(&s.recipient_id).is_some())
        .collect();
    let total = format!(
        "{}, {} {}, {}",
        count(notified as u64, "personne prévenue", "personnes prévenues"),
        answered,
        if answered <= 1 {
            "a répondu"
        } else {
            "ont répondu"
        },
        count(positive as u64, "réponse positive", "réponses positives"),
    );
    context! {
        rows, total, coming,
        resolved => d.ev.state == EventState::Resolved,
        silent_count => silent.len(),
        silent_label => count(silent.len() as u64, "personne", "personnes"),
        silent_names => silent.iter().map(|s| s.name.clone()).collect::<Vec<_>>().join(", "),
        reminds => r.done.iter().map(|x| context! {
            at => fr_time(set, parse_ts(&x.at)), actor => x.actor.clone(),
            people => count(u64::from(x.people), "personne relancée", "personnes relancées"),
        }).collect::<Vec<_>>(),
    }
}

#[derive(Deserialize)]
pub struct RemindForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /bureau/events/{id}/remind`: "Relancer les non-répondants"; the
/// outcome on top of the event page.
pub async fn remind_form(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<RemindForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let text = match state.remind(&op.name, id).await {
        Ok(r) if r.people == 0 => {
            "Personne à relancer : toutes les personnes prévenues ont répondu.".to_string()
        }
        Ok(r) => format!(
            "Relance envoyée : {} ({}).",
            count(r.people as u64, "personne relancée", "personnes relancées"),
            count(r.queued as u64, "message", "messages")
        ),
        Err(e) => {
            let e = for_page(e, "remind form");
            let text = match &e {
                ApiError::Conflict(_) => {
                    "Relance refusée : l'événement est levé, plus personne n'est attendu."
                }
                ApiError::NotFound(_) => "Relance refusée : événement inconnu.",
                ApiError::DiskFull(_) => {
                    "Le disque de la base de données est plein : la relance n'a pas été enregistrée."
                }
                _ => "Erreur interne : la relance n'a pas été enregistrée.",
            };
            let status = e.status();
            let flash = Some(context! { kind => "bad", text });
            let mut r = event_response(&state, &op, id, flash).await;
            *r.status_mut() = status;
            return r;
        }
    };
    state.flashes.put(&op.cookie, "ok", text);
    Redirect::to(&format!("/bureau/events/{id}")).into_response()
}
