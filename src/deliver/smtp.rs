//! SMTP sessions: lettre's connection and commands, in a pool of our own.
//!
//! Why not lettre's pooled transport: its sockets keep Nagle's algorithm
//! on, and lettre writes a message's final `CRLF.CRLF` in a write of its
//! own, so every message waited for the server's delayed ACK (40 ms on
//! Linux) before the server saw its end — 45 ms per message, 176 messages/s
//! with 8 connections on loopback, whatever the server. It also sends a
//! NOOP before every reuse of a connection. Here every socket has
//! `TCP_NODELAY`, and a connection used less than [`IDLE_CHECK`] ago is
//! reused without a NOOP: if the server dropped it meanwhile, the failure
//! comes before the message was handed over (MAIL, RCPT or DATA), and the
//! message is sent at once on a new connection — never twice because of
//! it. A connection idle longer than [`IDLE_DROP`] is closed instead of
//! reused.
//!
//! On a plaintext session whose server offers PIPELINING (RFC 2920: a
//! local relay, smtp-sink), MAIL, RCPT and DATA go in one write and the
//! message with its final dot in another: two round trips per message
//! instead of four (lettre has no pipelining; its connection reads the
//! answers, we write through the socket we gave it). When the outbox has
//! more deliveries than connections, a send task takes several and
//! [`SmtpPool::send_chain`] sends them on one connection, each message's
//! final dot and the next envelope in one write: one round trip per
//! message. Over TLS the commands go one by one through lettre.
//!
//! Concurrency is bounded by the outbox (one send per slot of the channel);
//! the pool keeps at most `max_idle` connections open between sends.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

pub mod diagnose;
mod stream;
use stream::{Plain, TlsStream};

/// A connection idle longer than this is checked with a NOOP before reuse.
pub const IDLE_CHECK: Duration = Duration::from_secs(5);
/// A connection idle longer than this is closed rather than reused.
pub const IDLE_DROP: Duration = Duration::from_secs(60);

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SmtpFailure {
    /// The server answered with an error, or the session broke.
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The server's name could not be resolved.
    #[error("cannot resolve {0}: {1}")]
    Dns(String, #[source] std::io::Error),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, #[source] std::io::Error),
    /// The TLS session could not be set up: handshake, the server's
    /// certificate, our client certificate refused, STARTTLS not offered.
    #[error("TLS: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The server refused our credentials (or offers no mechanism we know).
    #[error("AUTH: {0}")]
    Auth(#[source] lettre::transport::smtp::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The message cannot be sent to this server (e.g. non-ASCII without
    /// 8BITMIME).
    #[error("{0}")]
    Refused(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

impl SmtpFailure {
    /// A 5xx answer or a message this server cannot take: retrying is
    /// pointless.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpFailure::Smtp(e) => e.is_permanent(),
            SmtpFailure::Refused(_) => true,
            _ => false,
        }
    }

    /// The session could not be set up at all (name, connection, TLS,
    /// AUTH): a matter of the server or of our configuration, never of the
    /// message; the channel pauses and probes (see [`crate::deliver`]).
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            SmtpFailure::Dns(..)
                | SmtpFailure::Connect(..)
                | SmtpFailure::Tls(_)
                | SmtpFailure::Auth(_)
        )
    }
}

pub struct SmtpPool {
    host: String,
    port: u16,
    tls: Tls,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(Session, Instant)>>,
}

/// An open SMTP session.
struct Session {
    conn: AsyncSmtpConnection,
    /// The socket's writing half, when the session is plaintext and the
    /// server offers PIPELINING.
    pipe: Option<Writer>,
    /// Whether the session is in a known state: after a refused pipelined
    /// envelope the server may be waiting for the message (it accepted
    /// DATA), and a QUIT would never be answered.
    in_step: bool,
}

impl Session {
    /// Ends the session: QUIT when the server can answer it (at most a
    /// second), else the connection is just closed.
    async fn abort(mut self) {
        if self.in_step {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.abort()).await;
        }
    }
}

type Writer = Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>;

