//! Events and escalation (SPEC §7): declare, change level, resolve, record
//! responses, and advance escalation timers.
//!
//! Every decision to notify is written to the outbox in the same SQLite
//! transaction as the state change it follows from: the deliveries of a
//! declaration are committed with the event, the next tier's deliveries
//! with the timer that moved. This module never sends anything; the
//! outbox worker ([`crate::deliver`]) does.
//!
//! Decisions made where SPEC is silent:
//! - An event without `key` uses the empty key: declaring the same
//!   scenario again updates the unresolved event of the same kind (a level
//!   change); an exercise and a real event are never the same event.
//! - A scenario with levels declared without `level` starts at its first
//!   level; an update without `level` keeps the event's level.
//! - Quorum counts the distinct recipients of the event (any step) whose
//!   latest response is one of the scenario's `ack` responses, against the
//!   quorum of the tier in progress. An exhausted event that later reaches
//!   the quorum becomes acknowledged.
//! - The "exhausted" alert goes to the plan's owners by e-mail.

pub mod links;
pub mod render;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use crate::config::daemon::WebhookConfig;
use crate::config::plan::Step;
use crate::config::{ConfigSet, Plan, Professional, Scenario, Selector};
use crate::schedule::oncall;
use crate::store::events::{self as q, EventRow, EventState, NewEvent, NewStep};
use crate::store::outbox::{self, NewDelivery, Priority};
use crate::store::{Store, StoreError};
use links::{LinkClaim, LinkSigner};
use render::{Builtin, Compiled, TemplateSource};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: no such event, scenario or link.
    #[error("{0}")]
    NotFound(String),
    /// 410: the event is resolved.
    #[error("{0}")]
    Gone(String),
    /// 422: a value that the plan does not allow.
    #[error("{0}")]
    Invalid(String),
    /// 409: the request does not fit the event's state.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an event operation needs: the configuration in use, the link
/// signer, and the instant (taken once per operation).
#[derive(Clone)]
pub struct Ctx {
    pub set: Arc<ConfigSet>,
    pub links: LinkSigner,
    pub now: DateTime<Utc>,
    /// The outbox, when a declaration may claim its deliveries itself.
    pub handoff: Option<crate::deliver::Handoff>,
    /// Who asks (an operator, `token:NAME`): declarations, level changes
    /// and resolutions are written to the audit log in their own
    /// transaction. `None` for what the daemon does by itself.
    pub actor: Option<String>,
}

impl Ctx {
    /// The same operation, on behalf of `actor` (audited).
    pub fn by(mut self, actor: impl Into<String>) -> Ctx {
        self.actor = Some(actor.into());
        self
    }

