//! Checks across files: names that must exist (audiences, groups, rosters,
//! templates, channels, levels), plan versions that collide, and the
//! warnings a coordinator should see (nobody reached, missing contacts, no
//! plan in force, review due).

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate};

use super::ConfigSet;
use super::daemon::AddressField;
use super::diag::{Diagnostics, Loc, Located};
use super::directory::{Directory, Professional, unknown_group};
use super::plan::{Plan, Step, in_force, newer_version};
use super::selector::Selector;
use super::templates::{self, TemplateDef, TemplateKind};

/// How long before `review_by` the review is announced (SPEC §6).
pub const REVIEW_NOTICE_DAYS: i64 = 30;

pub fn validate(set: &ConfigSet, today: NaiveDate, diags: &mut Diagnostics) {
    let roster_ids: HashSet<&str> = set.rosters.iter().map(|r| r.id.as_str()).collect();
    let v = Validator {
        set,
        roster_ids,
        today,
    };
    for sel in set.directory.groups.values() {
        v.selector_refs(sel, None, diags);
    }
    v.rosters(diags);
    for plan in &set.plans {
        v.plan(plan, diags);
    }
    v.plan_versions(diags);
    v.reminders(diags);
}

struct Validator<'a> {
    set: &'a ConfigSet,
    roster_ids: HashSet<&'a str>,
    today: NaiveDate,
}

fn nobody_on_call(_: &str) -> Vec<String> {
    Vec::new()
}

