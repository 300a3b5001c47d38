//! A Météo-France DPVigilance map (`cartevigilance/encours`, JSON) read
//! into the colours of today (`J`) and tomorrow (`J1`) per département and
//! phenomenon. Fields not used are ignored (the feed adds some); what is
//! missing or of the wrong type makes the map refused as a whole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::vigilance::{COLOURS, phenomenon_name};

/// Today's and tomorrow's colour of one phenomenon in one département.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Colours {
    /// `vert` … `rouge`.
    pub today: String,
    /// Tomorrow's (shown as "demain", never proposed on).
    pub tomorrow: Option<String>,
}

/// The colours a bulletin gives for the départements asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VigilanceMap {
    /// The bulletin's `product.update_time`.
    pub update_time: DateTime<Utc>,
    /// (département, phenomenon name) → colours.
    pub colours: BTreeMap<(String, String), Colours>,
}

/// Reads a DPVigilance answer, keeping only `departements`.
pub fn parse_dpvigilance(body: &str, departements: &[String]) -> Result<VigilanceMap, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "réponse JSON illisible (ligne {}, colonne {})",
            e.line(),
            e.column()
        )
    })?;
    let product = v.get("product").ok_or("champ « product » absent")?;
    let update = product
        .get("update_time")
        .and_then(Value::as_str)
        .ok_or("champ « product.update_time » absent")?;
    let update_time = DateTime::parse_from_rfc3339(update)
        .map_err(|_| format!("update_time « {update} » n'est pas une date"))?
        .with_timezone(&Utc);
    let periods = product
        .get("periods")
        .and_then(Value::as_array)
        .ok_or("champ « product.periods » absent")?;
    let mut colours: BTreeMap<(String, String), Colours> = BTreeMap::new();
    let mut saw_today = false;
    // The départements today's period gives: one left out is not vert.
    let mut given_today: Vec<&str> = Vec::new();
    for p in periods {
        let echeance = p
            .get("echeance")
            .and_then(Value::as_str)
            .ok_or("période sans « echeance »")?;
        let today = match echeance {
            "J" => true,
            "J1" => false,
            _ => continue,
        };
        saw_today |= today;
        let domains = p
            .get("timelaps")
            .and_then(|t| t.get("domain_ids"))
            .and_then(Value::as_array)
            .ok_or("période sans « timelaps.domain_ids »")?;
        for d in domains {
            let id = d
                .get("domain_id")
                .and_then(Value::as_str)
                .ok_or("domaine sans « domain_id »")?;
            if !departements.iter().any(|x| x == id) {
                continue;
            }
            if today {
                given_today.push(id);
            }
            let items = d
                .get("phenomenon_items")
                .and_then(Value::as_array)
                .ok_or("domaine sans « phenomenon_items »")?;
            for it in items {
                let pid = match it.get("phenomenon_id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return Err("phénomène sans « phenomenon_id »".into()),
                };
                let Some(name) = phenomenon_name(&pid) else {
                    continue;
                };
                let c = it
                    .get("phenomenon_max_color_id")
                    .and_then(Value::as_u64)
                    .filter(|c| (1..=4).contains(c))
                    .ok_or("« phenomenon_max_color_id » absent ou hors de 1 à 4")?;
                let colour = COLOURS[(c - 1) as usize].to_string();
                let e = colours
                    .entry((id.to_string(), name.to_string()))
                    .or_insert(Colours {
                        today: "vert".into(),
                        tomorrow: None,
                    });
                if today {
                    e.today = colour;
                } else {
                    e.tomorrow = Some(colour);
                }
            }
        }
    }
    if !saw_today {
        return Err("aucune période « J » (aujourd'hui) dans la carte".into());
    }
    if let Some(d) = departements
        .iter()
        .find(|d| !given_today.contains(&d.as_str()))
    {
        return Err(format!(
            "la carte d'aujourd'hui ne donne pas le département {d}"
        ));
    }
    Ok(VigilanceMap {
        update_time,
        colours,
    })
}

/// The rank of a colour (vert 0 … rouge 3).
pub fn rank(colour: &str) -> usize {
    COLOURS.iter().position(|c| *c == colour).unwrap_or(0)
}

impl VigilanceMap {
    /// The colours as JSON, to keep the map across restarts.
    pub fn colours_json(&self) -> String {
        let rows: Vec<(&str, &str, &str, Option<&str>)> = self
            .colours
            .iter()
            .map(|((d, p), c)| {
                (
                    d.as_str(),
                    p.as_str(),
                    c.today.as_str(),
                    c.tomorrow.as_deref(),
                )
            })
            .collect();
        serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
    }

    /// A map kept by [`VigilanceMap::colours_json`]; `None` when unreadable.
    pub fn from_kept(update_time: DateTime<Utc>, colours: &str) -> Option<VigilanceMap> {
        let rows: Vec<(String, String, String, Option<String>)> =
            serde_json::from_str(colours).ok()?;
        Some(VigilanceMap {
            update_time,
            colours: rows
                .into_iter()
                .map(|(d, p, today, tomorrow)| ((d, p), Colours { today, tomorrow }))
                .collect(),
        })
    }
}
