//! `vigie-bench`: runs the benchmarks of bench/run on loopback, each next to
//! its baseline measured in the same run, prints a table and writes
//! bench/RESULTS.md. See bench/README.md for what each figure means.
//!
//! Usage: vigie-bench --vigie target/release/vigie --out bench/out
//!        [--results bench/RESULTS.md] [--sizes 1000,10000,50000]
//!        [--only fanout,webhook,latency,pages,footprint,drills] [--repeat 200] [--pool 8]
//!        [--rounds 3]

mod drills;
mod files;
mod procs;
mod smtp;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use files::DaemonSettings;
use procs::{Alertmanager, Receiver, Sink, Vigie, WrkResult};

struct Opts {
    vigie: PathBuf,
    out: PathBuf,
    results: Option<PathBuf>,
    sizes: Vec<usize>,
    hook_sizes: Vec<usize>,
    only: Vec<String>,
    repeat: usize,
    rounds: usize,
    pool: u32,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        vigie: PathBuf::from("target/release/vigie"),
        out: PathBuf::from("bench/out"),
        results: None,
        sizes: vec![1000, 10_000, 50_000],
        hook_sizes: vec![1000, 10_000, 50_000],
        only: Vec::new(),
        repeat: 200,
        pool: 8,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    let list = |v: String| -> Result<Vec<usize>> {
        v.split(',')
            .map(|x| x.trim().parse().context("a list of numbers"))
            .collect()
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--vigie" => o.vigie = val()?.into(),
            "--out" => o.out = val()?.into(),
            "--results" => o.results = Some(val()?.into()),
            "--sizes" => o.sizes = list(val()?)?,
            "--hook-sizes" => o.hook_sizes = list(val()?)?,
            "--only" => o.only = val()?.split(',').map(str::to_string).collect(),
            "--repeat" => o.repeat = val()?.parse()?,
            "--rounds" => o.rounds = val()?.parse::<usize>()?.max(1),
            "--pool" => o.pool = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

impl Opts {
    fn runs(&self, what: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == what)
    }
}

/// The headers smtp-source adds to its `-l` bytes of body (From, To, Date,
/// Message-Id with the addresses used here): its messages are then the size
/// of Vigie's.
const SOURCE_HEADERS: usize = 130;

fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The 1-minute load average.
fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (at most two minutes) for the machine to be quiet: another build
/// running at the same time would be measured too.
async fn wait_quiet() {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut said = false;
    while load() >= 1.0 && Instant::now() < deadline {
        if !said {
            say(format!(
                "load average {:.2}: waiting for it to drop below 1",
                load()
            ));
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

fn say(s: impl AsRef<str>) {
    eprintln!("[bench] {}", s.as_ref());
}

// ----------------------------------------------------------------- results

#[derive(Default)]
struct FanoutRow {
    n: usize,
    /// POST → response: the whole outbox written and committed.
    declare_ms: f64,
    /// POST → last message accepted by the sink.
    total_ms: f64,
    vigie_rate: f64,
    baseline_rate: f64,
    cpu_s: f64,
    hwm_kb: u64,
    /// Vigie ÷ smtp-source of each round, in order.
    ratios: Vec<f64>,
}

#[derive(Default)]
struct HookRow {
    n: usize,
    declare_ms: f64,
    total_ms: f64,
    vigie_rate: f64,
    wrk: WrkResult,
    body: u64,
    /// Vigie's CPU time (user + system) from the POST to the last call.
    cpu_s: f64,
}

#[derive(Default)]
struct Latency {
    /// POST → 201: the event and its deliveries committed.
    post: Vec<f64>,
    smtp: Vec<f64>,
    hook: Vec<f64>,
    am: Vec<f64>,
    /// The second pass, with Vigie's timing lines: each stage in ms, in
    /// the order of [`STAGES`].
    stages: Vec<Vec<f64>>,
}

/// The stages of the latency breakdown (see `Bench::latency_breakdown`).
const STAGES: [&str; 10] = [
    "POST → answer",
    "waiting for the database thread",
    "the transaction's statements",
    "the commit",
    "commit → the e-mail's send starts (hand-over, the sending thread waking)",
    "the SMTP exchange (MAIL, RCPT, DATA; then the message)",
    "the rest, e-mail: the request read, the sink noting the arrival",
    "commit → the webhook's send starts",
    "the HTTP exchange of the webhook",
    "the rest, webhook: the request read, the receiver noting the arrival",
];

#[derive(Default)]
struct Footprint {
    idle_rss_kb: u64,
    idle_hwm_kb: u64,
    check_median_ms: f64,
    check_min_ms: f64,
    check_max_ms: f64,
    check_tool: String,
}

#[derive(Default)]
struct Results {
    /// (benchmark, 1-minute load average when it started).
    loads: Vec<(String, f64)>,
    msg_size: usize,
    fanout: Vec<FanoutRow>,
    hooks: Vec<HookRow>,
    latency: Option<Latency>,
    pages: Vec<(String, WrkResult)>,
    footprint: Option<Footprint>,
    /// The fault drills, in order (empty when not run).
    drills: Vec<drills::Drill>,
}

// -------------------------------------------------------------- benchmarks

struct Bench {
    o: Opts,
    http: reqwest::Client,
    recv: Receiver,
    r: Results,
}

impl Bench {
    fn settings(&self, smtp_port: u16) -> Result<DaemonSettings> {
        Ok(DaemonSettings {
            http_port: procs::free_port()?,
            smtp_port,
            hook_url: self.recv.url("/hook"),
            pool: self.o.pool,
        })
    }

    async fn start_vigie(
        &self,
        name: &str,
        n: usize,
        sink: &Sink,
    ) -> Result<(Vigie, files::Layout)> {
        let d = self.settings(sink.port)?;
        let port = d.http_port;
        let set = files::write_set(
            &self.o.out.join(name),
            n,
            &[("banc.toml".into(), files::bench_plan())],
            &d,
        )?;
        let v = Vigie::start(
            &self.o.vigie,
            &set.config,
            &set.root.join("var"),
            port,
            &set.root.join("vigie.log"),
            &self.http,
            "info",
        )
        .await?;
        Ok((v, set))
    }

    /// The size of the message Vigie sends in the fan-out (headers and
    /// body), to give smtp-source messages of the same size: one message
    /// through a `smtp-sink -D` dump file.
    async fn probe_size(&mut self) -> Result<usize> {
        let root = self.o.out.join("probe");
        let port = procs::free_port()?;
        let d = DaemonSettings {
            http_port: procs::free_port()?,
            smtp_port: port,
            hook_url: self.recv.url("/hook"),
            pool: 1,
        };
        let hport = d.http_port;
        let set = files::write_set(&root, 1, &[("banc.toml".into(), files::bench_plan())], &d)?;
        let dump = root.join("dump.txt");
        let mut child = Command::new("smtp-sink")
            .args(["-u", "root", "-D"])
            .arg(&dump)
            .args([&format!("127.0.0.1:{port}"), "10"])
            .spawn()
            .context("cannot run smtp-sink (Debian package postfix)")?;
        let v = Vigie::start(
            &self.o.vigie,
            &set.config,
            &set.root.join("var"),
            hport,
            &set.root.join("vigie.log"),
            &self.http,
            "info",
        )
        .await?;
        v.declare(
            &self.http,
            json!({"scenario": "diffusion", "level": "orange"}),
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = 0;
        let text = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let s = std::fs::read_to_string(&dump).unwrap_or_default();
            if !s.is_empty() && s.len() == last {
                break s;
            }
            last = s.len();
            if Instant::now() > deadline {
                bail!("no message in the probe dump {}", dump.display());
            }
        };
        v.stop();
        procs::stop_child(&mut child, Duration::from_secs(2));
        // The dump starts with the sink's X- lines and its Received: header
        // (three lines); what follows is the message as sent.
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("Received:"))
            .map(|i| i + 3)
            .unwrap_or(0);
        Ok(lines[at..].iter().map(|l| l.len() + 2).sum())
    }

    async fn fanout(&mut self, n: usize) -> Result<()> {
        let sink = Sink::start()?;
        let pool = self.o.pool;
        let size = self.r.msg_size;
        let limit = Duration::from_secs(60 + (n as u64) / 100);

        // Baseline: smtp-source, same sink, same number, size and concurrency,
        // connections reused (-d) as Vigie's pool does. Rounds: smtp-source,
        // then Vigie, then smtp-source again; a round's ratio is Vigie
        // against the faster of the smtp-source runs around it (the machine
        // is shared), and the median round is reported.
        let source = |label: &'static str| {
            let sink = &sink;
            async move {
                say(format!("fan-out {n}: smtp-source baseline ({label})"));
                let base = sink.arrivals.count();
                let t0 = Instant::now();
                let st = Command::new("smtp-source")
                    .args(["-d", "-s", &pool.to_string(), "-m", &n.to_string()])
                    .args(["-l", &size.saturating_sub(SOURCE_HEADERS).to_string()])
                    .args(["-f", "vigie@example.org"])
                    .args(["-t", "p000001@example.org"])
                    .arg(format!("127.0.0.1:{}", sink.port))
                    .status()?;
                if !st.success() {
                    bail!("smtp-source failed: {st}");
                }
                sink.arrivals
                    .wait_for(base + n as u64, Duration::from_secs(30))
                    .await?;
                Ok::<_, anyhow::Error>(sink.arrivals.at(base + n as u64 - 1) - t0)
            }
        };
        let mut previous = source("before").await?;

        let (v, _set) = self.start_vigie(&format!("fanout-{n}"), n, &sink).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // (declared, total, cpu, baseline) of each round.
        let mut rounds = Vec::new();
        for round in 1..=self.o.rounds {
            say(format!("fan-out {n}: vigie (round {round})"));
            let cpu0 = procs::proc_cpu_secs(v.pid).unwrap_or(0.0);
            let base = sink.arrivals.count();
            let t0 = Instant::now();
            // A key per round: a new event each time, not an update.
            v.declare(
                &self.http,
                json!({"scenario": "diffusion", "level": "orange", "key": format!("round-{round}")}),
            )
            .await?;
            let declared = t0.elapsed();
            sink.arrivals.wait_for(base + n as u64, limit).await?;
            let total = sink.arrivals.at(base + n as u64 - 1) - t0;
            let cpu = procs::proc_cpu_secs(v.pid).unwrap_or(0.0) - cpu0;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = source("after").await?;
            rounds.push((declared, total, cpu, previous.min(after)));
            previous = after;
        }
        let hwm = procs::proc_status_kb(v.pid, "VmHWM").unwrap_or(0);
        let ratio = |r: &(Duration, Duration, f64, Duration)| r.3.as_secs_f64() / r.1.as_secs_f64();
        let ratios: Vec<f64> = rounds.iter().map(ratio).collect();
        let mut order: Vec<usize> = (0..rounds.len()).collect();
        order.sort_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
        let (declared, total, cpu, baseline) = rounds[order[order.len() / 2]];

        // Webhooks: the same daemon, one call per recipient.
        let hook_n = self.o.hook_sizes.contains(&n).then_some(n);
        let mut hook_row = None;
        if let Some(n) = hook_n.filter(|_| self.o.runs("webhook")) {
            say(format!("webhooks {n}: vigie"));
            let cpu0 = procs::proc_cpu_secs(v.pid).unwrap_or(0.0);
            let hb = self.recv.hook.count();
            let t0 = Instant::now();
            v.declare(
                &self.http,
                json!({"scenario": "diffusion_sms", "level": "orange"}),
            )
            .await?;
            let declared = t0.elapsed();
            self.recv.hook.wait_for(hb + n as u64, limit).await?;
            let total = self.recv.hook.at(hb + n as u64 - 1) - t0;
            let cpu_s = procs::proc_cpu_secs(v.pid).unwrap_or(0.0) - cpu0;
            hook_row = Some(HookRow {
                cpu_s,
                n,
                declare_ms: ms(declared),
                total_ms: ms(total),
                vigie_rate: n as f64 / total.as_secs_f64(),
                body: self
                    .recv
                    .hook
                    .last_size
                    .load(std::sync::atomic::Ordering::Relaxed),
                ..Default::default()
            });
        }
        v.stop();

        if let Some(mut row) = hook_row {
            say(format!("webhooks {}: wrk baseline", row.n));
            // The same receiver, a body of the same size, the same
            // concurrency as Vigie's webhook lane (16).
            let lua = self.o.out.join("post.lua");
            std::fs::write(
                &lua,
                format!(
                    "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {})\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
                    row.body
                ),
            )?;
            let secs = (row.total_ms / 1000.0).clamp(3.0, 10.0).ceil() as u64;
            row.wrk = procs::wrk(
                vec![
                    "-t2".into(),
                    "-c16".into(),
                    format!("-d{secs}s"),
                    "-s".into(),
                    lua.display().to_string(),
                    self.recv.url("/hook"),
                ],
                self.o.out.join(format!("wrk-hook-{}.txt", row.n)),
            )
            .await?;
            self.r.hooks.push(row);
        }

        self.r.fanout.push(FanoutRow {
            n,
            declare_ms: ms(declared),
            total_ms: ms(total),
            vigie_rate: n as f64 / total.as_secs_f64(),
            baseline_rate: n as f64 / baseline.as_secs_f64(),
            cpu_s: cpu,
            hwm_kb: hwm,
            ratios,
        });
        Ok(())
    }

    async fn latency(&mut self) -> Result<()> {
        let sink = Sink::start()?;
        let (v, _set) = self.start_vigie("latency", 100, &sink).await?;
        let am = Alertmanager::start(
            &self.o.out.join("alertmanager"),
            &self.recv.url("/am"),
            &self.http,
        )
        .await?;
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut lat = Latency::default();
        let limit = Duration::from_secs(10);
        say(format!(
            "latency: {} declarations and {} alerts, interleaved",
            self.o.repeat, self.o.repeat
        ));
        // Vigie and Alertmanager take turns, so that both see the same
        // machine (other load comes and goes). One untimed round first to
        // open the connections, as a running daemon would have them.
        for i in 0..=self.o.repeat {
            let (id, post, smtp, hook) = self
                .timed_declaration(&v, &sink, format!("lat-{i}"))
                .await?;
            if i > 0 {
                lat.smtp.push(smtp);
                lat.hook.push(hook);
                lat.post.push(post);
            }
            v.resolve(&self.http, &id).await?;

            let ab = self.recv.am.count();
            let t0 = Instant::now();
            let r = self
                .http
                .post(format!("{}/api/v2/alerts", am.base))
                .json(&json!([{
                    "labels": {"alertname": "ActivationCelluleCrise", "severity": "critical", "key": format!("lat-{run}-{i}")},
                    "annotations": {"summary": "Activation de la cellule de crise"},
                }]))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("alertmanager: {}", r.status());
            }
            self.recv.am.wait_for(ab + 1, limit).await?;
            if i > 0 {
                lat.am.push(ms(self.recv.am.at(ab) - t0));
            }
        }
        drop(am);
        let dump: String = (0..lat.smtp.len())
            .map(|i| {
                format!(
                    "{:.3}\t{:.3}\t{:.3}\t{:.3}\n",
                    lat.post[i], lat.smtp[i], lat.hook[i], lat.am[i]
                )
            })
            .collect();
        std::fs::write(
            self.o.out.join("latency.tsv"),
            format!("post_ms\tsmtp_ms\thook_ms\talertmanager_ms\n{dump}"),
        )?;

        // Pages, on the same daemon with 50 active events.
        if self.o.runs("pages") {
            say("pages: 50 active events");
            let sb = sink.arrivals.count();
            for i in 0..50 {
                v.declare(
                    &self.http,
                    json!({"scenario": "latence", "level": "rouge", "key": format!("actif-{i}")}),
                )
                .await?;
            }
            sink.arrivals.wait_for(sb + 50, limit).await?;
            for (name, path, auth) in [
                ("/", "/", false),
                ("/api/v1/status", "/api/v1/status", true),
            ] {
                say(format!("pages: wrk on {name}"));
                let mut args = vec![
                    "-t2".to_string(),
                    "-c50".into(),
                    "-d10s".into(),
                    "--latency".into(),
                ];
                if auth {
                    args.push("-H".into());
                    args.push(format!("Authorization: Bearer {}", v.token));
                }
                args.push(format!("{}{path}", v.base));
                let file = name.trim_matches('/').replace('/', "_");
                let file = if file.is_empty() {
                    "index".into()
                } else {
                    file
                };
                let r = procs::wrk(args, self.o.out.join(format!("wrk-page-{file}.txt"))).await?;
                self.r.pages.push((name.to_string(), r));
            }
        }
        v.stop();
        drop(sink);
        if let Err(e) = self.latency_breakdown(&mut lat).await {
            say(format!("latency breakdown: {e:#}"));
        }
        self.r.latency = Some(lat);
        Ok(())
    }

    /// One declaration of the latency scenario under `key`, timed: its id,
    /// then POST → answer, → first e-mail at the sink, → first webhook at
    /// the receiver (ms).
    async fn timed_declaration(
        &self,
        v: &Vigie,
        sink: &Sink,
        key: String,
    ) -> Result<(String, f64, f64, f64)> {
        let limit = Duration::from_secs(10);
        let sb = sink.arrivals.count();
        let hb = self.recv.hook.count();
        let t0 = Instant::now();
        let id = v
            .declare(
                &self.http,
                json!({"scenario": "latence", "level": "rouge", "key": key}),
            )
            .await?;
        let answered = t0.elapsed();
        sink.arrivals.wait_for(sb + 1, limit).await?;
        self.recv.hook.wait_for(hb + 1, limit).await?;
        Ok((
            id,
            ms(answered),
            ms(sink.arrivals.at(sb) - t0),
            ms(self.recv.hook.at(hb) - t0),
        ))
    }

    /// A second pass of declarations alone, on a daemon that logs its
    /// timings (`RUST_LOG=info,vigie::timing=debug`: one line per
    /// declaration, one per send): where the time goes, stage by stage.
    /// Apart from the first pass, so that writing those lines does not
    /// weigh on its figures.
    async fn latency_breakdown(&mut self, lat: &mut Latency) -> Result<()> {
        let sink = Sink::start()?;
        let d = self.settings(sink.port)?;
        let set = files::write_set(
            &self.o.out.join("latency-timing"),
            100,
            &[("banc.toml".into(), files::bench_plan())],
            &d,
        )?;
        let log = set.root.join("vigie.log");
        let v = Vigie::start(
            &self.o.vigie,
            &set.config,
            &set.root.join("var"),
            d.http_port,
            &log,
            &self.http,
            "info,vigie::timing=debug",
        )
        .await?;
        say(format!(
            "latency breakdown: {} declarations with timing lines",
            self.o.repeat
        ));
        // Per event: POST → answer, → e-mail, → webhook (ms).
        let mut seen: Vec<(String, f64, f64, f64)> = Vec::new();
        for i in 0..=self.o.repeat {
            let timed = self.timed_declaration(&v, &sink, format!("t-{i}")).await?;
            v.resolve(&self.http, &timed.0).await?;
            if i > 0 {
                seen.push(timed);
            }
        }
        v.stop();
        drop(sink);
        let text = std::fs::read_to_string(&log)?;
        let field = |line: &str, key: &str| -> Option<String> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let micros = |line: &str, key: &str| -> Option<f64> {
            field(line, key)?.parse::<f64>().ok().map(|us| us / 1000.0)
        };
        // event → (queued, work, commit in ms; commit's end in µs since
        // the epoch); (event, channel) → (send's start in µs, its length
        // in ms).
        let mut decl: HashMap<String, ([f64; 3], f64)> = HashMap::new();
        let mut sends: HashMap<(String, String), (f64, f64)> = HashMap::new();
        for line in text.lines().filter(|l| l.contains("vigie::timing")) {
            let Some(event) = field(line, "event") else {
                continue;
            };
            if line.contains("declaration timings") {
                if let (Some(q), Some(w), Some(c), Some(at)) = (
                    micros(line, "queued_us"),
                    micros(line, "work_us"),
                    micros(line, "commit_us"),
                    field(line, "committed_at_us").and_then(|v| v.parse::<f64>().ok()),
                ) {
                    decl.insert(event, ([q, w, c], at));
                }
            } else if line.contains(" sent")
                && let (Some(channel), Some(us), Some(at)) = (
                    field(line, "channel"),
                    micros(line, "us"),
                    field(line, "started_at_us").and_then(|v| v.parse::<f64>().ok()),
                )
            {
                // The first send of each channel for the event.
                sends.entry((event, channel)).or_insert((at, us));
            }
        }
        let mut stages = vec![Vec::new(); STAGES.len()];
        for (id, post, smtp, hook) in &seen {
            let (Some((d, committed)), Some((mail_at, mail)), Some((web_at, web))) = (
                decl.get(id),
                sends.get(&(id.clone(), "email".to_string())),
                sends.get(&(id.clone(), "sms".to_string())),
            ) else {
                continue;
            };
            let before: f64 = d.iter().sum();
            // From the commit's end to each send's start (clock readings of
            // two threads, µs → ms).
            let (mail_wait, web_wait) = (
                (mail_at - committed) / 1000.0,
                (web_at - committed) / 1000.0,
            );
            let row = [
                *post,
                d[0],
                d[1],
                d[2],
                mail_wait,
                *mail,
                smtp - before - mail_wait - mail,
                web_wait,
                *web,
                hook - before - web_wait - web,
            ];
            for (s, v) in stages.iter_mut().zip(row) {
                s.push(v);
            }
        }
        if stages[0].is_empty() {
            bail!(
                "no timing lines matched the declarations; see {}",
                log.display()
            );
        }
        lat.stages = stages;
        Ok(())
    }

    async fn footprint(&mut self) -> Result<()> {
        let sink = Sink::start()?;
        let d = self.settings(sink.port)?;
        let port = d.http_port;
        let plans: Vec<(String, String)> = (1..=20)
            .map(|k| (format!("plan-{k:02}.toml"), files::footprint_plan(k)))
            .collect();
        let set = files::write_set(&self.o.out.join("footprint"), 10_000, &plans, &d)?;
        say("footprint: vigie check (10 000 professionals, 20 plans)");
        let check = Command::new(&self.o.vigie)
            .args(["check", "-c"])
            .arg(&set.config)
            .output()?;
        if !check.status.success() {
            bail!(
                "vigie check fails on the footprint set:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let mut f = Footprint::default();
        let cmd = format!(
            "{} check -c {}",
            self.o.vigie.display(),
            set.config.display()
        );
        let json_path = self.o.out.join("hyperfine-check.json");
        let hyper = Command::new("hyperfine")
            .args(["--warmup", "2", "--runs", "10", "-N", "--export-json"])
            .arg(&json_path)
            .arg(&cmd)
            .output();
        match hyper {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&json_path)?)?;
                let r = &v["results"][0];
                f.check_median_ms = r["median"].as_f64().unwrap_or(f64::NAN) * 1000.0;
                f.check_min_ms = r["min"].as_f64().unwrap_or(f64::NAN) * 1000.0;
                f.check_max_ms = r["max"].as_f64().unwrap_or(f64::NAN) * 1000.0;
                f.check_tool = "hyperfine, 2 warm-up + 10 runs".into();
            }
            _ => {
                let mut times = Vec::new();
                for _ in 0..10 {
                    let t0 = Instant::now();
                    Command::new(&self.o.vigie)
                        .args(["check", "-c"])
                        .arg(&set.config)
                        .output()?;
                    times.push(ms(t0.elapsed()));
                }
                f.check_median_ms = pct(&times, 0.5);
                f.check_min_ms = pct(&times, 0.0);
                f.check_max_ms = pct(&times, 1.0);
                f.check_tool = "loop of 10 runs".into();
            }
        }
        say("footprint: idle daemon");
        let v = Vigie::start(
            &self.o.vigie,
            &set.config,
            &set.root.join("var"),
            port,
            &set.root.join("vigie.log"),
            &self.http,
            "info",
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        f.idle_rss_kb = procs::proc_status_kb(v.pid, "VmRSS").unwrap_or(0);
        f.idle_hwm_kb = procs::proc_status_kb(v.pid, "VmHWM").unwrap_or(0);
        v.stop();
        self.r.footprint = Some(f);
        Ok(())
    }
}

// ------------------------------------------------------------------ report

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The processor as `/proc/cpuinfo` names it, with its family and model
/// numbers (a virtual machine's "Intel Xeon Processor" says nothing more)
/// and whether the kernel isolates page tables for it (Meltdown): two
/// processors of one name can differ there, and a system call's cost with
/// it. Vigie makes many more system calls per message than smtp-source.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    };
    let name = field("model name").unwrap_or_else(|| "unknown".into());
    let family = field("cpu family").unwrap_or_default();
    let model = field("model").unwrap_or_default();
    let meltdown = std::fs::read_to_string("/sys/devices/system/cpu/vulnerabilities/meltdown")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{name} (family {family}, model {model}; Meltdown: {meltdown})")
}

