//! A lane: one channel with its limits (concurrent sends, rate limit,
//! chains), the queue of what it claimed and has not sent yet, how much it
//! claims ahead, and whether its server is reachable (outage and probes).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::channel::Channel;
use super::rate::RateLimit;
use crate::store::outbox::DeliveryRow;

/// How many deliveries a channel claims ahead, at least, per concurrent
/// send: a send that finishes takes the next one at once instead of
/// waiting for the worker's next transaction, and the worker claims in
/// batches.
const CLAIM_AHEAD: usize = 4;

/// Under load a channel claims ahead what it sends in 50 ms ([`AHEAD_SPAN`]
/// times what it sent in the last [`AHEAD_WINDOW`]), so that a crisis
/// alert never waits longer than that behind claimed broadcasts, and never
/// more than 50 ms worth of its rate limit nor [`MAX_AHEAD`]. Bigger batches mean fewer transactions:
/// at 15 000 messages per second, one commit per few hundred messages
/// instead of one per dozen (each commit writes every page it touched to
/// the write-ahead log).
const AHEAD_WINDOW: Duration = Duration::from_millis(10);
/// At most this many deliveries per claim: a claim of 700 rows when the
/// queue holds a dozen (as the claims grow at the start of a fan-out)
/// stopped the sends for 5 ms; smaller claims, one after the other, keep
/// the queue fed.
const MAX_CLAIM: usize = 256;
const AHEAD_SPAN: usize = 5;
const MAX_AHEAD: usize = 1024;

/// The first probe of an unreachable channel comes this long after the
/// failure; each next one doubles the wait, up to [`PROBE_EVERY`].
pub const PROBE_FIRST: Duration = Duration::from_secs(1);
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// A channel whose server could not be reached.
#[derive(Default)]
struct Outage {
    /// When to probe next; `None` while the channel works.
    probe_at: Option<DateTime<Utc>>,
    /// Probes failed in a row.
    failures: u32,
}

/// A channel with its limits.
pub(super) struct Lane {
    pub(super) channel: Arc<dyn Channel>,
    /// Bounds concurrent sends (the SMTP pool size, the webhook concurrency).
    pub(super) slots: Arc<Semaphore>,
    concurrency: usize,
    /// Deliveries a send task takes at once when there is a backlog (see
    /// [`Channel::chain`]).
    chain: usize,
    pub(super) rate: Option<RateLimit>,
    /// How many deliveries may be claimed, in flight and waiting, at least
    /// and at most (the rate limit's 50 ms, [`MAX_AHEAD`]).
    min_ahead: usize,
    max_ahead: usize,
    /// Sends finished in the current [`AHEAD_WINDOW`] and in the one
    /// before: the throughput that sizes the claims.
    window: std::sync::Mutex<SendWindow>,
    outage: std::sync::Mutex<Outage>,
    /// Claimed (`sending`) deliveries not yet handed to the channel, most
    /// urgent first.
    pub(super) queue: std::sync::Mutex<VecDeque<DeliveryRow>>,
    /// The last claim found fewer due deliveries than it asked for: no
    /// need to ask again until something new is written or time passes
    /// (see [`Outbox::run`](super::Outbox::run)).
    drained: std::sync::atomic::AtomicBool,
    /// Hand-overs so far: a step's claim that a hand-over overtook does not
    /// decide `drained`.
    pub(super) handed: std::sync::atomic::AtomicU64,
    /// Deliveries taken from `queue` by send tasks (see [`Held`]).
    held: std::sync::atomic::AtomicUsize,
}

/// Counts sends per [`AHEAD_WINDOW`].
struct SendWindow {
    start: Instant,
    count: usize,
    previous: usize,
}

impl SendWindow {
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= AHEAD_WINDOW {
            // A window with no send in between counts as an idle one.
            self.previous = if elapsed < AHEAD_WINDOW * 2 {
                self.count
            } else {
                0
            };
            self.count = 0;
            self.start = now;
        }
    }
}

