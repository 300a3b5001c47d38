//! Events and escalation (SPEC §7): declare, change level, resolve, record
//! responses, and advance escalation timers.
//!
//! Every decision to notify is written to the outbox in the same SQLite
//! transaction as the state change it follows from: the deliveries of a
//! declaration are committed with the event, the next tier's deliveries
//! with the timer that moved. This module never sends anything; the
//! outbox worker ([`crate::deliver`]) does.
//!
//! Decisions made where SPEC is silent:
//! - An event without `key` uses the empty key: declaring the same
//!   scenario again updates the unresolved event of the same kind (a level
//!   change); an exercise and a real event are never the same event.
//! - A scenario with levels declared without `level` starts at its first
//!   level; an update without `level` keeps the event's level.
//! - Quorum counts the distinct recipients of the event (any step) whose
//!   latest response is one of the scenario's `ack` responses, against the
//!   quorum of the tier in progress (the last tier when a reloaded plan
//!   has fewer). A scenario without escalation has no quorum: it is never
//!   acknowledged by responses. An exhausted event that later reaches the
//!   quorum becomes acknowledged. One function counts it
//!   ([`quorum`]), for the engine, the API and the pages.
//! - The "exhausted" alert goes to the plan's owners by e-mail.
//! - The actions checklist (SPEC §12) grows in the transaction of the
//!   declaration or level change: the cards of the level entered whose
//!   title is not on it yet (a level that goes down and up again adds
//!   nothing twice). Ticking is logged in the main courante with it.

mod actions;
pub mod cap;
mod declare;
mod escalation;
mod fanout;
pub mod journal;
pub mod links;
pub mod message;
mod preview;
mod remind;
pub mod render;
pub mod report;
mod respond;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::config::{ConfigSet, Plan, Scenario};
use crate::store::StoreError;
use crate::store::events::EventRow;
use links::LinkSigner;

pub use actions::{action_done, actions};
pub use declare::{change_level, declare, resolve};
pub use escalation::{Quorum, event_quorum, quorum, tick};
pub use fanout::audience;
pub use preview::{PreviewStep, preview};
pub use remind::{Reminded, remind};
pub use respond::{
    BadAnswer, COMMENT_MAX_CHARS, ETA_MAX_MINUTES, LinkView, SmsAnswer, answer, link, respond,
    respond_by_sms,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: no such event, scenario or link.
    #[error("{0}")]
    NotFound(String),
    /// 410: the event is resolved.
    #[error("{0}")]
    Gone(String),
    /// 422: a value that the plan does not allow.
    #[error("{0}")]
    Invalid(String),
    /// 409: the request does not fit the event's state.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an event operation needs: the configuration in use, the link
/// signer, and the instant (taken once per operation).
#[derive(Clone)]
pub struct Ctx {
    pub set: Arc<ConfigSet>,
    pub links: LinkSigner,
    pub now: DateTime<Utc>,
    /// The outbox, when a declaration may claim its deliveries itself.
    pub outbox: Option<Arc<dyn OutboxPort>>,
    /// Who asks (an operator, `token:NAME`): declarations, level changes
    /// and resolutions are written to the audit log in their own
    /// transaction. `None` for what the daemon does by itself.
    pub actor: Option<String>,
    /// Counters every operation may add to (tiers notified…).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The outbox as the engine needs it, declared here and implemented by
/// [`crate::deliver`] (the engine never reaches into the sender's state).
pub trait OutboxPort: Send + Sync {
    /// Claims, in the caller's transaction, what the outbox will send
    /// first (a declaration's first messages leave without waiting for
    /// another transaction). Returns what hands the claim over to the
    /// sender: to be called once the transaction is committed, never
    /// before (nothing is sent that is not committed).
    fn claim(
        &self,
        tx: &rusqlite::Connection,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<Box<dyn FnOnce() + Send>>;

    /// Deliveries were written: look for them now.
    fn wake(&self);
}

impl Ctx {
    /// The same operation, on behalf of `actor` (audited).
    pub fn by(mut self, actor: impl Into<String>) -> Ctx {
        self.actor = Some(actor.into());
        self
    }

    /// The audit log row of this operation, in the caller's transaction.
    fn audit(&self, c: &Connection, action: &str, detail: &str) -> rusqlite::Result<()> {
        match &self.actor {
            Some(actor) => crate::store::audit_row(c, self.now, actor, action, detail),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    pub scenario: String,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub exercise: bool,
    #[serde(default)]
    pub key: Option<String>,
    /// Allows a re-declaration to lower the running event's level.
    #[serde(default)]
    pub downgrade: bool,
}

#[derive(Clone, Debug)]
pub struct Declared {
    pub event_id: i64,
    /// An unresolved event with the same scenario, key and exercise flag
    /// existed.
    pub updated: bool,
    /// The level changed (and the new level's broadcasts were queued).
    pub level_changed: bool,
    /// Deliveries queued (not counting skipped ones).
    pub queued: usize,
    /// The event as committed.
    pub event: EventRow,
    /// Its deliveries by state as committed (after the first claim: what
    /// left at once is `sending`).
    pub by_state: Vec<(String, i64)>,
    /// The outbox was handed the first deliveries (and told what is left):
    /// no need to wake it.
    pub handed_over: bool,
    /// Unresolved events of the same scenario of the other kind (the
    /// exercises beside a real event, or the real events beside an
    /// exercise), oldest first: never merged, always said.
    pub beside: Vec<EventRow>,
}

impl Declared {
    /// The outcome for `event`, before the claim and the counts by state.
    fn of(event: EventRow, updated: bool, level_changed: bool, queued: usize) -> Declared {
        Declared {
            event_id: event.id,
            updated,
            level_changed,
            queued,
            event,
            by_state: Vec::new(),
            handed_over: false,
            beside: Vec::new(),
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::from(e))
    }
}

/// 404 for event `id` (a number, or what a path gave in its place).
pub(crate) fn no_event(id: impl std::fmt::Display) -> EngineError {
    EngineError::NotFound(format!("no event {id}"))
}

/// Event `id`, read in the caller's transaction; 404 if there is none.
pub(crate) fn event_of(c: &Connection, id: i64) -> Result<EventRow, EngineError> {
    crate::store::events::get_event(c, id)?.ok_or_else(|| no_event(id))
}

/// The plan that governs an event: the version recorded at declaration if
/// it is still loaded, else the version in force with that scenario.
pub fn plan_of<'a>(
    set: &'a ConfigSet,
    ev: &EventRow,
) -> Result<(&'a Plan, &'a Scenario), EngineError> {
    let exact = set
        .plans
        .iter()
        .find(|p| p.id.value == ev.plan_id && p.version.value.0 == ev.plan_version);
    let plan = exact
        .filter(|p| p.scenario(&ev.scenario).is_some())
        .or_else(|| {
            set.plans
                .iter()
                .find(|p| p.id.value == ev.plan_id && p.scenario(&ev.scenario).is_some())
        })
        .or_else(|| {
            set.plans
                .iter()
                .find(|p| p.scenario(&ev.scenario).is_some())
        })
        .ok_or_else(|| {
            EngineError::NotFound(format!(
                "the plan of event {} (`{}` {}) and its scenario `{}` are no longer loaded",
                ev.id, ev.plan_id, ev.plan_version, ev.scenario
            ))
        })?;
    Ok((plan, plan.scenario(&ev.scenario).expect("filtered")))
}
