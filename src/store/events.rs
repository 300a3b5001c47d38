//! Queries on events, steps, recipients and responses.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{parse_ts, ts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    Active,
    Acknowledged,
    Exhausted,
    Resolved,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Active => "active",
            EventState::Acknowledged => "acknowledged",
            EventState::Exhausted => "exhausted",
            EventState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<EventState> {
        Some(match s {
            "active" => EventState::Active,
            "acknowledged" => EventState::Acknowledged,
            "exhausted" => EventState::Exhausted,
            "resolved" => EventState::Resolved,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct EventRow {
    pub id: i64,
    pub scenario: String,
    pub dedup_key: String,
    pub title: String,
    pub level: Option<String>,
    pub note: String,
    pub exercise: bool,
    pub state: EventState,
    pub plan_id: String,
    pub plan_version: String,
    pub plan_sha256: String,
    pub declared_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub exhausted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolve_note: Option<String>,
    pub tier: u32,
    pub round: u32,
    pub escalation_due_at: Option<DateTime<Utc>>,
    /// The random secret bound into every link minted for this event (empty
    /// for events declared before links carried one).
    pub link_secret: String,
}

pub(super) const EVENT_COLUMNS: &str = "id, scenario, dedup_key, title, level, note, exercise, state, \
    plan_id, plan_version, plan_sha256, declared_at, updated_at, acknowledged_at, exhausted_at, \
    resolved_at, resolve_note, tier, round, escalation_due_at, link_secret";

fn opt_ts(v: Option<String>) -> Option<DateTime<Utc>> {
    v.as_deref().map(parse_ts)
}

pub(super) fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    let state: String = r.get(7)?;
    Ok(EventRow {
        id: r.get(0)?,
        scenario: r.get(1)?,
        dedup_key: r.get(2)?,
        title: r.get(3)?,
        level: r.get(4)?,
        note: r.get(5)?,
        exercise: r.get(6)?,
        state: EventState::parse(&state).unwrap_or(EventState::Active),
        plan_id: r.get(8)?,
        plan_version: r.get(9)?,
        plan_sha256: r.get(10)?,
        declared_at: parse_ts(&r.get::<_, String>(11)?),
        updated_at: parse_ts(&r.get::<_, String>(12)?),
        acknowledged_at: opt_ts(r.get(13)?),
        exhausted_at: opt_ts(r.get(14)?),
        resolved_at: opt_ts(r.get(15)?),
        resolve_note: r.get(16)?,
        tier: r.get(17)?,
        round: r.get(18)?,
        escalation_due_at: opt_ts(r.get(19)?),
        link_secret: r.get(20)?,
    })
}

pub struct NewEvent<'a> {
    pub scenario: &'a str,
    pub dedup_key: &'a str,
    pub title: &'a str,
    pub level: Option<&'a str>,
    pub note: &'a str,
    pub exercise: bool,
    pub plan_id: &'a str,
    pub plan_version: &'a str,
    pub plan_sha256: &'a str,
    pub at: DateTime<Utc>,
    /// See [`EventRow::link_secret`].
    pub link_secret: &'a str,
}

pub fn insert_event(c: &Connection, e: &NewEvent<'_>) -> rusqlite::Result<EventRow> {
    let ev = c
        .prepare_cached(&format!(
            "INSERT INTO events (scenario, dedup_key, title, level, note, exercise, state, \
             plan_id, plan_version, plan_sha256, declared_at, updated_at, link_secret) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?9, ?10, ?10, ?11) \
             RETURNING {EVENT_COLUMNS}"
        ))?
        .query_row(
            params![
                e.scenario,
                e.dedup_key,
                e.title,
                e.level,
                e.note,
                e.exercise,
                e.plan_id,
                e.plan_version,
                e.plan_sha256,
                ts(e.at),
                e.link_secret
            ],
            event_row,
        )?;
    record_level(c, ev.id, e.level, e.at)?;
    Ok(ev)
}

/// Appends `level` to the event's level history (`event_levels`) unless it
/// is the last one there: in the transaction of the change.
fn record_level(
    c: &Connection,
    id: i64,
    level: Option<&str>,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO event_levels (event_id, seq, level, at) \
         SELECT ?1, COALESCE(MAX(seq), -1) + 1, ?2, ?3 FROM event_levels WHERE event_id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM event_levels l WHERE l.event_id = ?1 \
           AND l.seq = (SELECT MAX(seq) FROM event_levels WHERE event_id = ?1) \
           AND l.level IS ?2)",
    )?
    .execute(params![id, level, ts(at)])?;
    Ok(())
}

