//! Declaring from the dashboard, in two steps. The form posts to
//! `/bureau/declare`; without `confirm=oui` the answer is a confirmation
//! page that declares nothing: the scenario and level, real or exercise,
//! who would be alerted tier by tier (the engine's preview, through the
//! app: the contact rules are the engine's), and what of this scenario runs
//! already. Only that page's button, posting the same fields with
//! `confirm=oui` (and the session's CSRF token), declares.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;

use super::dashboard::{dashboard, declared_text, done, form_error};
use super::{Operator, channel_label, forbidden, step_title};
use crate::app::DeclarePreview;
use crate::engine::{DeclareRequest, EngineError};
use crate::model::labels::count;
use crate::store::events::{self as q, EventRow};
use crate::web::WebState;

#[derive(Deserialize)]
pub struct DeclareForm {
    #[serde(default)]
    csrf: String,
    /// `SCENARIO:LEVEL` (level empty for a scenario without levels); empty
    /// while the operator has not chosen.
    #[serde(default)]
    choice: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    exercise: Option<String>,
    /// `oui` from the confirmation page's button; anything else shows the
    /// confirmation page.
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn declare(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Form(f): Form<DeclareForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let (scenario, level) = f.choice.split_once(':').unwrap_or((f.choice.as_str(), ""));
    if scenario.trim().is_empty() {
        let text = "Choisissez d'abord un scénario et son niveau dans la liste.".to_string();
        let ctx = dashboard(&state, &op, Some(context! { kind => "bad", text })).await;
        let mut r = state.pages.render("bureau.html", ctx);
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    }
    let level = (!level.is_empty()).then_some(level);
    let exercise = f.exercise.is_some();
    if f.confirm.as_deref() != Some("oui") {
        return confirmation(&state, &op, &f, scenario, level).await;
    }
    let req = DeclareRequest {
        scenario: scenario.to_string(),
        level: level.map(str::to_string),
        note: (!f.note.trim().is_empty()).then(|| f.note.trim().to_string()),
        exercise,
        key: None,
        downgrade: false,
    };
    match state.declare(&op.name, req).await {
        Ok(d) => {
            let (kind, text) = declared_text(&d);
            done(&state, &op, kind, text)
        }
        Err(EngineError::Conflict(_)) => {
            let text = "Ce scénario est déjà en cours à un niveau plus élevé : une nouvelle déclaration ne baisse pas son niveau. Pour le baisser, utilisez « Changer de niveau » sur la page de l'événement.".to_string();
            let ctx = dashboard(&state, &op, Some(context! { kind => "bad", text })).await;
            let mut r = state.pages.render("bureau.html", ctx);
            *r.status_mut() = StatusCode::CONFLICT;
            r
        }
        Err(e) => form_error(&state, &op, e).await,
    }
}

/// The confirmation page: declares nothing.
async fn confirmation(
    state: &WebState,
    op: &Operator,
    f: &DeclareForm,
    scenario: &str,
    level: Option<&str>,
) -> Response {
    let exercise = f.exercise.is_some();
    let p = match state.preview(scenario, level, exercise) {
        Ok(p) => p,
        Err(e) => return form_error(state, op, e).await,
    };
    let sc = scenario.to_string();
    let running: Vec<EventRow> = state
        .store
        .call(move |c| q::list_events(c, Some("unresolved"), 200))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.scenario == sc)
        .collect();
    let set = state.config();
    state.pages.render(
        "confirm.html",
        context! {
            cpts => set.daemon.name.clone(), operator => op.name.clone(), csrf => state.sessions.csrf(&op.cookie),
            scenario => p.scenario_title.clone(), level => p.level.clone(),
            plan => format!("{} (version {})", p.plan_title, p.plan_version),
            exercise, note => f.note.trim().to_string(), choice => f.choice.clone(),
            warnings => running_warnings(&p, exercise, &running),
            steps => p.steps.iter().map(step_view).collect::<Vec<_>>(),
        },
    )
}

/// More names than this are folded under a `<details>`.
const LONG_LIST: usize = 8;

