//! A real SMTP server on loopback for the tests: speaks enough of RFC 5321
//! for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), with PIPELINING
//! (its answers come line by line as it reads), records every accepted
//! message and whether commands came pipelined, and can refuse (4xx),
//! reject (5xx) or go down.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Option<String> = None;
        let mut collecting = false;
        for line in head.split("\r\n") {
            if collecting && (line.starts_with(' ') || line.starts_with('\t')) {
                if let Some(v) = out.as_mut() {
                    v.push_str(line.trim_start_matches(['\t']));
                }
                continue;
            }
            if collecting {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                out = Some(v.trim().to_string());
                collecting = true;
            }
        }
        out
    }

    /// The subject, decoded when lettre encoded it (RFC 2047).
    pub fn subject(&self) -> String {
        decode_words(&self.header("Subject").unwrap_or_default())
    }

    /// The text part, quoted-printable decoded.
    pub fn text(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        // The first text/plain part of a multipart message, or the body
        // of a plain text one.
        let part = match body.split("Content-Type: text/plain").nth(1) {
            Some(part) => {
                let part = part.split_once("\r\n\r\n").map(|x| x.1).unwrap_or(part);
                part.split("\r\n--").next().unwrap_or(part)
            }
            None => body,
        };
        decode_qp(part)
    }
}

fn decode_qp(s: &str) -> String {
    let mut bytes = Vec::new();
    let raw = s.replace("=\r\n", "");
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&raw[i + 1..i + 3], 16)
        {
            bytes.push(v);
            i += 3;
            continue;
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

fn decode_words(s: &str) -> String {
    use base64::Engine;
    // RFC 2047: white space between two encoded words is dropped, kept
    // everywhere else.
    let mut out = String::new();
    let mut prev_encoded = false;
    for word in s.split_whitespace() {
        let decoded = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|r| r.strip_suffix("?="))
            .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let encoded = decoded.is_some();
        let joined = encoded && prev_encoded;
        if !out.is_empty() && !joined {
            out.push(' ');
        }
        out.push_str(&decoded.unwrap_or_else(|| word.to_string()));
        prev_encoded = encoded;
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// Answer MAIL FROM with 451 (a temporary failure).
    TempFail,
    /// Answer RCPT TO for this address with 550.
    RejectRecipient(String),
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub mode: Arc<Mutex<Mode>>,
    /// How long each message takes to be accepted (a slow server).
    pub delay: Arc<Mutex<std::time::Duration>>,
    /// Whether EHLO offers PIPELINING (RFC 2920), as Postfix does.
    pub pipelining: Arc<std::sync::atomic::AtomicBool>,
    /// Messages whose final dot came in the same read as the next MAIL
    /// FROM (the client chains messages on one connection).
    pub chained: Arc<std::sync::atomic::AtomicUsize>,
    /// Commands that arrived before the one ahead of them was answered
    /// (in the same read): the client pipelined (RFC 2920), which it may
    /// only do when EHLO offered PIPELINING.
    pub pipelined: Arc<std::sync::atomic::AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = SmtpServer {
            addr,
            received: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            delay: Arc::default(),
            pipelining: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            chained: Arc::default(),
            pipelined: Arc::default(),
            task: None,
        };
        s.serve(listener);
        s
    }

    fn serve(&mut self, listener: TcpListener) {
        let received = self.received.clone();
        let mode = self.mode.clone();
        let delay = self.delay.clone();
        let pipelining = self.pipelining.clone();
        let chained = self.chained.clone();
        let pipelined = self.pipelined.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let pipelining = pipelining.load(std::sync::atomic::Ordering::Relaxed);
                conns.spawn(session(
                    sock,
                    received.clone(),
                    mode.clone(),
                    delay.clone(),
                    pipelining,
                    chained.clone(),
                    pipelined.clone(),
                ));
            }
        }));
    }

    /// Stops listening and drops every open connection: clients get
    /// "connection refused" until [`SmtpServer::restart`].
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the SMTP port");
        self.serve(listener);
    }

    pub fn set_delay(&self, d: std::time::Duration) {
        *self.delay.lock().unwrap() = d;
    }

    /// Offer PIPELINING to the next connections, or not.
    pub fn set_pipelining(&self, on: bool) {
        self.pipelining
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Messages for one address.
    pub fn to(&self, addr: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == addr))
            .collect()
    }
}

async fn session(
    sock: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
    delay: Arc<Mutex<std::time::Duration>>,
    pipelining: bool,
    chained: Arc<std::sync::atomic::AtomicUsize>,
    pipelined: Arc<std::sync::atomic::AtomicUsize>,
) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let _ = w.write_all(b"220 test.invalid ESMTP\r\n").await;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // More bytes already read: the next command came before this one
        // was answered.
        if !r.buffer().is_empty() {
            pipelined.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if pipelining {
                "250-test.invalid\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
            } else {
                "250-test.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if *mode.lock().unwrap() == Mode::TempFail {
                "451 4.3.0 try again later\r\n".into()
            } else {
                from = addr_of(&cmd[10..]);
                to.clear();
                "250 2.1.0 ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            let a = addr_of(&cmd[8..]);
            if *mode.lock().unwrap() == Mode::RejectRecipient(a.clone()) {
                "550 5.1.1 no such user\r\n".into()
            } else {
                to.push(a);
                "250 2.1.5 ok\r\n".into()
            }
        } else if upper == "DATA" {
            let _ = w.write_all(b"354 go ahead\r\n").await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match r.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if l == ".\r\n" {
                    if r.buffer().to_ascii_uppercase().starts_with(b"MAIL FROM:") {
                        chained.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if !r.buffer().is_empty() {
                        pipelined.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    break;
                }
                let l = l.strip_prefix('.').map(str::to_string).unwrap_or(l);
                data.push_str(&l);
            }
            let wait = *delay.lock().unwrap();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            received.lock().unwrap().push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            "250 2.0.0 queued\r\n".into()
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 ok\r\n".into()
        } else {
            "502 not implemented\r\n".into()
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn addr_of(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or(s);
    s.trim_start_matches('<').trim_end_matches('>').to_string()
}
