//! "Relancer les non-répondants" (SPEC §12): the event's message again, on
//! the same channels, to those it reached who have not answered.
//!
//! Decisions made where SPEC is silent:
//! - "Reached" is a delivery sent (or being sent) on that channel, of any
//!   wave of the event (broadcasts, tiers, the owners' alert, an earlier
//!   relance): whoever got a response link. A channel whose delivery
//!   failed, was skipped or still waits is not used again.
//! - One relance writes one delivery per (person, channel), whatever the
//!   number of waves that reached them; its deliveries belong to the event
//!   without a step (steps are the plan's waves) and go with the crisis
//!   priority.
//! - A resolved event refuses (409); an acknowledged or exhausted one is
//!   relanced like an active one. Nobody to relance: nothing is written.
//! - Logged in the main courante as kind `reminded` and in the audit log,
//!   in the transaction of the deliveries.

use std::collections::BTreeMap;

use super::fanout::deliver;
use super::render::Builtin;
use super::{Ctx, EngineError, plan_of};
use crate::config::Professional;
use crate::model::labels::count;
use crate::store::events::EventState;
use crate::store::outbox::Priority;
use crate::store::{Store, StoreError, journal, remind};

/// What a relance did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reminded {
    /// People re-notified.
    pub people: usize,
    /// Deliveries queued (one per person and channel, skipped ones not
    /// counted).
    pub queued: usize,
}

/// Re-notifies, on the same channels, those of event `id` who were
/// notified and have not answered: the decision and its deliveries in one
/// transaction.
pub async fn remind(store: &Store, ctx: Ctx, id: i64) -> Result<Reminded, EngineError> {
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = (|| {
                let ev = super::event_of(&tx, id)?;
                if ev.state == EventState::Resolved {
                    return Err(EngineError::Conflict(format!(
                        "event {id} is resolved: nobody is waited for"
                    )));
                }
                let (plan, _) = plan_of(&ctx.set, &ev)?;
                let silent = remind::silent(&tx, id).map_err(StoreError::from)?;
                // Grouped by their channels, so that each person gets each
                // channel once.
                let mut groups: BTreeMap<&[String], Vec<&Professional>> = BTreeMap::new();
                for s in &silent {
                    if let Some(p) = ctx.set.directory.get(&s.recipient_id) {
                        groups.entry(s.channels.as_slice()).or_default().push(p);
                    }
                }
                let people: usize = groups.values().map(Vec::len).sum();
                if people == 0 {
                    return Ok(Reminded::default());
                }
                let template = Builtin::Relance.source();
                let mut queued = 0;
                for (channels, who) in &groups {
                    queued += deliver(
                        &tx,
                        &ctx,
                        plan,
                        &ev,
                        None,
                        &template,
                        channels,
                        who,
                        "non-répondants",
                        Priority::Crisis,
                        &ev.note,
                    )
                    .map_err(StoreError::from)?;
                }
                let actor = ctx.actor.as_deref().unwrap_or(journal::DAEMON_AUTHOR);
                remind::insert(&tx, id, ctx.now, actor, people, queued)
                    .map_err(StoreError::from)?;
                let names: Vec<&str> = groups
                    .values()
                    .flatten()
                    .map(|p| p.name.as_str())
                    .collect();
                journal::append(
                    &tx,
                    id,
                    ctx.now,
                    journal::kind::REMINDED,
                    actor,
                    &format!(
                        "Relance des non-répondants : {} ({}).",
                        count(people as u64, "personne relancée", "personnes relancées"),
                        names.join(", ")
                    ),
                    None,
                    Some(&serde_json::json!({
                        "people": people,
                        "deliveries": queued,
                        "recipients": groups.values().flatten().map(|p| p.id.as_str()).collect::<Vec<_>>(),
                    })),
                )
                .map_err(StoreError::from)?;
                tracing::info!(event = id, people, queued, "non-responders re-notified");
                Ok(Reminded { people, queued })
            })();
            if let Ok(r) = &out {
                if r.people > 0 {
                    ctx.audit(&tx, "remind", &format!("event {id} {} people", r.people))?;
                }
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}
