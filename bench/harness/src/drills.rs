//! The full-size fault drills of bench/README.md ("5. Fault drills"): the
//! small-scale versions are in tests/it/drills.rs; these run the release
//! binary as a process, at 10 000 recipients where the drill is about a
//! fan-out, against the harness's own SMTP sink (`smtp.rs`, which counts
//! per recipient) and HTTP receivers. A drill that fails is reported as
//! failed; it never stops the other drills or benchmarks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::files::{self, DaemonSettings, Layout};
use crate::procs::{self, Vigie};
use crate::smtp::SmtpSink;

/// Recipients of the fan-out drills.
const FANOUT: usize = 10_000;
/// The sink's pause before accepting each message in the fan-out drills:
/// with the pool of 8 connections, about 1 600 messages/s, so that the
/// fault lands mid-way (unslowed, 10 000 messages take 0.7 s).
const SINK_DELAY: Duration = Duration::from_millis(5);
const POOL: u32 = 8;
/// Escalation tier 0's timeout in the reload drill. Any duration above
/// zero is accepted (SPEC §1, humantime syntax); 5 s leaves the time to
/// write the broken plan and reload before tier 1 is due.
const TIER0_TIMEOUT: &str = "5s";
/// How long the webhook receiver of drill 3a answers 500.
const FAIL_FOR: Duration = Duration::from_secs(30);
/// How long the SMTP sink stays down in drill 2.
const SINK_DOWN: Duration = Duration::from_secs(60);

pub struct Ctx<'a> {
    pub vigie: &'a Path,
    pub out: &'a Path,
    pub http: &'a reqwest::Client,
}

pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One drill's line in the report.
pub struct Drill {
    pub name: &'static str,
    /// What was checked, one short clause per check.
    pub checks: Vec<(String, bool)>,
    /// Measured figures ("in flight: 8").
    pub figures: Vec<String>,
    /// How exactly it was run (a paragraph of the report).
    pub how: String,
    pub outcome: Outcome,
    pub secs: f64,
}

impl Drill {
    fn new(name: &'static str, how: impl Into<String>) -> Drill {
        Drill {
            name,
            checks: Vec::new(),
            figures: Vec::new(),
            how: how.into(),
            outcome: Outcome::Passed,
            secs: 0.0,
        }
    }

    fn check(&mut self, what: impl Into<String>, ok: bool) -> bool {
        let what = what.into();
        say(format!(
            "{}: check {what}: {}",
            self.name,
            if ok { "ok" } else { "FAILED" }
        ));
        self.checks.push((what, ok));
        ok
    }

    fn figure(&mut self, f: impl Into<String>) {
        let f = f.into();
        say(format!("{}: {f}", self.name));
        self.figures.push(f);
    }

    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Passed)
    }
}

