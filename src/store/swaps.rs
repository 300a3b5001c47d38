//! Queries on swap requests (SPEC §15; table `swap_requests`, migration 6).
//! The decisions (who may take, what is sent) are the app's; here only the
//! rows, and the one atomic step that makes the first taker win
//! ([`take`]: a conditional update that only one caller can pass).

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{parse_ts, ts};

/// A request's state.
pub const OPEN: &str = "open";
pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const CANCELLED: &str = "cancelled";

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SwapRow {
    pub id: i64,
    pub roster: String,
    pub date: NaiveDate,
    pub shift: String,
    pub requester: String,
    /// `open`, `pending`, `done` or `cancelled`.
    pub state: String,
    pub taker: Option<String>,
    pub created_at: DateTime<Utc>,
    pub taken_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub alerted: bool,
}

const COLUMNS: &str = "id, roster, date, shift, requester, state, taker, created_at, taken_at, decided_by, alerted_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SwapRow> {
    let date: String = r.get(2)?;
    Ok(SwapRow {
        id: r.get(0)?,
        roster: r.get(1)?,
        date: NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap_or_default(),
        shift: r.get(3)?,
        requester: r.get(4)?,
        state: r.get(5)?,
        taker: r.get(6)?,
        created_at: parse_ts(&r.get::<_, String>(7)?),
        taken_at: r.get::<_, Option<String>>(8)?.map(|s| parse_ts(&s)),
        decided_by: r.get(9)?,
        alerted: r.get::<_, Option<String>>(10)?.is_some(),
    })
}

/// Records a new open request; `None` when the requester already has a
/// live (open or pending) request for that occurrence.
pub fn insert(
    c: &Connection,
    roster: &str,
    date: NaiveDate,
    shift: &str,
    requester: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<i64>> {
    let n = c.execute(
        "INSERT OR IGNORE INTO swap_requests (roster, date, shift, requester, state, created_at)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5)",
        params![roster, date.to_string(), shift, requester, ts(now)],
    )?;
    Ok((n == 1).then(|| c.last_insert_rowid()))
}

pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<SwapRow>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM swap_requests WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
}

/// Requests in one of `states`, oldest first.
pub fn in_states(c: &Connection, states: &[&str]) -> rusqlite::Result<Vec<SwapRow>> {
    let marks = vec!["?"; states.len()].join(", ");
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM swap_requests WHERE state IN ({marks}) ORDER BY id"
    ))?;
    let rows = st.query_map(rusqlite::params_from_iter(states.iter()), row)?;
    rows.collect()
}

/// The swaps that count (state `done`), in the order they were decided.
pub fn done(c: &Connection) -> rusqlite::Result<Vec<SwapRow>> {
    in_states(c, &[DONE])
}

/// The `limit` most recent done swaps, newest first (for the dashboard).
pub fn recent_done(c: &Connection, limit: u32) -> rusqlite::Result<Vec<SwapRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM swap_requests WHERE state = 'done' ORDER BY decided_at DESC, id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([limit], row)?;
    rows.collect()
}

/// The first taker wins: moves an open request to `to_state` (`done`, or
/// `pending` when the bureau approves swaps) with its taker. `false` when
/// the request was no longer open (someone else took it, or it was
/// cancelled): SQLite runs one writer at a time, and only the first
/// update finds the row still open.
pub fn take(
    c: &Connection,
    id: i64,
    taker: &str,
    to_state: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let decided = (to_state == DONE).then(|| ts(now));
    let n = c.execute(
        "UPDATE swap_requests SET state = ?2, taker = ?3, taken_at = ?4, decided_at = ?5
         WHERE id = ?1 AND state = 'open'",
        params![id, to_state, taker, ts(now), decided],
    )?;
    Ok(n == 1)
}

/// Cancels an open request of `requester`; `false` when it is not open (or
/// not theirs).
pub fn cancel(
    c: &Connection,
    id: i64,
    requester: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE swap_requests SET state = 'cancelled', decided_at = ?3
         WHERE id = ?1 AND requester = ?2 AND state = 'open'",
        params![id, requester, ts(now)],
    )?;
    Ok(n == 1)
}

/// The bureau's decision on a pending request: approved, it is done;
/// refused, it is open again for another taker. `false` when it was not
/// pending.
pub fn decide(
    c: &Connection,
    id: i64,
    approve: bool,
    by: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let n = if approve {
        c.execute(
            "UPDATE swap_requests SET state = 'done', decided_at = ?2, decided_by = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, ts(now), by],
        )?
    } else {
        c.execute(
            "UPDATE swap_requests SET state = 'open', taker = NULL, taken_at = NULL, decided_by = ?2
             WHERE id = ?1 AND state = 'pending'",
            params![id, by],
        )?
    };
    Ok(n == 1)
}

/// The takers the bureau refused, as `(request, taker)`: the audit rows
/// `swap.refuse` (detail `#ID TAKER`) are their record. A refused taker
/// may not take that request again.
pub fn refusals(c: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut st = c.prepare("SELECT detail FROM audit_log WHERE action = 'swap.refuse'")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for d in rows {
        let d = d?;
        let mut parts = d.trim_start_matches('#').splitn(2, ' ');
        if let (Some(Ok(id)), Some(who)) = (parts.next().map(str::parse), parts.next()) {
            out.push((id, who.to_string()));
        }
    }
    Ok(out)
}

/// Marks an open request as alerted (48 h before its shift); `false` when
/// it already was.
pub fn mark_alerted(c: &Connection, id: i64, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE swap_requests SET alerted_at = ?2 WHERE id = ?1 AND alerted_at IS NULL",
        params![id, ts(now)],
    )?;
    Ok(n == 1)
}

/// The swaps that count, read from the database file at `path` without
/// writing to it (for the command line beside a running daemon): none when
/// there is no database yet, or one from before swaps existed.
pub fn read_done(path: &std::path::Path) -> rusqlite::Result<Vec<SwapRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let c = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    let has: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'swap_requests')",
        [],
        |r| r.get(0),
    )?;
    if !has {
        return Ok(Vec::new());
    }
    done(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_first_take_of_an_open_request_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("vigie.db")).unwrap();
        let now = Utc::now();
        let day = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
        store
            .call(move |c| {
                let a = insert(c, "pdsa", day, "samedi", "ref1", now)?.unwrap();
                assert!(take(c, a, "med2", DONE, now)?);
                assert!(!take(c, a, "med5", DONE, now)?, "taken already");
                assert_eq!(get(c, a)?.unwrap().taker.as_deref(), Some("med2"));
                let b = insert(c, "pdsa", day, "nuit", "ref1", now)?.unwrap();
                assert!(cancel(c, b, "ref1", now)?);
                assert!(!take(c, b, "med2", PENDING, now)?, "cancelled");
                assert_eq!(get(c, b)?.unwrap().state, CANCELLED);
                Ok(())
            })
            .await
            .unwrap();
    }
}
