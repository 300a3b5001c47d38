//! OVHcloud SMS.
//!
//! Relied on (api.ovh.com console, `/sms`, and OVHcloud's "First steps
//! with the OVHcloud APIs" guide): `POST {base}/sms/{serviceName}/jobs`
//! (base `https://eu.api.ovh.com/1.0`) with a JSON body `{message,
//! receivers, sender, charset, coding, noStopClause, priority,
//! senderForResponse}`, signed with four headers: `X-Ovh-Application`
//! (application key), `X-Ovh-Consumer` (consumer key), `X-Ovh-Timestamp`
//! (Unix time) and `X-Ovh-Signature`, `$1$` then the hex SHA-1 of the
//! application secret, consumer key, method, full URL, body and timestamp
//! joined by `+`. Success is `200` with `{ids, validReceivers,
//! invalidReceivers, totalCreditsRemoved}`: the first id is recorded; a
//! number in `invalidReceivers` (or no id) is a permanent failure.
//! Errors are `{message}` (`400`, `403 "This call has not been granted"`,
//! `403` "Invalid signature").
//!
//! The timestamp is this server's clock: OVH refuses a request whose time
//! is too far from its own (`/auth/time`), so the server must be kept on
//! time (NTP, as systemd-timesyncd does by default); asking OVH's time
//! before every SMS would double the calls during a fan-out.
//!
//! `senderForResponse = true` when the channel accepts answers by SMS: OVH
//! then sends from a number that can be answered (an alphanumeric sender
//! cannot), and forwards the answers to the callback URL.

use serde_json::json;
use sha1::{Digest, Sha1};

use super::segments::{Encoding, encoding};
use super::{Provider, id_of};
use crate::deliver::SendError;

pub(super) struct Ovh {
    pub service: String,
    pub application_key: String,
    pub application_secret: String,
    pub consumer_key: String,
    pub sender: String,
    pub sender_for_response: bool,
}

/// `$1$` + hex SHA-1 of the signed string (see the module docs).
pub fn signature(
    application_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &str,
    timestamp: i64,
) -> String {
    let signed = format!("{application_secret}+{consumer_key}+{method}+{url}+{body}+{timestamp}");
    format!("$1${}", hex::encode(Sha1::digest(signed.as_bytes())))
}

impl Provider for Ovh {
    fn label(&self) -> &'static str {
        "OVH"
    }

    fn request(
        &self,
        client: &reqwest::Client,
        base: &str,
        to: &str,
        text: &str,
    ) -> reqwest::RequestBuilder {
        let url = format!("{base}/sms/{}/jobs", self.service);
        let mut body = json!({
            "message": text,
            "receivers": [to],
            "charset": "UTF-8",
            "coding": if encoding(text) == Encoding::Gsm7 { "7bit" } else { "8bit" },
            "noStopClause": true,
            "priority": "high",
            "senderForResponse": self.sender_for_response,
        });
        if !self.sender_for_response {
            body["sender"] = json!(self.sender);
        }
        let body = body.to_string();
        let t = chrono::Utc::now().timestamp();
        let sig = signature(
            &self.application_secret,
            &self.consumer_key,
            "POST",
            &url,
            &body,
            t,
        );
        client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Ovh-Application", &self.application_key)
            .header("X-Ovh-Consumer", &self.consumer_key)
            .header("X-Ovh-Timestamp", t.to_string())
            .header("X-Ovh-Signature", sig)
            .body(body)
    }

    fn accepted(&self, body: &serde_json::Value) -> Result<Option<String>, SendError> {
        let invalid = body
            .get("invalidReceivers")
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty());
        let id = body
            .get("ids")
            .and_then(|v| v.as_array())
            .and_then(|a| id_of(a.first()));
        match id {
            Some(id) if !invalid => Ok(Some(id)),
            _ => Err(SendError::permanent(
                "OVH: the number was refused (invalidReceivers): nothing was sent",
            )),
        }
    }
}
