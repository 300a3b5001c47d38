//! The daemon's life cycle, with the real binary: start, readiness, reload
//! with a broken plan (the last good set stays), SIGTERM.

use std::time::Duration;

use crate::support::{DaemonProcess, Sandbox, http_get, http_request};

#[test]
fn starts_on_the_shipped_config_and_answers_health_and_readiness() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let d = DaemonProcess::start(&sb.config());

    let (status, body) = http_get(d.addr, "/healthz");
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "ok");

    let (status, body) = http_get(d.addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["database"], "ok");
    assert_eq!(v["reload"]["ok"], true);
    // The database is created in data_dir (var/ beside config/).
    assert!(sb.path().join("var/vigie.db").exists());
}

/// `GET /api/v1/status` with the token the daemon generated in `var/`.
fn status(sb: &Sandbox, d: &DaemonProcess) -> serde_json::Value {
    let token = sb.read("var/api-token");
    let auth = format!("Bearer {}", token.trim());
    let (code, body) = http_request(
        d.addr,
        "GET",
        "/api/v1/status",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_reload_with_a_broken_plan_keeps_the_last_good_set_and_says_why() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let mut d = DaemonProcess::start(&sb.config());
    let before = status(&sb, &d);

    // A typo in the plan in force: an audience that does not exist.
    sb.edit(
        "plans/pgc-2026.toml",
        "audience = [\"referents\"]",
        "audience = [\"referent\"]",
    );
    d.signal("HUP");
    d.wait_log("reload refused", Duration::from_secs(20))
        .expect("the daemon logs the refused reload");

    let (status_code, body) = http_get(d.addr, "/readyz");
    assert_eq!(status_code, 200, "still ready on the last good set");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reload"]["ok"], false);
    // The errors are for the authenticated status (http_hardening.rs says
    // why), with the plans still in force.
    let v = status(&sb, &d);
    let errors = v["reload"]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("pgc-2026.toml")
                && e.as_str().unwrap().contains("unknown audience `referent`")),
        "{errors:?}"
    );
    assert_eq!(v["plans"], before["plans"]);
    assert_eq!(v["reload"]["generation"], before["reload"]["generation"]);

    // Fixed: the next reload is accepted.
    sb.edit(
        "plans/pgc-2026.toml",
        "audience = [\"referent\"]",
        "audience = [\"referents\"]",
    );
    d.signal("HUP");
    d.wait_log("configuration reloaded", Duration::from_secs(20))
        .expect("the reload is accepted");
    let (_, body) = http_get(d.addr, "/readyz");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reload"]["ok"], true);
    assert_eq!(status(&sb, &d)["reload"]["generation"], 2);
}

#[test]
fn sigterm_stops_cleanly_with_exit_code_zero() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let mut d = DaemonProcess::start(&sb.config());
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
    d.wait_log("vigie stopped", Duration::from_secs(1))
        .expect("the stop is logged");
}

#[test]
fn sigint_stops_too() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let mut d = DaemonProcess::start(&sb.config());
    d.signal("INT");
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
}

#[test]
fn refuses_to_start_on_an_invalid_configuration_and_lists_the_problems() {
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    sb.edit(
        "config/vigie.toml",
        "timezone = \"Europe/Paris\"",
        "timezone = \"Europe/Pariss\"",
    );
    let out = std::process::Command::new(crate::support::vigie_bin())
        .args(["run", "-c"])
        .arg(sb.config())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vigie.toml:") && stderr.contains("unknown time zone \"Europe/Pariss\""),
        "{stderr}"
    );
}

#[test]
fn under_systemd_it_says_ready_pings_the_watchdog_and_says_stopping() {
    use std::os::unix::net::UnixDatagram;
    use std::process::{Command, Stdio};
    let sb = Sandbox::shipped_in_force();
    sb.listen_anywhere();
    let sock_path = sb.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(crate::support::vigie_bin())
        .args(["run", "-c"])
        .arg(sb.config())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(recv(), "READY=1");
    // Then watchdog pings, every half interval.
    assert_eq!(recv(), "WATCHDOG=1");
    assert_eq!(recv(), "WATCHDOG=1");
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let mut stopping = false;
    for _ in 0..5 {
        if recv() == "STOPPING=1" {
            stopping = true;
            break;
        }
    }
    assert!(stopping);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
