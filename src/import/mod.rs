//! Imports from outside registers into Vigie's files: today the public
//! *Annuaire Santé* extract ([`rpps`]), turned into directory TOML (SPEC §3).
//!
//! This module reads foreign formats and writes directory entries as text.
//! It never writes a file itself (the CLI prints to standard output), never
//! reads the daemon's configuration and never touches the store. What it
//! prints must pass `vigie check`: values are checked with the same
//! [`crate::model`] parsers the directory loader uses.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::model::{Phone, fold};

pub mod rpps;

/// Why an import could not run at all. Doubtful rows are not errors: they
/// become warnings and the import goes on.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:1: {message}", path.display())]
    Header { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// One `[[professional]]` of the directory, as an import produces it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub profession: String,
    pub specialty: Option<String>,
    pub rpps: Option<String>,
    pub commune: String,
    pub structure: Option<String>,
    pub email: Option<String>,
    /// The MSSanté secure mailbox (`--mssante`).
    pub mssante: Option<String>,
    pub phone: Option<String>,
    /// Comment lines printed under `[[professional]]` (other sites…).
    pub comments: Vec<String>,
}

/// Writes directory TOML: the `header` lines as comments, then one
/// `[[professional]]` table per entry. Every string goes through the `toml`
/// crate's writer, so quotes, backslashes and control characters are
/// escaped; comments are kept on one line.
pub fn to_toml(header: &[String], entries: &[Entry]) -> String {
    let mut out = String::new();
    for line in header {
        let _ = writeln!(out, "# {}", one_line(line));
    }
    for e in entries {
        out.push_str("\n[[professional]]\n");
        for c in &e.comments {
            let _ = writeln!(out, "# {}", one_line(c));
        }
        let fields: [(&str, Option<&String>); 10] = [
            ("id", Some(&e.id)),
            ("name", Some(&e.name)),
            ("profession", Some(&e.profession)),
            ("specialty", e.specialty.as_ref()),
            ("rpps", e.rpps.as_ref()),
            ("commune", Some(&e.commune)),
            ("structure", e.structure.as_ref()),
            ("email", e.email.as_ref()),
            ("mssante", e.mssante.as_ref()),
            ("phone", e.phone.as_ref()),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                let _ = writeln!(out, "{key} = {}", toml::Value::String(v.clone()));
            }
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Overseas departments and territories dialled from France with a 10-digit
/// national number (`0` + 9 digits), and their E.164 country code: the
/// national number's leading `0` is replaced by this code, not by `33`.
const OVERSEAS: &[(&str, &str)] = &[
    ("0262", "262"), // La Réunion
    ("0263", "262"), // La Réunion
    ("0269", "262"), // Mayotte
    ("0692", "262"), // La Réunion, mobile
    ("0693", "262"), // La Réunion, mobile
    ("0639", "262"), // Mayotte, mobile
    ("0590", "590"), // Guadeloupe, Saint-Martin, Saint-Barthélemy
    ("0690", "590"), // Guadeloupe, mobile
    ("0691", "590"), // Guadeloupe, mobile
    ("0594", "594"), // Guyane
    ("0694", "594"), // Guyane, mobile
    ("0596", "596"), // Martinique
    ("0696", "596"), // Martinique, mobile
    ("0697", "596"), // Martinique, mobile
    ("0508", "508"), // Saint-Pierre-et-Miquelon
];

/// A phone number as French registers write it (`03 89 37 00 00`,
/// `03.89.37.00.00`, `+33 (0)3 89…`, `0033…`) in E.164 (`+33389370000`).
/// Overseas numbers get their own country code (`0262…` → `+262262…`).
pub fn french_phone(raw: &str) -> Result<Phone, String> {
    let invalid = || format!("invalid phone number \"{raw}\"");
    let trimmed = raw.trim().replace("(0)", "");
    let plus = trimmed.starts_with('+');
    let mut digits = String::new();
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '/' | '(' | ')' | '\u{a0}' | '\u{202f}' | '+' => {}
            _ => return Err(invalid()),
        }
    }
    let e164 = if plus {
        format!("+{digits}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else if digits.len() == 10 && digits.starts_with('0') {
        match OVERSEAS.iter().find(|(p, _)| digits.starts_with(p)) {
            Some((_, cc)) => format!("+{cc}{}", &digits[1..]),
            None => format!("+33{}", &digits[1..]),
        }
    } else if digits.len() == 11 && digits.starts_with("33") {
        format!("+{digits}")
    } else {
        return Err(invalid());
    };
    // "+33 0389…" (the national 0 kept after the country code).
    let e164 = match e164.strip_prefix("+330") {
        Some(rest) if rest.len() == 9 => format!("+33{rest}"),
        _ => e164,
    };
    Phone::parse(&e164).map_err(|_| invalid())
}

/// A person's name as registers write it (`MARTIN`, `JEAN-PIERRE`,
/// `DE LA FONTAINE`) in the case people write it (`Martin`, `Jean-Pierre`,
/// `de La Fontaine`): each word capitalised after a space, hyphen or
/// apostrophe; the particles `de`, `du` and `des` in lower case when more
/// words follow.
pub fn title_case(s: &str) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let lower = w.to_lowercase();
        let last = i + 1 == words.len();
        if !last && matches!(lower.as_str(), "de" | "du" | "des") {
            out.push(lower);
            continue;
        }
        let mut word = String::with_capacity(lower.len());
        let mut start = true;
        for c in lower.chars() {
            if start {
                word.extend(c.to_uppercase());
            } else {
                word.push(c);
            }
            start = matches!(c, '-' | '\'' | '’');
        }
        out.push(word);
    }
    out.join(" ")
}