fn machine() -> String {
    let cpu = cpu();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let commit = sh("git", &["rev-parse", "--short=12", "HEAD"]);
    let dirty = !sh(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!bench/RESULTS.md",
        ],
    )
    .is_empty();
    format!(
        "- machine: {} cores (nproc), {:.1} GiB RAM, {cpu}\n- kernel: {}\n- date: {}\n- commit: {commit}{}\n",
        sh("nproc", &[]),
        mem_kb as f64 / 1024.0 / 1024.0,
        sh("uname", &["-sr"]),
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
    )
}

fn yes(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}

fn report(o: &Opts, r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Vigie benchmark results\n");
    let _ = writeln!(
        s,
        "Written by `bench/run` (see `bench/README.md`). Every figure is measured on loopback in one \
         run, next to its baseline measured in the same run on the same machine.\n"
    );
    s.push_str(&machine());
    let _ = writeln!(
        s,
        "- tools: {}; {}; {}; {}\n",
        sh(
            "sh",
            &[
                "-c",
                "dpkg-query -W -f='postfix ${Version}' postfix 2>/dev/null"
            ]
        ),
        sh("sh", &["-c", "wrk -v 2>&1 | head -1 | cut -d' ' -f1-2"]),
        sh(
            "sh",
            &[
                "-c",
                "dpkg-query -W -f='prometheus-alertmanager ${Version}' prometheus-alertmanager 2>/dev/null"
            ]
        ),
        sh("sh", &["-c", "hyperfine --version 2>/dev/null"]),
    );

    if !r.loads.is_empty() {
        let loads: Vec<String> = r
            .loads
            .iter()
            .map(|(what, l)| format!("{what} {l:.2}"))
            .collect();
        let _ = writeln!(
            s,
            "- load average (1 min) when each benchmark started: {}\n",
            loads.join(", ")
        );
    }

    let mut targets: Vec<(String, String, bool)> = Vec::new();

    if !r.fanout.is_empty() {
        let _ = writeln!(
            s,
            "## 1. Fan-out: one declared event to N recipients by e-mail\n\n\
             Vigie: `POST /api/v1/events` → the N-th message accepted by `smtp-sink` (the N \
             deliveries are committed to the outbox before the POST answers), SMTP pool {pool}, \
             per_second 1 000 000 (a rate limit out of the way). Baseline: `smtp-source -d -s {pool} -m N -l {size}` (connections \
             reused, as Vigie's pool does) into the same sink. {rounds} rounds per size, each a new \
             event on the same daemon: smtp-source, Vigie, smtp-source; a round compares Vigie with \
             the faster of the two smtp-source runs around it. The row is the median round; \
             \"rounds\" lists every round's ratio (the machine is shared: they show the noise). \
             Message size {size} bytes. \"Vigie CPU\" is the daemon's CPU time (user and system) \
             from the POST to the last message, in all and per message: less noisy than the rates \
             on a shared machine, and what decides the rate when the sink and Vigie share two cores.\n\n\
             | recipients | outbox written (POST) | POST → last message | Vigie msg/s | smtp-source msg/s | ratio | rounds | Vigie CPU | CPU per message | peak RSS |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            rounds = o.rounds,
            pool = o.pool,
            size = r.msg_size
        );
        for f in &r.fanout {
            let ratio = f.vigie_rate / f.baseline_rate;
            let _ = writeln!(
                s,
                "| {} | {:.0} ms | {:.0} ms | {:.0} | {:.0} | {:.0} % | {} | {:.1} s | {:.0} µs | {:.1} MB |",
                f.n,
                f.declare_ms,
                f.total_ms,
                f.vigie_rate,
                f.baseline_rate,
                ratio * 100.0,
                f.ratios
                    .iter()
                    .map(|r| format!("{:.0}", r * 100.0))
                    .collect::<Vec<_>>()
                    .join(" / "),
                f.cpu_s,
                f.cpu_s * 1e6 / f.n as f64,
                f.hwm_kb as f64 / 1024.0
            );
            targets.push((
                format!("fan-out {} e-mails ≥ 90 % of smtp-source", f.n),
                // One decimal: 89.6 % would read "90 %" beside "not met".
                format!("{:.1} %", ratio * 100.0),
                ratio >= 0.9,
            ));
        }
        s.push('\n');
    }
    if !r.hooks.is_empty() {
        let _ = writeln!(
            s,
            "### Webhooks, one call per recipient\n\n\
             Vigie: `POST /api/v1/events` → the N-th call received (per-recipient webhook, 16 \
             concurrent calls, signed). Baseline: `wrk -t2 -c16` POSTing a body of the same size to \
             the same receiver (a small axum server in the harness answering 200).\n\n\
             | calls | outbox written (POST) | POST → last call | Vigie calls/s | wrk req/s | ratio | Vigie CPU | CPU per call | body |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for h in &r.hooks {
            let _ = writeln!(
                s,
                "| {} | {:.0} ms | {:.0} ms | {:.0} | {:.0} | {:.0} % | {:.1} s | {:.0} µs | {} B |",
                h.n,
                h.declare_ms,
                h.total_ms,
                h.vigie_rate,
                h.wrk.rps,
                h.vigie_rate / h.wrk.rps * 100.0,
                h.cpu_s,
                h.cpu_s * 1e6 / h.n as f64,
                h.body
            );
            let ratio = h.vigie_rate / h.wrk.rps;
            targets.push((
                format!("webhooks {}: ≥ 50 % of wrk", h.n),
                format!("{:.0} %", ratio * 100.0),
                ratio >= 0.5,
            ));
        }
        s.push('\n');
    }
    if let Some(l) = &r.latency {
        let _ = writeln!(
            s,
            "## 2. Latency: declaration → first message\n\n\
             {} declarations one after the other (distinct keys; each resolved before the next), \
             one recipient on e-mail and webhook (escalation tier 0), after one untimed warm-up. \
             Alertmanager: one alert `POST /api/v2/alerts` → its webhook at the same receiver \
             (`group_wait: 0s`, `group_by: ['...']`, clustering off). The two take turns, one \
             declaration then one alert, so that both see the same machine. Raw figures: \
             `bench/out/latency.tsv`.\n\n\
             | path | p50 | p99 | max |\n| --- | ---: | ---: | ---: |",
            o.repeat
        );
        for (name, v) in [
            (
                "Vigie: POST → answer (event and deliveries committed)",
                &l.post,
            ),
            ("Vigie: POST → first e-mail accepted by smtp-sink", &l.smtp),
            ("Vigie: POST → first webhook received", &l.hook),
            ("Alertmanager: POST → webhook received", &l.am),
        ] {
            if !v.is_empty() {
                let _ = writeln!(
                    s,
                    "| {name} | {:.2} ms | {:.2} ms | {:.2} ms |",
                    pct(v, 0.5),
                    pct(v, 0.99),
                    pct(v, 1.0)
                );
            }
        }
        if !l.stages.is_empty() && !l.stages[0].is_empty() {
            let _ = writeln!(
                s,
                "\n**Where the time goes.** A second pass of {} declarations alone (no \
                 Alertmanager), on a daemon started with `RUST_LOG=info,vigie::timing=debug`: \
                 each declaration logs how long it waited for the database thread, its \
                 statements and its commit, and when the commit ended; each send logs when it \
                 started and how long it took. From the commit to a send's start is the \
                 hand-over to the sending thread, its wake-up included. \"The rest\" is what the \
                 harness measured from the POST to the arrival minus those stages: the request \
                 read and parsed and the sink or receiver noting the arrival (`smtp-sink` prints \
                 a counter read through a pipe; the webhook receiver is in the harness, as for \
                 Alertmanager), less the way back of the server's last answer, which the \
                 exchange includes but which comes after the arrival: it can be below zero. \
                 Percentiles are per stage: they do not add up.\n\n\
                 | stage | p50 | p99 |\n| --- | ---: | ---: |",
                l.stages[0].len()
            );
            for (name, v) in STAGES.iter().zip(&l.stages) {
                let _ = writeln!(
                    s,
                    "| {name} | {:.3} ms | {:.3} ms |",
                    pct(v, 0.5),
                    pct(v, 0.99)
                );
            }
        }
        if !l.am.is_empty() {
            let am99 = pct(&l.am, 0.99);
            targets.push((
                "declaration → first e-mail p99 ≤ Alertmanager's p99".into(),
                format!("{:.2} ms vs {:.2} ms", pct(&l.smtp, 0.99), am99),
                pct(&l.smtp, 0.99) <= am99,
            ));
            targets.push((
                "declaration → first webhook p99 ≤ Alertmanager's p99".into(),
                format!("{:.2} ms vs {:.2} ms", pct(&l.hook, 0.99), am99),
                pct(&l.hook, 0.99) <= am99,
            ));
        }
        s.push('\n');
    }
    if !r.pages.is_empty() {
        let _ = writeln!(
            s,
            "## 3. Pages under load\n\n\
             `wrk -t2 -c50 -d10s --latency` with 50 active events (the API with its bearer token).\n\n\
             | route | requests/s | p50 | p99 | errors |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for (name, w) in &r.pages {
            let _ = writeln!(
                s,
                "| `GET {name}` | {:.0} | {:.2} ms | {:.2} ms | {} |",
                w.rps, w.p50_ms, w.p99_ms, w.errors
            );
            targets.push((
                format!("`GET {name}` p99 < 10 ms at 50 connections"),
                format!("{:.2} ms", w.p99_ms),
                w.p99_ms < 10.0 && w.errors == 0,
            ));
        }
        s.push('\n');
    }
    if let Some(f) = &r.footprint {
        let _ = writeln!(
            s,
            "## 4. Footprint\n\n\
             A directory of 10 000 professionals and 20 plan files (3 scenarios each).\n\n\
             | figure | value |\n| --- | ---: |\n\
             | idle RSS (VmRSS, 3 s after start) | {:.1} MB |\n\
             | start-up peak (VmHWM, idle) | {:.1} MB |\n\
             | `vigie check` median ({}) | {:.0} ms (min {:.0}, max {:.0}) |",
            f.idle_rss_kb as f64 / 1024.0,
            f.idle_hwm_kb as f64 / 1024.0,
            f.check_tool,
            f.check_median_ms,
            f.check_min_ms,
            f.check_max_ms
        );
        if let Some(big) = r.fanout.iter().max_by_key(|f| f.n) {
            let _ = writeln!(
                s,
                "| peak RSS during the {} fan-out (VmHWM) | {:.1} MB |",
                big.n,
                big.hwm_kb as f64 / 1024.0
            );
        }
        targets.push((
            "idle RSS ≤ 20 MB (10 000 professionals, 20 plans)".into(),
            format!("{:.1} MB", f.idle_rss_kb as f64 / 1024.0),
            f.idle_rss_kb <= 20 * 1024,
        ));
        targets.push((
            "`vigie check` ≤ 200 ms on the same set".into(),
            format!("{:.0} ms", f.check_median_ms),
            f.check_median_ms <= 200.0,
        ));
        s.push('\n');
    }
    if !r.drills.is_empty() {
        s.push_str(&drills_report(&r.drills));
        for d in &r.drills {
            targets.push((
                format!("fault drill: {}", d.name),
                match &d.outcome {
                    drills::Outcome::Passed => "passed".to_string(),
                    drills::Outcome::Failed(_) => "failed".to_string(),
                    drills::Outcome::Skipped(why) => format!("skipped ({why})"),
                },
                d.passed(),
            ));
        }
    }
    if !targets.is_empty() {
        let _ = writeln!(
            s,
            "## Targets (issues \"Proof under load and faults\" and \"One door into the engine\")\n\n| target | measured | |\n| --- | ---: | --- |"
        );
        for (t, v, ok) in &targets {
            let _ = writeln!(s, "| {t} | {v} | {} |", yes(*ok));
        }
        s.push('\n');
    }
    s
}

