//! The bureau's dashboard (`GET /bureau`), its one-shot messages
//! ([`Flashes`]) and the level and resolve forms, posted from it or from
//! the event page (`from=event`: the outcome is shown there). Lowering a
//! level needs its `downgrade` box, resolving its `confirm` box. Declaring
//! is in [`super::declare`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use minijinja::{Value, context};
use serde::Deserialize;

use super::event::{event_response, event_view, load_events};
use super::{Operator, channel_label, forbidden, fr_time, profession_label};
use crate::config::ConfigSet;
use crate::engine::{self, EngineError};
use crate::model::labels::count;
use crate::store::events::{self as q, EventRow, EventState};
use crate::store::outbox;
use crate::web::WebState;
use crate::web::error::{ApiError, for_page};

// ---------------------------------------------------------------- dashboard

/// One-shot messages shown on top of the dashboard after a form, kept here
/// per session (never taken from the address: a crafted link must not make
/// an operator read "Alerte n° 5 levée").
#[derive(Default)]
pub struct Flashes {
    by_session: Mutex<HashMap<String, (Instant, Value)>>,
}

/// A message not read within this time is dropped.
const FLASH_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// At most this many messages wait (one per open session at most).
const FLASH_MAX: usize = 1000;

impl Flashes {
    /// Leaves `text` (`kind`: "ok", "warn", "bad") for the next dashboard of
    /// this session.
    pub fn put(&self, session: &str, kind: &str, text: String) {
        let mut map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (at, _)| at.elapsed() < FLASH_TTL);
        if map.len() >= FLASH_MAX {
            return;
        }
        map.insert(
            session.to_string(),
            (Instant::now(), context! { kind, text }),
        );
    }

    /// The message left for this session, once.
    pub fn take(&self, session: &str) -> Option<Value> {
        let mut map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(session)
            .filter(|(at, _)| at.elapsed() < FLASH_TTL)
            .map(|(_, v)| v)
    }
}

/// The dashboard's message after a declaration, in plain French; says so
/// when an exercise and a real event of the scenario now run side by side.
pub(super) fn declared_text(d: &engine::Declared) -> (&'static str, String) {
    let n = d.event_id;
    let kind = if d.event.exercise {
        "l'exercice"
    } else {
        "l'alerte"
    };
    let mut text = if !d.updated {
        if d.event.exercise {
            format!("Exercice n° {n} déclenché : les messages partent avec la mention [EXERCICE].")
        } else {
            format!("Alerte réelle n° {n} déclenchée : les messages partent.")
        }
    } else if d.level_changed {
        format!(
            "N° {n} : {kind} était déjà en cours pour ce scénario ; son niveau passe à {}.",
            d.event.level.as_deref().unwrap_or("—")
        )
    } else {
        format!(
            "N° {n} : {kind} était déjà en cours pour ce scénario au même niveau ; rien n'a été renvoyé."
        )
    };
    let Some(other) = d.beside.first() else {
        return ("ok", text);
    };
    if d.event.exercise {
        text.push_str(&format!(
            " Attention : une alerte RÉELLE de ce scénario est en cours (n° {}). L'exercice reste séparé d'elle.",
            other.id
        ));
    } else {
        text.push_str(&format!(
            " Attention : un exercice de ce scénario est en cours (n° {}). Cette alerte est RÉELLE et reste séparée de l'exercice : ses messages ne portent pas la mention [EXERCICE].",
            other.id
        ));
    }
    ("warn", text)
}

/// Scenarios with an exercise and a real event unresolved at the same time,
/// one sentence each, for the top of the dashboard.
fn side_by_side(all: &[EventRow]) -> Vec<String> {
    let open: Vec<&EventRow> = all
        .iter()
        .filter(|e| e.state != EventState::Resolved)
        .collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for e in &open {
        if !seen.insert(e.scenario.as_str()) {
            continue;
        }
        let ids = |exercise: bool| {
            open.iter()
                .filter(|o| o.scenario == e.scenario && o.exercise == exercise)
                .map(|o| format!("n° {}", o.id))
                .collect::<Vec<_>>()
        };
        let (real, drills) = (ids(false), ids(true));
        if !real.is_empty() && !drills.is_empty() {
            out.push(format!(
                "« {} » : une alerte RÉELLE ({}) et un exercice ({}) sont en cours en même temps. Ils restent séparés : seuls les messages de l'exercice portent la mention [EXERCICE].",
                e.title,
                real.join(", "),
                drills.join(", ")
            ));
        }
    }
    out
}

