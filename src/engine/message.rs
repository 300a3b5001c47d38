//! One message to people, as outbox rows: which channels carry one message
//! per person, the contact each channel needs (the e-mail address for
//! `email`, the field an `[email.NAME]` names — `mssante` —, the phone
//! number for every other channel), and the delivery
//! rows of one rendered message to one person — skipped, with the reason
//! in French, when the contact is missing.
//!
//! The event fan-out ([`super::fanout`]), the routine reminders
//! ([`crate::schedule::reminders`]) and the preview
//! ([`super::preview`]) all go through here, so a person lacking a
//! contact is skipped by the same rule the preview announces.

use crate::config::Professional;
use crate::config::daemon::{DaemonConfig, WebhookConfig};
use crate::store::outbox::{NewDelivery, Priority};

use super::render::Rendered;

/// The channels of a step that carry one message per person: e-mail, and
/// every webhook not declared `per_recipient = false` (a per-step webhook
/// gets one call for the whole step).
pub fn per_recipient<'a>(
    webhooks: &std::collections::BTreeMap<String, WebhookConfig>,
    channels: &'a [String],
) -> Vec<&'a String> {
    channels
        .iter()
        .filter(|ch| {
            ch.as_str() == "email" || webhooks.get(ch.as_str()).is_none_or(|w| w.per_recipient)
        })
        .collect()
}

/// Whether `p` lacks the contact `channel` needs (the delivery would be
/// skipped).
pub fn lacks_contact(daemon: &DaemonConfig, p: &Professional, channel: &str) -> bool {
    p.contact(daemon.contact_of(channel)).is_err()
}

/// Where a delivery comes from: an event's step, or nothing (a reminder).
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub event_id: Option<i64>,
    pub step_id: Option<i64>,
    pub priority: Priority,
}

/// The deliveries of one rendered message to one person: one per channel,
/// skipped when the contact is missing. `payload(channel, address)` gives
/// the body of a webhook call (`None` for e-mail). Only `email` and
/// webhooks: [`routed_deliveries`] knows the `[email.NAME]` channels.
pub fn person_deliveries(
    p: &Professional,
    channels: &[&String],
    r: &Rendered,
    origin: Origin,
    payload: impl Fn(&str, Option<&str>) -> Option<String>,
) -> Vec<NewDelivery> {
    deliveries(p, channels, |ch| p.contact_for(ch), r, origin, payload)
}

/// [`person_deliveries`] on any channel of `daemon`: an `[email.NAME]`
/// delivers to the directory field it names (`mssante`).
pub fn routed_deliveries(
    daemon: &DaemonConfig,
    p: &Professional,
    channels: &[&String],
    r: &Rendered,
    origin: Origin,
    payload: impl Fn(&str, Option<&str>) -> Option<String>,
) -> Vec<NewDelivery> {
    let contact = |ch: &str| p.contact(daemon.contact_of(ch));
    deliveries(p, channels, contact, r, origin, payload)
}

fn deliveries(
    p: &Professional,
    channels: &[&String],
    contact: impl Fn(&str) -> Result<String, &'static str>,
    r: &Rendered,
    origin: Origin,
    payload: impl Fn(&str, Option<&str>) -> Option<String>,
) -> Vec<NewDelivery> {
    channels
        .iter()
        .map(|ch| {
            let (address, skipped) = match contact(ch) {
                Ok(a) => (Some(a), None),
                Err(why) => (None, Some(why.to_string())),
            };
            NewDelivery {
                event_id: origin.event_id,
                step_id: origin.step_id,
                recipient_id: Some(p.id.clone()),
                recipient_name: p.name.clone(),
                channel: ch.to_string(),
                payload: payload(ch, address.as_deref()),
                address,
                priority: origin.priority,
                skipped,
                subject: r.subject.clone(),
                body_text: r.text.clone(),
                body_html: r.html.clone(),
            }
        })
        .collect()
}
