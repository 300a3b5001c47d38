//! The SQLite store: the only place with SQL. `backup` copies, checks and
//! restores the database; `health` is the heartbeat's write probe.
//!
//! One connection in WAL mode, owned by a thread of its own that runs the
//! calls ([`Store::call`]) one after the other, in the order they came, so
//! the async threads never wait on disk. (Calls used to go each to tokio's
//! blocking pool and wait there on the connection's mutex: under 50
//! concurrent page requests that herd of threads served the slowest 1 %
//! twice as late, and every call paid a thread hand-off.)
//! The schema is versioned with `PRAGMA user_version` and migrated at open
//! from the migrations embedded below, in order, each in a transaction.
//!
//! The write-ahead log's checkpointer and reserve live in [`wal`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

pub mod actions;
pub mod backup;
pub mod cap;
pub mod counts;
pub mod events;
pub mod health;
pub mod journal;
pub mod outbox;
pub mod remind;
pub mod reminders;
pub mod sessions;
pub mod swaps;
pub mod vigilance;
mod wal;

pub use wal::{WAL_RESERVE, WAL_RESERVE_MIN_FREE};
use wal::{checkpointer, reserve_wal};

/// `head` followed by `rows` groups of `columns` placeholders, then `tail`:
/// one statement for many rows (`INSERT … VALUES`, `UPDATE … FROM
/// (VALUES …)`), far less work per row than one statement each.
pub(crate) fn many_rows(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    format!("{head}{}{tail}", vec![group; rows].join(", "))
}

/// Timestamps are stored as RFC 3339 UTC text with milliseconds and a `Z`,
/// so that text order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One row of the audit log, in the caller's transaction.
pub fn audit_row(
    c: &Connection,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO audit_log (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![at.to_rfc3339(), actor, action, detail])
        .map(|_| ())
}

/// Reads a timestamp written by [`ts`].
pub fn parse_ts(s: &str) -> DateTime<Utc> {
    ts_fast(s).unwrap_or_else(|| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    })
}

/// The exact form [`ts`] writes (`2026-06-15T08:00:00.000Z`), read without
/// the general RFC 3339 parser: pages and the API read several per row.
fn ts_fast(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 24
        || (b[4], b[7], b[10], b[13], b[16], b[19], b[23])
            != (b'-', b'-', b'T', b':', b':', b'.', b'Z')
    {
        return None;
    }
    let n = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(n(0, 4)? as i32, n(5, 7)?, n(8, 10)?)?;
    let time =
        chrono::NaiveTime::from_hms_milli_opt(n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?)?;
    Some(date.and_time(time).and_utc())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this Vigie knows ({known}): upgrade Vigie"
    )]
    TooNew { found: i64, known: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Join(String),
}

impl StoreError {
    /// The disk holding the database is full (SQLITE_FULL): nothing of the
    /// failed transaction was written, and writing works again once space
    /// returns.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                | StoreError::Open { source: rusqlite::Error::SqliteFailure(e, _), .. }
                if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// Embedded migrations: index + 1 is the schema version they bring.
const MIGRATIONS: &[&str] = &[
    // 1: audit log of what the daemon and its operators did.
    "CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_log_at ON audit_log(at);
    CREATE TABLE config_loads (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        ok INTEGER NOT NULL,
        summary TEXT NOT NULL
    );",
    // 2: events, their steps, recipients, the outbox of deliveries with
    // every attempt, and responses.
    include_str!("migrations/0002_events.sql"),
    // 3: reminder firings, so each scheduled instant fires once across restarts.
    include_str!("migrations/0003_reminders.sql"),
    // 4: exercise and real events kept apart, per-event link secrets,
    // server-side operator sessions.
    include_str!("migrations/0004_safety.sql"),
    // 5: each delivery's message in a table of its own, written once and
    // read once, so that state changes rewrite small rows.
    include_str!("migrations/0005_delivery_messages.sql"),
    // 6: swap requests of the rosters the professionals keep themselves.
    include_str!("migrations/0006_swaps.sql"),
    // 7: proposals made from the vigilance bulletins.
    include_str!("migrations/0007_vigilance.sql"),
    // 8: the last good vigilance map, kept across restarts.
    include_str!("migrations/0008_vigilance_state.sql"),
    // 9: every level an event went through (the CAP export).
    include_str!("migrations/0009_event_levels.sql"),
    // 10: the main courante (append-only), bulletins, lessons learned.
    include_str!("migrations/0010_journal.sql"),
    // 11: the actions checklist of each event.
    include_str!("migrations/0011_actions.sql"),
    // 12: responses with an arrival delay and a comment; the relances of
    // those who did not answer.
    include_str!("migrations/0012_eta.sql"),
    // 13: the provider's message id of an SMS.
    include_str!("migrations/0013_sms.sql"),
];

/// The current schema version.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A call waiting for the database thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// To the database thread; it stops when the last `Store` is dropped.
    jobs: std::sync::mpsc::Sender<Job>,
    /// The checkpointer stops when the last `Store` is dropped.
    _checkpoints: Arc<std::sync::mpsc::Sender<()>>,
    /// Rows changed since the connection opened (SQLite's total_changes),
    /// updated by every call before it answers: while it stays the same,
    /// nothing in the database changed (every write goes through here).
    changes: Arc<std::sync::atomic::AtomicU64>,
    path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

impl Store {
    /// Opens (creating if needed) the database and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_reserving(path, 0)
    }

