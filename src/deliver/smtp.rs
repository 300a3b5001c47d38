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
//! Concurrency is bounded by the outbox (one send per slot of the channel);
//! the pool keeps at most `max_idle` connections open between sends.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Tls};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

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
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The message cannot be sent to this server (e.g. non-ASCII without
    /// 8BITMIME).
    #[error("{0}")]
    Refused(String),
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
}

pub struct SmtpPool {
    host: String,
    port: u16,
    tls: Tls,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

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
            let (mut conn, reused) = match self.take().await {
                Some(c) => (c, true),
                None => (self.timed(self.open()).await?, false),
            };
            match self.timed(transaction(&mut conn, envelope, body)).await {
                Ok(()) => {
                    self.put(conn).await;
                    return Ok(());
                }
                Err((stage, e)) => {
                    conn.abort().await;
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
    async fn take(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            let idle = since.elapsed();
            if idle > IDLE_DROP {
                conn.abort().await;
                continue;
            }
            if idle > IDLE_CHECK {
                let alive = tokio::time::timeout(self.timeout, conn.test_connected())
                    .await
                    .unwrap_or(false);
                if !alive {
                    conn.abort().await;
                    continue;
                }
            }
            return Some(conn);
        }
    }

    async fn put(&self, mut conn: AsyncSmtpConnection) {
        if conn.has_broken() {
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
        if let Some(mut c) = extra {
            c.abort().await;
        }
    }

    /// A new session: TCP with `TCP_NODELAY`, TLS as configured, EHLO, AUTH.
    async fn open(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let target = format!("{}:{}", self.host, self.port);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| SmtpFailure::Connect(target.clone(), e))?
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
        let mut conn = match &self.tls {
            Tls::Wrapper(params) => {
                // Implicit TLS (smtps): the handshake comes before the
                // greeting, so it is done here, on our socket.
                #[allow(deprecated)]
                let mut stream =
                    lettre::transport::smtp::client::AsyncNetworkStream::use_existing_tokio1(
                        Box::new(tcp),
                    );
                stream.upgrade_tls(params.clone()).await?;
                AsyncSmtpConnection::connect_with_transport(
                    Box::new(TlsStream(stream)),
                    &self.hello,
                )
                .await?
            }
            _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?,
        };
        match &self.tls {
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &self.hello).await?
            }
            Tls::Required(params) => conn.starttls(params.clone(), &self.hello).await?,
            _ => {}
        }
        if let Some(c) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, c).await?;
        }
        Ok(conn)
    }
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

/// MAIL, RCPT, DATA, then the message: what lettre's `send` does, with the
/// stage of a failure known.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
) -> Result<(), (Stage, SmtpFailure)> {
    let env = |e: lettre::transport::smtp::Error| (Stage::Envelope, SmtpFailure::Smtp(e));
    let mut options = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii_address {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err((
                Stage::Envelope,
                SmtpFailure::Refused("non-ASCII address and the server lacks SMTPUTF8".into()),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err((
                Stage::Envelope,
                SmtpFailure::Refused("8-bit message and the server lacks 8BITMIME".into()),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(env)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(env)?;
    }
    conn.command(Data).await.map_err(env)?;
    conn.message(body)
        .await
        .map_err(|e| (Stage::Message, SmtpFailure::Smtp(e)))?;
    Ok(())
}

/// lettre's TLS stream (futures-io) as the tokio stream its connection
/// takes, for implicit TLS on a socket we opened.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsStream(lettre::transport::smtp::client::AsyncNetworkStream);

#[allow(deprecated)]
impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let slice = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, slice) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}
