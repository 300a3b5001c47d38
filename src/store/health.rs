//! What the heartbeat (SPEC §16) asks of the database: that it takes a
//! write, and that the outbox is not stuck. Reads and writes nothing else.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// A real write: a write transaction (it takes SQLite's write lock, as any
/// declaration would) that records `now` in `meta` under `heartbeat`, then
/// commits. Fails when the database cannot take a write (read-only file
/// system, disk full, write lock held elsewhere beyond the busy timeout).
pub fn write_probe(c: &mut Connection, now: DateTime<Utc>) -> rusqlite::Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('heartbeat', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![super::ts(now)],
    )?;
    tx.commit()
}

/// The outbox is stuck when a delivery has been due since before `since`
/// and no send was attempted since then: due work that nobody takes.
/// (A long queue that moves is not stuck, however old its first row.)
pub fn outbox_stuck(c: &Connection, since: DateTime<Utc>) -> rusqlite::Result<bool> {
    let since = super::ts(since);
    let overdue: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM deliveries \
             WHERE state IN ('pending', 'retrying') AND next_attempt_at < ?1)",
        )?
        .query_row([&since], |r| r.get(0))?;
    if !overdue {
        return Ok(false);
    }
    // The last attempt by rowid (attempts are appended as they happen):
    // one row read, not a scan of every attempt ever made.
    let last: Option<String> = c
        .prepare_cached("SELECT at FROM attempts ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let attempted = last.is_some_and(|at| super::parse_ts(&at) >= super::parse_ts(&since));
    Ok(!attempted)
}
