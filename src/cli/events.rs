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
                    "event {id} declared: {} ({} deliveries queued)",
                    describe(v),
                    queued
                );
            } else if v["level_changed"].as_bool() == Some(true) {
                let _ = writeln!(
                    out,
                    "event {id} ({}) already open for this scenario and key: level changed to {} ({} deliveries queued)",
                    describe(v),
                    v["level"].as_str().unwrap_or("-"),
                    queued
                );
            } else {
                let _ = writeln!(
                    out,
                    "event {id} ({}) already open for this scenario and key, level unchanged: nothing sent",
                    describe(v)
                );
            }
            if let Some(w) = v["warning"].as_str() {
                let _ = writeln!(out, "WARNING: {w}");
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
                    "event {id}: level {} ({} deliveries queued)",
                    v["level"].as_str().unwrap_or("-"),
                    v["queued"].as_u64().unwrap_or(0)
                );
            } else {
                let _ = writeln!(
                    out,
                    "event {id}: already at level {}",
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
                "event {id} resolved ({} end-of-alert notices queued)",
                v["queued"].as_u64().unwrap_or(0)
            );
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
                "configuration reloaded (generation {})",
                v["generation"]
            );
        },
    )
}

fn describe(v: &serde_json::Value) -> String {
    let mut s = v["title"].as_str().unwrap_or("").to_string();
    if let Some(l) = v["level"].as_str() {
        s.push_str(&format!(", level {l}"));
    }
    if v["exercise"].as_bool() == Some(true) {
        s.push_str(", EXERCISE");
    }
    s
}

/// Runs one API call and prints its answer (text, or JSON with --json).
/// Exit 0 on success, 1 when the API refuses, 2 when it cannot be reached.
fn api_command(
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
