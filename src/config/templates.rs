//! Message templates (minijinja): reading, compiling and checking them
//! against the variables they will be given.
//!
//! A template is checked twice at load: its variables must all be known
//! (`event.titre` is a typo, not an empty string), and it must render
//! against a sample context with strict undefined behaviour. Problems point
//! at the line and column inside the template, translated to those of the
//! file; a template written with escapes (`"…\n…"`) cannot be mapped that
//! way, so its problems point at the start of its string.
//!
//! Rendering is bounded by minijinja's fuel ([`TEMPLATE_FUEL`]): a template
//! that loops 10¹⁰ times fails the check with "engine ran out of fuel"
//! instead of hanging it.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::diag::{Loc, Located};
use super::reader::{Ctx, Table};
use crate::model::parse_slug;

/// One part of a template (subject, text or html) with where it starts.
#[derive(Clone, Debug)]
pub struct TemplateText {
    pub source: String,
    /// Where the template's first character is in the file (for a `"""`
    /// string that begins with a line break, the start of the next line).
    pub start: Loc,
    /// The template is written as is in the file (no escape sequence such as
    /// `\n`), so a line and column inside it are a line and column of the
    /// file. When false, problems point at the start of the string.
    pub verbatim: bool,
}

impl TemplateText {
    /// The file location of a 1-based line and column of the template.
    pub fn loc_at(&self, line: usize, col: usize) -> Loc {
        let mut loc = self.start.clone();
        if !self.verbatim || line == 0 || col == 0 {
            return loc;
        }
        if line == 1 {
            loc.col += col - 1;
        } else {
            loc.line += line - 1;
            loc.col = col;
        }
        loc
    }

    /// The 1-based line and column of a byte offset of the template.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, before[line_start..].chars().count() + 1)
    }
}

#[derive(Clone, Debug)]
pub struct TemplateDef {
    pub name: Located<String>,
    pub subject: TemplateText,
    pub text: TemplateText,
    pub html: Option<TemplateText>,
    /// The text of an SMS (SPEC §14); `text` when absent.
    pub sms: Option<TemplateText>,
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
                "instructions",
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
                "instructions": "Repérez vos patients fragiles.",
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
/// Instructions a template may run per render.
pub const TEMPLATE_FUEL: u64 = 200_000;

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A message template has no business looping for long: a runaway loop
    // (`range(100000)` nested) fails instead of hanging `check` or a send.
    env.set_fuel(Some(TEMPLATE_FUEL));
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
        let sms = text_of(ctx, &t, "sms", false);
        t.finish();
        if let (Some(subject), Some(text)) = (subject, text) {
            out.insert(
                name.value.clone(),
                TemplateDef {
                    name,
                    subject,
                    text,
                    html,
                    sms,
                },
            );
        }
    }
    out
}

fn text_of(ctx: &Ctx<'_>, t: &Table<'_, '_>, key: &str, required: bool) -> Option<TemplateText> {
    let s = if required { t.req_str(key) } else { t.str(key) }?;
    let text = &ctx.src.text;
    let span = t.value_span(key).unwrap_or(0..0);
    let (start, end) = (span.start.min(text.len()), span.end.min(text.len()));
    let raw = text.get(start..end).unwrap_or("");
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    let mut body_start = start + quote.min(raw.len());
    // A line break right after the opening `"""` is not part of the string.
    if quote == 3 {
        if text[body_start..].starts_with('\n') {
            body_start += 1;
        } else if text[body_start..].starts_with("\r\n") {
            body_start += 2;
        }
    }
    let body_end = end.saturating_sub(quote).max(body_start);
    let body = text.get(body_start..body_end).unwrap_or("");
    let verbatim = body == s.value || body.replace("\r\n", "\n") == s.value;
    Some(TemplateText {
        source: s.value,
        start: if verbatim {
            ctx.src.loc(body_start)
        } else {
            s.loc
        },
        verbatim,
    })
}

/// Where a variable path is first used in a template: the first occurrence
/// of it as a whole name (`event.titre`, not `event.titres`), else of its
/// first segment. 1-based line and column.
fn find_variable(text: &TemplateText, var: &str) -> Option<(usize, usize)> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    let find = |needle: &str| {
        text.source.match_indices(needle).find_map(|(i, _)| {
            let before = text.source[..i].chars().next_back();
            let after = text.source[i + needle.len()..].chars().next();
            let whole =
                !before.is_some_and(|c| is_name(c) || c == '.') && !after.is_some_and(is_name);
            whole.then_some(i)
        })
    };
    let head = var.split('.').next().unwrap_or(var);
    find(var).or_else(|| find(head)).map(|i| text.line_col(i))
}

/// Checks a template: compiles each part, refuses unknown variables, renders
/// against the sample context. Every problem goes to `report`.
pub fn check(def: &TemplateDef, kind: TemplateKind, report: &mut dyn FnMut(&Loc, String)) {
    let mut env = environment();
    // Keeps the byte range of errors, to point at the right column.
    env.set_debug(true);
    let ctx = kind.sample_context();
    let known = kind.variables();
    let parts = [
        ("subject", Some(&def.subject)),
        ("text", Some(&def.text)),
        ("html", def.html.as_ref()),
        ("sms", def.sms.as_ref()),
    ];
    for (part, text) in parts {
        let Some(text) = text else { continue };
        // Where a minijinja error points: its byte range when it has one,
        // else its line.
        let at_error = |e: &minijinja::Error| -> Loc {
            match (e.range(), e.line()) {
                (Some(r), _) => {
                    let (line, col) = text.line_col(r.start);
                    text.loc_at(line, col)
                }
                (None, Some(line)) => text.loc_at(line, 1),
                (None, None) => text.loc_at(1, 1),
            }
        };
        let file_name = if part == "html" { "t.html" } else { "t.txt" };
        let tmpl = match env.template_from_named_str(file_name, &text.source) {
            Ok(t) => t,
            Err(e) => {
                report(
                    &at_error(&e),
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
            let (line, col) = find_variable(text, var).unwrap_or((1, 1));
            report(
                &text.loc_at(line, col),
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
                &at_error(&e),
                format!(
                    "template `{}` ({part}) fails to render: {}",
                    def.name.value,
                    describe(&e)
                ),
            );
        }
        if part == "subject" && text.source.trim().contains('\n') {
            report(
                &text.loc_at(1, 1),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn def(text: &str) -> TemplateDef {
        let loc = Loc::file_start(std::path::Path::new("plan.toml"));
        let part = |s: &str| TemplateText {
            source: s.to_string(),
            start: loc.clone(),
            verbatim: true,
        };
        TemplateDef {
            name: Located::new("t".into(), loc.clone()),
            subject: part("Sujet"),
            text: part(text),
            html: None,
            sms: None,
        }
    }

    #[test]
    fn a_runaway_loop_fails_the_check_instead_of_hanging_it() {
        let t = def(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        );
        let started = std::time::Instant::now();
        let mut problems = Vec::new();
        check(&t, TemplateKind::Event, &mut |_, m| problems.push(m));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("fuel"), "{}", problems[0]);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn an_ordinary_template_is_far_below_the_fuel_limit() {
        let t =
            def("{% for i in range(500) %}{{ recipient.name }} {{ event.title }}\n{% endfor %}");
        let mut problems = Vec::new();
        check(&t, TemplateKind::Event, &mut |_, m| problems.push(m));
        assert!(problems.is_empty(), "{problems:?}");
    }
}
