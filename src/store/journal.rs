//! The main courante (crisis log) of each event: an append-only list of
//! timestamped entries. [`append`] takes a plain connection so that it runs
//! inside the caller's transaction (a `Transaction` derefs to one): an entry
//! is written with the decision it records, or not at all. The table's
//! triggers refuse UPDATE and DELETE: a correction is a new entry naming
//! the one it corrects.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{parse_ts, ts};

/// The kinds of entries (SPEC §12). Other kinds may be added; readers show
/// an unknown kind as it is.
pub mod kind {
    pub const DECLARED: &str = "declared";
    /// A declaration merged into the running event without changing it.
    pub const REDECLARED: &str = "redeclared";
    pub const LEVEL_CHANGED: &str = "level_changed";
    pub const TIER_NOTIFIED: &str = "tier_notified";
    pub const ACKNOWLEDGED: &str = "acknowledged";
    pub const EXHAUSTED: &str = "exhausted";
    pub const RESPONSE: &str = "response";
    pub const DELIVERY_FAILED: &str = "delivery_failed";
    pub const ACTION_DONE: &str = "action_done";
    pub const NOTE: &str = "note";
    pub const BULLETIN: &str = "bulletin";
    pub const RESOLVED: &str = "resolved";
    /// "Relancer les non-répondants".
    pub const REMINDED: &str = "reminded";
}

/// The author of the entries the daemon writes on its own (timers, engine).
pub const DAEMON_AUTHOR: &str = "vigie";

/// One entry of the main courante.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub event_id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub author: String,
    pub text: String,
    /// The entry this one corrects, if it is a correction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrects: Option<i64>,
    /// Optional details (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, event_id, at, kind, author, text, corrects, data";

fn entry(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let data: Option<String> = r.get(7)?;
    Ok(Entry {
        id: r.get(0)?,
        event_id: r.get(1)?,
        at: parse_ts(&r.get::<_, String>(2)?),
        kind: r.get(3)?,
        author: r.get(4)?,
        text: r.get(5)?,
        corrects: r.get(6)?,
        data: data.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// Appends an entry to the event's main courante, in the caller's
/// transaction; returns its id.
#[allow(clippy::too_many_arguments)]
pub fn append(
    c: &Connection,
    event_id: i64,
    at: DateTime<Utc>,
    kind: &str,
    author: &str,
    text: &str,
    corrects: Option<i64>,
    data: Option<&serde_json::Value>,
) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO event_log (event_id, at, kind, author, text, corrects, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        event_id,
        ts(at),
        kind,
        author,
        text,
        corrects,
        data.map(|d| d.to_string())
    ])?;
    Ok(c.last_insert_rowid())
}

/// The event's main courante, oldest first.
pub fn list(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<Entry>> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM event_log WHERE event_id = ?1 ORDER BY id"
    ))?
    .query_map([event_id], entry)?
    .collect()
}

/// One entry by id (of any event).
pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<Entry>> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM event_log WHERE id = ?1"))?
        .query_row([id], entry)
        .optional()
}

/// A bulletin published for the public page of an event.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Bulletin {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub author: String,
    pub text: String,
}

/// A lesson learned (RETEX) written for an event.
pub type Lesson = Bulletin;

fn bulletin_row(r: &Row<'_>) -> rusqlite::Result<Bulletin> {
    bulletin_from(r, 0)
}

/// A bulletin (or lesson) read from columns `first` on: id, at, author, text.
fn bulletin_from(r: &Row<'_>, first: usize) -> rusqlite::Result<Bulletin> {
    Ok(Bulletin {
        id: r.get(first)?,
        at: parse_ts(&r.get::<_, String>(first + 1)?),
        author: r.get(first + 2)?,
        text: r.get(first + 3)?,
    })
}

/// Writes a bulletin or a lesson with `insert` (its table's INSERT): the
/// row as written.
fn insert_text(
    c: &Connection,
    insert: &str,
    event_id: i64,
    at: DateTime<Utc>,
    author: &str,
    text: &str,
) -> rusqlite::Result<Bulletin> {
    c.prepare_cached(insert)?
        .execute(params![event_id, ts(at), author, text])?;
    Ok(Bulletin {
        id: c.last_insert_rowid(),
        at,
        author: author.to_string(),
        text: text.to_string(),
    })
}

