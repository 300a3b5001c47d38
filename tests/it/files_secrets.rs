//! Files and secrets that cannot hurt the daemon (issue 12), with the real
//! binary: a FIFO, a folder or an oversized file where a configuration file
//! is expected is refused with the file named (never read forever); a slow
//! reload does not hold SIGTERM; the secrets of a webhook URL appear in no
//! log line, delivery reason, API answer or page; what Vigie writes is
//! readable by its owner only; e-mail header lines stay within RFC 5322
//! whatever the directory or a note holds.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{DaemonProcess, Sandbox, http_get, http_request, vigie_bin};

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Runs `vigie ARGS`, killed after `limit`: `Some((exit code, stdout,
/// stderr))`, or `None` when it had to be killed.
fn run_bounded(args: &[&str], limit: Duration) -> Option<(i32, String, String)> {
    let mut child = Command::new(vigie_bin())
        .args(args)
        .env_remove("VIGIE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vigie");
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    status.map(|st| (st.code().unwrap_or(-1), out, err))
}

fn check(sb: &Sandbox) -> (i32, String) {
    let config = sb.config();
    let (code, out, err) = run_bounded(
        &["check", "-c", config.to_str().unwrap()],
        Duration::from_secs(10),
    )
    .expect("vigie check finishes within 10 s");
    (code, format!("{out}{err}"))
}

#[test]
fn vigie_check_refuses_a_fifo_in_plans_and_names_it_instead_of_waiting() {
    let sb = Sandbox::shipped_in_force();
    mkfifo(&sb.path().join("plans/pgc-2027.toml"));

    let (code, out) = check(&sb);

    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("plans/pgc-2027.toml:1:1: cannot read the plan: not a regular file (a FIFO)"),
        "{out}"
    );
}

#[test]
fn vigie_check_refuses_a_file_over_16_mib_and_a_folder_given_as_the_directory() {
    let sb = Sandbox::shipped_in_force();
    // Sparse: 17 MiB on paper, nothing on the disk.
    let huge = std::fs::File::create(sb.path().join("config/rosters/huge.toml")).unwrap();
    huge.set_len(17 * 1024 * 1024).unwrap();
    sb.edit(
        "config/vigie.toml",
        "directory = \"directory.toml\"",
        "directory = \"rosters\"",
    );

    let (code, out) = check(&sb);

    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("rosters/huge.toml:1:1: cannot read the roster: larger than 16 MiB"),
        "{out}"
    );
    assert!(
        out.contains(
            "config/rosters:1:1: cannot read the directory: not a regular file (a directory)"
        ),
        "{out}"
    );
}

#[test]
fn a_secret_file_that_is_a_fifo_stops_the_start_with_its_name() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    std::fs::create_dir_all(sb.path().join("config/secrets")).unwrap();
    mkfifo(&sb.path().join("config/secrets/sms-hmac"));
    add_sms_webhook(&sb, "http://127.0.0.1:9/send", "");

    let config = sb.config();
    let (code, _, err) = run_bounded(
        &["run", "-c", config.to_str().unwrap()],
        Duration::from_secs(20),
    )
    .expect("vigie run gives up within 20 s instead of waiting on the FIFO");

    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("secrets/sms-hmac") && err.contains("not a regular file (a FIFO)"),
        "{err}"
    );
}

#[test]
fn a_reload_with_a_fifo_in_plans_is_refused_naming_it_and_sigterm_still_stops() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let mut d = DaemonProcess::start(&sb.config());
    mkfifo(&sb.path().join("plans/pgc-2027.toml"));

    d.signal("HUP");

    d.wait_log("reload refused", Duration::from_secs(20))
        .expect("the reload finishes, refused");
    let (status, body) = http_get(d.addr, "/readyz");
    assert_eq!(status, 200, "still ready on the last good set: {body}");
    // Why it was refused is for the authenticated status, not /readyz.
    let token = sb.read("var/api-token");
    let auth = format!("Bearer {}", token.trim());
    let (status, body) = crate::support::http_request(
        d.addr,
        "GET",
        "/api/v1/status",
        &[("Authorization", auth.as_str())],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let errors = v["reload"]["errors"].to_string();
    assert!(
        errors.contains("pgc-2027.toml:1:1: cannot read the plan: not a regular file (a FIFO)"),
        "{errors}"
    );
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(30)), Some(0));
}

#[test]
fn sigterm_during_a_slow_reload_stops_the_daemon_without_waiting_for_the_reload() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let mut d = DaemonProcess::start(&sb.config());
    // 30 000 more professionals (4 MB): a reload of seconds in a debug
    // build, far longer than a stop takes.
    let mut directory = sb.read("config/directory.toml");
    for i in 0..30_000 {
        directory.push_str(&format!(
            "\n[[professional]]\nid = \"p{i}\"\nname = \"Professionnel {i}\"\nprofession = \"infirmier\"\ncommune = \"Thann\"\nemail = \"p{i}@example.org\"\n"
        ));
    }
    sb.write("config/directory.toml", &directory);

    d.signal("HUP");
    d.wait_log("SIGHUP: reloading", Duration::from_secs(10))
        .expect("the reload starts");
    d.signal("TERM");

    assert_eq!(d.wait_exit(Duration::from_secs(60)), Some(0));
    d.wait_log("vigie stopped", Duration::from_secs(5))
        .expect("a clean stop");
    let stopped = d
        .seen
        .iter()
        .position(|l| l.contains("vigie stopped"))
        .unwrap();
    let reloaded = d.seen[..stopped]
        .iter()
        .find(|l| l.contains("configuration reloaded") || l.contains("reload refused"));
    assert!(
        reloaded.is_none(),
        "the stop waited for the reload to finish:\n{}",
        d.seen.join("\n")
    );
}

