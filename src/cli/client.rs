//! Commands that talk to the running daemon's API: `declare`, `events`,
//! `show`, `level`, `resolve`, `status`, `reload`.
//!
//! The address comes from the configuration (`http.listen`; a wildcard
//! address is reached on loopback); the token from `--token-file`, else
//! `$VIGIE_TOKEN`, else the token the daemon generated in `data_dir`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::model::labels;

use crate::config::{self, Diagnostics};

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    /// The daemon's time zone: the times printed are in it.
    pub tz: chrono_tz::Tz,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Setup(String),
    #[error("le démon ne répond pas à {url} : {message} (`vigie run` est-il lancé ?)")]
    Unreachable { url: String, message: String },
    /// The API answered with an error.
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
}

impl Client {
    pub fn from_config(
        config_path: &Path,
        token_file: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let mut diags = Diagnostics::default();
        let daemon = config::daemon::load(config_path, &mut diags).ok_or_else(|| {
            ClientError::Setup(
                diags
                    .errors()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let mut addr = daemon.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let token = read_token(token_file, &daemon.data_dir)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Client {
            base: format!("http://{addr}"),
            token,
            http,
            tz: daemon.timezone,
        })
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            return Err(ClientError::Api {
                status,
                message: error_message(&v, status),
            });
        }
        Ok((status, v))
    }
}

/// What an error answer says: its `error.message`, or for a refused reload
/// (`{"ok": false, "errors": [...]}`) every error, one per line, each with
/// its file:line:col.
fn error_message(v: &Value, status: u16) -> String {
    if status == 401 {
        return "le démon refuse le jeton : donnez --token-file FICHIER ou $VIGIE_TOKEN \
                (un jeton nommé dans [auth] tokens), ou, en root sur le serveur, gardez \
                [auth] local_token (data_dir/local-token)"
            .to_string();
    }
    if let Some(m) = v["error"]["message"].as_str() {
        return m.to_string();
    }
    match v["errors"].as_array() {
        Some(errors) if !errors.is_empty() => {
            let lines: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
            format!(
                "rechargement refusé (HTTP {status}), la configuration en service est gardée \
                 ({}) :\n  {}",
                crate::model::labels::count(lines.len() as u64, "erreur", "erreurs"),
                lines.join("\n  ")
            )
        }
        _ => "error".to_string(),
    }
}

fn read_token(token_file: Option<&Path>, data_dir: &Path) -> Result<String, ClientError> {
    let from_file = |p: &Path| {
        crate::config::source::read_text(p)
            .map(|t| t.trim().to_string())
            .map_err(|e| {
                ClientError::Setup(format!(
                    "impossible de lire le fichier de jeton {} : {e}",
                    p.display()
                ))
            })
    };
    if let Some(p) = token_file {
        return from_file(p);
    }
    if let Ok(t) = std::env::var("VIGIE_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    // On the server: the local token, else (a daemon of before it) the
    // generated one.
    for name in [crate::daemon::LOCAL_TOKEN_FILE, "api-token"] {
        let path: PathBuf = data_dir.join(name);
        if path.exists() {
            return from_file(&path);
        }
    }
    Err(ClientError::Setup(
        "aucun jeton d'API : donnez $VIGIE_TOKEN ou --token-file (créez-en un avec `vigie token new NOM`)".into(),
    ))
}

/// One action of a checklist: `2. [fait] Appeler l'astreinte de l'ARS —
/// Président · attendue 2026-06-15 11:10 CEST · faite 2026-06-15 10:50 CEST
/// par bureau : note`; `[EN RETARD]` when the daemon says it is overdue.
pub fn action_line(a: &Value, tz: chrono_tz::Tz) -> String {
    let done = a["done_at"].as_str();
    let late = a["overdue"].as_bool() == Some(true);
    let mut line = format!(
        "{}. [{}] {}",
        a["n"],
        if done.is_some() {
            "fait"
        } else if late {
            "EN RETARD"
        } else {
            "à faire"
        },
        a["title"].as_str().unwrap_or("")
    );
    if let Some(who) = a["who"].as_str() {
        line.push_str(&format!(" — {who}"));
    }
    if let Some(due) = a["due_at"].as_str() {
        line.push_str(&format!(" · attendue {}", local_time(due, tz, false)));
    }
    if let Some(d) = done {
        line.push_str(&format!(
            " · faite {} par {}",
            local_time(d, tz, false),
            a["done_by"].as_str().unwrap_or("?")
        ));
        if let Some(n) = a["note"].as_str() {
            line.push_str(&format!(" : {n}"));
        }
    }
    line
}

/// One line per event.
/// An instant of the API (RFC 3339, UTC) as a person reads it: in the
/// daemon's time zone, with the zone's abbreviation; to the minute unless
/// `seconds`. Anything else is printed as it is.
pub fn local_time(s: &str, tz: chrono_tz::Tz, seconds: bool) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&tz)
            .format(if seconds {
                "%Y-%m-%d %H:%M:%S %Z"
            } else {
                "%Y-%m-%d %H:%M %Z"
            })
            .to_string(),
        Err(_) => s.to_string(),
    }
}

