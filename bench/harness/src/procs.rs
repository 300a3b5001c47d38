//! The processes a benchmark talks to: the HTTP receiver (in this process),
//! `smtp-sink`, the Vigie daemon, Alertmanager, `wrk`; and what is read from
//! /proc.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::watch;

/// Arrivals of one kind (SMTP messages accepted, webhook calls received),
/// each with its instant.
pub struct Arrivals {
    times: Mutex<Vec<Instant>>,
    tx: watch::Sender<u64>,
    /// Size of the last body received (webhooks).
    pub last_size: AtomicU64,
}

impl Arrivals {
    pub fn new() -> Arc<Arrivals> {
        Arc::new(Arrivals {
            times: Mutex::new(Vec::new()),
            tx: watch::channel(0).0,
            last_size: AtomicU64::new(0),
        })
    }

    pub fn add(&self, k: u64, at: Instant) {
        let n = {
            let mut t = self.times.lock().unwrap();
            for _ in 0..k {
                t.push(at);
            }
            t.len() as u64
        };
        self.tx.send_replace(n);
    }

    pub fn count(&self) -> u64 {
        self.times.lock().unwrap().len() as u64
    }

    /// The instant of arrival number `i` (0-based).
    pub fn at(&self, i: u64) -> Instant {
        self.times.lock().unwrap()[i as usize]
    }

    /// Waits until at least `n` arrivals, at most `limit`.
    pub async fn wait_for(&self, n: u64, limit: Duration) -> Result<()> {
        let mut rx = self.tx.subscribe();
        let r = tokio::time::timeout(limit, rx.wait_for(|v| *v >= n)).await;
        match r {
            Ok(Ok(_)) => Ok(()),
            _ => bail!(
                "timed out after {:?}: {} arrivals of {n}",
                limit,
                self.count()
            ),
        }
    }
}

/// The HTTP receiver: 200 to everything, arrivals counted per path
/// (`/hook`: Vigie's webhook and wrk; `/am`: Alertmanager).
pub struct Receiver {
    pub port: u16,
    pub hook: Arc<Arrivals>,
    pub am: Arc<Arrivals>,
}