    /// The audit log row of this operation, in the caller's transaction.
    fn audit(&self, c: &Connection, action: &str, detail: &str) -> rusqlite::Result<()> {
        match &self.actor {
            Some(actor) => crate::store::audit_row(c, self.now, actor, action, detail),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    pub scenario: String,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub exercise: bool,
    #[serde(default)]
    pub key: Option<String>,
    /// Allows a re-declaration to lower the running event's level.
    #[serde(default)]
    pub downgrade: bool,
}

#[derive(Clone, Debug)]
pub struct Declared {
    pub event_id: i64,
    /// An unresolved event with the same scenario, key and exercise flag
    /// existed.
    pub updated: bool,
    /// The level changed (and the new level's broadcasts were queued).
    pub level_changed: bool,
    /// Deliveries queued (not counting skipped ones).
    pub queued: usize,
    /// The event as committed.
    pub event: EventRow,
    /// Its deliveries by state as committed (after the first claim: what
    /// left at once is `sending`).
    pub by_state: Vec<(String, i64)>,
    /// The outbox was handed the first deliveries (and told what is left):
    /// no need to wake it.
    pub handed_over: bool,
    /// Unresolved events of the same scenario of the other kind (the
    /// exercises beside a real event, or the real events beside an
    /// exercise), oldest first: never merged, always said.
    pub beside: Vec<EventRow>,
}

const MAX_NOTE: usize = 4000;

/// Escalation tiers notified since start, every event together (for
/// `/metrics`).
pub static TIER_NOTIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
    let result = store
        .call(move |c| {
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
                    let level = match &asked {
                        Some(l) => Some(l.clone()),
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
                        let level = level.as_deref().unwrap_or_default();
                        q::set_level(&tx, ev.id, level, req.note.as_deref(), ctx.now)?;
                        let ev = q::get_event(&tx, ev.id)?.expect("exists");
                        (broadcasts(&tx, &ctx, plan, scenario, &ev)?, ev)
                    } else {
                        (0, ev)
                    };
                    Declared {
                        event_id: ev.id,
                        updated: true,
                        level_changed,
                        queued,
                        event: ev,
                        by_state: Vec::new(),
                        handed_over: false,
                        beside: Vec::new(),
                    }
                }
                None => {
                    // A new event starts at the level asked for, else the
                    // scenario's first.
                    let level = asked.or_else(|| scenario.levels.first().map(|l| l.value.clone()));
                    let secret = links::new_event_secret();
                    let id = q::insert_event(
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
                    let ev = q::get_event(&tx, id)?.expect("just inserted");
                    let mut queued = broadcasts(&tx, &ctx, plan, scenario, &ev)?;
                    queued += notify_tier(&tx, &ctx, plan, scenario, &ev, 0, 0)?;
                    Declared {
                        event_id: id,
                        updated: false,
                        level_changed: false,
                        queued,
                        // Tier 0's timer, as set by notify_tier.
                        event: q::get_event(&tx, id)?.expect("just inserted"),
                        by_state: Vec::new(),
                        handed_over: false,
                        beside: Vec::new(),
                    }
                }
            };
            let mut out = out;
            out.beside = q::unresolved_of_kind(&tx, &req.scenario, !req.exercise)?;
            // The outbox's next claim, made here: the first message leaves
            // without waiting for another transaction. Handed over right
            // after the commit, on this thread, whether or not the caller
            // still waits for the answer.
            let claimed = match &ctx.handoff {
                Some(h) if out.queued > 0 => Some((h, h.claim(&tx, ctx.now)?)),
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
            tx.commit()?;
            if let Some((h, claimed)) = claimed {
                h.hand_over(claimed);
                out.handed_over = true;
            }
            Ok(Ok(out))
        })
        .await??;
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
            "no plan in force today has a scenario `{id}` (scenarios: {})",
            known.join(", ")
        )
    })
}

fn checked_level(scenario: &Scenario, level: Option<&str>) -> Result<Option<String>, EngineError> {
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
            "unknown level `{l}` for scenario `{}` (levels: {})",
            scenario.id.value,
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
                let ev = q::get_event(&tx, id)?.ok_or_else(|| not_found(id))?;
                if ev.state == EventState::Resolved {
                    return Err(EngineError::Conflict(format!("event {id} is resolved")));
                }
                let (plan, scenario) = plan_of(&ctx.set, &ev)?;
                let level = checked_level(scenario, Some(&level))?.unwrap_or_default();
                if ev.level.as_deref() == Some(level.as_str()) {
                    return Ok(Declared {
                        event_id: id,
                        updated: true,
                        level_changed: false,
                        queued: 0,
                        event: ev,
                        by_state: Vec::new(),
                        handed_over: false,
                        beside: Vec::new(),
                    });
                }
                q::set_level(&tx, id, &level, None, ctx.now).map_err(StoreError::from)?;
                let ev = q::get_event(&tx, id)
                    .map_err(StoreError::from)?
                    .expect("exists");
                let queued =
                    broadcasts(&tx, &ctx, plan, scenario, &ev).map_err(StoreError::from)?;
                Ok(Declared {
                    event_id: id,
                    updated: true,
                    level_changed: true,
                    queued,
                    event: ev,
                    by_state: Vec::new(),
                    handed_over: false,
                    beside: Vec::new(),
                })
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
                let ev = q::get_event(&tx, id)?.ok_or_else(|| not_found(id))?;
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
                if scenario.notify_on_resolve && !notified.is_empty() {
                    let ev = q::get_event(&tx, id)
                        .map_err(StoreError::from)?
                        .expect("exists");
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

fn not_found(id: i64) -> EngineError {
    EngineError::NotFound(format!("no event {id}"))
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::from(e))
    }
}

