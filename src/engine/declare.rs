//! Declaring an event, changing its level and resolving it (SPEC §7):
//! the checks on what is asked (scenario, level, note, key), the
//! transaction that writes the state change with its first deliveries, and
//! the audit row of who asked.
//!
//! With `RUST_LOG=info,vigie::timing=debug` every declaration logs where
//! its time went (`declaration timings`): waiting for the database thread,
//! the transaction's work, its commit, and when the commit ended
//! (`committed_at_us`, µs since the Unix epoch); the outbox logs each
//! send's start (`started_at_us`) and duration (`sent`, same target): from
//! the one to the other is the hand-over, the sending thread's wake-up
//! included. `bench/run` reads them for its latency breakdown. The clock
//! readings cost nothing worth measuring when the lines are off.

use std::time::{Duration, Instant};

use super::actions::add_level_actions;
use super::fanout::{broadcasts, notify_tier, resolve_notice};
use super::journal;
use super::links;
use super::{Ctx, DeclareRequest, Declared, EngineError, event_of, plan_of};
use crate::config::{ConfigSet, Scenario};
use crate::store::events::{self as q, EventState, NewEvent};
use crate::store::outbox;
use crate::store::{Store, StoreError};

/// Where one declaration's time went (see the module's documentation).
#[derive(Debug, Default, Clone, Copy)]
struct Timings {
    /// From the call to the start of the transaction on the database
    /// thread.
    queued: Duration,
    /// The transaction's statements, up to the commit.
    work: Duration,
    commit: Duration,
    /// When the commit ended (µs since the Unix epoch).
    committed_at_us: u64,
}

const MAX_NOTE: usize = 4000;