impl Receiver {
    pub async fn start() -> Result<Receiver> {
        use axum::Router;
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::routing::post;
        let hook = Arrivals::new();
        let am = Arrivals::new();
        async fn take(State(a): State<Arc<Arrivals>>, body: Bytes) -> &'static str {
            a.last_size.store(body.len() as u64, Ordering::Relaxed);
            a.add(1, Instant::now());
            "ok"
        }
        let app = Router::new()
            .route("/hook", post(take).with_state(hook.clone()))
            .route("/am", post(take).with_state(am.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { port, hook, am })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Stops a child we started: SIGTERM, then SIGKILL after `grace`.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `smtp-sink -c`: its running counter on stdout gives the instant each
/// message is accepted (after the final `.`).
pub struct Sink {
    child: Child,
    pub port: u16,
    pub arrivals: Arc<Arrivals>,
}

impl Sink {
    pub fn start() -> Result<Sink> {
        let port = free_port()?;
        let mut child = Command::new("smtp-sink")
            .args(["-c", "-u", "root", &format!("127.0.0.1:{port}"), "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run smtp-sink (Debian package postfix)")?;
        let mut out = child.stdout.take().expect("piped");
        let arrivals = Arrivals::new();
        let a = arrivals.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            let mut pending = Vec::new();
            let mut seen = 0u64;
            loop {
                let n = match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let now = Instant::now();
                pending.extend_from_slice(&buf[..n]);
                // Records end with '\r': "sess=N quit=N mesg=N\r".
                while let Some(pos) = pending.iter().position(|&b| b == b'\r' || b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line);
                    if let Some(m) = line.split("mesg=").nth(1) {
                        let v: u64 = m
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .collect::<String>()
                            .parse()
                            .unwrap_or(seen);
                        if v > seen {
                            a.add(v - seen, now);
                            seen = v;
                        }
                    }
                }
            }
        });
        // Wait until it listens.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("smtp-sink does not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Sink {
            child,
            port,
            arrivals,
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

/// A `vigie run` daemon on a generated configuration.
pub struct Vigie {
    child: Child,
    pub base: String,
    pub token: String,
    pub pid: u32,
}

impl Vigie {
    /// Starts `vigie run` with `RUST_LOG` set to `rust_log` and waits until
    /// it answers `/healthz`.
    pub async fn start(
        bin: &Path,
        config: &Path,
        data_dir: &Path,
        port: u16,
        log: &Path,
        http: &reqwest::Client,
        rust_log: &str,
    ) -> Result<Vigie> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .args(["run", "-c"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let pid = child.id();
        let mut v = Vigie {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            pid,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(st)) = v.child.try_wait() {
                bail!("vigie exited at start ({st}); see {}", log.display());
            }
            if let Ok(r) = http.get(format!("{}/healthz", v.base)).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("vigie did not start in time; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        v.token = std::fs::read_to_string(data_dir.join("api-token"))
            .context("reading the generated API token")?
            .trim()
            .to_string();
        Ok(v)
    }

    /// POST /api/v1/events; returns the event id.
    pub async fn declare(&self, http: &reqwest::Client, body: serde_json::Value) -> Result<String> {
        let r = http
            .post(format!("{}/api/v1/events", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: serde_json::Value = r.json().await?;
        if !status.is_success() {
            bail!("declare: {status} {v}");
        }
        Ok(v["id"].as_str().unwrap_or_default().to_string())
    }

    pub async fn resolve(&self, http: &reqwest::Client, id: &str) -> Result<()> {
        let r = http
            .post(format!("{}/api/v1/events/{id}/resolve", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("resolve {id}: {}", r.status());
        }
        Ok(())
    }

    pub fn stop(mut self) {
        stop_child(&mut self.child, Duration::from_secs(15));
    }

    /// Sends a signal (`libc::SIGHUP`, …) to the daemon.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid as i32, sig);
        }
    }

    /// `kill -9`, then waits for the process to be gone.
    pub fn kill9(&mut self) -> Result<std::process::ExitStatus> {
        self.signal(libc::SIGKILL);
        Ok(self.child.wait()?)
    }
}

impl Drop for Vigie {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(15));
    }
}

/// A field of /proc/PID/status in kB (VmRSS, VmHWM).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU time of a process, in seconds.
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / hz)
}

/// Prometheus Alertmanager with a webhook receiver and `group_wait: 0s`.
pub struct Alertmanager {
    child: Child,
    pub base: String,
}

impl Alertmanager {
    pub async fn start(dir: &Path, hook_url: &str, http: &reqwest::Client) -> Result<Alertmanager> {
        // A fresh notification log: an alert it already notified would not
        // be sent again (repeat_interval).
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir.join("data"))?;
        let config = format!(
            "route:\n  receiver: bench\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1m\n  repeat_interval: 4h\n\
             receivers:\n  - name: bench\n    webhook_configs:\n      - url: '{hook_url}'\n        send_resolved: false\n"
        );
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(&cfg, config)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("alertmanager.log"))?;
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot run prometheus-alertmanager")?;
        let mut am = Alertmanager {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = am.child.try_wait() {
                bail!("alertmanager exited at start ({st})");
            }
            if let Ok(r) = http.get(format!("{}/-/ready", am.base)).send().await
                && r.status().is_success()
            {
                return Ok(am);
            }
            if Instant::now() > deadline {
                bail!("alertmanager did not start in time");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// What `wrk --latency` measured.
#[derive(Debug, Clone, Default)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub errors: u64,
}

fn parse_ms(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, mult) = if let Some(x) = v.strip_suffix("us") {
        (x, 0.001)
    } else if let Some(x) = v.strip_suffix("ms") {
        (x, 1.0)
    } else if let Some(x) = v.strip_suffix("m") {
        (x, 60_000.0)
    } else if let Some(x) = v.strip_suffix('s') {
        (x, 1000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * mult)
}

pub fn parse_wrk(out: &str) -> Result<WrkResult> {
    let mut r = WrkResult::default();
    for line in out.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse()?;
        } else if let Some(v) = l.strip_prefix("50%") {
            r.p50_ms = parse_ms(v).unwrap_or(f64::NAN);
        } else if let Some(v) = l.strip_prefix("99%") {
            r.p99_ms = parse_ms(v).unwrap_or(f64::NAN);
        } else if l.contains("requests in") {
            r.requests = l.split_whitespace().next().unwrap_or("0").parse()?;
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            r.errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    if r.rps == 0.0 {
        bail!("cannot read wrk's output:\n{out}");
    }
    Ok(r)
}

/// Runs wrk (blocking, on a thread of its own).
pub async fn wrk(args: Vec<String>, log: PathBuf) -> Result<WrkResult> {
    let out = tokio::task::spawn_blocking(move || Command::new("wrk").args(&args).output())
        .await?
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    std::fs::write(&log, &text)?;
    parse_wrk(&text)
}