/// The plan that governs an event: the version recorded at declaration if
/// it is still loaded, else the version in force with that scenario.
pub fn plan_of<'a>(
    set: &'a ConfigSet,
    ev: &EventRow,
) -> Result<(&'a Plan, &'a Scenario), EngineError> {
    let exact = set
        .plans
        .iter()
        .find(|p| p.id.value == ev.plan_id && p.version.value.0 == ev.plan_version);
    let plan = exact
        .filter(|p| p.scenario(&ev.scenario).is_some())
        .or_else(|| {
            set.plans
                .iter()
                .find(|p| p.id.value == ev.plan_id && p.scenario(&ev.scenario).is_some())
        })
        .or_else(|| {
            set.plans
                .iter()
                .find(|p| p.scenario(&ev.scenario).is_some())
        })
        .ok_or_else(|| {
            EngineError::NotFound(format!(
                "the plan of event {} (`{}` {}) and its scenario `{}` are no longer loaded",
                ev.id, ev.plan_id, ev.plan_version, ev.scenario
            ))
        })?;
    Ok((plan, plan.scenario(&ev.scenario).expect("filtered")))
}

/// Queues the broadcasts of the event's current level.
fn broadcasts(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    scenario: &Scenario,
    ev: &EventRow,
) -> rusqlite::Result<usize> {
    let mut queued = 0;
    for b in &scenario.broadcasts {
        let applies = b.levels.is_empty()
            || ev
                .level
                .as_deref()
                .is_some_and(|l| b.levels.iter().any(|bl| bl.value == l));
        if !applies {
            continue;
        }
        let recipients = audience(ctx, plan, &b.step.audience, None);
        let step_id = q::insert_step(
            c,
            &NewStep {
                event_id: ev.id,
                kind: "broadcast",
                tier: None,
                round: 0,
                level: ev.level.as_deref(),
                audience: &label(&b.step),
                quorum: None,
                timeout_secs: None,
                at: ctx.now,
            },
        )?;
        let template = template_for(plan, &b.step, Builtin::Information);
        queued += deliver(
            c,
            ctx,
            plan,
            ev,
            step_id,
            &template,
            &b.step.channels_str(),
            &recipients,
            &label(&b.step),
            Priority::Broadcast,
            &ev.note,
        )?;
    }
    Ok(queued)
}

/// Notifies escalation tier `tier` in round `round`, and sets the timer.
fn notify_tier(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    scenario: &Scenario,
    ev: &EventRow,
    tier: u32,
    round: u32,
) -> rusqlite::Result<usize> {
    let Some(t) = scenario.escalation.get(tier as usize) else {
        q::set_escalation(c, ev.id, tier, round, None, ctx.now)?;
        return Ok(0);
    };
    // On a restart of the chain, only those who have not answered.
    let answered: Option<HashSet<String>> = if round > 0 {
        Some(q::latest_responses(c, ev.id)?.into_keys().collect())
    } else {
        None
    };
    let recipients = audience(ctx, plan, &t.step.audience, answered.as_ref());
    let step_id = q::insert_step(
        c,
        &NewStep {
            event_id: ev.id,
            kind: "escalation",
            tier: Some(tier),
            round,
            level: ev.level.as_deref(),
            audience: &label(&t.step),
            quorum: Some(t.quorum),
            timeout_secs: Some(t.timeout.as_std().as_secs()),
            at: ctx.now,
        },
    )?;
    let template = template_for(plan, &t.step, Builtin::Mobilisation);
    let queued = deliver(
        c,
        ctx,
        plan,
        ev,
        step_id,
        &template,
        &t.step.channels_str(),
        &recipients,
        &label(&t.step),
        Priority::Crisis,
        &ev.note,
    )?;
    q::set_escalation(
        c,
        ev.id,
        tier,
        round,
        Some(ctx.now + t.timeout.as_chrono()),
        ctx.now,
    )?;
    TIER_NOTIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        event = ev.id,
        tier,
        round,
        recipients = recipients.len(),
        "escalation tier notified"
    );
    Ok(queued)
}

