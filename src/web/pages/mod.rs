//! The HTML pages (SPEC §9): the public situation page (no personal data),
//! the login form, the bureau's dashboard and event pages with their forms.
//! Server-side templates (minijinja, HTML auto-escaping), no JavaScript.
//!
//! This module owns the compiled templates ([`Pages`]), the French labels
//! shared by the pages (states, counts that agree with their number,
//! channels, audiences, steps), and the public page `GET /`. The login and
//! the operator's session are in [`login`], the dashboard and its level and
//! resolve forms in [`dashboard`], the two-step declaration (confirmation
//! page first) in [`declare`], the event page in [`event`].

mod actions;
mod coming;
mod dashboard;
mod declare;
mod event;
mod journal;
mod login;
mod report;
mod swaps;
mod vigilance;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{Environment, Value, context};

use crate::config::ConfigSet;
use crate::model::labels;
use crate::store::events::{self as q, EventState};
use crate::web::WebState;

pub use actions::{ActionForm, action_done};
pub use coming::{RemindForm, remind_form};
pub use dashboard::{Flashes, LevelForm, ResolveForm, bureau, level, resolve};
pub use declare::{DeclareForm, declare};
pub use event::event_page;
pub use journal::{TextForm, bulletin, note as log_note, retex};
use login::current_operator;
pub use login::{CsrfForm, LoginForm, Operator, login, login_form, logout};
pub use report::report_page;
pub use swaps::{LinkForm, decide as decide_swap, send_link};
pub use vigilance::decide as decide_proposal;

/// The compiled page templates.
pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, src) in [
            ("layout.html", include_str!("../templates/layout.html")),
            ("index.html", include_str!("../templates/index.html")),
            ("login.html", include_str!("../templates/login.html")),
            ("bureau.html", include_str!("../templates/bureau.html")),
            ("event.html", include_str!("../templates/event.html")),
            (
                "event_answers.html",
                include_str!("../templates/event_answers.html"),
            ),
            ("confirm.html", include_str!("../templates/confirm.html")),
            ("report.html", include_str!("../templates/report.html")),
        ] {
            env.add_template(name, src).expect("page templates compile");
        }
        Pages { env }
    }
}

impl Pages {
    pub fn render(&self, name: &str, ctx: Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(page = name, error = %e, "page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "Erreur interne").into_response()
            }
        }
    }
}

pub fn state_label(s: EventState) -> &'static str {
    labels::event_state(s.as_str())
}

/// A channel as people say it: "e-mail", "SMS"; a webhook by its name.
fn channel_label(c: &str) -> String {
    match c {
        "email" => "e-mail".into(),
        "sms" => "SMS".into(),
        other => other.into(),
    }
}

/// A bureau form that decides something (a swap to approve or refuse, a
/// vigilance proposal to accept or dismiss): its CSRF token and the
/// decision's word.
#[derive(serde::Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// Who did something, as people read it on the pages and in the report:
/// an operator by their login, an API token (`token:NAME`) as
/// "API (NAME)", `vigie` (the daemon) or the professional who answered.
pub(super) fn author_label(by: &str) -> String {
    match by.strip_prefix("token:") {
        Some(name) => format!("API ({name})"),
        None => by.to_string(),
    }
}

/// An audience as people read it (one rule for the pages, the CLI and the
/// main courante: [`labels::audience`]).
fn audience_label(names: &str) -> String {
    labels::audience(names)
}

/// "Palier 1 — Référents", "Diffusion — Infirmiers": a step as the pages
/// show it (tiers counted from 1).
fn step_title(tier: Option<usize>, round: u32, audience: &str) -> String {
    let head = match tier {
        Some(t) if round > 0 => format!("Palier {} (tour {})", t + 1, round + 1),
        Some(t) => format!("Palier {}", t + 1),
        None => "Diffusion".to_string(),
    };
    if audience.trim().is_empty() {
        head
    } else {
        format!("{head} — {}", audience_label(audience))
    }
}

/// "Masseurs-kinésithérapeutes": a profession as a heading.
fn profession_label(p: &str) -> String {
    let many = labels::profession(p).1;
    let mut c = many.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn fr_time(set: &ConfigSet, t: DateTime<Utc>) -> String {
    t.with_timezone(&set.daemon.timezone)
        .format("%d/%m/%Y à %H:%M")
        .to_string()
}

// ---------------------------------------------------------------- public

/// `GET /`: the situation, for anyone. No name, no address, no note.
pub async fn index(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let set = state.config();
    let now = state.clock.now();
    let situation = super::situation(&state).await.ok();
    let events: &[q::EventRow] = situation.as_ref().map_or(&[], |s| &s.events);
    let events = &events[..events.len().min(100)];
    let plan = set.plans_in_force(state.today()).first().map(|p| {
        context! { title => p.title.clone(), version => p.version.value.0.clone(), valid_until => p.valid_until.value.format("%d/%m/%Y").to_string() }
    });
    let bulletins = situation.as_ref().map(|s| &s.bulletins);
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            // What the population should do at this level (SPEC §12):
            // the plan's own words, no personal data.
            let advice = crate::engine::plan_of(&set, e)
                .ok()
                .and_then(|(_, s)| s.public_advice.get(e.level.as_deref()))
                .map(str::to_string);
            context! {
                title => e.title.clone(), level => e.level.clone(), exercise => e.exercise,
                state_label => state_label(e.state), since => fr_time(&set, e.declared_at), advice,
                bulletins => journal::public_bulletins(&set, bulletins.and_then(|b| b.get(&e.id))),
            }
        })
        .collect();
    let operator = current_operator(&state, &headers).await;
    state.pages.render(
        "index.html",
        context! {
            cpts => set.daemon.name.clone(), plan, events, updated => fr_time(&set, now),
            operator => operator.as_ref().map(|o| o.name.clone()),
            csrf => operator.as_ref().map(|o| state.sessions.csrf(&o.cookie)),
        },
    )
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("<p>Formulaire expiré ou invalide : rechargez la page et recommencez.</p>"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_audiences_read_as_titles() {
        assert_eq!(audience_label("medecin_de_garde"), "Médecin de garde");
        assert_eq!(audience_label("referents, bureau"), "Référents, bureau");
        assert_eq!(audience_label("idel_haute_vallee"), "IDEL haute vallée");
        assert_eq!(step_title(Some(0), 0, "referents"), "Palier 1 — Référents");
        assert_eq!(
            step_title(Some(1), 1, "bureau"),
            "Palier 2 (tour 2) — Bureau"
        );
        assert_eq!(step_title(None, 0, "infirmiers"), "Diffusion — Infirmiers");
        assert_eq!(channel_label("email"), "e-mail");
        assert_eq!(channel_label("sms"), "SMS");
    }
}