pub fn add_bulletin(
    c: &Connection,
    event_id: i64,
    at: DateTime<Utc>,
    author: &str,
    text: &str,
) -> rusqlite::Result<Bulletin> {
    insert_text(
        c,
        "INSERT INTO event_bulletins (event_id, at, author, text) VALUES (?1, ?2, ?3, ?4)",
        event_id,
        at,
        author,
        text,
    )
}

/// The bulletins of an event, newest first.
pub fn bulletins(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<Bulletin>> {
    c.prepare_cached(
        "SELECT id, at, author, text FROM event_bulletins WHERE event_id = ?1 ORDER BY id DESC",
    )?
    .query_map([event_id], bulletin_row)?
    .collect()
}

/// The bulletins of every unresolved event, newest first, by event: what
/// the public page shows.
pub fn unresolved_bulletins(
    c: &Connection,
) -> rusqlite::Result<std::collections::HashMap<i64, Vec<Bulletin>>> {
    let mut out: std::collections::HashMap<i64, Vec<Bulletin>> = Default::default();
    let mut st = c.prepare_cached(
        "SELECT b.event_id, b.id, b.at, b.author, b.text FROM event_bulletins b \
         JOIN events e ON e.id = b.event_id WHERE e.state <> 'resolved' ORDER BY b.id DESC",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, bulletin_from(r, 1)?)))?;
    for row in rows {
        let (event, b) = row?;
        out.entry(event).or_default().push(b);
    }
    Ok(out)
}

pub fn add_lesson(
    c: &Connection,
    event_id: i64,
    at: DateTime<Utc>,
    author: &str,
    text: &str,
) -> rusqlite::Result<Lesson> {
    insert_text(
        c,
        "INSERT INTO event_lessons (event_id, at, author, text) VALUES (?1, ?2, ?3, ?4)",
        event_id,
        at,
        author,
        text,
    )
}