/// Declares an event, or updates the unresolved one with the same scenario,
/// key and exercise flag.
///
/// An exercise and a real event never merge (a real alert must never go
/// out as `[EXERCICE]`, nor a drill move a real event's level); the other
/// kind running beside is reported in [`Declared::beside`]. Re-declaring
/// without a level keeps the running event's level; re-declaring at a lower
/// level is refused (409) unless `downgrade` is set.
pub async fn declare(
    store: &Store,
    ctx: Ctx,
    req: DeclareRequest,
) -> Result<Declared, EngineError> {
    let tz = ctx.set.daemon.timezone;
    let today = ctx.now.with_timezone(&tz).date_naive();
    let plan = ctx
        .set
        .plans_in_force(today)
        .into_iter()
        .find(|p| p.scenario(&req.scenario).is_some())
        .ok_or_else(|| unknown_scenario(&ctx.set, today, &req.scenario))?;
    let scenario = plan.scenario(&req.scenario).expect("found above");
    // The level asked for, checked; `None` when not given.
    let asked = match req.level.as_deref() {
        Some(l) => checked_level(scenario, Some(l))?,
        None => None,
    };
    let note = req.note.clone().unwrap_or_default();
    if note.chars().count() > MAX_NOTE {
        return Err(EngineError::Invalid(format!(
            "the note is longer than {MAX_NOTE} characters"
        )));
    }
    let key = req.key.clone().unwrap_or_default();
    if key.chars().count() > 200 {
        return Err(EngineError::Invalid(
            "the key is longer than 200 characters".into(),
        ));
    }
    let (plan_id, plan_version) = (plan.id.value.clone(), plan.version.value.0.clone());
    let called = Instant::now();
    let (result, timings) = store
        .call(move |c| {
            let started = Instant::now();
            let mut timings = Timings {
                queued: started - called,
                ..Timings::default()
            };
            let tx = c.transaction()?;
            let plan = ctx
                .set
                .plans
                .iter()
                .find(|p| p.id.value == plan_id && p.version.value.0 == plan_version)
                .expect("plan of the snapshot");
            let scenario = plan.scenario(&req.scenario).expect("checked");
            let existing = q::unresolved_event(&tx, &req.scenario, &key, req.exercise)?;
            let out = match existing {
                Some(ev) => {
                    // The event's own plan governs it (the version it was
                    // declared under, while loaded), as for a level change:
                    // after a reload that renamed or reordered the levels,
                    // the asked level is checked and ranked against the
                    // event's, not today's.
                    let (plan, scenario) = match plan_of(&ctx.set, &ev) {
                        Ok(p) => p,
                        Err(e) => return Ok(Err(e)),
                    };
                    let level = match &req.level {
                        Some(l) => match checked_level(scenario, Some(l)) {
                            Ok(l) => l,
                            Err(e) => return Ok(Err(e)),
                        },
                        // No level: the event stays where it is.
                        None => ev.level.clone(),
                    };
                    if !req.downgrade && is_lower(scenario, level.as_deref(), ev.level.as_deref()) {
                        return Ok(Err(EngineError::Conflict(format!(
                            "event {} of `{}` is at level `{}`: declaring `{}` would lower it; \
                             send \"downgrade\": true (vigie declare --downgrade) to lower it, \
                             or change its level explicitly",
                            ev.id,
                            req.scenario,
                            ev.level.as_deref().unwrap_or_default(),
                            level.as_deref().unwrap_or_default()
                        ))));
                    }
                    let level_changed = level.is_some() && ev.level != level;
                    let (queued, ev) = if level_changed {
                        let from = ev.level.clone();
                        let level = level.as_deref().unwrap_or_default();
                        q::set_level(&tx, ev.id, level, req.note.as_deref(), ctx.now)?;
                        let ev = q::get_event(&tx, ev.id)?.expect("exists");
                        journal::level_changed(
                            &tx,
                            &ctx,
                            &ev,
                            from.as_deref(),
                            true,
                            req.note.as_deref(),
                        )?;
                        add_level_actions(&tx, scenario, &ev, ctx.now)?;
                        (broadcasts(&tx, &ctx, plan, scenario, &ev)?, ev)
                    } else {
                        journal::redeclared(&tx, &ctx, &ev, req.note.as_deref())?;
                        (0, ev)
                    };
                    Declared::of(ev, true, level_changed, queued)
                }
                None => {
                    // A new event starts at the level asked for, else the
                    // scenario's first.
                    let level = asked.or_else(|| scenario.levels.first().map(|l| l.value.clone()));
                    let secret = links::new_event_secret();
                    let ev = q::insert_event(
                        &tx,
                        &NewEvent {
                            scenario: &req.scenario,
                            dedup_key: &key,
                            title: &scenario.title,
                            level: level.as_deref(),
                            note: &note,
                            exercise: req.exercise,
                            plan_id: &plan.id.value,
                            plan_version: &plan.version.value.0,
                            plan_sha256: &plan.sha256,
                            at: ctx.now,
                            link_secret: &secret,
                        },
                    )?;
                    journal::declared(&tx, &ctx, &ev)?;
                    add_level_actions(&tx, scenario, &ev, ctx.now)?;
                    let mut queued = broadcasts(&tx, &ctx, plan, scenario, &ev)?;
                    queued += notify_tier(&tx, &ctx, plan, scenario, &ev, 0, 0)?;
                    // With tier 0's timer, as set by notify_tier.
                    let ev = q::get_event(&tx, ev.id)?.expect("just inserted");
                    Declared::of(ev, false, false, queued)
                }
            };
            let mut out = out;
            out.beside = q::unresolved_of_kind(&tx, &req.scenario, !req.exercise)?;
            // The outbox's next claim, made here: the first message leaves
            // without waiting for another transaction. Handed over right
            // after the commit, on this thread, whether or not the caller
            // still waits for the answer.
            let hand_over = match &ctx.outbox {
                Some(o) if out.queued > 0 => Some(o.claim(&tx, ctx.now)?),
                _ => None,
            };
            out.by_state = q::deliveries_by_state(&tx, out.event_id)?;
            ctx.audit(
                &tx,
                "declare",
                &format!(
                    "event {} {}{}",
                    out.event_id,
                    req.scenario,
                    if req.exercise { " (exercice)" } else { "" }
                ),
            )?;
            let worked = Instant::now();
            timings.work = worked - started;
            tx.commit()?;
            timings.commit = worked.elapsed();
            timings.committed_at_us = crate::metrics::timing_now_us();
            if let Some(hand_over) = hand_over {
                hand_over();
                out.handed_over = true;
            }
            Ok(Ok((out, timings)))
        })
        .await??;
    tracing::debug!(
        target: "vigie::timing",
        event = result.event_id,
        queued_us = timings.queued.as_micros() as u64,
        work_us = timings.work.as_micros() as u64,
        commit_us = timings.commit.as_micros() as u64,
        committed_at_us = timings.committed_at_us,
        "declaration timings"
    );
    if !result.beside.is_empty() {
        tracing::warn!(
            event = result.event_id,
            exercise = result.event.exercise,
            beside = ?result.beside.iter().map(|e| e.id).collect::<Vec<_>>(),
            scenario = %result.event.scenario,
            "an exercise and a real event of the same scenario run side by side (kept apart)"
        );
    }
    Ok(result)
}

/// Whether `new` is a lower level than `current` in the scenario's order
/// (unknown or missing levels never count as lower).
fn is_lower(scenario: &Scenario, new: Option<&str>, current: Option<&str>) -> bool {
    let rank = |l: Option<&str>| l.and_then(|l| scenario.levels.iter().position(|x| x.value == l));
    matches!((rank(new), rank(current)), (Some(n), Some(c)) if n < c)
}

