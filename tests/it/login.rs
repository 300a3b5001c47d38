//! Operators' login and sessions under attack and after changes: guesses
//! in parallel test no more passwords than allowed, another address still
//! gets in, sessions end at logout, at a password change and when the
//! operator is removed, unknown names cost as much as known ones, the logs
//! hold neither passwords nor forged lines, and memory stays flat.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;

use vigie::schedule::clock::Clock;

use crate::harness::TestDaemon;
use crate::support::{DaemonProcess, Sandbox, copy_dir, repo, run_vigie};

const PASSWORD: &str = "mot de passe de la présidente";

/// A client that does not follow redirects, from `from` (a loopback
/// address: 127.0.0.1 and 127.0.0.2 are two clients to the daemon).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Adds `[auth]` with these (name, password) operators, and `http_extra`
/// lines to `[http]`, to the fixture's configuration.
fn configure(dir: &std::path::Path, operators: &[(&str, &str)], http_extra: &str) {
    let path = dir.join("config/vigie.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replacen(
        "listen = \"127.0.0.1:0\"\n",
        &format!("listen = \"127.0.0.1:0\"\n{http_extra}\n"),
        1,
    );
    text = text
        .split("\n[auth]\n")
        .next()
        .unwrap()
        .trim_end()
        .to_string();
    let ops: Vec<String> = operators
        .iter()
        .map(|(n, pw)| {
            let hash = vigie::web::auth::hash_password(pw).unwrap();
            format!("{{ name = \"{n}\", password_hash = \"{hash}\" }}")
        })
        .collect();
    text.push_str(&format!("\n\n[auth]\noperators = [ {} ]\n", ops.join(", ")));
    std::fs::write(&path, text).unwrap();
}

async fn daemon_with(operators: &[(&str, &str)], http_extra: &str) -> TestDaemon {
    let (ops, extra): (Vec<(String, String)>, String) = (
        operators
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        http_extra.to_string(),
    );
    TestDaemon::start_setup(true, move |dir| {
        let ops: Vec<(&str, &str)> = ops.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        configure(dir, &ops, &extra)
    })
    .await
}

async fn post_login(
    d: &TestDaemon,
    c: &reqwest::Client,
    name: &str,
    password: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut req = c
        .post(d.url("/login"))
        .form(&[("name", name), ("password", password)]);
    if let Some(f) = forwarded {
        req = req.header("X-Forwarded-For", f);
    }
    req.send().await.unwrap()
}

/// Logs in; returns the `Cookie:` value of the session.
async fn login_ok(d: &TestDaemon, c: &reqwest::Client, name: &str, password: &str) -> String {
    let r = post_login(d, c, name, password, None).await;
    assert_eq!(r.status().as_u16(), 303, "login as {name}");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    set_cookie.split(';').next().unwrap().to_string()
}

