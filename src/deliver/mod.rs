//! Delivery: the outbox worker and the channels it sends through (SPEC §8).
//!
//! The worker is a [`Outbox::step`] that claims due deliveries, most urgent
//! first (crisis, then broadcasts, then reminders), as many per channel as
//! the channel has free connections, and hands each to a task that waits
//! for the channel's rate limit, sends, and records the outcome; and a thin
//! loop around it. A failed send is never dropped: a transient failure is
//! retried with capped exponential backoff and jitter for up to 24 hours, a
//! permanent one fails at once; every attempt is recorded with its error.

pub mod channel;
pub mod email;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::schedule::clock::Clock;
use crate::store::Store;
use crate::store::outbox::{self, DeliveryRow};
pub use channel::{Channel, SendError};

/// The first retry waits this long; each next one doubles, up to [`BACKOFF_CAP`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
pub const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// A delivery still failing this long after it was queued fails for good.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before retry number `attempts` (1 = first retry), with ±20 %
/// jitter so that a recovering server is not hit by every retry at once.
pub fn backoff(attempts: u32, rng: &mut impl Rng) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_CAP);
    let jitter = rng.random_range(0.8..1.2);
    capped.mul_f64(jitter)
}

/// A channel with its limits.
struct Lane {
    channel: Arc<dyn Channel>,
    /// Bounds concurrent sends (the SMTP pool size, the webhook concurrency).
    slots: Arc<Semaphore>,
    /// Minimum spacing between two sends (1 / per_second).
    spacing: Duration,
    next_slot: Arc<tokio::sync::Mutex<Instant>>,
}

/// What one [`Outbox::step`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Deliveries handed to channel tasks.
    pub started: usize,
}

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    lanes: Arc<HashMap<String, Lane>>,
    clock: Arc<dyn Clock>,
    /// Woken when deliveries are queued or a send finishes.
    pub wake: Arc<Notify>,
    tracker: TaskTracker,
    metrics: Arc<crate::web::metrics::Metrics>,
    /// Outcomes of sends the database could not record yet.
    unrecorded: Arc<std::sync::Mutex<Vec<Outcome>>>,
}

/// What happened to one send, to be recorded.
#[derive(Clone, Debug)]
enum Outcome {
    Sent {
        id: i64,
        at: DateTime<Utc>,
        ms: u64,
    },
    Failed {
        id: i64,
        at: DateTime<Utc>,
        message: String,
        ms: u64,
        retry_at: Option<DateTime<Utc>>,
    },
}

impl Outcome {
    fn id(&self) -> i64 {
        match self {
            Outcome::Sent { id, .. } | Outcome::Failed { id, .. } => *id,
        }
    }
}

