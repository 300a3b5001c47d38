//! Prometheus metrics kept in memory by the daemon; counts that live in the
//! database (events by state, deliveries by state) are read at scrape time.
//!
//! At crate level: every layer may count (the engine its tiers, the outbox
//! its sends); only `web` renders them (`/metrics`). One instance per
//! daemon, so that two daemons in one process (the tests) count apart.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Microseconds since the Unix epoch, now: the instants the `vigie::timing`
/// lines give, compared across threads (the commit of a declaration on
/// the database thread, the start of its first send on the sending one).
pub fn timing_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Upper bounds (seconds) of the send latency histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// Sends by (channel, outcome).
    sends: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub retries: AtomicU64,
    /// Escalation tiers notified since start (every event together).
    pub tier_notifications: AtomicU64,
    pub reminder_firings: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Whether each channel's server answers (false while paused after a
    /// connection failure).
    channel_up: Mutex<BTreeMap<String, bool>>,
}

impl Metrics {
    pub fn set_channel_up(&self, channel: &str, up: bool) {
        self.channel_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.to_string(), up);
    }

    pub fn observe_send(&self, channel: &str, took: Duration, ok: bool) {
        let outcome = if ok { "sent" } else { "error" };
        *self
            .sends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((channel.to_string(), outcome))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut lat = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = lat.entry(channel.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The in-memory part of the exposition, in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP vigie_channel_up Whether the channel's server can be reached (0: sends paused, probing)."
        );
        let _ = writeln!(out, "# TYPE vigie_channel_up gauge");
        for (ch, up) in self
            .channel_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vigie_channel_up{{channel=\"{ch}\"}} {}",
                u8::from(*up)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vigie_sends_total Send attempts by channel and outcome."
        );
        let _ = writeln!(out, "# TYPE vigie_sends_total counter");
        for ((ch, outcome), n) in self.sends.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "vigie_sends_total{{channel=\"{ch}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP vigie_send_duration_seconds Time to hand one delivery to its transport."
        );
        let _ = writeln!(out, "# TYPE vigie_send_duration_seconds histogram");
        for (ch, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "vigie_send_duration_seconds_bucket{{channel=\"{ch}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "vigie_send_duration_seconds_bucket{{channel=\"{ch}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "vigie_send_duration_seconds_sum{{channel=\"{ch}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "vigie_send_duration_seconds_count{{channel=\"{ch}\"}} {}",
                h.count
            );
        }
        let counters = [
            (
                "vigie_send_retries_total",
                "Failed sends scheduled for a retry.",
                &self.retries,
            ),
            (
                "vigie_escalation_tier_notifications_total",
                "Escalation tiers notified.",
                &self.tier_notifications,
            ),
            (
                "vigie_reloads_ok_total",
                "Accepted configuration reloads.",
                &self.reloads_ok,
            ),
            (
                "vigie_reloads_failed_total",
                "Refused configuration reloads.",
                &self.reloads_failed,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
    }
}