/// Markdown cells hold no `|` nor line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// "## 5. Fault drills": the table, then how each drill was run.
fn drills_report(all: &[drills::Drill]) -> String {
    let mut s = String::new();
    let total: f64 = all.iter().map(|d| d.secs).sum();
    let _ = writeln!(
        s,
        "## 5. Fault drills\n\n\
         Full-size versions of the drills of `tests/it/drills.rs`: the release daemon as a process, \
         the harness's own SMTP sink (which records every message's recipients, to count who was \
         missed and who was reached twice) and webhook receivers, on loopback. {:.0} s in all.\n\n\
         | drill | what was checked | figures | outcome |\n| --- | --- | --- | --- |",
        total
    );
    for d in all {
        let checks: Vec<String> = d
            .checks
            .iter()
            .map(|(c, ok)| format!("{} {}", if *ok { "✓" } else { "✗" }, cell(c)))
            .collect();
        let outcome = match &d.outcome {
            drills::Outcome::Passed => format!("**passed** ({:.0} s)", d.secs),
            drills::Outcome::Failed(why) => format!("**failed** ({:.0} s): {}", d.secs, cell(why)),
            drills::Outcome::Skipped(why) => format!("skipped ({})", cell(why)),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            d.name,
            checks.join("<br>"),
            d.figures
                .iter()
                .map(|f| cell(f))
                .collect::<Vec<_>>()
                .join("<br>"),
            outcome
        );
    }
    s.push('\n');
    for (i, d) in all.iter().enumerate() {
        let _ = writeln!(s, "**5.{} {}.** {}\n", i + 1, d.name, d.how);
    }
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = opts()?;
    std::fs::create_dir_all(&o.out)?;
    if !o.vigie.exists() {
        bail!(
            "{} not found: build it first (cargo build --release)",
            o.vigie.display()
        );
    }
    let recv = Receiver::start().await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let mut b = Bench {
        o,
        http,
        recv,
        r: Results::default(),
    };
    let started = Instant::now();
    wait_quiet().await;
    if b.o.runs("fanout") || b.o.runs("webhook") {
        b.r.msg_size = b.probe_size().await?;
        say(format!("message size: {} bytes", b.r.msg_size));
        for n in b.o.sizes.clone() {
            b.r.loads.push((format!("fan-out {n}"), load()));
            b.fanout(n).await?;
        }
    }
    if b.o.runs("latency") || b.o.runs("pages") {
        b.r.loads.push(("latency and pages".into(), load()));
        b.latency().await?;
    }
    if b.o.runs("footprint") {
        b.r.loads.push(("footprint".into(), load()));
        b.footprint().await?;
    }
    if b.o.runs("drills") {
        b.r.loads.push(("fault drills".into(), load()));
        let ctx = drills::Ctx {
            vigie: &b.o.vigie,
            out: &b.o.out,
            http: &b.http,
        };
        b.r.drills = drills::run_all(&ctx).await;
    }
    let text = report(&b.o, &b.r);
    println!("{text}");
    say(format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    if let Some(path) = &b.o.results {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        say(format!("wrote {}", path.display()));
    }
    Ok(())
}