pub fn get_event(c: &Connection, id: i64) -> rusqlite::Result<Option<EventRow>> {
    c.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
        .query_row([id], event_row)
        .optional()
}

/// An event's deliveries counted by state.
pub fn deliveries_by_state(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    c.prepare_cached("SELECT state, COUNT(*) FROM deliveries WHERE event_id = ?1 GROUP BY state")?
        .query_map([event_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The unresolved event of a scenario with this key and this exercise flag,
/// if any: an exercise and a real event are never the same event.
pub fn unresolved_event(
    c: &Connection,
    scenario: &str,
    key: &str,
    exercise: bool,
) -> rusqlite::Result<Option<EventRow>> {
    c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE scenario = ?1 AND dedup_key = ?2 \
             AND exercise = ?3 AND state <> 'resolved'"
    ))?
    .query_row(params![scenario, key, exercise], event_row)
    .optional()
}

/// The unresolved events of a scenario (any key) whose exercise flag is
/// `exercise`, oldest first: what runs beside a declaration of the other kind.
pub fn unresolved_of_kind(
    c: &Connection,
    scenario: &str,
    exercise: bool,
) -> rusqlite::Result<Vec<EventRow>> {
    c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE scenario = ?1 AND exercise = ?2 \
             AND state <> 'resolved' ORDER BY id"
    ))?
    .query_map(params![scenario, exercise], event_row)?
    .collect()
}

/// Events, newest first; `state` filters (`"unresolved"` is every state but
/// resolved).
pub fn list_events(
    c: &Connection,
    state: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<EventRow>> {
    let (filter, arg) = match state {
        None => ("?1 IS NULL", None),
        Some("unresolved") => ("state <> 'resolved' AND ?1 IS NULL", None),
        Some(s) => ("state = ?1", Some(s.to_string())),
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE {filter} ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(params![arg, limit], event_row)?;
    rows.collect()
}

/// Active events whose escalation timer is due.
pub fn due_events(c: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Vec<EventRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE escalation_due_at IS NOT NULL \
         AND escalation_due_at <= ?1 AND state = 'active' ORDER BY escalation_due_at"
    ))?;
    let rows = st.query_map([ts(now)], event_row)?;
    rows.collect()
}

/// The earliest escalation timer of any active event.
/// Which of `ids` are resolved events, each with the steps of its resolve
/// notice (sent after the resolution, unlike everything else of the event).
pub fn resolved_among(
    c: &Connection,
    ids: &std::collections::BTreeSet<i64>,
) -> rusqlite::Result<std::collections::BTreeMap<i64, Vec<i64>>> {
    let mut resolved =
        c.prepare_cached("SELECT 1 FROM events WHERE id = ?1 AND state = 'resolved'")?;
    let mut notices =
        c.prepare_cached("SELECT id FROM steps WHERE event_id = ?1 AND kind = 'resolve'")?;
    let mut out = std::collections::BTreeMap::new();
    for id in ids {
        if resolved.exists([id])? {
            let steps = notices
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            out.insert(*id, steps);
        }
    }
    Ok(out)
}

pub fn next_escalation(c: &Connection) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let v: Option<String> = c
        .prepare_cached("SELECT MIN(escalation_due_at) FROM events WHERE state = 'active'")?
        .query_row([], |r| r.get(0))?;
    Ok(opt_ts(v))
}

pub fn set_level(
    c: &Connection,
    id: i64,
    level: &str,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE events SET level = ?2, note = COALESCE(?3, note), updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, level, note, ts(at)])?;
    record_level(c, id, Some(level), at)
}