impl SmtpPool {
    pub fn new(
        host: String,
        port: u16,
        tls: Tls,
        credentials: Option<Credentials>,
        timeout: Duration,
        max_idle: usize,
    ) -> SmtpPool {
        SmtpPool {
            host,
            port,
            tls,
            hello: ClientId::default(),
            credentials,
            timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one message (`body` as formatted, headers included).
    pub async fn send(&self, envelope: &Envelope, body: &[u8]) -> Result<(), SmtpFailure> {
        let mut retried = false;
        loop {
            let (mut session, reused) = match self.take().await {
                Some(c) => (c, true),
                None => (self.timed(self.open()).await?, false),
            };
            match self.timed(transaction(&mut session, envelope, body)).await {
                Ok(()) => {
                    self.put(session).await;
                    return Ok(());
                }
                Err((stage, e)) => {
                    session.abort().await;
                    // A reused connection that fails before the message was
                    // handed over was most likely closed by the server while
                    // idle: once, on a new connection.
                    if reused && !retried && stage == Stage::Envelope && !e.is_permanent() {
                        retried = true;
                        tracing::debug!(error = %e, "pooled SMTP connection failed, retrying on a new one");
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Sends messages in order. On a pipelined session they go one after
    /// the other on one connection, each message's end and the next one's
    /// envelope in one write: one round trip per message instead of two.
    /// Whatever stops the chain (a refused envelope, a broken connection)
    /// ends that connection; the messages after it are sent one by one
    /// with [`send`](Self::send). `each` is told each message's result
    /// (its index) as soon as it is known; after a server that cannot be
    /// reached, the rest are not tried.
    pub async fn send_chain(
        &self,
        msgs: &[(&Envelope, &[u8])],
        each: &mut (dyn FnMut(usize, Result<(), SmtpFailure>) + Send),
    ) {
        let mut done = 0;
        if msgs.len() > 1 {
            let (mut session, reused) = match self.take().await {
                Some(s) => (s, true),
                None => match self.timed(self.open()).await {
                    Ok(s) => (s, false),
                    Err(e) => return each(0, Err(e)),
                },
            };
            if session.pipe.is_none() {
                self.put(session).await;
            } else {
                match chain(&mut session, msgs, self.timeout, &mut done, each).await {
                    Ok(()) => self.put(session).await,
                    Err((stage, e)) => {
                        session.abort().await;
                        // The first envelope on a connection idle in the
                        // pool: most likely closed meanwhile; `send` tries
                        // the message again on a new one.
                        let stale =
                            reused && done == 0 && stage == Stage::Envelope && !e.is_permanent();
                        if stale {
                            tracing::debug!(error = %e, "pooled SMTP connection failed, retrying on a new one");
                        } else {
                            each(done, Err(e));
                            done += 1;
                        }
                    }
                }
            }
        }
        for (i, (envelope, body)) in msgs.iter().enumerate().skip(done) {
            let r = self.send(envelope, body).await;
            let unreachable = r.as_ref().is_err_and(SmtpFailure::is_setup);
            each(i, r);
            if unreachable {
                break;
            }
        }
    }

    async fn timed<T, E: From<SmtpFailure>>(
        &self,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(SmtpFailure::Timeout(self.timeout).into()),
        }
    }

    /// An idle connection fit for reuse, if any.
    async fn take(&self) -> Option<Session> {
        loop {
            let (mut s, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            let idle = since.elapsed();
            if idle > IDLE_DROP {
                s.abort().await;
                continue;
            }
            if idle > IDLE_CHECK {
                let alive = tokio::time::timeout(self.timeout, s.conn.test_connected())
                    .await
                    .unwrap_or(false);
                if !alive {
                    s.abort().await;
                    continue;
                }
            }
            return Some(s);
        }
    }

    async fn put(&self, conn: Session) {
        if conn.conn.has_broken() {
            conn.abort().await;
            return;
        }
        let extra = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.max_idle {
                idle.push((conn, Instant::now()));
                None
            } else {
                Some(conn)
            }
        };
        if let Some(c) = extra {
            c.abort().await;
        }
    }

    /// A new session: TCP with `TCP_NODELAY`, TLS as configured, EHLO, AUTH.
    async fn open(&self) -> Result<Session, SmtpFailure> {
        let target = format!("{}:{}", self.host, self.port);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| SmtpFailure::Dns(self.host.clone(), e))?
            .collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        let mut tcp = None;
        for a in addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or_else(|| SmtpFailure::Connect(target.clone(), last))?;
        tcp.set_nodelay(true)
            .map_err(|e| SmtpFailure::Connect(target.clone(), e))?;
        let (mut conn, mut pipe) = match &self.tls {
            Tls::Wrapper(params) => {
                // Implicit TLS (smtps): the handshake comes before the
                // greeting, so it is done here, on our socket.
                #[allow(deprecated)]
                let mut stream =
                    lettre::transport::smtp::client::AsyncNetworkStream::use_existing_tokio1(
                        Box::new(tcp),
                    );
                stream
                    .upgrade_tls(params.clone())
                    .await
                    .map_err(SmtpFailure::Tls)?;
                // With TLS 1.3 a server that refuses our client
                // certificate says so after the handshake: reading the
                // greeting fails with its alert.
                let conn = AsyncSmtpConnection::connect_with_transport(
                    Box::new(TlsStream(stream)),
                    &self.hello,
                )
                .await
                .map_err(|e| {
                    if diagnose::is_tls_alert(&e) {
                        SmtpFailure::Tls(e)
                    } else {
                        SmtpFailure::Smtp(e)
                    }
                })?;
                (conn, None)
            }
            _ => {
                let peer = tcp
                    .peer_addr()
                    .map_err(|e| SmtpFailure::Connect(target.clone(), e))?;
                let (read, write) = tcp.into_split();
                let write: Writer = Arc::new(tokio::sync::Mutex::new(write));
                let seen = Arc::new(Mutex::new(Vec::new()));
                let plain = Plain {
                    read,
                    write: write.clone(),
                    seen: seen.clone(),
                    peer,
                };
                let conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(plain), &self.hello)
                        .await?;
                let offered = offers_pipelining(&seen.lock().unwrap_or_else(|e| e.into_inner()));
                (conn, offered.then_some(write))
            }
        };
        match &self.tls {
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(SmtpFailure::Tls)?;
                pipe = None;
            }
            Tls::Required(params) => {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(SmtpFailure::Tls)?;
                pipe = None;
            }
            _ => {}
        }
        if let Some(c) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, c)
                .await
                .map_err(SmtpFailure::Auth)?;
        }
        Ok(Session {
            conn,
            pipe,
            in_step: true,
        })
    }
}

/// Whether the server's EHLO answer (in the first bytes it sent) lists
/// PIPELINING.
fn offers_pipelining(seen: &[u8]) -> bool {
    String::from_utf8_lossy(seen).lines().any(|l| {
        let l = l.trim_end();
        l.len() >= 14 && l.starts_with("250") && l[4..].eq_ignore_ascii_case("PIPELINING")
    })
}

/// Where a transaction failed: before the server accepted DATA (nothing
/// handed over) or after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Envelope,
    Message,
}

