//! Delivery: the outbox worker and the channels it sends through (SPEC §8).
//!
//! The worker is a [`Outbox::step`] that, in one transaction, records the
//! outcomes of the sends finished since the last step and claims due
//! deliveries, most urgent first (crisis, then broadcasts, then reminders),
//! about what the channel sends in 50 ms; it hands them to one task per
//! connection, which waits for the channel's rate limit, sends (one
//! delivery, or with a backlog a chain of them on one SMTP connection, see
//! [`Channel::chain`]) and leaves each outcome for the next step as soon as
//! it is known; and a thin loop around it, woken when deliveries are
//! written ([`Outbox::wake`]), by finished sends, and every second (retries
//! come due). A channel whose last claim came back short is not asked again
//! until something is written or the second has passed. Under load one
//! step records and claims many deliveries: one commit for many messages
//! instead of two per message. The worker and
//! its send tasks run on a thread of their own, `vigie-send` (see
//! `daemon::run_outbox`); the database work on `vigie-db`; a declaration
//! hands its first claims over directly ([`Handoff`]).
//!
//! A failed send is never dropped: a transient failure is retried with
//! capped exponential backoff and jitter for up to 24 hours, a permanent one
//! fails at once; every attempt is recorded with its error.
//!
//! When a channel's server cannot be reached at all (connection refused),
//! the channel pauses: what it had claimed goes back to the queue without
//! an attempt, and it sends one delivery at a time to probe the server,
//! after [`PROBE_FIRST`], then doubling up to [`PROBE_EVERY`]. As soon as
//! one goes through, the channel resumes at full speed and its deliveries
//! waiting for a retry are due at once: a mail server back after a minute's
//! outage gets the whole fan-out within seconds, not at each delivery's own
//! backoff, and the outage costs a few attempts instead of one per
//! delivery every few seconds. `vigie_channel_up` in the metrics shows it. A delivery is
//! `sending` from its claim until its outcome is committed: a crash in
//! between leaves it `sending`, and the next start sends it again (twice at
//! worst, never zero times).

pub mod channel;
pub mod email;
pub mod smtp;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::schedule::clock::Clock;
use crate::store::Store;
use crate::store::outbox::{self, DeliveryRow, Outcome};
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

/// The reason recorded on a claimed delivery dropped because its event was
/// resolved before it was handed to a transport (as [`crate::engine`] says
/// for the deliveries it cancels).
const CANCELLED_REASON: &str = "événement levé avant l'envoi";