/// The generated API token of a sandbox's daemon.
fn token(sb: &Sandbox) -> String {
    sb.read("var/api-token").trim().to_string()
}

/// Declares through the API; returns the event id.
fn declare(d: &DaemonProcess, sb: &Sandbox, body: Value) -> String {
    let auth = format!("Bearer {}", token(sb));
    let (status, answer) = http_request(
        d.addr,
        "POST",
        "/api/v1/events",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        &body.to_string(),
    );
    assert_eq!(status, 201, "{answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    v["id"].as_str().expect("an event id").to_string()
}

/// Waits until `cond` holds, at most `secs` seconds.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const USER_PASSWORD: &str = "pa55w0rd-of-the-gateway";
const API_KEY: &str = "APIKEY-S3CRET-0042";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_url_secrets_appear_in_no_log_line_delivery_reason_api_answer_or_page() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    // A port where nobody listens: every call fails, with the URL at hand.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sb.write("config/secrets/sms-hmac", "hmac-key-for-tests\n");
    add_sms_webhook(
        &sb,
        &format!("http://vigie:{USER_PASSWORD}@127.0.0.1:{closed}/send?apikey={API_KEY}&from=CPTS"),
        "timeout = \"2s\"\n",
    );
    // The crisis referents (tier 0 of the heatwave) are also alerted by SMS.
    sb.edit(
        "plans/pgc-2026.toml",
        "audience = [\"referents\"]\nchannels = [\"email\"]",
        "audience = [\"referents\"]\nchannels = [\"email\", \"sms\"]",
    );
    let mut d = DaemonProcess::start_log_level(&sb.config(), "debug");
    let id = declare(
        &d,
        &sb,
        serde_json::json!({"scenario": "canicule", "level": "jaune", "exercise": true}),
    );

    // The API: the failed SMS deliveries say why, without the secrets.
    let auth = format!("Bearer {}", token(&sb));
    let mut event = String::new();
    wait_until(30, "an SMS delivery with a failure reason", || {
        let (status, body) = http_request(
            d.addr,
            "GET",
            &format!("/api/v1/events/{id}"),
            &[("Authorization", auth.as_str())],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        event = body;
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["channel"] == "sms" && x["reason"].as_str().is_some_and(|r| !r.is_empty()))
    });
    for secret in [USER_PASSWORD, API_KEY] {
        assert!(!event.contains(secret), "the API shows {secret}: {event}");
    }
    let v: Value = serde_json::from_str(&event).unwrap();
    let reason = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|x| {
            (x["channel"] == "sms")
                .then(|| x["reason"].as_str())
                .flatten()
        })
        .unwrap()
        .to_string();
    assert!(reason.contains("onnect"), "says what failed: {reason}");

    // The bureau's page of the event.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let password = sb.read("var/operator-password").trim().to_string();
    let base = format!("http://{}", d.addr);
    let resp = client
        .post(format!("{base}/login"))
        .form(&[("name", "bureau"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    for page in [format!("/bureau/events/{id}"), "/bureau".to_string()] {
        let resp = client
            .get(format!("{base}{page}"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{page}");
        let html = resp.text().await.unwrap();
        for secret in [USER_PASSWORD, API_KEY] {
            assert!(!html.contains(secret), "{page} shows {secret}");
        }
    }

    // Every log line, down to debug, from start to stop.
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(30)), Some(0));
    d.wait_log("vigie stopped", Duration::from_secs(5))
        .expect("a clean stop");
    assert!(
        d.seen
            .iter()
            .any(|l| l.contains("channel=sms") || l.contains("channel: sms")),
        "the failures of the sms channel are logged:\n{}",
        d.seen.join("\n")
    );
    for line in &d.seen {
        for secret in [USER_PASSWORD, API_KEY] {
            assert!(!line.contains(secret), "a log line shows {secret}: {line}");
        }
    }
}

#[test]
fn vigie_check_does_not_print_the_secrets_of_an_invalid_webhook_url() {
    let sb = Sandbox::shipped_in_force();
    sb.write("config/secrets/sms-hmac", "hmac-key-for-tests\n");
    add_sms_webhook(
        &sb,
        &format!("http://vigie:{USER_PASSWORD}@sms.example.org/send?apikey={API_KEY} "),
        "",
    );

    let (code, out) = check(&sb);

    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invalid webhook url"), "{out}");
    for secret in [USER_PASSWORD, API_KEY] {
        assert!(!out.contains(secret), "vigie check shows {secret}: {out}");
    }
}

#[test]
fn vigie_check_refuses_a_webhook_url_that_only_looks_like_one() {
    // Starts with http:// and has no space, but no client can call it (a
    // port past 65535): refused here, with its place, not at the first
    // alert.
    let sb = Sandbox::shipped_in_force();
    sb.write("config/secrets/sms-hmac", "hmac-key-for-tests\n");
    let line = add_sms_webhook(&sb, "http://sms.example.org:99999/send", "");

    let (code, out) = check(&sb);

    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "vigie.toml:{line}:7: invalid webhook url \"http://sms.example.org:99999/send\""
        )),
        "{out}"
    );
}

