//! The webhook channel: a JSON `POST` per delivery, signed.
//!
//! Headers: `Idempotency-Key: <delivery id>` (so a receiver can drop the
//! duplicate a crash mid-send may cause) and
//! `Vigie-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! 2xx is success; 429, 5xx, timeouts and connection errors are retried;
//! other 4xx fail at once.
//!
//! The URL may hold the gateway's credentials (`?apikey=`, `user:pass@`):
//! no failure message carries it. reqwest's errors are taken without their
//! URL, and every message this channel gives the outbox (recorded as the
//! delivery's reason, logged, shown on the pages and in the API) is
//! scrubbed of the URL's secrets, in case a receiver echoes them back.

use std::path::PathBuf;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::channel::{Channel, SendError, message_of};
use crate::config::daemon::{WebhookConfig, scrub_url, secret_path};
use crate::store::outbox::DeliveryRow;

pub struct WebhookChannel {
    name: String,
    /// As written in the configuration: what failure messages are
    /// scrubbed of.
    url: String,
    /// The same, parsed once (not at every call).
    target: reqwest::Url,
    key: Hmac<Sha256>,
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("webhook `{name}`: cannot read the secret file {path}: {source}")]
    Secret {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("webhook `{name}`: {message}")]
    Client { name: String, message: String },
}

/// `t=<unix>,v1=<hex>` for a body sent at `t`, with `key` the HMAC keyed
/// with the channel's secret (once per channel, cloned per call).
pub fn signature(key: &Hmac<Sha256>, t: i64, body: &str) -> String {
    let mut mac = key.clone();
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookChannel {
    pub fn new(cfg: &WebhookConfig) -> Result<WebhookChannel, WebhookSetupError> {
        let path = secret_path(&cfg.secret_file);
        let secret = crate::config::source::read_text(&path).map_err(|source| {
            WebhookSetupError::Secret {
                name: cfg.name.clone(),
                path: path.clone(),
                source,
            }
        })?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout.as_std())
            .user_agent(concat!("Vigie/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookSetupError::Client {
                name: cfg.name.clone(),
                message: e.to_string(),
            })?;
        let target = reqwest::Url::parse(&cfg.url).map_err(|e| WebhookSetupError::Client {
            name: cfg.name.clone(),
            message: scrub_url(&format!("invalid URL: {e}"), &cfg.url),
        })?;
        Ok(WebhookChannel {
            name: cfg.name.clone(),
            url: cfg.url.clone(),
            target,
            key: Hmac::new_from_slice(secret.trim_end_matches(['\r', '\n']).as_bytes())
                .expect("HMAC takes any key length"),
            client,
        })
    }
}

#[async_trait::async_trait]
impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, d: &DeliveryRow) -> Result<(), SendError> {
        let body = message_of(d)?
            .payload
            .clone()
            .unwrap_or_else(|| "{}".to_string());
        let t = chrono::Utc::now().timestamp();
        let resp = self
            .client
            .post(self.target.clone())
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", d.id.to_string())
            .header("Vigie-Signature", signature(&self.key, t, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::unanswered(e, "", |chain| scrub_url(chain, &self.url)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // Scrubbed whole, then cut: a secret echoed across the cut must not
        // leave its first half in the reason.
        let body = scrub_url(&resp.text().await.unwrap_or_default(), &self.url);
        let text: String = body.trim().chars().take(200).collect();
        let message = match text.as_str() {
            "" => format!("HTTP {status}"),
            body => format!("HTTP {status}: {body}"),
        };
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::transient(message))
        } else {
            Err(SendError::permanent(message))
        }
    }
}
