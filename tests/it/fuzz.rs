//! No input makes the plan loader panic (property tests).
//!
//! The plan loader is called in-process on (a) arbitrary text, (b) the
//! shipped `plans/pgc-2026.toml` mutated line by line and byte by byte,
//! (c) TOML generated from the plan's own structure with random keys and
//! values, and (d) a valid plan with random templates, which are then run
//! through the template checker as `vigie check` does. Finally (e) mutated
//! plans go through the whole load (cross-file validation included) beside
//! the minimal fixture set. Every property also checks that each diagnostic
//! points inside the text: line ≤ number of lines + 1, column ≤ length of
//! that line + 1.
//!
//! Cases are sized to keep the module under ~20 s in a debug build on two
//! cores. Failures are not persisted (no regression files in the repository):
//! a failing run prints the shrunk input.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestRunner};

use vigie::config::diag::SourceText;
use vigie::config::templates::{self, TemplateKind};
use vigie::config::{Diagnostics, Loc, Plan, plan};

use crate::support::{copy_dir, repo};

/// `cases` per property; `PROPTEST_CASES` overrides it for a longer hunt
/// (`PROPTEST_CASES=20000 cargo test --release --test it fuzz`).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

/// The shipped plan, the richest valid input there is.
fn shipped_plan() -> String {
    std::fs::read_to_string(repo().join("plans/pgc-2026.toml")).expect("shipped plan")
}

/// Where a location must fall in `text`: a line that exists (or the one
/// just after the last line break) and a column at most one past its end.
fn loc_is_inside(loc: &Loc, text: &str) -> Result<(), String> {
    let lines: Vec<&str> = text.split('\n').collect();
    if loc.line == 0 || loc.col == 0 {
        return Err(format!("{loc}: lines and columns start at 1"));
    }
    if loc.line > lines.len() {
        return Err(format!(
            "{loc}: past the last line ({} lines)",
            text.lines().count()
        ));
    }
    let width = lines[loc.line - 1].chars().count();
    if loc.col > width + 1 {
        return Err(format!(
            "{loc}: past the end of its line ({width} characters)"
        ));
    }
    Ok(())
}

/// Parses a plan like `vigie check` does, checks its templates, and returns
/// the plan (when it has no error) and every problem found with its
/// location.
fn parse_and_check(text: &str) -> (Option<Plan>, Vec<(Loc, String)>) {
    let src = SourceText::new("fuzz.toml", text.to_string());
    let mut diags = Diagnostics::default();
    let plan = plan::parse(&src, String::new(), &mut diags);
    let mut found: Vec<(Loc, String)> = diags
        .iter()
        .map(|d| (d.loc.clone(), d.message.clone()))
        .collect();
    // A plan with errors is still checked as far as it could be read, as
    // `vigie check` does: its templates too.
    let as_read = match &plan {
        Some(_) => None,
        None => plan::parse_as_read(&src, String::new(), &mut Diagnostics::default()),
    };
    if let Some(p) = plan.as_ref().or(as_read.as_ref().map(|(p, _)| p)) {
        for t in p.templates.values() {
            templates::check(t, TemplateKind::Event, &mut |loc, msg| {
                found.push((loc.clone(), msg))
            });
        }
    }
    (plan, found)
}

/// The property every input must have: no panic (a panic fails the case),
/// and every location inside the text.
fn loader_holds(text: &str) -> Result<(), TestCaseError> {
    let (_, found) = parse_and_check(text);
    for (loc, msg) in &found {
        if let Err(e) = loc_is_inside(loc, text) {
            return Err(TestCaseError::fail(format!("{e} — for: {msg}")));
        }
        prop_assert!(!msg.trim().is_empty(), "an empty message at {}", loc);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// (a) arbitrary text
// ---------------------------------------------------------------------------

/// Pieces of TOML and of templates, to build text that gets further into the
/// parser than random characters do.
const TOML_PIECES: &[&str] = &[
    "[plan]",
    "[[scenario]]",
    "[[scenario.escalation]]",
    "[[scenario.broadcast]]",
    "[audience.a]",
    "[template.t]",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "\\",
    "\\u00e9",
    "\\n",
    "\n",
    "\r\n",
    "\t",
    " ",
    "#",
    "id",
    "version",
    "title",
    "valid_from",
    "valid_until",
    "review_by",
    "owners",
    "audience",
    "channels",
    "template",
    "timeout",
    "levels",
    "ack",
    "responses",
    "subject",
    "text",
    "html",
    "2026-01-01",
    "2026-02-30",
    "10:00:00",
    "1979-05-27T07:32:00Z",
    "0x1F",
    "1_000",
    "-0",
    "inf",
    "nan",
    "true",
    "\"15m\"",
    "{{ event.title }}",
    "{{ event.titre }}",
    "{%",
    "%}",
    "{{",
    "}}",
    "é",
    "😀",
    "\u{0}",
    "\u{feff}",
];

fn toml_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(select(TOML_PIECES), 0..80).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_text_never_panics_the_plan_loader(text in any::<String>()) {
        loader_holds(&text)?;
    }

    #[test]
    fn toml_like_soup_never_panics_the_plan_loader(text in toml_soup()) {
        loader_holds(&text)?;
    }
}

// ---------------------------------------------------------------------------
// (b) the shipped plan, mutated
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    InsertLine(Index, String),
    /// Replaces one whitespace-separated token of a line.
    ReplaceToken(Index, Index, String),
    Truncate(Index),
    /// Overwrites one byte (the text is then read as lossy UTF-8).
    SetByte(Index, u8),
    DeleteByte(Index),
}

