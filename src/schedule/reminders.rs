//! Routine reminders (SPEC §6): the reminders of `reminders.toml`, each
//! roster's `remind_before` (every assignee, before each shift), and the
//! yearly plan review (30 days before `review_by`, then weekly until a
//! newer version is written), and each roster's monthly "vos gardes"
//! message (`monthly_shifts`: the 1st at 09:00, to each assignee of the
//! next [`MONTHLY_DAYS`], their shifts there). Shift reminders and monthly
//! messages carry the personal page's link ([`PersonalLink`], given by the
//! app, which holds the key). Roster checks join them through
//! [`Job::RosterCheck`].
//!
//! Seasons: a shift reminder goes only for a shift that runs that day and
//! to an assignee there that day (`available_from`, `available_until`,
//! `season`); reminder audiences are taken among those there on the day of
//! the instant; a roster's check is skipped while its horizon holds no day
//! the roster runs.
//!
//! Each scheduled instant of each job is recorded in SQLite when handled,
//! in the same transaction as its deliveries, so it fires once even across
//! restarts. An instant found late (the daemon was down) fires if it is
//! less than [`CATCH_UP`] late, and is recorded as `missed` otherwise.
//! On the very first start nothing in the past is fired. Windows longer
//! than [`LOOK_BACK`] are not searched.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde_json::json;

use super::cron::instants_between;
use super::oncall::{local_to_utc, occurrence, on_call};
use crate::config::templates::json_value;
use crate::config::{ConfigSet, Plan, Professional};
use crate::engine::message::{self, Origin};
use crate::engine::render::{self, Builtin, Compiled, Rendered, TemplateSource};
use crate::store::outbox::{self, NewDelivery, Priority};
use crate::store::{Store, StoreError, reminders as q};

/// An instant later than this is recorded as missed instead of fired.
pub const CATCH_UP: Duration = Duration::hours(1);
/// How far back the scheduler looks after a long stop.
pub const LOOK_BACK: Duration = Duration::days(7);
/// The plan review is announced this long before `review_by`.
pub const REVIEW_NOTICE: Duration = Duration::days(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// A `[[reminder]]` of reminders.toml (its index).
    Reminder(usize),
    /// One assignee's reminder before one shift.
    Shift {
        roster: usize,
        assignment: usize,
        who: String,
    },
    /// The scheduled check of a roster (its index).
    RosterCheck(usize),
    /// The yearly review of a plan version (its index).
    Review(usize),
    /// The monthly "vos gardes" message of a roster (`monthly_shifts`) to
    /// one of its assignees.
    Monthly { roster: usize, who: String },
}

/// A scheduled instant of a job.
#[derive(Clone, Debug)]
pub struct Due {
    /// Stable name of the job, recorded with each instant.
    pub key: String,
    pub instant: DateTime<Utc>,
    pub job: Job,
    /// What it is, for the dashboard.
    pub title: String,
}

