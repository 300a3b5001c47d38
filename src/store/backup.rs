//! Copies of the database (SPEC §16): a consistent copy taken while the
//! daemon writes, the check of a copy, and what a copy holds.
//!
//! The copy is `VACUUM INTO` on a read-only connection of its own, not the
//! online backup API: it runs in one read transaction, so the copy is the
//! database as of one commit even while the daemon keeps writing (in WAL
//! mode a reader never blocks the writer, and the writer never makes a
//! reader start over, which the backup API's page-by-page steps do each
//! time the source changes); it needs no other rusqlite feature; the copy
//! is compacted; and SQLite itself refuses to write into a file that is
//! not empty. The copy is written under a temporary name, checked, synced,
//! then linked to its final name (`link(2)` fails when the name exists:
//! an existing file is never overwritten) — a copy cut short leaves no
//! file that looks like a backup. Next to it, `FILE.sha256` (the format of
//! `sha256sum`) records its fingerprint: `integrity_check` sees a broken
//! page, not a flipped byte inside a stored name or date; the fingerprint
//! does, after the copy has travelled to another disk and back.
//!
//! Never opens the daemon's database for writing; holds no state.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// What a copy holds, as `vigie backup` and `vigie restore` print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `PRAGMA user_version`: the migrations applied.
    pub schema_version: i64,
    /// `(state, count)` of events, by state.
    pub events: Vec<(String, i64)>,
    /// `(state, count)` of deliveries, by state.
    pub deliveries: Vec<(String, i64)>,
    /// Size of the file, in bytes.
    pub size: u64,
    /// Whether the file was compared with its `FILE.sha256` (false: none
    /// next to it, only the structure was checked).
    pub digest_checked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} existe déjà : choisissez un autre nom ou supprimez-le")]
    Exists { path: PathBuf },
    #[error("{path} : {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} : {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path} est endommagé (PRAGMA integrity_check) : {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path} a le schéma {found}, plus récent que celui que connaît ce Vigie ({known}) : mettez Vigie à jour"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "{path} a le schéma {found}, pas celui de ce Vigie ({known}) : ce n'est pas une copie faite par ce Vigie"
    )]
    OtherSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// Which schema versions [`check`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Exactly the migrations this binary knows (a copy just taken).
    Current,
    /// Any version up to this binary's (an older copy is migrated when the
    /// daemon opens it).
    UpToCurrent,
}

/// Copies the database at `db` to `dest` (which must not exist), checks
/// the copy and says what it holds. The copy is mode 0600: it holds the
/// directory's personal data.
pub fn backup(db: &Path, dest: &Path) -> Result<Summary, BackupError> {
    let digest = digest_path(dest);
    for p in [dest, &digest] {
        if p.symlink_metadata().is_ok() {
            return Err(BackupError::Exists {
                path: p.to_path_buf(),
            });
        }
    }
    let partial = partial_name(dest);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    // An empty file of mode 0600 that SQLite then fills (VACUUM INTO
    // accepts an empty file, and keeps its mode).
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io(&partial))?;
    }
    let result = copy_and_check(db, &partial).and_then(|summary| {
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(io(&partial))?;
        std::fs::hard_link(&partial, dest).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::Exists {
                    path: dest.to_path_buf(),
                }
            } else {
                BackupError::Io {
                    path: dest.to_path_buf(),
                    source: e,
                }
            }
        })?;
        write_digest(dest, &digest)?;
        sync_dir(dest);
        Ok(summary)
    });
    let _ = std::fs::remove_file(&partial);
    result
}

impl BackupError {
    /// The same error, about `to` where it names `from`.
    pub fn named(self, from: &Path, to: &Path) -> BackupError {
        let rename = |p: PathBuf| if p == from { to.to_path_buf() } else { p };
        match self {
            BackupError::Exists { path } => BackupError::Exists { path: rename(path) },
            BackupError::Io { path, source } => BackupError::Io {
                path: rename(path),
                source,
            },
            BackupError::Sqlite { path, source } => BackupError::Sqlite {
                path: rename(path),
                source,
            },
            BackupError::Corrupt { path, detail } => BackupError::Corrupt {
                path: rename(path),
                detail,
            },
            BackupError::TooNew { path, found, known } => BackupError::TooNew {
                path: rename(path),
                found,
                known,
            },
            BackupError::OtherSchema { path, found, known } => BackupError::OtherSchema {
                path: rename(path),
                found,
                known,
            },
        }
    }
}

