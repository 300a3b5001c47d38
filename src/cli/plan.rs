//! `vigie plan list` and `vigie plan preview` (SPEC §10): what the plan
//! files say, read from the files alone (no daemon needed).
//!
//! `plan list` reads the daemon configuration and the plans only, so it
//! works even when another file is broken; `plan preview` loads the whole
//! set and renders through the engine without sending anything.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};

use super::today_in;
use crate::config::{self, Diagnostics, Plan, plan};

/// `vigie plan preview`: works from the files alone.
pub fn preview(
    path: &Path,
    scenario_id: &str,
    level: Option<&str>,
    exercise: bool,
    date: Option<NaiveDate>,
    out: &mut dyn Write,
) -> i32 {
    let loaded = config::load(path, today_in(date));
    let Some(set) = loaded.set else {
        for d in loaded.diagnostics.errors() {
            let _ = writeln!(out, "{d}");
        }
        return 1;
    };
    let tz = set.daemon.timezone;
    let now = match date {
        Some(d) => {
            crate::schedule::oncall::local_to_utc(tz, d.and_hms_opt(12, 0, 0).unwrap_or_default())
        }
        None => Utc::now(),
    };
    let today = now.with_timezone(&tz).date_naive();
    let set = Arc::new(set);
    let Some(plan) = set
        .plans_in_force(today)
        .into_iter()
        .find(|p| p.scenario(scenario_id).is_some())
    else {
        let known: Vec<&str> = set
            .plans_in_force(today)
            .into_iter()
            .flat_map(|p| p.scenarios.iter().map(|s| s.id.value.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "aucun plan en vigueur le {today} n'a de scénario `{scenario_id}`{} (scénarios : {})",
            crate::config::diag::closest(scenario_id, known.iter().copied())
                .map(|c| format!(" : vouliez-vous dire `{c}` ?"))
                .unwrap_or_default(),
            if known.is_empty() {
                "aucun".to_string()
            } else {
                known.join(", ")
            }
        );
        return 1;
    };
    let scenario = plan.scenario(scenario_id).expect("found");
    let ctx = crate::engine::Ctx {
        set: set.clone(),
        links: crate::engine::links::LinkSigner::new(Vec::new()),
        now,
        outbox: None,
        metrics: Default::default(),
        actor: None,
    };
    let steps = match crate::engine::preview(&ctx, plan, scenario, level, exercise) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return 1;
        }
    };
    let _ = writeln!(
        out,
        "{} — {} (plan {} {}){}",
        scenario.id.value,
        scenario.title,
        plan.id.value,
        plan.version.value,
        match level.or(scenario.levels.first().map(|l| l.as_str())) {
            Some(l) => format!(", niveau {l}"),
            None => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "Rien n'est envoyé. Réponses proposées : {}.",
        scenario.responses.join(", ")
    );
    for s in steps {
        let _ = writeln!(out, "\n== {} ==", s.title);
        let _ = writeln!(
            out,
            "canaux : {} ; {}",
            s.channels.join(", "),
            crate::model::labels::count(s.recipients.len() as u64, "destinataire", "destinataires")
        );
        for (name, detail) in &s.recipients {
            let _ = writeln!(out, "  - {name} ({detail})");
        }
        for (ch, lacking) in &s.skipped {
            let _ = writeln!(
                out,
                "  sans contact pour {ch}, non envoyé à : {}",
                lacking.join(", ")
            );
        }
        match &s.first {
            Some((to, r)) => {
                let _ = writeln!(out, "premier message, à {to} :");
                let _ = writeln!(out, "  Objet : {}", r.subject);
                for line in r.text.lines() {
                    let _ = writeln!(out, "  | {line}");
                }
            }
            None => {
                let _ = writeln!(out, "  (personne : cette étape n'enverrait rien)");
            }
        }
    }
    0
}

/// `vigie plan list`: reads the daemon config and the plans only, so it
/// works even when another file is broken.
pub fn plan_list(path: &Path, date: Option<NaiveDate>, out: &mut dyn Write) -> i32 {
    let mut diags = Diagnostics::default();
    let Some(daemon) = config::daemon::load(path, &mut diags) else {
        for d in diags.iter() {
            let _ = writeln!(out, "{d}");
        }
        return 1;
    };
    let today = today_in(date)(daemon.timezone);
    let mut plans = plan::load_dir(&daemon.plans, &mut diags);
    plans.sort_by(|a, b| (a.id.as_str(), &a.version.value).cmp(&(b.id.as_str(), &b.version.value)));
    let in_force: Vec<&Plan> = plan::in_force(&plans, today);
    let base = path.parent().unwrap_or(Path::new("."));
    let rows: Vec<[String; 8]> = plans
        .iter()
        .map(|p| {
            let status = plan_status(p, &plans, &in_force, today);
            let file = p
                .path
                .strip_prefix(base)
                .unwrap_or(&p.path)
                .display()
                .to_string();
            [
                p.id.value.clone(),
                p.version.value.0.clone(),
                p.valid_from.value.to_string(),
                p.valid_until.value.to_string(),
                p.approved
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
                p.review_by.value.to_string(),
                status,
                file,
            ]
        })
        .collect();
    let header = [
        "PLAN",
        "VERSION",
        "DU",
        "AU",
        "APPROUVÉ LE",
        "À RÉVISER LE",
        "ÉTAT",
        "FICHIER",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    let _ = writeln!(out, "au {today}");
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
    if plans.is_empty() {
        let _ = writeln!(out, "(aucun plan dans {})", daemon.plans.display());
    }
    if in_force.is_empty() {
        let _ = writeln!(out, "attention : aucun plan n'est en vigueur le {today}");
    }
    for d in diags.iter() {
        let _ = writeln!(out, "{d}");
    }
    if diags.has_errors() { 1 } else { 0 }
}

fn plan_status(p: &Plan, all: &[Plan], in_force: &[&Plan], today: NaiveDate) -> String {
    if in_force.iter().any(|f| std::ptr::eq(*f, p)) {
        let notice = p.review_by.value - Duration::days(30);
        let newer = plan::newer_version(all, p, today).is_some();
        let days = (p.review_by.value - today).num_days();
        let jours = |n: i64| crate::model::labels::count(n.unsigned_abs(), "jour", "jours");
        if newer {
            "en vigueur (version suivante écrite)".to_string()
        } else if days < 0 {
            format!("en vigueur, révision en retard de {}", jours(days))
        } else if today >= notice {
            format!("en vigueur, révision dans {}", jours(days))
        } else {
            "en vigueur".to_string()
        }
    } else if p.valid_until.value < today {
        "expiré".to_string()
    } else if p.valid_from.value > today {
        "à venir".to_string()
    } else {
        "remplacé".to_string()
    }
}
