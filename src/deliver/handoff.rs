//! Claims made inside a declaration's transaction and handed to the
//! outbox once committed ([`Handoff`]).

use chrono::{DateTime, Utc};

use super::outbox::Outbox;
use crate::store::outbox::{self, DeliveryRow};

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
pub struct Handoff(pub(super) Outbox);

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

/// The outbox as the engine sees it: a declaration claims its first
/// deliveries in its own transaction and hands them over after the commit;
/// anything else that writes deliveries wakes the outbox.
impl crate::engine::OutboxPort for Handoff {
    fn claim(
        &self,
        tx: &rusqlite::Connection,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Box<dyn FnOnce() + Send>> {
        let claimed = Handoff::claim(self, tx, now)?;
        let me = self.clone();
        Ok(Box::new(move || me.hand_over(claimed)))
    }

    fn wake(&self) {
        self.0.wake.notify_one();
    }
}