/// A channel's rate limit: `per_second` sends per second on average, in
/// bursts of at most `per_second / 100` (10 ms worth; 1 below 200 per
/// second). Spacing every send exactly would put a sub-millisecond wait
/// before each one, which tokio's millisecond timer rounds up: with 8
/// slots and 10 000 per second, sends came at 4 000 per second.
pub struct RateLimit {
    /// 1 / per_second.
    spacing: Duration,
    /// How far ahead of the average rate a send may go.
    tolerance: Duration,
    /// The theoretical instant of the next send (GCRA).
    next: std::sync::Mutex<Instant>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Option<RateLimit> {
        if per_second == 0 {
            return None;
        }
        let spacing = Duration::from_secs_f64(1.0 / f64::from(per_second));
        let burst = (per_second / 100).max(1);
        Some(RateLimit {
            spacing,
            tolerance: spacing * (burst - 1),
            next: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Takes the place of one send at `now`: `None` to send at once, else
    /// the instant to wait for.
    pub fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = (*next).max(now);
        *next = at + self.spacing;
        let ready = at.checked_sub(self.tolerance).unwrap_or(at);
        (ready > now).then_some(ready)
    }
}

/// A channel with its limits.
struct Lane {
    channel: Arc<dyn Channel>,
    /// Bounds concurrent sends (the SMTP pool size, the webhook concurrency).
    slots: Arc<Semaphore>,
    concurrency: usize,
    /// Deliveries a send task takes at once when there is a backlog (see
    /// [`Channel::chain`]).
    chain: usize,
    rate: Option<RateLimit>,
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
    queue: std::sync::Mutex<VecDeque<DeliveryRow>>,
    /// The last claim found fewer due deliveries than it asked for: no
    /// need to ask again until something new is written or time passes
    /// (see [`Outbox::run`]).
    drained: std::sync::atomic::AtomicBool,
    /// Hand-overs so far: a step's claim that a hand-over overtook does not
    /// decide `drained`.
    handed: std::sync::atomic::AtomicU64,
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
    fn drained(&self) -> bool {
        self.drained.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers what a claim of `asked` deliveries found.
    fn claimed(&self, asked: usize, got: usize) {
        self.set_drained(got < asked);
    }

    fn handed_over(&self) -> u64 {
        self.handed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_drained(&self, drained: bool) {
        self.drained
            .store(drained, std::sync::atomic::Ordering::Relaxed);
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<DeliveryRow>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a finished send.
    fn sent_one(&self) {
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
    fn paused(&self, now: DateTime<Utc>) -> bool {
        self.outage().probe_at.is_some_and(|at| now < at)
    }

    /// How many more deliveries to claim: none while paused, one to probe.
    fn wants(&self, now: DateTime<Utc>) -> usize {
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
    fn unreachable(&self, now: DateTime<Utc>) -> bool {
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
    fn reachable(&self) -> bool {
        let mut o = self.outage();
        let was_down = o.probe_at.is_some();
        *o = Outage::default();
        was_down
    }

    /// The deliveries a send task takes next: one, or a chain's worth when
    /// there is more than one for each connection; counted in flight until
    /// the [`Held`] is dropped.
    fn take(&self) -> (Vec<DeliveryRow>, Held<'_>) {
        let mut queue = self.queue();
        let n = (queue.len() / self.concurrency).clamp(1, self.chain);
        let n = n.min(queue.len());
        self.held.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        (queue.drain(..n).collect(), Held(self, n))
    }

    /// Whether the worker should claim more now: the queue is down to half
    /// of what is claimed ahead of the sends.
    fn low(&self) -> bool {
        self.queue().len() <= self.ahead().saturating_sub(self.concurrency) / 2
    }
}

/// Deliveries a send task took from its lane's queue: in flight until this
/// is dropped (when the task is done with them, or if it panics).
struct Held<'a>(&'a Lane, usize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0
            .held
            .fetch_sub(self.1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Deliveries claimed inside another transaction (a declaration's), to be
/// handed to the outbox once it is committed: see [`Handoff`]. Per
/// channel: the claimed deliveries and how many were asked for.
#[derive(Debug, Default)]
pub struct Claimed(Vec<(String, Vec<DeliveryRow>, usize)>);

/// Lets a declaration claim what the outbox would claim next (its own
/// crisis deliveries first) in the transaction that writes them, and hand
/// them over once committed: the first message leaves without a second
/// transaction in between. A claim never committed hands nothing over; a
/// crash between the commit and the send leaves the deliveries `sending`,
/// requeued at the next start, as for the outbox's own claims.
#[derive(Clone)]
pub struct Handoff(Outbox);

impl Handoff {
    /// Claims, inside the caller's transaction, what each channel can send
    /// now.
    pub fn claim(&self, c: &rusqlite::Connection, now: DateTime<Utc>) -> rusqlite::Result<Claimed> {
        let mut out = Vec::new();
        for (name, lane) in self.0.lanes.iter() {
            // A channel with no room now learns nothing (0 asked).
            let n = lane.wants(now);
            let batch = if n > 0 {
                outbox::claim_due(c, name, now, n)?
            } else {
                Vec::new()
            };
            out.push((name.clone(), batch, n));
        }
        Ok(Claimed(out))
    }

    /// Hands committed claims to the outbox, which sends them at once. As
    /// the claim was made after the declaration's writes, it also tells
    /// which channels have nothing more due: the caller need not wake the
    /// outbox with [`Outbox::wake`].
    pub fn hand_over(&self, claimed: Claimed) {
        for (name, batch, asked) in claimed.0 {
            if let Some(lane) = self.0.lanes.get(&name) {
                lane.handed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                lane.claimed(asked, batch.len());
                lane.queue().extend(batch);
            }
        }
        self.0.sent.notify_one();
    }
}

/// Outcomes waiting to be recorded that wake the outbox to record them: what
/// a crash can leave sent but not marked sent (sent again at the restart)
/// is about this many, plus what is in flight.
const RECORD_EVERY: usize = 64;

/// How often every channel claims even if nothing woke the outbox: retries
/// come due with time.
const POLL: Duration = Duration::from_secs(1);

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

/// What a send said about its channel's server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The delivery went through.
    Reached,
    /// The server could not be reached.
    Unreachable,
    /// Neither (refused, timed out…).
    Unknown,
}

/// What one [`Outbox::step`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Outcomes of sends recorded.
    pub recorded: usize,
}

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    lanes: Arc<HashMap<String, Arc<Lane>>>,
    clock: Arc<dyn Clock>,
    /// Woken when deliveries are written (a declaration, an escalation
    /// tier, a reminder...): every channel claims again.
    pub wake: Arc<Notify>,
    /// Woken by the outbox itself (a send finished, outcomes to record,
    /// claimed deliveries handed over): only channels that may have more
    /// due claim again.
    sent: Arc<Notify>,
    tracker: TaskTracker,
    metrics: Arc<crate::web::metrics::Metrics>,
    /// Outcomes of finished sends, and claimed deliveries of resolved
    /// events, recorded by the next step.
    done: Arc<std::sync::Mutex<Vec<Outcome>>>,
    /// Channels reachable again: their deliveries waiting for a retry are
    /// made due by the next step.
    recovered: Arc<std::sync::Mutex<Vec<String>>>,
    /// Set at shutdown: send tasks finish their send and take no more.
    stopping: Arc<std::sync::atomic::AtomicBool>,
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
                (
                    channel.name().to_string(),
                    Arc::new(Lane {
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
                    }),
                )
            })
            .collect::<HashMap<String, Arc<Lane>>>();
        for name in lanes.keys() {
            metrics.set_channel_up(name, true);
        }
        Outbox {
            store,
            lanes: Arc::new(lanes),
            clock,
            wake: Arc::new(Notify::new()),
            sent: Arc::new(Notify::new()),
            tracker: TaskTracker::new(),
            metrics,
            done: Arc::default(),
            recovered: Arc::default(),
            stopping: Arc::default(),
        }
    }

    /// For declarations: claims in their own transaction.
    pub fn handoff(&self) -> Handoff {
        Handoff(self.clone())
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

    /// In one transaction: records the outcomes of finished sends, drops the
    /// claimed deliveries of events resolved meanwhile, and claims what is
    /// due on each channel (most urgent first) up to what it can send
    /// soon; then hands work to free slots.
    pub async fn step(&self) -> Result<StepOutcome, crate::store::StoreError> {
        self.step_after(true).await
    }

    /// A step; `written` when new deliveries may have been written (or
    /// time has passed) since the last claim of each channel, else only
    /// channels whose last claim was full claim again.
    async fn step_after(&self, written: bool) -> Result<StepOutcome, crate::store::StoreError> {
        if written {
            for lane in self.lanes.values() {
                lane.set_drained(false);
            }
        }
        // What a declaration handed over leaves before anything else.
        for lane in self.lanes.values() {
            self.dispatch(lane);
        }
        let now = self.clock.now();
        let outcomes = Arc::new(self.take_outcomes());
        let wanted: Vec<(String, usize)> = self
            .lanes
            .iter()
            .filter(|(_, lane)| !lane.drained())
            .map(|(name, lane)| (name.clone(), lane.wants(now)))
            .filter(|(_, n)| *n > 0)
            .collect();
        // Events of the claimed deliveries still waiting for a slot (none
        // while a connection is free: what was handed over is being sent).
        let waiting: BTreeSet<i64> = self
            .lanes
            .values()
            .filter(|l| l.slots.available_permits() == 0)
            .flat_map(|l| {
                l.queue()
                    .iter()
                    .filter_map(|d| d.event_id)
                    .collect::<Vec<_>>()
            })
            .collect();
        let recovered =
            std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|e| e.into_inner()));
        if outcomes.is_empty() && wanted.is_empty() && waiting.is_empty() && recovered.is_empty() {
            return Ok(StepOutcome::default());
        }
        let handed: HashMap<String, u64> = wanted
            .iter()
            .map(|(name, _)| (name.clone(), self.lanes[name].handed_over()))
            .collect();
        let recorded = outcomes.clone();
        let retry_now = recovered.clone();
        let result = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                outbox::record_all(&tx, &recorded)?;
                for channel in &retry_now {
                    outbox::retry_now(&tx, channel, now)?;
                }
                let resolved = crate::store::events::resolved_among(&tx, &waiting)?;
                let mut claimed = Vec::new();
                for (name, n) in wanted {
                    let batch = outbox::claim_due(&tx, &name, now, n)?;
                    claimed.push((name, batch, n));
                }
                tx.commit()?;
                Ok((resolved, claimed))
            })
            .await;
        let (resolved, claimed) = match result {
            Ok(r) => r,
            Err(e) => {
                // Kept for the next step: the sends happened.
                self.done
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(outcomes.iter().cloned());
                self.recovered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(recovered);
                return Err(e);
            }
        };
        let mut out = StepOutcome {
            recorded: outcomes.len(),
            ..Default::default()
        };
        if !resolved.is_empty() {
            self.drop_resolved(&resolved);
        }
        for (name, batch, asked) in claimed {
            out.claimed += batch.len();
            let lane = &self.lanes[&name];
            if handed.get(&name) == Some(&lane.handed_over()) {
                lane.claimed(asked, batch.len());
            } else {
                lane.set_drained(false);
            }
            lane.queue().extend(batch);
        }
        for lane in self.lanes.values() {
            self.dispatch(lane);
        }
        Ok(out)
    }

    /// Takes out of the queues the claimed deliveries of resolved events
    /// (as the resolution cancelled those not claimed), but not their
    /// resolve notices: recorded `cancelled` by the next step.
    fn drop_resolved(&self, events: &BTreeMap<i64, Vec<i64>>) {
        let mut dropped = Vec::new();
        for lane in self.lanes.values() {
            lane.queue().retain(|d| {
                let keep = match d.event_id.and_then(|e| events.get(&e)) {
                    Some(notices) => d.step_id.is_some_and(|s| notices.contains(&s)),
                    None => true,
                };
                if !keep {
                    dropped.push(Outcome::Cancelled {
                        id: d.id,
                        reason: CANCELLED_REASON.to_string(),
                    });
                }
                keep
            });
        }
        if !dropped.is_empty() {
            tracing::info!(
                deliveries = dropped.len(),
                "claimed deliveries of resolved events cancelled before sending"
            );
            self.leave_for_next_step(dropped);
        }
    }

    /// Outcomes for the next step to record, and that step woken.
    fn leave_for_next_step(&self, outcomes: Vec<Outcome>) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(outcomes);
        self.sent.notify_one();
    }

