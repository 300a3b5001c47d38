//! The HTTP server under the router: accepts connections on the daemon's
//! listener and serves them over HTTP/1.1 so that slow or idle clients
//! cannot take the daemon off the air (issue 12).
//!
//! It owns the connection lifecycle, nothing about routes:
//!
//! - **Header timeout.** A connection must send a complete request head
//!   within `header_timeout` of opening and of its previous response
//!   (keep-alive); otherwise hyper closes it. An idle keep-alive connection
//!   and a slowloris (a request line trickled byte by byte) end the same way.
//! - **Body timeout.** A request body must arrive whole within
//!   [`BODY_TIMEOUT`] of the request head; the handler then sees a read
//!   error (400) and the connection closes. Without it, a client announcing
//!   64 KiB and sending one byte a minute would hold a connection busy.
//! - **Connection cap.** At most `max_connections` are open, bounded by the
//!   file-descriptor limit (minus [`RESERVED_FDS`] for SQLite, SMTP and
//!   webhooks). When full, a new connection evicts the connection that has
//!   been idle the longest (no request being answered: waiting for a
//!   request head, or stalled in one); when none is idle, the one whose
//!   request body has been arriving the longest (a client trickling bodies
//!   into every slot). Idle and slow clients therefore never keep
//!   `/healthz` or a response link out: only requests whose bodies have
//!   arrived hold their slot. If every slot is answering such a request,
//!   the accept loop waits for one to finish (the kernel's backlog holds
//!   the newcomers).
//! - **Shutdown.** When `shutdown` completes, no connection is accepted;
//!   idle connections close, those answering a request finish it, all within
//!   [`DRAIN`]; what is left then is dropped.
//! - **Descriptors.** [`raise_nofile_limit`] lifts the soft `RLIMIT_NOFILE`
//!   to the hard limit (systemd's `LimitNOFILE=` sets both; under the unit's
//!   system-call filter the call is refused and that is fine).
//!
//! Handlers still get `ConnectInfo<SocketAddr>` (login rate limit, the
//! loopback check of `/metrics`): it is put in each request's extensions.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::daemon::HttpConfig;

/// A request body must have arrived whole this long after its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stop waits for requests being answered.
pub const DRAIN: Duration = Duration::from_secs(5);

/// File descriptors kept for everything but HTTP connections (the database
/// and its WAL, SMTP sessions, webhook calls, configuration reads, logs).
pub const RESERVED_FDS: u64 = 256;

/// What the server allows its clients.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// See [`HttpConfig::header_timeout`].
    pub header_timeout: Duration,
    /// See [`BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// Open connections at most, already bounded by the descriptor limit.
    pub max_connections: usize,
    /// See [`DRAIN`].
    pub drain: Duration,
}

impl ServerLimits {
    /// The configured limits, the connection cap bounded by `nofile` (the
    /// soft `RLIMIT_NOFILE`, `None` if unknown) minus [`RESERVED_FDS`].
    pub fn new(http: &HttpConfig, nofile: Option<u64>) -> ServerLimits {
        let configured = http.max_connections as u64;
        let by_fds = nofile
            .map(|n| n.saturating_sub(RESERVED_FDS).max(16))
            .unwrap_or(configured);
        if by_fds < configured {
            tracing::warn!(
                max_connections = configured,
                nofile = nofile.unwrap_or_default(),
                cap = by_fds,
                "the file-descriptor limit lowers the HTTP connection cap (raise LimitNOFILE=)"
            );
        }
        ServerLimits {
            header_timeout: http.header_timeout,
            body_timeout: BODY_TIMEOUT,
            max_connections: configured.min(by_fds) as usize,
            drain: DRAIN,
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit
/// in force afterwards (`None` if it cannot be read).
pub fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            } else {
                tracing::debug!(
                    error = %std::io::Error::last_os_error(),
                    "cannot raise the soft RLIMIT_NOFILE"
                );
            }
        }
    }
    // rlim_t is u64 on Linux, not on every target.
    #[allow(clippy::unnecessary_cast)]
    Some(lim.rlim_cur as u64)
}

