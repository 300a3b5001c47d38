//! Operators' sessions (table `sessions`, migration 4): one row per login,
//! keyed by the SHA-256 of the random id the cookie carries, so that a copy
//! of the database does not hold usable cookies.
//!
//! A row also keeps a fingerprint of the credential the operator logged in
//! with; the web layer compares it with the configuration in force at each
//! request, and [`forget_stale`] deletes the rows that no longer match after
//! a reload. This module only stores and reads: it decides nothing.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{parse_ts, ts};

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub operator: String,
    /// Fingerprint of the operator's credential at login.
    pub credential: String,
    pub expires_at: DateTime<Utc>,
}

/// Records a new session. Expired rows are deleted on the way, so the table
/// holds only live sessions (and those of the last few hours).
pub fn insert(
    c: &Connection,
    id_sha256: &str,
    operator: &str,
    credential: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
        .execute([ts(now)])?;
    c.prepare_cached(
        "INSERT INTO sessions (id_sha256, operator, credential, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id_sha256,
        operator,
        credential,
        ts(now),
        ts(expires_at)
    ])
    .map(|_| ())
}

/// The session of this id, if it exists and has not expired at `now`.
pub fn get(
    c: &Connection,
    id_sha256: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<SessionRow>> {
    c.prepare_cached(
        "SELECT operator, credential, expires_at FROM sessions
         WHERE id_sha256 = ?1 AND expires_at > ?2",
    )?
    .query_row(params![id_sha256, ts(now)], |r| {
        Ok(SessionRow {
            operator: r.get(0)?,
            credential: r.get(1)?,
            expires_at: parse_ts(&r.get::<_, String>(2)?),
        })
    })
    .optional()
}

/// Ends one session (logout, or a session found stale). Returns whether it
/// existed.
pub fn delete(c: &Connection, id_sha256: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("DELETE FROM sessions WHERE id_sha256 = ?1")?
        .execute([id_sha256])
        .map(|n| n > 0)
}

/// Deletes every session whose (operator, credential) is not in `valid`:
/// the operators of the configuration in force with their current
/// credential. Returns how many were deleted.
pub fn forget_stale(c: &mut Connection, valid: &[(String, String)]) -> rusqlite::Result<usize> {
    let tx = c.transaction()?;
    let rows: Vec<(String, String, String)> = {
        let mut st = tx.prepare("SELECT id_sha256, operator, credential FROM sessions")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut deleted = 0;
    for (id, operator, credential) in rows {
        if !valid
            .iter()
            .any(|(o, cred)| *o == operator && *cred == credential)
        {
            deleted += tx.execute("DELETE FROM sessions WHERE id_sha256 = ?1", [id])?;
        }
    }
    tx.commit()?;
    Ok(deleted)
}

/// Live sessions (not expired at `now`), for tests and diagnostics.
pub fn count_live(c: &Connection, now: DateTime<Utc>) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
        [ts(now)],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_are_found_until_they_expire_or_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("vigie.db")).unwrap();
        let now = Utc::now();
        let later = now + chrono::Duration::hours(12);
        store
            .call(move |c| {
                insert(c, "a", "presidente", "cred1", now, later)?;
                insert(c, "b", "tresorier", "cred2", now, later)?;
                assert_eq!(get(c, "a", now)?.unwrap().operator, "presidente");
                assert_eq!(get(c, "a", later)?, None, "expired");
                assert_eq!(get(c, "zz", now)?, None);
                assert!(delete(c, "a")?);
                assert_eq!(get(c, "a", now)?, None);
                // A reload that changed the treasurer's password.
                let n = forget_stale(c, &[("tresorier".into(), "cred3".into())])?;
                assert_eq!(n, 1);
                assert_eq!(count_live(c, now)?, 0);
                Ok(())
            })
            .await
            .unwrap();
    }
}