/// Every instant of every job in `(from, to]`, in time order.
pub fn due_between(set: &ConfigSet, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Due> {
    let tz = set.daemon.timezone;
    let mut out = Vec::new();
    for (i, r) in set.reminders.reminders.iter().enumerate() {
        for instant in instants_between(&r.schedule, tz, from, to) {
            out.push(Due {
                key: format!("reminder:{}", r.id.value),
                instant,
                job: Job::Reminder(i),
                title: r.title.clone(),
            });
        }
    }
    for (ri, roster) in set.rosters.iter().enumerate() {
        if let Some(check) = &roster.check {
            for instant in instants_between(&check.schedule, tz, from, to) {
                // A winter roster is not checked all summer long: only
                // when its window holds some day it runs.
                let first = instant.with_timezone(&tz).date_naive();
                let days = check.horizon.as_std().as_secs().div_ceil(86_400).max(1);
                if !first
                    .iter_days()
                    .take(days as usize)
                    .any(|d| roster.shifts.iter().any(|s| roster.runs_on(s, d)))
                {
                    continue;
                }
                out.push(Due {
                    key: format!("roster-check:{}", roster.id.value),
                    instant,
                    job: Job::RosterCheck(ri),
                    title: format!("Vérification du planning « {} »", roster.title),
                });
            }
        }
        if roster.monthly_shifts {
            monthly_due(set, ri, from, to, &mut out);
        }
        let Some(before) = roster.remind_before.as_ref().map(|b| b.value) else {
            continue;
        };
        for (ai, a) in roster.assignments.iter().enumerate() {
            // Out of season the shift does not occur: no reminder.
            let Some(shift) = roster
                .shift(&a.shift.value)
                .filter(|s| roster.runs_on(s, a.date.value))
            else {
                continue;
            };
            let (start, _) = occurrence(tz, shift, a.date.value);
            let due = start - before.as_chrono();
            // Before the night when the quiet hours would hold it past
            // the shift's start; found inside them already (Vigie
            // started, the roster added in the night): at `due`, at once.
            let early =
                super::quiet::shift_reminder_at(set.daemon.quiet_hours.as_ref(), tz, due, start);
            let instant = if early > from && early <= to {
                early
            } else if early <= from && due > from && due <= to {
                due
            } else {
                continue;
            };
            for w in &a.who {
                // Nor for someone away that day (their season).
                if set
                    .directory
                    .get(&w.value)
                    .is_some_and(|p| !p.available.contains(a.date.value))
                {
                    continue;
                }
                out.push(Due {
                    key: format!(
                        "shift:{}:{}:{}:{}",
                        roster.id.value, a.date.value, shift.name.value, w.value
                    ),
                    instant,
                    job: Job::Shift {
                        roster: ri,
                        assignment: ai,
                        who: w.value.clone(),
                    },
                    title: format!(
                        "Rappel de garde « {} » du {} pour {}",
                        shift.name.value,
                        a.date.value.format("%d/%m"),
                        set.directory
                            .get(&w.value)
                            .map(|p| p.name.as_str())
                            .unwrap_or(&w.value)
                    ),
                });
            }
        }
    }
    for (pi, p) in set.plans.iter().enumerate() {
        if p.owners.is_none() {
            continue;
        }
        // 09:00 on the notice day, then every 7 days.
        let first_day = p.review_by.value - REVIEW_NOTICE;
        let nine = NaiveTime::from_hms_opt(9, 0, 0).expect("valid time");
        let first = local_to_utc(tz, first_day.and_time(nine));
        if first > to {
            continue;
        }
        let mut k = if from > first {
            (from - first).num_days() / 7
        } else {
            0
        };
        loop {
            let day = first_day + Duration::days(7 * k);
            let instant = local_to_utc(tz, day.and_time(nine));
            if instant > to {
                break;
            }
            // Only while this version is in force and no newer one is written.
            if instant > from && review_pending(set, p, day) {
                out.push(Due {
                    key: format!("review:{}:{}", p.id.value, p.version.value.0),
                    instant,
                    job: Job::Review(pi),
                    title: format!("Révision annuelle du plan « {} »", p.title),
                });
            }
            k += 1;
        }
    }
    out.sort_by_key(|d| d.instant);
    out
}

/// The monthly "vos gardes" instants of roster `ri` in `(from, to]`: the
/// 1st of each month at 09:00, to each professional the roster assigns in
/// the [`MONTHLY_DAYS`] that follow.
fn monthly_due(
    set: &ConfigSet,
    ri: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut Vec<Due>,
) {
    use chrono::Datelike;
    let tz = set.daemon.timezone;
    let roster = &set.rosters[ri];
    let nine = NaiveTime::from_hms_opt(9, 0, 0).expect("valid time");
    let start = from.with_timezone(&tz).date_naive();
    let Some(mut first) = start.with_day(1) else {
        return;
    };
    loop {
        let instant = local_to_utc(tz, first.and_time(nine));
        if instant > to {
            break;
        }
        if instant > from {
            let mut who: Vec<&str> = Vec::new();
            for a in &roster.assignments {
                let d = a.date.value;
                if d >= first && d < first + Duration::days(i64::from(MONTHLY_DAYS)) {
                    for w in &a.who {
                        if !who.contains(&w.value.as_str()) {
                            who.push(&w.value);
                        }
                    }
                }
            }
            for w in who {
                out.push(Due {
                    key: format!("monthly:{}:{w}", roster.id.value),
                    instant,
                    job: Job::Monthly {
                        roster: ri,
                        who: w.to_string(),
                    },
                    title: format!(
                        "Vos gardes « {} » pour {}",
                        roster.title,
                        set.directory.get(w).map(|p| p.name.as_str()).unwrap_or(w)
                    ),
                });
            }
        }
        let Some(next) = first.checked_add_months(chrono::Months::new(1)) else {
            break;
        };
        first = next;
    }
}

/// The days a monthly "vos gardes" message covers.
pub const MONTHLY_DAYS: u32 = 60;

fn review_pending(set: &ConfigSet, p: &Plan, day: chrono::NaiveDate) -> bool {
    let in_force = set.plans_in_force(day).iter().any(|f| std::ptr::eq(*f, p));
    let newer = set.newer_version(p, day).is_some();
    in_force && !newer
}

/// What one tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TickOutcome {
    pub fired: usize,
    pub missed: usize,
    pub deliveries: usize,
}

