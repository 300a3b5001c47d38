//! The response pages `/r/{token}` (SPEC §7): GET shows the event and one
//! button per response and changes nothing (mail scanners open links);
//! POST (form field `response`) records the answer. A forged token gets
//! 404, a resolved event 410. Pages in French, usable on a phone.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::error::{ApiError, for_page};
use crate::engine::{BadAnswer, EngineError, LinkView};
use crate::store::events::EventState;
use crate::web::WebState;

const PAGE: &str = include_str!("templates/response.html");

/// "bien_recu" → "Bien reçu", "pris_en_charge" → "Pris en charge".
pub fn response_label(r: &str) -> String {
    crate::model::labels::response(r)
}

fn state_label(s: EventState) -> &'static str {
    match s {
        EventState::Active => "En cours",
        EventState::Acknowledged => "Prise en charge confirmée",
        EventState::Exhausted => "Sans réponse suffisante",
        EventState::Resolved => "Terminé",
    }
}

fn render(ctx: minijinja::Value) -> String {
    render_phone("response.html", PAGE, ctx)
}

/// The layout of the pages a professional opens from a link on a phone
/// (the response page, the personal page).
const PHONE: &str = include_str!("templates/phone.html");

/// Renders `page` (which extends `phone.html`), HTML-escaped.
pub(super) fn render_phone(
    name: &'static str,
    page: &'static str,
    ctx: minijinja::Value,
) -> String {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("phone.html", PHONE)
        .and_then(|()| env.add_template(name, page))
        .and_then(|()| env.get_template(name)?.render(ctx))
        .unwrap_or_else(|e| {
            tracing::error!(page = name, error = %e, "page failed to render");
            "Erreur interne".to_string()
        })
}

/// The page's header: the CPTS and the plan, the CPTS named once (a plan
/// is often titled "Plan de gestion de crise — CPTS …").
fn header(cpts: &str, plan_title: &str) -> String {
    if plan_title.is_empty() {
        cpts.to_string()
    } else if plan_title.contains(cpts) {
        plan_title.to_string()
    } else {
        format!("{cpts} · {plan_title}")
    }
}

/// What the form showed when it was refused: the French reason and the
/// values typed, given back in their fields.
struct Refused {
    problem: String,
    eta: String,
    comment: String,
}

fn page(
    state: &WebState,
    v: &LinkView,
    recorded: Option<&str>,
    refused: Option<Refused>,
) -> Response {
    let tz = state.config().daemon.timezone;
    let choices: Vec<_> = v
        .choices
        .iter()
        .map(|c| context! { value => c, label => response_label(c) })
        .collect();
    // The scenario's instructions for the level (SPEC §12), Markdown made
    // safe HTML.
    let instructions = crate::engine::plan_of(&state.config(), &v.event)
        .ok()
        .and_then(|(_, s)| s.instructions.get(v.event.level.as_deref()))
        .map(super::markdown::to_html);
    let html = render(context! {
        instructions,
        kind => "event",
        cpts => state.config().daemon.name.clone(),
        header => header(&state.config().daemon.name, &v.plan_title),
        heading => v.event.title.clone(),
        level => v.event.level.clone(),
        exercise => v.event.exercise,
        state_label => state_label(v.event.state),
        name => v.recipient_name.clone(),
        declared_at => v.event.declared_at.with_timezone(&tz).format("%d/%m/%Y à %H:%M").to_string(),
        note => v.event.note.clone(),
        current => v.current.as_deref().map(response_label),
        recorded => recorded.map(response_label),
        current_eta => v.current_eta,
        current_comment => v.current_comment.clone(),
        eta_max => crate::engine::ETA_MAX_MINUTES,
        comment_max => crate::engine::COMMENT_MAX_CHARS,
        problem => refused.as_ref().map(|r| r.problem.clone()),
        typed_eta => refused.as_ref().map(|r| r.eta.clone()),
        typed_comment => refused.as_ref().map(|r| r.comment.clone()),
        choices => choices,
    });
    match refused {
        Some(_) => (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response(),
        None => Html(html).into_response(),
    }
}

/// An arrival delay or a comment refused, said in French.
fn bad_answer_fr(e: &BadAnswer) -> String {
    match e {
        BadAnswer::Eta(_) => format!(
            "Réponse non enregistrée : le délai d'arrivée doit être un nombre entier de minutes, de 0 à {} (24 heures). Laissez le champ vide si vous ne savez pas.",
            crate::engine::ETA_MAX_MINUTES
        ),
        BadAnswer::Comment(n) => format!(
            "Réponse non enregistrée : le commentaire fait {n} caractères, {} au plus sont acceptés. Raccourcissez-le puis choisissez à nouveau votre réponse.",
            crate::engine::COMMENT_MAX_CHARS
        ),
    }
}

fn error_page(state: &WebState, e: EngineError) -> Response {
    let cpts = state.config().daemon.name.clone();
    let (status, kind, heading, message) = match for_page(e, "response page") {
        ApiError::Gone(m) => (
            StatusCode::GONE,
            "gone",
            "Événement terminé",
            format!("{m} : il n'attend plus de réponse. Merci de votre mobilisation."),
        ),
        ApiError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "missing",
            "Lien inconnu",
            "Ce lien de réponse n'est pas valide. Vérifiez qu'il a été copié en entier depuis le message reçu.".to_string(),
        ),
        e if !e.is_internal() => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "Réponse non reconnue",
            "Cette réponse ne fait pas partie des choix proposés. Revenez à la page précédente et choisissez un bouton.".to_string(),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            "Erreur momentanée",
            "Votre réponse n'a pas pu être lue ou enregistrée. Réessayez dans un instant.".to_string(),
        ),
    };
    let html = render(context! { kind, cpts, heading, message });
    (status, Html(html)).into_response()
}

pub async fn get_page(State(state): State<Arc<WebState>>, Path(token): Path<String>) -> Response {
    match state.link(token).await {
        Ok(v) => page(&state, &v, None, None),
        Err(e) => error_page(&state, e),
    }
}

/// The response form: `response` (a button), and optionally `eta` (the
/// arrival delay in minutes, 0–1440) and `comment` (at most 500
/// characters).
#[derive(Deserialize)]
pub struct ResponseForm {
    response: String,
    #[serde(default)]
    eta: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

pub async fn post_page(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    form: Result<Form<ResponseForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(
            &state,
            EngineError::Invalid("missing field `response`".into()),
        );
    };
    let answer =
        match crate::engine::answer(&form.response, form.eta.as_deref(), form.comment.as_deref()) {
            Ok(a) => a,
            Err(bad) => {
                // The page again, with the reason and what was typed.
                return match state.link(token).await {
                    Ok(v) => page(
                        &state,
                        &v,
                        None,
                        Some(Refused {
                            problem: bad_answer_fr(&bad),
                            eta: form.eta.unwrap_or_default(),
                            comment: form.comment.unwrap_or_default(),
                        }),
                    ),
                    Err(e) => error_page(&state, e),
                };
            }
        };
    match state.respond(token, answer).await {
        Ok(v) => page(&state, &v, Some(&form.response), None),
        Err(e) => error_page(&state, e),
    }
}
