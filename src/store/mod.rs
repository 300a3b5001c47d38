//! The SQLite store: the only place with SQL.
//!
//! One connection in WAL mode behind a mutex; every call runs on tokio's
//! blocking pool ([`Store::call`]) so the async threads never wait on disk.
//! The schema is versioned with `PRAGMA user_version` and migrated at open
//! from the migrations embedded below, in order, each in a transaction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

pub mod events;
pub mod outbox;
pub mod reminders;

/// Timestamps are stored as RFC 3339 UTC text with milliseconds and a `Z`,
/// so that text order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads a timestamp written by [`ts`].
pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
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
];

/// The current schema version.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
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
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
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
        f(&mut guard).map_err(StoreError::from)
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
        self.call(move |c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
                params![at.to_rfc3339(), actor, action, detail],
            )
            .map(|_| ())
        })
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