/// Produces the messages of a roster check; given by the daemon so that
/// this module does not depend on the roster engine.
pub type CheckReport =
    Arc<dyn Fn(&ConfigSet, usize, DateTime<Utc>) -> Option<(String, String)> + Send + Sync>;

/// The address of a professional's personal page (SPEC §15), given by the
/// app (it holds the link key): put in every shift reminder and monthly
/// message.
pub type PersonalLink = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Handles every instant due since the last tick.
pub async fn tick(
    store: &Store,
    set: Arc<ConfigSet>,
    now: DateTime<Utc>,
    check_report: Option<CheckReport>,
    personal: Option<PersonalLink>,
) -> Result<TickOutcome, StoreError> {
    store
        .call(move |c| {
            let tx = c.transaction()?;
            let mut outcome = TickOutcome::default();
            let since = q::checked_until(&tx)?.unwrap_or(now).max(now - LOOK_BACK);
            for due in due_between(&set, since, now) {
                // A shift reminder is recorded under its `remind_before`
                // instant, even when sent before the night: once only.
                let (recorded, shift_start) = shift_times(&set, &due);
                let late = now - due.instant;
                if late > CATCH_UP {
                    if q::claim(&tx, &due.key, recorded, "missed", now)? {
                        outcome.missed += 1;
                        tracing::warn!(job = %due.key, instant = %due.instant, "reminder missed while Vigie was stopped");
                    }
                    continue;
                }
                if !q::claim(&tx, &due.key, recorded, "fired", now)? {
                    continue;
                }
                // The review reminder says when the plan was last exercised.
                let last_exercise = match &due.job {
                    Job::Review(i) => crate::store::actions::last_exercise(&tx, &set.plans[*i].id.value)?
                        .map(|t| t.with_timezone(&set.daemon.timezone).date_naive()),
                    _ => None,
                };
                let items = messages(
                    &set,
                    &due,
                    now,
                    check_report.as_ref(),
                    personal.as_ref(),
                    last_exercise,
                );
                // Inside the quiet hours, written now and sent at their
                // end; but a shift reminder that would then come after its
                // shift has begun goes at once.
                let from = set
                    .daemon
                    .quiet_hours
                    .and_then(|q| super::quiet::release(&q, set.daemon.timezone, now))
                    .filter(|end| shift_start.is_none_or(|start| *end <= start));
                let n = outbox::insert_due(&tx, &items, now, from.unwrap_or(now))?;
                q::set_deliveries(&tx, &due.key, recorded, n)?;
                outcome.fired += 1;
                outcome.deliveries += n;
                match from {
                    Some(at) => tracing::info!(job = %due.key, deliveries = n, until = %at, "reminder fired, held back by the quiet hours"),
                    None => tracing::info!(job = %due.key, deliveries = n, "reminder fired"),
                }
            }
            if since <= now {
                q::set_checked_until(&tx, now)?;
            }
            tx.commit()?;
            Ok(outcome)
        })
        .await
}

/// The instant a due job is recorded under, and for a shift reminder its
/// shift's start: a shift reminder's `remind_before` instant, even when it
/// is sent before the night (quiet hours).
fn shift_times(set: &ConfigSet, due: &Due) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    if let Job::Shift {
        roster, assignment, ..
    } = &due.job
    {
        let r = &set.rosters[*roster];
        let a = &r.assignments[*assignment];
        if let (Some(before), Some(shift)) = (&r.remind_before, r.shift(&a.shift.value)) {
            let (start, _) = occurrence(set.daemon.timezone, shift, a.date.value);
            return (start - before.value.as_chrono(), Some(start));
        }
    }
    (due.instant, None)
}