fn directory_summary(set: &ConfigSet) -> Value {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    let active: Vec<_> = set
        .directory
        .professionals
        .iter()
        .filter(|p| p.active)
        .collect();
    for p in &active {
        *per.entry(p.profession.clone()).or_default() += 1;
    }
    context! {
        active => active.len(),
        inactive => set.directory.professionals.len() - active.len(),
        professions => per.iter().map(|(p, n)| context! { label => profession_label(p), count => *n }).collect::<Vec<_>>(),
        no_email => active.iter().filter(|p| p.email.is_none()).map(|p| p.name.clone()).collect::<Vec<_>>(),
        no_phone => active.iter().filter(|p| p.phone.is_none()).map(|p| p.name.clone()).collect::<Vec<_>>(),
    }
}

fn review_warnings(set: &ConfigSet, today: chrono::NaiveDate) -> Vec<String> {
    let mut out = Vec::new();
    for p in set.plans_in_force(today) {
        let newer = set.newer_version(p, today).is_some();
        let days = (p.review_by.value - today).num_days();
        if newer || days > 30 {
            continue;
        }
        out.push(if days >= 0 {
            format!(
                "La révision annuelle du plan « {} » (version {}) est attendue d'ici le {} (dans {}) : aucune nouvelle version n'est encore écrite.",
                p.title, p.version.value, p.review_by.value.format("%d/%m/%Y"), count(days as u64, "jour", "jours")
            )
        } else {
            format!(
                "La révision annuelle du plan « {} » (version {}) est en retard depuis le {}.",
                p.title, p.version.value, p.review_by.value.format("%d/%m/%Y")
            )
        });
    }
    out
}

/// When each plan in force was last exercised, with a warning when it was
/// not in its `exercise_every` period (SPEC §12): `(late, sentence)`.
async fn exercise_notices(
    state: &WebState,
    set: &ConfigSet,
    today: chrono::NaiveDate,
) -> Vec<Value> {
    let plans: Vec<(String, String, crate::config::conduct::ExerciseEvery)> = set
        .plans_in_force(today)
        .into_iter()
        .filter_map(|p| Some((p.id.value.clone(), p.title.clone(), p.exercise_every?)))
        .collect();
    let tz = set.daemon.timezone;
    let mut out = Vec::new();
    for (id, title, every) in plans {
        let last = state
            .store
            .call(move |c| crate::store::actions::last_exercise(c, &id))
            .await
            .ok()
            .flatten()
            .map(|t| t.with_timezone(&tz).date_naive());
        if let Some((late, text)) =
            crate::config::conduct::exercise_status(&title, Some(every), last, today)
        {
            out.push(context! { kind => if late { "warn" } else { "ok" }, text });
        }
    }
    out
}

