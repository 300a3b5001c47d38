//! Routine reminders (SPEC §6), `reminders.toml`: cron schedules, audiences,
//! and templates that may be defined in the same file.

use std::collections::BTreeMap;
use std::path::Path;

use super::diag::{Diagnostics, Loc, Located};
use super::directory::merge;
use super::reader::{Ctx, Table};
use super::selector::Selector;
use super::templates::{TemplateDef, read_templates};
use crate::model::{CronSchedule, parse_slug};

#[derive(Clone, Debug, Default)]
pub struct Reminders {
    pub reminders: Vec<Reminder>,
    pub templates: BTreeMap<String, TemplateDef>,
}

#[derive(Clone, Debug)]
pub struct Reminder {
    pub id: Located<String>,
    pub title: String,
    pub schedule: Located<CronSchedule>,
    pub audience: Selector,
    pub channels: Vec<Located<String>>,
    /// Without a template the subject is the title (SPEC §6).
    pub template: Option<Located<String>>,
}

/// Loads `reminders.toml`. A file with errors still gives the reminders
/// and templates that could be read (the errors in `diags` refuse the set);
/// `None` when the file cannot be read or parsed at all.
pub fn load(path: &Path, diags: &mut Diagnostics) -> Option<Reminders> {
    let src = super::source::read_source(path, "reminders", diags)?;
    let ctx = Ctx::new(&src);
    let out = ctx.parse().map(|doc| read(&ctx, &doc));
    merge(diags, ctx.into_diagnostics());
    out
}

fn read(ctx: &Ctx<'_>, doc: &toml::Spanned<toml::de::DeTable<'_>>) -> Reminders {
    let root = Table::root(ctx, doc);
    let templates = read_templates(ctx, &root);
    let mut reminders = Vec::new();
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    for t in root.tables("reminder") {
        let id = t.req_str("id");
        if let Some(id) = &id {
            if let Err(e) = parse_slug(id, "reminder id") {
                ctx.error(&id.loc, e);
            }
            if let Some(first) = seen.insert(id.value.clone(), id.loc.clone()) {
                ctx.error(
                    &id.loc,
                    format!("duplicate reminder id `{}` (first at {first})", id.value),
                );
            }
        }
        let title = t.req_str("title");
        let schedule = t.req_str("schedule").and_then(|s| {
            CronSchedule::parse(&s.value)
                .map_err(|e| ctx.error(&s.loc, e))
                .ok()
                .map(|c| Located::new(c, s.loc.clone()))
        });
        let audience = if t.has("audience") {
            Selector::read_key(&t, "audience")
        } else {
            ctx.error(
                &t.loc(),
                format!("missing required key `audience` in {}", t.name()),
            );
            None
        };
        let channels = t.req_str_list("channels");
        let template = t.str("template");
        t.finish();
        if let (Some(id), Some(title), Some(schedule), Some(audience), Some(channels)) =
            (id, title, schedule, audience, channels)
        {
            reminders.push(Reminder {
                id,
                title: title.value,
                schedule,
                audience,
                channels,
                template,
            });
        }
    }
    root.finish();
    Reminders {
        reminders,
        templates,
    }
}