/// `vendredi 19 juin 2026`, in the daemon's time zone.
fn fr_date(set: &ConfigSet, t: DateTime<Utc>) -> String {
    crate::roster::ics::date_fr(t.with_timezone(&set.daemon.timezone).date_naive())
}

fn messages(
    set: &ConfigSet,
    due: &Due,
    now: DateTime<Utc>,
    check_report: Option<&CheckReport>,
    personal: Option<&PersonalLink>,
    last_exercise: Option<chrono::NaiveDate>,
) -> Vec<NewDelivery> {
    let link = |id: &str| personal.map(|f| f(id)).unwrap_or_default();
    let oc = |r: &str| on_call(set, r, due.instant);
    // Who is there: the day of the instant, in the daemon's time zone.
    let day = due.instant.with_timezone(&set.daemon.timezone).date_naive();
    match &due.job {
        Job::Reminder(i) => {
            let r = &set.reminders.reminders[*i];
            let people = set.directory.select_on(&r.audience, &oc, day);
            let src = r
                .template
                .as_ref()
                .and_then(|t| set.reminders.templates.get(&t.value))
                .map(TemplateSource::from)
                .unwrap_or_else(|| TemplateSource {
                    subject: "{{ reminder.title }}".into(),
                    text: "Bonjour {{ recipient.name }},\n\nRappel de {{ cpts }} : {{ reminder.title }}.\n\nMessage automatique de Vigie, le {{ date }}.\n".into(),
                    html: None,
                sms: None,
                });
            let channels: Vec<String> = r.channels.iter().map(|c| c.value.clone()).collect();
            let base = json!({"cpts": set.daemon.name, "reminder": {"id": r.id.value, "title": r.title}, "date": fr_date(set, due.instant)});
            deliveries(set, &people, &channels, &src, &base, &due.key, now)
        }
        Job::Shift {
            roster,
            assignment,
            who,
        } => {
            let roster = &set.rosters[*roster];
            let a = &roster.assignments[*assignment];
            let Some(shift) = roster.shift(&a.shift.value) else {
                return Vec::new();
            };
            let Some(p) = set
                .directory
                .get(who)
                .filter(|p| p.present_on(a.date.value))
            else {
                return Vec::new();
            };
            let (start, end) = occurrence(set.daemon.timezone, shift, a.date.value);
            let tz = set.daemon.timezone;
            let src = TemplateSource {
                subject: "Rappel : garde « {{ shift }} » le {{ day }}".into(),
                text: "Bonjour {{ recipient.name }},\n\nVous êtes inscrit(e) au planning « {{ roster }} » pour la garde « {{ shift }} » du {{ day }}, de {{ start }} à {{ end }}.\n\nEn cas d'empêchement, cherchez un remplaçant depuis votre page de gardes (bouton « Chercher un remplaçant ») ou prévenez au plus vite le bureau de {{ cpts }}.\n{% if link %}\nVotre page de gardes : {{ link }}\n{% endif %}".into(),
                html: None,
                sms: None,
            };
            let base = json!({
                "cpts": set.daemon.name, "roster": roster.title, "shift": shift.name.value,
                "day": fr_date(set, start),
                "start": start.with_timezone(&tz).format("%H:%M").to_string(),
                "end": end.with_timezone(&tz).format("%H:%M").to_string(),
                "link": link(who),
            });
            deliveries(
                set,
                &[p],
                &["email".to_string()],
                &src,
                &base,
                &due.key,
                now,
            )
        }
        Job::Monthly { roster, who } => {
            let roster = &set.rosters[*roster];
            let Some(p) = set.directory.get(who).filter(|p| p.active) else {
                return Vec::new();
            };
            let tz = set.daemon.timezone;
            let lines: Vec<String> = crate::roster::swaps::shifts_of(set, who, day, MONTHLY_DAYS)
                .into_iter()
                .filter(|o| o.roster == roster.id.value)
                .map(|o| {
                    format!(
                        "- {} : garde « {} », de {} à {}",
                        crate::roster::ics::date_fr(o.date),
                        o.shift,
                        o.start.with_timezone(&tz).format("%H:%M"),
                        o.end.with_timezone(&tz).format("%H:%M")
                    )
                })
                .collect();
            if lines.is_empty() {
                return Vec::new();
            }
            let src = TemplateSource {
                subject: "Vos gardes « {{ roster }} » des deux prochains mois".into(),
                text: "Bonjour {{ recipient.name }},\n\nVos gardes au planning « {{ roster }} » :\n{{ lines }}\n\nVotre page de gardes (remplacements, calendrier) : {{ link }}\n\nMessage automatique de Vigie — {{ cpts }}.\n".into(),
                html: None,
                sms: None,
            };
            let base = json!({
                "cpts": set.daemon.name, "roster": roster.title,
                "lines": lines.join("\n"), "link": link(who),
            });
            deliveries(
                set,
                &[p],
                &["email".to_string()],
                &src,
                &base,
                &due.key,
                now,
            )
        }
        Job::RosterCheck(i) => {
            let roster = &set.rosters[*i];
            let Some(check) = &roster.check else {
                return Vec::new();
            };
            let Some((subject, text)) = check_report.and_then(|f| f(set, *i, due.instant)) else {
                return Vec::new();
            };
            let people = set.directory.select_on(&check.notify, &oc, day);
            let src = TemplateSource {
                subject: "{{ subject }}".into(),
                text: "{{ text }}".into(),
                html: None,
                sms: None,
            };
            let base = json!({"cpts": set.daemon.name, "subject": subject, "text": text});
            deliveries(
                set,
                &people,
                &["email".to_string()],
                &src,
                &base,
                &due.key,
                now,
            )
        }
        Job::Review(i) => {
            let p = &set.plans[*i];
            let owners = p.owners.clone().unwrap_or_default();
            let people = set.directory.select_on(&owners, &oc, day);
            let src = TemplateSource {
                subject: "Révision annuelle du plan « {{ plan }} » avant le {{ review_by }}".into(),
                text: "Bonjour {{ recipient.name }},\n\nLe plan « {{ plan }} » (version {{ version }}) doit être révisé et approuvé avant le {{ review_by }}, comme chaque année (mission 4 de l'ACI).\n\nAucune nouvelle version n'est encore enregistrée dans Vigie. Ce rappel sera renouvelé chaque semaine jusqu'à ce qu'elle le soit.\n{% if exercise %}\n{{ exercise }}\n{% endif %}".into(),
                html: None,
                sms: None,
            };
            let base = json!({
                "cpts": set.daemon.name, "plan": p.title, "version": p.version.value.0,
                "review_by": p.review_by.value.format("%d/%m/%Y").to_string(),
                "exercise": crate::config::conduct::exercise_status(&p.title, p.exercise_every, last_exercise, day)
                    .map(|(_, t)| t).unwrap_or_default(),
            });
            deliveries(
                set,
                &people,
                &["email".to_string()],
                &src,
                &base,
                &due.key,
                now,
            )
        }
    }
}

