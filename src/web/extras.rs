//! Dashboard sections fed by the roster and reminder engines.

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::Value;

use crate::config::ConfigSet;

/// Roster gaps of the next 14 days, one line each, and the text to show
/// when there is none.
pub fn roster_gaps(set: &ConfigSet, today: NaiveDate) -> (Vec<String>, String) {
    if set.rosters.is_empty() {
        return (
            Vec::new(),
            "Aucun planning de garde n'est configuré.".into(),
        );
    }
    let mut lines = Vec::new();
    for r in &set.rosters {
        let report = crate::roster::check(set, r, today, 14);
        for l in report.gap_lines_fr() {
            lines.push(format!("{} — {l}", r.title));
        }
        if !report.problems.is_empty() {
            let n = report.problems.len();
            lines.push(format!(
                "{} — {} à revoir (personne inconnue, inactive, absente ce jour-là, non éligible, \
                 en double ou injoignable)",
                r.title,
                crate::model::labels::count(n as u64, "inscription", "inscriptions")
            ));
        }
    }
    (
        lines,
        "Toutes les gardes des 14 prochains jours sont pourvues.".into(),
    )
}

/// The next firings of the routine reminders (14 days, at most 12).
pub fn upcoming_reminders(set: &ConfigSet, now: DateTime<Utc>) -> Vec<Value> {
    let tz = set.daemon.timezone;
    crate::schedule::reminders::due_between(set, now, now + chrono::Duration::days(14))
        .into_iter()
        .take(12)
        .map(|d| {
            minijinja::context! {
                when => d.instant.with_timezone(&tz).format("%d/%m à %H:%M").to_string(),
                title => d.title,
            }
        })
        .collect()
}