/// The dashboard's context; `flash` is a message to show on top.
pub(super) async fn dashboard(state: &WebState, op: &Operator, flash: Option<Value>) -> Value {
    let set = state.config();
    let now = state.clock.now();
    let today = state.today();
    let all = state
        .store
        .call(|c| q::list_events(c, None, 200))
        .await
        .unwrap_or_default();
    let unresolved: Vec<i64> = all
        .iter()
        .filter(|e| e.state != EventState::Resolved)
        .map(|e| e.id)
        .collect();
    let week_ago = now - Duration::days(7);
    let resolved: Vec<Value> = all
        .iter()
        .filter(|e| e.resolved_at.is_some_and(|t| t >= week_ago))
        .map(|e| context! { id => e.id, title => e.title.clone(), exercise => e.exercise, resolved => e.resolved_at.map(|t| fr_time(&set, t)) })
        .collect();
    let actions = super::actions::summaries(state, unresolved.clone(), now).await;
    let events: Vec<Value> = load_events(state, unresolved)
        .await
        .iter()
        .map(|d| event_view(&set, d))
        .collect();
    let since = now - Duration::hours(24);
    let failed = state
        .store
        .call(move |c| outbox::failed_since(c, since))
        .await
        .unwrap_or_default();
    let in_force = set.plans_in_force(today);
    let scenarios: Vec<Value> = in_force
        .iter()
        .flat_map(|p| p.scenarios.iter())
        .map(|s| context! { id => s.id.value.clone(), title => s.title.clone(), levels => s.levels.iter().map(|l| l.value.clone()).collect::<Vec<_>>() })
        .collect();
    let reload = state.reload_status();
    let (gaps, gaps_empty) = crate::web::extras::roster_gaps(&set, today);
    let side_by_side = side_by_side(&all);
    context! {
        cpts => set.daemon.name.clone(), operator => op.name.clone(), csrf => state.sessions.csrf(&op.cookie),
        flash, side_by_side, plan => in_force.first().map(|p| p.title.clone()), review => review_warnings(&set, today),
        reload => context! { ok => reload.ok, at => fr_time(&set, reload.last_attempt_at), errors => reload.errors },
        scenarios, events, resolved, failed => failed.iter().map(|f| context! { event_id => f.event_id, event => f.event.clone(), name => f.name.clone(), channel => channel_label(&f.channel), reason => f.reason.clone() }).collect::<Vec<_>>(), directory => directory_summary(&set),
        gaps, gaps_empty, reminders => crate::web::extras::upcoming_reminders(&set, now),
        exercises => exercise_notices(state, &set, today).await, actions,
        swaps => super::swaps::view(state).await,
        vigilance => super::vigilance::view(state).await,
    }
}

pub async fn bureau(State(state): State<Arc<WebState>>, op: Operator) -> Response {
    let ctx = dashboard(&state, &op, state.flashes.take(&op.cookie)).await;
    state.pages.render("bureau.html", ctx)
}

// ---------------------------------------------------------------- forms

/// The dashboard with an engine refusal on top, in French.
pub(super) async fn form_error(state: &WebState, op: &Operator, e: EngineError) -> Response {
    let (status, text) = refused(e);
    let ctx = dashboard(state, op, Some(context! { kind => "bad", text })).await;
    let mut r = state.pages.render("bureau.html", ctx);
    *r.status_mut() = status;
    r
}

/// Back to the dashboard, with `text` on top of it.
pub(super) fn done(state: &WebState, op: &Operator, kind: &str, text: String) -> Response {
    state.flashes.put(&op.cookie, kind, text);
    Redirect::to("/bureau").into_response()
}

/// Where a level or resolve form was posted from: `event` for the event
/// page (the answer goes back there), else the dashboard.
fn back_to_event(from: &str) -> bool {
    from == "event"
}

/// After a level or resolve form: `text` on top of the page it came from.
async fn after_form(
    state: &WebState,
    op: &Operator,
    id: i64,
    from: &str,
    outcome: Result<(&str, String), (StatusCode, String)>,
) -> Response {
    match (outcome, back_to_event(from)) {
        (Ok((kind, text)), false) => done(state, op, kind, text),
        (Ok((kind, text)), true) => {
            state.flashes.put(&op.cookie, kind, text);
            Redirect::to(&format!("/bureau/events/{id}")).into_response()
        }
        (Err((status, text)), to_event) => {
            let flash = Some(context! { kind => "bad", text });
            let mut r = if to_event {
                event_response(state, op, id, flash).await
            } else {
                let ctx = dashboard(state, op, flash).await;
                state.pages.render("bureau.html", ctx)
            };
            *r.status_mut() = status;
            r
        }
    }
}

