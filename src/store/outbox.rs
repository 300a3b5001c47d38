//! Queries on the outbox: deliveries and their attempts.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{parse_ts, ts};

/// Who goes first when several deliveries are due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Crisis = 0,
    Broadcast = 1,
    Reminder = 2,
}

pub struct NewDelivery {
    pub event_id: Option<i64>,
    pub step_id: Option<i64>,
    pub recipient_id: Option<String>,
    pub recipient_name: String,
    pub channel: String,
    pub address: Option<String>,
    pub priority: Priority,
    /// `None`: pending; `Some(reason)`: skipped for that reason.
    pub skipped: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub payload: Option<String>,
}

/// What a delivery carries to its recipient, rendered when the decision to
/// notify is recorded (table `delivery_messages`, one row per delivery,
/// written once and read when the delivery is claimed).
#[derive(Clone, Debug, Default)]
pub struct Message {
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// The JSON body of a webhook call.
    pub payload: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: Option<i64>,
    pub step_id: Option<i64>,
    pub recipient_id: Option<String>,
    pub recipient_name: String,
    pub channel: String,
    pub address: Option<String>,
    pub priority: i64,
    pub state: String,
    /// Read by [`claim_due`] and [`get`] (what a channel sends); `None` in
    /// the listings ([`for_event`]), which show states, not messages, and
    /// for a delivery whose message row is missing (a channel refuses to
    /// send it: nothing goes out empty).
    #[serde(skip)]
    pub message: Option<Message>,
    pub reason: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: String,
    pub sent_at: Option<String>,
    /// The provider's id of the message (an SMS provider's), once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

const COLUMNS: &str = "id, event_id, step_id, recipient_id, recipient_name, channel, address, \
    priority, state, reason, attempts, created_at, next_attempt_at, sent_at, provider_id";

fn row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        event_id: r.get(1)?,
        step_id: r.get(2)?,
        recipient_id: r.get(3)?,
        recipient_name: r.get(4)?,
        channel: r.get(5)?,
        address: r.get(6)?,
        priority: r.get(7)?,
        state: r.get(8)?,
        message: None,
        reason: r.get(9)?,
        attempts: r.get(10)?,
        created_at: r.get(11)?,
        next_attempt_at: r.get(12)?,
        sent_at: r.get(13)?,
        provider_id: r.get(14)?,
    })
}

/// Fills in the messages of `rows` (see [`Message`]).
fn with_messages(c: &Connection, rows: &mut [DeliveryRow]) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(
        "SELECT subject, body_text, body_html, payload FROM delivery_messages \
         WHERE delivery_id = ?1",
    )?;
    for d in rows {
        d.message = st
            .query_row([d.id], |r| {
                Ok(Message {
                    subject: r.get(0)?,
                    body_text: r.get(1)?,
                    body_html: r.get(2)?,
                    payload: r.get(3)?,
                })
            })
            .optional()?;
    }
    Ok(())
}

/// Deliveries written per statement by [`insert`].
const INSERT_BATCH: usize = 32;

/// Writes deliveries and their messages ([`INSERT_BATCH`] rows per
/// statement, inside the caller's transaction); returns how many are
/// pending. The ids are the next ones after the highest (as SQLite would
/// choose them), given here so that each message row names its delivery.
pub fn insert(c: &Connection, items: &[NewDelivery], at: DateTime<Utc>) -> rusqlite::Result<usize> {
    insert_due(c, items, at, at)
}

