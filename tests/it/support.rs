//! Shared helpers: temporary copies of the shipped configuration, the real
//! binary, and a small HTTP client for loopback.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The path of the `vigie` binary built for these tests.
pub fn vigie_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vigie")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary copy of the shipped `config/` and `plans/`, with `var/`
/// inside the temporary directory and the listen address set to `listen`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn shipped() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&repo().join("config"), &dir.path().join("config"));
        copy_dir(&repo().join("plans"), &dir.path().join("plans"));
        Sandbox { dir }
    }

    /// [`Sandbox::shipped`] for a daemon that runs on the wall clock: the
    /// shipped plan is the 2026 version, its end is moved far away so that
    /// it stays in force whatever the year the tests run.
    pub fn shipped_in_force() -> Sandbox {
        let sb = Sandbox::shipped();
        sb.edit(
            "plans/pgc-2026.toml",
            "valid_until = 2026-12-31",
            "valid_until = 2099-12-31",
        );
        sb
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("config/vigie.toml")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Replaces `from` by `to` in a file; panics if `from` is not there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// Sets `http.listen` to port 0 so the daemon picks a free port.
    pub fn listen_anywhere(&self) {
        let text = self.read("config/vigie.toml");
        let mut out = String::new();
        for line in text.lines() {
            if line.trim_start().starts_with("listen") {
                out.push_str("listen = \"127.0.0.1:0\"\n");
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        self.write("config/vigie.toml", &out);
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Runs `vigie ARGS` and returns (exit code, stdout, stderr).
pub fn run_vigie(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(vigie_bin())
        .args(args)
        .env_remove("VIGIE_CONFIG")
        .output()
        .expect("run vigie");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vigie --config CONFIG test-send CHANNEL TO`: (exit code, stdout then
/// stderr).
pub fn test_send(config: &Path, channel: &str, to: &str) -> (i32, String) {
    let config = config.to_str().unwrap();
    let (code, out, err) = run_vigie(&["--config", config, "test-send", channel, to]);
    (code, format!("{out}{err}"))
}

/// [`test_send`] on a blocking thread, for a test whose own servers (on
/// its runtime) must answer meanwhile.
pub async fn test_send_blocking(
    config: PathBuf,
    channel: &'static str,
    to: &'static str,
) -> (i32, String) {
    tokio::task::spawn_blocking(move || test_send(&config, channel, to))
        .await
        .unwrap()
}

/// [`run_vigie`] under `timeout 20`: for a command that must stop by
/// itself (a `vigie run` that must refuse to start), so that a regression
/// fails (exit 124) instead of hanging the tests.
pub fn run_vigie_briefly(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("timeout")
        .arg("20")
        .arg(vigie_bin())
        .args(args)
        .env_remove("VIGIE_CONFIG")
        .output()
        .expect("run timeout vigie");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The real daemon as a child process, with its log lines collected.
pub struct DaemonProcess {
    pub child: Child,
    pub addr: SocketAddr,
    logs: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl DaemonProcess {
    /// Starts `vigie run -c CONFIG` and waits until it says where it serves.
    pub fn start(config: &Path) -> DaemonProcess {
        DaemonProcess::start_log_level(config, "info")
    }

    /// [`DaemonProcess::start`] with `RUST_LOG` set to `level`.
    pub fn start_log_level(config: &Path, level: &str) -> DaemonProcess {
        let mut child = Command::new(vigie_bin())
            .args(["run", "-c"])
            .arg(config)
            .env("RUST_LOG", level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigie");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = DaemonProcess {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            logs: rx,
            seen: Vec::new(),
        };
        let line = d
            .wait_log("vigie is serving", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("daemon did not start; logs:\n{}", d.seen.join("\n")));
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("addr in the log line");
        d.addr = addr.parse().expect("socket address");
        d
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.logs.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over loopback: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, &[], "")
}

/// A minimal HTTP/1.1 request: (status, body). The body of the answer is
/// read to the end (the request says `Connection: close`).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Writes, due at `at`, one crisis message to Claire Martin
/// (`recipient_id`) on `channel` at `address`, outside any event: its
/// delivery id.
pub async fn claire_delivery(
    store: &vigie::store::Store,
    recipient_id: &str,
    channel: &str,
    address: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> i64 {
    use vigie::store::outbox::{self, NewDelivery, Priority};
    let item = NewDelivery {
        event_id: None,
        step_id: None,
        recipient_id: Some(recipient_id.into()),
        recipient_name: "Claire Martin".into(),
        channel: channel.into(),
        address: Some(address.into()),
        priority: Priority::Crisis,
        skipped: None,
        subject: "Canicule : niveau orange".into(),
        body_text: "Buvez de l'eau.".into(),
        body_html: None,
        payload: None,
    };
    store
        .call(move |c| {
            outbox::insert(c, &[item], at)?;
            Ok(c.last_insert_rowid())
        })
        .await
        .unwrap()
}