impl Validator<'_> {
    fn dir(&self) -> &Directory {
        &self.set.directory
    }

    /// Professions a selector names must be known, groups and rosters must
    /// exist; `plan_audiences` are
    /// also accepted as group names inside a plan.
    fn selector_refs(&self, sel: &Selector, plan: Option<&Plan>, diags: &mut Diagnostics) {
        self.dir().check_professions(sel, diags);
        for g in &sel.groups {
            let in_plan = plan.is_some_and(|p| p.audiences.contains_key(&g.value));
            if !in_plan && !self.dir().groups.contains_key(&g.value) {
                diags.error(&g.loc, unknown_group(&g.value, self.dir()));
            }
        }
        for r in &sel.on_call {
            if !self.roster_ids.contains(r.as_str()) {
                diags.error(&r.loc, self.unknown_roster(&r.value));
            }
        }
    }

    fn unknown_roster(&self, id: &str) -> String {
        let mut known: Vec<&str> = self.roster_ids.iter().copied().collect();
        known.sort();
        let hint = super::diag::did_you_mean(id, known.iter().copied());
        format!(
            "unknown roster `{id}`{hint} (rosters: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    }

    fn channel_exists(&self, c: &Located<String>, diags: &mut Diagnostics) -> bool {
        let daemon = &self.set.daemon;
        if daemon.email_channel(&c.value).is_some()
            || daemon.webhooks.contains_key(&c.value)
            || daemon.sms.contains_key(&c.value)
        {
            return true;
        }
        let mut known: Vec<String> = daemon
            .all_email_channels()
            .map(|e| e.name.clone())
            .collect();
        known.extend(daemon.webhooks.keys().cloned());
        known.extend(daemon.sms.keys().cloned());
        diags.error(
            &c.loc,
            format!(
                "unknown channel `{}` (channels: {}; a webhook channel is a [webhook.NAME] of the daemon configuration)",
                c.value,
                known.join(", ")
            ),
        );
        false
    }

    /// The professionals a plan step reaches, resolving plan audiences then
    /// directory groups. Selectors with `on_call` are skipped: who they reach
    /// depends on the moment.
    fn reach<'d>(
        &'d self,
        plan: &'d Plan,
        names: &[Located<String>],
    ) -> Option<Vec<&'d Professional>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for n in names {
            let sel = plan.audience_selector(n);
            if sel.on_call.is_empty() && !self.uses_on_call(&sel, 0) {
                for p in self.dir().select(&sel, &nobody_on_call) {
                    if seen.insert(p.id.as_str()) {
                        out.push(p);
                    }
                }
            } else {
                return None;
            }
        }
        Some(out)
    }

    fn uses_on_call(&self, sel: &Selector, depth: usize) -> bool {
        !sel.on_call.is_empty()
            || (depth < 16
                && sel.groups.iter().any(|g| {
                    self.dir()
                        .groups
                        .get(&g.value)
                        .is_some_and(|s| self.uses_on_call(s, depth + 1))
                }))
    }

    fn plan(&self, plan: &Plan, diags: &mut Diagnostics) {
        for (_, sel) in plan.audiences.values() {
            self.selector_refs(sel, None, diags);
        }
        if let Some(owners) = &plan.owners {
            self.selector_refs(owners, None, diags);
        }
        for t in plan.templates.values() {
            check_template(t, TemplateKind::Event, diags);
        }
        let current = *plan.valid_until >= self.today;
        for s in &plan.scenarios {
            let steps = s
                .broadcasts
                .iter()
                .map(|b| (&b.step, "broadcast"))
                .chain(s.escalation.iter().map(|t| (&t.step, "escalation tier")));
            for b in &s.broadcasts {
                for l in &b.levels {
                    if !s.levels.iter().any(|sl| sl.value == l.value) {
                        diags.error(
                            &l.loc,
                            super::conduct::unknown_level(&s.id.value, &s.levels, &l.value),
                        );
                    }
                }
            }
            for (step, what) in steps {
                self.step(plan, step, what, current, diags);
            }
            self.sms_lengths(plan, s, diags);
        }
    }

    /// Warns once per (template, SMS channel) when a sample SMS is longer
    /// than the channel's `max_segments` (SPEC §14).
    fn sms_lengths(&self, plan: &Plan, s: &super::Scenario, diags: &mut Diagnostics) {
        let d = &self.set.daemon;
        let steps = s.broadcasts.iter().map(|b| &b.step);
        let mut seen = HashSet::new();
        for step in steps.chain(s.escalation.iter().map(|t| &t.step)) {
            let Some(def) = step
                .template
                .as_ref()
                .and_then(|t| plan.templates.get(&t.value))
            else {
                continue;
            };
            for c in step.channels.iter().filter_map(|c| d.sms.get(&c.value)) {
                if !seen.insert((&def.name.value, &c.name)) {
                    continue;
                }
                let w = super::daemon::check_sms_length(c, def, &s.responses, &d.public_url);
                if let Some((loc, message)) = w {
                    diags.warning(&loc, message);
                }
            }
        }
    }

    fn step(&self, plan: &Plan, step: &Step, what: &str, current: bool, diags: &mut Diagnostics) {
        let mut names_ok = true;
        for a in &step.audience {
            if !plan.audiences.contains_key(&a.value) && !self.dir().groups.contains_key(&a.value) {
                names_ok = false;
                let mut known: Vec<&str> = plan.audiences.keys().map(String::as_str).collect();
                known.extend(self.dir().groups.keys().map(String::as_str));
                diags.error(
                    &a.loc,
                    format!(
                        "unknown audience `{}`{} (plan audiences and directory groups: {})",
                        a.value,
                        super::diag::did_you_mean(&a.value, known.iter().copied()),
                        known.join(", ")
                    ),
                );
            }
        }
        // Every unknown channel is reported, not only the first.
        let unknown_channels = step
            .channels
            .iter()
            .filter(|c| !self.channel_exists(c, diags))
            .count();
        let channels_ok = unknown_channels == 0;
        if let Some(t) = &step.template
            && !plan.templates.contains_key(&t.value)
        {
            let known: Vec<&str> = plan.templates.keys().map(String::as_str).collect();
            diags.error(
                &t.loc,
                format!(
                    "unknown template `{}` (templates of this plan: {})",
                    t.value,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        if !(names_ok && channels_ok && current) {
            return;
        }
        let Some(reached) = self.reach(plan, &step.audience) else {
            return;
        };
        if reached.is_empty() {
            diags.warning(
                &step.loc,
                format!(
                    "this {what} reaches nobody: audience {} matches no active professional",
                    step.audience
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return;
        }
        self.contacts(&reached, &step.channels, &step.loc, what, diags);
    }

    /// Warns about professionals a step reaches who lack the contact a
    /// channel needs: an e-mail address for `email` (the field an
    /// `[email.NAME]` names for it), a phone number for a
    /// per-recipient webhook (an SMS gateway).
    fn contacts(
        &self,
        reached: &[&Professional],
        channels: &[Located<String>],
        loc: &Loc,
        what: &str,
        diags: &mut Diagnostics,
    ) {
        for c in channels {
            let (lacking, contact): (Vec<&str>, &str) =
                if let Some(e) = self.set.daemon.email_channel(&c.value) {
                    let field = self.set.daemon.contact_of(&c.value);
                    (
                        reached
                            .iter()
                            .filter(|p| p.contact(field).is_err())
                            .map(|p| p.id.as_str())
                            .collect(),
                        match e.address {
                            AddressField::Email => "e-mail address",
                            AddressField::Mssante => "MSSanté mailbox (`mssante`)",
                        },
                    )
                } else if self
                    .set
                    .daemon
                    .webhooks
                    .get(&c.value)
                    .is_some_and(|w| w.per_recipient)
                    || self.set.daemon.sms.contains_key(&c.value)
                {
                    (
                        reached
                            .iter()
                            .filter(|p| p.phone.is_none())
                            .map(|p| p.id.as_str())
                            .collect(),
                        "phone number",
                    )
                } else {
                    continue;
                };
            if !lacking.is_empty() {
                diags.warning(
                    loc,
                    format!(
                        "{} of {} professionals this {what} reaches on `{}` have no {contact}, they will be skipped: {}",
                        lacking.len(),
                        reached.len(),
                        c.value,
                        lacking.join(", ")
                    ),
                );
            }
        }
    }

    /// Versions of the same plan: no duplicate, no two equal versions valid
    /// on the same day; a scenario id in two different plans valid on the
    /// same day is ambiguous; no plan in force today; review due.
    fn plan_versions(&self, diags: &mut Diagnostics) {
        let plans = &self.set.plans;
        for (i, a) in plans.iter().enumerate() {
            for b in &plans[..i] {
                let overlap = a.valid_from.value <= b.valid_until.value
                    && b.valid_from.value <= a.valid_until.value;
                if a.id.value == b.id.value {
                    if a.version.value.0 == b.version.value.0 {
                        diags.error(
                            &a.version.loc,
                            format!(
                                "plan `{}` version {} is also defined in {}",
                                a.id.value,
                                a.version.value,
                                b.path.display()
                            ),
                        );
                    } else if a.version.value == b.version.value && overlap {
                        diags.error(
                            &a.version.loc,
                            format!(
                                "plan `{}`: versions {} and {} ({}) are the same version and their validity overlaps: which one is in force is ambiguous",
                                a.id.value,
                                a.version.value,
                                b.version.value,
                                b.path.display()
                            ),
                        );
                    }
                } else if overlap {
                    for s in &a.scenarios {
                        if b.scenario(&s.id.value).is_some() {
                            diags.error(
                                &s.id.loc,
                                format!(
                                    "scenario `{}` is also in plan `{}` ({}), in force on the same days: declaring it would be ambiguous",
                                    s.id.value,
                                    b.id.value,
                                    b.path.display()
                                ),
                            );
                        }
                    }
                }
            }
        }
        let today = self.today;
        let now_in_force = in_force(plans, today);
        // A plan file that could not be read (a syntax error, an incomplete
        // [plan] table) is left out of `plans`: saying that no plan is in
        // force would then only repeat its errors, misleadingly.
        let a_plan_was_refused = diags
            .errors()
            .any(|d| d.loc.file.starts_with(&self.set.daemon.plans));
        if now_in_force.is_empty() && !a_plan_was_refused {
            diags.warning(
                &Loc::file_start(&self.set.daemon.plans),
                format!("no plan is in force today ({today}): nothing can be declared"),
            );
        }
        for p in now_in_force {
            let notice = p.review_by.value - Duration::days(REVIEW_NOTICE_DAYS);
            let newer = newer_version(plans, p, today).is_some();
            if today >= notice && !newer {
                let days = (p.review_by.value - today).num_days();
                let n_days = |n: i64| {
                    if n == 1 {
                        "1 day".to_string()
                    } else {
                        format!("{n} days")
                    }
                };
                let when = match days {
                    d if d < 0 => format!("was due on {} ({} ago)", p.review_by.value, n_days(-d)),
                    0 => "is due today".to_string(),
                    d => format!("is due by {} (in {})", p.review_by.value, n_days(d)),
                };
                diags.warning(
                    &p.review_by.loc,
                    format!(
                        "plan `{}` {}: the yearly review {when}; no newer version is written yet",
                        p.id.value, p.version.value
                    ),
                );
            }
        }
    }

    fn rosters(&self, diags: &mut Diagnostics) {
        let mut seen: BTreeMap<&str, &Loc> = BTreeMap::new();
        let cal = self.set.daemon.holidays;
        for r in &self.set.rosters {
            if let Some(first) = seen.insert(r.id.as_str(), &r.id.loc) {
                diags.error(
                    &r.id.loc,
                    format!("duplicate roster id `{}` (first at {first})", r.id.value),
                );
            }
            if let Some(sel) = &r.eligible {
                self.selector_refs(sel, None, diags);
            }
            if let Some(c) = &r.check {
                self.selector_refs(&c.notify, None, diags);
            }
            for a in &r.assignments {
                let Some(shift) = r.shift(&a.shift.value) else {
                    continue;
                };
                let date = a.date.value;
                let holiday = cal.holiday(date);
                let occurs =
                    shift.days.contains(&date.weekday()) || (shift.holidays && holiday.is_some());
                if !occurs {
                    diags.error(
                        &a.date.loc,
                        format!(
                            "shift `{}` does not occur on {date} ({}{})",
                            shift.name.value,
                            weekday_name(date),
                            if shift.holidays {
                                ", not a public holiday"
                            } else {
                                ""
                            }
                        ),
                    );
                }
                for w in &a.who {
                    match self.dir().get(&w.value) {
                        None => diags.warning(
                            &w.loc,
                            format!(
                                "`{}` is not in the directory: this shift is not covered by them",
                                w.value
                            ),
                        ),
                        Some(p) if !p.active => diags.warning(
                            &w.loc,
                            format!("`{}` is inactive in the directory", w.value),
                        ),
                        Some(p) if !p.available.contains(a.date.value) => diags.warning(
                            &w.loc,
                            format!(
                                "`{}` is not available on {} ({}): this shift is not covered \
                                 by them",
                                w.value,
                                a.date.value,
                                p.available.describe_fr()
                            ),
                        ),
                        Some(p) => {
                            if let Some(sel) = &r.eligible
                                && !self
                                    .dir()
                                    .select(sel, &nobody_on_call)
                                    .iter()
                                    .any(|e| e.id == p.id)
                            {
                                diags.warning(
                                    &w.loc,
                                    format!(
                                        "`{}` is not eligible for roster `{}`",
                                        w.value, r.id.value
                                    ),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    fn reminders(&self, diags: &mut Diagnostics) {
        let rem = &self.set.reminders;
        for t in rem.templates.values() {
            check_template(t, TemplateKind::Reminder, diags);
        }
        for r in &rem.reminders {
            self.selector_refs(&r.audience, None, diags);
            let unknown_channels = r
                .channels
                .iter()
                .filter(|c| !self.channel_exists(c, diags))
                .count();
            let channels_ok = unknown_channels == 0;
            if let Some(t) = &r.template
                && !rem.templates.contains_key(&t.value)
            {
                let known: Vec<&str> = rem.templates.keys().map(String::as_str).collect();
                diags.error(
                    &t.loc,
                    format!(
                        "unknown template `{}` (templates of this file: {})",
                        t.value,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            if !channels_ok || self.uses_on_call(&r.audience, 0) {
                continue;
            }
            let all_groups_exist = r
                .audience
                .groups
                .iter()
                .all(|g| self.dir().groups.contains_key(&g.value));
            if !all_groups_exist {
                continue;
            }
            let reached = self.dir().select(&r.audience, &nobody_on_call);
            let loc = r.audience.loc.clone().unwrap_or_else(|| r.id.loc.clone());
            if reached.is_empty() {
                diags.warning(&loc, format!("reminder `{}` reaches nobody", r.id.value));
            } else {
                self.contacts(&reached, &r.channels, &loc, "reminder", diags);
            }
        }
    }
}

fn check_template(t: &TemplateDef, kind: TemplateKind, diags: &mut Diagnostics) {
    templates::check(t, kind, &mut |loc, msg| diags.error(loc, msg));
}

fn weekday_name(d: NaiveDate) -> &'static str {
    match d.weekday() {
        chrono::Weekday::Mon => "a Monday",
        chrono::Weekday::Tue => "a Tuesday",
        chrono::Weekday::Wed => "a Wednesday",
        chrono::Weekday::Thu => "a Thursday",
        chrono::Weekday::Fri => "a Friday",
        chrono::Weekday::Sat => "a Saturday",
        chrono::Weekday::Sun => "a Sunday",
    }
}
