//! The RETEX report page (`GET /bureau/events/{id}/report`, SPEC §12):
//! the figures of [`crate::engine::report`], an inline SVG chart of the
//! answers over time (no script), the whole main courante oldest first and
//! the lessons learned; printable on A4 (`@page`, no navigation printed).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};

use super::journal::entries_view;
use super::{Operator, audience_label, author_label, channel_label, fr_time};
use crate::config::ConfigSet;
use crate::engine::EngineError;
use crate::engine::report::{ActionStatus, Report};
use crate::model::labels;
use crate::web::WebState;

fn secs(s: i64) -> String {
    labels::duration(Duration::from_secs(s.max(0) as u64))
}

pub async fn report_page(
    State(state): State<Arc<WebState>>,
    op: Operator,
    Path(id): Path<String>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, Html("<p>Événement inconnu.</p>")).into_response();
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    let r = match state.report(id).await {
        Ok(r) => r,
        Err(EngineError::NotFound(_)) => return not_found(),
        Err(e) => {
            let e = crate::web::error::for_page(e, "report page");
            return (e.status(), Html("<p>Erreur interne.</p>")).into_response();
        }
    };
    let set = state.config();
    state.pages.render(
        "report.html",
        context! {
            cpts => set.daemon.name.clone(), operator => op.name.clone(), csrf => state.sessions.csrf(&op.cookie),
            r => report_view(&set, &r), chart => chart(&set, &r), actions => actions_section(&set, &r),
        },
    )
}

fn report_view(set: &ConfigSet, r: &Report) -> Value {
    let hour = |t: DateTime<Utc>| fr_time(set, t);
    context! {
        id => r.id, title => r.title.clone(), scenario => r.scenario.clone(),
        plan => format!("{} version {}", r.plan_id, r.plan_version), exercise => r.exercise,
        state => labels::event_state(&r.state).to_string(),
        declared => hour(r.declared_at), resolved => r.resolved_at.map(hour),
        duration => secs(r.duration_secs),
        levels => r.levels.iter().map(|l| context! { level => l.level.clone().unwrap_or_else(|| "—".into()), at => hour(l.at) }).collect::<Vec<_>>(),
        tiers => r.tiers.iter().map(|t| context! {
            tier => t.tier, round => t.round, audience => audience_label(&t.audience), at => hour(t.notified_at),
            recipients => t.recipients, answers => t.answers, positive => t.positive, quorum => t.quorum,
            to_quorum => t.time_to_quorum_secs.map(secs).unwrap_or_else(|| "non atteint".into()),
        }).collect::<Vec<_>>(),
        channels => r.channels.iter().map(|c| context! {
            channel => channel_label(&c.channel), sent => c.sent, failed => c.failed, skipped => c.skipped, other => c.other,
            first => c.first_after_secs.map(secs).unwrap_or_else(|| "—".into()),
            last => c.last_after_secs.map(secs).unwrap_or_else(|| "—".into()),
        }).collect::<Vec<_>>(),
        coming => r.coming.iter().map(|c| context! {
            name => c.name.clone(),
            tier => match c.tier { Some(t) => format!("Palier {t}"), None => c.audience.as_deref().map(|a| format!("Diffusion — {}", audience_label(a))).unwrap_or_else(|| "—".into()) },
            response => labels::response(&c.response), answered => hour(c.answered_at),
            eta => c.eta_minutes.map(|m| secs(i64::from(m) * 60)).unwrap_or_else(|| "non précisé".into()),
            expected => c.expected_at.map(hour).unwrap_or_else(|| "—".into()),
            comment => c.comment.clone(),
        }).collect::<Vec<_>>(),
        log => entries_view(set, &r.log),
        lessons => r.lessons.iter().map(|l| context! { at => hour(l.at), author => author_label(&l.author), text => l.text.clone() }).collect::<Vec<_>>(),
        max => crate::engine::journal::MAX_TEXT,
    }
}

/// The actions checklist of the event: each action with its due time,
/// when and by whom it was done, and whether on time, late (by how much)
/// or not done; undefined when the event has none.
fn actions_section(set: &ConfigSet, r: &Report) -> Value {
    if r.actions.is_empty() {
        return Value::UNDEFINED;
    }
    let hour = |t: DateTime<Utc>| fr_time(set, t);
    let rows: Vec<Value> = r
        .actions
        .iter()
        .map(|a| {
            let (class, status) = match (a.status, a.late_secs) {
                (ActionStatus::OnTime, _) => ("ok", "Faite à temps".to_string()),
                (ActionStatus::Late, l) => (
                    "late",
                    format!("Faite en retard de {}", secs(l.unwrap_or(0))),
                ),
                (ActionStatus::NotDone, Some(l)) => {
                    ("late", format!("Non faite, en retard de {}", secs(l)))
                }
                (ActionStatus::NotDone, None) => ("todo", "Non faite".to_string()),
            };
            context! {
                n => a.n, title => a.title.clone(), who => a.who.clone().unwrap_or_else(|| "—".into()),
                due => a.due_at.map(hour).unwrap_or_else(|| "—".into()),
                done => a.done_at.map(hour), by => a.done_by.as_deref().map(author_label), note => a.note.clone(),
                class => class, status => status,
            }
        })
        .collect();
    let count = |s: ActionStatus| r.actions.iter().filter(|a| a.status == s).count() as u64;
    context! {
        rows => rows,
        summary => format!(
            "{} sur {} : {} à temps, {} en retard ; {}.",
            labels::count(count(ActionStatus::OnTime) + count(ActionStatus::Late), "action faite", "actions faites"),
            r.actions.len(),
            count(ActionStatus::OnTime),
            count(ActionStatus::Late),
            labels::count(count(ActionStatus::NotDone), "non faite", "non faites"),
        ),
    }
}

