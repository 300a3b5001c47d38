//! An in-process daemon on port 0 with a temporary directory, a manual
//! clock, a real SMTP server and a real webhook receiver on loopback.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use vigie::daemon::Daemon;
use vigie::schedule::clock::ManualClock;

use crate::smtp::SmtpServer;
use crate::support::{copy_dir, repo};
use crate::webhook::Receiver;

pub const SMS_SECRET: &str = "sms-secret-for-tests";
pub const ROOM_SECRET: &str = "room-secret-for-tests";

pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub smtp: SmtpServer,
    pub sms: Receiver,
    pub room: Receiver,
    pub token: String,
    pub http: reqwest::Client,
    /// Whether the daemon runs its own timer loop.
    pub timers: bool,
}

/// 15 June 2026, 10:00 in Paris.
pub fn june_15() -> DateTime<Utc> {
    chrono_tz::Europe::Paris
        .with_ymd_and_hms(2026, 6, 15, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Writes the event fixture set with its SMTP and webhooks pointing at the
/// given servers; returns the config path.
pub fn write_fixture(
    dir: &std::path::Path,
    smtp: &SmtpServer,
    sms: &Receiver,
    room: &Receiver,
) -> PathBuf {
    copy_dir(&repo().join("tests/fixtures/events"), dir);
    std::fs::create_dir_all(dir.join("config/secrets")).unwrap();
    std::fs::write(dir.join("config/secrets/sms-hmac"), SMS_SECRET).unwrap();
    std::fs::write(dir.join("config/secrets/room-hmac"), ROOM_SECRET).unwrap();
    let config = format!(
        r#"[daemon]
name = "CPTS de test"
timezone = "Europe/Paris"
data_dir = "../var"
plans = "../plans"
directory = "directory.toml"
public_url = "http://vigie.test"

[http]
listen = "127.0.0.1:0"

[email]
transport = "smtp"
from = "Vigie CPTS de test <vigie@example.org>"
url = "smtp://{smtp}"
pool = 4
per_second = 1000

[webhook.sms]
url = "{sms}"
secret_file = "secrets/sms-hmac"
per_recipient = true
timeout = "2s"

[webhook.salle]
url = "{room}"
secret_file = "secrets/room-hmac"
per_recipient = false
timeout = "2s"
"#,
        smtp = smtp.addr,
        sms = sms.url(),
        room = room.url(),
    );
    let path = dir.join("config/vigie.toml");
    std::fs::write(&path, config).unwrap();
    path
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        TestDaemon::start_with(true).await
    }

    /// A daemon whose timers only move when the test ticks them.
    pub async fn start_manual() -> TestDaemon {
        TestDaemon::start_with(false).await
    }

    async fn start_with(timers: bool) -> TestDaemon {
        TestDaemon::start_setup(timers, |_| {}).await
    }

    /// Starts after `setup` has changed the fixture files in the directory.
    pub async fn start_setup(timers: bool, setup: impl FnOnce(&std::path::Path)) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let smtp = SmtpServer::start().await;
        let sms = Receiver::start(SMS_SECRET).await;
        let room = Receiver::start(ROOM_SECRET).await;
        let config = write_fixture(dir.path(), &smtp, &sms, &room);
        setup(dir.path());
        let clock = Arc::new(ManualClock::new(june_15()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let daemon = Daemon::start_with(&config, clock.clone(), Some(listener), timers)
            .await
            .expect("daemon starts");
        let data_dir = daemon.state.config().daemon.data_dir.clone();
        let token = std::fs::read_to_string(data_dir.join("api-token"))
            .unwrap()
            .trim()
            .to_string();
        TestDaemon {
            daemon: Some(daemon),
            clock,
            dir,
            smtp,
            sms,
            room,
            token,
            http: reqwest::Client::new(),
            timers,
        }
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// Logs in as the operator generated at first start: the session
    /// cookie pair (`vigie_session=…`) to send back.
    pub async fn operator_cookie(&self) -> String {
        let password = std::fs::read_to_string(self.dir.path().join("var/operator-password"))
            .expect("the generated operator password");
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(self.url("/login"))
            .form(&[("name", "bureau"), ("password", password.trim())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "login as the generated operator");
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.daemon().addr)
    }

    /// An authenticated API call: (status, JSON).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn declare(&self, body: Value) -> Value {
        let (status, v) = self
            .api(reqwest::Method::POST, "/api/v1/events", Some(body))
            .await;
        assert!(status == 201 || status == 200, "declare: {status} {v}");
        v
    }

    pub async fn event(&self, id: &str) -> Value {
        let (status, v) = self
            .api(reqwest::Method::GET, &format!("/api/v1/events/{id}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Moves the manual clock and wakes the daemon's loops.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.daemon().state.kick();
    }

    /// The response link given to a recipient, read from the e-mail sent.
    pub fn link_for(&self, email: &str) -> String {
        let msgs = self.smtp.to(email);
        let text = msgs
            .last()
            .unwrap_or_else(|| panic!("no mail to {email}"))
            .text();
        let start = text
            .find("http://vigie.test/r/")
            .expect("a response link in the mail");
        text[start..].split_whitespace().next().unwrap().to_string()
    }

    /// Answers through a response link, as the form would.
    pub async fn answer(&self, link: &str, response: &str) -> u16 {
        let path = link.trim_start_matches("http://vigie.test");
        self.http
            .post(self.url(path))
            .form(&[("response", response)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Stops the daemon and starts a new one on the same files and database,
    /// with the clock set to `at`: a restart.
    pub async fn restart_at(&mut self, at: DateTime<Utc>) {
        if let Some(d) = self.daemon.take() {
            d.stop().await;
        }
        self.clock.set(at);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = self.dir.path().join("config/vigie.toml");
        self.daemon = Some(
            Daemon::start_with(&config, self.clock.clone(), Some(listener), self.timers)
                .await
                .expect("daemon restarts"),
        );
    }

    pub async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().await;
        }
    }
}

/// Polls `cond` until it holds, at most `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts deliveries of an event by state.
pub fn count(ev: &Value, state: &str) -> usize {
    ev["deliveries"]
        .as_array()
        .map(|d| d.iter().filter(|x| x["state"] == state).count())
        .unwrap_or(0)
}

/// The value of the CSRF field of a page's form.
pub fn csrf_of(html: &str) -> String {
    let field = "name=\"csrf\" value=\"";
    let i = html.find(field).expect("a CSRF field") + field.len();
    html[i..].split('"').next().unwrap().to_string()
}

/// `vigie ARGS` on a blocking thread, from a test on the runtime: (exit
/// code, stdout, stderr).
pub async fn run_vigie_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::run_vigie(&args)
    })
    .await
    .unwrap()
}

impl TestDaemon {
    /// Declares `body`: the id of the event.
    pub async fn declare_id(&self, body: Value) -> String {
        self.declare(body).await["id"].as_str().unwrap().to_string()
    }

    /// An anonymous GET (the public page, a response link): the body.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A bureau page with the session `cookie`, redirects not followed:
    /// (status, body).
    pub async fn page(&self, cookie: &str, path: &str) -> (u16, String) {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Answers through a response link with the form's three fields:
    /// (status, page).
    pub async fn answer_with(
        &self,
        link: &str,
        response: &str,
        eta: &str,
        comment: &str,
    ) -> (u16, String) {
        let path = link.trim_start_matches("http://vigie.test");
        let r = self
            .http
            .post(self.url(path))
            .form(&[("response", response), ("eta", eta), ("comment", comment)])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Whether every delivery of event `id` has left (none pending,
    /// sending or retrying): sent or failed for good.
    pub async fn all_sent(&self, id: &str) -> bool {
        let ev = self.event(id).await;
        count(&ev, "pending") + count(&ev, "sending") + count(&ev, "retrying") == 0
    }

    /// The main courante of event `id` as the store holds it, oldest first.
    pub async fn journal(&self, id: &str) -> Vec<vigie::store::journal::Entry> {
        let n: i64 = id.parse().unwrap();
        self.daemon()
            .state
            .store
            .call(move |c| vigie::store::journal::list(c, n))
            .await
            .unwrap()
    }

    /// Points the configuration at this daemon's real address, so that the
    /// command line reaches it: the configuration's path.
    pub fn config_for_cli(&self) -> PathBuf {
        let config = self.dir.path().join("config/vigie.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("127.0.0.1:0", &self.daemon().addr.to_string()),
        )
        .unwrap();
        config
    }
}