/// The fingerprint file of a copy: `FILE.sha256`.
pub fn digest_path(copy: &Path) -> PathBuf {
    let mut name = copy.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

/// SHA-256 of a file, lower-case hex, read as a stream.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Writes `digest` (mode 0600, never over an existing file) as `sha256sum`
/// does: `<hex>  <file name>`, so that `sha256sum -c` checks it too.
fn write_digest(copy: &Path, digest: &Path) -> Result<(), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| BackupError::Io {
        path: digest.to_path_buf(),
        source,
    };
    let hex = sha256_file(copy).map_err(|source| BackupError::Io {
        path: copy.to_path_buf(),
        source,
    })?;
    let name = copy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(digest)
        .map_err(io)?;
    f.write_all(format!("{hex}  {name}\n").as_bytes())
        .map_err(io)?;
    f.sync_all().map_err(io)
}

/// Compares the bytes of `path` with the fingerprint file `digest`, when
/// there is one: `Ok(false)` when there is none.
fn verify_digest(path: &Path, digest: &Path) -> Result<bool, BackupError> {
    let digest = digest.to_path_buf();
    let recorded = match std::fs::read_to_string(&digest) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(BackupError::Io {
                path: digest,
                source,
            });
        }
    };
    let expected = recorded
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let actual = sha256_file(path).map_err(|source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if expected != actual {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "son empreinte SHA-256 n'est plus celle notée à la sauvegarde dans {}",
                digest.display()
            ),
        });
    }
    Ok(true)
}

fn copy_and_check(db: &Path, partial: &Path) -> Result<Summary, BackupError> {
    let sql = |source| BackupError::Sqlite {
        path: db.to_path_buf(),
        source,
    };
    // Read-only: a backup never writes into the daemon's database (and
    // never creates one where there was none).
    let c = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    c.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql)?;
    c.execute("VACUUM INTO ?1", [partial.to_string_lossy()])
        .map_err(sql)?;
    drop(c);
    check(partial, Accept::Current)
}

/// `dest` with `.partial-<pid>` appended, in the same folder (so that the
/// final link stays on one file system).
fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(name)
}

/// Makes a new name in the folder of `path` durable (best effort).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Checks a copy (its `FILE.sha256` when there is one, `PRAGMA
/// integrity_check`, the schema version against the migrations this
/// binary knows) without changing it, and says what it holds.
pub fn check(path: &Path, accept: Accept) -> Result<Summary, BackupError> {
    check_against(path, &digest_path(path), accept)
}