fn say(s: impl AsRef<str>) {
    eprintln!("[drill] {}", s.as_ref());
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs every drill, in order; each is independent of the others.
pub async fn run_all(c: &Ctx<'_>) -> Vec<Drill> {
    let mut all = Vec::new();
    let mut d = Drill::new(
        "kill -9 mid-fan-out",
        format!(
            "A directory of {FANOUT} professionals, one declaration to all of them by e-mail (SMTP pool \
                     {POOL}), into the harness's SMTP sink, which pauses {} ms before accepting each message \
                     and records every message's RCPT TO. When the sink has accepted half of the messages, the \
                     daemon gets SIGKILL; the deliveries in state `sending` are then counted in `vigie.db` \
                     (python3's sqlite3, read-only): what was handed to SMTP without its outcome recorded. The \
                     daemon is started again on the same data directory and the drill waits for every \
                     recipient to be reached. Duplicates: extra copies per recipient, as the sink counted them.",
            SINK_DELAY.as_millis()
        ),
    );
    let t0 = start(&d);
    let r = kill9(c, &mut d).await;
    all.push(finish(d, r, t0));
    let mut d = Drill::new(
        "SMTP server down 60 s",
        format!(
            "The same {FANOUT}-recipient e-mail fan-out (sink pausing {} ms per message). At 30 % the \
                     sink closes its listener and drops its open connections; {} s later it listens again on \
                     the same port. The drill waits for every delivery to be `sent` (`/metrics`), then reads \
                     `vigie_send_retries_total` and counts recipients reached, missed and reached twice.",
            SINK_DELAY.as_millis(),
            SINK_DOWN.as_secs()
        ),
    );
    let t0 = start(&d);
    let r = sink_down(c, &mut d).await;
    all.push(finish(d, r, t0));
    let mut d = Drill::new(
        "webhook 500, webhook hanging",
        format!(
            "(a) The five members of the bureau through a per-recipient webhook whose receiver (axum, \
                     in the harness) answers 500 for {} s after the declaration, then 200; the receiver \
                     records each call's instant and `Idempotency-Key` (the delivery id), which gives every \
                     attempt of every delivery. While it fails, `/metrics` and the event's deliveries are \
                     read. (b) At the same time, a declaration to the same five by e-mail and through a \
                     webhook (`timeout = \"1s\"`) whose receiver accepts the connection and never answers.",
            FAIL_FOR.as_secs()
        ),
    );
    let t0 = start(&d);
    let r = webhooks(c, &mut d).await;
    all.push(finish(d, r, t0));
    let mut d = Drill::new(
        "disk full",
        format!(
            "`data_dir` on a 64 MiB tmpfs (`mount -t tmpfs -o size=64m`), a directory of {FANOUT} \
                     professionals; once the daemon runs, a filler file takes every free byte of the tmpfs. \
                     The {FANOUT}-recipient declaration is sent; then `/healthz` and `PRAGMA integrity_check` \
                     (python3's sqlite3, read-only, daemon running). The filler is removed and the same \
                     declaration sent again, until all {FANOUT} are delivered. The tmpfs is unmounted \
                     (`umount -l`) at the end, whatever happened."
        ),
    );
    let t0 = start(&d);
    let r = disk_full(c, &mut d).await;
    all.push(finish(d, r, t0));
    let mut d = Drill::new(
        "broken reload mid-escalation",
        format!(
            "A two-tier escalation: tier 0 the three crisis referents (quorum 1, timeout \
                     `\"{TIER0_TIMEOUT}\"`; nobody answers), tier 1 the five members of the bureau, both by \
                     e-mail. Once tier 0's e-mails are in, the plan file is rewritten with a syntax error \
                     (`quorum = un`) and the daemon gets SIGHUP; `/readyz` gives the reload's outcome. Tier \
                     1's e-mails are then awaited."
        ),
    );
    let t0 = start(&d);
    let r = broken_reload(c, &mut d).await;
    all.push(finish(d, r, t0));
    all
}

fn start(d: &Drill) -> Instant {
    say(format!("=== {}", d.name));
    Instant::now()
}

/// Records the outcome: an error, or a check not met, fails the drill.
fn finish(mut d: Drill, r: Result<()>, t0: Instant) -> Drill {
    d.secs = t0.elapsed().as_secs_f64();
    match r {
        Err(e) => {
            say(format!("{}: FAILED: {e:#}", d.name));
            d.outcome = Outcome::Failed(format!("{e:#}"));
        }
        Ok(()) => {
            let failed: Vec<&str> = d
                .checks
                .iter()
                .filter(|c| !c.1)
                .map(|c| c.0.as_str())
                .collect();
            if matches!(d.outcome, Outcome::Passed) && !failed.is_empty() {
                d.outcome = Outcome::Failed(format!("not met: {}", failed.join("; ")));
            }
        }
    }
    say(format!(
        "{}: {} in {:.0} s",
        d.name,
        match &d.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "FAILED",
            Outcome::Skipped(_) => "skipped",
        },
        d.secs
    ));
    d
}

// ------------------------------------------------------------------ helpers

/// The receivers the generated configuration names: `[webhook.flaky]` and
/// `[webhook.hang]` (with `timeout = "1s"`).
struct Hooks {
    flaky: String,
    hang: String,
}

impl Hooks {
    /// For the drills that do not use them: a port nothing listens on.
    fn unused() -> Result<Hooks> {
        let p = procs::free_port()?;
        Ok(Hooks {
            flaky: format!("http://127.0.0.1:{p}/flaky"),
            hang: format!("http://127.0.0.1:{p}/hang"),
        })
    }
}

