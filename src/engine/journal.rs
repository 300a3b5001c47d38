//! The main courante (SPEC §12): what the engine writes there with each
//! decision (in the decision's own transaction), the texts people read
//! (plain French), and the operators' own entries: notes and corrections,
//! bulletins for the public page, lessons learned (RETEX).
//!
//! The author of an entry is who made the decision: the operator (`login`)
//! or API token (`token:NAME`) that asked, `vigie` for what the timers and
//! the outbox do, the professional for a response.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::json;

use super::{Ctx, EngineError};
use crate::model::labels;
use crate::store::Store;
use crate::store::events::{self as q, EventRow, EventState};
use crate::store::journal::{self, DAEMON_AUTHOR, Entry, kind};

/// The longest text of a note, bulletin or lesson, in characters.
pub const MAX_TEXT: usize = 4000;

impl Ctx {
    /// Who the entries of this operation are written by.
    pub(super) fn author(&self) -> &str {
        self.actor.as_deref().unwrap_or(DAEMON_AUTHOR)
    }

    /// Appends an entry by this operation's author, in `c`'s transaction.
    pub(super) fn log(
        &self,
        c: &Connection,
        event_id: i64,
        kind: &str,
        text: &str,
        data: serde_json::Value,
    ) -> rusqlite::Result<i64> {
        journal::append(
            c,
            event_id,
            self.now,
            kind,
            self.author(),
            text,
            None,
            Some(&data),
        )
    }

    /// A time of day in the daemon's zone, as people read it: "14 h 05".
    pub(super) fn hour(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.set.daemon.timezone)
            .format("%H h %M")
            .to_string()
    }
}

fn level_part(ev: &EventRow) -> String {
    match &ev.level {
        Some(l) => format!(", niveau {l}"),
        None => String::new(),
    }
}

/// Ends an entry's text with the operator's note, if any.
fn push_note(text: &mut String, note: Option<&str>) {
    if let Some(note) = note.filter(|n| !n.is_empty()) {
        text.push_str(&format!(" Note : {note}"));
    }
}

/// `declared`: a new event.
pub(super) fn declared(c: &Connection, ctx: &Ctx, ev: &EventRow) -> rusqlite::Result<i64> {
    let mut text = format!(
        "{} « {} »{}.",
        if ev.exercise {
            "Exercice déclenché"
        } else {
            "Alerte déclenchée"
        },
        ev.title,
        level_part(ev)
    );
    push_note(&mut text, Some(&ev.note));
    ctx.log(
        c,
        ev.id,
        kind::DECLARED,
        &text,
        json!({"scenario": ev.scenario, "level": ev.level, "exercise": ev.exercise}),
    )
}

/// `level_changed`: the level moved, by a level change or by a declaration
/// of the same scenario merged into the running event (`redeclared`).
pub(super) fn level_changed(
    c: &Connection,
    ctx: &Ctx,
    ev: &EventRow,
    from: Option<&str>,
    redeclared: bool,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let to = ev.level.as_deref().unwrap_or("aucun");
    let mut text = match from {
        Some(from) => format!("Niveau changé : {from} → {to}."),
        None => format!("Niveau fixé : {to}."),
    };
    if redeclared {
        text.push_str(" Nouveau déclenchement fusionné avec l'événement en cours.");
    }
    push_note(&mut text, note);
    ctx.log(
        c,
        ev.id,
        kind::LEVEL_CHANGED,
        &text,
        json!({"from": from, "to": ev.level, "redeclared": redeclared}),
    )
}

/// `redeclared`: a declaration merged into the running event without
/// changing its level (nothing is sent again).
pub(super) fn redeclared(
    c: &Connection,
    ctx: &Ctx,
    ev: &EventRow,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let mut text = format!(
        "Nouveau déclenchement fusionné avec l'événement en cours{} : niveau inchangé, rien n'est renvoyé.",
        level_part(ev)
    );
    push_note(&mut text, note);
    ctx.log(
        c,
        ev.id,
        kind::REDECLARED,
        &text,
        json!({"level": ev.level}),
    )
}

