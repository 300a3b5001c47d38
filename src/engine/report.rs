//! The RETEX report of an event (SPEC §12): the figures a crisis cell
//! sends to the ARS after a crisis or the yearly exercise, computed from
//! what the store kept. The pages draw it (HTML, SVG chart), the API
//! answers it as JSON, `vigie report` prints it.
//!
//! Definitions:
//! - A tier's *recipients* are the distinct people its deliveries (not
//!   skipped) were for; its *answers* those of them who answered at least
//!   once, its *positive answers* those whose latest answer is one of the
//!   scenario's `ack` responses.
//! - A tier's *time to quorum*: from its notification to the first
//!   response after which the event's positive answers (each person's
//!   latest answer counts, as for the quorum itself) reached the tier's
//!   quorum, provided that happened before the next tier was notified.
//! - The chart's points: after each response, the cumulative number of
//!   people who answered and of those whose latest answer is positive.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EngineError, plan_of};
use crate::config::ConfigSet;
use crate::store::events::{self as q, EventRow};
use crate::store::journal::{self, Entry, Lesson};
use crate::store::{Store, outbox, parse_ts};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub id: i64,
    pub title: String,
    pub scenario: String,
    pub plan_id: String,
    pub plan_version: String,
    pub exercise: bool,
    pub state: String,
    pub declared_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// From the declaration to the resolution (or to now, unresolved).
    pub duration_secs: i64,
    pub levels: Vec<LevelAt>,
    pub tiers: Vec<TierReport>,
    pub channels: Vec<ChannelReport>,
    /// The chart's points, oldest first.
    pub answers: Vec<AnswerPoint>,
    pub log: Vec<Entry>,
    pub lessons: Vec<Lesson>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LevelAt {
    pub level: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TierReport {
    /// Counted from 1, as people say it.
    pub tier: u32,
    /// Counted from 1.
    pub round: u32,
    pub audience: String,
    pub notified_at: DateTime<Utc>,
    pub recipients: usize,
    pub answers: usize,
    pub positive: usize,
    pub quorum: Option<u32>,
    pub time_to_quorum_secs: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ChannelReport {
    pub channel: String,
    pub sent: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Cancelled, pending or being retried.
    pub other: usize,
    /// From the declaration to the first and last delivery sent.
    pub first_after_secs: Option<i64>,
    pub last_after_secs: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AnswerPoint {
    pub at: DateTime<Utc>,
    pub answers: usize,
    pub positive: usize,
}

/// The report of event `id` as of `now`.
pub async fn report(
    store: &Store,
    set: std::sync::Arc<ConfigSet>,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Report, EngineError> {
    let data = store
        .call(move |c| {
            let Some(ev) = q::get_event(c, id)? else {
                return Ok(None);
            };
            Ok(Some((
                q::steps(c, id)?,
                outbox::for_event(c, id)?,
                q::responses(c, id)?,
                crate::store::cap::level_history(c, id)?,
                journal::list(c, id)?,
                journal::lessons(c, id)?,
                ev,
            )))
        })
        .await?;
    let Some((steps, deliveries, responses, levels, log, lessons, ev)) = data else {
        return Err(EngineError::NotFound(format!("no event {id}")));
    };
    let acks: HashSet<String> = plan_of(&set, &ev)
        .map(|(_, s)| s.ack.iter().map(|a| a.to_string()).collect())
        .unwrap_or_default();
    Ok(compute(
        &ev,
        &steps,
        &deliveries,
        &responses,
        levels,
        log,
        lessons,
        &acks,
        now,
    ))
}

#[allow(clippy::too_many_arguments)]
fn compute(
    ev: &EventRow,
    steps: &[q::StepRow],
    deliveries: &[outbox::DeliveryRow],
    responses: &[q::ResponseRow],
    levels: Vec<(Option<String>, DateTime<Utc>)>,
    log: Vec<Entry>,
    lessons: Vec<Lesson>,
    acks: &HashSet<String>,
    now: DateTime<Utc>,
) -> Report {
    // The chart: replay the responses in order.
    let mut latest: HashMap<&str, &str> = HashMap::new();
    let mut answers = Vec::new();
    for r in responses {
        latest.insert(&r.recipient_id, &r.response);
        answers.push(AnswerPoint {
            at: parse_ts(&r.at),
            answers: latest.len(),
            positive: latest.values().filter(|v| acks.contains(**v)).count(),
        });
    }
    let escalations: Vec<&q::StepRow> = steps.iter().filter(|s| s.kind == "escalation").collect();
    let tiers = escalations
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let notified_at = parse_ts(&s.created_at);
            let until = escalations.get(i + 1).map(|n| parse_ts(&n.created_at));
            let people: HashSet<&str> = deliveries
                .iter()
                .filter(|d| d.step_id == Some(s.id) && d.state != "skipped")
                .filter_map(|d| d.recipient_id.as_deref())
                .collect();
            let answered = people.iter().filter(|p| latest.contains_key(**p)).count();
            let positive = people
                .iter()
                .filter(|p| latest.get(**p).is_some_and(|r| acks.contains(*r)))
                .count();
            let time_to_quorum_secs = s.quorum.and_then(|needed| {
                answers
                    .iter()
                    .find(|p| p.at >= notified_at && p.positive >= needed as usize)
                    .filter(|p| until.is_none_or(|u| p.at < u))
                    .map(|p| (p.at - notified_at).num_seconds())
            });
            TierReport {
                tier: s.tier.unwrap_or(0) + 1,
                round: s.round + 1,
                audience: s.audience.clone(),
                notified_at,
                recipients: people.len(),
                answers: answered,
                positive,
                quorum: s.quorum,
                time_to_quorum_secs,
            }
        })
        .collect();
    let mut channels: BTreeMap<&str, ChannelReport> = BTreeMap::new();
    for d in deliveries {
        let c = channels.entry(&d.channel).or_insert_with(|| ChannelReport {
            channel: d.channel.clone(),
            ..Default::default()
        });
        match d.state.as_str() {
            "sent" => {
                c.sent += 1;
                if let Some(at) = d.sent_at.as_deref() {
                    let after = (parse_ts(at) - ev.declared_at).num_seconds();
                    c.first_after_secs = Some(c.first_after_secs.map_or(after, |f| f.min(after)));
                    c.last_after_secs = Some(c.last_after_secs.map_or(after, |l| l.max(after)));
                }
            }
            "failed" => c.failed += 1,
            "skipped" => c.skipped += 1,
            _ => c.other += 1,
        }
    }
    Report {
        id: ev.id,
        title: ev.title.clone(),
        scenario: ev.scenario.clone(),
        plan_id: ev.plan_id.clone(),
        plan_version: ev.plan_version.clone(),
        exercise: ev.exercise,
        state: ev.state.as_str().to_string(),
        declared_at: ev.declared_at,
        resolved_at: ev.resolved_at,
        duration_secs: (ev.resolved_at.unwrap_or(now) - ev.declared_at).num_seconds(),
        levels: levels
            .into_iter()
            .map(|(level, at)| LevelAt { level, at })
            .collect(),
        tiers,
        channels: channels.into_values().collect(),
        answers,
        log,
        lessons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-15T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(min)
    }

    fn step(id: i64, tier: u32, quorum: u32, min: i64) -> q::StepRow {
        q::StepRow {
            id,
            kind: "escalation".into(),
            tier: Some(tier),
            round: 0,
            level: None,
            audience: "referents".into(),
            quorum: Some(quorum),
            timeout_secs: Some(900),
            created_at: crate::store::ts(at(min)),
        }
    }

    fn delivery(step: i64, who: &str, state: &str, sent: Option<i64>) -> outbox::DeliveryRow {
        outbox::DeliveryRow {
            id: 0,
            event_id: Some(1),
            step_id: Some(step),
            recipient_id: Some(who.into()),
            recipient_name: who.into(),
            channel: "email".into(),
            address: None,
            priority: 0,
            state: state.into(),
            message: None,
            reason: None,
            attempts: 1,
            provider_id: None,
            created_at: crate::store::ts(at(0)),
            next_attempt_at: crate::store::ts(at(0)),
            sent_at: sent.map(|m| crate::store::ts(at(m))),
        }
    }

    fn response(who: &str, what: &str, min: i64) -> q::ResponseRow {
        q::ResponseRow {
            recipient_id: who.into(),
            name: who.into(),
            response: what.into(),
            at: crate::store::ts(at(min)),
            eta_minutes: None,
            expected_at: None,
            comment: None,
        }
    }

    #[test]
    fn time_to_quorum_counts_latest_answers_and_only_while_the_tier_is_in_progress() {
        let ev = EventRow {
            id: 1,
            scenario: "canicule".into(),
            dedup_key: String::new(),
            title: "Vague de chaleur".into(),
            level: Some("jaune".into()),
            note: String::new(),
            exercise: true,
            state: q::EventState::Resolved,
            plan_id: "pgc".into(),
            plan_version: "1".into(),
            plan_sha256: String::new(),
            declared_at: at(0),
            updated_at: at(0),
            acknowledged_at: None,
            exhausted_at: None,
            resolved_at: Some(at(90)),
            resolve_note: None,
            tier: 1,
            round: 0,
            escalation_due_at: None,
            link_secret: String::new(),
        };
        // Tier 1 (quorum 2) at 0, tier 2 (quorum 2) at 15.
        let steps = [step(1, 0, 2, 0), step(2, 1, 2, 15)];
        let deliveries = [
            delivery(1, "a", "sent", Some(1)),
            delivery(1, "b", "failed", None),
            delivery(2, "c", "sent", Some(16)),
            delivery(2, "d", "skipped", None),
        ];
        // "a" says yes at 5 then no at 10 (latest counts), "c" yes at 20,
        // "a" yes again at 25: quorum 2 reached at 25, during tier 2.
        let responses = [
            response("a", "oui", 5),
            response("a", "non", 10),
            response("c", "oui", 20),
            response("a", "oui", 25),
        ];
        let acks: HashSet<String> = ["oui".to_string()].into();
        let r = compute(
            &ev,
            &steps,
            &deliveries,
            &responses,
            vec![(Some("jaune".into()), at(0))],
            Vec::new(),
            Vec::new(),
            &acks,
            at(200),
        );
        assert_eq!(r.duration_secs, 90 * 60, "until the resolution, not now");
        let points: Vec<(usize, usize)> =
            r.answers.iter().map(|p| (p.answers, p.positive)).collect();
        assert_eq!(points, [(1, 1), (1, 0), (2, 1), (2, 2)]);
        assert_eq!(
            r.tiers[0].time_to_quorum_secs, None,
            "not reached before tier 2"
        );
        assert_eq!((r.tiers[0].recipients, r.tiers[0].answers), (2, 1));
        assert_eq!(r.tiers[1].time_to_quorum_secs, Some(10 * 60));
        assert_eq!(
            r.tiers[1].recipients, 1,
            "a skipped delivery reaches nobody"
        );
        let email = &r.channels[0];
        assert_eq!((email.sent, email.failed, email.skipped), (2, 1, 1));
        assert_eq!(
            (email.first_after_secs, email.last_after_secs),
            (Some(60), Some(16 * 60))
        );
    }
}
