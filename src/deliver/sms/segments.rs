//! SMS text as the network counts it, and the SMS of a message (SPEC §14).
//!
//! A message whose every character is in the GSM 03.38 alphabet (basic
//! table, or extension table through an escape: `^ { } \ [ ~ ] | €` and
//! form feed, two septets each) is sent in 7-bit: 160 septets in a single
//! SMS, 153 per segment once concatenated (the user data header takes the
//! rest). Any other character (`ê`, `ç`, `«`, `’`, an emoji) turns the
//! whole message into UCS-2: 70 UTF-16 units in a single SMS, 67 per
//! segment; a character outside the BMP (most emoji) takes two units.
//! Segments are filled greedily without splitting an escape sequence or a
//! surrogate pair, as senders do. Providers bill per segment.
//!
//! So that one `ê` or `’` does not cost a message most of its length,
//! [`compose`] first writes the French typography outside the table with
//! its GSM equivalents ([`to_gsm`]: `ê` → `e`, `ç` → `c`, `’` → `'`,
//! `«` → `"`, `…` → `...`, non-breaking spaces → spaces; `é è à ù ì ò É
//! Ç` are in the table and stay); the text keeps its own characters, in
//! UCS-2, only when something has no equivalent (an emoji, another
//! script).
//!
//! [`compose`] makes the SMS of a message: its body on as few lines as
//! possible, the reply line ("Répondez 1 (disponible) ou 2
//! (indisponible)") and the response link, cut to `max_segments` by
//! cutting the body only: the reply line and the link stay whole.

/// The GSM 03.38 basic table (one septet each), escape excluded.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table (escape + one septet: two each).
const GSM_EXTENSION: &str = "^{}\\[~]|€\x0C";

/// How a message is encoded on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// What a text costs: its encoding, its length in the encoding's units
/// (septets or UTF-16 units) and the number of SMS it is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    pub units: usize,
    pub segments: usize,
}

/// The septets a character takes in GSM 7-bit, `None` if it has none.
fn gsm_septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The GSM equivalent of a character outside the GSM table, if it has a
/// usual one.
fn gsm_equivalent(c: char) -> Option<&'static str> {
    Some(match c {
        'ê' | 'ë' => "e",
        'â' | 'á' | 'ã' => "a",
        'î' | 'ï' | 'í' => "i",
        'ô' | 'ó' | 'õ' => "o",
        'û' | 'ú' => "u",
        'ÿ' => "y",
        'ç' => "c",
        'œ' => "oe",
        'Œ' => "OE",
        'Ê' | 'Ë' | 'È' => "E",
        'Â' | 'À' | 'Á' => "A",
        'Î' | 'Ï' | 'Í' => "I",
        'Ô' | 'Ó' => "O",
        'Û' | 'Ù' | 'Ú' => "U",
        '’' | '‘' | '′' => "'",
        '“' | '”' | '«' | '»' | '„' => "\"",
        '–' | '—' | '‐' | '‑' => "-",
        '…' => "...",
        '\u{a0}' | '\u{202f}' | '\u{2009}' | '\u{2007}' => " ",
        _ => return None,
    })
}

/// `text` with every character outside the GSM table that has a usual
/// equivalent written with it; `None` when something still has no GSM
/// form (an emoji, another script): then the text goes in UCS-2 as it is.
/// French quotes take their inner spaces with them: « X » is written
/// "X", not " X ".
pub fn to_gsm(text: &str) -> Option<String> {
    let is_space = |c: char| matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}');
    let mut out = String::with_capacity(text.len());
    let mut after_open_quote = false;
    for c in text.chars() {
        if after_open_quote && is_space(c) {
            continue;
        }
        after_open_quote = c == '«';
        if c == '»' {
            while out.ends_with(is_space) {
                out.pop();
            }
        }
        if gsm_septets(c).is_some() {
            out.push(c);
        } else {
            out.push_str(gsm_equivalent(c)?);
        }
    }
    Some(out)
}