/// Records which tier was notified and when it times out.
pub fn set_escalation(
    c: &Connection,
    id: i64,
    tier: u32,
    round: u32,
    due: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE events SET tier = ?2, round = ?3, escalation_due_at = ?4, updated_at = ?5 \
         WHERE id = ?1",
    )?
    .execute(params![id, tier, round, due.map(ts), ts(at)])?;
    Ok(())
}

/// Moves an event to a new state and stops its timer; sets the matching
/// `*_at` column.
pub fn set_state(
    c: &Connection,
    id: i64,
    state: EventState,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let column = match state {
        EventState::Acknowledged => "acknowledged_at",
        EventState::Exhausted => "exhausted_at",
        EventState::Resolved => "resolved_at",
        EventState::Active => "updated_at",
    };
    c.prepare_cached(&format!(
        "UPDATE events SET state = ?2, {column} = ?3, updated_at = ?3, \
             escalation_due_at = NULL, resolve_note = COALESCE(?4, resolve_note) WHERE id = ?1"
    ))?
    .execute(params![id, state.as_str(), ts(at), note])?;
    Ok(())
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StepRow {
    pub id: i64,
    pub kind: String,
    pub tier: Option<u32>,
    pub round: u32,
    pub level: Option<String>,
    pub audience: String,
    pub quorum: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub created_at: String,
}

pub struct NewStep<'a> {
    pub event_id: i64,
    pub kind: &'a str,
    pub tier: Option<u32>,
    pub round: u32,
    pub level: Option<&'a str>,
    pub audience: &'a str,
    pub quorum: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub at: DateTime<Utc>,
}

pub fn insert_step(c: &Connection, s: &NewStep<'_>) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO steps (event_id, kind, tier, round, level, audience, quorum, timeout_secs, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.event_id,
        s.kind,
        s.tier,
        s.round,
        s.level,
        s.audience,
        s.quorum,
        s.timeout_secs,
        ts(s.at)
    ])?;
    Ok(c.last_insert_rowid())
}

