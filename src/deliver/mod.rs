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
//! hands its first claims over directly ([`Handoff`]). A step returns
//! what it did ([`StepOutcome`]: claimed, and recorded sent, retrying,
//! failed...); tests drive the worker without its loop, `step`, then
//! [`Outbox::settled`] (the sends it started are over), then `step` again
//! to see their outcomes.
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
//!
//! Layout: `outbox` the worker (step, send tasks, run loop), `lanes`
//! one channel's limits, queue and outage, `handoff` claims made in a
//! declaration's transaction, `retry` the retry policy, `rate` the
//! rate limit; [`channel`] the trait every channel implements, [`channels`]
//! the channels of a configuration built by name, [`email`]
//! (with its SMTP pool, [`smtp`]), [`webhook`] and [`sms`] (one per
//! provider) the channels. Every item
//! other modules use is re-exported here (`deliver::Outbox`,
//! `deliver::Handoff`...).

pub mod channel;
pub mod channels;
pub mod email;
mod handoff;
mod lanes;
mod outbox;
mod rate;
mod retry;
pub mod sms;
pub mod smtp;
pub mod webhook;

pub use channel::{Channel, SendError};
pub use handoff::{Claimed, Handoff};
pub use lanes::{PROBE_EVERY, PROBE_FIRST};
pub use outbox::{Outbox, StepOutcome};
pub use rate::RateLimit;
pub use retry::{BACKOFF_BASE, BACKOFF_CAP, GIVE_UP_AFTER, backoff};
