//! The commands that go through the daemon's API (SPEC §10): `declare`,
//! `events`, `show`, `level`, `resolve`, `status` and `reload`: the call each
//! makes and how its answer is printed for people (`--json` prints the
//! API's JSON as is).
//!
//! Exit codes: 0 on success, 1 when the API refuses, 2 when it cannot be
//! reached (or the token cannot be read).

use std::io::Write;
use std::path::Path;

use super::{ApiArgs, client};
use crate::model::labels::count;

/// `vigie declare`, as given on the command line.
pub struct Declare {
    pub scenario: String,
    pub level: Option<String>,
    pub note: Option<String>,
    pub exercise: bool,
    pub key: Option<String>,
    pub downgrade: bool,
}

/// `vigie declare SCENARIO`.
pub fn declare(path: &Path, cmd: Declare, api: &ApiArgs) -> i32 {
    let mut body = client::declare_body(
        &cmd.scenario,
        cmd.level.as_deref(),
        cmd.note.as_deref(),
        cmd.exercise,
        cmd.key.as_deref(),
    );
    if cmd.downgrade {
        body["downgrade"] = serde_json::json!(true);
    }
    api_command(
        path,
        api,
        reqwest::Method::POST,
        "/api/v1/events".into(),
        Some(body),
        |out, status, v, _| {
            let id = v["id"].as_str().unwrap_or("?");
            let queued = v["queued"].as_u64().unwrap_or(0);
            if status == 201 {
                let _ = writeln!(
                    out,
                    "événement {id} déclenché : {} ({} en file)",
                    describe(v),
                    count(queued, "envoi", "envois")
                );
            } else if v["level_changed"].as_bool() == Some(true) {
                let _ = writeln!(
                    out,
                    "événement {id} ({}) déjà ouvert pour ce scénario et cette clé : niveau passé à {} ({} en file)",
                    describe(v),
                    v["level"].as_str().unwrap_or("-"),
                    count(queued, "envoi", "envois")
                );
            } else {
                let _ = writeln!(
                    out,
                    "événement {id} ({}) déjà ouvert pour ce scénario et cette clé, niveau inchangé : rien n'est envoyé",
                    describe(v)
                );
            }
            if let Some(w) = beside_warning(v) {
                let _ = writeln!(out, "ATTENTION : {w}");
            }
        },
    )
}

/// `vigie events [--all]`.
pub fn events(path: &Path, all: bool, api: &ApiArgs) -> i32 {
    let path_q = if all {
        "/api/v1/events"
    } else {
        "/api/v1/events?state=unresolved"
    };
    api_command(
        path,
        api,
        reqwest::Method::GET,
        path_q.into(),
        None,
        |out, _, v, tz| {
            client::print_events(
                out,
                v["events"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                tz,
            );
        },
    )
}

/// `vigie show ID`.
pub fn show(path: &Path, id: &str, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::GET,
        format!("/api/v1/events/{id}"),
        None,
        |out, _, v, tz| {
            client::print_event(out, v, tz);
        },
    )
}

/// `vigie level ID LEVEL`.
pub fn level(path: &Path, id: &str, level: &str, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::POST,
        format!("/api/v1/events/{id}/level"),
        Some(serde_json::json!({"level": level})),
        |out, _, v, _| {
            if v["level_changed"].as_bool() == Some(true) {
                let _ = writeln!(
                    out,
                    "événement {id} : niveau {} ({} en file)",
                    v["level"].as_str().unwrap_or("-"),
                    count(v["queued"].as_u64().unwrap_or(0), "envoi", "envois")
                );
            } else {
                let _ = writeln!(
                    out,
                    "événement {id} : déjà au niveau {}, rien n'est envoyé",
                    v["level"].as_str().unwrap_or("-")
                );
            }
        },
    )
}

/// `vigie resolve ID [--note N]`.
pub fn resolve(path: &Path, id: &str, note: Option<String>, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::POST,
        format!("/api/v1/events/{id}/resolve"),
        Some(match note {
            Some(n) => serde_json::json!({"note": n}),
            None => serde_json::json!({}),
        }),
        |out, _, v, _| {
            let _ = writeln!(
                out,
                "événement {id} levé ({} en file)",
                count(
                    v["queued"].as_u64().unwrap_or(0),
                    "avis de fin d'alerte",
                    "avis de fin d'alerte"
                )
            );
        },
    )
}