/// Lines worth inserting: headers and keys of the plan format, broken ones.
const LINES: &[&str] = &[
    "[[scenario]]",
    "[[scenario.escalation]]",
    "[[scenario.broadcast]]",
    "[plan]",
    "[audience.x]",
    "[template.x]",
    "[template.mobilisation]",
    "id = \"x\"",
    "id = \"canicule\"",
    "id = 3",
    "title = \"\"",
    "levels = []",
    "levels = [\"jaune\", \"jaune\"]",
    "responses = []",
    "ack = [\"nope\"]",
    "audience = []",
    "audience = [\"tous\", 1]",
    "channels = [\"sms\"]",
    "template = \"nope\"",
    "timeout = \"0s\"",
    "timeout = \"-1m\"",
    "timeout = \"99999999999999999999d\"",
    "quorum = 0",
    "quorum = 9223372036854775807",
    "escalation_repeat = -1",
    "valid_from = 2027-01-01",
    "valid_until = 1900-01-01",
    "review_by = \"2026-01-01\"",
    "owners = {}",
    "owners = []",
    "owners = { all = true, zzz = 1 }",
    "subject = \"{{ event.titre }}\"",
    "text = \"\"\"",
    "text = '''",
    "\"\"\"",
    "'''",
    "{% for x in event %}{{ x }}",
    "{{ event.title | nofilter }}",
    "{{ recipient['name'] }}",
    "x.y.z = 1",
    "scenario = 1",
    "plan = \"x\"",
    "",
    "#",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let text = prop_oneof![
        select(LINES).prop_map(String::from),
        "[ -~]{0,20}",
        any::<String>(),
    ];
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), text.clone()).prop_map(|(i, t)| Mutation::InsertLine(i, t)),
        (any::<Index>(), any::<Index>(), text)
            .prop_map(|(l, t, s)| Mutation::ReplaceToken(l, t, s)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<Index>().prop_map(Mutation::DeleteByte),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let s = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines: Vec<String> = s.split('\n').map(String::from).collect();
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i.index(n));
            }
            Mutation::DuplicateLine(i) => {
                let i = i.index(n);
                lines.insert(i, lines[i].clone());
            }
            Mutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
            Mutation::InsertLine(i, t) => lines.insert(i.index(n + 1), t.clone()),
            Mutation::ReplaceToken(l, t, with) => {
                let l = l.index(n);
                let tokens: Vec<&str> = lines[l].split(' ').collect();
                let t = t.index(tokens.len());
                let mut tokens: Vec<String> = tokens.into_iter().map(String::from).collect();
                tokens[t] = with.clone();
                lines[l] = tokens.join(" ");
            }
            Mutation::Truncate(i) => {
                bytes.truncate(i.index(bytes.len() + 1));
                continue;
            }
            Mutation::SetByte(i, b) => {
                if !bytes.is_empty() {
                    let i = i.index(bytes.len());
                    bytes[i] = *b;
                }
                continue;
            }
            Mutation::DeleteByte(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i.index(bytes.len()));
                }
                continue;
            }
        }
        bytes = lines.join("\n").into_bytes();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn the_shipped_plan_parses_and_its_templates_check_cleanly() {
    let text = shipped_plan();
    let (plan, found) = parse_and_check(&text);
    assert!(plan.is_some(), "{found:?}");
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn the_shipped_plan_mutated_never_panics_the_plan_loader() {
    let text = shipped_plan();
    let mut runner = TestRunner::new(config(384));
    runner
        .run(&prop::collection::vec(mutation(), 1..5), |ms| {
            loader_holds(&mutate(&text, &ms))
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// (c) TOML generated from the plan's structure
// ---------------------------------------------------------------------------

/// A TOML basic string for any text.
fn basic(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Any TOML value, well-formed, of any type (the loader must say which type
/// it wanted).
fn any_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z_]{0,10}".prop_map(|s| basic(&s)),
        any::<String>().prop_map(|s| basic(&s)),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        select(
            &[
                "2026-01-01",
                "2024-02-29",
                "2026-01-01T10:00:00",
                "2026-01-01T10:00:00+02:00",
                "10:00:00",
                "1.5",
                "-0.0",
                "inf",
                "nan",
                "0x7FFFFFFFFFFFFFFF",
                "0o17",
                "0b101",
                "1_000_000",
                "[]",
                "{}",
                "\"\"",
                "'literal'",
                "'''multi\nline'''",
                "\"\"\"\nmulti\nline\"\"\"",
            ][..]
        )
        .prop_map(String::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3).prop_map(|kv| {
                let parts: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", parts.join(", "))
            }),
        ]
    })
}

/// A value that makes sense for `key`, or any value at all.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let plausible: &'static [&'static str] = match key {
        "id" => &["\"pgc\"", "\"canicule\"", "\"Canicule\"", "\"\"", "\"a b\""],
        "version" => &["\"2026.1\"", "\"2026.01\"", "\"\"", "\" \"", "\"v1 beta\""],
        "title" => &["\"Plan\"", "\"\"", "\"Vague de chaleur\""],
        "valid_from" | "valid_until" | "approved" | "review_by" => &[
            "2026-01-01",
            "2026-12-31",
            "2025-06-30",
            "\"2026-01-01\"",
            "2026-01-01T00:00:00",
        ],
        "owners" => &[
            "{ groups = [\"bureau\"] }",
            "[\"bureau\"]",
            "{}",
            "[]",
            "{ all = true }",
            "{ on_call = \"pdsa\" }",
            "\"bureau\"",
        ],
        "levels" => &[
            "[\"jaune\", \"orange\"]",
            "[\"jaune\", \"jaune\"]",
            "[]",
            "[\"Rouge\"]",
            "\"orange\"",
        ],
        "responses" => &["[\"disponible\", \"indisponible\"]", "[]", "[\"ok\"]"],
        "ack" => &["[\"disponible\"]", "[\"nope\"]", "[]"],
        "escalation_repeat" => &["0", "1", "-1", "101", "9223372036854775807"],
        "notify_on_resolve" => &["true", "false", "\"yes\""],
        "audience" => &[
            "[\"referents\"]",
            "[\"bureau\", \"tous\"]",
            "[]",
            "\"tous\"",
            "[1]",
        ],
        "channels" => &["[\"email\"]", "[\"email\", \"sms\"]", "[]"],
        "template" => &["\"mobilisation\"", "\"nope\""],
        "quorum" => &["1", "0", "2", "10001", "-5"],
        "timeout" => &[
            "\"15m\"",
            "\"1h 30m\"",
            "\"0s\"",
            "\"quinze\"",
            "\"\"",
            "15",
        ],
        "professions" | "roles" | "groups" => &["[\"medecin\"]", "[]", "\"bureau\"", "[true]"],
        "on_call" => &["\"pdsa\"", "[]"],
        "all" => &["true", "false", "1"],
        _ => &["1", "\"x\""],
    };
    prop_oneof![
        3 => select(plausible).prop_map(String::from),
        1 => any_value(),
    ]
    .boxed()
}

