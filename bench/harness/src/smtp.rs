//! A small SMTP sink inside the harness, for the fault drills: unlike
//! `smtp-sink` it records the `RCPT TO` addresses of every message it
//! accepts (so that a drill can count, per recipient, who was reached and
//! who was reached twice), it can be stopped (listener closed, open
//! connections dropped) and restarted on the same port, and it can take a
//! while to accept each message (`set_delay`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::procs::Arrivals;

#[derive(Default)]
struct Log {
    /// Messages accepted per recipient address.
    per: HashMap<String, u32>,
    /// When the latest recipient not seen before was accepted.
    last_new: Option<Instant>,
}

struct Shared {
    log: Mutex<Log>,
    delay: Mutex<Duration>,
    /// Open connections, dropped by `stop`.
    conns: Mutex<Vec<JoinHandle<()>>>,
}

pub struct SmtpSink {
    pub port: u16,
    /// Every message accepted (after the final `.`), with its instant.
    pub messages: Arc<Arrivals>,
    /// The number of distinct recipients reached, with the instant each was
    /// first reached.
    pub distinct: Arc<Arrivals>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl SmtpSink {
    pub async fn start() -> Result<SmtpSink> {
        let mut s = SmtpSink {
            port: crate::procs::free_port()?,
            messages: Arrivals::new(),
            distinct: Arrivals::new(),
            shared: Arc::new(Shared {
                log: Mutex::new(Log::default()),
                delay: Mutex::new(Duration::ZERO),
                conns: Mutex::new(Vec::new()),
            }),
            accept: None,
        };
        s.restart().await?;
        Ok(s)
    }

    /// How long to wait after each message's final `.` before answering 250.
    pub fn set_delay(&self, d: Duration) {
        *self.shared.delay.lock().unwrap() = d;
    }

    /// Closes the listener and drops every open connection: the port now
    /// refuses connections.
    pub fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.shared.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        let sock = TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(([127, 0, 0, 1], self.port).into())
            .with_context(|| format!("SMTP sink: cannot bind port {}", self.port))?;
        let listener: TcpListener = sock.listen(1024)?;
        let shared = self.shared.clone();
        let messages = self.messages.clone();
        let distinct = self.distinct.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let h = tokio::spawn(session(
                    s,
                    shared.clone(),
                    messages.clone(),
                    distinct.clone(),
                ));
                let mut conns = shared.conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(h);
            }
        }));
        Ok(())
    }

    /// Messages accepted per recipient address.
    pub fn per_recipient(&self) -> HashMap<String, u32> {
        self.shared.log.lock().unwrap().per.clone()
    }

    /// When the latest new recipient was reached.
    pub fn last_new(&self) -> Option<Instant> {
        self.shared.log.lock().unwrap().last_new
    }

    /// (recipients reached more than once, extra copies in all).
    pub fn duplicates(&self) -> (usize, u64) {
        let log = self.shared.log.lock().unwrap();
        let twice = log.per.values().filter(|&&n| n > 1).count();
        let extra = log
            .per
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum();
        (twice, extra)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The address inside `MAIL FROM:<…>` / `RCPT TO:<…>`.
fn path_arg(line: &str) -> String {
    let rest = line.split_once(':').map(|x| x.1).unwrap_or("");
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(a), Some(b)) if a < b => rest[a + 1..b].to_string(),
        _ => rest.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// One SMTP session. Pipelined commands (several in one read) are read
/// line by line from the buffer; answers are flushed when the buffer holds
/// no further input.
async fn session(
    s: TcpStream,
    shared: Arc<Shared>,
    messages: Arc<Arrivals>,
    distinct: Arc<Arrivals>,
) {
    let _ = s.set_nodelay(true);
    let (r, w) = s.into_split();
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut w = BufWriter::new(w);
    let mut rcpts: Vec<String> = Vec::new();
    let mut in_data = false;
    let mut line = Vec::with_capacity(1024);
    if w.write_all(b"220 vigie-bench ESMTP\r\n").await.is_err() || w.flush().await.is_err() {
        return;
    }
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply: &[u8] = if in_data {
            if line != b".\r\n" && line != b".\n" {
                continue;
            }
            in_data = false;
            let delay = *shared.delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let now = Instant::now();
            let mut new = 0;
            {
                let mut log = shared.log.lock().unwrap();
                for to in rcpts.drain(..) {
                    let n = log.per.entry(to).or_insert(0);
                    *n += 1;
                    if *n == 1 {
                        new += 1;
                    }
                }
                if new > 0 {
                    log.last_new = Some(now);
                }
            }
            messages.add(1, now);
            if new > 0 {
                distinct.add(new, now);
            }
            b"250 2.0.0 Ok: queued\r\n"
        } else {
            let text = String::from_utf8_lossy(&line);
            let cmd = text.trim_end();
            let verb = cmd
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => {
                    b"250-vigie-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000\r\n"
                }
                "HELO" => b"250 vigie-bench\r\n",
                "MAIL" => {
                    rcpts.clear();
                    b"250 2.1.0 Ok\r\n"
                }
                "RCPT" => {
                    rcpts.push(path_arg(cmd).to_ascii_lowercase());
                    b"250 2.1.5 Ok\r\n"
                }
                "DATA" if rcpts.is_empty() => b"554 5.5.1 No valid recipients\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 End data with <CR><LF>.<CR><LF>\r\n"
                }
                "RSET" => {
                    rcpts.clear();
                    b"250 2.0.0 Ok\r\n"
                }
                "NOOP" => b"250 2.0.0 Ok\r\n",
                "QUIT" => {
                    let _ = w.write_all(b"221 2.0.0 Bye\r\n").await;
                    let _ = w.flush().await;
                    return;
                }
                _ => b"502 5.5.2 Command not recognized\r\n",
            }
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
        if r.buffer().is_empty() && w.flush().await.is_err() {
            return;
        }
    }
}