/// A daemon on a generated set: `n` professionals, the drills' plan, the
/// given SMTP port and webhooks, and optionally another data_dir.
async fn daemon(
    c: &Ctx<'_>,
    name: &str,
    n: usize,
    smtp_port: u16,
    hooks: &Hooks,
    data_dir: Option<&Path>,
) -> Result<(Vigie, Layout, PathBuf)> {
    let d = DaemonSettings {
        http_port: procs::free_port()?,
        smtp_port,
        hook_url: hooks.flaky.clone(),
        pool: POOL,
    };
    let set = files::write_set(
        &c.out.join(name),
        n,
        &[("exercices.toml".into(), files::drills_plan(TIER0_TIMEOUT))],
        &d,
    )?;
    let mut config = std::fs::read_to_string(&set.config)?;
    let data = match data_dir {
        Some(p) => {
            config = config.replace(
                "data_dir = \"../var\"",
                &format!("data_dir = \"{}\"", p.display()),
            );
            p.to_path_buf()
        }
        None => set.root.join("var"),
    };
    config.push_str(&format!(
        "\n[webhook.flaky]\nurl = \"{}\"\nsecret_file = \"secrets/sms-hmac\"\nper_recipient = true\ntimeout = \"10s\"\n\
         \n[webhook.hang]\nurl = \"{}\"\nsecret_file = \"secrets/sms-hmac\"\nper_recipient = true\ntimeout = \"1s\"\n",
        hooks.flaky, hooks.hang
    ));
    std::fs::write(&set.config, config)?;
    let v = Vigie::start(
        c.vigie,
        &set.config,
        &data,
        d.http_port,
        &set.root.join("vigie.log"),
        c.http,
        "info",
    )
    .await?;
    Ok((v, set, data))
}

/// POST /api/v1/events, whatever the answer: (status, body).
async fn declare_raw(c: &Ctx<'_>, v: &Vigie, body: Value) -> Result<(u16, Value)> {
    let r = c
        .http
        .post(format!("{}/api/v1/events", v.base))
        .bearer_auth(&v.token)
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or_default()))
}

async fn event(c: &Ctx<'_>, v: &Vigie, id: &str) -> Result<Value> {
    let r = c
        .http
        .get(format!("{}/api/v1/events/{id}", v.base))
        .bearer_auth(&v.token)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("GET event {id}: {}", r.status());
    }
    Ok(r.json().await?)
}

/// The deliveries of an event on one channel.
fn deliveries<'v>(ev: &'v Value, channel: &str) -> Vec<&'v Value> {
    ev["deliveries"]
        .as_array()
        .map(|a| a.iter().filter(|d| d["channel"] == channel).collect())
        .unwrap_or_default()
}

