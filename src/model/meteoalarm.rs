//! MeteoAlarm's keyless Atom feed (`meteoalarm-legacy-atom-france`, CAP
//! 1.2 fields in each `<entry>`) read into the same colours per
//! département and phenomenon as a DPVigilance map.
//!
//! - Département: a `cap:geocode` whose `valueName` is `EMMA_ID` and whose
//!   `value` is `FR` + the code, with or without a leading zero (`FR68`,
//!   `FR068`, `FR2A`, `FR02A`, `FR974`). Other geocodes (NUTS3…) are not
//!   read: an entry without an EMMA_ID of a département asked for is
//!   ignored.
//! - Phenomenon: the `awareness_type` parameter (else `cap:event`), by its
//!   words rather than its number (MeteoAlarm's numbering has changed):
//!   "low temperature" grand-froid, "high temperature" canicule,
//!   "rain-flood" / "rain" pluie-inondation, "flood" crues, "snow" / "ice"
//!   neige-verglas, "thunderstorm" orages, "wind" vent, "avalanche"
//!   avalanches, "coastal" vagues-submersion; others (fog, forest fire) are
//!   ignored.
//! - Colour: `cap:severity` Minor vert, Moderate jaune, Severe orange,
//!   Extreme rouge (Unknown: ignored).
//! - When: an entry expired (`cap:expires`) is ignored; one whose
//!   `cap:onset` (else `cap:effective`) falls today or before, in the
//!   daemon's time zone, counts for today; one that starts tomorrow or
//!   lasts into it counts for tomorrow ("demain"). Entries not `Actual` or
//!   of message type Cancel are ignored.
//! - The bulletin's time is the feed's `<updated>`.
//!
//! Malformed XML, a root other than `<feed>`, a missing `<updated>`, or a
//! followed entry without a severity or a start date refuse the feed whole.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use roxmltree::Node;

use crate::config::vigilance::is_departement;
use crate::model::vigilance::{Colours, VigilanceMap, rank};

/// The département code of an EMMA_ID such as `FR068` or `FR68`.
pub fn departement_of_emma(value: &str) -> Option<String> {
    let v = value.trim().to_ascii_uppercase();
    let code = v.strip_prefix("FR")?;
    if is_departement(code) {
        return Some(code.to_string());
    }
    let short = code.strip_prefix('0')?;
    (code.len() == 3 && is_departement(short)).then(|| short.to_string())
}

/// The phenomenon a MeteoAlarm awareness type (or event name) tells.
pub fn phenomenon_of(text: &str) -> Option<&'static str> {
    let t = text.to_lowercase().replace('-', " ");
    let has = |w: &str| t.contains(w);
    Some(if has("low temperature") {
        "grand-froid"
    } else if has("high temperature") {
        "canicule"
    } else if has("rain flood") || has("rain") {
        "pluie-inondation"
    } else if has("flood") {
        "crues"
    } else if has("snow") || has("ice") {
        "neige-verglas"
    } else if has("thunderstorm") {
        "orages"
    } else if has("wind") {
        "vent"
    } else if has("avalanche") {
        "avalanches"
    } else if has("coastal") {
        "vagues-submersion"
    } else {
        return None;
    })
}

fn child<'a>(n: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of<'a>(n: Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(n, name).and_then(|c| c.text()).map(str::trim)
}

/// `valueName` / `value` pairs of the children named `name`.
fn pairs<'a>(n: Node<'a, 'a>, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
        .filter_map(|c| Some((text_of(c, "valueName")?, text_of(c, "value")?)))
}

fn date(s: &str, what: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| format!("{what} « {s} » n'est pas une date"))
}

