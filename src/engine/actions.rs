//! The actions checklist of an event (SPEC §12): when an event is declared
//! and each time it enters a new level, the scenario's action cards of that
//! level that are not on its checklist yet are added, in the decision's
//! transaction; an operator ticks each one once, which the main courante
//! records in the same transaction.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::{Ctx, EngineError};
use crate::config::Scenario;
use crate::store::actions::{self as qa, ActionRow, NewAction};
use crate::store::events::{self as q, EventRow};
use crate::store::{Store, journal};

/// Adds the cards of the event's current level missing from its checklist,
/// each due `due` after `now` (the instant the level was entered).
pub(super) fn add_level_actions(
    c: &Connection,
    scenario: &Scenario,
    ev: &EventRow,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let cards: Vec<NewAction<'_>> = scenario
        .actions
        .iter()
        .filter(|a| a.applies_to(ev.level.as_deref()))
        .map(|a| NewAction {
            title: &a.title,
            who: a.who.as_deref(),
            detail: a.detail.as_deref(),
            due_at: a.due.map(|d| now + d.as_chrono()),
        })
        .collect();
    qa::add_missing(c, ev.id, &cards, now)
}

/// The most a note of a ticked action may hold.
const MAX_NOTE: usize = 1000;

/// Ticks action `n` of event `id` as done by `by` (with an optional note),
/// and writes the `action_done` entry of the main courante with it.
/// 404 for an unknown event or action, 409 when it is done already or the
/// event is resolved.
pub async fn action_done(
    store: &Store,
    ctx: Ctx,
    id: i64,
    n: i64,
    by: String,
    note: Option<String>,
) -> Result<ActionRow, EngineError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(EngineError::Invalid(format!(
            "the note is longer than {MAX_NOTE} characters"
        )));
    }
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = (|| {
                let ev = super::event_of(&tx, id)?;
                // The checklist of a resolved event is its record: an
                // action ticked afterwards would read "on time" in the
                // RETEX report. What was done late goes in the main
                // courante as a note.
                if ev.state == q::EventState::Resolved {
                    return Err(EngineError::Conflict(format!(
                        "event {id} is resolved: its checklist is closed (write what was done in the main courante)"
                    )));
                }
                let action = qa::get(&tx, id, n)?.ok_or_else(|| {
                    EngineError::NotFound(format!("event {id} has no action {n}"))
                })?;
                if !qa::mark_done(&tx, id, n, ctx.now, &by, note.as_deref())? {
                    return Err(EngineError::Conflict(format!(
                        "action {n} of event {id} is already done ({})",
                        action.done_by.as_deref().unwrap_or("?")
                    )));
                }
                let text = match &note {
                    Some(note) => format!("Action n° {n} faite : {} — {note}", action.title),
                    None => format!("Action n° {n} faite : {}", action.title),
                };
                journal::append(
                    &tx,
                    id,
                    ctx.now,
                    journal::kind::ACTION_DONE,
                    &by,
                    &text,
                    None,
                    Some(&serde_json::json!({"n": n, "title": action.title})),
                )?;
                let done = qa::get(&tx, id, n)?.expect("just ticked");
                Ok(done)
            })();
            if out.is_ok() {
                ctx.audit(&tx, "action", &format!("event {id} action {n}"))?;
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}

/// The event's checklist; 404 for an unknown event.
pub async fn actions(store: &Store, id: i64) -> Result<Vec<ActionRow>, EngineError> {
    store
        .call(move |c| {
            Ok(match q::get_event(c, id)? {
                None => Err(super::no_event(id)),
                Some(_) => Ok(qa::list(c, id)?),
            })
        })
        .await?
}
