//! Crisis plans (SPEC §4): versioned files, several versions side by side.
//!
//! This module reads one plan file into a [`Plan`] and knows which version
//! is in force on a date. Cross-file checks (audiences against the
//! directory, channels against the daemon config) are in [`super::validate`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::conduct::{Action, ExerciseEvery, PerLevel, read_action, read_exercise_every};
use super::diag::{Diagnostics, Loc, Located, SourceText};
use super::directory::merge;
use super::reader::{Ctx, Table};
use super::selector::Selector;
use super::templates::{TemplateDef, read_templates};
use crate::model::{DurationValue, Version, parse_slug};

#[derive(Clone, Debug)]
pub struct Plan {
    pub path: PathBuf,
    /// SHA-256 (hex) of the file, recorded with every event it governs.
    pub sha256: String,
    pub id: Located<String>,
    pub version: Located<Version>,
    pub title: String,
    pub valid_from: Located<NaiveDate>,
    pub valid_until: Located<NaiveDate>,
    pub approved: Option<NaiveDate>,
    /// When the yearly update is due; `valid_until` when not given.
    pub review_by: Located<NaiveDate>,
    /// Receive the review reminder and the "exhausted" alerts.
    pub owners: Option<Selector>,
    pub audiences: BTreeMap<String, (Loc, Selector)>,
    pub templates: BTreeMap<String, TemplateDef>,
    pub scenarios: Vec<Scenario>,
    /// `exercise_every`: how often the plan must be exercised.
    pub exercise_every: Option<ExerciseEvery>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub id: Located<String>,
    pub title: String,
    /// Ordered levels; empty when the scenario has none.
    pub levels: Vec<Located<String>>,
    /// The choices on the response page.
    pub responses: Vec<String>,
    /// The responses that count toward a quorum.
    pub ack: Vec<Located<String>>,
    pub escalation_repeat: u32,
    pub notify_on_resolve: bool,
    pub broadcasts: Vec<Broadcast>,
    pub escalation: Vec<Tier>,
    /// `[[scenario.trigger]]`: the vigilance phenomena that drive it.
    pub triggers: Vec<super::vigilance::Trigger>,
    /// What the professionals alerted should do, per level (Markdown).
    pub instructions: PerLevel,
    /// What the population should do, per level (plain text).
    pub public_advice: PerLevel,
    /// `[[scenario.action]]`: the crisis cell's action cards.
    pub actions: Vec<Action>,
}

/// Where a step's message goes: audiences (plan audiences, else directory
/// groups), channels, and the template (a built-in one when `None`).
#[derive(Clone, Debug)]
pub struct Step {
    pub audience: Vec<Located<String>>,
    pub channels: Vec<Located<String>>,
    pub template: Option<Located<String>>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Broadcast {
    /// The levels that send this broadcast; empty means every level.
    pub levels: Vec<Located<String>>,
    pub step: Step,
}

#[derive(Clone, Debug)]
pub struct Tier {
    pub step: Step,
    /// Acknowledgements needed to stop escalating.
    pub quorum: u32,
    /// Then the next tier is notified.
    pub timeout: DurationValue,
}

impl Plan {
    pub fn is_valid_on(&self, date: NaiveDate) -> bool {
        *self.valid_from <= date && date <= *self.valid_until
    }

    pub fn scenario(&self, id: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.id.value == id)
    }

    /// Who an audience name of a step stands for: the plan's own
    /// `[audience.NAME]`, else the directory group NAME.
    pub fn audience_selector(&self, name: &Located<String>) -> Selector {
        match self.audiences.get(&name.value) {
            Some((_, s)) => s.clone(),
            None => Selector::of_groups(vec![name.clone()], name.loc.clone()),
        }
    }
}