/// Reads a MeteoAlarm Atom feed, keeping only `departements`, today and
/// tomorrow being those of `now` in `tz`.
pub fn parse_meteoalarm(
    body: &str,
    departements: &[String],
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<VigilanceMap, String> {
    let doc = roxmltree::Document::parse(body).map_err(|e| {
        let p = e.pos();
        format!("réponse XML illisible (ligne {}, colonne {})", p.row, p.col)
    })?;
    let feed = doc.root_element();
    if feed.tag_name().name() != "feed" {
        return Err(format!(
            "ce n'est pas un flux Atom (élément racine « {} »)",
            feed.tag_name().name()
        ));
    }
    let updated = text_of(feed, "updated").ok_or("champ « updated » du flux absent")?;
    let update_time = date(updated, "updated")?;
    let today = now.with_timezone(&tz).date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    let tomorrow_start = start_of(tz, tomorrow);
    let mut colours: BTreeMap<(String, String), Colours> = BTreeMap::new();
    for entry in feed
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "entry")
    {
        let id = text_of(entry, "identifier")
            .or_else(|| text_of(entry, "id"))
            .unwrap_or("?");
        if text_of(entry, "status").is_some_and(|s| !s.eq_ignore_ascii_case("Actual"))
            || text_of(entry, "message_type")
                .or_else(|| text_of(entry, "msgType"))
                .is_some_and(|s| s.eq_ignore_ascii_case("Cancel"))
        {
            continue;
        }
        let mut depts: Vec<String> = pairs(entry, "geocode")
            .filter(|(n, _)| n.eq_ignore_ascii_case("EMMA_ID"))
            .filter_map(|(_, v)| departement_of_emma(v))
            .filter(|d| departements.contains(d))
            .collect();
        depts.dedup();
        if depts.is_empty() {
            continue;
        }
        let awareness = pairs(entry, "parameter")
            .find(|(n, _)| n.eq_ignore_ascii_case("awareness_type"))
            .map(|(_, v)| v);
        let Some(phenomenon) = awareness
            .or_else(|| text_of(entry, "event"))
            .and_then(phenomenon_of)
        else {
            continue;
        };
        let severity = text_of(entry, "severity")
            .ok_or_else(|| format!("entrée « {id} » sans « cap:severity »"))?;
        let colour = match severity {
            "Minor" => "vert",
            "Moderate" => "jaune",
            "Severe" => "orange",
            "Extreme" => "rouge",
            "Unknown" => continue,
            other => {
                return Err(format!(
                    "entrée « {id} » : sévérité « {other} » inconnue (Minor, Moderate, Severe, Extreme)"
                ));
            }
        };
        let onset = text_of(entry, "onset")
            .or_else(|| text_of(entry, "effective"))
            .ok_or_else(|| format!("entrée « {id} » sans « cap:onset » ni « cap:effective »"))?;
        let onset = date(onset, "cap:onset")?;
        let expires = text_of(entry, "expires")
            .map(|e| date(e, "cap:expires"))
            .transpose()?;
        if expires.is_some_and(|e| e <= now) {
            continue;
        }
        let day = onset.with_timezone(&tz).date_naive();
        let for_today = day <= today;
        let for_tomorrow = day <= tomorrow && expires.is_none_or(|e| e > tomorrow_start);
        if !for_today && !for_tomorrow {
            continue;
        }
        for d in &depts {
            let e = colours
                .entry((d.clone(), phenomenon.to_string()))
                .or_insert(Colours {
                    today: "vert".into(),
                    tomorrow: None,
                });
            if for_today && rank(colour) > rank(&e.today) {
                e.today = colour.to_string();
            }
            if for_tomorrow && e.tomorrow.as_deref().is_none_or(|t| rank(colour) > rank(t)) {
                e.tomorrow = Some(colour.to_string());
            }
        }
    }
    Ok(VigilanceMap {
        update_time,
        colours,
    })
}

/// Midnight of `day` in `tz` (the first such instant on a DST change).
fn start_of(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

#[cfg(test)]
mod tests {
    use super::{departement_of_emma, phenomenon_of};

    #[test]
    fn emma_ids_and_awareness_types() {
        for (v, d) in [
            ("FR068", "68"),
            ("FR68", "68"),
            ("fr2a", "2A"),
            ("FR02B", "2B"),
            ("FR974", "974"),
        ] {
            assert_eq!(departement_of_emma(v).as_deref(), Some(d), "{v}");
        }
        for bad in ["DE068", "FR", "FR020", "FR0068", "FRF12", "FR00"] {
            assert_eq!(departement_of_emma(bad), None, "{bad}");
        }
        for (t, p) in [
            ("2; extreme high temperature", Some("canicule")),
            ("3; extreme low temperature", Some("grand-froid")),
            ("5; high-temperature", Some("canicule")),
            ("6; low-temperature", Some("grand-froid")),
            ("13; rain-flood", Some("pluie-inondation")),
            ("12; flooding", Some("crues")),
            ("2; snow-ice", Some("neige-verglas")),
            ("3; Thunderstorm", Some("orages")),
            ("1; Wind", Some("vent")),
            ("4; fog", None),
            ("8; forest-fire", None),
        ] {
            assert_eq!(phenomenon_of(t), p, "{t}");
        }
    }
}
