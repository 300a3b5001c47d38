//! "Relancer les non-répondants" (SPEC §12): who of an event was notified
//! and has not answered, and the record of each relance.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::ts;

/// Someone an event reached who has not answered: their id, name and the
/// channels a message of the event reached them on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silent {
    pub recipient_id: String,
    pub name: String,
    pub channels: Vec<String>,
}

/// Those of the event whom a tier's delivery reached (sent, or being sent)
/// and who have not answered, each once with their channels, in order of
/// first notification. Only the escalation tiers ask for an answer: a
/// broadcast informs, the owners' alert and the end notice ask nothing, so
/// their recipients are never relanced (and a relance link given to them
/// would let an answer of someone never asked count toward a tier's
/// quorum). Deliveries skipped, cancelled, failed or still waiting do not
/// count: those people did not hear of the event on that channel (or will
/// soon). The one rule of who a relance reaches: the engine sends to them,
/// the event page counts them.
pub fn silent(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<Silent>> {
    let mut st = c.prepare_cached(
        "SELECT d.recipient_id, d.recipient_name, d.channel FROM deliveries d \
         JOIN steps s ON s.id = d.step_id AND s.kind = 'escalation' \
         WHERE d.event_id = ?1 AND d.recipient_id IS NOT NULL AND d.state IN ('sent', 'sending') \
           AND NOT EXISTS (SELECT 1 FROM responses r \
                           WHERE r.event_id = d.event_id AND r.recipient_id = d.recipient_id) \
         GROUP BY d.recipient_id, d.channel ORDER BY MIN(d.id)",
    )?;
    let rows = st.query_map([event_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut order: Vec<String> = Vec::new();
    let mut by: BTreeMap<String, Silent> = BTreeMap::new();
    for row in rows {
        let (id, name, channel) = row?;
        let s = by.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            Silent {
                recipient_id: id,
                name,
                channels: Vec::new(),
            }
        });
        if !s.channels.contains(&channel) {
            s.channels.push(channel);
        }
    }
    Ok(order.into_iter().filter_map(|id| by.remove(&id)).collect())
}

/// Records a relance, in the transaction of its deliveries.
pub fn insert(
    c: &Connection,
    event_id: i64,
    at: DateTime<Utc>,
    actor: &str,
    people: usize,
    deliveries: usize,
) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO event_reminds (event_id, at, actor, people, deliveries) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![event_id, ts(at), actor, people, deliveries])?;
    Ok(c.last_insert_rowid())
}

/// A relance as recorded.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RemindRow {
    pub at: String,
    pub actor: String,
    pub people: u32,
    pub deliveries: u32,
}

/// The relances of an event, oldest first.
pub fn list(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<RemindRow>> {
    c.prepare_cached(
        "SELECT at, actor, people, deliveries FROM event_reminds WHERE event_id = ?1 ORDER BY id",
    )?
    .query_map([event_id], |r| {
        Ok(RemindRow {
            at: r.get(0)?,
            actor: r.get(1)?,
            people: r.get(2)?,
            deliveries: r.get(3)?,
        })
    })?
    .collect()
}
