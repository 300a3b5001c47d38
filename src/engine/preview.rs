//! `vigie plan preview`: what a scenario's steps would send, to whom,
//! rendered for their first recipient, without writing or sending anything.

use serde_json::json;

use super::declare::checked_level;
use super::fanout::{audience, label, template_for};
use super::message;
use super::render::{self, Builtin, Compiled};
use super::{Ctx, EngineError};
use crate::config::plan::Step;
use crate::config::{Plan, Scenario};
use crate::store::events::{EventRow, EventState};

/// One step of a preview: who would receive what, on which channel.
#[derive(Debug)]
pub struct PreviewStep {
    pub title: String,
    /// The escalation tier (0 first), `None` for a broadcast.
    pub tier: Option<usize>,
    /// The step's audience names, as the plan writes them.
    pub audience: Vec<String>,
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
    let mut steps: Vec<(String, Option<usize>, &Step, Builtin)> = Vec::new();
    for b in &scenario.broadcasts {
        let applies = b.levels.is_empty()
            || level
                .as_deref()
                .is_some_and(|l| b.levels.iter().any(|bl| bl.value == l));
        if applies {
            steps.push((
                format!("Diffusion → {}", label(&b.step)),
                None,
                &b.step,
                Builtin::Information,
            ));
        }
    }
    let last = scenario.escalation.len().saturating_sub(1);
    for (i, t) in scenario.escalation.iter().enumerate() {
        // What follows a tier that misses its quorum in time.
        let then = match (i == last, scenario.escalation_repeat) {
            (false, _) => "le palier suivant".to_string(),
            (true, 0) => "alerte des responsables du plan".to_string(),
            (true, 1) => "de nouveau le palier 1 pour qui n'a pas répondu (une fois), puis \
                          alerte des responsables du plan"
                .to_string(),
            (true, n) => format!(
                "de nouveau le palier 1 pour qui n'a pas répondu ({n} fois), puis alerte des \
                 responsables du plan"
            ),
        };
        steps.push((
            format!(
                "Palier {} → {} (quorum {} ; faute de quorum après {} : {then})",
                i + 1,
                label(&t.step),
                t.quorum,
                crate::model::labels::duration(t.timeout.0)
            ),
            Some(i),
            &t.step,
            Builtin::Mobilisation,
        ));
    }
    let base = render::event_json(&ctx.set, plan, &ev, "");
    let url = format!("{}/r/<lien-personnel>", ctx.set.daemon.public_url);
    let mut out = Vec::new();
    for (title, tier, step, builtin) in steps {
        let people = audience(ctx, plan, &step.audience, None);
        let channels = step.channels_str();
        let per_recipient = message::per_recipient(&ctx.set.daemon.webhooks, &channels);
        let per_step_hooks: Vec<&String> = channels
            .iter()
            .filter(|c| !per_recipient.contains(c))
            .collect();
        let mut skipped = Vec::new();
        for ch in &per_recipient {
            let lacking: Vec<String> = people
                .iter()
                .filter(|p| message::lacks_contact(&ctx.set.daemon, p, ch))
                .map(|p| p.name.clone())
                .collect();
            if !lacking.is_empty() {
                skipped.push((ch.to_string(), lacking));
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
            tier,
            audience: step.audience.iter().map(|a| a.value.clone()).collect(),
            channels,
            recipients: people
                .iter()
                .map(|p| {
                    let profession = crate::model::labels::profession(&p.profession).0;
                    (p.name.clone(), format!("{profession}, {}", p.commune))
                })
                .collect(),
            skipped,
            first,
        });
    }
    Ok(out)
}