    /// Starts a send task on each free slot of `lane` that has work; each
    /// task goes on with the lane's queue until it is empty.
    fn dispatch(&self, lane: &Arc<Lane>) {
        // One new task per delivery at most: a delivery alone does not
        // start a task on every free connection.
        let mut left = lane.queue().len();
        loop {
            if left == 0 {
                return;
            }
            let Ok(permit) = lane.slots.clone().try_acquire_owned() else {
                return;
            };
            left -= 1;
            let this = self.clone();
            let lane = lane.clone();
            self.tracker.spawn(async move {
                while !this.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    if lane.paused(this.clock.now()) {
                        break;
                    }
                    let (batch, _held) = lane.take();
                    if batch.is_empty() {
                        break;
                    }
                    let mut wait = None;
                    for _ in &batch {
                        if let Some(at) = lane.rate.as_ref().and_then(|r| r.reserve(Instant::now()))
                        {
                            wait = Some(at);
                        }
                    }
                    if let Some(at) = wait {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    let (tried, reached, unreachable) = this.send_some(&lane, &batch).await;
                    if tried < batch.len() {
                        // Not tried (no connection could be opened): back
                        // in front, sent next or, if the server cannot be
                        // reached, given back by channel_down.
                        let mut queue = lane.queue();
                        for d in batch[tried..].iter().rev() {
                            queue.push_front(d.clone());
                        }
                    }
                    if unreachable {
                        this.channel_down(&lane);
                        break;
                    }
                    if reached && lane.reachable() {
                        this.channel_back(&lane);
                    }
                    // Claim more (and record what was sent) while this
                    // task goes on.
                    if lane.low() {
                        this.sent.notify_one();
                    }
                }
                drop(permit);
                this.sent.notify_one();
            });
        }
    }