impl From<SmtpFailure> for (Stage, SmtpFailure) {
    fn from(e: SmtpFailure) -> Self {
        (Stage::Message, e)
    }
}

/// The MAIL command for a message, once checked that this server can take
/// it (a refusal is a failure before anything was handed over).
fn mail_command(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
) -> Result<Mail, SmtpFailure> {
    let mut options = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii_address {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SmtpFailure::Refused(
                "non-ASCII address and the server lacks SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SmtpFailure::Refused(
                "8-bit message and the server lacks 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(Mail::new(envelope.from().cloned(), options))
}

/// MAIL, RCPT and DATA as one pipelined write.
fn envelope_commands(mail: Mail, envelope: &Envelope) -> String {
    let mut commands = mail.to_string();
    for to in envelope.to() {
        let _ = write!(commands, "{}", Rcpt::new(to.clone(), vec![]));
    }
    let _ = write!(commands, "{Data}");
    commands
}

/// Reads the answers to a pipelined envelope, one per command, every one
/// even after a refusal (the first refusal is the error). After a refusal
/// the server may be waiting for the message (it accepted DATA): the
/// session is no longer in a known state.
async fn read_envelope(session: &mut Session, recipients: usize) -> Result<(), SmtpFailure> {
    let mut refused = None;
    for _ in 0..recipients + 2 {
        if let Err(e) = session.conn.read_response().await {
            let broken = !e.is_transient() && !e.is_permanent();
            refused.get_or_insert(e);
            if broken {
                break;
            }
        }
    }
    match refused {
        Some(e) => {
            session.in_step = false;
            Err(SmtpFailure::Smtp(e))
        }
        None => Ok(()),
    }
}

/// Writes on a pipelined session's socket; a failed write leaves the session
/// in an unknown state.
async fn write_pipe(session: &mut Session, bytes: &[u8]) -> Result<(), SmtpFailure> {
    use tokio::io::AsyncWriteExt;
    let Some(pipe) = &session.pipe else {
        return Err(SmtpFailure::Refused("not a pipelined session".into()));
    };
    let written = pipe.lock().await.write_all(bytes).await;
    written.map_err(|e| {
        session.in_step = false;
        SmtpFailure::Io(e)
    })
}

/// The message, dot-stuffed, and its final dot.
fn message_data(body: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(body.len() + body.len() / 64 + 8);
    dot_stuff(body, &mut data);
    data.extend_from_slice(b"\r\n.\r\n");
    data
}

/// MAIL, RCPT, DATA, then the message: what lettre's `send` does, with the
/// stage of a failure known; pipelined when the session allows it (the
/// envelope in one write, then the message with its final dot in another:
/// two round trips).
async fn transaction(
    session: &mut Session,
    envelope: &Envelope,
    body: &[u8],
) -> Result<(), (Stage, SmtpFailure)> {
    let env = |e: SmtpFailure| (Stage::Envelope, e);
    let mail = mail_command(&session.conn, envelope, body).map_err(env)?;
    if session.pipe.is_none() {
        let conn = &mut session.conn;
        let env = |e: lettre::transport::smtp::Error| (Stage::Envelope, SmtpFailure::Smtp(e));
        conn.command(mail).await.map_err(env)?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![]))
                .await
                .map_err(env)?;
        }
        conn.command(Data).await.map_err(env)?;
        conn.message(body)
            .await
            .map_err(|e| (Stage::Message, SmtpFailure::Smtp(e)))?;
        return Ok(());
    }
    write_pipe(session, envelope_commands(mail, envelope).as_bytes())
        .await
        .map_err(env)?;
    read_envelope(session, envelope.to().len())
        .await
        .map_err(env)?;
    write_pipe(session, &message_data(body))
        .await
        .map_err(|e| (Stage::Message, e))?;
    session
        .conn
        .read_response()
        .await
        .map_err(|e| (Stage::Message, SmtpFailure::Smtp(e)))?;
    Ok(())
}

