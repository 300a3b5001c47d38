//! The counts `/metrics` shows: events by state, deliveries by channel and
//! state. Whole-table aggregates, read in one database call.

use rusqlite::Connection;

/// What `/metrics` counts, as the database holds it now.
pub struct MetricsCounts {
    /// `(state, count)`, only the states that have events.
    pub events: Vec<(String, i64)>,
    /// `(channel, state, count)`.
    pub deliveries: Vec<(String, String, i64)>,
}

pub fn for_metrics(c: &Connection) -> rusqlite::Result<MetricsCounts> {
    let mut st = c.prepare_cached("SELECT state, COUNT(*) FROM events GROUP BY state")?;
    let events = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut st = c.prepare_cached(
        "SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state",
    )?;
    let deliveries = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(MetricsCounts { events, deliveries })
}
