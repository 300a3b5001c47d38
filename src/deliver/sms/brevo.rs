//! Brevo (ex-Sendinblue) transactional SMS.
//!
//! Relied on (developers.brevo.com, "Send SMS message to a mobile number"):
//! `POST {base}/v3/transactionalSMS/send` with the `api-key` header and a
//! JSON body `{sender, recipient, content, type, unicodeEnabled}`; the
//! recipient is the number with its country code (`33612345678`); the
//! sender up to 11 letters and digits. Success is `201` with
//! `{reference, messageId, smsCount, usedCredits, remainingCredits}`: the
//! `messageId` is recorded (else the `reference`). Errors are
//! `{code, message}` (`400 invalid_parameter`, `401 unauthorized`,
//! `402 not_enough_credits`).

use serde_json::json;

use super::segments::{Encoding, encoding};
use super::{Provider, digits, id_of};
use crate::deliver::SendError;

pub(super) struct Brevo {
    pub api_key: String,
    pub sender: String,
}

impl Provider for Brevo {
    fn label(&self) -> &'static str {
        "Brevo"
    }

    fn request(
        &self,
        client: &reqwest::Client,
        base: &str,
        to: &str,
        text: &str,
    ) -> reqwest::RequestBuilder {
        client
            .post(format!("{base}/v3/transactionalSMS/send"))
            .header("api-key", &self.api_key)
            .header("accept", "application/json")
            .json(&json!({
                "sender": self.sender,
                "recipient": digits(to),
                "content": text,
                "type": "transactional",
                "unicodeEnabled": encoding(text) == Encoding::Ucs2,
            }))
    }

    fn accepted(&self, body: &serde_json::Value) -> Result<Option<String>, SendError> {
        Ok(id_of(body.get("messageId")).or_else(|| id_of(body.get("reference"))))
    }
}
