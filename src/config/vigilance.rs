//! Vigilance feeds (SPEC §13): the daemon's `[vigilance]` (which source to
//! poll, for which départements, how often) and a scenario's
//! `[[scenario.trigger]]` (which phenomenon drives it, colour → level,
//! propose or declare). Read into typed values with `file:line:col`
//! diagnostics; polling is `app::vigilance`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diag::Located;
use super::reader::{Ctx, Table};
use crate::model::DurationValue;

/// Météo-France's phenomena: `phenomenon_id` of DPVigilance → the name a
/// plan writes.
pub const PHENOMENA: [(&str, &str); 9] = [
    ("1", "vent"),
    ("2", "pluie-inondation"),
    ("3", "orages"),
    ("4", "crues"),
    ("5", "neige-verglas"),
    ("6", "canicule"),
    ("7", "grand-froid"),
    ("8", "avalanches"),
    ("9", "vagues-submersion"),
];

/// The vigilance colours, `phenomenon_max_color_id` 1 to 4.
pub const COLOURS: [&str; 4] = ["vert", "jaune", "orange", "rouge"];

/// The DPVigilance map in force (overridable by `url`).
pub const METEOFRANCE_URL: &str =
    "https://public-api.meteofrance.fr/public/DPVigilance/v1/cartevigilance/encours";

/// MeteoAlarm's keyless Atom feed for France (overridable by `url`).
pub const METEOALARM_URL: &str = "https://feeds.meteoalarm.org/feeds/meteoalarm-legacy-atom-france";

/// `[vigilance]` of the daemon configuration.
#[derive(Clone, Debug)]
pub struct VigilanceConfig {
    /// `meteofrance` (DPVigilance, JSON, key needed) or `meteoalarm`
    /// (Atom/CAP, keyless).
    pub source: String,
    /// Département codes (`68`, `2A`, `974`).
    pub departements: Vec<String>,
    /// The portal's API key, sent as header `apikey` (looked up in
    /// `$CREDENTIALS_DIRECTORY` first, see `daemon::secret_path`).
    pub api_key_file: Option<PathBuf>,
    pub url: String,
    /// Time between two polls (default 15 minutes).
    pub every: DurationValue,
}

/// `[[scenario.trigger]]`: a vigilance phenomenon that drives a scenario.
#[derive(Clone, Debug)]
pub struct Trigger {
    /// One of [`PHENOMENA`]'s names.
    pub phenomenon: String,
    /// Colour → the scenario's level (colours absent drive nothing).
    pub levels: BTreeMap<String, String>,
    /// `mode = "declare"`: declares upward at once instead of proposing.
    pub declare: bool,
}

impl Trigger {
    /// The event key a declaration from this trigger carries.
    pub fn key(&self) -> String {
        format!("vigilance-{}", self.phenomenon)
    }
}

/// The phenomenon name of a DPVigilance `phenomenon_id`.
pub fn phenomenon_name(id: &str) -> Option<&'static str> {
    PHENOMENA.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Whether `code` is a département code: 01…95 (without 20), 2A, 2B,
/// 971…976.
pub fn is_departement(code: &str) -> bool {
    match code {
        "2A" | "2B" => true,
        _ if code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) => {
            matches!(code.parse::<u32>(), Ok(n) if (1..=95).contains(&n) && n != 20)
        }
        _ if code.len() == 3 => matches!(code.parse::<u32>(), Ok(n) if (971..=976).contains(&n)),
        _ => false,
    }
}