    /// A send found the channel's server unreachable: the channel pauses,
    /// and what it had claimed goes back to the queue (no attempt counted).
    fn channel_down(&self, lane: &Lane) {
        let name = lane.channel.name();
        let was_up = lane.unreachable(self.clock.now());
        // What goes back is due again at the probe.
        lane.set_drained(false);
        let returned: Vec<Outcome> = lane
            .queue()
            .drain(..)
            .map(|d| Outcome::Unclaimed { id: d.id })
            .collect();
        if was_up {
            self.metrics.set_channel_up(name, false);
            tracing::warn!(
                channel = %name,
                requeued = returned.len(),
                "channel unreachable: its sends are paused, one probe at a time until it answers"
            );
        }
        self.leave_for_next_step(returned);
    }

    /// A send went through on a paused channel: it resumes, and its
    /// deliveries waiting for a retry are due at once.
    fn channel_back(&self, lane: &Lane) {
        let name = lane.channel.name();
        self.metrics.set_channel_up(name, true);
        tracing::info!(channel = %name, "channel reachable again: sending resumes");
        self.recovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_string());
        // Its retrying deliveries are made due: claimed by the next step.
        lane.set_drained(false);
        self.sent.notify_one();
    }

    fn take_outcomes(&self) -> Vec<Outcome> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// At shutdown: puts back what was claimed but not sent, and records
    /// the outcomes left by the last sends.
    async fn flush(&self) -> Result<(), crate::store::StoreError> {
        let mut outcomes = self.take_outcomes();
        for lane in self.lanes.values() {
            outcomes.extend(
                lane.queue()
                    .drain(..)
                    .map(|d| Outcome::Unclaimed { id: d.id }),
            );
        }
        if outcomes.is_empty() {
            return Ok(());
        }
        self.store
            .call(move |c| {
                let tx = c.transaction()?;
                outbox::record_all(&tx, &outcomes)?;
                tx.commit()
            })
            .await
    }

    /// Sends deliveries of one channel (a chain, or one), leaving each
    /// outcome for the next step as soon as it is known (a chain's first
    /// messages are recorded while it goes on; after [`RECORD_EVERY`]
    /// outcomes the step is woken). Returns how many were tried, whether
    /// one reached the server and whether the server could not be reached.
    async fn send_some(&self, lane: &Lane, ds: &[DeliveryRow]) -> (usize, bool, bool) {
        let (mut tried, mut reached, mut unreachable) = (0, false, false);
        let mut last = Instant::now();
        let mut each = |i: usize, result: Result<(), SendError>| {
            let now = Instant::now();
            let (outcome, reach) = self.outcome(&ds[i], result, now - last);
            last = now;
            tried += 1;
            reached |= reach == Reach::Reached;
            unreachable |= reach == Reach::Unreachable;
            lane.sent_one();
            let waiting = {
                let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
                done.push(outcome);
                done.len()
            };
            if waiting >= RECORD_EVERY {
                self.sent.notify_one();
            }
        };
        if let [d] = ds {
            let result = lane.channel.send(d).await;
            each(0, result);
        } else {
            lane.channel.send_chain(ds, &mut each).await;
        }
        (tried, reached, unreachable)
    }

    fn outcome(
        &self,
        d: &DeliveryRow,
        result: Result<(), SendError>,
        elapsed: Duration,
    ) -> (Outcome, Reach) {
        let ms = elapsed.as_millis() as u64;
        let now = self.clock.now();
        let id = d.id;
        self.metrics
            .observe_send(&d.channel, elapsed, result.is_ok());
        match result {
            Ok(()) => {
                tracing::debug!(delivery = id, channel = %d.channel, ms, "sent");
                let sent = Outcome::Sent {
                    id,
                    at: now,
                    duration_ms: ms,
                };
                (sent, Reach::Reached)
            }
            Err(e) => {
                let reach = if e.unreachable {
                    Reach::Unreachable
                } else {
                    Reach::Unknown
                };
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
                let failed = Outcome::Failed {
                    id,
                    at: now,
                    error: message,
                    duration_ms: ms,
                    retry_at,
                };
                (failed, reach)
            }
        }
    }

    /// Runs [`Outbox::step`] whenever woken, and at least every second
    /// (retries come due with time), until `stop`; then waits for sends in
    /// flight, at most `grace`. [`Outbox::recover`] comes first, before
    /// anything can declare: a declaration's claims (see [`Handoff`]) are
    /// `sending` too, and must not be requeued as if a crash had left them.
    pub async fn run(self, stop: CancellationToken, grace: Duration) {
        // Each wake says what may have changed: deliveries written (`wake`)
        // or time passed (the poll: retries come due) — every channel
        // claims; a send finished (`sent`) — only channels that may have
        // more due. An idle channel costs no transaction per send.
        let mut poll = tokio::time::Instant::now();
        let mut written = true;
        loop {
            if written {
                poll = tokio::time::Instant::now() + POLL;
            }
            if let Err(e) = self.step_after(written).await {
                tracing::error!(error = %e, "outbox step failed");
            }
            written = tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => true,
                _ = self.sent.notified() => tokio::time::Instant::now() >= poll,
                _ = tokio::time::sleep_until(poll) => true,
            };
        }
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait()).await;
        if finished.is_err() {
            tracing::warn!(
                "sends still in flight at shutdown; they will be retried at the next start"
            );
        }
        if let Err(e) = self.flush().await {
            // The rows stay `sending` and are requeued at the next start:
            // sent twice at worst, never lost.
            tracing::error!(error = %e, "cannot record the outcome of the last sends");
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
    fn the_rate_limit_allows_short_bursts_and_keeps_the_average() {
        // 50 per second: no burst, one send every 20 ms.
        let r = RateLimit::new(50).unwrap();
        let t0 = Instant::now();
        assert_eq!(r.reserve(t0), None);
        assert_eq!(r.reserve(t0), Some(t0 + Duration::from_millis(20)));
        assert_eq!(r.reserve(t0), Some(t0 + Duration::from_millis(40)));
        // 10 000 per second: 100 at once, then at the average rate.
        let r = RateLimit::new(10_000).unwrap();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(r.reserve(t0), None);
        }
        let wait = r.reserve(t0).expect("the 101st waits");
        assert!(wait - t0 >= Duration::from_micros(99) && wait - t0 <= Duration::from_micros(101));
        // Over one second, 10 000 sends plus the burst at most.
        let r = RateLimit::new(10_000).unwrap();
        let t0 = Instant::now();
        let mut within = 0;
        while r
            .reserve(t0)
            .is_none_or(|at| at <= t0 + Duration::from_secs(1))
        {
            within += 1;
        }
        assert!((10_000..=10_101).contains(&within), "{within}");
        assert!(RateLimit::new(0).is_none());
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
