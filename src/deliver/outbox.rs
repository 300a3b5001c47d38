//! The outbox worker: [`Outbox::step`] (record outcomes, claim what is
//! due, hand it to send tasks), the send tasks themselves, the pause and
//! resumption of an unreachable channel, and [`Outbox::run`], the loop
//! around the step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::channel::{Channel, SendError};
use super::handoff::Handoff;
use super::lanes::Lane;
use super::retry::retry_at;
use crate::schedule::clock::Clock;
use crate::store::Store;
use crate::store::outbox::{self, DeliveryRow, Outcome};

/// The reason recorded on a claimed delivery dropped because its event was
/// resolved before it was handed to a transport (as [`crate::engine`] says
/// for the deliveries it cancels).
const CANCELLED_REASON: &str = "événement levé avant l'envoi";

/// Outcomes waiting to be recorded that wake the outbox to record them: what
/// a crash can leave sent but not marked sent (sent again at the restart)
/// is about this many, plus what is in flight.
const RECORD_EVERY: usize = 64;

/// How often every channel claims even if nothing woke the outbox: retries
/// come due with time.
const POLL: Duration = Duration::from_secs(1);

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

/// What one [`Outbox::step`] did: the outcomes it recorded (of the sends
/// finished since the step before) and what it claimed (now being sent;
/// their outcomes are recorded by a later step). All zero: nothing was
/// due and nothing had finished ([`StepOutcome::nothing_due`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    /// Deliveries claimed, handed to the send tasks.
    pub claimed: usize,
    /// Recorded sent.
    pub sent: usize,
    /// Recorded failed and due again later (`next_attempt_at`).
    pub retrying: usize,
    /// Recorded failed for good.
    pub failed: usize,
    /// Recorded cancelled (their event was resolved before the send).
    pub cancelled: usize,
    /// Put back in the queue without an attempt (an unreachable channel).
    pub requeued: usize,
}

impl StepOutcome {
    /// Counts what `outcomes` record.
    fn recording(outcomes: &[Outcome]) -> StepOutcome {
        let mut out = StepOutcome::default();
        for o in outcomes {
            match o {
                Outcome::Sent { .. } => out.sent += 1,
                Outcome::Failed {
                    retry_at: Some(_), ..
                } => out.retrying += 1,
                Outcome::Failed { retry_at: None, .. } => out.failed += 1,
                Outcome::Cancelled { .. } => out.cancelled += 1,
                Outcome::Unclaimed { .. } => out.requeued += 1,
            }
        }
        out
    }

    /// The step found nothing to record and nothing due.
    pub fn nothing_due(&self) -> bool {
        *self == StepOutcome::default()
    }
}

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    pub(super) lanes: Arc<HashMap<String, Arc<Lane>>>,
    clock: Arc<dyn Clock>,
    /// Woken when deliveries are written (a declaration, an escalation
    /// tier, a reminder...): every channel claims again.
    pub wake: Arc<Notify>,
    /// Woken by the outbox itself (a send finished, outcomes to record,
    /// claimed deliveries handed over): only channels that may have more
    /// due claim again.
    pub(super) sent: Arc<Notify>,
    tracker: TaskTracker,
    metrics: Arc<crate::metrics::Metrics>,
    /// Outcomes of finished sends, and claimed deliveries of resolved
    /// events, recorded by the next step.
    done: Arc<std::sync::Mutex<Vec<Outcome>>>,
    /// Channels reachable again: their deliveries waiting for a retry are
    /// made due by the next step.
    recovered: Arc<std::sync::Mutex<Vec<String>>>,
    /// Set at shutdown: send tasks finish their send and take no more.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Steps with deliveries failed for good whose other deliveries are
    /// not all settled yet: their `delivery_failed` entry in the main
    /// courante (one per step, with the count) is written by the step that
    /// finds them settled.
    failing: Arc<std::sync::Mutex<BTreeSet<i64>>>,
}

