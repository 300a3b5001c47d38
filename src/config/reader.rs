//! A strict reader over a parsed TOML document that keeps every position.
//!
//! The typed loaders (`daemon`, `directory`, `plan`, …) read their tables
//! through [`Table`]: each accessor records a clear diagnostic when a key is
//! missing or has the wrong type and returns `None`, so one pass over a file
//! reports *every* problem in it, not only the first. [`Table::finish`]
//! reports the keys nobody asked for (unknown keys).
//!
//! This module never decides what a value means; it only gets values out of
//! TOML with their location.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostics, Loc, Located, SourceText};

/// A file being read: its text and the diagnostics found so far.
pub struct Ctx<'s> {
    pub src: &'s SourceText,
    pub diags: RefCell<Diagnostics>,
}

impl<'s> Ctx<'s> {
    pub fn new(src: &'s SourceText) -> Self {
        Ctx {
            src,
            diags: RefCell::new(Diagnostics::default()),
        }
    }

    pub fn loc(&self, span: &Range<usize>) -> Loc {
        self.src.loc(span.start)
    }

    pub fn error(&self, loc: &Loc, message: impl Into<String>) {
        self.diags.borrow_mut().error(loc, message);
    }

    pub fn warning(&self, loc: &Loc, message: impl Into<String>) {
        self.diags.borrow_mut().warning(loc, message);
    }

    /// Parses the document, or reports the syntax error and returns `None`.
    pub fn parse(&self) -> Option<Spanned<DeTable<'s>>> {
        match DeTable::parse(&self.src.text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                let loc = self.src.loc(offset);
                let msg = unquoted_text(&self.src.text, offset)
                    .unwrap_or_else(|| e.message().trim().trim_end_matches('.').to_string());
                self.error(&loc, format!("TOML syntax error: {msg}"));
                None
            }
        }
    }

    pub fn into_diagnostics(self) -> Diagnostics {
        self.diags.into_inner()
    }
}

/// The message for a value written without quotes (`quorum = trois`,
/// `remind_before = 18h`), which TOML's own message misreads ("invalid
/// boolean, expected `true`"): when the error is in the value of a
/// `key = value` line and that value holds a letter.
fn unquoted_text(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[start..end];
    let eq = line.find('=')?;
    if start + eq >= offset {
        return None;
    }
    let key = line[..eq].trim();
    let value = line[eq + 1..].split(" #").next().unwrap_or("").trim();
    let bare_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let first = value.chars().next()?;
    let text_like = value.chars().any(char::is_alphabetic)
        && !matches!(first, '"' | '\'' | '[' | '{')
        && !(first.is_ascii_digit() && value.get(4..5) == Some("-"));
    (bare_key && text_like).then(|| {
        format!(
            "`{value}` is not a TOML value: write text in quotes (`{key} = \"{value}\"`), \
             a number in digits (`{key} = 2`), yes or no as `true` or `false`"
        )
    })
}