impl Step {
    fn channels_str(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.value.clone()).collect()
    }
}

fn label(step: &Step) -> String {
    step.audience
        .iter()
        .map(|a| a.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn template_for(plan: &Plan, step: &Step, builtin: Builtin) -> TemplateSource {
    step.template
        .as_ref()
        .and_then(|t| plan.templates.get(&t.value))
        .map(TemplateSource::from)
        .unwrap_or_else(|| builtin.source())
}

/// The active professionals named by a step's audiences (plan audiences,
/// else directory groups), each once, in directory order; minus `exclude`.
pub fn audience<'a>(
    ctx: &'a Ctx,
    plan: &Plan,
    names: &[crate::config::Located<String>],
    exclude: Option<&HashSet<String>>,
) -> Vec<&'a Professional> {
    let set = &ctx.set;
    let on_call = |roster: &str| oncall::on_call(set, roster, ctx.now);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in names {
        let sel = match plan.audiences.get(&n.value) {
            Some((_, s)) => s.clone(),
            None => Selector::of_groups(vec![n.clone()], n.loc.clone()),
        };
        for p in set.directory.select(&sel, &on_call) {
            if exclude.is_some_and(|x| x.contains(&p.id)) {
                continue;
            }
            if seen.insert(p.id.clone()) {
                out.push(p);
            }
        }
    }
    out
}

/// Recipients rendered and written per chunk by [`deliver`].
const CHUNK: usize = 256;
/// From this many recipients on, a step's messages are rendered on a second
/// thread while the first writes them.
const PARALLEL_RENDER: usize = 2 * CHUNK;

