//! The outbox driven step by step, as the daemon's loop drives it, against
//! the real SMTP test server: what one step claims, sends and records.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use vigie::config::daemon::{AddressField, EmailConfig, EmailTransport, SmtpConfig};
use vigie::deliver::email::EmailChannel;
use vigie::deliver::{Channel, Outbox, StepOutcome};
use vigie::schedule::clock::{Clock, ManualClock};
use vigie::store::Store;
use vigie::store::outbox;

use crate::smtp::{Mode, SmtpServer};

/// Sends still running after this long are a failure, not a slow machine.
const SETTLE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_retried_at_its_time_and_then_sent() {
    let smtp = SmtpServer::start().await;
    smtp.set_mode(Mode::TempFail);
    let dir = tempfile::tempdir().unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 6, 15, 9, 0, 0).unwrap();
    let (store, clock, outbox, id) = one_delivery(&smtp, dir.path(), t0).await;
    let row = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .call(move |c| outbox::get(c, id))
                .await
                .unwrap()
                .expect("the delivery")
        }
    };

    // The first step claims it and sends it: the server refuses (451).
    let first = outbox.step().await.unwrap();
    assert_eq!(
        first,
        StepOutcome {
            claimed: 1,
            ..Default::default()
        }
    );
    assert!(outbox.settled(SETTLE).await, "the send finished");
    // The next step records the refusal: a retry, with its time.
    let second = outbox.step().await.unwrap();
    assert_eq!(
        second,
        StepOutcome {
            retrying: 1,
            ..Default::default()
        }
    );
    let d = row(&store).await;
    assert_eq!(d.state, "retrying");
    assert_eq!(d.attempts, 1);
    assert!(d.reason.as_deref().unwrap_or("").contains("451"), "{d:?}");
    let next = vigie::store::parse_ts(&d.next_attempt_at);
    assert!(
        next > t0 && next <= t0 + chrono::Duration::seconds(12),
        "first retry 10 s ± 20 % later: {next}"
    );
    assert!(smtp.messages().is_empty());

    // The server accepts again, but the retry is not due yet.
    smtp.set_mode(Mode::Accept);
    assert!(outbox.step().await.unwrap().nothing_due());
    assert!(smtp.messages().is_empty());

    // Its time comes: claimed, sent, recorded sent.
    clock.set(next);
    assert_eq!(outbox.step().await.unwrap().claimed, 1);
    assert!(outbox.settled(SETTLE).await, "the send finished");
    let last = outbox.step().await.unwrap();
    assert_eq!(
        last,
        StepOutcome {
            sent: 1,
            ..Default::default()
        }
    );
    let d = row(&store).await;
    assert_eq!(d.state, "sent");
    assert_eq!(d.attempts, 2);
    assert_eq!(
        d.sent_at.as_deref(),
        Some(vigie::store::ts(clock.now()).as_str())
    );
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].to,
        vec!["claire.martin@example.org".to_string()]
    );
    assert_eq!(messages[0].subject(), "Canicule : niveau orange");
    assert!(outbox.step().await.unwrap().nothing_due());
}

/// A store holding one crisis e-mail to Claire Martin, due at `t0`, and an
/// outbox sending through `smtp` (pool 2): (store, clock, outbox, its id).
async fn one_delivery(
    smtp: &SmtpServer,
    dir: &std::path::Path,
    t0: chrono::DateTime<Utc>,
) -> (Store, Arc<ManualClock>, Outbox, i64) {
    let store = Store::open(&dir.join("vigie.db")).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let email = EmailChannel::new(
        &EmailConfig {
            name: "email".into(),
            address: AddressField::Email,
            from: "Vigie CPTS <vigie@example.org>".into(),
            transport: EmailTransport::Smtp(SmtpConfig {
                url: format!("smtp://{}", smtp.addr),
                username: None,
                password_file: None,
                pool: 2,
                per_second: 0,
                allow_insecure: false,
                ..SmtpConfig::default()
            }),
        },
        "test-install",
    )
    .unwrap();
    let channel: Arc<dyn Channel> = Arc::new(email);
    let outbox = Outbox::new(
        store.clone(),
        vec![(channel, 2, 0)],
        clock.clone(),
        Arc::default(),
    );
    let id =
        crate::support::claire_delivery(&store, "idel1", "email", "claire.martin@example.org", t0)
            .await;
    (store, clock, outbox, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_message_is_lost_fails_instead_of_going_out_empty() {
    let smtp = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 6, 15, 9, 0, 0).unwrap();
    let (store, _clock, outbox, id) = one_delivery(&smtp, dir.path(), t0).await;
    // The message row is gone (a damaged or hand-edited database).
    store
        .call(move |c| c.execute("DELETE FROM delivery_messages WHERE delivery_id = ?1", [id]))
        .await
        .unwrap();
    assert_eq!(outbox.step().await.unwrap().claimed, 1);
    assert!(outbox.settled(SETTLE).await, "the send finished");
    assert_eq!(
        outbox.step().await.unwrap(),
        StepOutcome {
            failed: 1,
            ..Default::default()
        }
    );
    let d = store
        .call(move |c| outbox::get(c, id))
        .await
        .unwrap()
        .expect("the delivery");
    assert_eq!(d.state, "failed");
    assert!(
        d.reason.as_deref().unwrap_or("").contains("missing"),
        "{d:?}"
    );
    assert!(smtp.messages().is_empty(), "nothing went out");
}
