//! Wiring: loads the configuration, opens the store, generates the secrets
//! of a first start, builds the application core ([`crate::app::App`]) and
//! the web's state around it, serves HTTP, runs the outbox and the timers,
//! reloads on SIGHUP and stops when the caller's shutdown future completes
//! ([`run`]; [`shutdown_signal`] is SIGTERM or SIGINT).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tokio::sync::Notify;

use crate::app::{App, AppParts};
use crate::config;
use crate::deliver::Outbox;
use crate::engine::links::LinkSigner;
use crate::metrics::Metrics;
use crate::schedule::clock::Clock;
use crate::store::{Store, StoreError};
use crate::web::WebState;

/// The operator name of the password generated at first start.
pub const GENERATED_OPERATOR: &str = "bureau";

/// How long in-flight work may take to finish after a shutdown request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("the configuration is invalid:\n{0}")]
    Config(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another vigie is using the data directory {0} (a daemon, or vigie restore): stop it first"
    )]
    Locked(PathBuf),
    #[error(
        "cannot take the lock {path} that keeps a second daemon or a restore off the database: {source}"
    )]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot set up a channel: {0}")]
    Channel(String),
    #[error("secret file {path}: {source}")]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The local token's file in `data_dir`, read by the `vigie` commands.
pub const LOCAL_TOKEN_FILE: &str = "local-token";

