//! Escalation timers (SPEC §7): on each tick, an event whose timer is
//! due is acknowledged (quorum met), moves to its next tier or round, or is
//! exhausted (and the plan's owners alerted).

use std::collections::HashSet;

use rusqlite::Connection;

use super::fanout::{deliver, notify_tier, open_step};
use super::journal;
use super::render::Builtin;
use super::{Ctx, EngineError, plan_of};
use crate::config::{ConfigSet, Plan, Scenario};
use crate::schedule::oncall;
use crate::store::Store;
use crate::store::events::{self as q, EventRow, EventState};
use crate::store::outbox::Priority;

/// Advances every escalation timer that is due. Returns how many events
/// moved.
pub async fn tick(store: &Store, ctx: Ctx) -> Result<usize, EngineError> {
    let now = ctx.now;
    let due = store.call(move |c| q::due_events(c, now)).await?;
    let mut moved = 0;
    for ev in due {
        let ctx = ctx.clone();
        let r = store
            .call(move |c| {
                let tx = c.transaction()?;
                let out = advance(&tx, &ctx, ev.id);
                if out.is_ok() {
                    tx.commit()?;
                }
                Ok(out)
            })
            .await?;
        match r {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(event = ev.id, error = %e, "cannot advance the escalation"),
        }
    }
    Ok(moved)
}

/// Where an event stands against its quorum (SPEC §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quorum {
    /// Distinct recipients of the event (any step) whose latest response
    /// is one of the scenario's `ack` responses.
    pub acks: u32,
    /// The quorum of the tier in progress (the last tier when the plan now
    /// has fewer); `None` when the scenario has no escalation.
    pub needed: Option<u32>,
}

impl Quorum {
    /// The quorum is reached: the event is acknowledged.
    pub fn met(&self) -> bool {
        self.needed.is_some_and(|n| self.acks >= n)
    }
}

/// The one count of an event's quorum: used to acknowledge it (on a
/// response, on a timer) and shown by the API and the pages.
pub fn quorum(c: &Connection, ev: &EventRow, scenario: &Scenario) -> rusqlite::Result<Quorum> {
    let acks: HashSet<&str> = scenario.ack.iter().map(|a| a.as_str()).collect();
    let count = q::latest_responses(c, ev.id)?
        .values()
        .filter(|r| acks.contains(r.as_str()))
        .count() as u32;
    let tiers = scenario.escalation.len();
    let needed = (tiers > 0).then(|| scenario.escalation[(ev.tier as usize).min(tiers - 1)].quorum);
    Ok(Quorum {
        acks: count,
        needed,
    })
}

/// [`quorum`] for an event whose plan may no longer be loaded (no `ack`
/// responses then, no quorum): for what shows an event.
pub fn event_quorum(c: &Connection, set: &ConfigSet, ev: &EventRow) -> rusqlite::Result<Quorum> {
    match plan_of(set, ev) {
        Ok((_, scenario)) => quorum(c, ev, scenario),
        Err(_) => Ok(Quorum::default()),
    }
}

/// One timer: quorum met → acknowledged; else the next tier, a new round,
/// or exhausted.
fn advance(c: &Connection, ctx: &Ctx, id: i64) -> Result<bool, EngineError> {
    let Some(ev) = q::get_event(c, id)? else {
        return Ok(false);
    };
    if ev.state != EventState::Active || ev.escalation_due_at.is_none_or(|d| d > ctx.now) {
        return Ok(false);
    }
    let (plan, scenario) = plan_of(&ctx.set, &ev)?;
    let counted = quorum(c, &ev, scenario)?;
    if counted.met() {
        q::set_state(c, id, EventState::Acknowledged, None, ctx.now)?;
        journal::acknowledged(
            c,
            ctx,
            ctx.author(),
            &ev,
            counted.acks,
            counted.needed.unwrap_or(0),
        )?;
        return Ok(true);
    }
    let next = ev.tier + 1;
    if (next as usize) < scenario.escalation.len() {
        notify_tier(c, ctx, plan, scenario, &ev, next, ev.round)?;
    } else if ev.round < scenario.escalation_repeat {
        notify_tier(c, ctx, plan, scenario, &ev, 0, ev.round + 1)?;
    } else {
        q::set_state(c, id, EventState::Exhausted, None, ctx.now)?;
        let owners = exhausted_alert(c, ctx, plan, &ev)?;
        journal::exhausted(c, ctx, &ev, counted.acks, counted.needed, owners)?;
        tracing::warn!(
            event = id,
            "escalation exhausted: the plan's owners are alerted"
        );
    }
    Ok(true)
}

fn exhausted_alert(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    ev: &EventRow,
) -> rusqlite::Result<usize> {
    let Some(owners) = &plan.owners else {
        tracing::error!(plan = %plan.id.value, "escalation exhausted and the plan names no owners");
        return Ok(0);
    };
    let on_call = |roster: &str| oncall::on_call(&ctx.set, roster, ctx.now);
    let today = ctx.now.with_timezone(&ctx.set.daemon.timezone).date_naive();
    let people = ctx.set.directory.select_on(owners, &on_call, today);
    let step_id = open_step(
        c,
        ctx,
        ev,
        "exhausted",
        ev.round,
        "responsables du plan",
        None,
    )?;
    deliver(
        c,
        ctx,
        plan,
        ev,
        Some(step_id),
        &Builtin::SansReponse.source(),
        &["email".to_string()],
        &people,
        "responsables du plan",
        Priority::Crisis,
        &ev.note,
    )
}
