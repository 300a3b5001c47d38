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

/// The given communes, matched by their folded label. Labels already seen
/// are remembered (a France-wide extract has some 35,000), so most rows cost
/// one hash lookup.
pub(super) struct Communes {
    given: Vec<(String, String)>,
    seen: HashMap<String, Option<usize>>,
}

impl Communes {
    pub(super) fn new(given: &[String]) -> Communes {
        let mut list: Vec<(String, String)> = Vec::new();
        for g in given {
            let folded = fold(g);
            if !list.iter().any(|(_, f)| *f == folded) {
                list.push((g.trim().to_string(), folded));
            }
        }
        Communes {
            given: list,
            seen: HashMap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.given.len()
    }

    pub(super) fn given(&self, i: usize) -> &str {
        &self.given[i].0
    }

    pub(super) fn find(&mut self, label: &str) -> Option<usize> {
        if let Some(&hit) = self.seen.get(label) {
            return hit;
        }
        let folded = fold(label);
        let hit = self.given.iter().position(|(_, f)| *f == folded);
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
        assert_eq!(c.find("SAINT AMARIN"), Some(0));
        assert_eq!(c.find("saint-amarin"), Some(0));
        assert_eq!(c.find("THANN"), Some(1));
        assert_eq!(c.find("Thannenkirch"), None);
    }
}