/// Messages one after the other on a pipelined session, each message's end
/// and the next one's envelope in one write (RFC 2920 lets message content
/// open a group of commands): one round trip per message. Tells `each` the
/// result of each message done, in order, counting them in `done`; the
/// error that stops the chain belongs to the next message, with its stage. A message this server cannot take (see
/// [`mail_command`]) ends the chain without an error: the caller sends the
/// rest one by one.
async fn chain(
    session: &mut Session,
    msgs: &[(&Envelope, &[u8])],
    timeout: Duration,
    done: &mut usize,
    each: &mut (dyn FnMut(usize, Result<(), SmtpFailure>) + Send),
) -> Result<(), (Stage, SmtpFailure)> {
    let timed = |t: Result<Result<(), SmtpFailure>, tokio::time::error::Elapsed>, stage| match t {
        Ok(r) => r.map_err(|e| (stage, e)),
        Err(_) => Err((Stage::Message, SmtpFailure::Timeout(timeout))),
    };
    let Some((envelope, body)) = msgs.first() else {
        return Ok(());
    };
    let mail = mail_command(&session.conn, envelope, body).map_err(|e| (Stage::Envelope, e))?;
    let first = async {
        write_pipe(session, envelope_commands(mail, envelope).as_bytes()).await?;
        read_envelope(session, envelope.to().len()).await
    };
    timed(tokio::time::timeout(timeout, first).await, Stage::Envelope)?;
    for (i, (_, body)) in msgs.iter().enumerate() {
        let mut data = message_data(body);
        let next = msgs.get(i + 1).and_then(|(envelope, body)| {
            let mail = mail_command(&session.conn, envelope, body).ok()?;
            data.extend_from_slice(envelope_commands(mail, envelope).as_bytes());
            Some(envelope.to().len())
        });
        let end = async {
            write_pipe(session, &data).await?;
            // A refusal of this message (a 4xx or 5xx answer to its dot)
            // leaves the session in step: the chain goes on.
            match session.conn.read_response().await {
                Ok(_) => Ok(Ok(())),
                Err(e) if e.is_transient() || e.is_permanent() => Ok(Err(SmtpFailure::Smtp(e))),
                Err(e) => Err(SmtpFailure::Smtp(e)),
            }
        };
        match tokio::time::timeout(timeout, end).await {
            Ok(Ok(r)) => {
                each(i, r);
                *done += 1;
            }
            Ok(Err(e)) => return Err((Stage::Message, e)),
            Err(_) => return Err((Stage::Message, SmtpFailure::Timeout(timeout))),
        }
        let Some(recipients) = next else {
            return Ok(());
        };
        let answers = tokio::time::timeout(timeout, read_envelope(session, recipients)).await;
        timed(answers, Stage::Envelope)?;
    }
    Ok(())
}

