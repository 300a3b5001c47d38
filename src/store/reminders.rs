//! Queries on reminder firings.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{parse_ts, ts};

/// Claims an instant of a job: `true` if it was not recorded yet (the
/// caller then queues its deliveries in the same transaction).
pub fn claim(
    c: &Connection,
    job: &str,
    instant: DateTime<Utc>,
    status: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let n = c.prepare_cached("INSERT OR IGNORE INTO reminder_firings (job, instant, status, recorded_at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![job, ts(instant), status, ts(now)])?;
    Ok(n == 1)
}

pub fn set_deliveries(
    c: &Connection,
    job: &str,
    instant: DateTime<Utc>,
    n: usize,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE reminder_firings SET deliveries = ?3 WHERE job = ?1 AND instant = ?2",
    )?
    .execute(params![job, ts(instant), n as i64])?;
    Ok(())
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FiringRow {
    pub job: String,
    pub instant: String,
    pub status: String,
    pub deliveries: i64,
}

pub fn firings(c: &Connection, job_prefix: &str) -> rusqlite::Result<Vec<FiringRow>> {
    let mut st = c.prepare_cached("SELECT job, instant, status, deliveries FROM reminder_firings WHERE job LIKE ?1 || '%' ORDER BY instant, job")?;
    let r = st.query_map([job_prefix], |r| {
        Ok(FiringRow {
            job: r.get(0)?,
            instant: r.get(1)?,
            status: r.get(2)?,
            deliveries: r.get(3)?,
        })
    })?;
    r.collect()
}

/// Until when the scheduler has looked (a value of the `meta` table).
pub fn checked_until(c: &Connection) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let v: Option<String> = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'scheduler_checked_until'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.as_deref().map(parse_ts))
}

pub fn set_checked_until(c: &Connection, t: DateTime<Utc>) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('scheduler_checked_until', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
    )?
    .execute([ts(t)])?;
    Ok(())
}
