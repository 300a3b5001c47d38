//! The systemd notification protocol (`sd_notify(3)`), without libsystemd:
//! one datagram per state change to the socket named by `$NOTIFY_SOCKET`,
//! and the watchdog interval from `$WATCHDOG_USEC`.
//!
//! This module only speaks the protocol. It decides nothing: the daemon says
//! when it is ready (`READY=1`), reloading (`RELOADING=1`), stopping
//! (`STOPPING=1`), and pings the watchdog (`WATCHDOG=1`). Outside systemd
//! (no `$NOTIFY_SOCKET`) every call is a no-op that returns `Ok(false)`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. `"READY=1"`, `"WATCHDOG=1"`, `"STATUS=…"`; several
/// assignments separated by newlines) to the service manager.
///
/// Returns `Ok(false)` when `$NOTIFY_SOCKET` is unset or empty (not run by
/// systemd, or `Type=` is not `notify`), `Ok(true)` once the datagram is
/// sent. Supports socket paths and abstract sockets (`@name`).
pub fn notify(state: &str) -> io::Result<bool> {
    notify_to(std::env::var_os("NOTIFY_SOCKET").as_deref(), state)
}

/// [`notify`] with the socket given, so it can be tested without touching
/// the process environment.
pub fn notify_to(socket: Option<&OsStr>, state: &str) -> io::Result<bool> {
    let Some(socket) = socket.filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    let sent = match bytes.first() {
        Some(b'@') => send_abstract(&sock, &bytes[1..], state.as_bytes())?,
        Some(b'/') => sock.send_to(state.as_bytes(), socket)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "NOTIFY_SOCKET={}: only socket paths and abstract sockets (@name) are supported",
                    socket.to_string_lossy()
                ),
            ));
        }
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sd_notify: sent {sent} of {} bytes", state.len()),
        ));
    }
    Ok(true)
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &[u8], msg: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(msg, &addr)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// The watchdog timeout systemd expects pings within (`WatchdogSec=`), when
/// it applies to this process: `$WATCHDOG_USEC` set and positive, and
/// `$WATCHDOG_PID` unset or equal to our pid. Ping (`WATCHDOG=1`) at half
/// this interval, as `sd_watchdog_enabled(3)` advises.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_from(
        std::env::var_os("WATCHDOG_USEC"),
        std::env::var_os("WATCHDOG_PID"),
        std::process::id(),
    )
}

/// [`watchdog_interval`] from given values, for tests.
pub fn watchdog_from(
    usec: Option<OsString>,
    pid: Option<OsString>,
    our_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.to_str()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        let pid: u32 = pid.to_str()?.trim().parse().ok()?;
        if pid != our_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn nothing_is_sent_outside_systemd() {
        assert!(!notify_to(None, "READY=1").unwrap());
        assert!(!notify_to(Some(OsStr::new("")), "READY=1").unwrap());
    }

    #[test]
    fn ready_reaches_a_socket_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(Some(path.as_os_str()), "READY=1\nSTATUS=serving").unwrap());
        assert_eq!(received(&server), "READY=1\nSTATUS=serving");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn watchdog_pings_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("vigie-test-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let socket = OsString::from(format!("@{name}"));
        assert!(notify_to(Some(&socket), "WATCHDOG=1").unwrap());
        assert_eq!(received(&server), "WATCHDOG=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody-listens");
        assert!(notify_to(Some(path.as_os_str()), "READY=1").is_err());
        assert!(notify_to(Some(OsStr::new("vsock:2:1234")), "READY=1").is_err());
    }

    #[test]
    fn the_watchdog_interval_applies_to_our_pid_only() {
        let us = |s: &str| Some(OsString::from(s));
        assert_eq!(
            watchdog_from(us("30000000"), None, 42),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_from(us("30000000"), us("42"), 42),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_from(us("30000000"), us("43"), 42), None);
        assert_eq!(watchdog_from(us("0"), None, 42), None);
        assert_eq!(watchdog_from(us("soon"), None, 42), None);
        assert_eq!(watchdog_from(None, us("42"), 42), None);
    }
}
