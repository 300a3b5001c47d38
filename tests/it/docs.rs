//! The documentation holds together: every relative link in `README.md` and
//! in `docs/**/*.md` (the coordinators' guide included) leads to a file of the
//! repository, and no Markdown file of the repository sends its reader to the
//! developers' contract (`SPEC.md`, `../shared`), which users do not have.
//!
//! Links are the inline `[text](target)` and `![alt](target)` forms and the
//! reference definitions `[name]: target`; code (fenced blocks and `inline`
//! spans) is not read, an anchor (`#…`) and a query are ignored, a URL with a
//! scheme (`https:`, `mailto:`) is not a file.

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.md` file under `dir`, skipping build output, VCS data and hidden folders.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name.starts_with('.') || name == "target" || name == "var" {
                continue;
            }
            markdown_files(&p, out);
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

/// The text of a Markdown file outside its code: fenced blocks become blank
/// lines (line numbers are kept) and `inline code` spans are blanked.
fn prose(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(f) = fence {
            if t.starts_with(f) {
                fence = None;
            }
            lines.push(String::new());
            continue;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = Some(if t.starts_with("```") { "```" } else { "~~~" });
            lines.push(String::new());
            continue;
        }
        // Blank `code` spans, whatever their run of backticks.
        let mut out = String::new();
        let mut rest = line;
        while let Some(i) = rest.find('`') {
            out.push_str(&rest[..i]);
            let run = rest[i..].chars().take_while(|&c| c == '`').count();
            let ticks = &rest[i..i + run];
            let after = &rest[i + run..];
            match after.find(ticks) {
                Some(j) => rest = &after[j + run..],
                None => {
                    rest = after;
                }
            }
            out.push(' ');
        }
        out.push_str(rest);
        lines.push(out);
    }
    lines
}

/// The link targets of one line: `(column, target)`.
fn link_targets(line: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    // Inline links and images: `](target)` or `](<target> "title")`.
    for (i, _) in line.match_indices("](") {
        let rest = &line[i + 2..];
        let target = if let Some(r) = rest.strip_prefix('<') {
            r.split('>').next().unwrap_or("")
        } else {
            // Up to the closing parenthesis or a title, balancing inner parentheses.
            let mut depth = 0usize;
            let mut end = rest.len();
            for (k, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = k;
                        break;
                    }
                    ')' => depth -= 1,
                    ' ' | '\t' => {
                        end = k;
                        break;
                    }
                    _ => {}
                }
            }
            &rest[..end]
        };
        found.push((i + 3, target.to_string()));
    }
    // Reference definitions: `[name]: target` at the start of a line.
    let t = line.trim_start();
    if t.starts_with('[')
        && let Some(k) = t.find("]:")
        && !t[..k].contains("](")
    {
        let target = t[k + 2..].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        found.push((line.len() - t.len() + k + 3, target.to_string()));
    }
    found
}

/// A target that names a file (relative, no scheme), without its anchor and query.
fn local_path(target: &str) -> Option<&str> {
    let path = target.split(['#', '?']).next().unwrap_or("");
    if path.is_empty() || path.starts_with("//") {
        return None;
    }
    let scheme = path.split_once(':').map(|(s, _)| s);
    if scheme.is_some_and(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    }) {
        return None;
    }
    Some(path)
}

/// `base/rel` with `.` and `..` folded away; `None` when it climbs above the root.
fn resolve(root: &Path, base: &Path, rel: &str) -> Option<PathBuf> {
    let joined = if let Some(abs) = rel.strip_prefix('/') {
        root.join(abs)
    } else {
        base.join(rel)
    };
    let inside = joined.strip_prefix(root).ok()?;
    let mut parts: Vec<Component> = Vec::new();
    for c in inside.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(root.join(parts.iter().collect::<PathBuf>()))
}

/// The problems of one Markdown file, as `file:line:col: what`.
fn problems(root: &Path, file: &Path, check_targets: bool) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let rel = file.strip_prefix(root).unwrap().display().to_string();
    let base = file.parent().unwrap();
    let mut out = Vec::new();
    for (n, line) in prose(&text).iter().enumerate() {
        for (col, target) in link_targets(line) {
            let Some(path) = local_path(&target) else {
                continue;
            };
            let at = format!("{rel}:{}:{col}", n + 1);
            let file_name = path.rsplit('/').next().unwrap_or(path);
            if file_name == "SPEC.md" || path.split('/').any(|p| p == "shared") {
                out.push(format!(
                    "{at}: links to `{target}`, the developers' contract, which users do not have"
                ));
                continue;
            }
            if !check_targets {
                continue;
            }
            match resolve(root, base, path) {
                None => out.push(format!("{at}: `{target}` leads outside the repository")),
                Some(p) if !p.exists() => out.push(format!(
                    "{at}: `{target}` leads to `{}`, which does not exist",
                    p.strip_prefix(root).unwrap().display()
                )),
                Some(_) => {}
            }
        }
    }
    out
}

#[test]
fn every_relative_link_of_the_readme_and_docs_leads_to_a_file_of_the_repository() {
    let root = root();
    let mut files = vec![root.join("README.md")];
    markdown_files(&root.join("docs"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("docs/guide/README.md")),
        "the coordinators' guide docs/guide/README.md is missing"
    );
    let mut all = Vec::new();
    let mut links = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        links += prose(&text)
            .iter()
            .flat_map(|l| link_targets(l))
            .filter(|(_, t)| local_path(t).is_some())
            .count();
        all.extend(problems(&root, f, true));
    }
    assert!(
        links > 20,
        "only {links} relative links found: is the scan broken?"
    );
    assert!(all.is_empty(), "broken links:\n{}", all.join("\n"));
}

#[test]
fn no_markdown_file_of_the_repository_links_to_the_developers_contract() {
    let root = root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    let all: Vec<String> = files
        .iter()
        .flat_map(|f| problems(&root, f, false))
        .collect();
    assert!(
        all.is_empty(),
        "links to SPEC.md or ../shared:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_readme_points_to_the_coordinators_guide() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let targets: Vec<String> = prose(&text)
        .iter()
        .flat_map(|l| link_targets(l))
        .map(|(_, t)| t)
        .collect();
    assert!(
        targets.iter().any(|t| t == "docs/guide/README.md"),
        "README.md has no link to docs/guide/README.md"
    );
}

#[test]
fn the_link_scanner_reads_the_forms_markdown_uses() {
    let line =
        "voir [le plan](plan.md#paliers), ![x](<img/a b.png> \"t\") et [site](https://x.org)";
    let got: Vec<String> = link_targets(line).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got, ["plan.md#paliers", "img/a b.png", "https://x.org"]);
    assert_eq!(local_path("plan.md#paliers"), Some("plan.md"));
    assert_eq!(local_path("https://x.org"), None);
    assert_eq!(local_path("#ancre"), None);
    let code = prose("a `[x](nope.md)` b\n```\n[y](nope.md)\n```\n[z]: ../SPEC.md");
    let found: Vec<String> = code
        .iter()
        .flat_map(|l| link_targets(l))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(found, ["../SPEC.md"]);
    let root = Path::new("/r");
    assert_eq!(
        resolve(root, Path::new("/r/docs/guide"), "../REFERENCE.md"),
        Some(PathBuf::from("/r/docs/REFERENCE.md"))
    );
    assert_eq!(resolve(root, Path::new("/r/docs"), "../../x.md"), None);
}