/// Reads a generated secret from `data_dir`, creating it (mode 0600) on
/// first use. Returns the value and whether it was just created.
pub fn generated_secret(
    path: &Path,
    make: impl FnOnce() -> String,
) -> Result<(String, bool), DaemonError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| DaemonError::Secret {
        path: path.to_path_buf(),
        source,
    };
    match config::source::read_text(path) {
        Ok(v) => return Ok((v.trim().to_string(), false)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        Err(_) => {}
    }
    let value = make();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(format!("{value}\n").as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok((value, true))
}

/// Creates `data_dir` (mode 0700) and an empty database file (mode 0600)
/// when they do not exist, whatever the umask: SQLite gives its `-wal` and
/// `-shm` files the mode of the database. Warns when `data_dir` is open to
/// other users (made by hand or by an older version): it holds the
/// database and the generated secrets.
fn prepare_data_dir(data_dir: &Path, db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let mode = std::fs::metadata(data_dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %data_dir.display(),
            mode = format!("{mode:o}"),
            "the data directory is readable by other users; it holds the database and the generated secrets: chmod 700 it"
        );
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A started daemon: its shared state, the address it serves, and the
/// handles to stop it.
pub struct Daemon {
    /// The web's state, and through it the application core.
    pub state: Arc<WebState>,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The data directory's lock (`store::backup::lock_data_dir`),
    /// released when the daemon is dropped or the process exits.
    _data_lock: std::fs::File,
}

impl Daemon {
    /// Loads the configuration (refusing an invalid one), opens the store
    /// and starts serving. `listener` overrides `http.listen` (tests bind
    /// port 0).
    pub async fn start(
        config_path: &Path,
        clock: Arc<dyn Clock>,
        listener: Option<TcpListener>,
    ) -> Result<Daemon, DaemonError> {
        Daemon::start_with(config_path, clock, listener, true).await
    }

    /// [`Daemon::start`], with the timer loop (escalation and reminders)
    /// only when `timers` is true: tests of the scheduler call its ticks
    /// themselves, so that nothing moves behind their back.
    pub async fn start_with(
        config_path: &Path,
        clock: Arc<dyn Clock>,
        listener: Option<TcpListener>,
        timers: bool,
    ) -> Result<Daemon, DaemonError> {
        let now = clock.now();
        let path = config_path.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = config::load(&path, |tz| now.with_timezone(&tz).date_naive());
            crate::app::release_free_memory();
            loaded
        })
        .await
        .map_err(|e| DaemonError::Config(e.to_string()))?;
        let Some(set) = loaded.set else {
            let lines: Vec<String> = loaded.diagnostics.errors().map(|d| d.to_string()).collect();
            return Err(DaemonError::Config(lines.join("\n")));
        };
        let warnings: Vec<String> = loaded
            .diagnostics
            .warnings()
            .map(|d| d.to_string())
            .collect();
        for w in &warnings {
            tracing::warn!("{w}");
        }

        let data_dir = set.daemon.data_dir.clone();
        let db_path = data_dir.join("vigie.db");
        prepare_data_dir(&data_dir, &db_path).map_err(|source| DaemonError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        // Held for the daemon's life: `vigie restore` refuses while it is.
        let data_lock = match crate::store::backup::lock_data_dir(&data_dir) {
            Ok(Some(f)) => f,
            // Two daemons on one database would each send every alert.
            Ok(None) => return Err(DaemonError::Locked(data_dir.clone())),
            // Without the lock nothing keeps a second daemon (or a
            // restore) off this database: refuse rather than run unguarded.
            Err(source) => {
                return Err(DaemonError::Lock {
                    path: data_dir.join(crate::store::backup::LOCK_FILE),
                    source,
                });
            }
        };
        let store = Store::open_reserving(&db_path, crate::store::WAL_RESERVE)?;

        // Secrets generated at first start, never logged.
        let (link_key, _) = generated_secret(&data_dir.join("link.key"), || random_hex(32))?;
        let install_id = store.meta_or_init("install_id", || random_hex(6)).await?;
        let auth = &set.daemon.auth;
        // The generated token (`api-token`): the API token while the
        // configuration names none, as it always was; once tokens are
        // named it stops working (it may sit in calendar URLs, in logs).
        let generated_token = if auth.tokens.is_empty() {
            let path = data_dir.join("api-token");
            let (token, created) = generated_secret(&path, || format!("vigie_{}", random_hex(24)))?;
            if created {
                tracing::warn!(path = %path.display(), "no API token configured: generated one (mode 0600); `vigie` commands on this machine use it");
            }
            Some(crate::web::auth::token_sha256(&token))
        } else {
            None
        };
        // The local token (`local-token`, its own secret): for the `vigie`
        // commands run on this machine (mode 0600: the daemon's user and
        // root), accepted beside named tokens unless `[auth] local_token =
        // false`, never in a calendar URL. Made even when off, since a
        // reload may turn it on.
        let local_token = {
            let path = data_dir.join(LOCAL_TOKEN_FILE);
            let (token, _) = generated_secret(&path, || format!("vigie_local_{}", random_hex(24)))?;
            crate::web::auth::token_sha256(&token)
        };

        let generated_operator = if auth.operators.is_empty() {
            let path = data_dir.join("operator-password");
            let (password, created) = generated_secret(&path, || random_hex(12))?;
            if created {
                tracing::warn!(path = %path.display(), operator = GENERATED_OPERATOR, "no operator configured: generated a password for the bureau pages (mode 0600)");
            }
            Some((GENERATED_OPERATOR.to_string(), password))
        } else {
            None
        };
        let (session_key, _) = generated_secret(&data_dir.join("session.key"), || random_hex(32))?;
        let secure_cookies = set.daemon.public_url.starts_with("https://");

        // Channels: each e-mail channel and webhook, built as `vigie
        // test-send` builds them (deliver::channels).
        let metrics = Arc::new(Metrics::default());
        let channels = crate::deliver::channels::build_all(&set.daemon, &install_id)
            .map_err(DaemonError::Channel)?;
        let clock_for_outbox = clock.clone();
        let outbox = Outbox::new(store.clone(), channels, clock_for_outbox, metrics.clone());
        // What a crash left mid-send goes back to the queue before anything
        // can be declared (see Outbox::run).
        if let Err(e) = outbox.recover().await {
            tracing::error!(error = %e, "cannot requeue interrupted deliveries");
        }

        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(set.daemon.listen)
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: set.daemon.listen,
                    source,
                })?,
        };
        let addr = listener.local_addr().map_err(DaemonError::Serve)?;

        let app = Arc::new(App::new(AppParts {
            config_path: config_path.to_path_buf(),
            set,
            warnings,
            store: store.clone(),
            clock,
            links: LinkSigner::new(link_key.into_bytes()),
            outbox: Arc::new(outbox.handoff()),
            metrics,
        }));
        let state = Arc::new(WebState {
            app: app.clone(),
            pages: crate::web::pages::Pages::default(),
            sessions: crate::web::auth::Sessions::new(
                session_key.into_bytes(),
                secure_cookies,
                store.clone(),
            ),
            login_limiter: crate::web::auth::LoginLimiter::new(),
            generated_token,
            local_token,
            generated_operator,
            situation: Default::default(),
            flashes: Default::default(),
        });
        store.record_config_load(now, true, "start").await?;
        store
            .audit(now, "vigie", "start", env!("CARGO_PKG_VERSION"))
            .await?;

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let router = crate::web::router(state.clone());
        let stop = shutdown.clone();
        // Header and body timeouts, a connection cap that evicts idle
        // clients, a bounded drain: web::server says why.
        let nofile = crate::web::server::raise_nofile_limit();
        let limits = crate::web::server::ServerLimits::new(&state.config().daemon.http, nofile);
        tracing::debug!(?limits, ?nofile, "HTTP limits");
        tracker.spawn(crate::web::server::serve(
            listener,
            router,
            limits,
            async move { stop.cancelled().await },
        ));
        tracker.spawn(run_outbox(outbox, shutdown.clone()));
        // The scheduler's history begins at the first start: reminders of
        // the past are neither fired nor recorded missed.
        store
            .call(move |c| {
                if crate::store::reminders::checked_until(c)?.is_none() {
                    crate::store::reminders::set_checked_until(c, now)?;
                }
                Ok(())
            })
            .await?;
        if timers {
            if let Some(h) = state.config().daemon.heartbeat.clone() {
                tracker.spawn(heartbeat_loop(app.clone(), h, shutdown.clone()));
            }
            if let Some(v) = state.config().daemon.vigilance.clone() {
                tracker.spawn(vigilance_loop(
                    app.clone(),
                    v.every.as_std(),
                    shutdown.clone(),
                ));
            }
            tracker.spawn(timer_loop(app, shutdown.clone()));
        }
        tracker.close();
        tracing::info!(%addr, name = %state.config().daemon.name, "vigie is serving");
        Ok(Daemon {
            state,
            addr,
            shutdown,
            tracker,
            _data_lock: data_lock,
        })
    }

    /// Asks every task to stop and waits for them, at most [`SHUTDOWN_GRACE`].
    pub async fn stop(self) {
        self.shutdown.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop in time");
        }
        let now = self.state.clock.now();
        if let Err(e) = self.state.store.audit(now, "vigie", "stop", "").await {
            tracing::warn!(error = %e, "cannot record the stop");
        }
        tracing::info!("vigie stopped");
    }
}

