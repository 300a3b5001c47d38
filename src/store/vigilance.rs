//! Vigilance proposals (SPEC §13): written with the e-mail to the plan's
//! owners in one transaction, listed while open, decided once.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{parse_ts, ts};

pub const OPEN: &str = "open";
pub const ACCEPTED: &str = "accepted";
pub const DISMISSED: &str = "dismissed";
pub const DECLARED: &str = "declared";
pub const SUPERSEDED: &str = "superseded";
/// Claimed by one accept or dismiss while it is carried out.
pub const CLAIMED: &str = "accepting";

/// A proposal to write.
#[derive(Clone, Debug)]
pub struct NewProposal {
    pub source: String,
    pub departement: String,
    pub phenomenon: String,
    pub colour: String,
    pub update_time: DateTime<Utc>,
    pub scenario: String,
    /// The level to declare (`None` for `resolve`).
    pub level: Option<String>,
    /// `declare` or `resolve`.
    pub action: String,
    pub state: String,
    pub event_id: Option<i64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Proposal {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub source: String,
    pub departement: String,
    pub phenomenon: String,
    pub colour: String,
    pub update_time: DateTime<Utc>,
    pub scenario: String,
    pub level: Option<String>,
    pub action: String,
    pub state: String,
    pub event_id: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
}

const COLUMNS: &str = "id, created_at, source, departement, phenomenon, colour, update_time, \
     scenario, level, action, state, event_id, decided_at, decided_by";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Proposal> {
    Ok(Proposal {
        id: r.get(0)?,
        created_at: parse_ts(&r.get::<_, String>(1)?),
        source: r.get(2)?,
        departement: r.get(3)?,
        phenomenon: r.get(4)?,
        colour: r.get(5)?,
        update_time: parse_ts(&r.get::<_, String>(6)?),
        scenario: r.get(7)?,
        level: r.get(8)?,
        action: r.get(9)?,
        state: r.get(10)?,
        event_id: r.get(11)?,
        decided_at: r.get::<_, Option<String>>(12)?.map(|s| parse_ts(&s)),
        decided_by: r.get(13)?,
    })
}

/// Supersedes the open proposals of a scenario and phenomenon (today's
/// colour changed); how many.
pub fn supersede(
    c: &Connection,
    scenario: &str,
    phenomenon: &str,
    at: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE vigilance_proposals SET state = ?1, decided_at = ?2, decided_by = 'vigie' \
         WHERE state = ?3 AND scenario = ?4 AND phenomenon = ?5",
        params![SUPERSEDED, ts(at), OPEN, scenario, phenomenon],
    )
}

/// Claims an open proposal for one decision; false when it was not open
/// (decided, superseded or claimed by another request).
pub fn claim(c: &Connection, id: i64) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE vigilance_proposals SET state = ?1 WHERE id = ?2 AND state = ?3",
        params![CLAIMED, id, OPEN],
    )?;
    Ok(n == 1)
}

/// Gives a claimed proposal back (its decision failed).
pub fn release(c: &Connection, id: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE vigilance_proposals SET state = ?1 WHERE id = ?2 AND state = ?3",
        params![OPEN, id, CLAIMED],
    )?;
    Ok(())
}

/// Gives back every claimed proposal: at start, those a stopped daemon
/// was deciding (a declaration it made already is found again by its key;
/// the proposal is superseded if the colour changed meanwhile).
pub fn release_all(c: &Connection) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE vigilance_proposals SET state = ?1 WHERE state = ?2",
        params![OPEN, CLAIMED],
    )
}

/// The last good map: its `update_time` and colours as JSON.
pub fn last_map(c: &Connection) -> rusqlite::Result<Option<(DateTime<Utc>, String)>> {
    c.query_row(
        "SELECT update_time, colours FROM vigilance_last_map WHERE id = 1",
        [],
        |r| Ok((parse_ts(&r.get::<_, String>(0)?), r.get(1)?)),
    )
    .optional()
}

/// Keeps the last good map.
pub fn save_map(c: &Connection, update_time: DateTime<Utc>, colours: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO vigilance_last_map (id, update_time, colours) VALUES (1, ?1, ?2) \
         ON CONFLICT(id) DO UPDATE SET update_time = excluded.update_time, \
         colours = excluded.colours",
        params![ts(update_time), colours],
    )?;
    Ok(())
}

/// Writes a proposal; the open ones of the same scenario and phenomenon
/// are superseded by it. Returns its id.
pub fn insert(c: &Connection, p: &NewProposal, at: DateTime<Utc>) -> rusqlite::Result<i64> {
    supersede(c, &p.scenario, &p.phenomenon, at)?;
    c.execute(
        "INSERT INTO vigilance_proposals (created_at, source, departement, phenomenon, colour, \
         update_time, scenario, level, action, state, event_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            ts(at),
            p.source,
            p.departement,
            p.phenomenon,
            p.colour,
            ts(p.update_time),
            p.scenario,
            p.level,
            p.action,
            p.state,
            p.event_id
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// The open proposals, oldest first.
pub fn open(c: &Connection) -> rusqlite::Result<Vec<Proposal>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM vigilance_proposals WHERE state = ?1 ORDER BY id"
    ))?;
    st.query_map([OPEN], row)?.collect()
}

/// The latest proposal of a scenario and phenomenon, whatever its state.
pub fn latest(
    c: &Connection,
    scenario: &str,
    phenomenon: &str,
) -> rusqlite::Result<Option<Proposal>> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM vigilance_proposals WHERE scenario = ?1 AND phenomenon = ?2 \
             ORDER BY id DESC LIMIT 1"
        ),
        params![scenario, phenomenon],
        row,
    )
    .optional()
}

pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<Proposal>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM vigilance_proposals WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
}

/// Decides a claimed proposal; false when it was not claimed.
pub fn decide(
    c: &Connection,
    id: i64,
    state: &str,
    by: &str,
    at: DateTime<Utc>,
    event_id: Option<i64>,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE vigilance_proposals SET state = ?1, decided_by = ?2, decided_at = ?3, \
         event_id = COALESCE(?4, event_id) WHERE id = ?5 AND state = ?6",
        params![state, by, ts(at), event_id, id, CLAIMED],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_left_by_a_stopped_daemon_is_released() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut c).unwrap();
        c.execute(
            "INSERT INTO vigilance_proposals (source, departement, phenomenon, colour, \
             update_time, scenario, level, action, state, created_at) \
             VALUES ('meteofrance', '68', 'canicule', 'orange', '2026-07-01T05:00:00Z', \
             'canicule', 'orange', 'declare', 'open', '2026-07-01T05:01:00Z')",
            [],
        )
        .unwrap();
        assert!(claim(&c, 1).unwrap());
        assert!(!claim(&c, 1).unwrap(), "claimed once");
        assert_eq!(release_all(&c).unwrap(), 1);
        assert!(claim(&c, 1).unwrap(), "open again after a restart");
    }
}