/// The version of each plan id in force on `date`: valid that day, the
/// highest version if several are.
pub fn in_force(plans: &[Plan], date: NaiveDate) -> Vec<&Plan> {
    let mut best: BTreeMap<&str, &Plan> = BTreeMap::new();
    for p in plans.iter().filter(|p| p.is_valid_on(date)) {
        match best.get(p.id.as_str()) {
            Some(b) if b.version.value >= p.version.value => {}
            _ => {
                best.insert(p.id.as_str(), p);
            }
        }
    }
    best.into_values().collect()
}

/// A newer version of `plan` that exists on `today`: a version of the same
/// plan id, higher than `plan`'s, whose validity has not ended
/// (`valid_until` is today or later), whether it is already in force or
/// only written for later. The lowest such version (the next one) when
/// there are several.
///
/// This is the one rule of "a newer version exists" (SPEC §4 and §6 leave
/// it open; SPEC §6 says the review reminder runs "weekly until a newer
/// version is in force"): the yearly review is done once the next version
/// is written, even if it only takes effect later, so `vigie check`'s
/// warning, `plan list`, the review reminder and the bureau's warnings all
/// stop then. A newer version that has already expired does not count: it
/// reviews nothing that is still ahead. When the newer version is in force
/// the old one is not, so the reminder stops for that reason as well.
pub fn newer_version<'a>(plans: &'a [Plan], plan: &Plan, today: NaiveDate) -> Option<&'a Plan> {
    plans
        .iter()
        .filter(|o| {
            o.id.value == plan.id.value
                && o.version.value > plan.version.value
                && o.valid_until.value >= today
        })
        .min_by(|a, b| a.version.value.cmp(&b.version.value))
}

/// Loads every `*.toml` of the plans directory, in name order. Only the
/// plans without error are returned.
pub fn load_dir(dir: &Path, diags: &mut Diagnostics) -> Vec<Plan> {
    read_dir(dir, diags)
        .into_iter()
        .filter_map(|(plan, ok)| ok.then_some(plan))
        .collect()
}

/// Like [`load_dir`], but also returns the plans that have errors, as far
/// as they could be read (when their `[plan]` table is complete): the
/// cross-file checks then see them too, so `vigie check` lists every
/// problem of a plan, not only those found in the file itself. The errors
/// are in `diags`; a set with errors is refused whole.
pub fn load_dir_as_read(dir: &Path, diags: &mut Diagnostics) -> Vec<Plan> {
    read_dir(dir, diags)
        .into_iter()
        .map(|(plan, _)| plan)
        .collect()
}

/// Every plan file of the directory as read, and whether it had no error.
fn read_dir(dir: &Path, diags: &mut Diagnostics) -> Vec<(Plan, bool)> {
    super::toml_files(dir, "plans", diags)
        .iter()
        .filter_map(|f| read_file(f, diags))
        .collect()
}

/// Loads one plan file. Returns `None` if it has errors.
pub fn load_file(path: &Path, diags: &mut Diagnostics) -> Option<Plan> {
    read_file(path, diags).and_then(|(plan, ok)| ok.then_some(plan))
}

/// One plan file as read, and whether it had no error.
fn read_file(path: &Path, diags: &mut Diagnostics) -> Option<(Plan, bool)> {
    let src = super::source::read_source(path, "plan", diags)?;
    // The text is the file's bytes (it is valid UTF-8): same digest.
    let sha256 = hex::encode(Sha256::digest(src.text.as_bytes()));
    parse_as_read(&src, sha256, diags)
}

/// Parses a plan from its text (also the entry point of the fuzz tests).
/// Returns `None` if it has errors.
pub fn parse(src: &SourceText, sha256: String, diags: &mut Diagnostics) -> Option<Plan> {
    parse_as_read(src, sha256, diags).and_then(|(plan, ok)| ok.then_some(plan))
}

/// Parses a plan from its text and returns it as far as it could be read
/// (scenarios, steps and tiers with errors left out), with whether it had
/// no error at all.
pub fn parse_as_read(
    src: &SourceText,
    sha256: String,
    diags: &mut Diagnostics,
) -> Option<(Plan, bool)> {
    let ctx = Ctx::new(src);
    let plan = ctx.parse().and_then(|doc| read(&ctx, &doc, src, sha256));
    let d = ctx.into_diagnostics();
    let ok = !d.has_errors();
    merge(diags, d);
    plan.map(|p| (p, ok))
}