/// A slug from free text: folded ([`fold`]), every run of other characters
/// made one `sep`, trimmed. `"Médecine Générale"` → `medecine_generale`.
pub fn slugify(s: &str, sep: char) -> String {
    let mut out = String::new();
    for c in fold(s).chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with(sep) {
            out.push(sep);
        }
    }
    while out.ends_with(sep) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_phones_become_e164() {
        let ok = |raw: &str| french_phone(raw).map(|p| p.as_str().to_string());
        assert_eq!(ok("03 89 37 00 00").unwrap(), "+33389370000");
        assert_eq!(ok("0389370000").unwrap(), "+33389370000");
        assert_eq!(ok("03.89.37.00.00").unwrap(), "+33389370000");
        assert_eq!(ok("+33 (0)3 89 37 00 00").unwrap(), "+33389370000");
        assert_eq!(ok("+33 3 89 37 00 00").unwrap(), "+33389370000");
        assert_eq!(ok("0033389370000").unwrap(), "+33389370000");
        assert_eq!(ok("06 12 34 56 78").unwrap(), "+33612345678");
        assert_eq!(ok("02 62 40 00 00").unwrap(), "+262262400000");
        assert_eq!(ok("0696 12 34 56").unwrap(), "+596696123456");
        assert_eq!(ok("+41 79 123 45 67").unwrap(), "+41791234567");
        assert!(ok("03 89 37").is_err());
        assert!(ok("3615").is_err());
        assert!(ok("03 89 37 00 0A").is_err());
        assert!(ok("").is_err());
    }

    #[test]
    fn names_are_written_as_people_write_them() {
        assert_eq!(title_case("MARTIN"), "Martin");
        assert_eq!(title_case("JEAN-PIERRE"), "Jean-Pierre");
        assert_eq!(title_case("HÉLÈNE"), "Hélène");
        assert_eq!(title_case("DE LA FONTAINE"), "de La Fontaine");
        assert_eq!(title_case("D'ALMEIDA"), "D'Almeida");
        assert_eq!(title_case("LE GALL"), "Le Gall");
        assert_eq!(title_case("  o'neil  "), "O'Neil");
    }

    #[test]
    fn slugs_fold_accents_and_punctuation() {
        assert_eq!(slugify("Médecine Générale", '_'), "medecine_generale");
        assert_eq!(slugify("  Qualifié en M.G. ", '_'), "qualifie_en_m_g");
        assert_eq!(slugify("Œdème", '-'), "oedeme");
        assert_eq!(slugify("---", '_'), "");
    }

    #[test]
    fn toml_strings_are_escaped() {
        let e = Entry {
            id: "x".into(),
            name: "Anne \"Nanou\" O'Brien\\".into(),
            profession: "medecin".into(),
            commune: "Thann".into(),
            comments: vec!["two\nlines".into()],
            ..Entry::default()
        };
        let text = to_toml(&["head".into()], &[e]);
        assert!(text.contains("# two lines\n"), "{text}");
        let v: toml::Table = text.parse().expect("valid TOML");
        let p = &v["professional"][0];
        assert_eq!(p["name"].as_str(), Some("Anne \"Nanou\" O'Brien\\"));
        assert!(p.get("phone").is_none());
    }
}