/// Writes the deliveries of one step: for each recipient, one per channel
/// (skipped when the contact is missing); for a per-step webhook, one for
/// the whole step. Returns how many are queued.
#[allow(clippy::too_many_arguments)]
fn deliver(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    ev: &EventRow,
    step_id: i64,
    template: &TemplateSource,
    channels: &[String],
    recipients: &[&Professional],
    audience_label: &str,
    priority: Priority,
    note: &str,
) -> rusqlite::Result<usize> {
    let compiled = Compiled::cached(template).or_else(|e| {
        tracing::error!(event = ev.id, error = %e, "template does not compile, using the built-in one");
        Compiled::cached(&Builtin::Mobilisation.source())
    });
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "built-in template failed");
            return Ok(0);
        }
    };
    let base = crate::config::templates::json_value(render::event_json(&ctx.set, plan, ev, note));
    let public = &ctx.set.daemon.public_url;
    let webhooks = &ctx.set.daemon.webhooks;
    let render_for = |recipient: serde_json::Value, url: &str| {
        let vctx = render::context_on(&base, recipient, url);
        compiled.render(&vctx, ev.exercise).unwrap_or_else(|e| {
            tracing::error!(event = ev.id, error = %e, "template failed to render, using the built-in one");
            Compiled::cached(&Builtin::Information.source())
                .and_then(|b| b.render(&vctx, ev.exercise))
                .unwrap_or(render::Rendered { subject: ev.title.clone(), text: ev.title.clone(), html: None })
        })
    };
    let mut items = Vec::new();
    let mut queued = 0;
    let per_recipient: Vec<&String> = channels
        .iter()
        .filter(|ch| {
            ch.as_str() == "email" || webhooks.get(ch.as_str()).is_none_or(|w| w.per_recipient)
        })
        .collect();
    // The deliveries of some recipients, numbered.
    let build = |chunk: &[(&Professional, i64)]| -> Vec<NewDelivery> {
        let mut items = Vec::with_capacity(chunk.len() * per_recipient.len());
        for &(p, seq) in chunk {
            let url = format!(
                "{public}/r/{}",
                ctx.links.token(ev.id, seq, &ev.link_secret)
            );
            let r = render_for(render::recipient_json(p), &url);
            for ch in &per_recipient {
                let (address, skipped) = match p.contact_for(ch) {
                    Ok(a) => (Some(a), None),
                    Err(why) => (None, Some(why.to_string())),
                };
                let payload = webhooks.get(ch.as_str()).map(|w| {
                    webhook_payload(
                        ctx,
                        ev,
                        step_id,
                        priority,
                        w,
                        Some((p, address.as_deref())),
                        &r,
                        &url,
                    )
                });
                items.push(NewDelivery {
                    event_id: Some(ev.id),
                    step_id: Some(step_id),
                    recipient_id: Some(p.id.clone()),
                    recipient_name: p.name.clone(),
                    channel: ch.to_string(),
                    address,
                    priority,
                    skipped,
                    subject: r.subject.clone(),
                    body_text: r.text.clone(),
                    body_html: r.html.clone(),
                    payload,
                });
            }
        }
        items
    };
    if !per_recipient.is_empty() {
        let ids: Vec<(&str, &str)> = recipients
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        let seqs = q::RecipientSeqs::new(ev.id).get_all(c, &ids)?;
        let numbered: Vec<(&Professional, i64)> = recipients.iter().copied().zip(seqs).collect();
        // Rendered and written on this thread, chunk by chunk.
        let here = || -> rusqlite::Result<usize> {
            let mut queued = 0;
            for chunk in numbered.chunks(CHUNK) {
                queued += outbox::insert(c, &build(chunk), ctx.now)?;
            }
            Ok(queued)
        };
        if numbered.len() < PARALLEL_RENDER {
            queued += here()?;
        } else {
            // A big step: rendered on a second thread while this one
            // writes, a few chunks ahead (a step to 50 000 recipients never
            // holds 50 000 rendered messages in memory).
            queued += std::thread::scope(|s| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<NewDelivery>>(4);
                let build = &build;
                let numbered = &numbered;
                let renderer = std::thread::Builder::new()
                    .name("vigie-render".into())
                    .spawn_scoped(s, move || {
                        for chunk in numbered.chunks(CHUNK) {
                            if tx.send(build(chunk)).is_err() {
                                return;
                            }
                        }
                    });
                if let Err(e) = renderer {
                    tracing::warn!(error = %e, "cannot start a rendering thread: rendering here");
                    return here();
                }
                let mut queued = 0;
                // (A panic while rendering ends this loop early; the scope
                // then panics, and the transaction is rolled back.)
                for items in rx {
                    queued += outbox::insert(c, &items, ctx.now)?;
                }
                Ok::<_, rusqlite::Error>(queued)
            })?;
        }
    }
    for ch in channels {
        let Some(w) = webhooks.get(ch.as_str()).filter(|w| !w.per_recipient) else {
            continue;
        };
        let url = format!("{public}/");
        let r = render_for(
            json!({"name": audience_label, "profession": "", "commune": ""}),
            &url,
        );
        items.push(NewDelivery {
            event_id: Some(ev.id),
            step_id: Some(step_id),
            recipient_id: None,
            recipient_name: audience_label.to_string(),
            channel: ch.clone(),
            address: None,
            priority,
            skipped: None,
            subject: r.subject.clone(),
            body_text: r.text.clone(),
            body_html: None,
            payload: Some(webhook_payload(
                ctx, ev, step_id, priority, w, None, &r, &url,
            )),
        });
    }
    Ok(queued + outbox::insert(c, &items, ctx.now)?)
}