/// GET /bureau with a session: 200, or 303 to /login without one.
async fn bureau_status(d: &TestDaemon, c: &reqwest::Client, cookie: &str) -> u16 {
    c.get(d.url("/bureau"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn csrf_of(html: &str) -> String {
    let i =
        html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[i..].split('"').next().unwrap().to_string()
}

async fn live_sessions(d: &TestDaemon) -> i64 {
    let now = d.clock.now();
    d.daemon()
        .state
        .store
        .call(move |c| vigie::store::sessions::count_live(c, now))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_guesses_test_five_passwords_and_the_right_one_gets_in_from_elsewhere()
{
    let d = daemon_with(&[("presidente", PASSWORD)], "").await;
    let attacker = client_from("127.0.0.1");
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (c, url) = (attacker.clone(), d.url("/login"));
        guesses.spawn(async move {
            let guess = format!("devinette {i}");
            c.post(url)
                .form(&[("name", "presidente"), ("password", guess.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = guesses.join_all().await;
    let tested = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        (1..=5).contains(&tested),
        "{tested} passwords tested (at most 5 per window from one address)"
    );
    assert_eq!(tested + refused, 200, "{statuses:?}");

    // Even the right password is refused from the attacker's address…
    let r = post_login(&d, &attacker, "presidente", PASSWORD, None).await;
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.text().await.unwrap().contains("Trop de tentatives"));
    // …but the operator, from another address, gets in.
    let operator = client_from("127.0.0.2");
    let cookie = login_ok(&d, &operator, "presidente", PASSWORD).await;
    assert_eq!(bureau_status(&d, &operator, &cookie).await, 200);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_over_after_logout_even_with_a_copy_of_the_cookie() {
    let d = daemon_with(&[("presidente", PASSWORD)], "").await;
    let c = client_from("127.0.0.1");
    let cookie = login_ok(&d, &c, "presidente", PASSWORD).await;
    let html = c
        .get(d.url("/bureau"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .post(d.url("/logout"))
        .header("Cookie", &cookie)
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        bureau_status(&d, &c, &cookie).await,
        303,
        "the old cookie, replayed"
    );
    assert_eq!(live_sessions(&d).await, 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_or_a_removal_at_reload_ends_the_sessions_at_once() {
    let d = daemon_with(
        &[("presidente", PASSWORD), ("tresorier", "mot du trésorier")],
        "",
    )
    .await;
    let c = client_from("127.0.0.1");
    let presidente = login_ok(&d, &c, "presidente", PASSWORD).await;
    let tresorier = login_ok(&d, &c, "tresorier", "mot du trésorier").await;
    assert_eq!(bureau_status(&d, &c, &presidente).await, 200);
    assert_eq!(bureau_status(&d, &c, &tresorier).await, 200);

    // The president's password changes; the treasurer leaves the bureau.
    configure(d.dir.path(), &[("presidente", "nouveau mot de passe")], "");
    let st = d.daemon().state.reload().await;
    assert!(st.ok, "{:?}", st.errors);
    assert_eq!(live_sessions(&d).await, 0, "the reload ended both sessions");
    assert_eq!(bureau_status(&d, &c, &presidente).await, 303);
    assert_eq!(bureau_status(&d, &c, &tresorier).await, 303);
    let r = post_login(&d, &c, "presidente", PASSWORD, None).await;
    assert_eq!(r.status().as_u16(), 401, "the old password");
    let again = login_ok(&d, &c, "presidente", "nouveau mot de passe").await;
    assert_eq!(bureau_status(&d, &c, &again).await, 200);

    // Sessions also end after their 12 hours.
    d.advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    assert_eq!(bureau_status(&d, &c, &again).await, 303);
    d.stop().await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_takes_as_long_to_refuse_as_a_known_one() {
    let d = daemon_with(&[("presidente", PASSWORD)], "").await;
    // Two addresses, four attempts each: under every limit.
    let (known_c, unknown_c) = (client_from("127.0.0.3"), client_from("127.0.0.4"));
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let t = Instant::now();
        let r = post_login(&d, &known_c, "presidente", "mauvais", None).await;
        known.push(t.elapsed());
        assert_eq!(r.status().as_u16(), 401);
        let t = Instant::now();
        let r = post_login(&d, &unknown_c, &format!("inconnu{i}"), "mauvais", None).await;
        unknown.push(t.elapsed());
        assert_eq!(r.status().as_u16(), 401);
    }
    // Load only makes a request slower: the fastest known-name refusal is
    // what a password check costs, and an unknown name must cost about as
    // much (without the dummy check it cost a twentieth).
    let floor = *known.iter().min().unwrap();
    assert!(
        median(unknown.clone()) * 3 >= floor,
        "unknown names {unknown:?}, known name {known:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let d = daemon_with(
        &[("presidente", PASSWORD)],
        "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]",
    )
    .await;
    let proxy = client_from("127.0.0.1");
    for _ in 0..5 {
        let r = post_login(&d, &proxy, "presidente", "x", Some("203.0.113.7, 10.0.0.2")).await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = post_login(&d, &proxy, "presidente", PASSWORD, Some("203.0.113.7")).await;
    assert_eq!(r.status().as_u16(), 429, "the attacker behind the proxy");
    // The proxy's other clients are not locked out, even when the attacker
    // writes their address in front of its own.
    let r = post_login(&d, &proxy, "presidente", PASSWORD, Some("198.51.100.1")).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = post_login(
        &d,
        &proxy,
        "presidente",
        "x",
        Some("198.51.100.1, 203.0.113.7"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 429, "the rightmost untrusted entry");

    // A peer that is not a trusted proxy cannot choose its address.
    let other = client_from("127.0.0.2");
    for i in 0..5 {
        let r = post_login(&d, &other, "x", "x", Some(&format!("192.0.2.{i}"))).await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = post_login(&d, &other, "presidente", PASSWORD, Some("192.0.2.99")).await;
    assert_eq!(r.status().as_u16(), 429);
    d.stop().await;
}

#[test]
fn a_trusted_proxy_that_is_not_an_address_is_named_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/fixtures/minimal"), dir.path());
    let sb = Sandbox { dir };
    sb.edit(
        "config/vigie.toml",
        "listen = \"127.0.0.1:8640\"\n",
        "listen = \"127.0.0.1:8640\"\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/33\"]\n",
    );
    let config = sb.config();
    let (code, out, err) = run_vigie(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-06-01",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let expected = format!(
        "{}:17:33: invalid trusted proxy \"10.0.0.0/33\"",
        sb.path().join("config/vigie.toml").display()
    );
    assert!(out.contains(&expected), "{expected}\nnot in:\n{out}{err}");
}

/// The real daemon, with the shipped configuration (the generated operator
/// `bureau`), `http` lines added to `[http]` and `extra` at the end.
fn real_daemon(http: &str, extra: &str) -> (Sandbox, DaemonProcess) {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    sb.edit(
        "config/vigie.toml",
        "listen = \"127.0.0.1:0\"\n",
        &format!("listen = \"127.0.0.1:0\"\n{http}\n"),
    );
    let text = sb.read("config/vigie.toml");
    sb.write("config/vigie.toml", &format!("{text}\n{extra}\n"));
    let d = DaemonProcess::start(&sb.config());
    (sb, d)
}

fn form(name: &str, password: &str) -> String {
    serde_urlencoded::to_string([("name", name), ("password", password)]).unwrap()
}

fn post_form(addr: std::net::SocketAddr, body: &str, headers: &[(&str, &str)]) -> u16 {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    crate::support::http_request(addr, "POST", "/login", &h, body).0
}

#[test]
fn failed_logins_log_neither_passwords_nor_forged_lines() {
    let (sb, mut d) = real_daemon("", "");
    let generated = sb.read("var/operator-password").trim().to_string();
    let forged = "bureau\nINFO vigie: operator logged in operator=presidente";
    assert_eq!(post_form(d.addr, &form(forged, "secret-un"), &[]), 401);
    // The operator's password typed in the name field.
    assert_eq!(post_form(d.addr, &form(&generated, "bureau"), &[]), 401);
    assert_eq!(post_form(d.addr, &form("bureau", "secret-deux"), &[]), 401);
    // The three attempts are logged (the known name escaped, the others
    // by their length only).
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.seen.iter().filter(|l| l.contains("failed login")).count() < 3
        && Instant::now() < deadline
    {
        d.wait_log("a line that never comes", Duration::from_millis(200));
    }
    for l in &d.seen {
        assert!(!l.contains("presidente"), "a forged line: {l}");
        assert!(!l.contains(&generated), "a password in the logs: {l}");
        assert!(!l.contains("secret-"), "a password in the logs: {l}");
    }
    let failed: Vec<&String> = d
        .seen
        .iter()
        .filter(|l| l.contains("failed login"))
        .collect();
    assert_eq!(failed.len(), 3, "{:#?}", d.seen);
    assert!(failed[2].contains("operator=bureau"), "{}", failed[2]);
    assert!(failed[0].contains("name_chars=57"), "{}", failed[0]);
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn two_hundred_parallel_logins_from_as_many_addresses_keep_memory_flat() {
    let hash = vigie::web::auth::hash_password(PASSWORD).unwrap();
    let (_sb, d) = real_daemon(
        "trusted_proxies = [\"127.0.0.1\"]",
        &format!("[auth]\noperators = [ {{ name = \"presidente\", password_hash = \"{hash}\" }} ]"),
    );
    let before = peak_rss_kib(d.child.id());
    let addr = d.addr;
    let threads: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let from = format!("198.51.{}.{}", i / 200, i % 200 + 1);
                post_form(
                    addr,
                    &form("presidente", &format!("devinette {i}")),
                    &[("X-Forwarded-For", &from)],
                )
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(checked + busy, 200, "{statuses:?}");
    let peak = peak_rss_kib(d.child.id());
    eprintln!(
        "peak RSS: {} MiB before, {} MiB after 200 parallel logins ({checked} checked, {busy} told to retry)",
        before / 1024,
        peak / 1024
    );
    // Two checks of 19 MiB at a time, whatever the number of attempts
    // (measured: 27 MiB idle, 70 MiB after; 181 MiB when each check had
    // memory of its own, about 400 MB on the blocking pool).
    assert!(peak < 120 * 1024, "peak RSS {} MiB", peak / 1024);
}