fn read(
    ctx: &Ctx<'_>,
    doc: &toml::Spanned<toml::de::DeTable<'_>>,
    src: &SourceText,
    sha256: String,
) -> Option<Plan> {
    let root = Table::root(ctx, doc);
    let p = root.req_table("plan");
    let mut audiences = BTreeMap::new();
    for (name, t) in root.entries("audience") {
        if let Err(e) = parse_slug(&name.value, "audience name") {
            ctx.error(&name.loc, e);
        }
        audiences.insert(name.value.clone(), (name.loc.clone(), Selector::read(t)));
    }
    let templates = read_templates(ctx, &root);
    let scenarios: Vec<Scenario> = root
        .tables("scenario")
        .into_iter()
        .filter_map(|t| read_scenario(ctx, t))
        .collect();
    let has_scenarios = root.has("scenario");
    root.finish();

    let p = p?;
    let id = p.req_str("id");
    if let Some(id) = &id
        && let Err(e) = parse_slug(id, "plan id")
    {
        ctx.error(&id.loc, e);
    }
    let version = p.req_str("version").and_then(|v| {
        if v.trim().is_empty() || v.contains(char::is_whitespace) {
            ctx.error(&v.loc, format!("invalid version \"{}\"", v.value));
            None
        } else {
            Some(Located::new(Version(v.value.clone()), v.loc))
        }
    });
    let title = p.req_str("title");
    let valid_from = p.req_date("valid_from");
    let valid_until = p.req_date("valid_until");
    let approved = p.date("approved");
    let review_by = p.date("review_by");
    let owners = Selector::read_key(&p, "owners");
    let exercise_every = read_exercise_every(ctx, &p);
    let plan_loc = p.loc();
    p.finish();

    if let (Some(f), Some(u)) = (&valid_from, &valid_until)
        && f.value > u.value
    {
        ctx.error(
            &u.loc,
            format!("valid_until {} is before valid_from {}", u.value, f.value),
        );
    }
    if !has_scenarios {
        ctx.warning(&plan_loc, "the plan has no scenario ([[scenario]])");
    }
    let mut seen: BTreeMap<&str, &Loc> = BTreeMap::new();
    for s in &scenarios {
        if let Some(first) = seen.insert(s.id.as_str(), &s.id.loc) {
            ctx.error(
                &s.id.loc,
                format!("duplicate scenario id `{}` (first at {first})", s.id.value),
            );
        }
    }
    let valid_until = valid_until?;
    Some(Plan {
        path: src.path.to_path_buf(),
        sha256,
        id: id?,
        version: version?,
        title: title?.value,
        valid_from: valid_from?,
        review_by: review_by.unwrap_or_else(|| valid_until.clone()),
        valid_until,
        approved: approved.map(|a| a.value),
        owners,
        audiences,
        templates,
        scenarios,
        exercise_every,
    })
}

fn read_step(ctx: &Ctx<'_>, t: &Table<'_, '_>) -> Option<Step> {
    let audience = t.req_str_list("audience");
    let channels = t.req_str_list("channels");
    let template = t.str("template");
    if let Some(a) = &audience
        && a.is_empty()
    {
        ctx.error(&t.loc(), format!("`audience` of {} is empty", t.name()));
    }
    if let Some(c) = &channels
        && c.is_empty()
    {
        ctx.error(&t.loc(), format!("`channels` of {} is empty", t.name()));
    }
    Some(Step {
        audience: audience?,
        channels: channels?,
        template,
        loc: t.loc(),
    })
}

