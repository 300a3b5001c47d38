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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, outbox};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn delivery() -> outbox::NewDelivery {
        outbox::NewDelivery {
            event_id: None,
            step_id: None,
            recipient_id: None,
            recipient_name: "Claire Martin".into(),
            channel: "email".into(),
            address: Some("claire@example.org".into()),
            priority: outbox::Priority::Broadcast,
            skipped: None,
            subject: "Canicule".into(),
            body_text: "Buvez de l'eau.".into(),
            body_html: None,
            payload: None,
        }
    }

    #[test]
    fn the_outbox_is_stuck_only_when_due_work_waits_with_no_attempt_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigie.db")).unwrap();
        let since = at("2026-06-15T09:45:00Z");
        store
            .call_blocking(|c| {
                // Nothing due: not stuck.
                assert!(!outbox_stuck(c, since)?);
                // Due since 09:00, never attempted: stuck.
                outbox::insert(c, &[delivery()], at("2026-06-15T09:00:00Z"))?;
                assert!(outbox_stuck(c, since)?);
                // A send attempted at 09:50 (a long fan-out that moves): not stuck.
                c.execute(
                    "INSERT INTO attempts (delivery_id, at, ok, duration_ms) \
                     VALUES (1, '2026-06-15T09:50:00.000Z', 0, 3)",
                    [],
                )?;
                assert!(!outbox_stuck(c, since)?);
                // ... until that attempt is itself older than the window.
                assert!(outbox_stuck(c, at("2026-06-15T10:00:00Z"))?);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_write_probe_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigie.db")).unwrap();
        let now = at("2026-06-15T10:00:00Z");
        let written: String = store
            .call_blocking(|c| {
                write_probe(c, now)?;
                write_probe(c, now)?;
                c.query_row("SELECT value FROM meta WHERE key = 'heartbeat'", [], |r| {
                    r.get(0)
                })
            })
            .unwrap();
        assert_eq!(written, crate::store::ts(now));
    }
}