/// `tier_notified`: an escalation tier was alerted.
#[allow(clippy::too_many_arguments)]
pub(super) fn tier_notified(
    c: &Connection,
    ctx: &Ctx,
    ev: &EventRow,
    tier: u32,
    round: u32,
    audience: &str,
    recipients: usize,
    quorum: u32,
    due: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    let round_part = if round > 0 {
        format!(" (relance n° {round}, à ceux qui n'ont pas répondu)")
    } else {
        String::new()
    };
    let text = format!(
        "Palier {} alerté{round_part} ({}) : {}. Quorum attendu : {quorum} ; échéance du palier à {}.",
        tier + 1,
        labels::audience(audience),
        labels::count(recipients as u64, "personne", "personnes"),
        ctx.hour(due)
    );
    ctx.log(
        c,
        ev.id,
        kind::TIER_NOTIFIED,
        &text,
        json!({"tier": tier, "round": round, "recipients": recipients, "quorum": quorum}),
    )
}

/// `acknowledged`: the quorum is reached.
pub(super) fn acknowledged(
    c: &Connection,
    ctx: &Ctx,
    author: &str,
    ev: &EventRow,
    acks: u32,
    needed: u32,
) -> rusqlite::Result<i64> {
    let text = format!(
        "Quorum atteint ({acks} sur {needed}) : événement pris en charge, l'escalade s'arrête."
    );
    journal::append(
        c,
        ev.id,
        ctx.now,
        kind::ACKNOWLEDGED,
        author,
        &text,
        None,
        Some(&json!({"acks": acks, "needed": needed})),
    )
}

/// `exhausted`: every tier and round passed without the quorum.
pub(super) fn exhausted(
    c: &Connection,
    ctx: &Ctx,
    ev: &EventRow,
    acks: u32,
    needed: Option<u32>,
    owners_alerted: usize,
) -> rusqlite::Result<i64> {
    let owners = if owners_alerted == 0 {
        "aucun responsable du plan n'a pu être alerté par e-mail".to_string()
    } else {
        labels::count(
            owners_alerted as u64,
            "message d'alerte mis en file pour les responsables du plan",
            "messages d'alerte mis en file pour les responsables du plan",
        )
    };
    let needed_n = needed.unwrap_or(0);
    let text = format!(
        "Escalade épuisée sans quorum ({} sur {needed_n} {}) : {owners}.",
        labels::count(acks as u64, "réponse positive", "réponses positives"),
        if needed_n > 1 {
            "attendues"
        } else {
            "attendue"
        },
    );
    ctx.log(
        c,
        ev.id,
        kind::EXHAUSTED,
        &text,
        json!({"acks": acks, "needed": needed, "owners_alerted": owners_alerted}),
    )
}

/// What a response may carry besides its choice (arrival delay and
/// comment, SPEC §12 "Responses with ETA").
#[derive(Clone, Debug, Default)]
pub struct ResponseExtras<'a> {
    /// Expected arrival, in minutes from the response.
    pub eta_minutes: Option<u32>,
    pub comment: Option<&'a str>,
}

/// The text of a `response` entry, with the label people read:
/// "Claire Martin a répondu « Disponible » (délai annoncé : 20 min).
/// Commentaire : …". The delay is what was typed, whatever the answer (an
/// "Indisponible" may come later): "délai annoncé", not "arrivée prévue".
pub fn response_text(name: &str, response: &str, extras: &ResponseExtras<'_>) -> String {
    let mut text = format!("{name} a répondu « {} »", labels::response(response));
    if let Some(eta) = extras.eta_minutes {
        text.push_str(&format!(" (délai annoncé : {eta} min)"));
    }
    text.push('.');
    if let Some(comment) = extras.comment.filter(|c| !c.trim().is_empty()) {
        text.push_str(&format!(" Commentaire : {}", comment.trim()));
    }
    text
}

