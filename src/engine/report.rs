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
//! - An action is *done on time* when ticked at or before its due time (or
//!   it had none), *done late* when ticked after it, *not done* otherwise;
//!   `late_secs` says by how much it was late (for one not done: at the
//!   resolution, or now while the event goes on).
//! - *Coming*: the people whose latest answer is positive, with the delay
//!   they announced, by expected arrival (answer time plus delay; those
//!   who gave no delay last), each with the tier that reached them first.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EngineError, plan_of};
use crate::config::ConfigSet;
use crate::store::actions::{self as qa, ActionRow};
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
    /// Who is coming and when, by expected arrival.
    pub coming: Vec<Coming>,
    /// The actions checklist, in the order the actions were added.
    pub actions: Vec<ActionReport>,
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

/// A person whose latest answer is positive.
#[derive(Clone, Debug, Serialize)]
pub struct Coming {
    pub recipient_id: String,
    pub name: String,
    /// The first tier (counted from 1) whose message reached them; `None`
    /// for a broadcast.
    pub tier: Option<u32>,
    /// The audience of the first step that reached them.
    pub audience: Option<String>,
    pub response: String,
    pub answered_at: DateTime<Utc>,
    pub eta_minutes: Option<u32>,
    pub expected_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    OnTime,
    Late,
    NotDone,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionReport {
    pub n: i64,
    pub title: String,
    pub who: Option<String>,
    pub added_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<String>,
    pub note: Option<String>,
    pub status: ActionStatus,
    /// How late it was done, or is (not done, past its due time) at the
    /// resolution or now.
    pub late_secs: Option<i64>,
}

impl ActionReport {
    fn of(a: ActionRow, end: DateTime<Utc>) -> ActionReport {
        let late = |at: DateTime<Utc>| a.due_at.map(|d| (at - d).num_seconds()).filter(|s| *s > 0);
        let (status, late_secs) = match a.done_at {
            Some(done) => match late(done) {
                Some(s) => (ActionStatus::Late, Some(s)),
                None => (ActionStatus::OnTime, None),
            },
            None => (ActionStatus::NotDone, late(end)),
        };
        ActionReport {
            n: a.n,
            title: a.title,
            who: a.who,
            added_at: a.added_at,
            due_at: a.due_at,
            done_at: a.done_at,
            done_by: a.done_by,
            note: a.note,
            status,
            late_secs,
        }
    }
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
                qa::list(c, id)?,
                ev,
            )))
        })
        .await?;
    let Some((steps, deliveries, responses, levels, log, lessons, actions, ev)) = data else {
        return Err(super::no_event(id));
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
        actions,
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
    actions: Vec<ActionRow>,
    acks: &HashSet<String>,
    now: DateTime<Utc>,
) -> Report {
    let end = ev.resolved_at.unwrap_or(now);
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
            // A tier is in progress until the next one, or, for the last,
            // until the escalation was exhausted: an answer after that came
            // too late to count as this tier's quorum.
            let until = escalations
                .get(i + 1)
                .map(|n| parse_ts(&n.created_at))
                .or(ev.exhausted_at);
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
    let coming = coming(steps, deliveries, responses, acks);
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
        duration_secs: (end - ev.declared_at).num_seconds(),
        levels: levels
            .into_iter()
            .map(|(level, at)| LevelAt { level, at })
            .collect(),
        tiers,
        channels: channels.into_values().collect(),
        answers,
        coming,
        actions: actions
            .into_iter()
            .map(|a| ActionReport::of(a, end))
            .collect(),
        log,
        lessons,
    }
}