/// Reads `[vigilance]`.
pub(crate) fn read_vigilance(
    ctx: &Ctx<'_>,
    t: Table<'_, '_>,
    base: &Path,
) -> Option<VigilanceConfig> {
    let source = match t.str("source") {
        None => Some("meteofrance".to_string()),
        Some(s) if s.value == "meteofrance" || s.value == "meteoalarm" => Some(s.value),
        Some(s) => {
            ctx.error(
                &s.loc,
                format!(
                    "unknown vigilance source \"{}\": \"meteofrance\" or \"meteoalarm\"",
                    s.value
                ),
            );
            None
        }
    };
    let departements = t.req_str_list("departements").and_then(|list| {
        let mut ok = !list.is_empty();
        if list.is_empty() {
            ctx.error(&t.loc(), "`departements` of [vigilance] is empty");
        }
        for d in &list {
            if !is_departement(&d.value) {
                ctx.error(
                    &d.loc,
                    format!(
                        "unknown département \"{}\": a code such as \"68\", \"2A\" or \"974\"",
                        d.value
                    ),
                );
                ok = false;
            }
        }
        ok.then(|| list.into_iter().map(|d| d.value).collect::<Vec<_>>())
    });
    let api_key_file = t.str("api_key_file").map(|s| {
        if source.as_deref() == Some("meteoalarm") {
            ctx.warning(
                &s.loc,
                "`api_key_file` is not used by source \"meteoalarm\" (its feed needs no key)",
            );
        }
        let p = super::daemon::resolve(base, &s);
        if !super::daemon::secret_path(&p).exists() {
            ctx.warning(
                &s.loc,
                format!(
                    "secret file {} not found (nor in $CREDENTIALS_DIRECTORY): the vigilance polls will fail",
                    p.display()
                ),
            );
        }
        p
    });
    if api_key_file.is_none() && source.as_deref() == Some("meteofrance") {
        ctx.error(
            &t.loc(),
            "missing required key `api_key_file` in [vigilance] (the Météo-France portal's API key)",
        );
    }
    let url = if t.has("url") {
        super::daemon::read_http_url(ctx, &t, "vigilance", super::daemon::redact_url)
    } else if source.as_deref() == Some("meteoalarm") {
        Some(METEOALARM_URL.to_string())
    } else {
        Some(METEOFRANCE_URL.to_string())
    };
    let every = t.every(std::time::Duration::from_secs(15 * 60));
    t.finish();
    // MeteoAlarm is keyless: a key named anyway is never sent.
    let api_key_file = api_key_file.filter(|_| source.as_deref() != Some("meteoalarm"));
    Some(VigilanceConfig {
        source: source?,
        departements: departements?,
        api_key_file,
        url: url?,
        every: every?,
    })
}

/// Reads one `[[scenario.trigger]]` of a scenario with these `levels`.
pub(crate) fn read_trigger(
    ctx: &Ctx<'_>,
    t: Table<'_, '_>,
    levels: &[Located<String>],
) -> Option<Trigger> {
    let names: Vec<&str> = PHENOMENA.iter().map(|(_, n)| *n).collect();
    let phenomenon = t.req_str("phenomenon").and_then(|p| {
        if names.contains(&p.value.as_str()) {
            Some(p.value)
        } else {
            ctx.error(
                &p.loc,
                format!(
                    "unknown phenomenon \"{}\": one of {}",
                    p.value,
                    names.join(", ")
                ),
            );
            None
        }
    });
    let mut map = Some(BTreeMap::new());
    match t.req_table("levels") {
        None => map = None,
        Some(lt) => {
            for colour in COLOURS {
                let Some(level) = lt.str(colour) else {
                    continue;
                };
                if colour == "vert" {
                    ctx.error(
                        &level.loc,
                        "vert cannot drive a level: back to vert, Vigie proposes to resolve",
                    );
                    map = None;
                } else if !levels.iter().any(|l| l.value == level.value) {
                    let known: Vec<&str> = levels.iter().map(|l| l.value.as_str()).collect();
                    ctx.error(
                        &level.loc,
                        format!(
                            "level \"{}\" is not a level of this scenario ({})",
                            level.value,
                            if known.is_empty() {
                                "it has none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                    map = None;
                } else if let Some(m) = map.as_mut() {
                    m.insert(colour.to_string(), level.value);
                }
            }
            lt.finish();
        }
    }
    let declare = match t.str("mode") {
        None => Some(false),
        Some(m) if m.value == "propose" => Some(false),
        Some(m) if m.value == "declare" => Some(true),
        Some(m) => {
            ctx.error(
                &m.loc,
                format!("unknown mode \"{}\": \"propose\" or \"declare\"", m.value),
            );
            None
        }
    };
    t.finish();
    Some(Trigger {
        phenomenon: phenomenon?,
        levels: map?,
        declare: declare?,
    })
}

#[cfg(test)]
mod tests {
    use super::is_departement;

    #[test]
    fn departement_codes() {
        for ok in ["01", "68", "95", "2A", "2B", "971", "976"] {
            assert!(is_departement(ok), "{ok}");
        }
        for bad in ["1", "00", "20", "96", "2C", "970", "977", "068", ""] {
            assert!(!is_departement(bad), "{bad}");
        }
    }
}
