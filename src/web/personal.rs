//! The personal pages `/g/{token}` (SPEC §15): a professional's next
//! shifts on every roster, "Chercher un remplaçant" on each, the open
//! requests they may take ("Je prends cette garde"), and the address of
//! their read-only calendar `/c/{calendar token}.ics`, whose token is
//! another one (it opens no page, posts nothing: a calendar address is
//! shared with agenda services). No login: the token in the path is the
//! credential (a forged one, or an inactive professional's, gets 404).
//!
//! Forms: `POST /g/{token}/swap` (`roster`, `date`, `shift`),
//! `POST /g/{token}/take` (`request`), `POST /g/{token}/cancel`
//! (`request`). They need no cookie; a cross-site POST is refused (403)
//! when the browser says it is one: `Sec-Fetch-Site` other than
//! `same-origin`/`none` (every current browser sends it); without it, an
//! `Origin` that is neither `public_url`'s nor the `Host` the request came
//! to (a `null` one included). So another site cannot make a visitor take
//! a shift. Scripts that send neither header pass: they hold the token. With `Accept: application/json` the answers are JSON
//! (`{"state": "done"|"pending"}`; a shift already taken is 409 with the
//! usual error body); otherwise `303 See Other` to the page with
//! `?fait=` (a fixed sentence: reloading posts nothing again), or a page
//! in French with a heading per case (409 for a conflict). GET changes
//! nothing (mail scanners open links).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use minijinja::context;
use serde::Deserialize;

use super::error::ApiError;
use crate::app::{PersonalView, Taken};
use crate::engine::EngineError;
use crate::web::WebState;

const PAGE: &str = include_str!("templates/personal.html");

pub fn routes() -> axum::Router<Arc<WebState>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/g/{token}", get(get_page))
        .route("/c/{file}", get(calendar))
        .route("/g/{token}/swap", post(post_swap))
        .route("/g/{token}/take", post(post_take))
        .route("/g/{token}/cancel", post(post_cancel))
}

fn render(ctx: minijinja::Value) -> String {
    super::respond::render_phone("personal.html", PAGE, ctx)
}

fn page(state: &WebState, token: &str, v: &PersonalView, notice: Option<(&str, bool)>) -> Response {
    let tz = state.config().daemon.timezone;
    let hm = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let shifts: Vec<_> = v
        .shifts
        .iter()
        .map(|s| {
            context! {
                day => crate::roster::ics::date_fr(s.occ.date),
                start => hm(s.occ.start), end => hm(s.occ.end),
                shift => s.occ.shift.clone(), roster => s.roster.clone(),
                roster_title => s.roster_title.clone(), date => s.occ.date.to_string(),
                request_state => s.request.as_ref().map(|r| r.state.clone()),
                request_id => s.request.as_ref().map(|r| r.id),
                taker => s.request.as_ref().and_then(|r| r.taker.as_ref()).map(|t| {
                    state.config().directory.get(t).map(|p| p.name.clone()).unwrap_or_else(|| t.clone())
                }),
            }
        })
        .collect();
    let offers: Vec<_> = v
        .offers
        .iter()
        .map(|o| {
            context! {
                id => o.request.id, day => crate::roster::ics::date_fr(o.occ.date),
                start => hm(o.occ.start), end => hm(o.occ.end), shift => o.occ.shift.clone(),
                roster => o.roster_title.clone(), requester => o.requester_name.clone(),
            }
        })
        .collect();
    let html = render(context! {
        kind => "page",
        cpts => state.config().daemon.name.clone(),
        name => v.name.clone(),
        base => format!("/g/{token}"),
        days => crate::app::PERSONAL_DAYS,
        calendar => v.calendar_url.clone(),
        notice => notice.map(|n| n.0),
        notice_ok => notice.is_some_and(|n| n.1),
        shifts, offers,
    });
    Html(html).into_response()
}