pub fn encoding(text: &str) -> Encoding {
    if text.chars().all(|c| gsm_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Counts `text` as the network does.
pub fn count(text: &str) -> Count {
    let encoding = encoding(text);
    let cost = |c: char| match encoding {
        Encoding::Gsm7 => gsm_septets(c).unwrap_or(1),
        Encoding::Ucs2 => c.len_utf16(),
    };
    let (single, multi) = match encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    let units: usize = text.chars().map(cost).sum();
    let segments = if units <= single {
        1
    } else {
        // Greedy, never splitting an escape sequence or a surrogate pair.
        let (mut segments, mut used) = (1, 0);
        for c in text.chars() {
            let k = cost(c);
            if used + k > multi {
                segments += 1;
                used = 0;
            }
            used += k;
        }
        segments
    };
    Count {
        encoding,
        units,
        segments,
    }
}

/// "Répondez 1 (disponible) ou 2 (indisponible)": one number per response
/// of the scenario, in order, with its label. Empty without responses.
pub fn reply_line(labels: &[String]) -> String {
    let items: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{} ({})", i + 1, l))
        .collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => format!("Répondez {one}"),
        [rest @ .., last] => format!("Répondez {} ou {last}", rest.join(", ")),
    }
}

/// "Répondez 1 (disponible) ou 2 (indisponible)" for a scenario's
/// `responses`: their labels ("bien_recu" → "bien reçu"), numbered.
pub fn reply_for(responses: &[String]) -> String {
    let labels: Vec<String> = responses
        .iter()
        .map(|r| {
            let l = crate::model::labels::response(r);
            let mut c = l.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => l,
            }
        })
        .collect();
    reply_line(&labels)
}

/// The SMS of a message: `body` on non-empty lines (the link, when the
/// body already has it, taken out: it comes at the end), then
/// `reply` and `link` on lines of their own; cut to `max_segments` by
/// cutting the body (at a space when one is near, with "..." or "…"),
/// never the reply line or the link. If even those do not fit, they are
/// sent alone, whole. Written in GSM 7-bit when [`to_gsm`] can.
pub fn compose(body: &str, reply: &str, link: &str, max_segments: usize) -> String {
    if let (Some(b), Some(r)) = (to_gsm(body), to_gsm(reply))
        && (b != body || r != reply)
    {
        return compose(&b, &r, link, max_segments);
    }
    let body: Vec<&str> = body
        .lines()
        .map(|l| {
            let l = if link.is_empty() { l } else { strip(l, link) };
            l.trim()
        })
        .filter(|l| !l.is_empty())
        .collect();
    let body = body.join("\n");
    let tail: Vec<&str> = [reply, link]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let tail = tail.join("\n");
    let join = |b: &str| -> String {
        match (b.is_empty(), tail.is_empty()) {
            (true, _) => tail.clone(),
            (_, true) => b.to_string(),
            _ => format!("{b}\n{tail}"),
        }
    };
    let max = max_segments.max(1);
    let whole = join(&body);
    if count(&whole).segments <= max {
        return whole;
    }
    let chars: Vec<char> = body.chars().collect();
    let candidate = |k: usize| -> String {
        let head: String = chars[..k].iter().collect();
        let head = head.trim_end();
        if head.is_empty() {
            return tail.clone();
        }
        let ellipsis = if encoding(head) == Encoding::Gsm7 && encoding(&tail) == Encoding::Gsm7 {
            "..."
        } else {
            "…"
        };
        join(&format!("{head}{ellipsis}"))
    };
    let fits = |k: usize| count(&candidate(k)).segments <= max;
    // The longest prefix that fits (binary search: longer never costs
    // fewer segments, but for an encoding change, which it only helps).
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) { lo = mid } else { hi = mid - 1 }
    }
    // Back to the last space when it is near, so no word is cut in two.
    let mut k = lo;
    if let Some(space) = chars[..k].iter().rposition(|c| c.is_whitespace())
        && k - space <= 20
        && k < chars.len()
        && !chars[k].is_whitespace()
    {
        k = space;
    }
    candidate(k)
}