/// [`insert`], the deliveries written at `at` but due only from `due` (a
/// routine message held back by the quiet hours).
pub fn insert_due(
    c: &Connection,
    items: &[NewDelivery],
    at: DateTime<Utc>,
    due: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    const HEAD: &str = "INSERT INTO deliveries (id, event_id, step_id, recipient_id, \
         recipient_name, channel, address, priority, state, reason, created_at, \
         next_attempt_at) VALUES ";
    const MESSAGES: &str = "INSERT INTO delivery_messages (delivery_id, subject, body_text, body_html, payload) VALUES ";
    if items.is_empty() {
        return Ok(0);
    }
    let at = ts(at);
    let due = ts(due);
    let first: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM deliveries")?
        .query_row([], |r| r.get(0))?;
    let numbered: Vec<(i64, i64, &NewDelivery)> = items
        .iter()
        .enumerate()
        .map(|(i, d)| (first + i as i64, d.priority as i64, d))
        .collect();
    let mut rest = numbered.as_slice();
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(batch_size(rest.len()));
        rest = after;
        let mut st = c.prepare_cached(&super::many_rows(HEAD, 12, chunk.len(), ""))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|(id, priority, d)| delivery_values(id, d, priority, &at, &due))
            .collect();
        st.execute(values.as_slice())?;
        let mut st = c.prepare_cached(&super::many_rows(MESSAGES, 5, chunk.len(), ""))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|(id, _, d)| message_values(id, d))
            .collect();
        st.execute(values.as_slice())?;
    }
    Ok(items.iter().filter(|d| d.skipped.is_none()).count())
}

/// How many of `left` rows the next statement writes: [`INSERT_BATCH`],
/// then the largest power of two that fits (16, 8, 4, 2, 1). A tier of
/// three people on two channels takes two statements per table instead
/// of six, and the statements prepared stay few (six sizes), so that the
/// connection's cache keeps them all.
fn batch_size(left: usize) -> usize {
    if left >= INSERT_BATCH {
        INSERT_BATCH
    } else {
        1 << left.ilog2()
    }
}

/// The 12 values of a delivery row, in [`insert`]'s column order. (`at` and
/// `due` are `&String`: a `&str` cannot be made a `&dyn ToSql`.)
#[allow(clippy::ptr_arg)]
fn delivery_values<'a>(
    id: &'a i64,
    d: &'a NewDelivery,
    priority: &'a i64,
    at: &'a String,
    due: &'a String,
) -> [&'a dyn rusqlite::ToSql; 12] {
    let state: &'static &'static str = if d.skipped.is_some() {
        &"skipped"
    } else {
        &"pending"
    };
    [
        id,
        &d.event_id,
        &d.step_id,
        &d.recipient_id,
        &d.recipient_name,
        &d.channel,
        &d.address,
        priority,
        state,
        &d.skipped,
        at,
        due,
    ]
}

/// The 5 values of a delivery's message row.
fn message_values<'a>(id: &'a i64, d: &'a NewDelivery) -> [&'a dyn rusqlite::ToSql; 5] {
    [id, &d.subject, &d.body_text, &d.body_html, &d.payload]
}