/// 404 for a scenario that no plan in force has, naming the ones it has.
fn unknown_scenario(set: &ConfigSet, today: chrono::NaiveDate, id: &str) -> EngineError {
    let known: Vec<&str> = set
        .plans_in_force(today)
        .into_iter()
        .flat_map(|p| p.scenarios.iter().map(|s| s.id.value.as_str()))
        .collect();
    EngineError::NotFound(if known.is_empty() {
        format!("no plan in force today has a scenario `{id}` (no plan is in force)")
    } else {
        format!(
            "no plan in force today has a scenario `{id}`{} (scenarios: {})",
            crate::config::diag::did_you_mean(id, known.iter().copied()),
            known.join(", ")
        )
    })
}

pub(super) fn checked_level(
    scenario: &Scenario,
    level: Option<&str>,
) -> Result<Option<String>, EngineError> {
    let levels: Vec<&str> = scenario.levels.iter().map(|l| l.as_str()).collect();
    match (level, levels.first()) {
        (None, None) => Ok(None),
        (None, Some(first)) => Ok(Some(first.to_string())),
        (Some(l), _) if levels.contains(&l) => Ok(Some(l.to_string())),
        (Some(l), None) => Err(EngineError::Invalid(format!(
            "scenario `{}` has no levels, `{l}` was given",
            scenario.id.value
        ))),
        (Some(l), Some(_)) => Err(EngineError::Invalid(format!(
            "unknown level `{l}` for scenario `{}`{} (levels: {})",
            scenario.id.value,
            crate::config::diag::did_you_mean(l, levels.iter().copied()),
            levels.join(", ")
        ))),
    }
}

/// Changes the level of an unresolved event and queues the broadcasts of
/// the new level; the escalation chain goes on as it was.
pub async fn change_level(
    store: &Store,
    ctx: Ctx,
    id: i64,
    level: String,
) -> Result<Declared, EngineError> {
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = (|| {
                let ev = event_of(&tx, id)?;
                if ev.state == EventState::Resolved {
                    return Err(EngineError::Conflict(format!("event {id} is resolved")));
                }
                let (plan, scenario) = plan_of(&ctx.set, &ev)?;
                let level = checked_level(scenario, Some(&level))?.unwrap_or_default();
                if ev.level.as_deref() == Some(level.as_str()) {
                    return Ok(Declared::of(ev, true, false, 0));
                }
                q::set_level(&tx, id, &level, None, ctx.now).map_err(StoreError::from)?;
                let from = ev.level;
                let ev = q::get_event(&tx, id)
                    .map_err(StoreError::from)?
                    .expect("exists");
                journal::level_changed(&tx, &ctx, &ev, from.as_deref(), false, None)?;
                add_level_actions(&tx, scenario, &ev, ctx.now)?;
                let queued =
                    broadcasts(&tx, &ctx, plan, scenario, &ev).map_err(StoreError::from)?;
                Ok(Declared::of(ev, true, true, queued))
            })();
            if out.is_ok() {
                ctx.audit(&tx, "level", &format!("event {id} {level}"))?;
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}

/// Resolves an event: stops the escalation, cancels unsent deliveries and,
/// if the scenario says so, tells everyone notified.
pub async fn resolve(
    store: &Store,
    ctx: Ctx,
    id: i64,
    note: Option<String>,
) -> Result<usize, EngineError> {
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = (|| {
                let ev = event_of(&tx, id)?;
                if ev.state == EventState::Resolved {
                    return Err(EngineError::Conflict(format!(
                        "event {id} is already resolved"
                    )));
                }
                let (plan, scenario) = plan_of(&ctx.set, &ev)?;
                q::set_state(&tx, id, EventState::Resolved, note.as_deref(), ctx.now)
                    .map_err(StoreError::from)?;
                let cancelled = outbox::cancel_unsent(&tx, id, "événement levé avant l'envoi")
                    .map_err(StoreError::from)?;
                let notified = q::notified(&tx, id).map_err(StoreError::from)?;
                let mut queued = 0;
                let ev = q::get_event(&tx, id)
                    .map_err(StoreError::from)?
                    .expect("exists");
                if scenario.notify_on_resolve && !notified.is_empty() {
                    queued = resolve_notice(
                        &tx,
                        &ctx,
                        plan,
                        &ev,
                        &notified,
                        note.as_deref().unwrap_or(""),
                    )
                    .map_err(StoreError::from)?;
                }
                journal::resolved(&tx, &ctx, &ev, cancelled, queued, note.as_deref())?;
                tracing::info!(event = id, cancelled, queued, "event resolved");
                Ok(queued)
            })();
            if out.is_ok() {
                ctx.audit(&tx, "resolve", &format!("event {id}"))?;
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}
