//! The write-ahead log: its checkpointer, and the daemon's reserve.
//!
//! The daemon opens the database with a reserve for the write-ahead log
//! ([`super::Store::open_reserving`], [`WAL_RESERVE`]): the log is written with
//! zeros up to that size at start, so that the commits that follow write
//! into blocks the file system has already allocated instead of growing
//! the file. Growing it is what made a commit slow: on ext4, a declaration's
//! commit took 0.09–0.10 ms at the median and 0.2–0.4 ms at the 99th
//! percentile on a fresh log, 0.06 and 0.09 ms with the reserve
//! (`bench/RESULTS.md`). SQLite reads a log only up to its last valid
//! frame: the zeros after it are never taken for data (as the stale
//! frames SQLite itself leaves past the end of a log it restarted). The
//! same size is the log's `journal_size_limit`: after a burst (a large
//! fan-out) it is cut back to it instead of keeping its largest size.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The write-ahead log's reserve (see the module's documentation): about
/// 250 declarations and their sends before the log outgrows it.
pub const WAL_RESERVE: u64 = 32 << 20;

/// No reserve on a file system with less free space than this: a small
/// or nearly full disk keeps its space for the data.
pub const WAL_RESERVE_MIN_FREE: u64 = 1 << 30;

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes the write-ahead log ahead to `reserve` bytes of zeros, before
/// any other connection or thread uses the database: the log is emptied
/// first (a TRUNCATE checkpoint: everything in it goes to the database),
/// then filled; SQLite writes its next transaction from the start, with a
/// new header. Best effort: on a small disk, or if anything fails, the
/// log simply grows as it would have (logged).
pub(super) fn reserve_wal(conn: &Connection, path: &Path, reserve: u64) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let free = free_bytes(dir);
    if free.is_none_or(|f| f < WAL_RESERVE_MIN_FREE) {
        tracing::info!(
            free_mib = free.map(|f| f >> 20),
            "little free disk space: no reserve for the write-ahead log"
        );
        return;
    }
    let limit = i64::try_from(reserve).unwrap_or(i64::MAX);
    let emptied = conn
        .pragma_update(None, "journal_size_limit", limit)
        .and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
        });
    match emptied {
        // 0: done; 1: busy (cannot happen before anyone else opened it).
        Ok(0) => {}
        Ok(_) => {
            tracing::warn!("write-ahead log busy at start: no reserve");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot empty the write-ahead log: no reserve");
            return;
        }
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let filled = (|| {
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&wal)?;
        if file.metadata()?.len() != 0 {
            // Not the empty log the checkpoint left: leave it to SQLite.
            return Ok(());
        }
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let zeros = vec![0u8; 1 << 20];
        let mut left = reserve;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            out.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        out.flush()
    })();
    if let Err(e) = filled {
        tracing::warn!(error = %e, path = %PathBuf::from(&wal).display(), "cannot write the write-ahead log's reserve; it will grow as needed");
    }
}

/// Free bytes for an unprivileged user on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a NUL-terminated path; `s` is written by statvfs.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0;
    #[allow(clippy::unnecessary_cast)] // u32 or u64 depending on the target
    ok.then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// A thread with a connection of its own that checkpoints the write-ahead
/// log every [`CHECKPOINT_EVERY`] (PASSIVE: it never blocks the writer),
/// off the path of the calls. Stops when the returned sender is dropped.
pub(super) fn checkpointer(path: &Path) -> rusqlite::Result<std::sync::mpsc::Sender<()>> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("vigie-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                let done =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                if let Err(e) = done {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying in a second");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the checkpointer: the WAL will grow");
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::Utc;

    /// The daemon's reserve: the log is that size from the start, what is
    /// committed after it reads back (another connection, and a copy of
    /// the files as a crash leaves them, recovered from the log alone),
    /// and the database stays sound.
    #[tokio::test]
    async fn a_reserved_write_ahead_log_keeps_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        let wal = dir.path().join("vigie.db-wal");
        if free_bytes(dir.path()).is_none_or(|f| f < WAL_RESERVE_MIN_FREE) {
            // The rule under test: no reserve on a small disk.
            let _store = Store::open_reserving(&path, 1 << 20).unwrap();
            assert!(std::fs::metadata(&wal).map_or(0, |m| m.len()) < 1 << 20);
            return;
        }
        let store = Store::open_reserving(&path, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 1 << 20);
        for i in 0..50 {
            store
                .audit(Utc::now(), "test", "write", &format!("row {i}"))
                .await
                .unwrap();
        }
        // Committed, still in the log (no checkpoint in between): the
        // log's first megabyte was written over, not grown.
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 1 << 20);
        let other = Connection::open(&path).unwrap();
        let n: i64 = other
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
        drop(other);
        // The files as a kill -9 would leave them: the database and its
        // log (the index in -shm is rebuilt from the log).
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(&path, copy.path().join("vigie.db")).unwrap();
        std::fs::copy(&wal, copy.path().join("vigie.db-wal")).unwrap();
        let recovered = Connection::open(copy.path().join("vigie.db")).unwrap();
        let (n, check): (i64, String) = recovered
            .query_row(
                "SELECT (SELECT COUNT(*) FROM audit_log), \
                 (SELECT integrity_check FROM pragma_integrity_check)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, check.as_str()), (50, "ok"));
        drop(store);
        // Reopened (the log emptied and reserved again), nothing lost.
        let store = Store::open_reserving(&path, 1 << 20).unwrap();
        assert_eq!(store.recent_audit(100).await.unwrap().len(), 50);
    }
}
