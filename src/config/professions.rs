//! The professions Vigie knows (SPEC §3): those of the *Annuaire Santé*,
//! written as slugs, plus those a CPTS adds with `[directory]
//! extra_professions`. A profession outside both, in the directory or in
//! any selector, is an error that names the nearest known one: a typo
//! (`pharmacienne`, `sage-femme`) must never silently drop somebody from an
//! alert.

/// The professions of the *Annuaire Santé* (health professionals and the
/// social and medico-technical professions a CPTS works with).
pub const KNOWN: &[&str] = &[
    "medecin",
    "pharmacien",
    "chirurgien_dentiste",
    "sage_femme",
    "infirmier",
    "masseur_kinesitherapeute",
    "pedicure_podologue",
    "orthophoniste",
    "orthoptiste",
    "ergotherapeute",
    "psychomotricien",
    "dieteticien",
    "audioprothesiste",
    "opticien_lunetier",
    "manipulateur_radio",
    "technicien_laboratoire",
    "preparateur_pharmacie",
    "psychologue",
    "assistant_social",
    "aide_soignant",
    "auxiliaire_puericulture",
    "ambulancier",
];

/// Whether `name` is a known profession or one of `extra`.
pub fn is_known(name: &str, extra: &[String]) -> bool {
    KNOWN.contains(&name) || extra.iter().any(|e| e == name)
}

/// `Ok` for a known profession; else the message, with the nearest known
/// one when it is close enough to be a typo, and how to add a profession.
pub fn check(name: &str, extra: &[String]) -> Result<(), String> {
    if is_known(name, extra) {
        return Ok(());
    }
    let hint = match nearest(name, extra) {
        Some(n) => format!(": did you mean `{n}`?"),
        None => String::new(),
    };
    Err(format!(
        "unknown profession `{name}`{hint} (professions: {}; a CPTS adds its own with \
         `[directory] extra_professions = [\"{name}\"]` in vigie.toml or a TOML directory)",
        KNOWN
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The known profession closest to `name`, if it is near enough to be
/// what was meant: spelling aside, a feminine form (`pharmacienne`), a
/// hyphen or space for the underscore (`sage-femme`), capitals, accents.
pub fn nearest<'a>(name: &str, extra: &'a [String]) -> Option<&'a str> {
    let plain = fold(name);
    let all: Vec<&str> = KNOWN
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect();
    all.iter()
        .copied()
        // `fold` may give a known one already (`Sage-Femme`).
        .find(|k| *k == plain)
        // Else a near one, or a longer name holding it (`dentiste`).
        .or_else(|| super::diag::closest(&plain, all.iter().copied()))
}

/// Lower case, without accents, `-` and spaces as `_`.
fn fold(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_variants_find_the_profession_meant() {
        let none: Vec<String> = Vec::new();
        assert_eq!(nearest("pharmacienne", &none), Some("pharmacien"));
        assert_eq!(nearest("sage-femme", &none), Some("sage_femme"));
        assert_eq!(nearest("Infirmière", &none), Some("infirmier"));
        assert_eq!(nearest("medecn", &none), Some("medecin"));
        assert_eq!(
            nearest("kinesitherapeute", &none),
            Some("masseur_kinesitherapeute")
        );
        assert_eq!(nearest("dentiste", &none), Some("chirurgien_dentiste"));
        assert_eq!(nearest("coordinatrice", &none), None);
        let extra = vec!["coordinatrice".to_string()];
        assert!(check("coordinatrice", &extra).is_ok());
        assert_eq!(nearest("coordinatrise", &extra), Some("coordinatrice"));
    }

    #[test]
    fn the_message_names_the_nearest_and_how_to_add_one() {
        let e = check("pharmacienne", &[]).unwrap_err();
        assert!(
            e.starts_with("unknown profession `pharmacienne`: did you mean `pharmacien`? (professions: medecin, pharmacien,"),
            "{e}"
        );
        assert!(
            e.ends_with(
                "extra_professions = [\"pharmacienne\"]` in vigie.toml or a TOML directory)"
            ),
            "{e}"
        );
        let e = check("coordinatrice", &[]).unwrap_err();
        assert!(
            e.starts_with("unknown profession `coordinatrice` (professions:"),
            "{e}"
        );
    }
}
