//! `[heartbeat]` (SPEC §16): the URL of an external monitor (a dead man's
//! switch) the daemon calls while it is healthy, and how often.

use crate::config::reader::{Ctx, Table};
use crate::model::DurationValue;

#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    /// Called with GET; may carry a key (shown redacted everywhere).
    pub url: String,
    /// Time between two calls (default 5 minutes).
    pub every: DurationValue,
}

/// Reads `[heartbeat]`: `url` (http:// or https://), `every` (a duration,
/// default "5m", at least "1s").
pub(super) fn read_heartbeat(ctx: &Ctx<'_>, t: Table<'_, '_>) -> Option<HeartbeatConfig> {
    // A monitor's key is often the path itself: hidden too.
    let url = super::read_http_url(ctx, &t, "heartbeat", super::redact_url_and_path);
    let every = t.every(std::time::Duration::from_secs(300));
    t.finish();
    Some(HeartbeatConfig {
        url: url?,
        every: every?,
    })
}