    /// As [`Store::open`], with a write-ahead log of `reserve` bytes
    /// written ahead (see the module's documentation) when the file system
    /// has [`WAL_RESERVE_MIN_FREE`] free; the daemon's way of opening.
    pub fn open_reserving(path: &Path, reserve: u64) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // NORMAL is durable across process crashes in WAL mode; a power cut
        // may lose the last transactions but never corrupts the database.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        // Plans that do not depend on bound values: otherwise a query whose
        // terms are compared with a partial index (the outbox's due index)
        // is prepared again each time its parameters change.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(open_err)?;
        // Room for every statement the daemon prepares (about 90 call
        // sites, the batched inserts in six sizes): one evicted is
        // prepared again at its next use.
        conn.set_prepared_statement_cache_capacity(160);
        // Statement journals (a statement writing many rows keeps one to
        // undo itself) in memory, not in a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_err)?;
        migrate(&mut conn)?;
        if reserve > 0 {
            reserve_wal(&conn, path, reserve);
        }
        // Checkpoints are the checkpointer's job (below): done by the
        // connection that commits, one commit in ~35 of a declaration waited
        // for a checkpoint and its fsync (4 ms instead of 0.5).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(open_err)?;
        let checkpoints = checkpointer(path).map_err(open_err)?;
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let db = conn.clone();
        std::thread::Builder::new()
            .name("vigie-db".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let mut guard = db.lock().unwrap_or_else(|e| e.into_inner());
                    // A panicking call fails alone (its caller gets an
                    // error); the thread goes on with the next.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut guard)));
                }
            })
            .map_err(|e| StoreError::Join(format!("cannot start the database thread: {e}")))?;
        Ok(Store {
            conn,
            jobs,
            _checkpoints: Arc::new(checkpoints),
            changes: Arc::default(),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the database thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let changes = self.changes.clone();
        let job: Job = Box::new(move |c| {
            let out = f(c).map_err(StoreError::from);
            changes.store(c.total_changes(), std::sync::atomic::Ordering::Release);
            let _ = tx.send(out);
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Join("the database thread stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Join("a database call failed (panic)".into()))?
    }

    /// A value of the `meta` table, created by `init` on first use (the
    /// installation id, generated keys…).
    pub async fn meta_or_init(
        &self,
        key: &str,
        init: impl FnOnce() -> String + Send + 'static,
    ) -> Result<String, StoreError> {
        let key = key.to_string();
        self.call(move |c| {
            let tx = c.transaction()?;
            let found: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()?;
            let value = match found {
                Some(v) => v,
                None => {
                    let v = init();
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        params![key, v],
                    )?;
                    v
                }
            };
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Runs `f` with the connection on the current thread (start-up, CLI).
    pub fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut guard).map_err(StoreError::from);
        self.changes
            .store(guard.total_changes(), std::sync::atomic::Ordering::Release);
        out
    }

    /// [`Store::call`] for a read whose answer is kept in `cache` and given
    /// again, without a call, as long as nothing changed in the database.
    pub async fn read_cached<T, F>(
        &self,
        cache: &std::sync::Mutex<Option<(u64, Arc<T>)>>,
        f: F,
    ) -> Result<Arc<T>, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + Sync + 'static,
    {
        let now = self.changes.load(std::sync::atomic::Ordering::Acquire);
        if let Some((at, v)) = &*cache.lock().unwrap_or_else(|e| e.into_inner())
            && *at == now
        {
            return Ok(v.clone());
        }
        let (v, at) = self
            .call(move |c| {
                let v = f(c)?;
                Ok((Arc::new(v), c.total_changes()))
            })
            .await?;
        *cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, v.clone()));
        Ok(v)
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.call(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            .await
    }

    pub async fn audit(
        &self,
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let (actor, action, detail) = (actor.to_string(), action.to_string(), detail.to_string());
        self.call(move |c| audit_row(c, at, &actor, &action, &detail))
            .await
    }

    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit], |r| {
                Ok(AuditEntry {
                    at: r.get(0)?,
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    detail: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Records the outcome of a configuration load (start or reload).
    pub async fn record_config_load(
        &self,
        at: DateTime<Utc>,
        ok: bool,
        summary: &str,
    ) -> Result<(), StoreError> {
        let summary = summary.to_string();
        self.call(move |c| {
            c.execute(
                "INSERT INTO config_loads (at, ok, summary) VALUES (?1, ?2, ?3)",
                params![at.to_rfc3339(), ok, summary],
            )
            .map(|_| ())
        })
        .await
    }

    /// The last configuration load: (at, ok, summary).
    pub async fn last_config_load(&self) -> Result<Option<(String, bool, String)>, StoreError> {
        self.call(|c| {
            c.query_row(
                "SELECT at, ok, summary FROM config_loads ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_in_wal_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .call(|c| c.pragma_query_value(None, "journal_mode", |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        store.audit(Utc::now(), "test", "start", "").await.unwrap();
        drop(store);
        // Reopening keeps the data and does not migrate again.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.recent_audit(10).await.unwrap().len(), 1);
    }

    #[test]
    fn timestamps_read_back_as_written() {
        let t = DateTime::parse_from_rfc3339("2026-06-15T08:07:06.543Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts_fast(&ts(t)), Some(t));
        assert_eq!(parse_ts(&ts(t)), t);
        // Other RFC 3339 forms still read, through the general parser.
        assert_eq!(ts_fast("2026-06-15T10:07:06.543+02:00"), None);
        assert_eq!(parse_ts("2026-06-15T10:07:06.543+02:00"), t);
        assert_eq!(ts_fast("2026-02-30T08:07:06.543Z"), None);
        assert_eq!(parse_ts("garbage"), DateTime::<Utc>::MIN_UTC);
    }

    /// A database of schema 4 with deliveries still to send: after the
    /// upgrade each keeps its message, read with it when claimed, and new
    /// deliveries are numbered after the old ones.
    #[test]
    fn an_upgrade_keeps_the_messages_of_deliveries_not_yet_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        let c = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..4] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.execute_batch(
            "INSERT INTO deliveries (id, recipient_name, channel, address, priority, state, \
               subject, body_text, body_html, payload, created_at, next_attempt_at) VALUES \
             (7, 'Claire Martin', 'email', 'claire@example.org', 0, 'pending', 'Canicule', \
              'Buvez de l''eau.', '<p>Buvez</p>', NULL, '2026-06-15T08:00:00.000Z', \
              '2026-06-15T08:00:00.000Z'), \
             (8, 'Claire Martin', 'sms', '+33600000000', 0, 'sent', 'Canicule', 'Buvez.', \
              NULL, '{\"text\":\"Buvez.\"}', '2026-06-15T08:00:00.000Z', \
              '2026-06-15T08:00:00.000Z');",
        )
        .unwrap();
        drop(c);
        let mut c = Connection::open(&path).unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut c).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-06-15T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let claimed = outbox::claim_due(&c, "email", now, 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, 7);
        let m = claimed[0].message.as_ref().expect("read with the claim");
        assert_eq!(m.subject, "Canicule");
        assert_eq!(m.body_text, "Buvez de l'eau.");
        assert_eq!(m.body_html.as_deref(), Some("<p>Buvez</p>"));
        let sent = outbox::get(&c, 8).unwrap().unwrap();
        assert_eq!(
            sent.message.unwrap().payload.as_deref(),
            Some("{\"text\":\"Buvez.\"}")
        );
        outbox::insert(
            &c,
            &[outbox::NewDelivery {
                event_id: None,
                step_id: None,
                recipient_id: None,
                recipient_name: "Bureau".into(),
                channel: "email".into(),
                address: Some("bureau@example.org".into()),
                priority: outbox::Priority::Broadcast,
                skipped: None,
                subject: "Nouveau".into(),
                body_text: "Texte".into(),
                body_html: None,
                payload: None,
            }],
            now,
        )
        .unwrap();
        let new = outbox::get(&c, 9)
            .unwrap()
            .expect("numbered after the old ones");
        assert_eq!(new.message.unwrap().subject, "Nouveau");
        let orphans: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM deliveries d LEFT JOIN delivery_messages m \
                 ON m.delivery_id = d.id WHERE m.delivery_id IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
    }

    #[test]
    fn refuses_a_database_from_a_newer_vigie() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
    }
}