/// Advances escalation timers and fires routine reminders: at each due
/// time (checked every second, or at once when woken), until shutdown.
/// Timers and firings live in the database, so a restart finds them; an
/// overdue escalation fires at once.
async fn timer_loop(app: Arc<App>, stop: CancellationToken) {
    loop {
        app.timers_turn().await;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = app.timers_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Polls the vigilance feed every `every` (SPEC §13), the first time at
/// once, until shutdown; a failed poll is kept in the status and retried
/// at the next turn. The interval is read at start (a reload that changes
/// `every` takes effect at the next start).
async fn vigilance_loop(app: Arc<App>, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = app.vigilance_step() => {}
        }
    }
}

/// Calls the `[heartbeat]` URL every `every` while [`App::health`] says
/// the daemon is healthy (SPEC §16), until shutdown. An unhealthy turn
/// calls nothing, and a missed turn is not caught up: the monitor sees the
/// silence. Failures are logged with the URL redacted, and the HTTP
/// client's errors without their URL.
async fn heartbeat_loop(
    app: Arc<App>,
    cfg: config::daemon::HeartbeatConfig,
    stop: CancellationToken,
) {
    // The path too: a monitor's key is often the path itself.
    let shown = config::daemon::redact_url_and_path(&cfg.url);
    let every = cfg.every.as_std();
    let client = match reqwest::Client::builder()
        .timeout(every.min(Duration::from_secs(10)))
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "cannot build the heartbeat's HTTP client: no heartbeat");
            return;
        }
    };
    tracing::info!(url = %shown, every = %cfg.every, "heartbeat on");
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        if let Err(why) = app.health().await {
            tracing::warn!(url = %shown, "unhealthy, heartbeat not sent: {why}");
            continue;
        }
        let sent = tokio::select! {
            _ = stop.cancelled() => break,
            r = client.get(&cfg.url).send() => r,
        };
        match sent.and_then(|r| r.error_for_status()) {
            Ok(_) => tracing::debug!(url = %shown, "heartbeat sent"),
            Err(e) => tracing::warn!(url = %shown, error = %e.without_url(), "heartbeat failed"),
        }
    }
}