/// The lines of one table: some of its known keys, maybe an unknown one.
fn table_body(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    let entries = keys
        .iter()
        .map(|k| {
            prop::option::weighted(0.7, value_for(k))
                .prop_map(move |v| v.map(|v| format!("{k} = {v}")))
                .boxed()
        })
        .collect::<Vec<_>>();
    let extra = prop::option::weighted(
        0.15,
        ("[a-z_]{1,10}", any_value()).prop_map(|(k, v)| format!("zz_{k} = {v}")),
    );
    (entries, extra)
        .prop_map(|(lines, extra)| {
            let mut out: Vec<String> = lines.into_iter().flatten().collect();
            out.extend(extra);
            out.join("\n")
        })
        .boxed()
}

const PLAN_KEYS: &[&str] = &[
    "id",
    "version",
    "title",
    "valid_from",
    "valid_until",
    "approved",
    "review_by",
    "owners",
];
const SCENARIO_KEYS: &[&str] = &[
    "id",
    "title",
    "levels",
    "responses",
    "ack",
    "escalation_repeat",
    "notify_on_resolve",
];
const BROADCAST_KEYS: &[&str] = &["levels", "audience", "channels", "template"];
const TIER_KEYS: &[&str] = &["audience", "channels", "template", "quorum", "timeout"];
const SELECTOR_KEYS: &[&str] = &["professions", "roles", "groups", "on_call", "all"];