fn read_scenario(ctx: &Ctx<'_>, t: Table<'_, '_>) -> Option<Scenario> {
    let id = t.req_str("id");
    if let Some(id) = &id
        && let Err(e) = parse_slug(id, "scenario id")
    {
        ctx.error(&id.loc, e);
    }
    let title = t.req_str("title");
    let levels = t.str_list("levels").unwrap_or_default();
    for (i, l) in levels.iter().enumerate() {
        if let Err(e) = parse_slug(l, "level") {
            ctx.error(&l.loc, e);
        }
        if levels[..i].iter().any(|o| o.value == l.value) {
            ctx.error(&l.loc, format!("level `{}` is listed twice", l.value));
        }
    }
    let responses_loc = t.value_loc("responses");
    let responses: Vec<Located<String>> = t.str_list("responses").unwrap_or_default();
    for r in &responses {
        if let Err(e) = parse_slug(r, "response") {
            ctx.error(&r.loc, e);
        }
    }
    if let (Some(loc), true) = (&responses_loc, responses.is_empty()) {
        ctx.error(loc, "`responses` is empty: give at least one choice");
    }
    let responses: Vec<String> = if responses.is_empty() {
        vec!["bien_recu".to_string()]
    } else {
        responses.into_iter().map(|r| r.value).collect()
    };
    let ack = t.str_list("ack");
    let ack = match ack {
        Some(a) => {
            for r in &a {
                if !responses.contains(&r.value) {
                    ctx.error(
                        &r.loc,
                        format!(
                            "`ack` names `{}`, which is not one of the responses ({})",
                            r.value,
                            responses.join(", ")
                        ),
                    );
                }
            }
            a
        }
        None => responses
            .iter()
            .map(|r| Located::new(r.clone(), t.loc()))
            .collect(),
    };
    let escalation_repeat = match t.int("escalation_repeat") {
        None => Some(0),
        Some(n) if (0..=100).contains(&n.value) => Some(n.value as u32),
        Some(n) => {
            ctx.error(&n.loc, "`escalation_repeat` must be between 0 and 100");
            None
        }
    };
    let notify_on_resolve = t.bool("notify_on_resolve").map(|b| b.value).unwrap_or(true);
    let broadcasts: Vec<Broadcast> = t
        .tables("broadcast")
        .into_iter()
        .filter_map(|b| {
            let levels = b.str_list("levels").unwrap_or_default();
            let step = read_step(ctx, &b);
            b.finish();
            Some(Broadcast {
                levels,
                step: step?,
            })
        })
        .collect();
    let escalation: Vec<Tier> = t
        .tables("escalation")
        .into_iter()
        .filter_map(|e| {
            let step = read_step(ctx, &e);
            let quorum = match e.int("quorum") {
                None => Some(1),
                Some(n) if (1..=10_000).contains(&n.value) => Some(n.value as u32),
                Some(n) => {
                    ctx.error(&n.loc, "`quorum` must be at least 1");
                    None
                }
            };
            let timeout = if e.has("timeout") {
                e.str("timeout").and_then(|s| {
                    DurationValue::parse(&s.value)
                        .map_err(|m| ctx.error(&s.loc, m))
                        .ok()
                })
            } else {
                ctx.error(
                    &e.loc(),
                    format!(
                        "missing required key `timeout` in {} (how long to wait for the quorum)",
                        e.name()
                    ),
                );
                None
            };
            e.finish();
            Some(Tier {
                step: step?,
                quorum: quorum?,
                timeout: timeout?,
            })
        })
        .collect();
    let triggers: Vec<super::vigilance::Trigger> = t
        .tables("trigger")
        .into_iter()
        .filter_map(|tr| super::vigilance::read_trigger(ctx, tr, &levels))
        .collect();
    let sid = id.as_ref().map(|i| i.value.as_str()).unwrap_or("?");
    let instructions = super::conduct::read_per_level(ctx, &t, "instructions", sid, &levels);
    let public_advice = super::conduct::read_per_level(ctx, &t, "public_advice", sid, &levels);
    let actions: Vec<Action> = t
        .tables("action")
        .into_iter()
        .filter_map(|a| read_action(ctx, a, sid, &levels))
        .collect();
    let scenario_loc = t.loc();
    t.finish();
    if broadcasts.is_empty() && escalation.is_empty() {
        ctx.warning(
            &scenario_loc,
            "this scenario has neither broadcast nor escalation: declaring it tells nobody",
        );
    }
    Some(Scenario {
        id: id?,
        title: title?.value,
        levels,
        responses,
        ack,
        escalation_repeat: escalation_repeat?,
        notify_on_resolve,
        broadcasts,
        escalation,
        triggers,
        instructions,
        public_advice,
        actions,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use chrono::NaiveDate;

    use super::{Plan, newer_version};
    use crate::config::diag::{Loc, Located};
    use crate::model::Version;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at<T>(v: T) -> Located<T> {
        Located::new(v, Loc::file_start(Path::new("plans/p.toml")))
    }

    fn plan(id: &str, version: &str, from: NaiveDate, until: NaiveDate) -> Plan {
        Plan {
            path: PathBuf::from(format!("plans/{id}-{version}.toml")),
            sha256: String::new(),
            id: at(id.to_string()),
            version: at(Version(version.to_string())),
            title: id.to_string(),
            valid_from: at(from),
            valid_until: at(until),
            approved: None,
            review_by: at(until),
            owners: None,
            audiences: BTreeMap::new(),
            templates: BTreeMap::new(),
            scenarios: Vec::new(),
            exercise_every: None,
        }
    }

    fn versions(found: Option<&Plan>) -> Option<&str> {
        found.map(|p| p.version.value.0.as_str())
    }

    #[test]
    fn a_newer_version_exists_from_when_it_is_written_until_its_validity_ends() {
        let plans = vec![
            plan("pcs", "2026.1", day(2026, 1, 1), day(2026, 12, 31)),
            // Written in November for next year: the review is done.
            plan("pcs", "2027.1", day(2027, 1, 1), day(2027, 12, 31)),
            plan("pcs", "2027.2", day(2027, 6, 1), day(2027, 12, 31)),
            // Another plan id is never a newer version.
            plan("other", "2030.1", day(2026, 1, 1), day(2030, 12, 31)),
        ];
        let today = day(2026, 11, 15);
        // The next version, not the latest, and although not yet in force.
        assert_eq!(
            versions(newer_version(&plans, &plans[0], today)),
            Some("2027.1")
        );
        assert_eq!(
            versions(newer_version(&plans, &plans[1], today)),
            Some("2027.2")
        );
        assert_eq!(versions(newer_version(&plans, &plans[2], today)), None);
        assert_eq!(versions(newer_version(&plans, &plans[3], today)), None);
        // Versions compare as numbers, not as text.
        let plans = vec![
            plan("pcs", "2026.9", day(2026, 1, 1), day(2026, 12, 31)),
            plan("pcs", "2026.10", day(2026, 6, 1), day(2026, 12, 31)),
        ];
        assert_eq!(
            versions(newer_version(&plans, &plans[0], today)),
            Some("2026.10")
        );
        assert_eq!(versions(newer_version(&plans, &plans[1], today)), None);
    }

    #[test]
    fn a_newer_version_that_has_expired_does_not_count() {
        // 2.0 was valid in spring only; 1.0 is in force again after it.
        let plans = vec![
            plan("pcs", "1.0", day(2026, 1, 1), day(2026, 12, 31)),
            plan("pcs", "2.0", day(2026, 3, 1), day(2026, 5, 31)),
        ];
        assert_eq!(
            versions(newer_version(&plans, &plans[0], day(2026, 4, 1))),
            Some("2.0")
        );
        assert_eq!(
            versions(newer_version(&plans, &plans[0], day(2026, 5, 31))),
            Some("2.0")
        );
        assert_eq!(
            versions(newer_version(&plans, &plans[0], day(2026, 6, 1))),
            None
        );
    }
}
