//! The channels of a configuration, built by name: what the daemon sends
//! through and what `vigie test-send` checks, from the same code, so that
//! any channel the daemon can build can be tried from the command line.

use std::sync::Arc;

use super::channel::Channel;
use super::email::EmailChannel;
use super::sms::SmsChannel;
use super::webhook::WebhookChannel;
use crate::config::daemon::{DaemonConfig, EmailConfig, EmailTransport, SmsConfig};

/// A channel as the outbox runs it: the channel, its connections, its rate
/// limit (messages per second, 0: none).
pub type Built = (Arc<dyn Channel>, usize, u32);

fn email(cfg: &EmailConfig, install_id: &str) -> Result<Built, String> {
    let ch = EmailChannel::new(cfg, install_id)
        .map_err(|e| format!("e-mail channel `{}`: {e}", cfg.name))?;
    let (pool, per_second) = match &cfg.transport {
        EmailTransport::Smtp(s) => (s.pool as usize, s.per_second),
        EmailTransport::File { .. } => (8, 0),
    };
    Ok((Arc::new(ch), pool, per_second))
}

fn sms(cfg: &SmsConfig) -> Result<Built, String> {
    let ch = SmsChannel::new(cfg).map_err(|e| e.to_string())?;
    Ok((Arc::new(ch), cfg.pool as usize, cfg.per_second))
}

/// Every channel of the configuration: `[email]`, each `[email.NAME]`,
/// each `[webhook.NAME]`, each `[sms.NAME]`.
pub fn build_all(cfg: &DaemonConfig, install_id: &str) -> Result<Vec<Built>, String> {
    let mut out = Vec::new();
    for e in cfg.all_email_channels() {
        out.push(email(e, install_id)?);
    }
    for w in cfg.webhooks.values() {
        let ch = WebhookChannel::new(w).map_err(|e| e.to_string())?;
        out.push((Arc::new(ch), 16, 0));
    }
    for s in cfg.sms.values() {
        out.push(sms(s)?);
    }
    Ok(out)
}

/// The channel named `name` (`email`, an `[email.NAME]`, a webhook, an
/// SMS channel), built
/// as the daemon builds it; `Ok(None)` when there is no such channel.
pub fn build_one(
    cfg: &DaemonConfig,
    name: &str,
    install_id: &str,
) -> Result<Option<Built>, String> {
    if let Some(e) = cfg.email_channel(name) {
        return email(e, install_id).map(Some);
    }
    if let Some(w) = cfg.webhooks.get(name) {
        let ch = WebhookChannel::new(w).map_err(|e| e.to_string())?;
        return Ok(Some((Arc::new(ch), 16, 0)));
    }
    if let Some(s) = cfg.sms.get(name) {
        return sms(s).map(Some);
    }
    Ok(None)
}

/// The names of every channel of the configuration, `email` first.
pub fn names(cfg: &DaemonConfig) -> Vec<String> {
    cfg.all_email_channels()
        .map(|e| e.name.clone())
        .chain(cfg.webhooks.keys().cloned())
        .chain(cfg.sms.keys().cloned())
        .collect()
}
