//! Message templates (minijinja): reading, compiling and checking them
//! against the variables they will be given.
//!
//! A template is checked twice at load: its variables must all be known
//! (`event.titre` is a typo, not an empty string), and it must render
//! against a sample context with strict undefined behaviour. Problems point
//! at the line inside the template, translated to the line of the file.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::diag::{Loc, Located};
use super::reader::{Ctx, Table};
use crate::model::parse_slug;

/// One part of a template (subject, text or html) with where it starts.
#[derive(Clone, Debug)]
pub struct TemplateText {
    pub source: String,
    /// The file line holding the template's first line.
    pub first_line: Loc,
}

#[derive(Clone, Debug)]
pub struct TemplateDef {
    pub name: Located<String>,
    pub subject: TemplateText,
    pub text: TemplateText,
    pub html: Option<TemplateText>,
}

/// What a template is rendered for, which decides the variables it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// Event messages (SPEC §7).
    Event,
    /// Routine reminders (SPEC §6).
    Reminder,
}

impl TemplateKind {
    /// Every variable path a template of this kind may use.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            TemplateKind::Event => &[
                "cpts",
                "plan",
                "plan.id",
                "plan.version",
                "plan.title",
                "event",
                "event.id",
                "event.title",
                "event.scenario",
                "event.level",
                "event.note",
                "event.exercise",
                "event.declared_at",
                "recipient",
                "recipient.name",
                "recipient.profession",
                "recipient.commune",
                "response_url",
            ],
            TemplateKind::Reminder => &[
                "cpts",
                "recipient",
                "recipient.name",
                "recipient.profession",
                "recipient.commune",
                "reminder",
                "reminder.id",
                "reminder.title",
                "date",
            ],
        }
    }

    /// A context with every variable set, to render templates once at load.
    pub fn sample_context(self) -> Value {
        let recipient = serde_json::json!({
            "name": "Claire Martin", "profession": "medecin", "commune": "Thann"
        });
        match self {
            TemplateKind::Event => json_value(serde_json::json!({
                "cpts": "CPTS Exemple",
                "plan": {"id": "pgc", "version": "2026.1", "title": "Plan de gestion de crise"},
                "event": {
                    "id": "e-1", "title": "Vague de chaleur", "scenario": "canicule",
                    "level": "orange", "note": "Note", "exercise": false,
                    "declared_at": "2026-07-01T10:00:00+02:00"
                },
                "recipient": recipient.clone(),
                "response_url": "http://127.0.0.1:8640/r/exemple",
            })),
            TemplateKind::Reminder => json_value(serde_json::json!({
                "cpts": "CPTS Exemple",
                "recipient": recipient.clone(),
                "reminder": {"id": "rappel", "title": "Rappel"},
                "date": "lundi 23 novembre 2026",
            })),
        }
    }
}

/// Turns JSON into a template value.
pub fn json_value(j: serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(j))
}

/// A minijinja environment as every template is rendered in: strict
/// undefined variables, no auto-escaping for text, HTML escaping for html.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

/// Reads the `[template.NAME]` tables of a file.
pub fn read_templates(ctx: &Ctx<'_>, root: &Table<'_, '_>) -> BTreeMap<String, TemplateDef> {
    let mut out = BTreeMap::new();
    for (name, t) in root.entries("template") {
        if let Err(e) = parse_slug(&name.value, "template name") {
            ctx.error(&name.loc, e);
        }
        let subject = text_of(ctx, &t, "subject", true);
        let text = text_of(ctx, &t, "text", true);
        let html = text_of(ctx, &t, "html", false);
        t.finish();
        if let (Some(subject), Some(text)) = (subject, text) {
            out.insert(
                name.value.clone(),
                TemplateDef {
                    name,
                    subject,
                    text,
                    html,
                },
            );
        }
    }
    out
}

fn text_of(ctx: &Ctx<'_>, t: &Table<'_, '_>, key: &str, required: bool) -> Option<TemplateText> {
    let s = if required { t.req_str(key) } else { t.str(key) }?;
    let offset = t.value_offset(key).unwrap_or(0);
    let raw = &ctx.src.text[offset.min(ctx.src.text.len())..];
    let multiline = raw.starts_with("\"\"\"") || raw.starts_with("'''");
    let skips_newline = multiline && (raw[3..].starts_with('\n') || raw[3..].starts_with("\r\n"));
    let first_line = ctx.src.loc_lines_below(offset, usize::from(skips_newline));
    Some(TemplateText {
        source: s.value,
        first_line,
    })
}

/// Checks a template: compiles each part, refuses unknown variables, renders
/// against the sample context. Every problem goes to `report`.
pub fn check(def: &TemplateDef, kind: TemplateKind, report: &mut dyn FnMut(&Loc, String)) {
    let env = environment();
    let ctx = kind.sample_context();
    let known = kind.variables();
    let parts = [
        ("subject", Some(&def.subject)),
        ("text", Some(&def.text)),
        ("html", def.html.as_ref()),
    ];
    for (part, text) in parts {
        let Some(text) = text else { continue };
        let at_line = |line: Option<usize>| -> Loc {
            let mut loc = text.first_line.clone();
            if let Some(l) = line.filter(|&l| l > 1) {
                loc.line += l - 1;
                loc.col = 1;
            }
            loc
        };
        let file_name = if part == "html" { "t.html" } else { "t.txt" };
        let tmpl = match env.template_from_named_str(file_name, &text.source) {
            Ok(t) => t,
            Err(e) => {
                report(
                    &at_line(e.line()),
                    format!(
                        "template `{}` ({part}) does not compile: {}",
                        def.name.value,
                        describe(&e)
                    ),
                );
                continue;
            }
        };
        let mut unknown: Vec<String> = tmpl
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| !known.contains(&v.as_str()) && env.globals().all(|(g, _)| g != v))
            .collect();
        unknown.sort();
        for var in &unknown {
            let line = text
                .source
                .lines()
                .position(|l| l.contains(var.as_str()))
                .map(|i| i + 1);
            report(
                &at_line(line),
                format!(
                    "template `{}` ({part}) uses unknown variable `{var}` (known: {})",
                    def.name.value,
                    known
                        .iter()
                        .filter(|k| k.contains('.')
                            || !known.iter().any(|o| o.starts_with(&format!("{k}."))))
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if !unknown.is_empty() {
            continue;
        }
        if let Err(e) = tmpl.render(&ctx) {
            report(
                &at_line(e.line()),
                format!(
                    "template `{}` ({part}) fails to render: {}",
                    def.name.value,
                    describe(&e)
                ),
            );
        }
        if part == "subject" && text.source.trim().contains('\n') {
            report(
                &at_line(None),
                format!(
                    "template `{}`: the subject must fit on one line",
                    def.name.value
                ),
            );
        }
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => d.to_string(),
        None => format!("{}", e.kind()),
    }
}
