//! SMS channels: one `[sms.NAME]` of the daemon configuration, sending
//! through a provider's documented HTTP API (SPEC §14): [`ovh`],
//! [`brevo`], [`smsmode`], [`twilio`]; [`segments`] counts and cuts the
//! text as the network does.
//!
//! A delivery carries its SMS ready to send (the fan-out composed it with
//! [`segments::compose`]: body, reply line, link, cut to the channel's
//! `max_segments`); a message composed elsewhere (a routine reminder) is
//! its text cut the same way. The recipient's number is the directory's
//! `phone`, already in E.164.
//!
//! Every provider's answer is classed the same way: 2xx is sent (with the
//! provider's message id, recorded with the delivery); 429, 5xx,
//! timeouts and connection errors are retried; any other 4xx, and a number
//! the provider refuses, fail at once with the HTTP status and the
//! provider's own error text. Credentials are read from their files when
//! the channel is built and never appear in a message or a log line.

pub mod brevo;
pub mod ovh;
pub mod segments;
pub mod smsmode;
pub mod twilio;

use std::path::Path;

use super::channel::{Channel, SendError, message_of};
use crate::config::daemon::{SmsConfig, SmsProvider, secret_path};
use crate::store::outbox::DeliveryRow;

/// What a provider's module does: build the request of one SMS, and read
/// the message id from a success.
trait Provider: Send + Sync {
    /// The provider's name in messages ("OVH", "Brevo"…).
    fn label(&self) -> &'static str;
    fn request(
        &self,
        client: &reqwest::Client,
        base: &str,
        to: &str,
        text: &str,
    ) -> reqwest::RequestBuilder;
    /// The message id of a 2xx answer; an error when the answer says the
    /// message was not accepted after all (OVH's invalid receivers).
    fn accepted(&self, body: &serde_json::Value) -> Result<Option<String>, SendError>;
}

pub struct SmsChannel {
    name: String,
    url: String,
    max_segments: usize,
    provider: Box<dyn Provider>,
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsSetupError {
    #[error("SMS channel `{name}`: cannot read the secret file {path}: {source}")]
    Secret {
        name: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("SMS channel `{name}`: {message}")]
    Client { name: String, message: String },
}

/// Reads a secret file (or its `$CREDENTIALS_DIRECTORY` copy), without its
/// final line break.
fn secret(name: &str, p: &Path) -> Result<String, SmsSetupError> {
    let path = secret_path(p);
    let text = crate::config::source::read_text(&path).map_err(|source| SmsSetupError::Secret {
        name: name.to_string(),
        path: path.clone(),
        source,
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

impl SmsChannel {
    pub fn new(cfg: &SmsConfig) -> Result<SmsChannel, SmsSetupError> {
        let name = cfg.name.as_str();
        let provider: Box<dyn Provider> = match &cfg.provider {
            SmsProvider::Ovh {
                service,
                application_key,
                application_secret_file,
                consumer_key_file,
                sender,
            } => Box::new(ovh::Ovh {
                service: service.clone(),
                application_key: application_key.clone(),
                application_secret: secret(name, application_secret_file)?,
                consumer_key: secret(name, consumer_key_file)?,
                sender: sender.clone(),
                sender_for_response: cfg.inbound_secret_file.is_some(),
            }),
            SmsProvider::Brevo {
                api_key_file,
                sender,
            } => Box::new(brevo::Brevo {
                api_key: secret(name, api_key_file)?,
                sender: sender.clone(),
            }),
            SmsProvider::Smsmode {
                api_key_file,
                sender,
            } => Box::new(smsmode::Smsmode {
                api_key: secret(name, api_key_file)?,
                sender: sender.clone(),
            }),
            SmsProvider::Twilio {
                account_sid,
                auth_token_file,
                from,
            } => Box::new(twilio::Twilio {
                account_sid: account_sid.clone(),
                auth_token: secret(name, auth_token_file)?,
                from: from.clone(),
            }),
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout.as_std())
            .user_agent(concat!("Vigie/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SmsSetupError::Client {
                name: name.to_string(),
                message: e.to_string(),
            })?;
        Ok(SmsChannel {
            name: cfg.name.clone(),
            url: cfg.url.clone(),
            max_segments: cfg.max_segments as usize,
            provider,
            client,
        })
    }

    /// The text of a delivery: the SMS composed at fan-out, else its text
    /// cut to the channel's segments.
    fn text(&self, d: &DeliveryRow) -> Result<String, SendError> {
        let m = message_of(d)?;
        Ok(match &m.payload {
            Some(sms) => sms.clone(),
            None => segments::compose(&m.body_text, "", "", self.max_segments),
        })
    }
}

#[async_trait::async_trait]
impl Channel for SmsChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, d: &DeliveryRow) -> Result<(), SendError> {
        self.send_with_id(d).await.map(|_| ())
    }

    async fn send_with_id(&self, d: &DeliveryRow) -> Result<Option<String>, SendError> {
        let to = d
            .address
            .as_deref()
            .ok_or_else(|| SendError::permanent("no phone number for this delivery"))?;
        let text = self.text(d)?;
        let label = self.provider.label();
        let resp = self
            .provider
            .request(&self.client, &self.url, to, &text)
            .send()
            .await
            .map_err(|e| SendError::unanswered(e, &format!("{label}: "), str::to_string))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if status.is_success() {
            return self.provider.accepted(&json);
        }
        let message = match provider_error(&json, &body).as_str() {
            "" => format!("{label}: HTTP {status}"),
            text => format!("{label}: HTTP {status}: {text}"),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::transient(message))
        } else if matches!(status.as_u16(), 401..=403) {
            // The account, not this message: a revoked key, no credit
            // left, a signature refused (clock skew). Like SMTP AUTH: the
            // channel pauses and probes; the messages wait, none is lost.
            Err(SendError::unreachable(message))
        } else {
            Err(SendError::permanent(message))
        }
    }
}

/// The provider's error text: the `message` of its JSON error (OVH, Brevo,
/// Twilio, smsmode all say it there, some with a `code`), else the start of
/// the body.
fn provider_error(json: &serde_json::Value, body: &str) -> String {
    let field = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let code = json.get("code").map(|c| match c {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let text = match (field("message").or_else(|| field("error")), code) {
        (Some(m), Some(c)) => format!("{m} ({c})"),
        (Some(m), None) => m,
        (None, _) => body.trim().to_string(),
    };
    text.chars().take(300).collect()
}

/// An E.164 number without its `+` (`33612345678`), as Brevo and smsmode
/// write it.
fn digits(e164: &str) -> &str {
    e164.strip_prefix('+').unwrap_or(e164)
}

/// A JSON number or string as text (a message id).
fn id_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
