//! The actions checklist of each event (SPEC §12; table `event_actions`,
//! migration 11): the plan's action cards of the levels the event went
//! through, added in the transaction that declares it or changes its level,
//! each ticked once. Also the day of a plan's last exercise.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{parse_ts, ts};

/// One action of an event's checklist.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRow {
    /// 1, 2, … in the order the actions were added.
    pub n: i64,
    pub title: String,
    pub who: Option<String>,
    pub detail: Option<String>,
    pub added_at: DateTime<Utc>,
    /// When it is expected: entry into the level plus the card's `due`.
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<String>,
    pub note: Option<String>,
}

impl ActionRow {
    /// Not done and its expected time has passed at `now`.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.done_at.is_none() && self.due_at.is_some_and(|d| d < now)
    }
}

/// An action card to put on a checklist.
pub struct NewAction<'a> {
    pub title: &'a str,
    pub who: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub due_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "n, title, who, detail, added_at, due_at, done_at, done_by, note";

fn row(r: &Row<'_>) -> rusqlite::Result<ActionRow> {
    let opt = |v: Option<String>| v.as_deref().map(parse_ts);
    Ok(ActionRow {
        n: r.get(0)?,
        title: r.get(1)?,
        who: r.get(2)?,
        detail: r.get(3)?,
        added_at: parse_ts(&r.get::<_, String>(4)?),
        due_at: opt(r.get(5)?),
        done_at: opt(r.get(6)?),
        done_by: r.get(7)?,
        note: r.get(8)?,
    })
}

/// Adds the actions whose title is not on the event's checklist yet, in
/// the caller's transaction; returns how many were added.
pub fn add_missing(
    c: &Connection,
    event_id: i64,
    actions: &[NewAction<'_>],
    at: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let mut added = 0;
    for a in actions {
        added += c
            .prepare_cached(
                "INSERT INTO event_actions (event_id, n, title, who, detail, added_at, due_at) \
                 SELECT ?1, (SELECT COALESCE(MAX(n), 0) + 1 FROM event_actions WHERE event_id = ?1), \
                 ?2, ?3, ?4, ?5, ?6 \
                 WHERE NOT EXISTS (SELECT 1 FROM event_actions WHERE event_id = ?1 AND title = ?2)",
            )?
            .execute(params![
                event_id,
                a.title,
                a.who,
                a.detail,
                ts(at),
                a.due_at.map(ts)
            ])?;
    }
    Ok(added)
}

/// The event's checklist, in the order the actions were added.
pub fn list(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<ActionRow>> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM event_actions WHERE event_id = ?1 ORDER BY n"
    ))?
    .query_map([event_id], row)?
    .collect()
}

pub fn get(c: &Connection, event_id: i64, n: i64) -> rusqlite::Result<Option<ActionRow>> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM event_actions WHERE event_id = ?1 AND n = ?2"
    ))?
    .query_row(params![event_id, n], row)
    .optional()
}

/// Ticks action `n` unless it is done already; `false` when it was (or
/// does not exist).
pub fn mark_done(
    c: &Connection,
    event_id: i64,
    n: i64,
    at: DateTime<Utc>,
    by: &str,
    note: Option<&str>,
) -> rusqlite::Result<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE event_actions SET done_at = ?3, done_by = ?4, note = ?5 \
             WHERE event_id = ?1 AND n = ?2 AND done_at IS NULL",
        )?
        .execute(params![event_id, n, ts(at), by, note])?;
    Ok(changed == 1)
}

/// When the last exercise of plan `plan_id` (any version) was declared.
pub fn last_exercise(c: &Connection, plan_id: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let at: Option<String> = c
        .prepare_cached("SELECT MAX(declared_at) FROM events WHERE plan_id = ?1 AND exercise = 1")?
        .query_row([plan_id], |r| r.get(0))?;
    Ok(at.as_deref().map(parse_ts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::events::{NewEvent, insert_event};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn event(c: &Connection, exercise: bool, when: &str) -> i64 {
        insert_event(
            c,
            &NewEvent {
                scenario: "canicule",
                dedup_key: when,
                title: "Canicule",
                level: Some("orange"),
                note: "",
                exercise,
                plan_id: "pgc",
                plan_version: "1",
                plan_sha256: "",
                at: at(when),
                link_secret: "",
            },
        )
        .unwrap()
        .id
    }

    fn card(title: &str) -> NewAction<'_> {
        NewAction {
            title,
            who: None,
            detail: None,
            due_at: Some(at("2026-06-15T09:00:00Z")),
        }
    }

    #[tokio::test]
    async fn a_card_is_added_once_and_ticked_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigie.db")).unwrap();
        store
            .call(|c| {
                let id = event(c, false, "2026-06-15T08:00:00Z");
                let now = at("2026-06-15T08:00:00Z");
                assert_eq!(add_missing(c, id, &[card("A"), card("B")], now)?, 2);
                assert_eq!(add_missing(c, id, &[card("B"), card("C")], now)?, 1);
                let list = list(c, id)?;
                let titles: Vec<(i64, &str)> =
                    list.iter().map(|a| (a.n, a.title.as_str())).collect();
                assert_eq!(titles, [(1, "A"), (2, "B"), (3, "C")]);
                assert!(list[0].overdue(at("2026-06-15T09:01:00Z")));
                assert!(!list[0].overdue(at("2026-06-15T08:59:00Z")));
                let done = at("2026-06-15T08:30:00Z");
                assert!(mark_done(c, id, 2, done, "bureau", Some("fait"))?);
                assert!(!mark_done(c, id, 2, done, "autre", None)?, "twice");
                assert!(!mark_done(c, id, 9, done, "bureau", None)?, "unknown");
                let b = get(c, id, 2)?.unwrap();
                assert_eq!(b.done_by.as_deref(), Some("bureau"));
                assert!(!b.overdue(at("2026-06-15T10:00:00Z")), "done is never late");
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_last_exercise_counts_exercises_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vigie.db")).unwrap();
        store
            .call(|c| {
                assert_eq!(last_exercise(c, "pgc")?, None);
                event(c, true, "2026-03-01T08:00:00Z");
                event(c, false, "2026-06-01T08:00:00Z");
                assert_eq!(last_exercise(c, "pgc")?, Some(at("2026-03-01T08:00:00Z")));
                assert_eq!(last_exercise(c, "autre")?, None);
                Ok(())
            })
            .await
            .unwrap();
    }
}