pub fn print_events(out: &mut dyn Write, events: &[Value], tz: chrono_tz::Tz) {
    if events.is_empty() {
        let _ = writeln!(out, "aucun événement");
        return;
    }
    let _ = writeln!(
        out,
        "{:<6} {:<24} {:<10} {:<26} {:<22} TITRE",
        "N°", "ÉTAT", "NIVEAU", "SCÉNARIO", "DÉCLENCHÉ"
    );
    for e in events {
        let mut title = e["title"].as_str().unwrap_or("").to_string();
        if e["exercise"].as_bool() == Some(true) {
            title = format!("[EXERCICE] {title}");
        }
        let _ = writeln!(
            out,
            "{:<6} {:<24} {:<10} {:<26} {:<22} {}",
            e["id"].as_str().unwrap_or(""),
            labels::event_state(e["state"].as_str().unwrap_or("")),
            e["level"].as_str().unwrap_or("-"),
            e["scenario"].as_str().unwrap_or(""),
            local_time(e["declared_at"].as_str().unwrap_or(""), tz, false),
            title
        );
    }
}

/// An event with its tiers, deliveries and responses.
pub fn print_event(out: &mut dyn Write, e: &Value, tz: chrono_tz::Tz) {
    let _ = writeln!(
        out,
        "événement {} — {}{}",
        e["id"].as_str().unwrap_or(""),
        e["title"].as_str().unwrap_or(""),
        if e["exercise"].as_bool() == Some(true) {
            " [EXERCICE]"
        } else {
            ""
        }
    );
    // The key tells two events of one scenario apart; most have none.
    let key = match e["key"].as_str().unwrap_or("") {
        "" => String::new(),
        k => format!(" (clé \"{k}\")"),
    };
    let _ = writeln!(
        out,
        "  scénario        {}{key}",
        e["scenario"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "  niveau          {}",
        e["level"].as_str().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  état            {}",
        labels::event_state(e["state"].as_str().unwrap_or(""))
    );
    let _ = writeln!(
        out,
        "  plan            {} {}",
        e["plan"]["id"].as_str().unwrap_or(""),
        e["plan"]["version"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        out,
        "  déclenché le    {}",
        local_time(e["declared_at"].as_str().unwrap_or(""), tz, true)
    );
    if let Some(n) = e["note"].as_str().filter(|n| !n.is_empty()) {
        let _ = writeln!(out, "  message         {n}");
    }
    if let Some(t) = e["next_escalation_at"].as_str() {
        let _ = writeln!(out, "  palier suivant  {}", local_time(t, tz, true));
    }
    let _ = writeln!(out, "  confirmations   {}", e["acks"]);
    if let Some(tiers) = e["tiers"].as_array() {
        for t in tiers {
            let _ = writeln!(
                out,
                "  palier {} (tour {}) → {} : quorum {}, délai {}, {}, sollicité le {}",
                t["tier"].as_u64().unwrap_or(0) + 1,
                t["round"].as_u64().unwrap_or(0) + 1,
                t["audience"].as_str().unwrap_or(""),
                t["quorum"],
                labels::duration(std::time::Duration::from_secs(
                    t["timeout_secs"].as_u64().unwrap_or(0)
                )),
                labels::count(t["deliveries"].as_u64().unwrap_or(0), "envoi", "envois"),
                local_time(t["notified_at"].as_str().unwrap_or(""), tz, true)
            );
        }
    }
    if let Some(ds) = e["deliveries"].as_array() {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for d in ds {
            *counts
                .entry(d["state"].as_str().unwrap_or("?"))
                .or_default() += 1;
        }
        let summary: Vec<String> = counts
            .iter()
            .map(|(s, n)| labels::deliveries(*n as u64, s))
            .collect();
        let _ = writeln!(
            out,
            "  envois          {}",
            if summary.is_empty() {
                "aucun".into()
            } else {
                summary.join(", ")
            }
        );
        for d in ds
            .iter()
            .filter(|d| matches!(d["state"].as_str(), Some("failed" | "retrying" | "skipped")))
        {
            let _ = writeln!(
                out,
                "    {} : {} par {} : {} ({})",
                labels::delivery_state(d["state"].as_str().unwrap_or("")),
                d["recipient_name"].as_str().unwrap_or(""),
                d["channel"].as_str().unwrap_or(""),
                d["reason"].as_str().unwrap_or(""),
                labels::count(
                    d["attempts"].as_u64().unwrap_or(0),
                    "tentative",
                    "tentatives"
                ),
            );
        }
    }
    if let Some(rs) = e["responses"].as_array() {
        for r in rs {
            let _ = writeln!(
                out,
                "  réponse         {} {} : {}",
                local_time(r["at"].as_str().unwrap_or(""), tz, true),
                r["name"].as_str().unwrap_or(""),
                r["response"].as_str().unwrap_or("")
            );
        }
    }
}

pub fn print_status(out: &mut dyn Write, s: &Value, tz: chrono_tz::Tz) {
    let _ = writeln!(out, "{}", s["cpts"].as_str().unwrap_or(""));
    if let Some(plans) = s["plans"].as_array() {
        for p in plans
            .iter()
            .filter(|p| p["in_force"].as_bool() == Some(true))
        {
            let _ = writeln!(
                out,
                "plan en vigueur : {} {} (à réviser le {})",
                p["id"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or(""),
                p["review_by"].as_str().unwrap_or("")
            );
        }
        if !plans.iter().any(|p| p["in_force"].as_bool() == Some(true)) {
            let _ = writeln!(out, "attention : aucun plan en vigueur");
        }
    }
    let events = s["events"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "événements en cours : {}", events.len());
    print_events(out, &events, tz);
    if let Some(d) = s["deliveries"].as_object() {
        let parts: Vec<String> = d
            .iter()
            .map(|(k, v)| labels::deliveries(v.as_u64().unwrap_or(0), k))
            .collect();
        let _ = writeln!(
            out,
            "envois : {}",
            if parts.is_empty() {
                "aucun".into()
            } else {
                parts.join(", ")
            }
        );
    }
    let r = &s["reload"];
    if r["ok"].as_bool() == Some(false) {
        let _ = writeln!(
            out,
            "DERNIER RECHARGEMENT REFUSÉ le {} (la configuration précédente reste en service) :",
            local_time(r["last_attempt_at"].as_str().unwrap_or(""), tz, true)
        );
        for e in r["errors"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  {}", e.as_str().unwrap_or(""));
        }
    } else {
        let _ = writeln!(
            out,
            "configuration : chargée le {} ({})",
            local_time(r["last_good_at"].as_str().unwrap_or(""), tz, true),
            labels::count(
                r["warnings"]
                    .as_array()
                    .map(|w| w.len() as u64)
                    .unwrap_or(0),
                "avertissement",
                "avertissements"
            )
        );
    }
}

/// Body of `POST /api/v1/events`.
pub fn declare_body(
    scenario: &str,
    level: Option<&str>,
    note: Option<&str>,
    exercise: bool,
    key: Option<&str>,
) -> Value {
    let mut v = json!({"scenario": scenario, "exercise": exercise});
    if let Some(l) = level {
        v["level"] = json!(l);
    }
    if let Some(n) = note {
        v["note"] = json!(n);
    }
    if let Some(k) = key {
        v["key"] = json!(k);
    }
    v
}
