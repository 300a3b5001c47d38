//! Issue 12, the HTTP server: idle or slow clients cannot take the daemon
//! off the air, `/readyz` tells the public no more than ready or not, and
//! every answer carries the security headers. The daemon runs in process;
//! the clients are raw TCP connections and reqwest on loopback.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{TestDaemon, eventually};

/// Sets `[http]` keys beside `listen` in the fixture's `vigie.toml`.
fn http_keys(keys: &'static str) -> impl FnOnce(&std::path::Path) {
    move |dir| {
        let path = dir.join("config/vigie.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen(
            "listen = \"127.0.0.1:0\"\n",
            &format!("listen = \"127.0.0.1:0\"\n{keys}\n"),
            1,
        );
        std::fs::write(path, text).unwrap();
    }
}

/// A response link of a real event: the orange heatwave declared, the
/// link read from the mail its first referent got.
async fn a_response_link(d: &TestDaemon) -> String {
    d.declare(json!({"scenario": "canicule", "level": "orange"}))
        .await;
    eventually(20, "the referent's mail", || async {
        !d.smtp.to("claire.martin@example.org").is_empty()
    })
    .await;
    d.link_for("claire.martin@example.org")
        .trim_start_matches("http://vigie.test")
        .to_string()
}

/// A fresh client (no pooled connection): each request opens its own.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Whether the server closed `s`: a read ends (EOF or reset) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or the like before the close: keep reading.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_a_response_link_answer_while_1000_idle_connections_are_open() {
    // 1 000 client sockets and 1 000 server sockets in this one process.
    let nofile = vigie::web::server::raise_nofile_limit().unwrap_or(0);
    assert!(
        nofile >= 2600,
        "RLIMIT_NOFILE {nofile}: this test needs 2 600 descriptors (ulimit -Hn)"
    );
    let d = TestDaemon::start_setup(true, http_keys("header_timeout = \"5s\"")).await;
    let link = a_response_link(&d).await;

    // Arrange: 1 000 connections that never finish a request; half of
    // them stall in the middle of a request line (slowloris).
    let opened = Instant::now();
    let mut idle = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut s = TcpStream::connect(d.daemon().addr).await.expect("connect");
        if i % 2 == 1 {
            s.write_all(b"GET /bureau HTTP/1.1\r\nHo").await.unwrap();
        }
        idle.push(s);
    }
    let open_took = opened.elapsed();

    // Act: what a health check and a professional clicking their link do.
    let client = fresh_client();
    let t = Instant::now();
    let health = client.get(d.url("/healthz")).send().await.unwrap();
    let healthz_took = t.elapsed();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let t = Instant::now();
    let page = client.get(d.url(&link)).send().await.unwrap();
    let link_took = t.elapsed();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form"));
    println!(
        "1 000 idle connections opened in {open_took:?}; /healthz answered in {healthz_took:?}, \
         the response link in {link_took:?}"
    );
    assert!(
        healthz_took < Duration::from_secs(5),
        "/healthz took {healthz_took:?}"
    );
    assert!(
        link_took < Duration::from_secs(5),
        "/r/… took {link_took:?}"
    );

    // Assert: the server closes every idle connection after its header
    // timeout (5 s here), none of them before 4 s.
    let mut tasks = tokio::task::JoinSet::new();
    for mut s in idle {
        tasks.spawn(async move {
            let gone = closed_within(&mut s, Duration::from_secs(60)).await;
            (gone, opened.elapsed())
        });
    }
    let mut last_close = Duration::ZERO;
    let mut first_close = Duration::MAX;
    while let Some(r) = tasks.join_next().await {
        let (gone, at) = r.unwrap();
        assert!(gone, "an idle connection was still open 60 s later");
        last_close = last_close.max(at);
        first_close = first_close.min(at);
    }
    println!("idle connections closed between {first_close:?} and {last_close:?} after opening");
    assert!(
        first_close >= Duration::from_secs(4),
        "closed before the header timeout: {first_close:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_idle_clients_fill_every_slot_the_idlest_is_closed_and_healthz_answers() {
    // 16 slots (the smallest cap); headers may take a minute, so only the
    // eviction can close a connection within this test.
    let d = TestDaemon::start_setup(
        true,
        http_keys("max_connections = 16\nheader_timeout = \"60s\""),
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(d.daemon().addr).await.unwrap());
        // One after the other, so that the first is the idlest.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    let t = Instant::now();
    let health = fresh_client().get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    println!("/healthz with 16 of 16 slots idle: {:?}", t.elapsed());

    assert!(
        closed_within(&mut idle[0], Duration::from_secs(10)).await,
        "the connection idle the longest gave its slot"
    );
    for s in &mut idle[1..] {
        assert!(
            !closed_within(s, Duration::from_millis(50)).await,
            "only one connection was evicted"
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_request_is_being_answered_is_never_evicted() {
    let d = TestDaemon::start_setup(
        true,
        http_keys("max_connections = 16\nheader_timeout = \"60s\""),
    )
    .await;
    // The oldest connection is in the middle of a login: its head is in,
    // its body (100 bytes announced) only begins.
    let mut busy = TcpStream::connect(d.daemon().addr).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
        d.daemon().addr
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    let body = format!("name=bureau&password={}", "x".repeat(100 - 21));
    assert_eq!(body.len(), 100);
    busy.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut idle = Vec::new();
    for _ in 0..15 {
        idle.push(TcpStream::connect(d.daemon().addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    // Full: the newcomer takes the slot of the oldest silent connection,
    // not the login's.
    let health = fresh_client().get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(closed_within(&mut idle[0], Duration::from_secs(10)).await);
    assert!(!closed_within(&mut busy, Duration::from_millis(50)).await);

    // The login ends normally: a refusal of the wrong password.
    busy.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    busy.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    assert!(!answer.starts_with("HTTP/1.1 400"), "{answer}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_does_not_arrive_within_30_seconds_is_refused() {
    let d = TestDaemon::start().await;
    // A login announcing 100 bytes of form and sending 10 (slow POST).
    let mut s = TcpStream::connect(d.daemon().addr).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
        d.daemon().addr
    );
    let sent = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(b"name=burea").await.unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(90), s.read_to_end(&mut answer)).await;
    let took = sent.elapsed();
    assert!(read.is_ok(), "no answer 90 s later");
    let answer = String::from_utf8_lossy(&answer);
    println!(
        "slow body cut after {took:?}: {}",
        answer.lines().next().unwrap_or("")
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(took >= Duration::from_secs(25), "cut after {took:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_with_a_broken_directory_says_only_that_the_reload_failed() {
    let d = TestDaemon::start().await;
    // A directory entry with a broken address: the reload's error quotes
    // the file and the professional.
    let path = d.dir.path().join("config/directory.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen(
            "email = \"claire.martin@example.org\"",
            "email = \"claire.martin(at)example.org\"",
            1,
        ),
    )
    .unwrap();
    let (status, _) = d.api(Method::POST, "/api/v1/reload", None).await;
    assert!(status >= 400 || status == 200, "reload answered {status}");

    let resp = reqwest::get(d.url("/readyz")).await.unwrap();
    assert_eq!(resp.status(), 200, "still ready on the last good set");
    let body = resp.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["reload"], json!({"ok": false}), "{body}");
    for secret in ["directory.toml", "claire", "example.org", "error"] {
        assert!(!body.contains(secret), "/readyz says {secret:?}: {body}");
    }

    // The detail is for the token holder.
    let (status, v) = d.api(Method::GET, "/api/v1/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(v["reload"]["ok"], false);
    let errors = v["reload"]["errors"].to_string();
    assert!(
        errors.contains("directory.toml") && errors.contains("claire.martin(at)example.org"),
        "{errors}"
    );
    let anonymous = reqwest::get(d.url("/api/v1/status")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    d.stop().await;
}

/// The headers every answer must carry, with their values.
fn assert_security_headers(what: &str, resp: &reqwest::Response) {
    let h = resp.headers();
    let get = |k: &str| {
        h.get(k)
            .unwrap_or_else(|| panic!("{what}: no {k} header ({h:?})"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let csp = get("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: CSP {csp:?}");
    }
    assert!(
        !csp.contains("script-src"),
        "{what}: no script allowed: {csp}"
    );
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_api_answer_carries_the_security_headers() {
    let d = TestDaemon::start().await;
    let link = a_response_link(&d).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cases = [
        ("/", 200),
        ("/login", 200),
        (link.as_str(), 200),
        ("/r/1.1.forged", 404),
        ("/nowhere", 404),
        ("/api/v1/status", 401),
    ];
    for (path, expected) in cases {
        let resp = client.get(d.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), expected, "{path}");
        assert_security_headers(path, &resp);
    }
    // /bureau: not logged in it sends to the login form; logged in, the
    // dashboard itself.
    let resp = client.get(d.url("/bureau")).send().await.unwrap();
    assert_security_headers("/bureau (anonymous)", &resp);
    let password = std::fs::read_to_string(
        d.daemon()
            .state
            .config()
            .daemon
            .data_dir
            .join("operator-password"),
    )
    .unwrap();
    let login = client
        .post(d.url("/login"))
        .form(&[("name", "bureau"), ("password", password.trim())])
        .send()
        .await
        .unwrap();
    assert_security_headers("POST /login", &login);
    let cookie = login
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let resp = client
        .get(d.url("/bureau"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_security_headers("/bureau", &resp);
    assert!(resp.text().await.unwrap().contains("<form"));

    // An API answer in JSON.
    let resp = client
        .get(d.url("/api/v1/status"))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_security_headers("/api/v1/status", &resp);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_trickling_request_bodies_into_every_slot_do_not_keep_healthz_out() {
    // 16 slots, each taken by a login whose 64 KiB body arrives one byte at
    // a time: their heads are in, so none is idle, and the body deadline is
    // 30 s away. A newcomer must still get in, in the slot of the body that
    // has been arriving the longest.
    let d = TestDaemon::start_setup(
        true,
        http_keys("max_connections = 16\nheader_timeout = \"60s\""),
    )
    .await;
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 65536\r\n\r\nn",
        d.daemon().addr
    );
    let mut slow = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(d.daemon().addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        slow.push(s);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t = Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        fresh_client().get(d.url("/healthz")).send(),
    )
    .await
    .expect("/healthz answers while slow bodies hold every slot")
    .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "not after the 30 s body deadline: {:?}",
        t.elapsed()
    );
    println!(
        "/healthz with 16 of 16 slots trickling bodies: {:?}",
        t.elapsed()
    );
    assert!(
        closed_within(&mut slow[0], Duration::from_secs(5)).await,
        "the body arriving the longest gave its slot"
    );
    d.stop().await;
}