impl Lane {
    /// A lane for `channel`: at most `concurrency` sends at once and
    /// `per_second` per second (0: no limit).
    pub(super) fn new(channel: Arc<dyn Channel>, concurrency: usize, per_second: u32) -> Lane {
        let concurrency = concurrency.max(1);
        let by_rate = if per_second == 0 {
            usize::MAX
        } else {
            per_second as usize / 20
        };
        let max_ahead = MAX_AHEAD.min(by_rate).max(concurrency);
        // Chains only where the rate limit leaves at most a
        // millisecond between sends.
        let chain = if per_second == 0 || per_second >= 1000 {
            channel.chain().max(1)
        } else {
            1
        };
        let min_ahead = (CLAIM_AHEAD * concurrency).min(max_ahead);
        Lane {
            channel,
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            chain,
            rate: RateLimit::new(per_second),
            min_ahead,
            max_ahead,
            window: std::sync::Mutex::new(SendWindow {
                start: Instant::now(),
                count: 0,
                previous: 0,
            }),
            outage: Default::default(),
            queue: Default::default(),
            drained: Default::default(),
            handed: Default::default(),
            held: Default::default(),
        }
    }

    pub(super) fn drained(&self) -> bool {
        self.drained.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers what a claim of `asked` deliveries found.
    pub(super) fn claimed(&self, asked: usize, got: usize) {
        self.set_drained(got < asked);
    }

    pub(super) fn handed_over(&self) -> u64 {
        self.handed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn set_drained(&self, drained: bool) {
        self.drained
            .store(drained, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<DeliveryRow>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a finished send.
    pub(super) fn sent_one(&self) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        w.roll(Instant::now());
        w.count += 1;
    }

    /// How many deliveries may be claimed now, in flight and waiting.
    fn ahead(&self) -> usize {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        w.roll(Instant::now());
        (w.previous.max(w.count) * AHEAD_SPAN).clamp(self.min_ahead, self.max_ahead)
    }

    /// Deliveries taken by send tasks and not yet done.
    fn in_flight(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn outage(&self) -> std::sync::MutexGuard<'_, Outage> {
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the channel is paused (unreachable, not yet time to probe).
    pub(super) fn paused(&self, now: DateTime<Utc>) -> bool {
        self.outage().probe_at.is_some_and(|at| now < at)
    }

    /// How many more deliveries to claim: none while paused, one to probe.
    pub(super) fn wants(&self, now: DateTime<Utc>) -> usize {
        let in_flight = self.in_flight();
        match self.outage().probe_at {
            Some(at) if now < at => 0,
            Some(_) => usize::from(in_flight + self.queue().len() == 0),
            None => self
                .ahead()
                .saturating_sub(in_flight + self.queue().len())
                .min(MAX_CLAIM),
        }
    }

    /// A send found the server unreachable: pauses the channel until the
    /// next probe (a failed probe doubles the wait; sends that were in
    /// flight when the channel paused change nothing). Returns whether it
    /// was working until now.
    pub(super) fn unreachable(&self, now: DateTime<Utc>) -> bool {
        let mut o = self.outage();
        let was_up = o.probe_at.is_none();
        match o.probe_at {
            None => o.failures = 1,
            Some(at) if now >= at => o.failures += 1,
            Some(_) => return false,
        }
        let wait = PROBE_FIRST
            .saturating_mul(1 << (o.failures - 1).min(16))
            .min(PROBE_EVERY);
        o.probe_at = Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
        was_up
    }

    /// A send went through: returns whether the channel was paused.
    pub(super) fn reachable(&self) -> bool {
        let mut o = self.outage();
        let was_down = o.probe_at.is_some();
        *o = Outage::default();
        was_down
    }

    /// The deliveries a send task takes next: one, or a chain's worth when
    /// there is more than one for each connection; counted in flight until
    /// the [`Held`] is dropped.
    pub(super) fn take(&self) -> (Vec<DeliveryRow>, Held<'_>) {
        let mut queue = self.queue();
        let n = (queue.len() / self.concurrency).clamp(1, self.chain);
        let n = n.min(queue.len());
        self.held.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        (queue.drain(..n).collect(), Held(self, n))
    }

    /// No send in flight and nothing claimed waiting for one.
    pub(super) fn idle(&self) -> bool {
        self.queue().is_empty() && self.slots.available_permits() == self.concurrency
    }

    /// Whether the worker should claim more now: the queue is down to half
    /// of what is claimed ahead of the sends.
    pub(super) fn low(&self) -> bool {
        self.queue().len() <= self.ahead().saturating_sub(self.concurrency) / 2
    }
}

/// Deliveries a send task took from its lane's queue: in flight until this
/// is dropped (when the task is done with them, or if it panics).
pub(super) struct Held<'a>(&'a Lane, usize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0
            .held
            .fetch_sub(self.1, std::sync::atomic::Ordering::Relaxed);
    }
}
