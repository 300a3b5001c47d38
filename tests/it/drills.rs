//! Fault drills, at small scale (the full-size ones are in `bench/`): a
//! full disk, a slow or hanging receiver, a sink that stops mid-fan-out,
//! `kill -9` in the middle of a fan-out, a broken reload during an
//! escalation. Nothing is lost.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use serde_json::json;

use crate::harness::{TestDaemon, count, eventually, write_fixture};
use crate::smtp::SmtpServer;
use crate::support::DaemonProcess;
use crate::webhook::Receiver;

/// The real daemon (`vigie run`) in `dir`, sending the orange canicule
/// broadcast to `nurses` nurses through a loopback SMTP server that takes
/// `smtp_delay` per message, once `reached` of them have arrived (or 60 s).
pub struct FanOutUnderWay {
    /// The daemon's configuration, to start it again.
    pub config: std::path::PathBuf,
    pub smtp: SmtpServer,
    pub sms: Receiver,
    pub room: Receiver,
    pub daemon: DaemonProcess,
}

pub async fn fan_out_under_way(
    dir: &Path,
    nurses: usize,
    smtp_delay: Duration,
    reached: usize,
) -> FanOutUnderWay {
    let smtp = SmtpServer::start().await;
    let sms = Receiver::start(crate::harness::SMS_SECRET).await;
    let room = Receiver::start(crate::harness::ROOM_SECRET).await;
    let config = write_fixture(dir, &smtp, &sms, &room);
    many_nurses(dir, nurses);
    smtp.set_delay(smtp_delay);
    let daemon = DaemonProcess::start(&config);
    let token = std::fs::read_to_string(dir.join("var/api-token")).unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/events", daemon.addr))
        .bearer_auth(token.trim())
        .json(&json!({"scenario": "canicule", "level": "orange"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let deadline = Instant::now() + Duration::from_secs(60);
    while smtp.messages().len() < reached && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    FanOutUnderWay {
        config,
        smtp,
        sms,
        room,
        daemon,
    }
}

/// Replaces the fixture directory with `n` nurses (the orange broadcast's
/// audience) plus the referents and the bureau.
pub fn many_nurses(dir: &Path, n: usize) {
    let path = dir.join("config/directory.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let groups = text.find("[group.").unwrap();
    let mut extra = String::new();
    for i in 0..n {
        extra.push_str(&format!(
            "[[professional]]\nid = \"idel{i}\"\nname = \"Infirmière {i}\"\nprofession = \"infirmier\"\ncommune = \"Thann\"\nemail = \"idel{i}@example.org\"\nphone = \"+336{:08}\"\n\n",
            10_000_000 + i
        ));
    }
    text.insert_str(groups, &extra);
    std::fs::write(path, text).unwrap();
}

/// Whether this process runs as root (`/proc/self` belongs to the
/// process's effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether the tests run under CI (`CI=true`, as CI sets it).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Says loudly that a test could not run: straight to the process's
/// standard error, which the test harness does not capture (`eprintln!`
/// in a passing test is never shown).
fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {why}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_disk_full_a_declaration_fails_clearly_and_works_again_when_space_returns() {
    let mount = tempfile::tempdir().unwrap();
    let mp = mount.path().to_path_buf();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mp)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        let why = if running_as_root() {
            "mount -t tmpfs failed (root without the right to mount?)"
        } else {
            "not root, cannot mount a tmpfs"
        };
        // CI runs as root: there the drill must run, never pass unseen.
        assert!(
            !in_ci(),
            "the disk-full drill cannot run under CI: {why}; CI must run the tests as root"
        );
        skipped(
            "drills::with_the_disk_full_a_declaration_fails_clearly_and_works_again_when_space_returns",
            why,
        );
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            // Lazily: a daemon that panicked may still hold its database.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(mp.clone());
    let mp2 = mp.clone();
    let d = TestDaemon::start_setup(true, move |dir| {
        let config = dir.join("config/vigie.toml");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "data_dir = \"../var\"",
            &format!("data_dir = \"{}\"", mp2.display()),
        );
        std::fs::write(config, text).unwrap();
    })
    .await;
    let token = d.token.clone();
    let api = |body: serde_json::Value| {
        let req = d
            .http
            .post(d.url("/api/v1/events"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // Fill the disk.
    let filler = mp.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let (status, v) = api(json!({"scenario": "canicule", "level": "orange"})).await;
    assert_eq!(status, 507, "{v}");
    assert_eq!(v["error"]["code"], "disk_full");
    assert!(v["error"]["message"].as_str().unwrap().contains("full"));

    // Space returns: it works, and the database is intact.
    std::fs::remove_file(&filler).unwrap();
    let (status, v) = api(json!({"scenario": "canicule", "level": "orange"})).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    eventually(10, "sent", || async {
        count(&d.event(&id).await, "sent") == 7
    })
    .await;
    let state = &d.daemon().state;
    let (check, events): (String, i64) = state
        .store
        .call(|c| {
            let check = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let events = c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
            Ok((check, events))
        })
        .await
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(events, 1, "the refused declaration left nothing behind");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_broken_plan_during_an_escalation_does_not_stop_it() {
    let d = TestDaemon::start().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "jaune"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "tier 0 mailed", || async {
        d.smtp.messages().len() == 2
    })
    .await;
    let plan = d.dir.path().join("plans/plan.toml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, text.replace("quorum = 2", "quorum = deux")).unwrap();
    let st = d.daemon().state.reload().await;
    assert!(!st.ok);
    d.advance(ChronoDuration::minutes(16));
    eventually(10, "tier 1 called anyway", || async {
        d.event(&id).await["tier"] == 1
    })
    .await;
    eventually(10, "bureau mailed", || async {
        d.smtp.messages().len() == 5
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_times_out_is_retried_and_the_failure_shows() {
    // A receiver that accepts the connection and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let d = TestDaemon::start_setup(true, move |dir| {
        let config = dir.join("config/vigie.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let start = text.find("[webhook.sms]\nurl = \"").unwrap() + "[webhook.sms]\nurl = \"".len();
        let end = start + text[start..].find('"').unwrap();
        let text = format!("{}http://{hang_addr}/hook{}", &text[..start], &text[end..])
            .replace("timeout = \"2s\"", "timeout = \"300ms\"");
        std::fs::write(config, text).unwrap();
    })
    .await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "sms retrying", || async {
        count(&d.event(&id).await, "retrying") == 3
    })
    .await;
    let ev = d.event(&id).await;
    let sms: Vec<_> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "sms")
        .collect();
    assert!(
        sms.iter()
            .all(|x| x["reason"].as_str().unwrap().starts_with("timeout")),
        "{sms:?}"
    );
    // Retried with backoff.
    d.advance(ChronoDuration::seconds(15));
    eventually(10, "second attempts", || async {
        d.event(&id).await["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["channel"] == "sms" && x["attempts"] == 2)
            .count()
            == 3
    })
    .await;
    // The e-mails are not held up by the hanging channel.
    assert_eq!(count(&d.event(&id).await, "sent"), 4);
    let metrics = metrics(&d).await;
    assert!(
        metrics.contains("vigie_deliveries{channel=\"sms\",state=\"retrying\"} 3"),
        "{metrics}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_stopping_mid_fan_out_delays_but_loses_nothing() {
    let mut d = TestDaemon::start_setup(true, |dir| many_nurses(dir, 200)).await;
    d.smtp.set_delay(Duration::from_millis(5));
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(20, "a quarter sent", || async {
        d.smtp.messages().len() >= 50
    })
    .await;
    d.smtp.stop().await;
    eventually(20, "failures retried", || async {
        count(&d.event(&id).await, "retrying") > 0
    })
    .await;
    d.smtp.restart().await;
    for _ in 0..40 {
        d.advance(ChronoDuration::seconds(30));
        let ev = d.event(&id).await;
        if count(&ev, "pending") + count(&ev, "retrying") + count(&ev, "sending") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ev = d.event(&id).await;
    let emails = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "email" && x["state"] != "skipped")
        .count();
    assert_eq!(
        emails,
        202 + 2,
        "200 new nurses, 2 fixture nurses with e-mail, 2 referents"
    );
    assert_eq!(count(&ev, "failed"), 0);
    let mut per: HashMap<String, usize> = HashMap::new();
    for m in d.smtp.messages() {
        for t in m.to {
            *per.entry(t).or_default() += 1;
        }
    }
    assert_eq!(per.len(), emails, "every recipient reached");
    let twice = per.values().filter(|&&n| n > 1).count();
    assert!(
        twice <= 4,
        "at most the connections in flight are sent twice: {twice}"
    );
    let metrics = metrics(&d).await;
    let retries: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigie_send_retries_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(retries > 0, "retries visible in the metrics");
    d.stop().await;
}

async fn metrics(d: &TestDaemon) -> String {
    d.http
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_mail_server_pauses_the_channel_and_its_return_resumes_everything() {
    let mut d = TestDaemon::start_setup(true, |dir| many_nurses(dir, 100)).await;
    d.smtp.stop().await;
    let ev = d
        .declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    let id = ev["id"].as_str().unwrap().to_string();
    eventually(10, "the channel shows down", || async {
        metrics(&d)
            .await
            .contains("vigie_channel_up{channel=\"email\"} 0")
    })
    .await;
    // Paused: what had not been tried waits without an attempt.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ev = d.event(&id).await;
    let emails: Vec<_> = ev["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["channel"] == "email" && x["state"] != "skipped")
        .collect();
    assert_eq!(emails.len(), 104);
    let tried = emails.iter().filter(|x| x["attempts"] != 0).count();
    assert!(
        (1..=4).contains(&tried),
        "at most one attempt per connection of the pool (4), not one per delivery: {tried}"
    );
    assert!(
        emails
            .iter()
            .filter(|x| x["attempts"] != 0)
            .all(|x| x["state"] == "retrying"
                && x["reason"].as_str().unwrap().contains("cannot connect")),
        "{emails:?}"
    );

    // The server is back: the first probe (a second after the failure)
    // goes through and everything leaves at once, including the deliveries
    // whose own retry is 10 seconds away.
    d.smtp.restart().await;
    d.advance(ChronoDuration::seconds(2));
    eventually(10, "every e-mail sent", || async {
        d.event(&id).await["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["channel"] == "email" && x["state"] == "sent")
            .count()
            == 104
    })
    .await;
    assert!(
        metrics(&d)
            .await
            .contains("vigie_channel_up{channel=\"email\"} 1")
    );
    let mut per: HashMap<String, usize> = HashMap::new();
    for m in d.smtp.messages() {
        for t in m.to {
            *per.entry(t).or_default() += 1;
        }
    }
    assert_eq!(per.len(), 104);
    assert!(per.values().all(|&n| n == 1), "each once");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_the_middle_of_a_fan_out_misses_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let FanOutUnderWay {
        config,
        smtp,
        sms: _sms,
        room: _room,
        daemon: mut d,
    } = fan_out_under_way(dir.path(), 300, Duration::from_millis(10), 150).await;
    let before = smtp.messages().len();
    d.signal("KILL");
    d.wait_exit(Duration::from_secs(5)).unwrap();
    assert!(before < 304, "killed mid-way ({before} of 304 sent)");

    // What was in flight when it died: claimed (`sending`), outcome not
    // yet recorded. Only those may be sent twice.
    let in_flight: i64 = rusqlite::Connection::open(dir.path().join("var/vigie.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'email' AND state = 'sending'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let _d = DaemonProcess::start(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected = 300 + 2 + 2;
    loop {
        let mut per: HashMap<String, usize> = HashMap::new();
        for m in smtp.messages() {
            for t in m.to {
                *per.entry(t).or_default() += 1;
            }
        }
        if per.len() == expected {
            let twice = per.values().filter(|&&n| n > 1).count();
            eprintln!("kill -9 after {before} messages: {in_flight} in flight, {twice} sent twice");
            assert!(
                twice as i64 <= in_flight,
                "duplicates ({twice}) bounded by what was in flight ({in_flight})"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} recipients reached",
            per.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