/// `vigie actions ID`: the checklist, one action a line, times in the
/// daemon's zone.
pub fn actions(path: &Path, id: &str, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::GET,
        format!("/api/v1/events/{id}/actions"),
        None,
        |out, _, v, tz| {
            let list = v["actions"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                let _ = writeln!(out, "événement {id} : aucune action prévue par le plan");
            }
            for a in &list {
                let _ = writeln!(out, "{}", client::action_line(a, tz));
            }
        },
    )
}

/// `vigie done ID N ["NOTE"]`.
pub fn done(path: &Path, id: &str, n: &str, note: Option<String>, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::POST,
        format!("/api/v1/events/{id}/actions/{n}/done"),
        Some(match note {
            Some(n) => serde_json::json!({"note": n}),
            None => serde_json::json!({}),
        }),
        |out, _, v, tz| {
            let _ = writeln!(out, "{}", client::action_line(v, tz));
        },
    )
}

/// `vigie status`.
pub fn status(path: &Path, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::GET,
        "/api/v1/status".into(),
        None,
        |out, _, v, tz| {
            client::print_status(out, v, tz);
        },
    )
}

/// `vigie reload`.
pub fn reload(path: &Path, api: &ApiArgs) -> i32 {
    api_command(
        path,
        api,
        reqwest::Method::POST,
        "/api/v1/reload".into(),
        None,
        |out, _, v, _| {
            let _ = writeln!(
                out,
                "configuration rechargée (génération {})",
                v["generation"]
            );
        },
    )
}

fn describe(v: &serde_json::Value) -> String {
    let mut s = v["title"].as_str().unwrap_or("").to_string();
    if let Some(l) = v["level"].as_str() {
        s.push_str(&format!(", niveau {l}"));
    }
    if v["exercise"].as_bool() == Some(true) {
        s.push_str(", EXERCICE");
    }
    s
}

/// The API's `beside` said in French: the event of the other kind (real or
/// exercise) of the same scenario, which this one is kept apart from.
fn beside_warning(v: &serde_json::Value) -> Option<String> {
    let beside = v["beside"].as_array()?;
    let ids: Vec<&str> = beside.iter().filter_map(|b| b["id"].as_str()).collect();
    if ids.is_empty() {
        return None;
    }
    let (n, list) = (ids.len(), ids.join(", "));
    let events = if n == 1 {
        format!("l'événement {list}")
    } else {
        format!("les événements {list}")
    };
    Some(if v["exercise"].as_bool() == Some(true) {
        format!(
            "une ALERTE RÉELLE de ce scénario est en cours ({events}) : cette déclaration est un \
             exercice, tenu à part"
        )
    } else {
        format!(
            "un EXERCICE de ce scénario est en cours ({events}) : cette déclaration est RÉELLE, \
             tenue à part"
        )
    })
}

/// Runs one API call and prints its answer (text, or JSON with --json).
/// Exit 0 on success, 1 when the API refuses, 2 when it cannot be reached.
pub(super) fn api_command(
    path: &Path,
    api: &ApiArgs,
    method: reqwest::Method,
    route: String,
    body: Option<serde_json::Value>,
    print: impl FnOnce(&mut dyn Write, u16, &serde_json::Value, chrono_tz::Tz),
) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigie: {e}");
            return 2;
        }
    };
    let result = rt.block_on(async {
        let c = client::Client::from_config(path, api.token_file.as_deref())?;
        let (status, v) = c.call(method, &route, body).await?;
        Ok::<_, client::ClientError>((status, v, c.tz))
    });
    let mut out = std::io::stdout();
    match result {
        Ok((status, v, tz)) => {
            if api.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            } else {
                print(&mut out, status, &v, tz);
            }
            0
        }
        // A message of several lines (a refused reload) names its status
        // on its first line.
        Err(client::ClientError::Api { message, .. }) if message.contains('\n') => {
            eprintln!("vigie: {message}");
            1
        }
        Err(client::ClientError::Api { status, message }) => {
            eprintln!("vigie: {message} (HTTP {status})");
            1
        }
        Err(e) => {
            eprintln!("vigie: {e}");
            2
        }
    }
}