/// An engine refusal as the forms say it: its status, and a French
/// sentence (the engine's own message is English, for logs and the API).
fn refused(e: EngineError) -> (StatusCode, String) {
    let e = for_page(e, "bureau form");
    let text = match &e {
        ApiError::NotFound(_) => {
            "Action refusée : cet événement ou ce scénario n'existe pas dans le plan en vigueur."
        }
        ApiError::Gone(_) | ApiError::Conflict(_) => {
            "Action refusée : l'événement est déjà levé, ou son état ne le permet pas."
        }
        ApiError::Unprocessable(_) | ApiError::BadRequest(_) => {
            "Action refusée : ce niveau n'existe pas pour ce scénario, ou le message dépasse 4 000 caractères."
        }
        ApiError::DiskFull(_) => {
            "Le disque de la base de données est plein : l'action n'a pas été enregistrée."
        }
        _ => "Erreur interne : l'action n'a pas été enregistrée.",
    };
    (e.status(), text.to_string())
}

#[derive(Deserialize)]
pub struct LevelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    level: String,
    /// Ticked to lower the level (as the API's `downgrade`).
    #[serde(default)]
    downgrade: Option<String>,
    #[serde(default)]
    from: String,
}

pub async fn level(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<LevelForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let outcome = change_level(&state, &op, id, &f).await;
    after_form(&state, &op, id, &f.from, outcome).await
}

async fn change_level(
    state: &WebState,
    op: &Operator,
    id: i64,
    f: &LevelForm,
) -> Result<(&'static str, String), (StatusCode, String)> {
    let set = state.config();
    let ev = state
        .store
        .call(move |c| q::get_event(c, id))
        .await
        .map_err(|e| refused(e.into()))?
        .ok_or_else(|| refused(EngineError::NotFound(format!("event {id}"))))?;
    // Lowering a level is a decision: the box says it was taken.
    if let Ok((_, scenario)) = engine::plan_of(&set, &ev) {
        let rank = |l: &str| scenario.levels.iter().position(|x| x.value == l);
        let lower = matches!(
            (rank(&f.level), ev.level.as_deref().and_then(rank)),
            (Some(new), Some(cur)) if new < cur
        );
        if lower && f.downgrade.is_none() {
            return Err((
                StatusCode::CONFLICT,
                format!(
                    "Le niveau n'a pas été changé : passer du niveau {} au niveau {} est une baisse. Cochez « Je confirme la baisse du niveau » pour la décider.",
                    ev.level.as_deref().unwrap_or("—"),
                    f.level
                ),
            ));
        }
    }
    let d = state
        .change_level(&op.name, id, f.level.clone())
        .await
        .map_err(refused)?;
    let level = d.event.level.as_deref().unwrap_or("—");
    Ok(if d.level_changed {
        (
            "ok",
            format!(
                "Événement n° {id} : le niveau passe à {level}{}.",
                if d.queued > 0 {
                    format!(
                        " ; {} de ce niveau",
                        count(d.queued as u64, "message part", "messages partent")
                    )
                } else {
                    String::new()
                }
            ),
        )
    } else {
        (
            "ok",
            format!("Événement n° {id} : il est déjà au niveau {level}, rien n'a changé."),
        )
    })
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    /// The box "Je confirme la levée", ticked.
    #[serde(default)]
    confirm: Option<String>,
    #[serde(default)]
    from: String,
}

pub async fn resolve(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<i64>,
    Form(f): Form<ResolveForm>,
) -> Response {
    if !state.sessions.csrf_ok(&op.cookie, &f.csrf) {
        return forbidden();
    }
    let outcome = if f.confirm.is_none() {
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "L'événement n° {id} n'a pas été levé : cochez « Je confirme la levée » pour le lever."
            ),
        ))
    } else {
        let note = (!f.note.trim().is_empty()).then(|| f.note.trim().to_string());
        match state.resolve(&op.name, id, note).await {
            Ok(_) => Ok(("ok", format!("Événement n° {id} levé."))),
            Err(e) => Err(refused(e)),
        }
    };
    after_form(&state, &op, id, &f.from, outcome).await
}
