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