impl Outbox {
    pub fn new(
        store: Store,
        channels: Vec<(Arc<dyn Channel>, usize, u32)>,
        clock: Arc<dyn Clock>,
        metrics: Arc<crate::web::metrics::Metrics>,
    ) -> Outbox {
        let lanes = channels
            .into_iter()
            .map(|(channel, concurrency, per_second)| {
                let spacing = if per_second == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64(1.0 / f64::from(per_second))
                };
                (
                    channel.name().to_string(),
                    Lane {
                        channel,
                        slots: Arc::new(Semaphore::new(concurrency.max(1))),
                        spacing,
                        next_slot: Arc::new(tokio::sync::Mutex::new(Instant::now())),
                    },
                )
            })
            .collect();
        Outbox {
            store,
            lanes: Arc::new(lanes),
            clock,
            wake: Arc::new(Notify::new()),
            tracker: TaskTracker::new(),
            metrics,
            unrecorded: Arc::default(),
        }
    }

    /// Puts back in the queue what a crash left mid-send.
    pub async fn recover(&self) -> Result<usize, crate::store::StoreError> {
        let n = self.store.call(|c| outbox::requeue_in_flight(c)).await?;
        if n > 0 {
            tracing::warn!(
                deliveries = n,
                "requeued deliveries interrupted by a stop; they may arrive twice"
            );
        }
        Ok(n)
    }

    /// Claims what is due on each channel, up to its free slots, and starts
    /// sending it.
    pub async fn step(&self) -> Result<StepOutcome, crate::store::StoreError> {
        self.flush_unrecorded().await;
        let now = self.clock.now();
        let mut out = StepOutcome::default();
        for (name, lane) in self.lanes.iter() {
            let free = lane.slots.available_permits();
            if free == 0 {
                continue;
            }
            let name2 = name.clone();
            let batch = self
                .store
                .call(move |c| outbox::claim_due(c, &name2, now, free))
                .await?;
            for d in batch {
                let Ok(permit) = lane.slots.clone().try_acquire_owned() else {
                    // Cannot happen (we claimed at most `free`); requeue rather than lose.
                    let id = d.id;
                    self.store
                        .call(move |c| {
                            c.execute(
                                "UPDATE deliveries SET state = 'pending' WHERE id = ?1",
                                [id],
                            )
                            .map(|_| ())
                        })
                        .await?;
                    continue;
                };
                out.started += 1;
                let this = self.clone();
                let channel = lane.channel.clone();
                let spacing = lane.spacing;
                let next_slot = lane.next_slot.clone();
                self.tracker.spawn(async move {
                    if !spacing.is_zero() {
                        let wait_until = {
                            let mut slot = next_slot.lock().await;
                            let now = Instant::now();
                            let at = (*slot).max(now);
                            *slot = at + spacing;
                            at
                        };
                        tokio::time::sleep_until(wait_until.into()).await;
                    }
                    this.send_one(channel.as_ref(), d).await;
                    drop(permit);
                    this.wake.notify_one();
                });
            }
        }
        Ok(out)
    }

    async fn send_one(&self, channel: &dyn Channel, d: DeliveryRow) {
        let started = Instant::now();
        let result = channel.send(&d).await;
        let elapsed = started.elapsed();
        let ms = elapsed.as_millis() as u64;
        let now = self.clock.now();
        let id = d.id;
        self.metrics
            .observe_send(&d.channel, elapsed, result.is_ok());
        let outcome = match result {
            Ok(()) => {
                tracing::debug!(delivery = id, channel = %d.channel, ms, "sent");
                Outcome::Sent { id, at: now, ms }
            }
            Err(e) => {
                let created = crate::store::parse_ts(&d.created_at);
                let retry_at = retry_at(&e, d.attempts + 1, created, now);
                let message = e.to_string();
                match retry_at {
                    Some(at) => {
                        self.metrics
                            .retries
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(delivery = id, channel = %d.channel, error = %message, retry_at = %at, "send failed, will retry");
                    }
                    None => {
                        tracing::error!(delivery = id, channel = %d.channel, error = %message, "send failed for good")
                    }
                }
                Outcome::Failed {
                    id,
                    at: now,
                    message,
                    ms,
                    retry_at,
                }
            }
        };
        self.record(outcome).await;
    }

    /// Records the outcome of a send. When the database cannot take it
    /// (disk full), the outcome is kept in memory and recorded again at each
    /// step; if the daemon stops meanwhile, the row is still `sending` and is
    /// requeued at the next start: sent twice at worst, never lost.
    async fn record(&self, outcome: Outcome) {
        let o = outcome.clone();
        let recorded = self
            .store
            .call(move |c| match o {
                Outcome::Sent { id, at, ms } => outbox::record_sent(c, id, at, ms),
                Outcome::Failed {
                    id,
                    at,
                    message,
                    ms,
                    retry_at,
                } => outbox::record_failure(c, id, at, &message, ms, retry_at),
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(delivery = outcome.id(), error = %e, "cannot record the outcome of a send; will try again");
            self.unrecorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(outcome);
        }
    }

    /// Records again the outcomes the database could not take.
    async fn flush_unrecorded(&self) {
        let pending =
            std::mem::take(&mut *self.unrecorded.lock().unwrap_or_else(|e| e.into_inner()));
        for o in pending {
            self.record(o).await;
        }
    }

    /// Runs [`Outbox::step`] whenever woken, and at least every second
    /// (retries come due with time), until `stop`; then waits for sends in
    /// flight, at most `grace`.
    pub async fn run(self, stop: CancellationToken, grace: Duration) {
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "cannot requeue interrupted deliveries");
        }
        loop {
            if let Err(e) = self.step().await {
                tracing::error!(error = %e, "outbox step failed");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait()).await;
        self.flush_unrecorded().await;
        if finished.is_err() {
            tracing::warn!(
                "sends still in flight at shutdown; they will be retried at the next start"
            );
        }
    }
}

/// When to retry a failed send, or `None` to fail it for good.
fn retry_at(
    e: &SendError,
    attempts: u32,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !e.retryable {
        return None;
    }
    let wait = backoff(attempts, &mut rand::rng());
    let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
    let limit = created + chrono::Duration::from_std(GIVE_UP_AFTER).unwrap_or_default();
    (at <= limit).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_ten_seconds_and_is_capped_at_fifteen_minutes() {
        let mut rng = rand::rng();
        for _ in 0..100 {
            let first = backoff(1, &mut rng);
            assert!(first >= Duration::from_secs(8) && first <= Duration::from_secs(12));
            let second = backoff(2, &mut rng);
            assert!(second >= Duration::from_secs(16) && second <= Duration::from_secs(24));
            let late = backoff(30, &mut rng);
            assert!(late <= BACKOFF_CAP.mul_f64(1.2) && late >= BACKOFF_CAP.mul_f64(0.8));
        }
    }

    #[test]
    fn permanent_failures_and_old_deliveries_are_not_retried() {
        let now = Utc::now();
        let transient = SendError::transient("connection refused");
        let permanent = SendError::permanent("550 no such user");
        assert!(retry_at(&transient, 1, now, now).is_some());
        assert!(retry_at(&permanent, 1, now, now).is_none());
        let old = now - chrono::Duration::hours(24);
        assert!(retry_at(&transient, 40, old, now).is_none());
    }
}