/// One delivery per (person, channel), skipped when the contact is missing.
fn deliveries(
    set: &ConfigSet,
    people: &[&Professional],
    channels: &[String],
    src: &TemplateSource,
    base: &serde_json::Value,
    job: &str,
    _now: DateTime<Utc>,
) -> Vec<NewDelivery> {
    let compiled =
        Compiled::cached(src).or_else(|_| Compiled::cached(&Builtin::Information.source()));
    let Ok(compiled) = compiled else {
        return Vec::new();
    };
    let channels: Vec<&String> = channels.iter().collect();
    let origin = Origin {
        event_id: None,
        step_id: None,
        priority: Priority::Reminder,
    };
    let base = json_value(base.clone());
    let mut out = Vec::new();
    for p in people {
        let r = compiled
            .render(
                &render::context_on(&base, render::recipient_json(p), ""),
                false,
            )
            .unwrap_or_else(|e| {
                tracing::error!(job, error = %e, "reminder template failed to render");
                Rendered {
                    subject: job.to_string(),
                    text: job.to_string(),
                    html: None,
                }
            });
        out.extend(message::routed_deliveries(
            &set.daemon,
            p,
            &channels,
            &r,
            origin,
            |ch, address| {
                set.daemon.webhooks.get(ch).map(|_| {
                    json!({
                        "cpts": set.daemon.name, "reminder": job, "subject": r.subject, "text": r.text,
                        "recipient": {"id": p.id, "name": p.name, "phone": address},
                    })
                    .to_string()
                })
            },
        ));
    }
    out
}