fn error_page(state: &WebState, token: &str, e: EngineError) -> Response {
    let cpts = state.config().daemon.name.clone();
    let e = super::error::for_page(e, "personal page");
    let back = Some(format!("/g/{token}"));
    let (status, heading, message, back) = match &e {
        ApiError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "Lien inconnu",
            "Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier depuis le message reçu.".to_string(),
            None,
        ),
        ApiError::Conflict(m) => (StatusCode::CONFLICT, conflict_heading(m), capitalise(m), back),
        e if !e.is_internal() => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Impossible",
            capitalise(&e.to_string()),
            back,
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Erreur momentanée",
            "Votre demande n'a pas pu être enregistrée. Réessayez dans un instant.".to_string(),
            back,
        ),
    };
    let html = render(context! { kind => "error", cpts, heading, message, back });
    (status, Html(html)).into_response()
}

/// The heading of a conflict's page, after what the message says.
fn conflict_heading(m: &str) -> &'static str {
    const HEADINGS: [(&str, &str); 5] = [
        ("déjà été prise", "Garde déjà prise"),
        ("annulée", "Demande annulée"),
        ("déjà recherché", "Remplaçant déjà recherché"),
        ("n'existe pas", "Demande introuvable"),
        ("refusé", "Proposition refusée"),
    ];
    HEADINGS
        .iter()
        .find(|(k, _)| m.contains(k))
        .map_or("Demande déjà traitée", |(_, h)| h)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str() + ".",
        None => String::new(),
    }
}

/// Whether the browser says the form was posted from another site (see
/// the module docs). Clients that send neither header (scripts) pass.
fn cross_site(state: &WebState, headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    // Set by the browser itself, never by a page: it decides when present.
    // (`Origin` is `null` on our own forms: the pages send no referrer.)
    if let Some(site) = h("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    if let Some(origin) = h("origin") {
        let public = origin_of(&state.config().daemon.public_url);
        let host = h("host").unwrap_or("");
        let own = [format!("http://{host}"), format!("https://{host}")];
        return origin != public && !own.iter().any(|o| o == origin);
    }
    false
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split('/').next().unwrap_or("");
    format!("{scheme}://{host}")
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

fn forbidden(state: &WebState, token: &str, json: bool) -> Response {
    if json {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({"error": {"code": "forbidden", "message": "cross-site form refused"}})),
        )
            .into_response();
    }
    let mut r = error_page(
        state,
        token,
        EngineError::Invalid(
            "ce formulaire vient d'un autre site : ouvrez votre page de gardes depuis le lien reçu"
                .into(),
        ),
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

async fn show(state: &WebState, token: &str, notice: Option<(&str, bool)>) -> Response {
    match state.personal(token).await {
        Ok(v) => page(state, token, &v, notice),
        Err(e) => error_page(state, token, e),
    }
}

/// What a form did, as `?fait=` on the page it redirects to (Post/
/// Redirect/Get: reloading the page does not post again). Only these fixed
/// sentences are shown; anything else in the query shows nothing.
const DONE: [(&str, &str); 5] = [
    (
        "demande",
        "Demande envoyée : vos collègues disponibles sont prévenus. Vous restez de garde tant que personne n'a pris la garde.",
    ),
    (
        "personne",
        "Demande enregistrée, mais aucun collègue n'est libre à ce moment-là d'après les plannings : personne n'a été prévenu. Le bureau est averti. Vous restez de garde tant que personne n'a pris la garde.",
    ),
    (
        "prise",
        "C'est noté : cette garde est maintenant la vôtre. Merci !",
    ),
    (
        "proposee",
        "Merci : votre proposition est transmise au bureau, qui doit la valider. Vous serez prévenu(e).",
    ),
    ("annulee", "Demande annulée : vous restez de garde."),
];

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    fait: String,
}

pub async fn get_page(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let notice = q
        .ok()
        .and_then(|Query(q)| DONE.iter().find(|(k, _)| *k == q.fait).map(|(_, t)| *t));
    show(&state, &token, notice.map(|t| (t, true))).await
}