async fn metrics(c: &Ctx<'_>, v: &Vigie) -> Result<String> {
    Ok(c.http
        .get(format!("{}/metrics", v.base))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The value of one series (`name{labels}`) in a Prometheus text; 0 when
/// absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn deliveries_metric(text: &str, channel: &str, state: &str) -> u64 {
    metric(
        text,
        &format!("vigie_deliveries{{channel=\"{channel}\",state=\"{state}\"}}"),
    ) as u64
}

/// Waits until every e-mail delivery is in a final state (nothing pending,
/// sending or retrying), at most `limit`; returns the last metrics read.
async fn settle_email(c: &Ctx<'_>, v: &Vigie, limit: Duration) -> Result<String> {
    let deadline = Instant::now() + limit;
    loop {
        let m = metrics(c, v).await?;
        let open: u64 = ["pending", "sending", "retrying"]
            .iter()
            .map(|s| deliveries_metric(&m, "email", s))
            .sum();
        if open == 0 || Instant::now() > deadline {
            return Ok(m);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One value from an SQLite database, through python3's sqlite3 module,
/// read-only.
fn sqlite(db: &Path, sql: &str) -> Result<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             print(c.execute(sys.argv[2]).fetchone()[0])",
        )
        .arg(db)
        .arg(sql)
        .output()
        .context("cannot run python3 (its sqlite3 module reads the database)")?;
    if !out.status.success() {
        bail!(
            "python3 sqlite3 on {}: {}",
            db.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn log_tail(path: &Path, pat: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(pat))
        .map(str::to_string)
        .collect()
}

// ------------------------------------------------------------------ drills

/// Drill 1: `kill -9` at 50 % of a 10 000-recipient fan-out, then restart.
/// Proves SPEC §8's crash safety at full size: nobody is missed, and only
/// what was in flight (`sending`, handed to SMTP with no outcome recorded)
/// may be sent twice.
async fn kill9(c: &Ctx<'_>, d: &mut Drill) -> Result<()> {
    let sink = SmtpSink::start().await?;
    sink.set_delay(SINK_DELAY);
    let hooks = Hooks::unused()?;
    let (mut v, set, data) = daemon(c, "drill-kill9", FANOUT, sink.port, &hooks, None).await?;
    let port: u16 = v.base.rsplit(':').next().unwrap_or("0").parse()?;
    let t0 = Instant::now();
    v.declare(c.http, json!({"scenario": "diffusion", "level": "orange"}))
        .await?;
    sink.messages
        .wait_for(FANOUT as u64 / 2, Duration::from_secs(120))
        .await?;
    let at_kill = sink.messages.count();
    let st = v.kill9()?;
    let after_kill = sink.messages.count();
    d.figure(format!(
        "SIGKILL after {at_kill} messages ({:.1} s after the declaration; {st}); {after_kill} accepted once it was gone",
        secs(t0.elapsed())
    ));
    let db = data.join("vigie.db");
    let in_flight: u64 = sqlite(
        &db,
        "SELECT COUNT(*) FROM deliveries WHERE channel = 'email' AND state = 'sending'",
    )?
    .parse()?;
    let sent_db: u64 = sqlite(
        &db,
        "SELECT COUNT(*) FROM deliveries WHERE channel = 'email' AND state = 'sent'",
    )?
    .parse()?;
    d.figure(format!(
        "in the database after the kill: {in_flight} `sending` (in flight), {sent_db} `sent`"
    ));
    d.check(
        format!("killed mid-way ({after_kill} of {FANOUT} accepted)"),
        (after_kill as usize) < FANOUT,
    );

    let restart = Instant::now();
    let v2 = Vigie::start(
        c.vigie,
        &set.config,
        &data,
        port,
        &set.root.join("vigie-restart.log"),
        c.http,
        "info",
    )
    .await?;
    let up = restart.elapsed();
    if let Some(l) = log_tail(&set.root.join("vigie-restart.log"), "requeued").first() {
        let at = l.find("vigie::").unwrap_or(0);
        d.figure(format!("restart log: {}", &l[at..]));
    }
    let reached = sink
        .distinct
        .wait_for(FANOUT as u64, Duration::from_secs(180))
        .await;
    let m = settle_email(c, &v2, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = sink
        .last_new()
        .map(|t| t.saturating_duration_since(restart));
    let per = sink.per_recipient();
    let (twice, extra) = sink.duplicates();
    let missed = FANOUT.saturating_sub(per.len());
    d.figure(format!(
        "restart: healthy after {:.2} s, every recipient reached {} after the restart",
        secs(up),
        done.map(|t| format!("{:.1} s", secs(t)))
            .unwrap_or_else(|| "never".into())
    ));
    d.figure(format!(
        "messages: {} accepted in all; {missed} recipients missed; {twice} recipients reached twice ({extra} extra copies)",
        sink.messages.count()
    ));
    if let Err(e) = reached {
        d.figure(format!("waiting for every recipient: {e}"));
    }
    d.check("zero recipients missed", missed == 0);
    d.check(
        format!("duplicates ({extra}) ≤ in flight at the kill ({in_flight})"),
        extra <= in_flight,
    );
    let sent = deliveries_metric(&m, "email", "sent");
    d.check(
        format!("all {FANOUT} deliveries `sent` after the restart ({sent})"),
        sent == FANOUT as u64,
    );
    v2.stop();
    Ok(())
}

/// Drill 2: The SMTP server stops for 60 s at 30 % of a 10 000-recipient
/// fan-out. Proves that transient failures are retried (visible in
/// `/metrics`), that nothing is lost or marked failed, and how long
/// delivery takes to resume.
async fn sink_down(c: &Ctx<'_>, d: &mut Drill) -> Result<()> {
    let mut sink = SmtpSink::start().await?;
    sink.set_delay(SINK_DELAY);
    let hooks = Hooks::unused()?;
    let (v, _set, _) = daemon(c, "drill-sink-down", FANOUT, sink.port, &hooks, None).await?;
    v.declare(c.http, json!({"scenario": "diffusion", "level": "orange"}))
        .await?;
    sink.messages
        .wait_for(FANOUT as u64 * 3 / 10, Duration::from_secs(120))
        .await?;
    sink.stop();
    let stopped = Instant::now();
    let before = sink.messages.count();
    d.figure(format!("sink stopped after {before} messages"));
    tokio::time::sleep(SINK_DOWN / 2).await;
    let m = metrics(c, &v).await?;
    let retrying = deliveries_metric(&m, "email", "retrying");
    let retries_down = metric(&m, "vigie_send_retries_total");
    d.figure(format!(
        "{} s into the outage: {retrying} deliveries `retrying`, vigie_send_retries_total {retries_down}",
        SINK_DOWN.as_secs() / 2
    ));
    d.check("failures surface as `retrying` while down", retrying > 0);
    tokio::time::sleep(SINK_DOWN.saturating_sub(stopped.elapsed())).await;
    sink.restart().await?;
    let restarted = Instant::now();
    say(format!(
        "{}: sink listening again after {:.1} s",
        d.name,
        secs(restarted - stopped)
    ));
    let reached = sink
        .distinct
        .wait_for(FANOUT as u64, Duration::from_secs(300))
        .await;
    let m = settle_email(c, &v, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = sink.messages.count();
    let last = sink
        .messages
        .at(n.saturating_sub(1))
        .saturating_duration_since(restarted);
    let all = sink
        .last_new()
        .map(|t| t.saturating_duration_since(restarted));
    let per = sink.per_recipient();
    let (twice, extra) = sink.duplicates();
    let missed = FANOUT.saturating_sub(per.len());
    let retries = metric(&m, "vigie_send_retries_total");
    let failed = deliveries_metric(&m, "email", "failed");
    let sent = deliveries_metric(&m, "email", "sent");
    d.figure(format!(
        "sink restart → last message {:.1} s (→ every recipient reached {})",
        secs(last),
        all.map(|t| format!("{:.1} s", secs(t)))
            .unwrap_or_else(|| "never".into())
    ));
    d.figure(format!(
        "vigie_send_retries_total {retries}; {sent} sent, {failed} failed; {n} messages, {missed} missed, {twice} reached twice ({extra} extra copies)"
    ));
    if let Err(e) = reached {
        d.figure(format!("waiting for every recipient: {e}"));
    }
    d.check("every recipient reached at least once", missed == 0);
    d.check(
        format!("no `failed` delivery, all {FANOUT} `sent`"),
        failed == 0 && sent == FANOUT as u64,
    );
    d.check("retries visible in /metrics", retries > 0.0);
    d.check(
        format!("duplicates ({extra}) ≤ the connections cut ({POOL})"),
        extra <= u64::from(POOL),
    );
    v.stop();
    Ok(())
}

/// The receiver of drill 3a: 500 until `fail_until`, then 200; every call
/// recorded with its `Idempotency-Key` (the delivery id) and status.
#[derive(Default)]
struct Flaky {
    fail_until: Mutex<Option<Instant>>,
    calls: Mutex<Vec<(String, Instant, u16)>>,
}

async fn flaky_receiver() -> Result<(Arc<Flaky>, u16)> {
    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    let state = Arc::new(Flaky::default());
    async fn take(State(f): State<Arc<Flaky>>, headers: HeaderMap) -> StatusCode {
        let now = Instant::now();
        let failing = f.fail_until.lock().unwrap().is_some_and(|t| now < t);
        let status = if failing {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        f.calls.lock().unwrap().push((key, now, status.as_u16()));
        status
    }
    let app = Router::new()
        .route("/flaky", post(take))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((state, port))
}

/// A receiver that accepts connections and never answers.
async fn hanging_receiver() -> Result<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    Ok(port)
}

/// Drill 3: (a) A webhook answering 500 for 30 s is retried with a growing
/// backoff, its failure is visible while it lasts (`retrying` in
/// `/metrics`, a `reason` on each delivery), and everything is delivered
/// once it answers 200. (b) A webhook that never answers times out
/// (`timeout = "1s"`), goes `retrying` with a timeout reason, and does not
/// hold up the e-mails of the same event.
async fn webhooks(c: &Ctx<'_>, d: &mut Drill) -> Result<()> {
    let sink = SmtpSink::start().await?;
    let (flaky, fport) = flaky_receiver().await?;
    let hport = hanging_receiver().await?;
    let hooks = Hooks {
        flaky: format!("http://127.0.0.1:{fport}/flaky"),
        hang: format!("http://127.0.0.1:{hport}/hook"),
    };
    let (v, _set, _) = daemon(c, "drill-webhooks", 20, sink.port, &hooks, None).await?;

    let t0 = Instant::now();
    *flaky.fail_until.lock().unwrap() = Some(t0 + FAIL_FOR);
    let a = v
        .declare(
            c.http,
            json!({"scenario": "webhook_500", "level": "orange"}),
        )
        .await?;
    let tb = Instant::now();
    let b = v
        .declare(
            c.http,
            json!({"scenario": "webhook_hang", "level": "orange"}),
        )
        .await?;

    // (b) The e-mails go at once; the hanging webhook times out.
    let mails = sink.distinct.wait_for(5, Duration::from_secs(10)).await;
    let mails_at = mails
        .as_ref()
        .ok()
        .map(|_| sink.distinct.at(4).saturating_duration_since(tb));
    d.figure(format!(
        "(b) 5 e-mails of the hanging event accepted {} after its declaration",
        mails_at
            .map(|t| format!("{:.0} ms", t.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "never (10 s)".into())
    ));
    d.check(
        "(b) e-mails not held up by the hanging webhook (< 1 s, its timeout)",
        mails_at.is_some_and(|t| t < Duration::from_secs(1)),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let hang = loop {
        let ev = event(c, &v, &b).await?;
        let h: Vec<Value> = deliveries(&ev, "hang").into_iter().cloned().collect();
        let done = h.len() == 5 && h.iter().all(|x| x["state"] == "retrying");
        if done || Instant::now() > deadline {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hang_at = tb.elapsed();
    let reasons: Vec<&str> = hang
        .iter()
        .map(|x| x["reason"].as_str().unwrap_or(""))
        .collect();
    d.figure(format!(
        "(b) hanging webhook: {} deliveries, states {:?} {:.1} s after the declaration, reason \"{}\"",
        hang.len(),
        hang.iter()
            .map(|x| x["state"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        secs(hang_at),
        reasons.first().copied().unwrap_or("")
    ));
    d.check(
        "(b) hanging deliveries `retrying` with a timeout reason",
        hang.len() == 5
            && hang.iter().all(|x| x["state"] == "retrying")
            && reasons.iter().all(|r| r.to_lowercase().contains("timeout")),
    );

    // (a) While the receiver fails.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(t0.elapsed())).await;
    let m = metrics(c, &v).await?;
    let retrying = deliveries_metric(&m, "flaky", "retrying");
    let ev = event(c, &v, &a).await?;
    let fl = deliveries(&ev, "flaky");
    let reason = fl
        .first()
        .and_then(|x| x["reason"].as_str())
        .unwrap_or("")
        .to_string();
    d.figure(format!(
        "(a) {:.0} s after the declaration: vigie_deliveries{{channel=\"flaky\",state=\"retrying\"}} {retrying}, reason \"{reason}\"",
        secs(t0.elapsed())
    ));
    d.check(
        "(a) failure surfaced while failing (`retrying` in /metrics, a reason on each delivery)",
        retrying == 5
            && fl.len() == 5
            && fl
                .iter()
                .all(|x| x["reason"].as_str().is_some_and(|r| !r.is_empty())),
    );
    let deadline = t0 + FAIL_FOR + Duration::from_secs(120);
    let ev = loop {
        let ev = event(c, &v, &a).await?;
        let fl = deliveries(&ev, "flaky");
        if (fl.len() == 5 && fl.iter().all(|x| x["state"] == "sent")) || Instant::now() > deadline {
            break ev;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let fl = deliveries(&ev, "flaky");
    let sent = fl.iter().filter(|x| x["state"] == "sent").count();
    let calls = flaky.calls.lock().unwrap().clone();
    let mut per: HashMap<String, Vec<(f64, u16)>> = HashMap::new();
    for (k, at, st) in &calls {
        per.entry(k.clone())
            .or_default()
            .push((secs(at.saturating_duration_since(t0)), *st));
    }
    let mut keys: Vec<&String> = per.keys().collect();
    keys.sort();
    let mut backoff_ok = !keys.is_empty();
    let mut lines = Vec::new();
    for k in keys {
        let times = &per[k];
        let intervals: Vec<f64> = times.windows(2).map(|w| w[1].0 - w[0].0).collect();
        // 10 s then 20 s, ±20 % jitter, and the outbox looks for due
        // retries once a second: each attempt is up to ~1 s late.
        let ok = intervals.len() >= 2
            && (6.8..=13.2).contains(&intervals[0])
            && (14.8..=25.2).contains(&intervals[1])
            && intervals.windows(2).all(|w| w[1] > w[0]);
        backoff_ok &= ok;
        lines.push(format!(
            "delivery {k}: {}",
            times
                .iter()
                .map(|(t, st)| format!("{t:.1} s ({st})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    d.figure(format!(
        "(a) attempts (seconds after the declaration, status): {}",
        lines.join("; ")
    ));
    d.check(
        "(a) retried with backoff: intervals ~10 s then ~20 s (±20 %, +1 s polling), growing",
        backoff_ok,
    );
    d.check(
        format!("(a) all 5 delivered once the receiver answers 200 ({sent} sent)"),
        sent == 5
            && calls.iter().filter(|c| c.2 == 200).count() == 5
            && calls.iter().all(|c| (c.2 == 200) == (c.1 >= t0 + FAIL_FOR)),
    );
    v.stop();
    Ok(())
}

/// Unmounts (lazily) on drop: a drill that fails half-way leaves no mount.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Drill 4: `data_dir` full: a declaration is refused with 507 `disk_full` and
/// leaves nothing behind, the daemon keeps answering, the database stays
/// intact, and once space returns the same 10 000-recipient declaration
/// goes through.
async fn disk_full(c: &Ctx<'_>, d: &mut Drill) -> Result<()> {
    let mp = std::path::absolute(c.out.join("drill-disk-data"))?;
    let _ = Command::new("umount").arg("-l").arg(&mp).status();
    std::fs::create_dir_all(&mp)?;
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&mp)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        d.outcome = Outcome::Skipped("cannot mount tmpfs".into());
        say(format!("{}: skipped (cannot mount tmpfs)", d.name));
        return Ok(());
    }
    let _guard = Unmount(mp.clone());
    let sink = SmtpSink::start().await?;
    let hooks = Hooks::unused()?;
    let (v, _set, data) = daemon(c, "drill-disk", FANOUT, sink.port, &hooks, Some(&mp)).await?;

    let filler = mp.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let small = vec![0u8; 4096];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }
    let free = free_bytes(&mp);
    d.figure(format!(
        "filler {} MiB, {free} bytes free",
        std::fs::metadata(&filler)?.len() >> 20
    ));
    let body = json!({"scenario": "diffusion", "level": "orange"});
    let (status, answer) = declare_raw(c, &v, body.clone()).await?;
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    d.figure(format!(
        "declaration on the full disk: HTTP {status} {answer}"
    ));
    d.check(
        "HTTP 507 `disk_full` with a message saying the disk is full",
        status == 507
            && answer["error"]["code"] == "disk_full"
            && message.to_lowercase().contains("full"),
    );
    let health = c
        .http
        .get(format!("{}/healthz", v.base))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    d.check(format!("/healthz answers 200 ({health})"), health == 200);
    let db = data.join("vigie.db");
    let integrity = sqlite(&db, "PRAGMA integrity_check")?;
    let events = sqlite(&db, "SELECT COUNT(*) FROM events")?;
    d.figure(format!(
        "with the disk full: integrity_check \"{integrity}\", {events} events in the database"
    ));
    d.check("`PRAGMA integrity_check` = ok", integrity == "ok");
    d.check("the refused declaration left no event", events == "0");

    std::fs::remove_file(&filler)?;
    let t0 = Instant::now();
    let (status, answer) = declare_raw(c, &v, body).await?;
    d.check(
        format!("after removing the filler the same declaration succeeds ({status})"),
        status == 201,
    );
    if status != 201 {
        bail!("declaration after freeing the disk: {status} {answer}");
    }
    let reached = sink
        .distinct
        .wait_for(FANOUT as u64, Duration::from_secs(120))
        .await;
    let m = settle_email(c, &v, Duration::from_secs(30)).await?;
    let sent = deliveries_metric(&m, "email", "sent");
    let all = sink.last_new().map(|t| t.saturating_duration_since(t0));
    d.figure(format!(
        "space back: {} recipients reached in {}, {sent} `sent`",
        sink.distinct.count(),
        all.map(|t| format!("{:.1} s", secs(t)))
            .unwrap_or_else(|| "—".into())
    ));
    if let Err(e) = reached {
        d.figure(format!("waiting for every recipient: {e}"));
    }
    d.check(
        format!("all {FANOUT} delivered"),
        sink.distinct.count() == FANOUT as u64 && sent == FANOUT as u64,
    );
    let integrity = sqlite(&db, "PRAGMA integrity_check")?;
    d.check(
        format!("integrity_check still ok at the end (\"{integrity}\")"),
        integrity == "ok",
    );
    v.stop();
    Ok(())
}

fn free_bytes(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return 0;
    }
    s.f_bavail * s.f_frsize
}

/// Drill 5: A reload with a broken plan during an escalation is refused whole
/// (SPEC §11), the running escalation keeps its timer, and tier 1 is
/// notified at tier 0's timeout.
async fn broken_reload(c: &Ctx<'_>, d: &mut Drill) -> Result<()> {
    let sink = SmtpSink::start().await?;
    let hooks = Hooks::unused()?;
    let (v, set, _) = daemon(c, "drill-reload", 20, sink.port, &hooks, None).await?;
    let ready0 = readyz(c, &v).await?;
    let t0 = Instant::now();
    let id = v
        .declare(c.http, json!({"scenario": "escalade", "level": "rouge"}))
        .await?;
    sink.distinct.wait_for(3, Duration::from_secs(5)).await?;
    let tier0 = sink.distinct.at(2).saturating_duration_since(t0);
    let plan = set.root.join("plans/exercices.toml");
    let text = std::fs::read_to_string(&plan)?;
    std::fs::write(&plan, text.replace("quorum = 1", "quorum = un"))?;
    v.signal(libc::SIGHUP);
    let hup = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let r = readyz(c, &v).await?;
        if r["reload"]["last_attempt_at"] != ready0["reload"]["last_attempt_at"]
            || Instant::now() > deadline
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errors: Vec<String> = ready["reload"]["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    d.figure(format!(
        "tier 0 (3 referents) mailed {:.0} ms after the declaration; broken plan + SIGHUP at {:.2} s",
        tier0.as_secs_f64() * 1000.0,
        secs(hup)
    ));
    d.figure(format!(
        "/readyz after SIGHUP: status \"{}\", reload ok {}, errors {:?}",
        ready["status"].as_str().unwrap_or(""),
        ready["reload"]["ok"],
        errors
    ));
    let logged = log_tail(&set.root.join("vigie.log"), "reload refused");
    d.check(
        "reload refused (`/readyz` reload.ok false, error listed, \"reload refused\" logged), daemon still ready",
        ready["reload"]["ok"] == false
            && !errors.is_empty()
            && !logged.is_empty()
            && ready["status"] == "ready",
    );
    let timeout = humantime_secs(TIER0_TIMEOUT);
    d.check(
        "the reload happened before tier 0's timeout",
        secs(hup) < timeout,
    );
    let tier1 = sink.distinct.wait_for(8, Duration::from_secs(30)).await;
    let at = tier1
        .as_ref()
        .ok()
        .map(|_| secs(sink.distinct.at(7).saturating_duration_since(t0)));
    let first = tier1
        .as_ref()
        .ok()
        .map(|_| secs(sink.distinct.at(3).saturating_duration_since(t0)));
    let per = sink.per_recipient();
    let bureau = (1..=5)
        .filter(|i| per.contains_key(&format!("p{i:06}@example.org")))
        .count();
    let ev = event(c, &v, &id).await?;
    d.figure(format!(
        "tier 0 timeout {TIER0_TIMEOUT}; tier 1 (bureau, {bureau} of 5 reached): first e-mail {}, last {} after the declaration; event tier {}",
        first
            .map(|t| format!("{t:.2} s"))
            .unwrap_or_else(|| "never".into()),
        at.map(|t| format!("{t:.2} s"))
            .unwrap_or_else(|| "never (30 s)".into()),
        ev["tier"]
    ));
    d.check(
        format!("tier 1 notified at the timeout ({TIER0_TIMEOUT}, within +3 s) despite the broken reload"),
        bureau == 5
            && ev["tier"] == 1
            && first.is_some_and(|t| t >= timeout - 0.05)
            && at.is_some_and(|t| t <= timeout + 3.0),
    );
    v.stop();
    Ok(())
}

/// `/readyz` (public: ready or not, reload ok or not) with its `reload`
/// replaced by the detail of the authenticated `/api/v1/status` (errors,
/// attempt time), which `/readyz` no longer shows.
async fn readyz(c: &Ctx<'_>, v: &Vigie) -> Result<Value> {
    let mut ready: Value = c
        .http
        .get(format!("{}/readyz", v.base))
        .send()
        .await?
        .json()
        .await?;
    let status: Value = c
        .http
        .get(format!("{}/api/v1/status", v.base))
        .bearer_auth(&v.token)
        .send()
        .await?
        .json()
        .await?;
    ready["reload"] = status["reload"].clone();
    Ok(ready)
}

/// "5s" → 5.0 (the drills' own constants only).
fn humantime_secs(s: &str) -> f64 {
    s.trim_end_matches('s').parse().unwrap_or(f64::NAN)
}