// The chart's frame, in SVG user units.
const W: f64 = 640.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 52.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The inline SVG of cumulative answers and positive answers over time,
/// tier instants marked; `None` when nobody answered and no tier was
/// notified. Built as text (escaped), marked safe for the template.
fn chart(set: &ConfigSet, r: &Report) -> Option<Value> {
    if r.answers.is_empty() && r.tiers.is_empty() {
        return None;
    }
    let tz = set.daemon.timezone;
    let t0 = r.declared_at;
    let last = r
        .answers
        .last()
        .map(|p| p.at)
        .into_iter()
        .chain(r.tiers.iter().map(|t| t.notified_at))
        .chain(r.resolved_at)
        .max()
        .unwrap_or(t0);
    let span = ((last - t0).num_seconds().max(60)) as f64;
    let top = r
        .answers
        .iter()
        .map(|p| p.answers)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |t: DateTime<Utc>| LEFT + (t - t0).num_seconds() as f64 / span * (W - LEFT - RIGHT);
    let y = |n: usize| H - BOTTOM - n as f64 / top * (H - TOP - BOTTOM);
    let hm = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-labelledby=\"chart-title\" class=\"chart\">\
         <title id=\"chart-title\">Réponses cumulées et réponses positives au fil du temps</title>"
    );
    // Axes.
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    svg += &format!(
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#333\"/>\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#333\"/>"
    );
    // Time ticks: five, in the daemon's zone.
    for i in 0..=4 {
        let t = t0 + chrono::Duration::seconds((span * i as f64 / 4.0) as i64);
        let tx = x(t);
        svg += &format!(
            "<line x1=\"{tx:.1}\" y1=\"{y0}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#333\"/>\
             <text x=\"{tx:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            y0 + 4.0,
            y0 + 16.0,
            hm(t)
        );
    }
    // Count ticks.
    let step = ((top / 5.0).ceil() as usize).max(1);
    let mut n = 0;
    while n as f64 <= top {
        let ty = y(n);
        svg += &format!(
            "<line x1=\"{}\" y1=\"{ty:.1}\" x2=\"{x0}\" y2=\"{ty:.1}\" stroke=\"#333\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{n}</text>",
            x0 - 4.0,
            x0 - 6.0,
            ty + 4.0
        );
        n += step;
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">Heure ({})</text>\
         <text x=\"14\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">Nombre de personnes (cumul)</text>",
        (x0 + x1) / 2.0,
        H - 8.0,
        esc(tz.name()),
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
    );
    // Tier instants.
    for t in &r.tiers {
        let tx = x(t.notified_at);
        svg += &format!(
            "<line class=\"tier\" x1=\"{tx:.1}\" y1=\"{y0}\" x2=\"{tx:.1}\" y2=\"{y1}\" stroke=\"#8a1c12\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"11\" fill=\"#8a1c12\">Palier {}</text>",
            tx + 3.0,
            y1 + 10.0,
            t.tier
        );
    }
    // The two step lines, and a point per response.
    for (class, color, value) in [
        (
            "answers",
            "#123a5a",
            (|p: &crate::engine::report::AnswerPoint| p.answers) as fn(&_) -> usize,
        ),
        ("positive", "#145c2c", |p| p.positive),
    ] {
        let mut points = vec![format!("{:.1},{:.1}", x(t0), y(0))];
        let mut prev = 0;
        for p in &r.answers {
            points.push(format!("{:.1},{:.1}", x(p.at), y(prev)));
            prev = value(p);
            points.push(format!("{:.1},{:.1}", x(p.at), y(prev)));
        }
        points.push(format!("{:.1},{:.1}", x(last), y(prev)));
        svg += &format!(
            "<polyline class=\"{class}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{} points=\"{}\"/>",
            // Dashed, so that the answers line shows under it when every
            // answer is positive.
            if class == "positive" {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            points.join(" ")
        );
    }
    for p in &r.answers {
        svg += &format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#123a5a\"><title>{} : {}, dont {}</title></circle>",
            x(p.at),
            y(p.answers),
            hm(p.at),
            labels::count(p.answers as u64, "réponse", "réponses"),
            labels::count(p.positive as u64, "positive", "positives"),
        );
    }
    // Legend.
    let (lx, ly) = (LEFT + 10.0, H - 24.0);
    svg += &format!(
        "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"#123a5a\" stroke-width=\"2\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\">Réponses</text>\
         <line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"#145c2c\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\">Réponses positives</text>",
        lx + 28.0,
        lx + 32.0,
        ly + 4.0,
        lx + 100.0,
        lx + 128.0,
        lx + 132.0,
        ly + 4.0,
    );
    svg += "</svg>";
    Some(Value::from_safe_string(svg))
}