/// The JSON body of a webhook call (SPEC §8): the event, the step, the
/// recipient when per recipient, the rendered text and the response URL.
#[allow(clippy::too_many_arguments)]
fn webhook_payload(
    ctx: &Ctx,
    ev: &EventRow,
    step_id: i64,
    priority: Priority,
    _w: &WebhookConfig,
    recipient: Option<(&Professional, Option<&str>)>,
    r: &render::Rendered,
    url: &str,
) -> String {
    let mut v = json!({
        "cpts": ctx.set.daemon.name,
        "event": {
            "id": ev.id.to_string(),
            "scenario": ev.scenario,
            "title": ev.title,
            "level": ev.level,
            "note": ev.note,
            "exercise": ev.exercise,
            "state": ev.state.as_str(),
            "declared_at": crate::store::ts(ev.declared_at),
            "plan": {"id": ev.plan_id, "version": ev.plan_version},
        },
        "step": {"id": step_id, "priority": match priority { Priority::Crisis => "crisis", Priority::Broadcast => "broadcast", Priority::Reminder => "reminder" }},
        "subject": r.subject,
        "text": r.text,
        "response_url": url,
    });
    if let Some((p, phone)) = recipient {
        v["recipient"] = json!({"id": p.id, "name": p.name, "phone": phone, "profession": p.profession, "commune": p.commune});
    }
    v.to_string()
}

/// The resolve notice: each person notified, on the channels they were
/// notified on; each per-step webhook once.
fn resolve_notice(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    ev: &EventRow,
    notified: &[q::Notified],
    note: &str,
) -> rusqlite::Result<usize> {
    let step_id = q::insert_step(
        c,
        &NewStep {
            event_id: ev.id,
            kind: "resolve",
            tier: None,
            round: 0,
            level: ev.level.as_deref(),
            audience: "personnes notifiées",
            quorum: None,
            timeout_secs: None,
            at: ctx.now,
        },
    )?;
    let template = Builtin::Fin.source();
    let mut by_person: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut per_step: Vec<String> = Vec::new();
    for n in notified {
        let channel = &n.channel;
        match &n.recipient_id {
            Some(id) => {
                let e = by_person.entry(id.as_str()).or_insert_with(|| {
                    order.push(id.as_str());
                    Vec::new()
                });
                if !e.contains(channel) {
                    e.push(channel.clone());
                }
            }
            None => {
                if !per_step.contains(channel) {
                    per_step.push(channel.clone());
                }
            }
        }
    }
    let mut queued = 0;
    if !per_step.is_empty() {
        queued += deliver(
            c,
            ctx,
            plan,
            ev,
            step_id,
            &template,
            &per_step,
            &[],
            "personnes notifiées",
            Priority::Broadcast,
            note,
        )?;
    }
    // Group people by their set of channels, so each gets each channel once.
    let mut groups: BTreeMap<Vec<String>, Vec<&Professional>> = BTreeMap::new();
    for id in order {
        if let Some(p) = ctx.set.directory.get(id) {
            groups.entry(by_person[id].clone()).or_default().push(p);
        }
    }
    for (channels, people) in groups {
        queued += deliver(
            c,
            ctx,
            plan,
            ev,
            step_id,
            &template,
            &channels,
            &people,
            "personnes notifiées",
            Priority::Broadcast,
            note,
        )?;
    }
    Ok(queued)
}

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