/// Those whose latest answer is positive, by expected arrival.
fn coming(
    steps: &[q::StepRow],
    deliveries: &[outbox::DeliveryRow],
    responses: &[q::ResponseRow],
    acks: &HashSet<String>,
) -> Vec<Coming> {
    let mut latest: HashMap<&str, &q::ResponseRow> = HashMap::new();
    for r in responses {
        latest.insert(&r.recipient_id, r);
    }
    // The first step (in the order they were taken) that reached each one.
    let first_step = |who: &str| {
        steps.iter().find(|s| {
            deliveries.iter().any(|d| {
                d.step_id == Some(s.id)
                    && d.state != "skipped"
                    && d.recipient_id.as_deref() == Some(who)
            })
        })
    };
    let mut out: Vec<Coming> = latest
        .into_values()
        .filter(|r| acks.contains(&r.response))
        .map(|r| {
            let step = first_step(&r.recipient_id);
            Coming {
                recipient_id: r.recipient_id.clone(),
                name: r.name.clone(),
                tier: step
                    .filter(|s| s.kind == "escalation")
                    .and_then(|s| s.tier)
                    .map(|t| t + 1),
                audience: step.map(|s| s.audience.clone()),
                response: r.response.clone(),
                answered_at: parse_ts(&r.at),
                eta_minutes: r.eta_minutes,
                expected_at: r.expected(),
                comment: r.comment.clone(),
            }
        })
        .collect();
    out.sort_by_key(|c| {
        (
            c.expected_at.is_none(),
            c.expected_at,
            c.answered_at,
            c.name.clone(),
        )
    });
    out
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

    fn event() -> EventRow {
        EventRow {
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
        }
    }

    fn action(n: i64, due: Option<i64>, done: Option<i64>) -> ActionRow {
        ActionRow {
            n,
            title: format!("Action {n}"),
            who: None,
            detail: None,
            added_at: at(0),
            due_at: due.map(at),
            done_at: done.map(at),
            done_by: done.map(|_| "bureau".into()),
            note: None,
        }
    }

    #[test]
    fn actions_are_on_time_late_or_not_done_and_those_coming_sorted_by_arrival() {
        let mut ev = event();
        ev.resolved_at = Some(at(60));
        let steps = [step(1, 0, 2, 0), step(2, 1, 2, 15)];
        let deliveries = [
            delivery(1, "a", "sent", Some(1)),
            delivery(1, "b", "sent", Some(1)),
            delivery(2, "c", "sent", Some(16)),
            delivery(2, "a", "sent", Some(16)),
            delivery(2, "d", "sent", Some(16)),
        ];
        let with = |who: &str, what: &str, min: i64, eta: Option<u32>| {
            let mut r = response(who, what, min);
            r.eta_minutes = eta;
            r
        };
        // a: 30 min at 5 (35); b: yes at 10 without a delay; c: 5 min at
        // 20 (25); d: yes in 10 min at 18 then no at 22 — not coming.
        let responses = [
            with("a", "oui", 5, Some(30)),
            with("b", "oui", 10, None),
            with("d", "oui", 18, Some(10)),
            with("c", "oui", 20, Some(5)),
            with("d", "non", 22, None),
        ];
        let actions = vec![
            action(1, Some(30), Some(20)),
            action(2, Some(30), Some(45)),
            action(3, Some(40), None),
            action(4, None, Some(50)),
            action(5, Some(90), None),
        ];
        let acks: HashSet<String> = ["oui".to_string()].into();
        let r = compute(
            &ev,
            &steps,
            &deliveries,
            &responses,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            actions,
            &acks,
            at(500),
        );
        type Row<'a> = (&'a str, Option<u32>, Option<u32>, Option<DateTime<Utc>>);
        let coming: Vec<Row<'_>> = r
            .coming
            .iter()
            .map(|c| (c.name.as_str(), c.tier, c.eta_minutes, c.expected_at))
            .collect();
        assert_eq!(
            coming,
            [
                ("c", Some(2), Some(5), Some(at(25))),
                ("a", Some(1), Some(30), Some(at(35))),
                ("b", Some(1), None, None),
            ]
        );
        let actions: Vec<(i64, ActionStatus, Option<i64>)> = r
            .actions
            .iter()
            .map(|a| (a.n, a.status, a.late_secs))
            .collect();
        assert_eq!(
            actions,
            [
                (1, ActionStatus::OnTime, None),
                (2, ActionStatus::Late, Some(15 * 60)),
                // Late by the resolution (60), not by now (500).
                (3, ActionStatus::NotDone, Some(20 * 60)),
                (4, ActionStatus::OnTime, None),
                (5, ActionStatus::NotDone, None),
            ]
        );
        let json = serde_json::to_value(&r.actions[1]).unwrap();
        assert_eq!(json["status"], "late");
    }

    #[test]
    fn time_to_quorum_counts_latest_answers_and_only_while_the_tier_is_in_progress() {
        let ev = event();
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
        // The same steps, deliveries and answers, reported at 200 for `ev`.
        let report = |ev: &EventRow| {
            compute(
                ev,
                &steps,
                &deliveries,
                &responses,
                vec![(Some("jaune".into()), at(0))],
                Vec::new(),
                Vec::new(),
                Vec::new(),
                &acks,
                at(200),
            )
        };
        let r = report(&ev);
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

        // Exhausted at 24, before the answer of 25: the last tier's quorum
        // came too late to be its own.
        let ev = EventRow {
            exhausted_at: Some(at(24)),
            ..event()
        };
        let r = report(&ev);
        assert_eq!(r.tiers[1].time_to_quorum_secs, None, "after exhaustion");
    }
}
