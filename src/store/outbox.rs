//! Queries on the outbox: deliveries and their attempts.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

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
    #[serde(skip)]
    pub subject: String,
    #[serde(skip)]
    pub body_text: String,
    #[serde(skip)]
    pub body_html: Option<String>,
    #[serde(skip)]
    pub payload: Option<String>,
    pub reason: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: String,
    pub sent_at: Option<String>,
}

const COLUMNS: &str = "id, event_id, step_id, recipient_id, recipient_name, channel, address, \
    priority, state, subject, body_text, body_html, payload, reason, attempts, created_at, \
    next_attempt_at, sent_at";

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
        subject: r.get(9)?,
        body_text: r.get(10)?,
        body_html: r.get(11)?,
        payload: r.get(12)?,
        reason: r.get(13)?,
        attempts: r.get(14)?,
        created_at: r.get(15)?,
        next_attempt_at: r.get(16)?,
        sent_at: r.get(17)?,
    })
}

/// Writes deliveries (one prepared statement, inside the caller's
/// transaction); returns how many are pending.
pub fn insert(c: &Connection, items: &[NewDelivery], at: DateTime<Utc>) -> rusqlite::Result<usize> {
    let mut st = c.prepare_cached(
        "INSERT INTO deliveries (event_id, step_id, recipient_id, recipient_name, channel, \
         address, priority, state, subject, body_text, body_html, payload, reason, created_at, \
         next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
    )?;
    let at = ts(at);
    let mut pending = 0;
    for d in items {
        let state = if d.skipped.is_some() {
            "skipped"
        } else {
            "pending"
        };
        if d.skipped.is_none() {
            pending += 1;
        }
        st.execute(params![
            d.event_id,
            d.step_id,
            d.recipient_id,
            d.recipient_name,
            d.channel,
            d.address,
            d.priority as i64,
            state,
            d.subject,
            d.body_text,
            d.body_html,
            d.payload,
            d.skipped,
            at
        ])?;
    }
    Ok(pending)
}

/// Claims up to `limit` due deliveries of a channel, most urgent first, and
/// marks them `sending`; inside the caller's transaction.
pub fn claim_due(
    c: &Connection,
    channel: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let rows: Vec<DeliveryRow> = {
        let mut st = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deliveries WHERE channel = ?1 AND state IN ('pending', 'retrying') \
             AND next_attempt_at <= ?2 ORDER BY priority, next_attempt_at, id LIMIT ?3"
        ))?;
        let r = st.query_map(params![channel, ts(now), limit as i64], row)?;
        r.collect::<rusqlite::Result<_>>()?
    };
    let mut up = c.prepare_cached("UPDATE deliveries SET state = 'sending' WHERE id = ?1")?;
    for d in &rows {
        up.execute([d.id])?;
    }
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
        } => {
            c.prepare_cached(
                "UPDATE deliveries SET state = 'sent', sent_at = ?2, attempts = attempts + 1, \
                 reason = NULL WHERE id = ?1",
            )?
            .execute(params![id, ts(*at)])?;
            c.prepare_cached(
                "INSERT INTO attempts (delivery_id, at, ok, duration_ms) VALUES (?1, ?2, 1, ?3)",
            )?
            .execute(params![id, ts(*at), *duration_ms as i64])?;
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

pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<DeliveryRow>> {
    use rusqlite::OptionalExtension;
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = ?1"))?
        .query_row([id], row)
        .optional()
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
