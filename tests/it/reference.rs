//! docs/REFERENCE.md names every key the configuration loaders read: the
//! keys are taken from the loaders' source (each `t.str("key")`,
//! `t.req_table("key")`, `Selector::read_key(&t, "key")`… in `src/config/`)
//! and each must appear in the reference as a word. A key added to a loader
//! without its line in the reference fails here.

use std::path::Path;

/// The reader's accessors whose first argument is a key.
const ACCESSORS: &[&str] = &[
    ".str(\"",
    ".req_str(\"",
    ".bool(\"",
    ".int(\"",
    ".date(\"",
    ".req_date(\"",
    ".str_list(\"",
    ".req_str_list(\"",
    ".table(\"",
    ".req_table(\"",
    ".tables(\"",
    ".entries(\"",
    ".table_or_list(\"",
    ".has(\"",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The keys read by the loaders: `(key, file)`.
fn loader_keys(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root.join("src/config"), &mut files);
    let mut keys = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(root).unwrap().display().to_string();
        let mut found = |key: &str| {
            if !key.is_empty() {
                keys.push((key.to_string(), name.clone()));
            }
        };
        for a in ACCESSORS {
            for (i, _) in text.match_indices(a) {
                let rest = &text[i + a.len()..];
                found(rest.split('"').next().unwrap_or(""));
            }
        }
        // `Selector::read_key(&t, "key")`.
        for (i, _) in text.match_indices("read_key(&") {
            let rest = &text[i..];
            if let Some(q) = rest.find('"') {
                found(rest[q + 1..].split('"').next().unwrap_or(""));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Whether `word` stands in `text` as a whole identifier.
fn has_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn every_key_the_loaders_read_is_in_the_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reference = std::fs::read_to_string(root.join("docs/REFERENCE.md")).unwrap();
    let keys = loader_keys(root);
    assert!(
        keys.len() > 60,
        "the loaders read more keys than that: the scan is broken ({} found)",
        keys.len()
    );
    for probe in [
        "quorum",
        "extra_professions",
        "escalation_repeat",
        "trusted_proxies",
    ] {
        assert!(
            keys.iter().any(|(k, _)| k == probe),
            "`{probe}` is read by a loader but the scan did not find it"
        );
    }
    let missing: Vec<String> = keys
        .iter()
        .filter(|(k, _)| !has_word(&reference, k))
        .map(|(k, f)| format!("`{k}` ({f})"))
        .collect();
    assert!(
        missing.is_empty(),
        "keys read by the loaders but not in docs/REFERENCE.md: {}",
        missing.join(", ")
    );
}