/// `response`: a professional answered (the author is the professional).
pub(super) fn response(
    c: &Connection,
    ctx: &Ctx,
    event_id: i64,
    name: &str,
    recipient_id: &str,
    response: &str,
    extras: &ResponseExtras<'_>,
) -> rusqlite::Result<i64> {
    journal::append(
        c,
        event_id,
        ctx.now,
        kind::RESPONSE,
        name,
        &response_text(name, response, extras),
        None,
        Some(&json!({
            "recipient": recipient_id, "response": response,
            "eta_minutes": extras.eta_minutes, "comment": extras.comment,
        })),
    )
}

/// `resolved`: the event ends.
pub(super) fn resolved(
    c: &Connection,
    ctx: &Ctx,
    ev: &EventRow,
    cancelled: usize,
    notice: usize,
    note: Option<&str>,
) -> rusqlite::Result<i64> {
    let mut text = format!(
        "{} terminé.",
        if ev.exercise {
            "Exercice"
        } else {
            "Événement"
        }
    );
    if cancelled > 0 {
        text.push_str(&format!(
            " {} avant l'envoi.",
            labels::count(cancelled as u64, "envoi annulé", "envois annulés")
        ));
    }
    if notice > 0 {
        text.push_str(&format!(
            " Avis de fin envoyé ({}).",
            labels::count(notice as u64, "message", "messages")
        ));
    }
    push_note(&mut text, note);
    ctx.log(
        c,
        ev.id,
        kind::RESOLVED,
        &text,
        json!({"cancelled": cancelled, "notice": notice}),
    )
}

/// A step whose deliveries are all settled and some failed for good.
#[derive(Clone, Debug)]
pub struct FailedStep {
    pub event_id: i64,
    pub step_id: i64,
    pub kind: String,
    pub tier: Option<u32>,
    pub audience: String,
    /// (channel, failed for good), by channel.
    pub by_channel: Vec<(String, u64)>,
}

/// The text of a `delivery_failed` entry: one per step, with the count.
pub fn failed_text(f: &FailedStep) -> String {
    let total: u64 = f.by_channel.iter().map(|(_, n)| n).sum();
    let what = match (f.kind.as_str(), f.tier) {
        ("escalation", Some(t)) => format!("palier {} ({})", t + 1, labels::audience(&f.audience)),
        ("broadcast", _) => format!("diffusion ({})", labels::audience(&f.audience)),
        ("resolve", _) => "avis de fin".to_string(),
        ("exhausted", _) => "alerte aux responsables du plan".to_string(),
        _ => f.audience.clone(),
    };
    let channels: Vec<String> = f
        .by_channel
        .iter()
        .map(|(ch, n)| format!("{n} par {}", channel_name(ch)))
        .collect();
    format!(
        "{} définitivement : {what} — {}.",
        labels::count(total, "envoi a échoué", "envois ont échoué"),
        channels.join(", ")
    )
}

/// A channel as people say it.
pub fn channel_name(ch: &str) -> &str {
    match ch {
        "email" => "e-mail",
        "sms" => "SMS",
        "webhook" => "webhook",
        other => other,
    }
}

