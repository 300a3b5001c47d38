//! Crisis conduct in a plan (SPEC §12): per scenario, what the
//! professionals alerted should do (`instructions`, Markdown), what the
//! population should do (`public_advice`, plain text), the crisis cell's
//! action cards (`[[scenario.action]]`), and the plan's exercise period
//! (`[plan] exercise_every`). Read here with `file:line:col` diagnostics;
//! the checklist an event keeps is the store's and the engine's.

use chrono::{Months, NaiveDate};

use super::diag::{Loc, Located};
use super::reader::{Ctx, Table};
use crate::model::DurationValue;

/// A text per level of a scenario, or one text for every level.
#[derive(Clone, Debug, Default)]
pub struct PerLevel {
    /// `(level, text)`; level `None` for a lone string (every level).
    pub texts: Vec<(Option<Located<String>>, String)>,
}

impl PerLevel {
    /// The text of `level`: the level's own, else the one for every level.
    pub fn get(&self, level: Option<&str>) -> Option<&str> {
        let own = self
            .texts
            .iter()
            .find(|(l, _)| l.is_some() && l.as_ref().map(|l| l.value.as_str()) == level);
        own.or_else(|| self.texts.iter().find(|(l, _)| l.is_none()))
            .map(|(_, t)| t.as_str())
            .filter(|t| !t.trim().is_empty())
    }
}

/// `[[scenario.action]]`: one action card (fiche réflexe) of the crisis
/// cell.
#[derive(Clone, Debug)]
pub struct Action {
    pub title: String,
    /// The levels whose checklist it joins; empty means every level.
    pub levels: Vec<Located<String>>,
    /// A role or group of the directory, or free text.
    pub who: Option<String>,
    /// Expected within this delay of entering the level.
    pub due: Option<DurationValue>,
    /// Markdown.
    pub detail: Option<String>,
    pub loc: Loc,
}

impl Action {
    /// Whether the action is on the checklist at `level`.
    pub fn applies_to(&self, level: Option<&str>) -> bool {
        self.levels.is_empty() || self.levels.iter().any(|l| Some(l.value.as_str()) == level)
    }
}

/// `[plan] exercise_every`: how often the plan must be exercised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExerciseEvery {
    /// `"12mo"`: calendar months.
    Months(u32),
    /// Any other duration (`"180d"`).
    Duration(DurationValue),
}

impl ExerciseEvery {
    /// `"12mo"`, `"6 mois"`, `"18 months"`, or a duration such as `"180d"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
        let unit = t[digits.len()..].trim();
        if !digits.is_empty() && matches!(unit, "mo" | "mois" | "month" | "months") {
            return match digits.parse::<u32>() {
                Ok(n) if (1..=120).contains(&n) => Ok(ExerciseEvery::Months(n)),
                _ => Err(format!(
                    "invalid exercise period \"{s}\": between 1 and 120 months (write e.g. \"12mo\")"
                )),
            };
        }
        DurationValue::parse(t)
            .map(ExerciseEvery::Duration)
            .map_err(|_| {
                format!(
                    "invalid exercise period \"{s}\" (write months as \"12mo\", or a duration such as \"180d\")"
                )
            })
    }

    /// The first day of the period that ends on `today`.
    pub fn start(&self, today: NaiveDate) -> NaiveDate {
        match self {
            ExerciseEvery::Months(n) => today
                .checked_sub_months(Months::new(*n))
                .unwrap_or(NaiveDate::MIN),
            ExerciseEvery::Duration(d) => today
                .checked_sub_signed(chrono::Duration::days(
                    (d.as_std().as_secs() / 86_400) as i64,
                ))
                .unwrap_or(NaiveDate::MIN),
        }
    }

    /// "12 mois", "180 jours", in French.
    pub fn label(&self) -> String {
        match self {
            ExerciseEvery::Months(n) => format!("{n} mois"),
            ExerciseEvery::Duration(d) => crate::model::labels::duration(d.as_std()),
        }
    }
}