fn scenario() -> impl Strategy<Value = String> {
    (
        table_body(SCENARIO_KEYS),
        prop::collection::vec(table_body(BROADCAST_KEYS), 0..3),
        prop::collection::vec(table_body(TIER_KEYS), 0..4),
    )
        .prop_map(|(s, broadcasts, tiers)| {
            let mut out = format!("[[scenario]]\n{s}\n");
            for b in broadcasts {
                out.push_str(&format!("\n[[scenario.broadcast]]\n{b}\n"));
            }
            for t in tiers {
                out.push_str(&format!("\n[[scenario.escalation]]\n{t}\n"));
            }
            out
        })
}

fn generated_plan() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        table_body(PLAN_KEYS),
        prop::collection::vec(("[a-z_]{1,6}", table_body(SELECTOR_KEYS)), 0..3),
        prop::collection::vec(("[a-z_]{1,6}", template_table()), 0..2),
        prop::collection::vec(scenario(), 0..3),
    )
        .prop_map(|(header, plan, audiences, templates, scenarios)| {
            let mut out = String::new();
            if header {
                out.push_str("[plan]\n");
            }
            out.push_str(&plan);
            out.push('\n');
            let mut seen = std::collections::BTreeSet::new();
            for (name, body) in audiences {
                if seen.insert(name.clone()) {
                    out.push_str(&format!("\n[audience.{name}]\n{body}\n"));
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for (name, (body, _)) in templates {
                if seen.insert(name.clone()) {
                    out.push_str(&format!("\n[template.{name}]\n{body}\n"));
                }
            }
            for s in scenarios {
                out.push('\n');
                out.push_str(&s);
            }
            out
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn generated_plans_never_panic_the_plan_loader(text in generated_plan()) {
        loader_holds(&text)?;
    }
}

// ---------------------------------------------------------------------------
// (d) templates inside a valid plan
// ---------------------------------------------------------------------------

const TEMPLATE_PIECES: &[&str] = &[
    "Bonjour ",
    "{{ recipient.name }}",
    "{{ event.title | upper }}",
    "{{ event.titre }}",
    "{{ plan.version }}",
    "{{ response_url }}",
    "{{ nope }}",
    "{{ event }}",
    "{{ event.level ~ ' ' ~ event.note }}",
    "{% if event.exercise %}",
    "{% else %}",
    "{% endif %}",
    "{% for x in [1, 2] %}{{ x }}{% endfor %}",
    "{% set y = event.note %}{{ y }}",
    "{{ recipient.name | nofilter }}",
    "{{ 1 / 0 }}",
    "{# note #}",
    "{{",
    "}}",
    "{%",
    "%}",
    "\n",
    "\n\n",
    "\t",
    "é",
    "\"",
    "'",
    "\\",
    " ",
];

/// How a template is written in the file.
#[derive(Clone, Copy, Debug)]
enum Quoting {
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

impl Quoting {
    /// The TOML for `text` in this style, and whether the text is written
    /// as is (so lines and columns inside it are those of the file).
    fn write(self, text: &str) -> (String, bool) {
        match self {
            Quoting::Literal if !text.contains(['\'', '\n', '\r']) => (format!("'{text}'"), true),
            Quoting::MultiLiteral if !text.contains("'''") && !text.ends_with('\'') => {
                (format!("'''\n{text}'''"), true)
            }
            Quoting::MultiBasic => {
                let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
                let verbatim = escaped == text;
                (format!("\"\"\"\n{escaped}\"\"\""), verbatim)
            }
            _ => {
                let b = basic(text);
                let verbatim = b[1..b.len() - 1] == *text;
                (b, verbatim)
            }
        }
    }
}

fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(select(TEMPLATE_PIECES), 0..14).prop_map(|v| v.concat())
}

fn quoting() -> impl Strategy<Value = Quoting> {
    prop_oneof![
        Just(Quoting::Basic),
        Just(Quoting::Literal),
        Just(Quoting::MultiBasic),
        Just(Quoting::MultiLiteral),
    ]
}

/// A `[template.NAME]` body, and whether its `text` is written as is.
fn template_table() -> impl Strategy<Value = (String, bool)> {
    (
        template_text(),
        quoting(),
        template_text(),
        quoting(),
        prop::option::of((template_text(), quoting())),
    )
        .prop_map(|(subject, sq, text, tq, html)| {
            let (subject, _) = sq.write(&subject);
            let (text, verbatim) = tq.write(&text);
            let mut out = format!("subject = {subject}\ntext = {text}");
            if let Some((html, hq)) = html {
                out.push_str(&format!("\nhtml = {}", hq.write(&html).0));
            }
            (out, verbatim)
        })
}

const VALID_HEAD: &str = "\
[plan]
id = \"pgc\"
version = \"2026.1\"
title = \"Plan\"
valid_from = 2026-01-01
valid_until = 2026-12-31

[audience.referents]
roles = [\"referent_crise\"]

";

const VALID_TAIL: &str = "

[[scenario]]
id = \"canicule\"
title = \"Vague de chaleur\"

[[scenario.escalation]]
audience = [\"referents\"]
channels = [\"email\"]
template = \"t\"
timeout = \"15m\"
";

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn random_templates_are_checked_without_panic_and_point_inside_them(
        (body, verbatim) in template_table(),
        blank_lines in 0usize..3,
        template_last in any::<bool>(),
    ) {
        let template = format!("{}[template.t]\n{body}\n", "\n".repeat(blank_lines));
        let text = if template_last {
            format!("{VALID_HEAD}{VALID_TAIL}\n{template}")
        } else {
            format!("{VALID_HEAD}{template}{VALID_TAIL}")
        };
        let (plan, found) = parse_and_check(&text);
        prop_assert!(plan.is_some(), "the plan around the template is valid: {:?}", found);
        loader_holds(&text)?;
        let lines: Vec<&str> = text.split('\n').collect();
        let header = lines.iter().position(|l| *l == "[template.t]").unwrap() + 1;
        let last = header + body.split('\n').count();
        for (loc, msg) in &found {
            // Every problem of the template points inside the template.
            prop_assert!(
                msg.starts_with("template `t`") && (header..=last).contains(&loc.line),
                "{}: {} — the template is on lines {}-{}", loc, msg, header, last
            );
            // An unknown variable of a template written as is points at
            // the place of the file where it is written.
            if verbatim && msg.contains("(text) uses unknown variable `event.titre`") {
                let line = lines[loc.line - 1];
                let from_col: String = line.chars().skip(loc.col - 1).collect();
                prop_assert!(
                    from_col.starts_with("event.titre"),
                    "{}: {} — the line is {:?}", loc, msg, line
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// (e) the whole load, cross-file checks included
// ---------------------------------------------------------------------------

#[test]
fn mutated_plans_beside_the_minimal_set_never_panic_the_whole_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo().join("tests/fixtures/minimal"), dir.path());
    let plan_path = dir.path().join("plans/pgc-2026.toml");
    let original = std::fs::read_to_string(&plan_path).unwrap();
    let config_path = dir.path().join("config/vigie.toml");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let mut runner = TestRunner::new(config(96));
    runner
        .run(
            &(prop::collection::vec(mutation(), 1..4), any::<bool>()),
            |(ms, raw_bytes)| {
                let text = mutate(&original, &ms);
                // Also write raw bytes sometimes, to reach the UTF-8 check.
                let bytes = if raw_bytes {
                    let mut b = text.clone().into_bytes();
                    b.push(0xff);
                    b
                } else {
                    text.clone().into_bytes()
                };
                std::fs::write(&plan_path, &bytes).unwrap();
                let loaded = vigie::config::load(&config_path, |_| date);
                for d in loaded.diagnostics.iter() {
                    if same_file(&d.loc.file, &plan_path) {
                        let shown = String::from_utf8_lossy(&bytes);
                        if let Err(e) = loc_is_inside(&d.loc, &shown) {
                            return Err(TestCaseError::fail(format!("{e} — for: {d}")));
                        }
                    }
                }
                prop_assert_eq!(
                    loaded.set.is_some(),
                    !loaded.diagnostics.has_errors(),
                    "a set is given exactly when there is no error"
                );
                Ok(())
            },
        )
        .unwrap();
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || a.file_name() == b.file_name() && a.ends_with("plans/pgc-2026.toml")
}
