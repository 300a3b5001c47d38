//! Fan-out (SPEC §7, §8): who a step reaches and what each recipient is
//! sent. Broadcasts, escalation tiers and the resolve notice are written
//! here as a step row and its deliveries, rendered through
//! [`super::render`]; webhook bodies are built here too.

use std::collections::{BTreeMap, HashSet};

use rusqlite::Connection;
use serde_json::json;

use super::Ctx;
use super::message::{self, Origin};
use super::render::{self, Builtin, Compiled, TemplateSource};
use crate::config::daemon::WebhookConfig;
use crate::config::plan::{Step, Tier};
use crate::config::{Plan, Professional, Scenario};
use crate::deliver::sms::segments;
use crate::schedule::oncall;
use crate::store::events::{self as q, EventRow, NewStep};
use crate::store::outbox::{self, NewDelivery, Priority};

/// Writes the row of one step of `ev` (its deliveries follow, with its
/// id): `kind` is `broadcast`, `escalation` (with its tier), `resolve` or
/// `exhausted`.
pub(super) fn open_step(
    c: &Connection,
    ctx: &Ctx,
    ev: &EventRow,
    kind: &str,
    round: u32,
    audience: &str,
    tier: Option<(u32, &Tier)>,
) -> rusqlite::Result<i64> {
    q::insert_step(
        c,
        &NewStep {
            event_id: ev.id,
            kind,
            tier: tier.map(|(i, _)| i),
            round,
            level: ev.level.as_deref(),
            audience,
            quorum: tier.map(|(_, t)| t.quorum),
            timeout_secs: tier.map(|(_, t)| t.timeout.as_std().as_secs()),
            at: ctx.now,
        },
    )
}

/// Queues the broadcasts of the event's current level.
pub(super) fn broadcasts(
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
        let step_id = open_step(c, ctx, ev, "broadcast", 0, &label(&b.step), None)?;
        let template = template_for(plan, &b.step, Builtin::Information);
        queued += deliver(
            c,
            ctx,
            plan,
            ev,
            Some(step_id),
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
pub(super) fn notify_tier(
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
    let step_id = open_step(
        c,
        ctx,
        ev,
        "escalation",
        round,
        &label(&t.step),
        Some((tier, t)),
    )?;
    let template = template_for(plan, &t.step, Builtin::Mobilisation);
    let queued = deliver(
        c,
        ctx,
        plan,
        ev,
        Some(step_id),
        &template,
        &t.step.channels_str(),
        &recipients,
        &label(&t.step),
        Priority::Crisis,
        &ev.note,
    )?;
    let due = ctx.now + t.timeout.as_chrono();
    q::set_escalation(c, ev.id, tier, round, Some(due), ctx.now)?;
    super::journal::tier_notified(
        c,
        ctx,
        ev,
        tier,
        round,
        &label(&t.step),
        recipients.len(),
        t.quorum,
        due,
    )?;
    ctx.metrics
        .tier_notifications
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    pub(super) fn channels_str(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.value.clone()).collect()
    }
}

pub(super) fn label(step: &Step) -> String {
    step.audience
        .iter()
        .map(|a| a.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn template_for(plan: &Plan, step: &Step, builtin: Builtin) -> TemplateSource {
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
    // Someone out of their season is not there today (daemon's time zone).
    let today = ctx.now.with_timezone(&set.daemon.timezone).date_naive();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in names {
        let sel = plan.audience_selector(n);
        for p in set.directory.select_on(&sel, &on_call, today) {
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
pub(super) fn deliver(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    ev: &EventRow,
    step_id: Option<i64>,
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
    let sms = &ctx.set.daemon.sms;
    // An SMS asks for an answer (reply line and link) unless it is the
    // resolve notice.
    let asks = *template != Builtin::Fin.source();
    let reply = match plan.scenario(&ev.scenario) {
        Some(s) if asks => segments::reply_for(&s.responses),
        _ => String::new(),
    };
    let sms_for = |recipient: serde_json::Value, url: &str| -> String {
        let vctx = render::context_on(&base, recipient, url);
        compiled.render_sms(&vctx, ev.exercise).unwrap_or_else(|e| {
            tracing::error!(event = ev.id, error = %e, "SMS template failed to render, using the title");
            ev.title.clone()
        })
    };
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
    let per_recipient = message::per_recipient(webhooks, channels);
    let wants_sms = per_recipient.iter().any(|ch| sms.contains_key(ch.as_str()));
    let origin = Origin {
        event_id: Some(ev.id),
        step_id,
        priority,
    };
    // The deliveries of some recipients, numbered.
    let build = |chunk: &[(&Professional, i64)]| -> Vec<NewDelivery> {
        let mut items = Vec::with_capacity(chunk.len() * per_recipient.len());
        for &(p, seq) in chunk {
            let url = format!(
                "{public}/r/{}",
                ctx.links.token(ev.id, seq, &ev.link_secret)
            );
            let r = render_for(render::recipient_json(p), &url);
            let sms_body = wants_sms.then(|| sms_for(render::recipient_json(p), &url));
            items.extend(message::routed_deliveries(
                &ctx.set.daemon,
                p,
                &per_recipient,
                &r,
                origin,
                |ch, address| {
                    webhooks
                        .get(ch)
                        .map(|w| {
                            webhook_payload(
                                ctx,
                                ev,
                                step_id,
                                priority,
                                w,
                                Some((p, address)),
                                &r,
                                &url,
                            )
                        })
                        .or_else(|| {
                            // An SMS: its text, ready to send (SPEC §14).
                            sms.get(ch).map(|s| {
                                segments::compose(
                                    sms_body.as_deref().unwrap_or(&r.text),
                                    &reply,
                                    if asks { &url } else { "" },
                                    s.max_segments as usize,
                                )
                            })
                        })
                },
            ));
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
            step_id,
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
    step_id: Option<i64>,
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
pub(super) fn resolve_notice(
    c: &Connection,
    ctx: &Ctx,
    plan: &Plan,
    ev: &EventRow,
    notified: &[q::Notified],
    note: &str,
) -> rusqlite::Result<usize> {
    let step_id = open_step(c, ctx, ev, "resolve", 0, "personnes notifiées", None)?;
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
            Some(step_id),
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
            Some(step_id),
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