pub fn steps(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<StepRow>> {
    let mut st = c.prepare_cached(
        "SELECT id, kind, tier, round, level, audience, quorum, timeout_secs, created_at \
         FROM steps WHERE event_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([event_id], |r| {
        Ok(StepRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            tier: r.get(2)?,
            round: r.get(3)?,
            level: r.get(4)?,
            audience: r.get(5)?,
            quorum: r.get(6)?,
            timeout_secs: r.get(7)?,
            created_at: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Numbers recipients within an event (for response links), each on its
/// first notification: one step's recipients are numbered with one query
/// for the last number, then inserts of many rows at a time; a lookup only
/// for those numbered before. Numbers are unique within the event, not
/// necessarily consecutive (a recipient numbered before leaves a gap).
pub struct RecipientSeqs {
    event_id: i64,
    next: Option<i64>,
}

impl RecipientSeqs {
    pub fn new(event_id: i64) -> RecipientSeqs {
        RecipientSeqs {
            event_id,
            next: None,
        }
    }

    /// The recipient's number, allotted if new. The insert comes first (a
    /// declaration numbers only new recipients): the lookup only when the
    /// recipient already has a number.
    pub fn get(&mut self, c: &Connection, recipient_id: &str, name: &str) -> rusqlite::Result<i64> {
        let seq = self.next(c)?;
        let inserted = c
            .prepare_cached(
                "INSERT INTO event_recipients (event_id, seq, recipient_id, name) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (event_id, recipient_id) DO NOTHING",
            )?
            .execute(params![self.event_id, seq, recipient_id, name])?;
        if inserted == 1 {
            self.next = Some(seq + 1);
            return Ok(seq);
        }
        self.next = Some(seq);
        c.prepare_cached(
            "SELECT seq FROM event_recipients WHERE event_id = ?1 AND recipient_id = ?2",
        )?
        .query_row(params![self.event_id, recipient_id], |r| r.get(0))
    }

    /// The next number to allot: one query, the first time.
    fn next(&self, c: &Connection) -> rusqlite::Result<i64> {
        match self.next {
            Some(n) => Ok(n),
            None => c
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM event_recipients WHERE event_id = ?1",
                )?
                .query_row([self.event_id], |r| r.get(0)),
        }
    }

    /// The numbers of many recipients `(id, name)`, in order, allotted to
    /// the new ones: [`SEQ_BATCH`] rows per insert.
    pub fn get_all(
        &mut self,
        c: &Connection,
        recipients: &[(&str, &str)],
    ) -> rusqlite::Result<Vec<i64>> {
        let mut out = Vec::with_capacity(recipients.len());
        let mut chunks = recipients.chunks_exact(SEQ_BATCH);
        for chunk in chunks.by_ref() {
            let first = self.next(c)?;
            let mut st = c.prepare_cached(&super::many_rows(
                "INSERT INTO event_recipients (event_id, seq, recipient_id, name) VALUES ",
                4,
                SEQ_BATCH,
                " ON CONFLICT (event_id, recipient_id) DO NOTHING",
            ))?;
            let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(4 * SEQ_BATCH);
            for (i, (id, name)) in chunk.iter().enumerate() {
                values.push(self.event_id.into());
                values.push((first + i as i64).into());
                values.push(id.to_string().into());
                values.push(name.to_string().into());
            }
            let inserted = st.execute(rusqlite::params_from_iter(values))?;
            self.next = Some(first + SEQ_BATCH as i64);
            if inserted == SEQ_BATCH {
                out.extend((0..SEQ_BATCH as i64).map(|i| first + i));
            } else {
                // Some were numbered before: their number is the old one.
                let mut look = c.prepare_cached(
                    "SELECT seq FROM event_recipients WHERE event_id = ?1 AND recipient_id = ?2",
                )?;
                for (id, _) in chunk {
                    out.push(look.query_row(params![self.event_id, id], |r| r.get(0))?);
                }
            }
        }
        for (id, name) in chunks.remainder() {
            out.push(self.get(c, id, name)?);
        }
        Ok(out)
    }
}

/// Recipients numbered per insert by [`RecipientSeqs::get_all`].
const SEQ_BATCH: usize = 64;

/// The number of a recipient within an event (for response links),
/// allotted on first notification.
pub fn recipient_seq(
    c: &Connection,
    event_id: i64,
    recipient_id: &str,
    name: &str,
) -> rusqlite::Result<i64> {
    RecipientSeqs::new(event_id).get(c, recipient_id, name)
}

/// (recipient id, name) of a recipient number.
pub fn recipient_by_seq(
    c: &Connection,
    event_id: i64,
    seq: i64,
) -> rusqlite::Result<Option<(String, String)>> {
    c.prepare_cached(
        "SELECT recipient_id, name FROM event_recipients WHERE event_id = ?1 AND seq = ?2",
    )?
    .query_row(params![event_id, seq], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// What a recipient answered: one of the scenario's responses, with an
/// optional arrival delay (minutes from the answer) and comment (SPEC §12).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub response: String,
    pub eta_minutes: Option<u32>,
    pub comment: Option<String>,
}

pub fn insert_response(
    c: &Connection,
    event_id: i64,
    recipient_id: &str,
    answer: &Answer,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO responses (event_id, recipient_id, response, at, eta_minutes, comment) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event_id,
        recipient_id,
        answer.response,
        ts(at),
        answer.eta_minutes,
        answer.comment
    ])?;
    Ok(())
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ResponseRow {
    pub recipient_id: String,
    pub name: String,
    pub response: String,
    pub at: String,
    /// The arrival delay given with the answer, in minutes.
    pub eta_minutes: Option<u32>,
    /// When the person expects to arrive: the answer's time plus its delay
    /// (RFC 3339, UTC).
    pub expected_at: Option<String>,
    pub comment: Option<String>,
}

impl ResponseRow {
    /// [`ResponseRow::expected_at`] as an instant.
    pub fn expected(&self) -> Option<DateTime<Utc>> {
        self.eta_minutes
            .map(|m| parse_ts(&self.at) + chrono::Duration::minutes(i64::from(m)))
    }
}

/// Every response of an event, oldest first.
pub fn responses(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<ResponseRow>> {
    let mut st = c.prepare_cached(
        "SELECT r.recipient_id, COALESCE(er.name, r.recipient_id), r.response, r.at, \
           r.eta_minutes, r.comment \
         FROM responses r LEFT JOIN event_recipients er \
           ON er.event_id = r.event_id AND er.recipient_id = r.recipient_id \
         WHERE r.event_id = ?1 ORDER BY r.id",
    )?;
    let rows = st.query_map([event_id], |r| {
        let mut row = ResponseRow {
            recipient_id: r.get(0)?,
            name: r.get(1)?,
            response: r.get(2)?,
            at: r.get(3)?,
            eta_minutes: r.get(4)?,
            expected_at: None,
            comment: r.get(5)?,
        };
        row.expected_at = row.expected().map(ts);
        Ok(row)
    })?;
    rows.collect()
}

/// The latest response of each recipient who answered.
pub fn latest_responses(
    c: &Connection,
    event_id: i64,
) -> rusqlite::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for r in responses(c, event_id)? {
        out.insert(r.recipient_id, r.response);
    }
    Ok(out)
}

/// Someone (or, for a per-step webhook, `recipient_id: None`) an event
/// notified on a channel.
#[derive(Clone, Debug)]
pub struct Notified {
    pub recipient_id: Option<String>,
    pub channel: String,
}

/// Who deliveries of an event reached (sent, or being sent), each
/// (recipient, channel) once, in order of first notification: for the
/// resolve notice. Deliveries cancelled before sending do not count: those
/// people never heard of the alert.
pub fn notified(c: &Connection, event_id: i64) -> rusqlite::Result<Vec<Notified>> {
    let mut st = c.prepare_cached(
        "SELECT recipient_id, channel FROM deliveries \
         WHERE event_id = ?1 AND state IN ('sent', 'sending') \
         GROUP BY recipient_id, channel ORDER BY MIN(id)",
    )?;
    let rows = st.query_map([event_id], |r| {
        Ok(Notified {
            recipient_id: r.get(0)?,
            channel: r.get(1)?,
        })
    })?;
    rows.collect()
}

/// Recipient ids of the deliveries of one step.
pub fn step_recipients(c: &Connection, step_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT DISTINCT recipient_id FROM deliveries WHERE step_id = ?1 AND recipient_id IS NOT NULL")?;
    let rows = st.query_map([step_id], |r| r.get(0))?;
    rows.collect()
}

/// The unresolved event an answer by SMS from one of `recipient_ids` (the
/// people with the sender's number) on SMS channel `channel` answers: the
/// newest that sent one of them an SMS on that channel (a delivery
/// `sent`), real events before exercises. An event that only e-mailed
/// them, or texted them through another channel, is not one.
pub fn latest_asking(
    c: &Connection,
    recipient_ids: &[String],
    channel: &str,
) -> rusqlite::Result<Option<i64>> {
    let mut best: Option<(bool, i64)> = None;
    for id in recipient_ids {
        let found: Option<(bool, i64)> = c
            .prepare_cached(
                "SELECT e.exercise, e.id FROM events e WHERE e.state <> 'resolved' AND EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.recipient_id = ?1 \
                  AND d.channel = ?2 AND d.state = 'sent') \
                 ORDER BY e.exercise ASC, e.id DESC LIMIT 1",
            )?
            .query_row([id.as_str(), channel], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        // Real (false) first, then the newest.
        if let Some(f) = found
            && best.is_none_or(|b| (f.0, -f.1) < (b.0, -b.1))
        {
            best = Some(f);
        }
    }
    Ok(best.map(|b| b.1))
}

/// Those of `recipient_ids` event `event_id` sent an SMS on `channel`
/// (a delivery `sent`), with their number in the event.
pub fn texted(
    c: &Connection,
    event_id: i64,
    recipient_ids: &[String],
    channel: &str,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for id in recipient_ids {
        let seq: Option<i64> = c
            .prepare_cached(
                "SELECT r.seq FROM event_recipients r WHERE r.event_id = ?1 AND r.recipient_id = ?2 \
                 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = ?1 \
                 AND d.recipient_id = ?2 AND d.channel = ?3 AND d.state = 'sent')",
            )?
            .query_row(params![event_id, id, channel], |r| r.get(0))
            .optional()?;
        if let Some(seq) = seq {
            out.push((id.clone(), seq));
        }
    }
    Ok(out)
}