/// Writes the `delivery_failed` entry of each of `steps` whose deliveries
/// are all settled (none pending, sending or retrying) and not yet logged,
/// in the outbox's transaction; returns the steps still unsettled (to look
/// at again after the next outcomes).
pub fn log_failed_steps(
    c: &Connection,
    steps: &std::collections::BTreeSet<i64>,
    now: DateTime<Utc>,
) -> rusqlite::Result<std::collections::BTreeSet<i64>> {
    let mut unsettled = std::collections::BTreeSet::new();
    for &step in steps {
        match journal::failed_step(c, step)? {
            journal::StepFailures::Unsettled => {
                unsettled.insert(step);
            }
            journal::StepFailures::Nothing => {}
            journal::StepFailures::Failed(f) => {
                let f = FailedStep {
                    event_id: f.event_id,
                    step_id: step,
                    kind: f.kind,
                    tier: f.tier,
                    audience: f.audience,
                    by_channel: f.by_channel,
                };
                let total: u64 = f.by_channel.iter().map(|(_, n)| n).sum();
                journal::append(
                    c,
                    f.event_id,
                    now,
                    kind::DELIVERY_FAILED,
                    DAEMON_AUTHOR,
                    &failed_text(&f),
                    None,
                    Some(&json!({
                        "step": step, "failed": total,
                        "by_channel": f.by_channel.iter().map(|(ch, n)| (ch.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                    })),
                )?;
            }
        }
    }
    Ok(unsettled)
}

/// A text an operator writes (note, bulletin, lesson): trimmed, not
/// empty, at most [`MAX_TEXT`] characters.
fn checked_text(text: &str) -> Result<String, EngineError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(EngineError::Invalid("the text is empty".into()));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(EngineError::Invalid(format!(
            "the text is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(text.to_string())
}

/// Runs `f` in a transaction of its own, committed only when `f` succeeds.
async fn in_transaction<T, F>(store: &Store, f: F) -> Result<T, EngineError>
where
    F: FnOnce(&Connection) -> Result<T, EngineError> + Send + 'static,
    T: Send + 'static,
{
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let out = f(&tx);
            if out.is_ok() {
                tx.commit()?;
            }
            Ok(out)
        })
        .await?
}

/// An operator's entry in the main courante (`note`), or the correction of
/// an entry of the same event (`corrects`). Allowed on a resolved event
/// too: the log of a crisis is often completed afterwards.
pub async fn note(
    store: &Store,
    ctx: Ctx,
    id: i64,
    text: String,
    corrects: Option<i64>,
) -> Result<Entry, EngineError> {
    let text = checked_text(&text)?;
    in_transaction(store, move |tx| {
        super::event_of(tx, id)?;
        if let Some(target) = corrects {
            match journal::get(tx, target)? {
                Some(e) if e.event_id == id => {}
                _ => {
                    return Err(EngineError::Invalid(format!(
                        "event {id} has no log entry {target} to correct"
                    )));
                }
            }
        }
        let entry = journal::append(
            tx,
            id,
            ctx.now,
            kind::NOTE,
            ctx.author(),
            &text,
            corrects,
            None,
        )?;
        Ok(journal::get(tx, entry)?.expect("just written"))
    })
    .await
}

/// The main courante of an event, oldest first (404 for an unknown event).
pub async fn log(store: &Store, id: i64) -> Result<Vec<Entry>, EngineError> {
    store
        .call(move |c| {
            Ok(match q::get_event(c, id)? {
                None => Err(super::no_event(id)),
                Some(_) => Ok(journal::list(c, id)?),
            })
        })
        .await?
}

/// Publishes a bulletin on the public page of the event (logged as
/// `bulletin`). Refused on a resolved event: the public page no longer
/// shows it.
pub async fn bulletin(
    store: &Store,
    ctx: Ctx,
    id: i64,
    text: String,
) -> Result<journal::Bulletin, EngineError> {
    let text = checked_text(&text)?;
    if text.chars().count() > 1000 {
        return Err(EngineError::Invalid(
            "a bulletin is at most 1000 characters".into(),
        ));
    }
    in_transaction(store, move |tx| {
        let ev = super::event_of(tx, id)?;
        if ev.state == EventState::Resolved {
            return Err(EngineError::Conflict(format!(
                "event {id} is resolved: its public page no longer shows bulletins"
            )));
        }
        let b = journal::add_bulletin(tx, id, ctx.now, ctx.author(), &text)?;
        ctx.log(
            tx,
            id,
            kind::BULLETIN,
            &format!("Bulletin publié : {text}"),
            json!({"bulletin": b.id}),
        )?;
        Ok(b)
    })
    .await
}

/// Adds a lesson learned (RETEX) to the event; several are kept in order.
pub async fn lesson(
    store: &Store,
    ctx: Ctx,
    id: i64,
    text: String,
) -> Result<journal::Lesson, EngineError> {
    let text = checked_text(&text)?;
    in_transaction(store, move |tx| {
        super::event_of(tx, id)?;
        Ok(journal::add_lesson(tx, id, ctx.now, ctx.author(), &text)?)
    })
    .await
}