/// Claims up to `limit` due deliveries of a channel, most urgent first, and
/// marks them `sending`; inside the caller's transaction.
pub fn claim_due(
    c: &Connection,
    channel: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    // One statement for the batch; RETURNING gives no order: sorted here.
    let mut st = c.prepare_cached(&format!(
        "UPDATE deliveries SET state = 'sending' WHERE id IN (SELECT id FROM deliveries \
         WHERE channel = ?1 AND state IN ('pending', 'retrying') AND next_attempt_at <= ?2 \
         ORDER BY priority, next_attempt_at, id LIMIT ?3) RETURNING {COLUMNS}"
    ))?;
    let mut rows = st
        .query_map(params![channel, ts(now), limit as i64], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.sort_by(|a, b| {
        (a.priority, &a.next_attempt_at, a.id).cmp(&(b.priority, &b.next_attempt_at, b.id))
    });
    with_messages(c, &mut rows)?;
    Ok(rows)
}

/// After a crash, deliveries caught mid-send go back to the queue: they may
/// be sent twice, never zero times.
pub fn requeue_in_flight(c: &Connection) -> rusqlite::Result<usize> {
    c.prepare_cached("UPDATE deliveries SET state = 'pending' WHERE state = 'sending'")?
        .execute([])
}

/// The outcome of one send attempt, to be recorded.
#[derive(Clone, Debug)]
pub enum Outcome {
    Sent {
        id: i64,
        at: DateTime<Utc>,
        duration_ms: u64,
        /// The provider's id of the message, when it gave one.
        provider_id: Option<String>,
    },
    /// Retried at `retry_at`, or failed for good.
    Failed {
        id: i64,
        at: DateTime<Utc>,
        error: String,
        duration_ms: u64,
        retry_at: Option<DateTime<Utc>>,
    },
    /// Claimed, then dropped before the send because its event was
    /// resolved.
    Cancelled { id: i64, reason: String },
    /// Claimed, not sent (shutdown): back to the queue.
    Unclaimed { id: i64 },
}

/// Successful sends recorded per statement by [`record_all`].
const RECORD_BATCH: usize = 64;

/// Records attempts and their deliveries' new states, as [`record`] does,
/// successful sends [`RECORD_BATCH`] per statement.
pub fn record_all(c: &Connection, outcomes: &[Outcome]) -> rusqlite::Result<()> {
    let mut sent = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Sent {
                id,
                at,
                duration_ms,
                provider_id: None,
            } => sent.push((*id, ts(*at), *duration_ms as i64)),
            _ => record(c, o)?,
        }
    }
    let mut chunks = sent.chunks_exact(RECORD_BATCH);
    for chunk in chunks.by_ref() {
        let mut up = c.prepare_cached(&super::many_rows(
            "UPDATE deliveries SET state = 'sent', sent_at = v.column2, \
             attempts = attempts + 1, reason = NULL FROM (VALUES ",
            2,
            RECORD_BATCH,
            ") AS v WHERE deliveries.id = v.column1",
        ))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|(id, at, _)| [id as &dyn rusqlite::ToSql, at])
            .collect();
        up.execute(values.as_slice())?;
        let mut ins = c.prepare_cached(&super::many_rows(
            "INSERT INTO attempts (delivery_id, at, ok, duration_ms) VALUES ",
            4,
            RECORD_BATCH,
            "",
        ))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|(id, at, ms)| [id as &dyn rusqlite::ToSql, at, &1, ms])
            .collect();
        ins.execute(values.as_slice())?;
    }
    for (id, at, ms) in chunks.remainder() {
        record_sent(c, *id, at, *ms)?;
    }
    Ok(())
}

fn record_sent(c: &Connection, id: i64, at: &str, duration_ms: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE deliveries SET state = 'sent', sent_at = ?2, attempts = attempts + 1, \
         reason = NULL WHERE id = ?1",
    )?
    .execute(params![id, at])?;
    c.prepare_cached(
        "INSERT INTO attempts (delivery_id, at, ok, duration_ms) VALUES (?1, ?2, 1, ?3)",
    )?
    .execute(params![id, at, duration_ms])?;
    Ok(())
}

/// Records an attempt and its delivery's new state, inside the caller's
/// transaction. A delivery cancelled meanwhile (event resolved) stays
/// cancelled unless it was sent.
pub fn record(c: &Connection, o: &Outcome) -> rusqlite::Result<()> {
    match o {
        Outcome::Cancelled { id, reason } => {
            c.prepare_cached(
                "UPDATE deliveries SET state = 'cancelled', reason = ?2 \
                 WHERE id = ?1 AND state = 'sending'",
            )?
            .execute(params![id, reason])?;
        }
        Outcome::Unclaimed { id } => {
            c.prepare_cached(
                "UPDATE deliveries SET state = 'pending' WHERE id = ?1 AND state = 'sending'",
            )?
            .execute([id])?;
        }
        Outcome::Sent {
            id,
            at,
            duration_ms,
            provider_id,
        } => {
            record_sent(c, *id, &ts(*at), *duration_ms as i64)?;
            if let Some(pid) = provider_id {
                c.prepare_cached("UPDATE deliveries SET provider_id = ?2 WHERE id = ?1")?
                    .execute(params![id, pid])?;
            }
        }
        Outcome::Failed {
            id,
            at,
            error,
            duration_ms,
            retry_at,
        } => {
            match retry_at {
                Some(next) => c
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'retrying', attempts = attempts + 1, \
                         reason = ?2, next_attempt_at = ?3 WHERE id = ?1 AND state = 'sending'",
                    )?
                    .execute(params![id, error, ts(*next)])?,
                None => c
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, \
                         reason = ?2 WHERE id = ?1 AND state = 'sending'",
                    )?
                    .execute(params![id, error])?,
            };
            c.prepare_cached(
                "INSERT INTO attempts (delivery_id, at, ok, error, duration_ms) \
                 VALUES (?1, ?2, 0, ?3, ?4)",
            )?
            .execute(params![id, ts(*at), error, *duration_ms as i64])?;
        }
    }
    Ok(())
}