/// SIGTERM or SIGINT, as a future to give [`run`]. The handlers are
/// installed when this is called (before the daemon starts: a signal that
/// arrives during start-up then stops it, instead of killing it).
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
    })
}

/// Runs the daemon until `shutdown` completes; SIGHUP reloads. `listener`
/// overrides `http.listen` (tests bind port 0).
///
/// Under systemd (`Type=notify`) it says `READY=1` once it serves, pings
/// the watchdog at half its interval while the timer loop is alive (a stuck
/// loop stops the pings and systemd restarts the service), and says
/// `STOPPING=1` on the way out.
pub async fn run(
    config_path: &Path,
    clock: Arc<dyn Clock>,
    listener: Option<TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    // The handler first: a SIGHUP that arrives during start-up is then
    // handled, not fatal.
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Serve)?;
    let daemon = Daemon::start(config_path, clock, listener).await?;
    let mut shutdown = std::pin::pin!(shutdown);
    notify_systemd("READY=1");
    let watchdog = crate::sdnotify::watchdog_interval();
    let mut ping =
        tokio::time::interval(watchdog.map(|w| w / 2).unwrap_or(Duration::from_secs(3600)));
    // Reloads run in a task of their own, one at a time: a slow one (a
    // large directory, a slow disk) must not hold SIGTERM. A SIGHUP during
    // a reload asks for one more after it (the files may have changed
    // since it read them); more SIGHUPs meanwhile fold into that one.
    let reload_wanted = Arc::new(Notify::new());
    let reloader = tokio::spawn({
        let (state, wanted) = (daemon.state.clone(), reload_wanted.clone());
        async move {
            loop {
                wanted.notified().await;
                notify_systemd("RELOADING=1");
                state.reload().await;
                notify_systemd("READY=1");
            }
        }
    });
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                reload_wanted.notify_one();
            }
            _ = &mut shutdown => break,
            _ = ping.tick(), if watchdog.is_some() => {
                let limit = watchdog.unwrap_or_default();
                if daemon.state.heartbeat_age() < limit {
                    notify_systemd("WATCHDOG=1");
                } else {
                    tracing::error!("the timer loop is stuck: not pinging the watchdog");
                }
            }
        }
    }
    notify_systemd("STOPPING=1");
    // A reload in progress is dropped: the files it reads stay as they are
    // (its blocking part may go on until the process exits).
    reloader.abort();
    daemon.stop().await;
    Ok(())
}

fn notify_systemd(state: &str) {
    if let Err(e) = crate::sdnotify::notify(state) {
        tracing::warn!(error = %e, state, "cannot notify systemd");
    }
}

/// Runs the outbox on a thread of its own with a single-threaded runtime:
/// every send task of a fan-out, its sockets and its timers on one thread,
/// instead of tasks handed between the HTTP server's threads (measured on
/// 2 cores, 50 000 messages to smtp-sink: 2.6 s instead of 3.1 to 3.4 s).
/// Returns when the outbox has stopped; without that thread, on the
/// caller's runtime.
async fn run_outbox(outbox: Outbox, stop: CancellationToken) {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the sending thread's runtime; sending from the main one");
            outbox.run(stop, SHUTDOWN_GRACE).await;
            return;
        }
    };
    let (fallback, stop2) = (outbox.clone(), stop.clone());
    let spawned = std::thread::Builder::new()
        .name("vigie-send".into())
        .spawn(move || {
            runtime.block_on(outbox.run(stop, SHUTDOWN_GRACE));
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = finished.await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the sending thread; sending from the main runtime");
            fallback.run(stop2, SHUTDOWN_GRACE).await;
        }
    }
}
