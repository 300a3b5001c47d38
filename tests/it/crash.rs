//! Crash safety with the real binary: `kill -9` right after a declaration,
//! restart, and nothing is lost; escalation timers fire at their original
//! due time, or at once when overdue.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::write_fixture;
use crate::smtp::SmtpServer;
use crate::support::DaemonProcess;
use crate::webhook::Receiver;

struct Setup {
    dir: tempfile::TempDir,
    smtp: SmtpServer,
    sms: Receiver,
    _room: Receiver,
    config: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().await;
    let sms = Receiver::start(crate::harness::SMS_SECRET).await;
    let room = Receiver::start(crate::harness::ROOM_SECRET).await;
    let config = write_fixture(dir.path(), &smtp, &sms, &room);
    // Tier 0 times out after 3 s instead of 15 min: this test uses real time.
    let plan = dir.path().join("plans/plan.toml");
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("timeout = \"15m\"", "timeout = \"3s\"");
    std::fs::write(&plan, text).unwrap();
    Setup {
        dir,
        smtp,
        sms,
        _room: room,
        config,
    }
}

async fn declare(addr: std::net::SocketAddr, token: &str) -> (serde_json::Value, Instant) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/events"))
        .bearer_auth(token)
        .json(&json!({"scenario": "canicule", "level": "orange"}))
        .send()
        .await
        .unwrap();
    let at = Instant::now();
    assert_eq!(resp.status().as_u16(), 201);
    (resp.json().await.unwrap(), at)
}

fn recipients(smtp: &SmtpServer) -> BTreeSet<String> {
    smtp.messages().iter().flat_map(|m| m.to.clone()).collect()
}

async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn kill9(d: &mut DaemonProcess) {
    d.signal("KILL");
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_kill_9_right_after_a_declaration_every_delivery_arrives_and_tier_1_fires_on_time() {
    let s = setup().await;
    let mut d = DaemonProcess::start(&s.config);
    let token = std::fs::read_to_string(s.dir.path().join("var/api-token")).unwrap();
    let (_, declared) = declare(d.addr, token.trim()).await;
    kill9(&mut d);

    // Restarted at once: the queue and the timer are in the database.
    let _d = DaemonProcess::start(&s.config);
    let first_wave: BTreeSet<String> = [
        "kevin.ott@example.org",
        "isabelle.walch@example.org",
        "claire.martin@example.org",
        "helene.fuchs@example.org",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    wait_for("the broadcast and tier 0", 20, || {
        first_wave.is_subset(&recipients(&s.smtp))
    })
    .await;
    wait_for("the three SMS", 20, || {
        s.sms
            .accepted()
            .iter()
            .map(|c| c.idempotency_key.clone())
            .collect::<BTreeSet<_>>()
            .len()
            == 3
    })
    .await;
    // Tier 1 (the bureau) at the original due time: 3 s after the declaration.
    let tier1 = wait_for("tier 1", 20, || {
        !s.smtp.to("olivier.bilger@example.org").is_empty()
    })
    .await;
    let after = tier1.duration_since(declared);
    assert!(
        after >= Duration::from_millis(2900),
        "tier 1 came early: {after:?}"
    );
    assert!(
        after <= Duration::from_secs(6),
        "tier 1 came late: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timer_that_came_due_while_the_daemon_was_down_fires_at_restart() {
    let s = setup().await;
    let mut d = DaemonProcess::start(&s.config);
    let token = std::fs::read_to_string(s.dir.path().join("var/api-token")).unwrap();
    declare(d.addr, token.trim()).await;
    kill9(&mut d);
    // Down for longer than tier 0's timeout.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(s.smtp.to("olivier.bilger@example.org").is_empty());
    let restarted = Instant::now();
    let _d = DaemonProcess::start(&s.config);
    let tier1 = wait_for("tier 1", 20, || {
        !s.smtp.to("olivier.bilger@example.org").is_empty()
    })
    .await;
    assert!(
        tier1.duration_since(restarted) < Duration::from_secs(3),
        "fired at once on restart"
    );
    // Nothing of the first wave is missing either (broadcasts may come
    // after the escalation: crisis deliveries go first).
    for a in [
        "kevin.ott@example.org",
        "claire.martin@example.org",
        "helene.fuchs@example.org",
    ] {
        wait_for(a, 20, || !s.smtp.to(a).is_empty()).await;
    }
}