/// SMTP transparency (RFC 5321 §4.5.2): a line that starts with a dot gets
/// another, as lettre's codec does. The text between line starts is copied
/// whole.
fn dot_stuff(body: &[u8], out: &mut Vec<u8>) {
    if body.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut rest = body;
    // Each `\r\n.` is copied up to its dot, which then gets another.
    while let Some(at) = rest.windows(3).position(|w| w == b"\r\n.") {
        out.extend_from_slice(&rest[..at + 2]);
        out.push(b'.');
        rest = &rest[at + 2..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_starting_with_a_dot_get_another() {
        let mut out = Vec::new();
        dot_stuff(b".a\r\nb.\r\n..c\r\n\r\n.", &mut out);
        assert_eq!(out, b"..a\r\nb.\r\n...c\r\n\r\n..");
    }

    /// Line by line, as the stuffing was first written: a dot after CRLF
    /// (or at the start) gets another; a dot after a bare LF does not.
    fn stuffed_byte_by_byte(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut line_start, mut after_cr) = (true, false);
        for &b in body {
            if line_start && b == b'.' {
                out.push(b'.');
            }
            out.push(b);
            line_start = after_cr && b == b'\n';
            after_cr = b == b'\r';
        }
        out
    }

    #[test]
    fn stuffing_copies_what_has_no_dot_at_a_line_start_unchanged() {
        for body in [
            &b""[..],
            b"no dot at all\r\n",
            b"a.b\r\n.\r\n..\r\n",
            b"bare\n.lf\r\n",
            b"\r\n.\r\n.",
            b"ends with CR LF\r\n",
            b"\r\r\n.x",
            "Réponse : https://vigie.example.org/r/AbC.d\r\n.\r\n".as_bytes(),
        ] {
            let mut out = Vec::new();
            dot_stuff(body, &mut out);
            assert_eq!(
                out,
                stuffed_byte_by_byte(body),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn pipelining_is_read_from_the_ehlo_answer() {
        let ehlo = b"220 sink ESMTP\r\n250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        assert!(offers_pipelining(ehlo));
        assert!(offers_pipelining(b"250 pipelining\r\n"));
        assert!(!offers_pipelining(b"250-sink\r\n250 8BITMIME\r\n"));
        assert!(!offers_pipelining(b"250-PIPELININGX\r\n"));
    }
}