/// `303 See Other` to the page, with what was done.
fn done(token: &str, what: &str) -> Response {
    axum::response::Redirect::to(&format!("/g/{token}?fait={what}")).into_response()
}

/// `GET /c/{calendar token}.ics`: the calendar has its own token, which
/// opens no page and posts nothing.
pub async fn calendar(State(state): State<Arc<WebState>>, Path(file): Path<String>) -> Response {
    let Some(token) = file.strip_suffix(".ics") else {
        return ApiError::from(EngineError::NotFound("calendrier inconnu".into())).into_response();
    };
    match state.personal_calendar(token) {
        Ok(body) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "text/calendar; charset=utf-8",
                ),
                (axum::http::header::CACHE_CONTROL, "private, max-age=300"),
            ],
            body,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SwapForm {
    roster: String,
    date: String,
    shift: String,
}

#[derive(Deserialize)]
pub struct RequestForm {
    request: String,
}

fn bad_form(state: &WebState, token: &str) -> Response {
    error_page(
        state,
        token,
        EngineError::Invalid("formulaire incomplet".into()),
    )
}

/// What every form of the page checks first: whether JSON is wanted, and
/// that the form does not come from another site (else the 403 answer).
fn same_site(state: &WebState, token: &str, headers: &HeaderMap) -> Result<bool, Box<Response>> {
    let json = wants_json(headers);
    if cross_site(state, headers) {
        return Err(Box::new(forbidden(state, token, json)));
    }
    Ok(json)
}

/// The `request` a take or cancel form names, after [`same_site`]:
/// (JSON wanted, request id), or the answer to give.
fn request_of(
    state: &WebState,
    token: &str,
    headers: &HeaderMap,
    form: Result<Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Result<(bool, i64), Box<Response>> {
    let json = same_site(state, token, headers)?;
    match form.ok().and_then(|Form(f)| f.request.parse::<i64>().ok()) {
        Some(id) => Ok((json, id)),
        None => Err(Box::new(bad_form(state, token))),
    }
}

pub async fn post_swap(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<SwapForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let json = match same_site(&state, &token, &headers) {
        Ok(json) => json,
        Err(answer) => return *answer,
    };
    let Ok(Form(f)) = form else {
        return bad_form(&state, &token);
    };
    let Ok(date) = NaiveDate::parse_from_str(&f.date, "%Y-%m-%d") else {
        return bad_form(&state, &token);
    };
    match state.request_swap(&token, &f.roster, date, &f.shift).await {
        Ok((r, _)) if json => axum::Json(r).into_response(),
        Ok((_, 0)) => done(&token, "personne"),
        Ok(_) => done(&token, "demande"),
        Err(e) if json => ApiError::from(e).into_response(),
        Err(e) => error_page(&state, &token, e),
    }
}

pub async fn post_take(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (json, id) = match request_of(&state, &token, &headers, form) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    match state.take_swap(&token, id).await {
        Ok(t) if json => axum::Json(serde_json::json!({
            "request": id,
            "state": if t == Taken::Done { "done" } else { "pending" },
        }))
        .into_response(),
        Ok(Taken::Done) => done(&token, "prise"),
        Ok(Taken::Pending) => done(&token, "proposee"),
        Err(e) if json => ApiError::from(e).into_response(),
        Err(e) => error_page(&state, &token, e),
    }
}

pub async fn post_cancel(
    State(state): State<Arc<WebState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<RequestForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (json, id) = match request_of(&state, &token, &headers, form) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    match state.cancel_swap(&token, id).await {
        Ok(()) if json => {
            axum::Json(serde_json::json!({"request": id, "state": "cancelled"})).into_response()
        }
        Ok(()) => done(&token, "annulee"),
        Err(e) if json => ApiError::from(e).into_response(),
        Err(e) => error_page(&state, &token, e),
    }
}