fn ack_count(c: &Connection, ev: &EventRow, scenario: &Scenario) -> rusqlite::Result<u32> {
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
                let ev = &view.event;
                if matches!(ev.state, EventState::Active | EventState::Exhausted) {
                    let (_, scenario) = plan_of(&ctx.set, ev)?;
                    let tier = (ev.tier as usize).min(scenario.escalation.len().saturating_sub(1));
                    let quorum = scenario.escalation.get(tier).map(|t| t.quorum).unwrap_or(1);
                    if !scenario.escalation.is_empty() && ack_count(&tx, ev, scenario)? >= quorum {
                        q::set_state(&tx, event_id, EventState::Acknowledged, None, ctx.now)?;
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

/// One step of a preview: who would receive what, on which channel.
#[derive(Debug)]
pub struct PreviewStep {
    pub title: String,
    pub channels: Vec<String>,
    /// (name, "profession, commune").
    pub recipients: Vec<(String, String)>,
    /// (channel, people lacking the contact it needs).
    pub skipped: Vec<(String, Vec<String>)>,
    pub first: Option<(String, render::Rendered)>,
}

/// `vigie plan preview`: the broadcasts of `level` and every escalation
/// tier, rendered for their first recipient, sending nothing.
pub fn preview(
    ctx: &Ctx,
    plan: &Plan,
    scenario: &Scenario,
    level: Option<&str>,
    exercise: bool,
) -> Result<Vec<PreviewStep>, EngineError> {
    let level = checked_level(scenario, level)?;
    let ev = EventRow {
        id: 0,
        scenario: scenario.id.value.clone(),
        dedup_key: String::new(),
        title: scenario.title.clone(),
        level: level.clone(),
        note: String::new(),
        exercise,
        state: EventState::Active,
        plan_id: plan.id.value.clone(),
        plan_version: plan.version.value.0.clone(),
        plan_sha256: plan.sha256.clone(),
        declared_at: ctx.now,
        updated_at: ctx.now,
        acknowledged_at: None,
        exhausted_at: None,
        resolved_at: None,
        resolve_note: None,
        tier: 0,
        round: 0,
        escalation_due_at: None,
        link_secret: String::new(),
    };
    let mut steps: Vec<(String, &Step, Builtin)> = Vec::new();
    for b in &scenario.broadcasts {
        let applies = b.levels.is_empty()
            || level
                .as_deref()
                .is_some_and(|l| b.levels.iter().any(|bl| bl.value == l));
        if applies {
            steps.push((
                format!("Broadcast → {}", label(&b.step)),
                &b.step,
                Builtin::Information,
            ));
        }
    }
    for (i, t) in scenario.escalation.iter().enumerate() {
        steps.push((
            format!(
                "Tier {i} → {} (quorum {}, then after {} the next tier)",
                label(&t.step),
                t.quorum,
                t.timeout
            ),
            &t.step,
            Builtin::Mobilisation,
        ));
    }
    let base = render::event_json(&ctx.set, plan, &ev, "");
    let url = format!("{}/r/<lien-personnel>", ctx.set.daemon.public_url);
    let mut out = Vec::new();
    for (title, step, builtin) in steps {
        let people = audience(ctx, plan, &step.audience, None);
        let channels = step.channels_str();
        let per_step_hooks: Vec<&String> = channels
            .iter()
            .filter(|c| {
                ctx.set
                    .daemon
                    .webhooks
                    .get(c.as_str())
                    .is_some_and(|w| !w.per_recipient)
            })
            .collect();
        let mut skipped = Vec::new();
        for ch in &channels {
            let lacking: Vec<String> = if ch == "email" {
                people
                    .iter()
                    .filter(|p| p.email.is_none())
                    .map(|p| p.name.clone())
                    .collect()
            } else if per_step_hooks.contains(&ch) {
                Vec::new()
            } else {
                people
                    .iter()
                    .filter(|p| p.phone.is_none())
                    .map(|p| p.name.clone())
                    .collect()
            };
            if !lacking.is_empty() {
                skipped.push((ch.clone(), lacking));
            }
        }
        let compiled =
            Compiled::new(&template_for(plan, step, builtin)).map_err(EngineError::Invalid)?;
        let first = match people.first() {
            Some(p) => {
                let vctx = render::context(&base, render::recipient_json(p), &url);
                Some((
                    p.name.clone(),
                    compiled
                        .render(&vctx, exercise)
                        .map_err(EngineError::Invalid)?,
                ))
            }
            None if !per_step_hooks.is_empty() => {
                let vctx = render::context(
                    &base,
                    json!({"name": label(step), "profession": "", "commune": ""}),
                    &url,
                );
                Some((
                    label(step),
                    compiled
                        .render(&vctx, exercise)
                        .map_err(EngineError::Invalid)?,
                ))
            }
            None => None,
        };
        out.push(PreviewStep {
            title,
            channels,
            recipients: people
                .iter()
                .map(|p| (p.name.clone(), format!("{}, {}", p.profession, p.commune)))
                .collect(),
            skipped,
            first,
        });
    }
    Ok(out)
}
