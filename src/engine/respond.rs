//! Responses through personal links (SPEC §7): looking a link up (never
//! changing anything: mail scanners open links) and recording a response,
//! which may acknowledge the event.

use rusqlite::Connection;

use super::escalation::quorum;
use super::journal;
use super::links::LinkClaim;
use super::{Ctx, EngineError, plan_of};
use crate::store::Store;
use crate::store::events::{self as q, EventRow, EventState};

/// What a response link shows.
#[derive(Clone, Debug)]
pub struct LinkView {
    pub event: EventRow,
    pub recipient_id: String,
    pub recipient_name: String,
    pub choices: Vec<String>,
    pub current: Option<String>,
    pub plan_title: String,
}

/// Looks a response link up without changing anything (mail scanners open
/// links).
pub async fn link(store: &Store, ctx: Ctx, token: String) -> Result<LinkView, EngineError> {
    let claim = ctx.links.parse(&token).ok_or_else(unknown_link)?;
    store.call(move |c| Ok(link_view(c, &ctx, &claim))).await?
}

fn unknown_link() -> EngineError {
    EngineError::NotFound("unknown link".into())
}

/// The event and recipient of a link, once its signature is checked against
/// the event's own secret (a link of an event lost in a database restore
/// does not open the event that took its number).
fn link_view(c: &Connection, ctx: &Ctx, claim: &LinkClaim) -> Result<LinkView, EngineError> {
    let (event_id, seq) = (claim.event_id, claim.seq);
    let ev = q::get_event(c, event_id)?.ok_or_else(unknown_link)?;
    if !ctx.links.verify(claim, &ev.link_secret) {
        return Err(unknown_link());
    }
    let (rid, name) = q::recipient_by_seq(c, event_id, seq)?.ok_or_else(unknown_link)?;
    let (plan, scenario) = plan_of(&ctx.set, &ev)?;
    let current = q::latest_responses(c, event_id)?.remove(&rid);
    let view = LinkView {
        plan_title: plan.title.clone(),
        choices: scenario.responses.clone(),
        event: ev,
        recipient_id: rid,
        recipient_name: name,
        current,
    };
    if view.event.state == EventState::Resolved {
        return Err(EngineError::Gone(format!(
            "« {} » est terminé",
            view.event.title
        )));
    }
    Ok(view)
}

/// Records a response through a link; acknowledges the event when the
/// quorum of the tier in progress is reached.
pub async fn respond(
    store: &Store,
    ctx: Ctx,
    token: String,
    response: String,
) -> Result<LinkView, EngineError> {
    let claim = ctx.links.parse(&token).ok_or_else(unknown_link)?;
    let event_id = claim.event_id;
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = (|| {
                let view = link_view(&tx, &ctx, &claim)?;
                if !view.choices.contains(&response) {
                    return Err(EngineError::Invalid(format!(
                        "unknown response `{response}` (choices: {})",
                        view.choices.join(", ")
                    )));
                }
                q::insert_response(&tx, event_id, &view.recipient_id, &response, ctx.now)?;
                journal::response(
                    &tx,
                    &ctx,
                    event_id,
                    &view.recipient_name,
                    &view.recipient_id,
                    &response,
                    &journal::ResponseExtras::default(),
                )?;
                let ev = &view.event;
                if matches!(ev.state, EventState::Active | EventState::Exhausted) {
                    let (_, scenario) = plan_of(&ctx.set, ev)?;
                    let counted = quorum(&tx, ev, scenario)?;
                    if counted.met() {
                        q::set_state(&tx, event_id, EventState::Acknowledged, None, ctx.now)?;
                        journal::acknowledged(
                            &tx,
                            &ctx,
                            &view.recipient_name,
                            ev,
                            counted.acks,
                            counted.needed.unwrap_or(0),
                        )?;
                        tracing::info!(event = event_id, "quorum reached: event acknowledged");
                    }
                }
                link_view(&tx, &ctx, &claim)
            })();
            if out.is_ok() {
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}