/// What to say about a plan's exercises on `today`, given the day of its
/// last exercise: `(late, sentence)`, `late` when none happened in the
/// period. `None` when the plan sets no `exercise_every`. The one rule the
/// dashboard and the review reminder share.
pub fn exercise_status(
    plan_title: &str,
    every: Option<ExerciseEvery>,
    last: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<(bool, String)> {
    let every = every?;
    let start = every.start(today);
    let late = last.is_none_or(|d| d < start);
    let period = every.label();
    Some(match (last, late) {
        (Some(d), false) => (
            false,
            format!(
                "Dernier exercice du plan « {plan_title} » : le {} (un exercice tous les {period}).",
                d.format("%d/%m/%Y")
            ),
        ),
        (Some(d), true) => (
            true,
            format!(
                "Aucun exercice du plan « {plan_title} » depuis le {} : le plan demande un exercice tous les {period}. Prévoyez-en un.",
                d.format("%d/%m/%Y")
            ),
        ),
        (None, _) => (
            true,
            format!(
                "Aucun exercice du plan « {plan_title} » n'a encore été fait : le plan demande un exercice tous les {period}. Prévoyez-en un."
            ),
        ),
    })
}

/// "unknown level `roug`: did you mean `rouge`? (levels of scenario
/// `canicule`: jaune, orange, rouge)": the message for a level a scenario
/// does not have, wherever the plan names one.
pub fn unknown_level(scenario: &str, levels: &[Located<String>], level: &str) -> String {
    let known: Vec<&str> = levels.iter().map(|l| l.value.as_str()).collect();
    if known.is_empty() {
        format!("unknown level `{level}`: scenario `{scenario}` has no levels")
    } else {
        format!(
            "unknown level `{level}`{} (levels of scenario `{scenario}`: {})",
            super::diag::did_you_mean(level, known.iter().copied()),
            known.join(", ")
        )
    }
}

/// Reads `instructions` or `public_advice` of a scenario: every level
/// named must be one of its `levels`.
pub(crate) fn read_per_level(
    ctx: &Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    scenario: &str,
    levels: &[Located<String>],
) -> PerLevel {
    let texts = t.texts(key).unwrap_or_default();
    for (l, _) in &texts {
        if let Some(l) = l
            && !levels.iter().any(|x| x.value == l.value)
        {
            ctx.error(&l.loc, unknown_level(scenario, levels, &l.value));
        }
    }
    PerLevel { texts }
}

/// Reads one `[[scenario.action]]` of a scenario with these `levels`.
pub(crate) fn read_action(
    ctx: &Ctx<'_>,
    t: Table<'_, '_>,
    scenario: &str,
    levels: &[Located<String>],
) -> Option<Action> {
    let title = t.req_str("title");
    if let Some(title) = &title
        && title.value.trim().is_empty()
    {
        ctx.error(&title.loc, format!("`title` of {} is empty", t.name()));
    }
    let action_levels = t.str_list("levels").unwrap_or_default();
    for l in &action_levels {
        if !levels.iter().any(|x| x.value == l.value) {
            ctx.error(&l.loc, unknown_level(scenario, levels, &l.value));
        }
    }
    let who = t.str("who").map(|w| w.value);
    let due = t
        .str("due")
        .map(|s| DurationValue::parse(&s.value).map_err(|m| ctx.error(&s.loc, m)));
    let detail = t.str("detail").map(|d| d.value);
    let loc = t.loc();
    t.finish();
    let due = match due {
        Some(Err(())) => return None,
        Some(Ok(d)) => Some(d),
        None => None,
    };
    Some(Action {
        title: title.filter(|t| !t.value.trim().is_empty())?.value,
        levels: action_levels,
        who,
        due,
        detail,
        loc,
    })
}

/// Reads `[plan] exercise_every`.
pub(crate) fn read_exercise_every(ctx: &Ctx<'_>, t: &Table<'_, '_>) -> Option<ExerciseEvery> {
    let s = t.str("exercise_every")?;
    ExerciseEvery::parse(&s.value)
        .map_err(|m| ctx.error(&s.loc, m))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn exercise_periods_are_read_in_months_or_as_durations() {
        assert_eq!(ExerciseEvery::parse("12mo"), Ok(ExerciseEvery::Months(12)));
        assert_eq!(ExerciseEvery::parse("6 mois"), Ok(ExerciseEvery::Months(6)));
        assert!(matches!(
            ExerciseEvery::parse("180d"),
            Ok(ExerciseEvery::Duration(_))
        ));
        assert!(ExerciseEvery::parse("0mo").is_err());
        assert!(ExerciseEvery::parse("tous les ans").is_err());
        assert_eq!(
            ExerciseEvery::Months(12).start(day(2026, 6, 1)),
            day(2025, 6, 1)
        );
    }

    #[test]
    fn an_exercise_older_than_the_period_is_late() {
        let every = Some(ExerciseEvery::Months(12));
        let today = day(2026, 6, 1);
        let (late, text) = exercise_status("PGC", every, Some(day(2025, 9, 1)), today).unwrap();
        assert!(!late, "{text}");
        assert!(text.contains("le 01/09/2025"), "{text}");
        let (late, text) = exercise_status("PGC", every, Some(day(2025, 5, 31)), today).unwrap();
        assert!(late, "{text}");
        assert!(exercise_status("PGC", every, None, today).unwrap().0);
        assert!(exercise_status("PGC", None, None, today).is_none());
    }
}
