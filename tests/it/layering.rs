//! The crate's layering, checked on its source: which top-level module may
//! name which, and how long a file may grow.
//!
//! - `config`, `model`, `store`, `schedule`, `engine` and `deliver` never
//!   name `crate::web`, `crate::cli`, `crate::daemon` or `crate::app`;
//! - `web` never names `crate::daemon`;
//! - no file in `src/` has more than [`MAX_LINES`] lines.
//!
//! A path counts wherever it is written in code: a `use` line, a grouped
//! `use crate::{web, …}`, an inline `crate::web::x(…)`, or `super::…` chains
//! that climb to the crate root. Comments are not code and are skipped.

use std::path::{Path, PathBuf};

/// The longest a file in `src/` may be.
const MAX_LINES: usize = 700;

/// The modules below the server side: they must not know it.
const CORE: [&str; 6] = ["config", "model", "store", "schedule", "engine", "deliver"];
const ABOVE_CORE: [&str; 4] = ["web", "cli", "daemon", "app"];

/// The top-level modules a module may not name.
fn forbidden(module: &str) -> &'static [&'static str] {
    if CORE.contains(&module) {
        &ABOVE_CORE
    } else if module == "web" {
        &["daemon"]
    } else {
        &[]
    }
}

/// The module path of a file: `src/config/daemon/http.rs` is
/// `config::daemon::http`, `src/config/mod.rs` is `config`, `src/lib.rs` the root.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a line, without its `//` comment (doc comments included).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Every top-level module a file's code names, with the 1-based line where
/// it is named. `module` is the file's module path (for `super::`).
fn top_level_refs(text: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    // Inside `crate::{ … }` (possibly over several lines): brace depth, and
    // whether the next identifier at depth 1 starts an item.
    let mut group: Option<(usize, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = code(raw);
        let n = i + 1;
        if let Some((mut depth, mut item_start)) = group {
            let mut rest = line;
            while !rest.is_empty() && depth > 0 {
                let c = rest.chars().next().unwrap();
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => item_start = true,
                    c if (c.is_ascii_alphabetic() || c == '_') && item_start && depth == 1 => {
                        let id = ident_at(rest);
                        if id != "self" {
                            out.push((n, id.to_string()));
                        }
                        item_start = false;
                        rest = &rest[id.len()..];
                        continue;
                    }
                    _ => {}
                }
                rest = &rest[c.len_utf8()..];
            }
            group = (depth > 0).then_some((depth, item_start));
        }
        let mut rest = line;
        while let Some(after) = find_path_start(rest) {
            let tail = &rest[after..];
            if tail.starts_with('{') {
                // `crate::{a, b::c}`: read the items, on this line and the next.
                let mut depth = 0usize;
                let mut item_start = true;
                let mut j = 0;
                let chars: Vec<(usize, char)> = tail.char_indices().collect();
                while j < chars.len() {
                    let (pos, c) = chars[j];
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => item_start = true,
                        c if (c.is_ascii_alphabetic() || c == '_') && item_start && depth == 1 => {
                            let id = ident_at(&tail[pos..]);
                            if id != "self" {
                                out.push((n, id.to_string()));
                            }
                            item_start = false;
                            j += id.chars().count();
                            continue;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if depth > 0 {
                    group = Some((depth, item_start));
                }
                break;
            }
            let id = ident_at(tail);
            if !id.is_empty() {
                out.push((n, id.to_string()));
            }
            rest = &rest[after + id.len().max(1)..];
        }
    }
    out.extend(super_refs(text, module));
    out
}

/// The offset of what follows the next `crate::` in `s`, not inside a
/// longer word (`$crate::`, `my_crate::`).
fn find_path_start(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("crate::") {
        let at = from + i;
        let before = s[..at].chars().next_back();
        if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')) {
            return Some(at + 7);
        }
        from = at + 7;
    }
    None
}

/// The top-level modules named through `super::super::…` chains that reach
/// the crate root from `module`.
fn super_refs(text: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = code(raw);
        let mut from = 0;
        while let Some(k) = line[from..].find("super::") {
            let at = from + k;
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                from = at + 7;
                continue;
            }
            let mut ups = 0;
            let mut rest = &line[at..];
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            if ups == module.len() {
                let id = ident_at(rest);
                if !id.is_empty() {
                    out.push((i + 1, id.to_string()));
                }
            }
            from = at + 7 * ups;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every breach of the rules in the source tree at `root` (the crate's
/// folder), one readable line each.
fn breaches(root: &Path) -> Vec<String> {
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty(), "no .rs file under {}", src.display());
    let mut out = Vec::new();
    let mut long = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap();
        let text = std::fs::read_to_string(f).unwrap();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            long.push(format!(
                "{}: {lines} lines (at most {MAX_LINES}: split it along a real seam)",
                rel.display()
            ));
        }
        let module = module_path(f.strip_prefix(&src).unwrap());
        let Some(top) = module.first() else { continue };
        let banned = forbidden(top);
        let mut refs = top_level_refs(&text, &module);
        refs.sort();
        refs.dedup();
        for (line, named) in refs {
            if banned.contains(&named.as_str()) {
                out.push(format!(
                    "{}:{line}: `{top}` names `crate::{named}`, which it must not ({})",
                    rel.display(),
                    if top == "web" {
                        "web never depends on the daemon".to_string()
                    } else {
                        format!(
                            "{} never depend on {}",
                            CORE.join(", "),
                            ABOVE_CORE.join(", ")
                        )
                    }
                ));
            }
        }
    }
    out.extend(long);
    out
}

#[test]
fn the_crate_keeps_its_layers_and_its_files_short() {
    let problems = breaches(Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(
        problems.is_empty(),
        "{} layering problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The checker itself, on a made-up tree: what it must catch and what it
/// must let pass (so that the test above can fail, and only for a reason).
#[test]
fn the_layering_check_finds_every_way_of_naming_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "src/lib.rs",
        "pub mod config;\npub mod web;\npub mod daemon;\n",
    );
    write(
        "src/config/mod.rs",
        "//! Not [`crate::web`]: a comment.\nuse crate::model::Version;\nuse crate::{\n    model,\n    web::Page,\n};\npub mod deep;\n",
    );
    write(
        "src/config/deep/inner.rs",
        "fn f() { super::super::super::cli::run(); let _ = \"x\"; }\nfn g() { super::super::plan::in_force(); }\n",
    );
    write(
        "src/engine/mod.rs",
        "fn f() -> crate::daemon::AppState { todo!() } // crate::app in a comment\n",
    );
    write(
        "src/web/mod.rs",
        "use crate::{config, daemon::AppState};\nuse crate::engine;\n",
    );
    write("src/daemon.rs", "use crate::web;\nuse crate::cli;\n");
    write("src/store/big.rs", &"let x = 1;\n".repeat(MAX_LINES + 1));
    write("src/store/ok.rs", &"let x = 1;\n".repeat(MAX_LINES));

    let found = breaches(dir.path());
    let expected = [
        "src/config/deep/inner.rs:1: `config` names `crate::cli`",
        "src/config/mod.rs:5: `config` names `crate::web`",
        "src/engine/mod.rs:1: `engine` names `crate::daemon`",
        "src/web/mod.rs:1: `web` names `crate::daemon`",
        "src/store/big.rs: 701 lines (at most 700",
    ];
    for e in expected {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
}
