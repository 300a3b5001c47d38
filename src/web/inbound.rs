//! Answers by SMS (SPEC §14): `POST /api/v1/inbound/sms/{channel}?secret=`,
//! the URL given to an SMS provider for the messages its number receives.
//!
//! A provider's callback can only be given a URL, so the channel's inbound
//! secret (`inbound_secret_file` of `[sms.NAME]`) is in it, compared in
//! constant time; an unknown channel, one without an inbound secret, a
//! wrong or missing secret all get the same 404. No bearer token.
//!
//! The body is the provider's inbound-message callback, as a form (Twilio:
//! `From`, `Body`) or JSON, or `{"from", "text"}` for every provider. The
//! sender is read from the first of `from`, `From`, `sender`, `msisdn`,
//! `originator` present, the text from the first of `text`, `Text`,
//! `Body`, `body` (or `body.text`), `message`, `content`. The number is
//! normalised to E.164 (French forms `06 12 34 56 78`, `0033…`, `33…`
//! taken as `+33…`). What it answers is the app's
//! ([`crate::app::App::respond_by_sms`]): the same operation as the
//! response page. An unknown number or text is logged (the number masked)
//! and answered 200: a provider retries errors, and nothing it resends
//! would change that; so is a body that is neither a form nor JSON (logged
//! with its size only).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use super::error::ApiError;
use crate::config::daemon::secret_path;
use crate::engine::SmsAnswer;
use crate::model::Phone;
use crate::web::WebState;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/api/v1/inbound/sms/{channel}", post(inbound))
}

async fn inbound(
    State(state): State<Arc<WebState>>,
    Path(channel): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    if !secret_matches(&state, &channel, query.get("secret").map(String::as_str)) {
        return Err(ApiError::NotFound("unknown inbound SMS URL".into()));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    // An unreadable body is logged and answered 200 like the rest: a
    // provider retries an error, and its retry would be as unreadable.
    let fields: Option<Value> = if is_form {
        match axum::Form::<HashMap<String, String>>::from_request(request, &()).await {
            Ok(axum::Form(f)) => Some(serde_json::to_value(f).unwrap_or_default()),
            Err(_) => {
                tracing::warn!(channel, "answer by SMS with an unreadable form: ignored");
                None
            }
        }
    } else {
        let bytes = axum::body::Bytes::from_request(request, &())
            .await
            .map_err(|_| ApiError::TooLarge)?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                // The error's position only: the body may hold a number.
                tracing::warn!(
                    channel,
                    bytes = bytes.len(),
                    line = e.line(),
                    column = e.column(),
                    "answer by SMS whose body is neither a form nor JSON: ignored"
                );
                None
            }
        }
    };
    let ok = || -> Response {
        if is_form {
            // Twilio reads TwiML back: an empty <Response/> sends no reply.
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"))],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
            )
                .into_response()
        } else {
            axum::Json(serde_json::json!({"status": "ok"})).into_response()
        }
    };
    let Some(fields) = fields else {
        return Ok(ok());
    };
    let (from, text) = sender_and_text(&fields);
    let (Some(from), Some(text)) = (from, text) else {
        tracing::warn!(channel, "answer by SMS without a sender or a text: ignored");
        return Ok(ok());
    };
    let Some(phone) = Phone::normalise(&from) else {
        tracing::warn!(channel, from = %mask(&from), "answer by SMS from a number that cannot be read: ignored");
        return Ok(ok());
    };
    let shown = mask(&phone);
    match state.respond_by_sms(&phone, &channel, text).await? {
        None => {
            tracing::warn!(channel, from = %shown, "answer by SMS from a number not in the directory: ignored")
        }
        Some(SmsAnswer::NoEvent) => {
            tracing::warn!(channel, from = %shown, "answer by SMS with no event in progress that texted them on this channel: ignored")
        }
        Some(SmsAnswer::Ambiguous { event_id, people }) => {
            tracing::warn!(channel, from = %shown, event = event_id, people, "answer by SMS from a number the event texted to several professionals: who wrote cannot be told, ignored")
        }
        Some(SmsAnswer::Unknown { event_id }) => {
            tracing::warn!(channel, from = %shown, event = event_id, "answer by SMS that is none of the responses: ignored")
        }
        Some(SmsAnswer::Recorded { event_id, response }) => {
            tracing::info!(channel, from = %shown, event = event_id, response, "answer by SMS recorded")
        }
    }
    Ok(ok())
}

/// Whether `given` is the inbound secret of SMS channel `channel`.
fn secret_matches(state: &WebState, channel: &str, given: Option<&str>) -> bool {
    let set = state.config();
    let Some(file) = set
        .daemon
        .sms
        .get(channel)
        .and_then(|c| c.inbound_secret_file.as_ref())
    else {
        return false;
    };
    let Some(given) = given else { return false };
    match crate::config::source::read_text(&secret_path(file)) {
        Ok(s) => {
            let s = s.trim();
            !s.is_empty() && crate::model::constant_time_eq(s.as_bytes(), given.as_bytes())
        }
        Err(e) => {
            tracing::error!(channel, error = %e, "cannot read the inbound SMS secret file");
            false
        }
    }
}

/// The sender and the text of an inbound callback (see the module docs).
fn sender_and_text(v: &Value) -> (Option<String>, Option<String>) {
    let s = |k: &str| -> Option<String> {
        match v.get(k)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let from = ["from", "From", "sender", "msisdn", "originator"]
        .into_iter()
        .find_map(s);
    let nested = v
        .get("body")
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let text = ["text", "Text", "Body", "body"]
        .into_iter()
        .find_map(s)
        .or(nested)
        .or_else(|| ["message", "content"].into_iter().find_map(s));
    (from, text)
}

/// A number as logs show it: `+3361*****78`.
fn mask(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_never_show_a_whole_number() {
        assert_eq!(mask("+33612345678"), "+3361*****78");
    }

    #[test]
    fn twilio_form_and_generic_json_are_read() {
        let v = serde_json::json!({"From": "+33612345678", "Body": "1", "To": "+33700000000"});
        assert_eq!(
            sender_and_text(&v),
            (Some("+33612345678".into()), Some("1".into()))
        );
        let v = serde_json::json!({"from": "0612345678", "text": "oui"});
        assert_eq!(
            sender_and_text(&v),
            (Some("0612345678".into()), Some("oui".into()))
        );
        let v = serde_json::json!({"from": "33612345678", "body": {"text": "2"}});
        assert_eq!(
            sender_and_text(&v),
            (Some("33612345678".into()), Some("2".into()))
        );
    }
}