/// Appends a `[webhook.sms]` channel calling `url`, signed with
/// `secrets/sms-hmac`, with `extra` lines; returns the line of its `url`.
fn add_sms_webhook(sb: &Sandbox, url: &str, extra: &str) -> usize {
    let config = sb.read("config/vigie.toml");
    let table =
        format!("\n[webhook.sms]\nurl = \"{url}\"\nsecret_file = \"secrets/sms-hmac\"\n{extra}");
    sb.write("config/vigie.toml", &format!("{config}{table}"));
    config.lines().count() + 3
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The `.eml` files of the outbox folder.
fn emails(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(sb.path().join("var/outbox")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn what_vigie_writes_is_readable_by_its_owner_only() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let mut d = DaemonProcess::start(&sb.config());
    declare(
        &d,
        &sb,
        serde_json::json!({"scenario": "canicule", "level": "jaune", "exercise": true}),
    );
    wait_until(30, "e-mails in the outbox folder", || {
        !emails(&sb).is_empty()
    });

    let var = sb.path().join("var");
    let mut files = vec![
        var.clone(),
        var.join("vigie.db"),
        var.join("vigie.db-wal"),
        var.join("vigie.db-shm"),
        var.join("api-token"),
        var.join("operator-password"),
        var.join("link.key"),
        var.join("session.key"),
        var.join("outbox"),
    ];
    files.extend(emails(&sb));
    for f in &files {
        let m = mode(f);
        assert_eq!(
            m & 0o077,
            0,
            "{} is mode {m:o}: readable by others",
            f.display()
        );
    }
    assert!(
        d.wait_log("readable by other users", Duration::from_millis(100))
            .is_none(),
        "no warning about a folder Vigie made itself"
    );
}

#[test]
fn a_data_dir_readable_by_others_is_warned_about_at_start() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let var = sb.path().join("var");
    std::fs::create_dir(&var).unwrap();
    std::fs::set_permissions(&var, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut d = DaemonProcess::start(&sb.config());

    let line = d
        .wait_log("readable by other users", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no warning:\n{}", d.seen.join("\n")));
    assert!(line.contains("WARN") && line.contains("var"), "{line}");
}

#[test]
fn e_mail_header_lines_stay_within_998_octets_and_cannot_be_injected() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    // A crisis referent (tier 0) whose name is 2 000 characters long and
    // carries a line break and a header.
    sb.edit(
        "config/directory.toml",
        "name = \"Claire Martin\"",
        &format!(
            "name = \"Claire {} Martin\\r\\nBcc: pirate@example.net\"",
            "x".repeat(2000)
        ),
    );
    // A subject that renders as long as the note an operator typed.
    sb.edit(
        "plans/pgc-2026.toml",
        "subject = \"[{{ event.level | upper }}] Canicule : confirmez la prise en charge du suivi\"",
        "subject = \"[{{ event.level | upper }}] Canicule : {{ event.note }} ({{ recipient.name }})\"",
    );
    let d = DaemonProcess::start(&sb.config());
    let note = format!(
        "Chaleur {}\r\nBcc: pirate@example.net\nX-Injected: oui",
        "très forte ".repeat(300)
    );
    declare(
        &d,
        &sb,
        serde_json::json!({"scenario": "canicule", "level": "jaune", "exercise": true, "note": note}),
    );

    let to_claire = |text: &str| text.contains("claire.martin@example.org");
    wait_until(30, "the e-mail to Claire Martin", || {
        emails(&sb)
            .iter()
            .any(|p| to_claire(&std::fs::read_to_string(p).unwrap_or_default()))
    });
    // Every message written by then, hers included.
    let mut checked = 0;
    for p in emails(&sb) {
        let raw = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let head = text.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(
                line.len() <= 998,
                "{}: a header line of {} octets",
                p.display(),
                line.len()
            );
            let folded = line.starts_with(' ') || line.starts_with('\t');
            let name = line.split_once(':').map(|(n, _)| n).unwrap_or("");
            assert!(
                folded
                    || (!name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
                "{}: not a header line: {line:?}",
                p.display()
            );
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:") && !lower.starts_with("x-injected:"),
                "{}: an injected header: {line}",
                p.display()
            );
        }
        if to_claire(head) {
            assert!(head.contains("\r\nSubject: "), "{head}");
            checked += 1;
        }
    }
    assert!(checked >= 1, "the e-mail to Claire Martin was checked");
}