/// Makes a channel's deliveries waiting for a retry due now (its server
/// answers again); returns how many.
pub fn retry_now(c: &Connection, channel: &str, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?2 \
         WHERE channel = ?1 AND state = 'retrying' AND next_attempt_at > ?2",
    )?
    .execute(params![channel, ts(now)])
}

/// Cancels the deliveries of an event not yet handed to a transport.
pub fn cancel_unsent(c: &Connection, event_id: i64, reason: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE deliveries SET state = 'cancelled', reason = ?2 \
         WHERE event_id = ?1 AND state IN ('pending', 'retrying')",
    )?
    .execute(params![event_id, reason])
}

pub fn for_event(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<DeliveryRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE event_id = ?1 ORDER BY id"
    ))?;
    let r = st.query_map([event_id], row)?;
    r.collect()
}

/// One delivery, with its message.
pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<DeliveryRow>> {
    let d = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?;
    let mut rows: Vec<DeliveryRow> = d.into_iter().collect();
    with_messages(c, &mut rows)?;
    Ok(rows.pop())
}

/// Counts by state: `(state, count)`.
pub fn counts_by_state(c: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st =
        c.prepare_cached("SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state")?;
    let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    r.collect()
}

/// The earliest time a queued delivery becomes due.
pub fn next_due(c: &Connection) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let v: Option<String> = c
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('pending', 'retrying')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(v.as_deref().map(parse_ts))
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AttemptRow {
    pub delivery_id: i64,
    pub at: String,
    pub ok: bool,
    pub error: Option<String>,
    pub duration_ms: i64,
}

pub fn attempts_for_event(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<AttemptRow>> {
    let mut st = c.prepare_cached(
        "SELECT a.delivery_id, a.at, a.ok, a.error, a.duration_ms FROM attempts a \
         JOIN deliveries d ON d.id = a.delivery_id WHERE d.event_id = ?1 ORDER BY a.id",
    )?;
    let r = st.query_map([event_id], |r| {
        Ok(AttemptRow {
            delivery_id: r.get(0)?,
            at: r.get(1)?,
            ok: r.get(2)?,
            error: r.get(3)?,
            duration_ms: r.get(4)?,
        })
    })?;
    r.collect()
}

/// A failed delivery with its event's title, for the dashboard.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailedRow {
    pub event_id: Option<i64>,
    pub event: String,
    pub name: String,
    pub channel: String,
    pub reason: String,
}

/// Deliveries that failed for good since `since`, newest first.
pub fn failed_since(c: &Connection, since: DateTime<Utc>) -> rusqlite::Result<Vec<FailedRow>> {
    let mut st = c.prepare_cached("SELECT d.event_id, COALESCE(e.title, ''), d.recipient_name, d.channel, COALESCE(d.reason, '') \
         FROM deliveries d LEFT JOIN events e ON e.id = d.event_id \
         WHERE d.state = 'failed' AND d.created_at >= ?1 ORDER BY d.id DESC LIMIT 200")?;
    let r = st.query_map([ts(since)], |r| {
        Ok(FailedRow {
            event_id: r.get(0)?,
            event: r.get(1)?,
            name: r.get(2)?,
            channel: r.get(3)?,
            reason: r.get(4)?,
        })
    })?;
    r.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_in_batches_of_32_then_powers_of_two() {
        let sizes = |mut n: usize| {
            let mut out = Vec::new();
            while n > 0 {
                out.push(batch_size(n));
                n -= batch_size(n);
            }
            out
        };
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(2), [2]);
        assert_eq!(sizes(6), [4, 2]);
        assert_eq!(sizes(31), [16, 8, 4, 2, 1]);
        assert_eq!(sizes(70), [32, 32, 4, 2]);
    }
}