/// Serves `router` on `listener` until `shutdown` completes, then drains
/// (see the module docs). Returns once every connection is closed or the
/// drain bound has passed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let tracker = TaskTracker::new();
    let graceful = CancellationToken::new();
    let hard = CancellationToken::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE/ENFILE or a connection reset before accept:
                    // free an idle slot if there is one, pause, go on.
                    let evicted = registry.evict_idlest();
                    accept_errors.log(&e, evicted);
                    tokio::time::sleep(Duration::from_millis(if evicted { 5 } else { 100 })).await;
                    continue;
                }
            },
        };
        let conn = loop {
            if let Some(conn) = registry.admit() {
                break Some(conn);
            }
            // Every slot is answering a request: wait for one to finish.
            tokio::select! {
                biased;
                () = &mut shutdown => break None,
                () = registry.changed.notified() => {}
            }
        };
        let Some(conn) = conn else { break };
        let _ = stream.set_nodelay(true);
        tracker.spawn(serve_connection(
            stream,
            peer,
            conn,
            registry.clone(),
            router.clone(),
            http.clone(),
            limits.body_timeout,
            graceful.clone(),
            hard.clone(),
        ));
    }

    drop(listener);
    tracker.close();
    graceful.cancel();
    if tokio::time::timeout(limits.drain, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = registry.open(),
            "HTTP connections still open after the drain bound: closed"
        );
        hard.cancel();
        tracker.wait().await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    router: Router,
    http: hyper::server::conn::http1::Builder,
    body_timeout: Duration,
    graceful: CancellationToken,
    hard: CancellationToken,
) {
    let _slot = Slot {
        conn: conn.clone(),
        registry: registry.clone(),
    };
    let service = {
        let conn = conn.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let busy = Busy::start(conn.clone(), registry.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            let now_ms = registry.now_ms();
            let req = req.map(|b| Body::new(DeadlineBody::new(b, body_timeout, &conn, now_ms)));
            let answer = tower_service::Service::call(&mut router.clone(), req);
            async move {
                let res = match answer.await {
                    Ok(res) => res,
                    Err(never) => match never {},
                };
                // The slot stays busy until the body is written (dropped).
                Ok::<_, Infallible>(res.map(|b| {
                    Body::new(BusyBody {
                        inner: b,
                        _busy: busy,
                    })
                }))
            }
        })
    };
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        biased;
        // Evicted or past the drain bound: dropping the connection closes it.
        () = conn.evict.notified() => {}
        () = hard.cancelled() => {}
        _ = connection.as_mut() => {}
        () = graceful.cancelled() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection.as_mut() => {}
                () = hard.cancelled() => {}
                () = conn.evict.notified() => {}
            }
        }
    }
}

/// The open connections, for the cap and the choice of whom to evict.
struct Registry {
    cap: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Signalled when a slot frees or a connection becomes idle.
    changed: Notify,
}

/// One open connection as the registry sees it.
struct Conn {
    id: u64,
    /// Requests being answered (0 or 1 on HTTP/1.1).
    busy: AtomicUsize,
    /// When it last became idle, in milliseconds since the registry's epoch.
    idle_since: AtomicU64,
    /// While a request body is still arriving: when its head came, in
    /// milliseconds since the epoch, plus one; 0 otherwise.
    reading_since: AtomicU64,
    /// Notified to close the connection now.
    evict: Notify,
}

impl Registry {
    fn new(cap: usize) -> Registry {
        Registry {
            cap,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A slot for a new connection: a free one, or the one of the connection
    /// idle the longest, evicted. `None` when every slot is answering.
    fn admit(&self) -> Option<Arc<Conn>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.cap && !Self::evict_locked(&mut open) {
            return None;
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            reading_since: AtomicU64::new(0),
            evict: Notify::new(),
        });
        open.insert(conn.id, conn.clone());
        Some(conn)
    }