fn step_view(s: &crate::engine::PreviewStep) -> Value {
    let when = match s.tier {
        None | Some(0) => "dès le déclenchement".to_string(),
        Some(t) => {
            format!("seulement si le palier {t} n'a pas reçu assez de réponses positives à temps")
        }
    };
    let people: Vec<Value> = s
        .recipients
        .iter()
        .map(|(name, detail)| context! { name => name.clone(), detail => detail.clone() })
        .collect();
    let skipped: Vec<String> = s
        .skipped
        .iter()
        .map(|(ch, names)| {
            let lack = match ch.as_str() {
                "email" => "sans adresse e-mail".to_string(),
                "sms" => "sans numéro de téléphone".to_string(),
                other => format!("sans le contact que demande « {other} »"),
            };
            format!(
                "{} {lack} : rien ne {} sera envoyé par {} ({}).",
                count(names.len() as u64, "personne", "personnes"),
                if names.len() > 1 { "leur" } else { "lui" },
                channel_label(ch),
                names.join(", ")
            )
        })
        .collect();
    // People lacking the contact of every channel of the step.
    let unreachable: Vec<String> = if !s.channels.is_empty() && s.skipped.len() == s.channels.len()
    {
        s.skipped[0]
            .1
            .iter()
            .filter(|n| s.skipped.iter().all(|(_, l)| l.contains(n)))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    context! {
        title => step_title(s.tier, 0, &s.audience.join(", ")),
        channels => s.channels.iter().map(|c| channel_label(c)).collect::<Vec<_>>().join(", "),
        count => count(s.recipients.len() as u64, "personne", "personnes"),
        when, people, long => s.recipients.len() > LONG_LIST, skipped,
        unreachable => (!unreachable.is_empty()).then(|| format!(
            "Aucun canal de cette étape ne permet de joindre : {}.",
            unreachable.join(", ")
        )),
    }
}

/// What confirming would do beside the events of this scenario that run
/// already (the same rules the engine applies, said before, not after).
fn running_warnings(p: &DeclarePreview, exercise: bool, running: &[EventRow]) -> Vec<String> {
    let rank = |l: Option<&str>| l.and_then(|l| p.levels.iter().position(|x| x == l));
    let mut out = Vec::new();
    let kind = |ex: bool| {
        if ex {
            "Un exercice"
        } else {
            "Une alerte réelle"
        }
    };
    if let Some(same) = running
        .iter()
        .find(|e| e.exercise == exercise && e.dedup_key.is_empty())
    {
        let n = same.id;
        let at = same
            .level
            .as_deref()
            .map(|l| format!(" au niveau {l}"))
            .unwrap_or_default();
        let k = kind(exercise);
        out.push(match (rank(p.level.as_deref()), rank(same.level.as_deref())) {
            (Some(new), Some(cur)) if new < cur => format!(
                "{k} de ce scénario est déjà en cours{at} (n° {n}) : une nouvelle déclaration ne baisse pas son niveau et sera refusée. Pour le baisser, utilisez « Changer de niveau » sur la page de l'événement n° {n}."
            ),
            (Some(new), Some(cur)) if new > cur => format!(
                "{k} de ce scénario est déjà en cours{at} (n° {n}) : confirmer ne crée pas de nouvel événement ; son niveau passe à {} et seules les diffusions de ce niveau partent (l'escalade ci-dessous est déjà en cours).",
                p.level.as_deref().unwrap_or("—")
            ),
            _ => format!(
                "{k} de ce scénario est déjà en cours{at} (n° {n}) : confirmer ne crée pas de nouvel événement et ne renvoie rien."
            ),
        });
    }
    if let Some(other) = running.iter().find(|e| e.exercise != exercise) {
        out.push(if exercise {
            format!(
                "Attention : une alerte RÉELLE de ce scénario est en cours (n° {}). Cet exercice en restera séparé.",
                other.id
            )
        } else {
            format!(
                "Attention : un exercice de ce scénario est en cours (n° {}). Cette alerte est RÉELLE et restera séparée de l'exercice : ses messages ne porteront pas la mention [EXERCICE].",
                other.id
            )
        });
    }
    out
}
