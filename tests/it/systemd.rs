//! The shipped units: `systemd/vigie.service` (what the sysadmin relies on
//! is there, and `systemd-analyze security` rates it 2.0 or better, "OK"),
//! and the daily backup `systemd/vigie-backup.service` + `.timer` (SPEC
//! §16), which `systemd-analyze verify` accepts and which run the backup
//! as the daemon's user, in its state directory, with a retention count.
//!
//! `systemd-analyze` comes with Debian's `systemd` package; where it is
//! absent the scoring test says it was skipped and passes.

use std::process::Command;

use crate::support::repo;

/// The exposure `systemd-analyze security` may give the unit, at most.
const MAX_EXPOSURE: f64 = 2.0;

fn unit() -> String {
    std::fs::read_to_string(repo().join("systemd/vigie.service")).expect("systemd/vigie.service")
}

/// The values of `key=` lines, comments aside.
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
        .collect()
}

#[test]
fn the_unit_runs_the_daemon_as_spec_section_11_says() {
    let u = unit();
    let one = |k: &str| {
        let v = values(&u, k);
        assert_eq!(v.len(), 1, "{k}= should appear once: {v:?}");
        v[0].clone()
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("WatchdogSec"), "30");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/vigie run -c /etc/vigie/vigie.toml"
    );
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("StateDirectory"), "vigie");
    assert_eq!(one("ConfigurationDirectory"), "vigie");
    assert_eq!(one("DynamicUser"), "yes");
    assert!(
        values(&u, "LoadCredential")
            .contains(&"smtp-password:/etc/vigie/secrets/smtp-password".to_string()),
        "LoadCredential for the SMTP password"
    );
    // The daemon needs the network and its Unix sockets (journal, sd_notify).
    let families = one("RestrictAddressFamilies");
    for f in ["AF_INET", "AF_INET6", "AF_UNIX"] {
        assert!(families.split_whitespace().any(|x| x == f), "{families}");
    }
    assert!(values(&u, "PrivateNetwork").is_empty() || one("PrivateNetwork") == "no");
}

/// The number on the "Overall exposure level for vigie.service: 1.1 OK" line.
fn overall_exposure(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let after = line.rsplit_once(": ")?.1;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn systemd_analyze_rates_the_unit_ok() {
    rates_ok("systemd/vigie.service");
}

#[test]
fn systemd_analyze_rates_the_backup_unit_ok() {
    rates_ok("systemd/vigie-backup.service");
}

fn rates_ok(rel: &str) {
    let unit = repo().join(rel);
    let run = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output();
    let out = match run {
        Ok(o) => o,
        Err(e) => {
            println!("skipped: systemd-analyze is not installed ({e}); apt-get install systemd");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && text.contains("--offline") {
        println!("skipped: this systemd-analyze has no --offline (systemd < 250):\n{text}");
        return;
    }
    let exposure = overall_exposure(&text)
        .unwrap_or_else(|| panic!("no overall exposure in the output:\n{text}"));
    println!("systemd-analyze security: overall exposure {exposure}");
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{text}"
    );
}

#[test]
fn the_exposure_line_is_parsed() {
    assert_eq!(
        overall_exposure("→ Overall exposure level for vigie.service: 1.1 OK 🙂"),
        Some(1.1)
    );
    assert_eq!(overall_exposure("nothing"), None);
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_backup_timer_makes_a_daily_copy_with_a_retention_count_as_the_daemons_user() {
    let timer = read("systemd/vigie-backup.timer");
    let service = read("systemd/vigie-backup.service");
    let daemon = unit();
    let one = |u: &str, k: &str| {
        let v = values(u, k);
        assert_eq!(v.len(), 1, "{k}= should appear once: {v:?}");
        v[0].clone()
    };
    assert!(one(&timer, "OnCalendar").starts_with("*-*-* "), "daily");
    assert_eq!(one(&timer, "Persistent"), "true");
    assert_eq!(one(&timer, "WantedBy"), "timers.target");
    assert_eq!(one(&service, "Type"), "oneshot");
    assert_eq!(
        one(&service, "ExecStart"),
        "/usr/bin/vigie backup -c /etc/vigie/vigie.toml --dir /var/lib/vigie-backup --keep ${VIGIE_BACKUP_KEEP}"
    );
    assert_eq!(one(&service, "Environment"), "VIGIE_BACKUP_KEEP=14");
    // The daemon's user and state directory, so that it reads the database
    // the daemon writes, whatever the daemon's unit says.
    for k in ["DynamicUser", "User", "Group", "StateDirectoryMode"] {
        assert_eq!(one(&service, k), one(&daemon, k), "{k}");
    }
    assert_eq!(one(&service, "StateDirectory"), "vigie vigie-backup");
    // It must not reset /etc/vigie's mode (ConfigurationDirectoryMode).
    assert!(values(&service, "ConfigurationDirectory").is_empty());
    assert!(
        service.contains("/var/lib/vigie-backup")
            && one(&daemon, "ExecStart").contains("-c /etc/vigie/vigie.toml"),
        "same configuration file as the daemon"
    );
}

/// `systemd-analyze verify` on the three units (the binary path pointed at
/// the one built for these tests: verify wants an executable).
#[test]
fn systemd_analyze_verifies_the_units() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "vigie.service",
        "vigie-backup.service",
        "vigie-backup.timer",
    ];
    for n in names {
        let text =
            read(&format!("systemd/{n}")).replace("/usr/bin/vigie", crate::support::vigie_bin());
        std::fs::write(dir.path().join(n), text).unwrap();
    }
    let run = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(names.map(|n| dir.path().join(n)))
        .output();
    let out = match run {
        Ok(o) => o,
        Err(e) => {
            println!("skipped: systemd-analyze is not installed ({e}); apt-get install systemd");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

#[test]
fn the_deb_ships_the_backup_units() {
    let cargo = read("Cargo.toml");
    for u in ["vigie-backup.service", "vigie-backup.timer"] {
        assert!(
            cargo.contains(&format!(
                "[\"systemd/{u}\", \"usr/lib/systemd/system/\", \"644\"]"
            )),
            "{u} in [package.metadata.deb] assets"
        );
    }
}