/// The lessons learned of an event, in the order they were written.
pub fn lessons(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<Lesson>> {
    c.prepare_cached(
        "SELECT id, at, author, text FROM event_lessons WHERE event_id = ?1 ORDER BY id",
    )?
    .query_map([event_id], bulletin_row)?
    .collect()
}

/// Where a step stands for its `delivery_failed` entry.
pub enum StepFailures {
    /// Some deliveries are still pending, sending or retrying.
    Unsettled,
    /// Settled with no delivery failed for good, or already logged.
    Nothing,
    /// Settled, with deliveries failed for good, not yet logged.
    Failed(FailedCounts),
}

pub struct FailedCounts {
    pub event_id: i64,
    pub kind: String,
    pub tier: Option<u32>,
    pub audience: String,
    /// (channel, failed for good).
    pub by_channel: Vec<(String, u64)>,
}

/// See [`StepFailures`].
pub fn failed_step(c: &Connection, step_id: i64) -> rusqlite::Result<StepFailures> {
    let Some((event_id, kind, tier, audience)) = c
        .prepare_cached("SELECT event_id, kind, tier, audience FROM steps WHERE id = ?1")?
        .query_row([step_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<u32>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?
    else {
        return Ok(StepFailures::Nothing);
    };
    let mut by_state = c.prepare_cached(
        "SELECT state, channel, COUNT(*) FROM deliveries WHERE event_id = ?1 AND step_id = ?2 \
         AND state IN ('pending', 'sending', 'retrying', 'failed') GROUP BY state, channel \
         ORDER BY channel",
    )?;
    let rows: Vec<(String, String, u64)> = by_state
        .query_map(params![event_id, step_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if rows.iter().any(|(s, _, _)| s != "failed") {
        return Ok(StepFailures::Unsettled);
    }
    if rows.is_empty() {
        return Ok(StepFailures::Nothing);
    }
    let logged: bool = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM event_log WHERE event_id = ?1 \
             AND kind = 'delivery_failed' AND json_extract(data, '$.step') = ?2)",
        )?
        .query_row(params![event_id, step_id], |r| r.get(0))?;
    if logged {
        return Ok(StepFailures::Nothing);
    }
    Ok(StepFailures::Failed(FailedCounts {
        event_id,
        kind,
        tier,
        audience,
        by_channel: rows.into_iter().map(|(_, ch, n)| (ch, n)).collect(),
    }))
}

/// The steps of these deliveries (those that have one).
pub fn steps_of(c: &Connection, deliveries: &[i64]) -> rusqlite::Result<Vec<i64>> {
    let mut st = c.prepare_cached("SELECT step_id FROM deliveries WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in deliveries {
        if let Some(Some(step)) = st
            .query_row([id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
        {
            out.push(step);
        }
    }
    Ok(out)
}

/// The steps with deliveries failed for good and no `delivery_failed`
/// entry yet, among the events not resolved or resolved in the last two
/// days (read once at start: what a stop left unlogged).
pub fn unlogged_failed_steps(c: &Connection, since: DateTime<Utc>) -> rusqlite::Result<Vec<i64>> {
    c.prepare_cached(
        "SELECT DISTINCT d.step_id FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.state = 'failed' AND d.step_id IS NOT NULL \
         AND (e.resolved_at IS NULL OR e.resolved_at >= ?1) \
         AND NOT EXISTS (SELECT 1 FROM event_log l WHERE l.event_id = d.event_id \
           AND l.kind = 'delivery_failed' AND json_extract(l.data, '$.step') = d.step_id)",
    )?
    .query_map([ts(since)], |r| r.get(0))?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::events::{NewEvent, insert_event};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn event(c: &Connection) -> i64 {
        insert_event(
            c,
            &NewEvent {
                scenario: "canicule",
                dedup_key: "",
                title: "Canicule",
                level: Some("orange"),
                note: "",
                exercise: false,
                plan_id: "cpts",
                plan_version: "1",
                plan_sha256: "",
                at: at("2026-06-15T08:00:00Z"),
                link_secret: "",
            },
        )
        .unwrap()
        .id
    }

    #[tokio::test]
    async fn entries_are_appended_in_the_transaction_and_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigie.db")).unwrap();
        store
            .call(|c| {
                let id = event(c);
                let tx = c.transaction()?;
                let first = append(
                    &tx,
                    id,
                    at("2026-06-15T08:00:00Z"),
                    kind::DECLARED,
                    "presidente",
                    "Déclenché",
                    None,
                    Some(&serde_json::json!({"level": "orange"})),
                )?;
                tx.commit()?;
                // An entry of a transaction rolled back is not kept.
                let tx = c.transaction()?;
                append(
                    &tx,
                    id,
                    at("2026-06-15T08:01:00Z"),
                    kind::NOTE,
                    "x",
                    "perdu",
                    None,
                    None,
                )?;
                drop(tx);
                let fix = append(
                    c,
                    id,
                    at("2026-06-15T08:02:00Z"),
                    kind::NOTE,
                    "presidente",
                    "Correction",
                    Some(first),
                    None,
                )?;
                let all = list(c, id)?;
                assert_eq!(all.len(), 2);
                assert_eq!(all[0].id, first);
                assert_eq!(all[0].kind, "declared");
                assert_eq!(all[0].data, Some(serde_json::json!({"level": "orange"})));
                assert_eq!(all[1].id, fix);
                assert_eq!(all[1].corrects, Some(first));
                assert_eq!(all[1].at, at("2026-06-15T08:02:00Z"));
                assert_eq!(get(c, fix)?.unwrap().text, "Correction");
                assert_eq!(get(c, fix + 100)?, None);
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_store_refuses_to_edit_or_delete_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigie.db")).unwrap();
        store
            .call(|c| {
                let id = event(c);
                let e = append(
                    c,
                    id,
                    at("2026-06-15T08:00:00Z"),
                    kind::NOTE,
                    "a",
                    "vrai",
                    None,
                    None,
                )?;
                let update = c.execute("UPDATE event_log SET text = 'faux' WHERE id = ?1", [e]);
                assert!(
                    update
                        .as_ref()
                        .is_err_and(|e| e.to_string().contains("append-only")),
                    "{update:?}"
                );
                let delete = c.execute("DELETE FROM event_log WHERE id = ?1", [e]);
                assert!(
                    delete
                        .as_ref()
                        .is_err_and(|e| e.to_string().contains("append-only")),
                    "{delete:?}"
                );
                assert_eq!(list(c, id)?[0].text, "vrai");
                Ok(())
            })
            .await
            .unwrap();
    }
}
