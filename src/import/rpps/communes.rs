//! The communes asked for, and matching an activity's commune label to
//! them: folded comparison, remembered labels, the town of a `Bureau cedex`.

use std::collections::HashMap;

use crate::model::fold;

/// The town of a `Bureau cedex` label: `68800 THANN CEDEX` → `THANN`.
pub(super) fn cedex_town(s: &str) -> &str {
    let s = s.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
    let upper = s.to_ascii_uppercase();
    match upper.rfind(" CEDEX") {
        Some(i) => s[..i].trim(),
        None => s,
    }
}

/// How a commune was given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Given {
    /// A name, folded (`saint amarin`).
    Name(String),
    /// Five characters that read as a code: the INSEE code of a commune
    /// (`68334`, `2A004`) or a postal code (`68800`, which several
    /// communes may share). Matched against both columns.
    Code(String),
}

/// Whether `s` is written as a commune code: five digits, or `2A`/`2B` and
/// three digits (Corsica's INSEE codes).
pub(super) fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && (b.iter().all(u8::is_ascii_digit)
            || (b[0] == b'2'
                && matches!(b[1].to_ascii_uppercase(), b'A' | b'B')
                && b[2..].iter().all(u8::is_ascii_digit)))
}

/// The département of an activity's commune: from its INSEE code (`68`,
/// `2A`, `971` for the overseas ones), else its postal code; empty when
/// neither is known.
pub(super) fn departement(insee: &str, postal: &str) -> String {
    let code = if insee.is_empty() { postal } else { insee };
    if code.len() < 3 {
        return String::new();
    }
    let n = if code.starts_with("97") || code.starts_with("98") {
        3
    } else {
        2
    };
    code[..n].to_ascii_uppercase()
}

/// The given communes, by name (folded comparison) or by code. Labels
/// already seen are remembered (a France-wide extract has some 35,000), so
/// most rows cost one hash lookup.
pub(super) struct Communes {
    given: Vec<(String, Given)>,
    /// Whether any commune was given as a code (else the code columns are
    /// not looked at).
    codes: bool,
    seen: HashMap<String, Option<usize>>,
}

impl Communes {
    pub(super) fn new(given: &[String]) -> Communes {
        let mut list: Vec<(String, Given)> = Vec::new();
        for g in given {
            let g = g.trim();
            let key = if is_code(g) {
                Given::Code(g.to_ascii_uppercase())
            } else {
                Given::Name(fold(g))
            };
            if !list.iter().any(|(_, k)| *k == key) {
                list.push((g.to_string(), key));
            }
        }
        Communes {
            codes: list.iter().any(|(_, k)| matches!(k, Given::Code(_))),
            given: list,
            seen: HashMap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.given.len()
    }

    /// The commune as given on the command line.
    pub(super) fn given(&self, i: usize) -> &str {
        &self.given[i].0
    }

    /// Whether the commune `i` was given by its name (not a code).
    pub(super) fn by_name(&self, i: usize) -> bool {
        matches!(self.given[i].1, Given::Name(_))
    }

    /// The commune an activity is written under, as the directory will say
    /// it: the name given, or for a code the extract's label (`THANN` →
    /// `Thann`).
    pub(super) fn label(&self, i: usize, extract_label: &str) -> String {
        if self.by_name(i) {
            self.given[i].0.clone()
        } else {
            crate::import::title_case(extract_label)
        }
    }

    /// The given commune an activity is in: by its INSEE or postal code
    /// when codes were given, else by its label.
    #[cfg(test)]
    pub(super) fn find(&mut self, label: &str, insee: &str, postal: &str) -> Option<usize> {
        self.find_how(label, insee, postal).map(|(i, _)| i)
    }

    /// [`Communes::find`], and whether a code matched the INSEE column
    /// (`Some(true)`), the postal one (`Some(false)`) or a name (`None`).
    pub(super) fn find_how(
        &mut self,
        label: &str,
        insee: &str,
        postal: &str,
    ) -> Option<(usize, Option<bool>)> {
        if self.codes {
            for (i, (_, k)) in self.given.iter().enumerate() {
                if let Given::Code(c) = k {
                    if !insee.is_empty() && c.eq_ignore_ascii_case(insee) {
                        return Some((i, Some(true)));
                    }
                    if !postal.is_empty() && c == postal {
                        return Some((i, Some(false)));
                    }
                }
            }
        }
        self.find_name(label).map(|i| (i, None))
    }

    fn find_name(&mut self, label: &str) -> Option<usize> {
        if let Some(&hit) = self.seen.get(label) {
            return hit;
        }
        let folded = fold(label);
        let hit = self
            .given
            .iter()
            .position(|(_, k)| *k == Given::Name(folded.clone()));
        if self.seen.len() > 200_000 {
            // Not a real extract (labels without end): stay bounded.
            self.seen.clear();
        }
        self.seen.insert(label.to_string(), hit);
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cedex_labels_give_their_town() {
        assert_eq!(cedex_town("68800 THANN CEDEX"), "THANN");
        assert_eq!(cedex_town("75015 PARIS"), "PARIS");
        assert_eq!(cedex_town("68100 MULHOUSE CEDEX 2"), "MULHOUSE");
        assert_eq!(cedex_town(""), "");
    }

    #[test]
    fn communes_match_whatever_the_case_and_accents() {
        let mut c = Communes::new(&["Saint-Amarin".into(), "Thann".into(), "THANN".into()]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.find("SAINT AMARIN", "", ""), Some(0));
        assert_eq!(c.find("saint-amarin", "", ""), Some(0));
        assert_eq!(c.find("THANN", "", ""), Some(1));
        assert_eq!(c.find("Thannenkirch", "", ""), None);
    }

    #[test]
    fn codes_match_the_insee_or_the_postal_code() {
        let mut c = Communes::new(&["68334".into(), "68550".into(), "2a004".into()]);
        assert_eq!(c.find("THANN", "68334", "68800"), Some(0));
        assert_eq!(c.find("SAINT-AMARIN", "68292", "68550"), Some(1));
        assert_eq!(c.find("AJACCIO", "2A004", "20000"), Some(2));
        assert_eq!(c.find("THANN", "", ""), None, "a name is not a code");
        assert_eq!(c.label(0, "VIEUX-THANN"), "Vieux-Thann");
        assert!(is_code("68334") && is_code("2B033") && !is_code("6833") && !is_code("Thann"));
        assert_eq!(departement("68334", "68800"), "68");
        assert_eq!(departement("", "97110"), "971");
        assert_eq!(departement("2A004", ""), "2A");
    }
}