impl Outbox {
    pub fn new(
        store: Store,
        channels: Vec<(Arc<dyn Channel>, usize, u32)>,
        clock: Arc<dyn Clock>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Outbox {
        let lanes = channels
            .into_iter()
            .map(|(channel, concurrency, per_second)| {
                let lane = Lane::new(channel, concurrency, per_second);
                (lane.channel.name().to_string(), Arc::new(lane))
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
            failing: Arc::default(),
        }
    }

    /// For declarations: claims in their own transaction.
    pub fn handoff(&self) -> Handoff {
        Handoff(self.clone())
    }

    /// Puts back in the queue what a crash left mid-send.
    pub async fn recover(&self) -> Result<usize, crate::store::StoreError> {
        let n = self.store.call(|c| outbox::requeue_in_flight(c)).await?;
        // The failures a stop left without their main courante entry.
        let since = self.clock.now() - chrono::Duration::days(2);
        let steps = self
            .store
            .call(move |c| crate::store::journal::unlogged_failed_steps(c, since))
            .await?;
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(steps);
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

    /// Waits, at most `limit`, until no send is in flight and nothing
    /// claimed waits for one: every outcome is then left for the next
    /// [`Outbox::step`]. Returns whether that happened in time. For who
    /// drives the outbox step by step instead of [`Outbox::run`] (tests):
    /// `step`, `settled`, `step` records what the first one claimed.
    pub async fn settled(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            if self.lanes.values().all(|l| l.idle()) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
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
        let failing = self.failing.clone();
        let result = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                outbox::record_all(&tx, &recorded)?;
                // The main courante never holds up the deliveries: a
                // failure to write its entry is logged, the step goes on.
                let unsettled = log_failures(&tx, &recorded, &failing, now).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot write the failed deliveries to the main courante");
                    None
                });
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
                if let Some(unsettled) = unsettled {
                    *failing.lock().unwrap_or_else(|e| e.into_inner()) = unsettled;
                }
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
        let mut out = StepOutcome::recording(&outcomes);
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
        let mut each = |i: usize, result: Result<Option<String>, SendError>| {
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
            let result = lane.channel.send_with_id(d).await;
            each(0, result);
        } else {
            lane.channel
                .send_chain(ds, &mut |i, r| each(i, r.map(|()| None)))
                .await;
        }
        (tried, reached, unreachable)
    }

    fn outcome(
        &self,
        d: &DeliveryRow,
        result: Result<Option<String>, SendError>,
        elapsed: Duration,
    ) -> (Outcome, Reach) {
        let ms = elapsed.as_millis() as u64;
        let now = self.clock.now();
        let id = d.id;
        self.metrics
            .observe_send(&d.channel, elapsed, result.is_ok());
        match result {
            Ok(provider_id) => {
                // `us`: the send alone (in a chain, since the message
                // before), from `started_at_us`; read with the
                // declaration's timings (module engine::declare).
                let us = elapsed.as_micros() as u64;
                tracing::debug!(
                    target: "vigie::timing",
                    delivery = id,
                    event = d.event_id.unwrap_or_default(),
                    channel = %d.channel,
                    us,
                    started_at_us = crate::metrics::timing_now_us().saturating_sub(us),
                    provider_id,
                    "sent"
                );
                let sent = Outcome::Sent {
                    id,
                    at: now,
                    duration_ms: ms,
                    provider_id,
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

/// Writes, in the step's transaction, the `delivery_failed` entry of each
/// step that `recorded` failed for good in, or that failed before, once
/// all its deliveries are settled (one entry per step, with the count,
/// never one per delivery). Returns the steps still unsettled, to keep
/// once the transaction is committed; `None` when there was nothing to
/// look at (the common case: no query).
fn log_failures(
    c: &rusqlite::Connection,
    recorded: &[Outcome],
    failing: &std::sync::Mutex<BTreeSet<i64>>,
    now: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<Option<BTreeSet<i64>>> {
    let failed: Vec<i64> = recorded
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed {
                id, retry_at: None, ..
            } => Some(*id),
            _ => None,
        })
        .collect();
    let mut steps = failing.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if failed.is_empty() && steps.is_empty() {
        return Ok(None);
    }
    steps.extend(crate::store::journal::steps_of(c, &failed)?);
    crate::engine::journal::log_failed_steps(c, &steps, now).map(Some)
}
