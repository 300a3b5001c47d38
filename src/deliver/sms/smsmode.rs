//! smsmode (REST API v1).
//!
//! Relied on (dev.smsmode.com, "Send an SMS"): `POST {base}/sms/v1/messages`
//! with the `X-Api-Key` header and a JSON body
//! `{recipient: {to}, body: {text}, from}`; the number with its country
//! code (`33612345678`); the sender up to 11 characters. Success is `201`
//! with the message resource, whose `messageId` is recorded. Errors carry
//! a JSON `message` (and `code`/`status`).

use serde_json::json;

use super::{Provider, digits, id_of};
use crate::deliver::SendError;

pub(super) struct Smsmode {
    pub api_key: String,
    pub sender: String,
}

impl Provider for Smsmode {
    fn label(&self) -> &'static str {
        "smsmode"
    }

    fn request(
        &self,
        client: &reqwest::Client,
        base: &str,
        to: &str,
        text: &str,
    ) -> reqwest::RequestBuilder {
        client
            .post(format!("{base}/sms/v1/messages"))
            .header("X-Api-Key", &self.api_key)
            .header("Accept", "application/json")
            .json(&json!({
                "recipient": {"to": digits(to)},
                "body": {"text": text},
                "from": self.sender,
            }))
    }

    fn accepted(&self, body: &serde_json::Value) -> Result<Option<String>, SendError> {
        Ok(id_of(body.get("messageId")))
    }
}