/// `line` without `link` (and a colon left dangling before it).
fn strip<'a>(line: &'a str, link: &str) -> &'a str {
    if !line.contains(link) {
        return line;
    }
    // A line that ends with the link ("… ce lien : URL") keeps what comes
    // before it, without its colon; a link mid-line stays.
    let before = &line[..line.find(link).unwrap_or(0)];
    let rest = &line[line.find(link).map(|i| i + link.len()).unwrap_or(0)..];
    if rest.trim().is_empty() {
        before.trim_end().trim_end_matches(':').trim_end()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gsm_fits_160_per_sms_then_153() {
        let c = count(&"a".repeat(160));
        assert_eq!((c.encoding, c.units, c.segments), (Encoding::Gsm7, 160, 1));
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(306)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn french_letters_of_the_gsm_table_stay_7_bit() {
        let c = count("Vigie: été, à côté"); // ô is not GSM
        assert_eq!(c.encoding, Encoding::Ucs2);
        let c = count("Vigie: été, à Colmar, où ça? Ça va.");
        // lower-case ç is not in the GSM table either
        assert_eq!(c.encoding, Encoding::Ucs2);
        let c = count("Vigie: été, à Colmar, où? Ça va. É è ù ì ò");
        assert_eq!(c.encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_two_septets() {
        let c = count("€[]{}");
        assert_eq!((c.encoding, c.units), (Encoding::Gsm7, 10));
        // 159 plain + one € = 161 septets: two SMS.
        let s = format!("{}€", "a".repeat(159));
        assert_eq!(count(&s).segments, 2);
        let s = format!("{}€", "a".repeat(158));
        assert_eq!(count(&s).segments, 1);
        // Concatenated: an escape sequence is never split across segments.
        let s = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(count(&s).units, 164);
        assert_eq!(count(&s).segments, 2);
    }

    #[test]
    fn a_character_outside_gsm_makes_the_whole_text_ucs2() {
        let c = count(&format!("{}ê", "a".repeat(69)));
        assert_eq!((c.encoding, c.units, c.segments), (Encoding::Ucs2, 70, 1));
        assert_eq!(count(&format!("{}ê", "a".repeat(70))).segments, 2);
        assert_eq!(count(&"ê".repeat(134)).segments, 2);
        assert_eq!(count(&"ê".repeat(135)).segments, 3);
    }

    #[test]
    fn an_emoji_takes_two_ucs2_units() {
        let c = count("🚨");
        assert_eq!((c.encoding, c.units), (Encoding::Ucs2, 2));
        assert_eq!(count(&format!("{}🚨", "a".repeat(68))).segments, 1);
        assert_eq!(count(&format!("{}🚨", "a".repeat(69))).segments, 2);
    }

    #[test]
    fn the_reply_line_numbers_the_responses() {
        let l = reply_line(&["disponible".into(), "indisponible".into()]);
        assert_eq!(l, "Répondez 1 (disponible) ou 2 (indisponible)");
        let l = reply_line(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(l, "Répondez 1 (a), 2 (b) ou 3 (c)");
    }

    #[test]
    fn a_long_body_is_cut_and_the_link_and_reply_line_kept_whole() {
        let link = "https://vigie.example.org/r/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let reply = "Repondez 1 (disponible) ou 2 (indisponible)";
        let body = format!(
            "Bonjour,\n\n{}\n\nVotre lien : {link}\n",
            "mot ".repeat(200)
        );
        let sms = compose(&body, reply, link, 2);
        let c = count(&sms);
        assert!(c.segments <= 2, "{c:?}: {sms}");
        assert!(sms.ends_with(&format!("...\n{reply}\n{link}")), "{sms}");
        assert_eq!(sms.matches(link).count(), 1, "the link once: {sms}");
        assert!(!sms.contains("Votre lien"), "{sms}");
        // As long as it can be: one more word would not fit.
        assert!(c.units > 306 - 10, "{c:?}");
        // Cut at a space, not inside a word.
        assert!(sms.contains("mot..."), "{sms}");
    }

    #[test]
    fn a_short_body_is_sent_whole() {
        let sms = compose(
            "Canicule niveau rouge.\n\n",
            "Repondez 1 (ok)",
            "http://x/r/1",
            1,
        );
        assert_eq!(sms, "Canicule niveau rouge.\nRepondez 1 (ok)\nhttp://x/r/1");
    }

    #[test]
    fn a_ucs2_body_is_cut_to_67_per_segment() {
        let link = "http://v.example/r/abc";
        let sms = compose(&"ж ".repeat(300), "Répondez 1 (oui)", link, 3);
        let c = count(&sms);
        assert_eq!(c.encoding, Encoding::Ucs2);
        assert!(c.segments <= 3 && c.units > 3 * 67 - 5, "{c:?}");
        assert!(
            sms.ends_with("…\nRépondez 1 (oui)\nhttp://v.example/r/abc"),
            "{sms}"
        );
    }

    #[test]
    fn french_typography_is_written_in_gsm_so_the_sms_stays_7_bit() {
        let body =
            "Réunion à l’hôpital : « cellule de crise » – venez… Ça ira, ç’a été dur. Œuvre, fête";
        let sms = compose(body, "Répondez 1 (bien reçu)", "http://x/r/1", 1);
        assert_eq!(
            sms,
            "Réunion à l'hopital : \"cellule de crise\" - venez... Ça ira, c'a été dur. OEuvre, fete\n\
             Répondez 1 (bien recu)\nhttp://x/r/1"
        );
        assert_eq!(count(&sms).encoding, Encoding::Gsm7);
        assert_eq!(count(&sms).segments, 1);
        assert_eq!(to_gsm("a\u{a0}:\u{202f}b").as_deref(), Some("a : b"));
        // Kept in the table: é è à ù ì ò É Ç.
        assert_eq!(to_gsm("éèàùìòÉÇ").as_deref(), Some("éèàùìòÉÇ"));
        // No equivalent: the text stays as it is, in UCS-2.
        assert_eq!(to_gsm("fête 🚨"), None);
        let sms = compose("fête 🚨", "", "", 1);
        assert_eq!(sms, "fête 🚨");
        assert_eq!(count(&sms).encoding, Encoding::Ucs2);
    }
}