    /// Evicts the connection idle the longest, if any is idle.
    fn evict_idlest(&self) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        Self::evict_locked(&mut open)
    }

    /// Evicts the connection idle the longest; when none is idle, the one
    /// whose request body has been arriving the longest (a client that
    /// trickles bodies must not hold every slot until the body deadline:
    /// only requests whose bodies have arrived are never evicted).
    fn evict_locked(open: &mut HashMap<u64, Arc<Conn>>) -> bool {
        let idlest = open
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed))
            .map(|c| c.id);
        let slowest = || {
            open.values()
                .filter_map(|c| match c.reading_since.load(Ordering::Acquire) {
                    0 => None,
                    since => Some((since, c.id)),
                })
                .min()
                .map(|(_, id)| id)
        };
        let Some(conn) = idlest.or_else(slowest).and_then(|id| open.remove(&id)) else {
            return false;
        };
        // notify_one keeps a permit if the task is not waiting yet.
        conn.evict.notify_one();
        true
    }
}

/// Frees the connection's slot when its task ends.
struct Slot {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.conn.id);
        drop(open);
        self.registry.changed.notify_one();
    }
}

/// A request being answered on a connection: from its head to the end of
/// its response body.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn start(conn: Arc<Conn>, registry: Arc<Registry>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy { conn, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.registry.now_ms(), Ordering::Relaxed);
        if self.conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.registry.changed.notify_one();
        }
    }
}

/// A response body that keeps its connection busy until it is dropped
/// (written whole, or the connection closed).
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must arrive whole before a deadline set when the
/// head arrived; the timer is only armed if the body is read.
struct DeadlineBody {
    inner: Incoming,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Marks the connection as receiving a body until it has arrived (or
    /// is dropped): such a connection may be evicted when every slot is
    /// taken.
    reading: Option<Reading>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration, conn: &Arc<Conn>, now_ms: u64) -> DeadlineBody {
        let reading = (!http_body::Body::is_end_stream(&inner)).then(|| {
            conn.reading_since.store(now_ms + 1, Ordering::Release);
            Reading(conn.clone())
        });
        DeadlineBody {
            inner,
            deadline: tokio::time::Instant::now() + timeout,
            sleep: None,
            reading,
        }
    }
}

/// A request body still arriving on its connection (see [`Conn`]).
struct Reading(Arc<Conn>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.reading_since.store(0, Ordering::Release);
    }
}

/// The error a late request body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if !matches!(frame, Some(Ok(_))) || this.inner.is_end_stream() {
                // Arrived whole (or failed): no longer a slow sender.
                this.reading = None;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Accept errors are logged once per 10 s at most (under a descriptor
/// shortage they come by the thousand).
#[derive(Default)]
struct AcceptErrors {
    last: Option<Instant>,
    since: u64,
}

impl AcceptErrors {
    fn log(&mut self, e: &std::io::Error, evicted: bool) {
        self.since += 1;
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(error = %e, count = self.since, evicted_idle = evicted, "cannot accept HTTP connections");
        self.last = Some(Instant::now());
        self.since = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_registry_evicts_the_connection_idle_the_longest_and_never_a_busy_one() {
        let r = Registry::new(2);
        let a = r.admit().unwrap();
        let b = r.admit().unwrap();
        a.idle_since.store(5, Ordering::Relaxed);
        b.idle_since.store(1, Ordering::Relaxed);
        // b has been idle the longest, but it is answering a request.
        b.busy.store(1, Ordering::Relaxed);
        let c = r.admit().expect("a's slot");
        assert_eq!(r.open(), 2);
        assert!(!r.open.lock().unwrap().contains_key(&a.id));
        c.busy.store(1, Ordering::Relaxed);
        assert!(r.admit().is_none(), "every slot is answering");
    }

    #[test]
    fn the_cap_leaves_descriptors_for_the_rest_of_the_daemon() {
        let http = HttpConfig::default();
        assert_eq!(ServerLimits::new(&http, Some(1024)).max_connections, 768);
        assert_eq!(ServerLimits::new(&http, Some(65536)).max_connections, 4096);
        assert_eq!(ServerLimits::new(&http, None).max_connections, 4096);
    }
}
