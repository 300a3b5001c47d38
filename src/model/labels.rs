//! What a coordinator reads for the engine's words, in French: event and
//! delivery states, counts that agree with their number, durations. One
//! place, so that the command line and the pages say the same thing.

use std::time::Duration;

/// A response as people read it: "bien_recu" → "Bien reçu",
/// "pris_en_charge" → "Pris en charge" (the response page, the SMS).
pub fn response(r: &str) -> String {
    let words: Vec<&str> = r
        .split('_')
        .map(|w| match w {
            "recu" => "reçu",
            "recue" => "reçue",
            "deja" => "déjà",
            "a" => "à",
            w => w,
        })
        .collect();
    let s = words.join(" ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// An event state as the API writes it (`active`, …), in French.
pub fn event_state(s: &str) -> &str {
    match s {
        "active" => "En cours",
        "acknowledged" => "Pris en charge",
        "exhausted" => "Sans réponse suffisante",
        "resolved" => "Terminé",
        other => other,
    }
}

/// A delivery state as the API writes it (`sent`, …), in French: "envoyé".
pub fn delivery_state(state: &str) -> &str {
    delivery_forms(state).0
}

/// A delivery state as the API writes it (`sent`, …), in French, agreeing
/// with `n`: "1 envoyé", "7 envoyés", "2 échecs".
pub fn deliveries(n: u64, state: &str) -> String {
    let (one, many) = delivery_forms(state);
    count(n, one, many)
}

/// (singular, plural) of a delivery state.
fn delivery_forms(state: &str) -> (&str, &str) {
    match state {
        "pending" => ("en attente", "en attente"),
        "sending" => ("en cours d'envoi", "en cours d'envoi"),
        "sent" => ("envoyé", "envoyés"),
        "retrying" => ("nouvel essai prévu", "nouveaux essais prévus"),
        "failed" => ("échec", "échecs"),
        "skipped" => ("non envoyé", "non envoyés"),
        "cancelled" => ("annulé", "annulés"),
        other => (other, other),
    }
}

/// A profession slug of the directory as people write it, singular and
/// plural: `masseur_kinesitherapeute` → ("masseur-kinésithérapeute",
/// "masseurs-kinésithérapeutes"). One the CPTS added
/// (`extra_professions`) is its slug with spaces, plural with an `s`.
pub fn profession(slug: &str) -> (String, String) {
    let known: &[(&str, &str, &str)] = &[
        ("medecin", "médecin", "médecins"),
        ("pharmacien", "pharmacien", "pharmaciens"),
        (
            "chirurgien_dentiste",
            "chirurgien-dentiste",
            "chirurgiens-dentistes",
        ),
        ("sage_femme", "sage-femme", "sages-femmes"),
        ("infirmier", "infirmier", "infirmiers"),
        (
            "masseur_kinesitherapeute",
            "masseur-kinésithérapeute",
            "masseurs-kinésithérapeutes",
        ),
        (
            "pedicure_podologue",
            "pédicure-podologue",
            "pédicures-podologues",
        ),
        ("orthophoniste", "orthophoniste", "orthophonistes"),
        ("orthoptiste", "orthoptiste", "orthoptistes"),
        ("ergotherapeute", "ergothérapeute", "ergothérapeutes"),
        ("psychomotricien", "psychomotricien", "psychomotriciens"),
        ("dieteticien", "diététicien", "diététiciens"),
        ("audioprothesiste", "audioprothésiste", "audioprothésistes"),
        (
            "opticien_lunetier",
            "opticien-lunetier",
            "opticiens-lunetiers",
        ),
        (
            "manipulateur_radio",
            "manipulateur en radiologie",
            "manipulateurs en radiologie",
        ),
        (
            "technicien_laboratoire",
            "technicien de laboratoire",
            "techniciens de laboratoire",
        ),
        (
            "preparateur_pharmacie",
            "préparateur en pharmacie",
            "préparateurs en pharmacie",
        ),
        ("psychologue", "psychologue", "psychologues"),
        ("assistant_social", "assistant social", "assistants sociaux"),
        ("aide_soignant", "aide-soignant", "aides-soignants"),
        (
            "auxiliaire_puericulture",
            "auxiliaire de puériculture",
            "auxiliaires de puériculture",
        ),
        ("ambulancier", "ambulancier", "ambulanciers"),
    ];
    match known.iter().find(|(s, _, _)| *s == slug) {
        Some((_, one, many)) => (one.to_string(), many.to_string()),
        None => {
            let one = slug.replace('_', " ");
            let many = format!("{one}s");
            (one, many)
        }
    }
}

/// `n` and its noun, agreeing as in French, where 0 and 1 take the
/// singular: "0 envoi", "1 envoi", "2 envois".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n <= 1 { one } else { many })
}

/// A duration as people write it: "45 min", "1 h", "1 h 30 min", "2 j",
/// "1 min 30 s".
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} j"));
    }
    match (h, m) {
        (0, 0) => {}
        (0, m) => parts.push(format!("{m} min")),
        (h, 0) => parts.push(format!("{h} h")),
        (h, m) => parts.push(format!("{h} h {m} min")),
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec} s"));
    }
    parts.join(" ")
}

/// An audience name of a plan as a title: "medecin_de_garde" →
/// "Médecin de garde", "referents, bureau" → "Référents, bureau". Plans
/// name audiences with slugs and give them no title.
pub fn audience(names: &str) -> String {
    let word = |w: &str| -> String {
        match w {
            "a" => "à".into(),
            "medecin" => "médecin".into(),
            "medecins" => "médecins".into(),
            "referent" => "référent".into(),
            "referents" => "référents".into(),
            "equipe" => "équipe".into(),
            "equipes" => "équipes".into(),
            "vallee" => "vallée".into(),
            "elus" => "élus".into(),
            "sante" => "santé".into(),
            "pdsa" | "snp" | "msp" | "cpts" | "idel" | "ehpad" | "ars" | "samu" => w.to_uppercase(),
            w => w.into(),
        }
    };
    let out = names
        .split(',')
        .map(|part| {
            part.trim()
                .split('_')
                .filter(|w| !w.is_empty())
                .map(word)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut c = out.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_as_french() {
        assert_eq!(deliveries(1, "sent"), "1 envoyé");
        assert_eq!(deliveries(7, "sent"), "7 envoyés");
        assert_eq!(deliveries(2, "failed"), "2 échecs");
        assert_eq!(deliveries(3, "retrying"), "3 nouveaux essais prévus");
        assert_eq!(deliveries(4, "pending"), "4 en attente");
        assert_eq!(count(0, "envoi", "envois"), "0 envoi");
        assert_eq!(count(1, "envoi", "envois"), "1 envoi");
        assert_eq!(count(2, "envoi", "envois"), "2 envois");
        assert_eq!(duration(Duration::from_secs(3600)), "1 h");
        assert_eq!(duration(Duration::from_secs(5400)), "1 h 30 min");
        assert_eq!(duration(Duration::from_secs(900)), "15 min");
        assert_eq!(duration(Duration::from_secs(90)), "1 min 30 s");
        assert_eq!(duration(Duration::from_secs(2 * 86_400)), "2 j");
        assert_eq!(event_state("exhausted"), "Sans réponse suffisante");
        assert_eq!(profession("sage_femme").1, "sages-femmes");
        assert_eq!(profession("coordinatrice").0, "coordinatrice");
        // Every profession the directory knows has its French words.
        for slug in crate::config::professions::KNOWN {
            assert!(!profession(slug).0.contains('_'), "{slug}");
        }
    }
}