/// [`check`] of `path` against the fingerprint file `digest` (that of the
/// copy it was taken from: `vigie restore` checks the bytes it staged, not
/// the file it read them from, which could change in between).
pub fn check_against(path: &Path, digest: &Path, accept: Accept) -> Result<Summary, BackupError> {
    let digest_checked = verify_digest(path, digest)?;
    let sql = |source| BackupError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path)
        .map_err(|source| BackupError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    // Immutable: SQLite takes no lock and writes nothing (no -wal, no
    // -shm) next to a file that no one else is using.
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let c = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sql)?;
    let corrupt = |detail: String| BackupError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    // Bytes that are not a database at all fail here with "file is not a
    // database" (SQLITE_NOTADB): that is damage too.
    let problems: Vec<String> = match c.prepare("PRAGMA integrity_check").and_then(|mut st| {
        st.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    }) {
        Ok(rows) => rows,
        Err(e) => return Err(corrupt(e.to_string())),
    };
    if problems != ["ok"] {
        let mut detail = problems.into_iter().take(3).collect::<Vec<_>>().join("; ");
        if detail.is_empty() {
            detail = "aucune réponse".into();
        }
        return Err(corrupt(detail));
    }
    let found: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    let known = super::SCHEMA_VERSION;
    if found > known {
        return Err(BackupError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    if found < 1 || (accept == Accept::Current && found != known) {
        return Err(BackupError::OtherSchema {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    let by_state = |table: &str| -> rusqlite::Result<Vec<(String, i64)>> {
        let mut st = c.prepare(&format!(
            "SELECT state, COUNT(*) FROM {table} GROUP BY state ORDER BY state"
        ))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
    };
    Ok(Summary {
        schema_version: found,
        events: by_state("events").map_err(sql)?,
        deliveries: by_state("deliveries").map_err(sql)?,
        size,
        digest_checked,
    })
}

/// A path as the path part of an SQLite `file:` URI (`%`, `?` and `#`
/// escaped).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for ch in path.to_string_lossy().chars() {
        match ch {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// The name of the lock file in `data_dir`.
pub const LOCK_FILE: &str = "vigie.lock";

/// Takes the data directory's lock: an exclusive `flock(2)` on
/// `data_dir/vigie.lock`, held by the running daemon for its whole life
/// (and by `vigie restore` while it replaces the database). The kernel
/// releases it when the holder exits, however it exits (a crash, `kill
/// -9`): unlike a pid file or `/readyz`, it is never stale and never
/// depends on the network. `Ok(None)`: someone else holds it.
pub fn lock_data_dir(data_dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = data_dir.join(LOCK_FILE);
    // Never through a symbolic link: the data directory belongs to the
    // daemon's user, and `vigie restore` runs as root.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    // Made by `vigie restore` (root) before the daemon's first start: give
    // it to the data directory's owner, who must open it too (the open
    // file, not the name, which someone could swap).
    if let Ok(dir) = std::fs::metadata(data_dir)
        && (meta.uid(), meta.gid()) != (dir.uid(), dir.gid())
    {
        let _ = std::os::unix::fs::fchown(&f, Some(dir.uid()), Some(dir.gid()));
    }
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The files SQLite keeps next to a database in WAL mode.
pub const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Puts the copy `from` in place of the database `db` (the daemon
/// stopped, the caller holding [`lock_data_dir`]): the copy is written next
/// to `db` first (mode 0600, owned like the data directory, synced) and
/// `verify` checks *those* bytes (a copy still being written, or swapped,
/// is not installed unchecked); then the current database and its `-wal`
/// and `-shm` are renamed `<db>.before-restore-<stamp>` (and `-wal`,
/// `-shm` after that, so that SQLite opens the kept database with its
/// journal), then the copy takes the name. A rename that fails puts back
/// what was moved. Returns what `verify` said and the name the current
/// database was kept under, if there was one.
pub fn put_in_place<T>(
    from: &Path,
    db: &Path,
    stamp: &str,
    verify: impl FnOnce(&Path) -> Result<T, BackupError>,
) -> Result<(T, Option<PathBuf>), BackupError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    let incoming = with(".restoring");
    let _ = std::fs::remove_file(&incoming);
    {
        let mut src = std::fs::File::open(from).map_err(io(from))?;
        let mut dst = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&incoming)
            .map_err(io(&incoming))?;
        std::io::copy(&mut src, &mut dst).map_err(io(&incoming))?;
        dst.sync_all().map_err(io(&incoming))?;
        // `vigie restore` runs as root; the daemon as the data directory's
        // owner (systemd's dynamic user), who must be able to open the
        // copy. The open file is given, not the name.
        if let Some(dir) = db.parent()
            && let Ok(meta) = std::fs::metadata(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = std::os::unix::fs::fchown(&dst, Some(meta.uid()), Some(meta.gid()));
        }
    }
    let verified = match verify(&incoming) {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&incoming);
            return Err(e);
        }
    };
    // A free name for the database and its side files (two restores in
    // the same second must not put one kept database over the other).
    let taken = |p: &PathBuf| {
        std::iter::once(String::new())
            .chain(SIDE_FILES.iter().map(|s| s.to_string()))
            .any(|side| {
                let mut n = p.as_os_str().to_os_string();
                n.push(side);
                Path::new(&n).symlink_metadata().is_ok()
            })
    };
    let mut kept = with(&format!(".before-restore-{stamp}"));
    let mut n = 1;
    while taken(&kept) {
        n += 1;
        kept = with(&format!(".before-restore-{stamp}-{n}"));
    }
    let had_db = db.exists();
    // (from, to) of each rename done, to undo them if a later one fails.
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut renames: Vec<(PathBuf, PathBuf)> = Vec::new();
    if had_db {
        renames.push((db.to_path_buf(), kept.clone()));
    }
    for side in SIDE_FILES {
        let current = with(side);
        if current.exists() {
            let mut aside = kept.as_os_str().to_os_string();
            aside.push(side);
            renames.push((current, PathBuf::from(aside)));
        }
    }
    renames.push((incoming.clone(), db.to_path_buf()));
    for (a, b) in renames {
        if let Err(source) = std::fs::rename(&a, &b) {
            for (x, y) in moved.iter().rev() {
                let _ = std::fs::rename(y, x);
            }
            let _ = std::fs::remove_file(&incoming);
            return Err(BackupError::Io { path: a, source });
        }
        moved.push((a, b));
    }
    sync_dir(db);
    Ok((verified, had_db.then_some(kept)))
}
