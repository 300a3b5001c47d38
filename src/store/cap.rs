//! What the CAP export (SPEC §13, `engine::cap`) reads: the real events of
//! the public feed, an event's level history, the installation id.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::events::{EVENT_COLUMNS, EventRow, event_row};
use super::{parse_ts, ts};

/// The real (not exercise) events unresolved, or resolved at or after
/// `since`, newest first, at most `limit`.
pub fn feed_events(
    c: &Connection,
    since: DateTime<Utc>,
    limit: u32,
) -> rusqlite::Result<Vec<EventRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE exercise = 0 \
         AND (state <> 'resolved' OR resolved_at >= ?1) ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(params![ts(since), limit], event_row)?;
    rows.collect()
}

/// The levels an event went through, oldest first, one entry per change
/// with its instant: from `event_levels` (written with each change); for an
/// event of before it, as its steps recorded them (each broadcast or
/// escalation step carries the event's level then; the resolve notice,
/// which repeats the last level, is left out).
pub fn level_history(
    c: &Connection,
    event_id: i64,
) -> rusqlite::Result<Vec<(Option<String>, DateTime<Utc>)>> {
    // Written with each change since migration 9: exact, one per change.
    let recorded: Vec<(Option<String>, DateTime<Utc>)> = c
        .prepare_cached("SELECT level, at FROM event_levels WHERE event_id = ?1 ORDER BY seq")?
        .query_map([event_id], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
        })?
        .map(|r| r.map(|(l, at)| (l, parse_ts(&at))))
        .collect::<rusqlite::Result<_>>()?;
    if !recorded.is_empty() {
        return Ok(recorded);
    }
    // An event of before it: as its steps recorded the levels.
    let mut st = c.prepare_cached(
        "SELECT level, created_at FROM steps WHERE event_id = ?1 AND kind <> 'resolve' \
         ORDER BY id",
    )?;
    let rows = st.query_map([event_id], |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out: Vec<(Option<String>, DateTime<Utc>)> = Vec::new();
    for row in rows {
        let (level, at) = row?;
        if out.last().map(|(l, _)| l) != Some(&level) {
            out.push((level, parse_ts(&at)));
        }
    }
    Ok(out)
}

/// A value of the `meta` table (e.g. `install_id`), if set.
pub fn meta(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}