/// One TOML table being read, with the name it is shown under in messages
/// (`[plan]`, `[[scenario]]`, `[[scenario.escalation]] #2`…).
pub struct Table<'c, 's> {
    ctx: &'c Ctx<'s>,
    table: &'c DeTable<'s>,
    span: Range<usize>,
    /// Dotted path of the table (`scenario.escalation`), empty for the root.
    path: String,
    /// How the table is named in messages.
    name: String,
    used: RefCell<HashSet<String>>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'c, 's> Table<'c, 's> {
    pub fn root(ctx: &'c Ctx<'s>, doc: &'c Spanned<DeTable<'s>>) -> Self {
        Table::new(
            ctx,
            doc.get_ref(),
            doc.span(),
            String::new(),
            "the file".to_string(),
        )
    }

    fn new(
        ctx: &'c Ctx<'s>,
        table: &'c DeTable<'s>,
        span: Range<usize>,
        path: String,
        name: String,
    ) -> Self {
        Table {
            ctx,
            table,
            span,
            path,
            name,
            used: RefCell::new(HashSet::new()),
        }
    }

    pub fn ctx(&self) -> &'c Ctx<'s> {
        self.ctx
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the table starts (its header, or its first key).
    pub fn loc(&self) -> Loc {
        self.ctx.loc(&self.span)
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.get(key).is_some()
    }

    fn raw(&self, key: &str) -> Option<&'c Spanned<DeValue<'s>>> {
        self.used.borrow_mut().insert(key.to_string());
        self.table.get(key)
    }

    /// "`quorum` in … must be an integer, like `quorum = 2`; found the
    /// string "3": write it without quotes, `quorum = 3`": the type
    /// expected, an example of it, and what was found.
    fn wrong_type(&self, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        let example = match expected {
            "a string" => format!("`{key} = \"…\"`"),
            "true or false" => format!("`{key} = true`"),
            "an integer" => format!("`{key} = 2`"),
            "a date (YYYY-MM-DD)" => format!("`{key} = 2026-12-01`"),
            "a list of strings" => format!("`{key} = [\"…\", \"…\"]`"),
            "a table or a list of group names" => {
                format!("`{key} = [\"bureau\"]` or `{key} = {{ professions = [\"medecin\"] }}`")
            }
            "a table" => format!("`[{}]`", self.child_path(key)),
            "a table of texts per level" => format!("`{key} = {{ orange = \"…\" }}`"),
            _ => format!("`[[{}]]`", self.child_path(key)),
        };
        let found = match v.get_ref() {
            DeValue::String(s) => {
                let unquoted = match expected {
                    "an integer" => s.trim().parse::<i64>().is_ok(),
                    "true or false" => matches!(s.trim(), "true" | "false"),
                    _ => false,
                };
                if unquoted {
                    format!(
                        "the string \"{s}\": write it without quotes, `{key} = {}`",
                        s.trim()
                    )
                } else {
                    format!("the string \"{s}\"")
                }
            }
            DeValue::Integer(i) => format!("the integer {}", i.as_str()),
            DeValue::Float(f) => format!("the decimal number {}", f.as_str()),
            DeValue::Boolean(b) => format!("the boolean {b}"),
            DeValue::Datetime(dt) => match (expected, dt.date) {
                ("a date (YYYY-MM-DD)", Some(d)) => {
                    format!("the date-time {dt}: keep only the date, `{key} = {d}`")
                }
                _ => format!("the date-time {dt}"),
            },
            other => type_name(other).to_string(),
        };
        self.ctx.error(
            &self.ctx.loc(&v.span()),
            format!(
                "`{key}` in {} must be {expected}, like {example}; found {found}",
                self.name,
            ),
        );
    }

    fn missing(&self, key: &str) {
        self.ctx.error(
            &self.loc(),
            format!("missing required key `{key}` in {}", self.name),
        );
    }

    /// The location of a key's value, if present.
    pub fn value_loc(&self, key: &str) -> Option<Loc> {
        self.table.get(key).map(|v| self.ctx.loc(&v.span()))
    }

    /// The byte offset where a key's value starts, if present.
    pub fn value_offset(&self, key: &str) -> Option<usize> {
        self.table.get(key).map(|v| v.span().start)
    }

    /// The byte range of a key's value in the file (quotes included), if
    /// present.
    pub fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get(key).map(|v| v.span())
    }

    pub fn str(&self, key: &str) -> Option<Located<String>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Located::new(s.to_string(), self.ctx.loc(&v.span()))),
            _ => {
                self.wrong_type(key, v, "a string");
                None
            }
        }
    }

    pub fn req_str(&self, key: &str) -> Option<Located<String>> {
        if !self.has(key) {
            self.missing(key);
            return None;
        }
        self.str(key)
    }

    pub fn bool(&self, key: &str) -> Option<Located<bool>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Located::new(*b, self.ctx.loc(&v.span()))),
            _ => {
                self.wrong_type(key, v, "true or false");
                None
            }
        }
    }

    pub fn int(&self, key: &str) -> Option<Located<i64>> {
        let v = self.raw(key)?;
        let loc = self.ctx.loc(&v.span());
        match v.get_ref() {
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Some(Located::new(n, loc)),
                    Err(_) => {
                        self.ctx.error(&loc, format!("`{key}` is out of range"));
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(key, v, "an integer");
                None
            }
        }
    }

    /// A TOML date (`2026-01-01`), not a string and not a date-time.
    pub fn date(&self, key: &str) -> Option<Located<chrono::NaiveDate>> {
        let v = self.raw(key)?;
        let loc = self.ctx.loc(&v.span());
        match v.get_ref() {
            DeValue::Datetime(dt) if dt.date.is_some() && dt.time.is_none() => {
                let d = dt.date.expect("checked above");
                match chrono::NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()) {
                    Some(date) => Some(Located::new(date, loc)),
                    None => {
                        self.ctx.error(&loc, format!("`{key}` is not a valid date"));
                        None
                    }
                }
            }
            DeValue::String(s) => {
                let looks_like_a_date =
                    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
                let message = if looks_like_a_date {
                    format!("`{key}` must be a TOML date without quotes, like {s}")
                } else {
                    format!(
                        "`{key}` in {} must be a TOML date written YYYY-MM-DD without quotes, \
                         found the string \"{s}\"",
                        self.name
                    )
                };
                self.ctx.error(&loc, message);
                None
            }
            _ => {
                self.wrong_type(key, v, "a date (YYYY-MM-DD)");
                None
            }
        }
    }

    pub fn req_date(&self, key: &str) -> Option<Located<chrono::NaiveDate>> {
        if !self.has(key) {
            self.missing(key);
            return None;
        }
        self.date(key)
    }

    /// How often something repeats (`every = "5m"`): `default` when absent,
    /// at least one second; `None` (reported) when invalid.
    pub fn every(&self, default: std::time::Duration) -> Option<crate::model::DurationValue> {
        let Some(s) = self.str("every") else {
            return Some(crate::model::DurationValue(default));
        };
        match crate::model::DurationValue::parse(&s.value) {
            Ok(d) if d.as_std() < std::time::Duration::from_secs(1) => {
                let example = crate::model::DurationValue(default);
                self.ctx.error(
                    &s.loc,
                    format!("`every` must be at least 1s (e.g. \"{example}\")"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.ctx.error(&s.loc, e);
                None
            }
        }
    }

    /// An array of strings. A lone string is accepted as a list of one.
    pub fn str_list(&self, key: &str) -> Option<Vec<Located<String>>> {
        let v = self.raw(key)?;
        self.strings_of(key, v)
    }

    pub fn req_str_list(&self, key: &str) -> Option<Vec<Located<String>>> {
        if !self.has(key) {
            self.missing(key);
            return None;
        }
        self.str_list(key)
    }

    fn strings_of(&self, key: &str, v: &Spanned<DeValue<'s>>) -> Option<Vec<Located<String>>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![Located::new(s.to_string(), self.ctx.loc(&v.span()))]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => {
                            out.push(Located::new(s.to_string(), self.ctx.loc(&item.span())))
                        }
                        _ => self.wrong_type(key, item, "a list of strings"),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(key, v, "a list of strings");
                None
            }
        }
    }

    /// A value that is either a table or a list of strings (audiences may be
    /// written either way).
    pub fn table_or_list(&self, key: &str) -> Option<TableOrList<'c, 's>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(TableOrList::Table(Table::new(
                self.ctx,
                t,
                v.span(),
                self.child_path(key),
                format!("`{key}` of {}", self.name),
            ))),
            DeValue::Array(_) | DeValue::String(_) => {
                self.strings_of(key, v).map(TableOrList::List)
            }
            _ => {
                self.wrong_type(key, v, "a table or a list of group names");
                None
            }
        }
    }

    pub fn table(&self, key: &str) -> Option<Table<'c, 's>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Table::new(
                self.ctx,
                t,
                v.span(),
                self.child_path(key),
                format!("[{}]", self.child_path(key)),
            )),
            _ => {
                self.wrong_type(key, v, "a table");
                None
            }
        }
    }

    pub fn req_table(&self, key: &str) -> Option<Table<'c, 's>> {
        if !self.has(key) {
            self.missing(key);
            return None;
        }
        self.table(key)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An array of tables (`[[scenario]]`), each named with its index.
    pub fn tables(&self, key: &str) -> Vec<Table<'c, 's>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let base = self.child_path(key);
        match v.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::Table(t) => out.push(Table::new(
                            self.ctx,
                            t,
                            item.span(),
                            base.clone(),
                            format!("[[{base}]] #{}", i + 1),
                        )),
                        _ => self.wrong_type(key, item, "an array of tables"),
                    }
                }
                out
            }
            _ => {
                self.wrong_type(key, v, "an array of tables");
                Vec::new()
            }
        }
    }

    /// The entries of a table of tables (`[group.NAME]`, `[template.NAME]`),
    /// in file order, each with the location of its name.
    pub fn entries(&self, key: &str) -> Vec<(Located<String>, Table<'c, 's>)> {
        let Some(t) = self.table(key) else {
            return Vec::new();
        };
        t.used
            .borrow_mut()
            .extend(t.table.keys().map(|k| k.get_ref().to_string()));
        let mut out = Vec::new();
        for (k, v) in t.table.iter() {
            let name = Located::new(k.get_ref().to_string(), self.ctx.loc(&k.span()));
            match v.get_ref() {
                DeValue::Table(inner) => {
                    let path = format!("{}.{}", t.path, k.get_ref());
                    let label = format!("[{path}]");
                    out.push((name, Table::new(self.ctx, inner, v.span(), path, label)));
                }
                _ => self.ctx.error(
                    &self.ctx.loc(&v.span()),
                    format!(
                        "`{}` in {} must be a table, found {}",
                        k.get_ref(),
                        t.name,
                        type_name(v.get_ref())
                    ),
                ),
            }
        }
        out
    }

    /// A text per name: `key = { name = "…", … }` (or the table
    /// `[path.key]`), each name with its location, in file order; or a lone
    /// string, for every name (name `None`). Values that are not strings
    /// are reported.
    pub fn texts(&self, key: &str) -> Option<Vec<(Option<Located<String>>, String)>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(None, s.to_string())]),
            DeValue::Table(t) => {
                let mut out = Vec::new();
                for (k, item) in t.iter() {
                    let name = Located::new(k.get_ref().to_string(), self.ctx.loc(&k.span()));
                    match item.get_ref() {
                        DeValue::String(s) => out.push((Some(name), s.to_string())),
                        other => self.ctx.error(
                            &self.ctx.loc(&item.span()),
                            format!(
                                "`{}` in `{key}` of {} must be a string, found {}",
                                k.get_ref(),
                                self.name,
                                type_name(other)
                            ),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(key, v, "a table of texts per level");
                None
            }
        }
    }

    /// The keys of this table whose values are tables (`[email.NAME]`
    /// beside the keys of `[email]`), in file order, each with the location
    /// of its name; the other keys are left to the accessors.
    pub fn sub_tables(&self) -> Vec<(Located<String>, Table<'c, 's>)> {
        let mut out = Vec::new();
        for (k, v) in self.table.iter() {
            if let DeValue::Table(inner) = v.get_ref() {
                self.used.borrow_mut().insert(k.get_ref().to_string());
                let name = Located::new(k.get_ref().to_string(), self.ctx.loc(&k.span()));
                let path = self.child_path(k.get_ref());
                let label = format!("[{path}]");
                out.push((name, Table::new(self.ctx, inner, v.span(), path, label)));
            }
        }
        out
    }

    /// Reports every key of this table that no accessor asked for, with the
    /// key it probably misspells among those asked for and absent.
    pub fn finish(self) {
        let used = self.used.borrow();
        // Read only when a key is unknown (most tables have none: a
        // directory of 10 000 professionals is 10 000 tables).
        let absent = std::cell::OnceCell::new();
        for (k, _) in self.table.iter() {
            let key: &str = k.get_ref().as_ref();
            if !used.contains(key) {
                let absent = absent.get_or_init(|| {
                    let mut absent: Vec<&str> = used
                        .iter()
                        .map(String::as_str)
                        .filter(|k| self.table.get(*k).is_none())
                        .collect();
                    // The same hint from one run to the next.
                    absent.sort_unstable();
                    absent
                });
                let hint = super::diag::did_you_mean(key, absent.iter().copied());
                self.ctx.error(
                    &self.ctx.loc(&k.span()),
                    format!("unknown key `{key}` in {}{hint}", self.name),
                );
            }
        }
    }
}

pub enum TableOrList<'c, 's> {
    Table(Table<'c, 's>),
    List(Vec<Located<String>>),
}
