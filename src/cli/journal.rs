//! `vigie log ID ["TEXT"]` and `vigie report ID [--json]` (SPEC §12),
//! through the daemon's API: the main courante, an operator's note, the
//! RETEX report as text (or the API's JSON).

use std::io::Write;

use serde_json::Value;

use super::ApiArgs;
use super::client::local_time;
use super::events::api_command;
use crate::model::labels::{self, count};

/// `vigie log ID`: prints the main courante; `vigie log ID "TEXT"`: adds a
/// note; with `--corrects N`, a correction of entry N.
pub fn log(
    path: &std::path::Path,
    id: &str,
    text: Option<String>,
    corrects: Option<i64>,
    api: &ApiArgs,
) -> i32 {
    match text {
        Some(text) => api_command(
            path,
            api,
            reqwest::Method::POST,
            format!("/api/v1/events/{id}/log"),
            Some(match corrects {
                Some(n) => serde_json::json!({ "text": text, "corrects": n }),
                None => serde_json::json!({ "text": text }),
            }),
            move |out, _, v, _| {
                let what = match corrects {
                    Some(n) => format!("correction de l'entrée n° {n}"),
                    None => "entrée".to_string(),
                };
                let _ = writeln!(
                    out,
                    "{what} (n° {}) ajoutée à la main courante de l'événement {id}",
                    v["id"]
                );
            },
        ),
        None => api_command(
            path,
            api,
            reqwest::Method::GET,
            format!("/api/v1/events/{id}/log"),
            None,
            |out, _, v, tz| {
                print_log(
                    out,
                    v["entries"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                    tz,
                )
            },
        ),
    }
}

/// One line per entry, oldest first: number, time, author, text; a
/// correction names the entry it corrects.
pub fn print_log(out: &mut dyn Write, entries: &[Value], tz: chrono_tz::Tz) {
    if entries.is_empty() {
        let _ = writeln!(out, "main courante vide");
    }
    for e in entries {
        let corrects = match e["corrects"].as_i64() {
            Some(n) => format!(" [corrige n° {n}]"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "n° {:<4} {}  {}{corrects} — {}",
            e["id"],
            local_time(e["at"].as_str().unwrap_or(""), tz, false),
            e["author"].as_str().unwrap_or("?"),
            e["text"].as_str().unwrap_or("")
        );
    }
}

/// `vigie report ID`.
pub fn report(path: &std::path::Path, id: &str, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::GET,
        format!("/api/v1/events/{id}/report"),
        None,
        print_report,
    )
}

fn secs(v: &Value) -> String {
    match v.as_i64() {
        Some(s) => labels::duration(std::time::Duration::from_secs(s.max(0) as u64)),
        None => "non atteint".to_string(),
    }
}

fn print_report(out: &mut dyn Write, _status: u16, r: &Value, tz: chrono_tz::Tz) {
    let t = |v: &Value| local_time(v.as_str().unwrap_or(""), tz, false);
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let _ = writeln!(
        out,
        "Retour d'expérience — événement {} : {}{}",
        r["id"],
        s(&r["title"]),
        if r["exercise"].as_bool() == Some(true) {
            " (EXERCICE)"
        } else {
            " (alerte réelle)"
        }
    );
    let _ = writeln!(
        out,
        "Scénario {}, plan {} version {}",
        s(&r["scenario"]),
        s(&r["plan_id"]),
        s(&r["plan_version"])
    );
    let resolved = if r["resolved_at"].is_null() {
        "pas encore levé".to_string()
    } else {
        format!("levé le {}", t(&r["resolved_at"]))
    };
    let _ = writeln!(
        out,
        "Déclenché le {}, {resolved} ; durée {}",
        t(&r["declared_at"]),
        secs(&r["duration_secs"])
    );
    let list = |k: &str| r[k].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\nNiveaux :");
    for l in list("levels") {
        let _ = writeln!(
            out,
            "  {} depuis le {}",
            l["level"].as_str().unwrap_or("—"),
            t(&l["at"])
        );
    }
    let _ = writeln!(out, "\nPaliers :");
    if list("tiers").is_empty() {
        let _ = writeln!(out, "  aucun palier alerté");
    }
    for p in list("tiers") {
        let _ = writeln!(
            out,
            "  palier {} (tour {}, {}) alerté le {} : {}, {}, {} ; quorum {} {}",
            p["tier"],
            p["round"],
            labels::audience(&s(&p["audience"])),
            t(&p["notified_at"]),
            count(
                p["recipients"].as_u64().unwrap_or(0),
                "destinataire",
                "destinataires"
            ),
            count(p["answers"].as_u64().unwrap_or(0), "réponse", "réponses"),
            count(p["positive"].as_u64().unwrap_or(0), "positive", "positives"),
            p["quorum"],
            match p["time_to_quorum_secs"].as_i64() {
                Some(_) => format!("atteint en {}", secs(&p["time_to_quorum_secs"])),
                None => "non atteint pendant ce palier".to_string(),
            }
        );
    }
    let _ = writeln!(out, "\nCanaux :");
    for c in list("channels") {
        let first = match c["first_after_secs"].as_i64() {
            Some(_) => format!(
                " ; premier envoi après {}, dernier après {}",
                secs(&c["first_after_secs"]),
                secs(&c["last_after_secs"])
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {} : {}, {}, {}{first}",
            crate::engine::journal::channel_name(c["channel"].as_str().unwrap_or("?")),
            labels::deliveries(c["sent"].as_u64().unwrap_or(0), "sent"),
            labels::deliveries(c["failed"].as_u64().unwrap_or(0), "failed"),
            labels::deliveries(c["skipped"].as_u64().unwrap_or(0), "skipped"),
        );
    }
    let answers = list("answers");
    if let Some(last) = answers.last() {
        let _ = writeln!(
            out,
            "\nRéponses : {} au total, dont {} (dernière le {})",
            last["answers"],
            count(
                last["positive"].as_u64().unwrap_or(0),
                "positive",
                "positives"
            ),
            t(&last["at"])
        );
    }
    let _ = writeln!(out, "\nQui vient :");
    if list("coming").is_empty() {
        let _ = writeln!(out, "  personne n'a répondu positivement");
    }
    for c in list("coming") {
        let by = match c["tier"].as_u64() {
            Some(t) => format!("palier {t}"),
            None => format!("diffusion {}", labels::audience(&s(&c["audience"]))),
        };
        let when = match c["eta_minutes"].as_u64() {
            Some(m) => format!(
                "arrivée prévue le {} (délai annoncé {})",
                t(&c["expected_at"]),
                labels::duration(std::time::Duration::from_secs(m * 60))
            ),
            None => "sans délai annoncé".to_string(),
        };
        let comment = match c["comment"].as_str() {
            Some(x) => format!(" — « {x} »"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {} ({by}) : {} le {}, {when}{comment}",
            s(&c["name"]),
            labels::response(c["response"].as_str().unwrap_or("")).to_lowercase(),
            t(&c["answered_at"]),
        );
    }
    let _ = writeln!(out, "\nActions :");
    if list("actions").is_empty() {
        let _ = writeln!(out, "  aucune action prévue");
    }
    for a in list("actions") {
        let late = || secs(&a["late_secs"]);
        let status = match (a["status"].as_str(), a["late_secs"].is_null()) {
            (Some("on_time"), _) => {
                format!("faite le {} par {}", t(&a["done_at"]), s(&a["done_by"]))
            }
            (Some("late"), _) => format!(
                "faite le {} par {}, en retard de {}",
                t(&a["done_at"]),
                s(&a["done_by"]),
                late()
            ),
            (_, false) => format!("NON FAITE, en retard de {}", late()),
            (_, true) => "non faite".to_string(),
        };
        let due = match a["due_at"].as_str() {
            Some(_) => format!(" (prévue pour le {})", t(&a["due_at"])),
            None => String::new(),
        };
        let _ = writeln!(out, "  n° {} {}{due} : {status}", a["n"], s(&a["title"]));
    }
    let _ = writeln!(out, "\nMain courante :");
    print_log(out, &list("log"), tz);
    let _ = writeln!(out, "\nEnseignements :");
    let lessons = list("lessons");
    if lessons.is_empty() {
        let _ = writeln!(out, "  aucun pour l'instant");
    }
    for (i, l) in lessons.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} ({}, le {})",
            i + 1,
            s(&l["text"]),
            s(&l["author"]),
            t(&l["at"])
        );
    }
}
