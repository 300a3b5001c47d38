//! Twilio Programmable Messaging.
//!
//! Relied on (twilio.com/docs/messaging/api/message-resource, "Create a
//! Message resource"): `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! HTTP Basic authentication `AccountSid:AuthToken`, a form body with `To`
//! (E.164, `+33612345678`), `Body`, and `From` (a Twilio number or an
//! alphanumeric sender) or `MessagingServiceSid`. Success is `201` with
//! the Message resource, whose `sid` (`SM…`) is recorded. Errors are
//! `{code, message, more_info, status}` (`400` with code 21211 for an
//! invalid `To`, `429` with code 20429 when too many requests).

use super::{Provider, id_of};
use crate::config::daemon::TwilioFrom;
use crate::deliver::SendError;

pub(super) struct Twilio {
    pub account_sid: String,
    pub auth_token: String,
    pub from: TwilioFrom,
}

impl Provider for Twilio {
    fn label(&self) -> &'static str {
        "Twilio"
    }

    fn request(
        &self,
        client: &reqwest::Client,
        base: &str,
        to: &str,
        text: &str,
    ) -> reqwest::RequestBuilder {
        let from = match &self.from {
            TwilioFrom::From(f) => ("From", f.as_str()),
            TwilioFrom::MessagingService(m) => ("MessagingServiceSid", m.as_str()),
        };
        client
            .post(format!(
                "{base}/2010-04-01/Accounts/{}/Messages.json",
                self.account_sid
            ))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[("To", to), from, ("Body", text)])
    }

    fn accepted(&self, body: &serde_json::Value) -> Result<Option<String>, SendError> {
        Ok(id_of(body.get("sid")))
    }
}
