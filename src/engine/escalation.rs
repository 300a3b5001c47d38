//! Escalation timers (SPEC §7): on each tick, an event whose timer is
//! due is acknowledged (quorum met), moves to its next tier or round, or is
//! exhausted (and the plan's owners alerted).

use std::collections::HashSet;

use rusqlite::Connection;

use super::fanout::{deliver, notify_tier};
use super::render::Builtin;
use super::{Ctx, EngineError, plan_of};
use crate::config::{Plan, Scenario};
use crate::schedule::oncall;
use crate::store::Store;
use crate::store::events::{self as q, EventRow, EventState, NewStep};
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

pub(super) fn ack_count(
    c: &Connection,
    ev: &EventRow,
    scenario: &Scenario,
) -> rusqlite::Result<u32> {
    let acks: HashSet<&str> = scenario.ack.iter().map(|a| a.as_str()).collect();
    Ok(q::latest_responses(c, ev.id)?
        .values()
        .filter(|r| acks.contains(r.as_str()))
        .count() as u32)
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
    let quorum = scenario
        .escalation
        .get(ev.tier as usize)
        .map(|t| t.quorum)
        .unwrap_or(1);
    if ack_count(c, &ev, scenario)? >= quorum {
        q::set_state(c, id, EventState::Acknowledged, None, ctx.now)?;
        return Ok(true);
    }
    let next = ev.tier + 1;
    if (next as usize) < scenario.escalation.len() {
        notify_tier(c, ctx, plan, scenario, &ev, next, ev.round)?;
    } else if ev.round < scenario.escalation_repeat {
        notify_tier(c, ctx, plan, scenario, &ev, 0, ev.round + 1)?;
    } else {
        q::set_state(c, id, EventState::Exhausted, None, ctx.now)?;
        exhausted_alert(c, ctx, plan, &ev)?;
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
    let people = ctx.set.directory.select(owners, &on_call);
    let step_id = q::insert_step(
        c,
        &NewStep {
            event_id: ev.id,
            kind: "exhausted",
            tier: None,
            round: ev.round,
            level: ev.level.as_deref(),
            audience: "responsables du plan",
            quorum: None,
            timeout_secs: None,
            at: ctx.now,
        },
    )?;
    deliver(
        c,
        ctx,
        plan,
        ev,
        step_id,
        &Builtin::SansReponse.source(),
        &["email".to_string()],
        &people,
        "responsables du plan",
        Priority::Crisis,
        &ev.note,
    )
}
