//! `vigie backup` and `vigie restore` (SPEC §16): a checked copy of the
//! database taken while the daemon runs, a dated copy with a retention
//! count for the timer, and the return of a copy in place of the database
//! (daemon stopped). The SQL is in `store::backup`; this module finds the
//! files, names them and speaks to the sysadmin, in French.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config;
use crate::model::labels;
use crate::store::backup::{self, Accept, Summary};

/// `vigie backup`'s arguments.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The copy to write (must not exist).
    #[arg(
        value_name = "FILE",
        required_unless_present = "dir",
        conflicts_with = "dir"
    )]
    pub file: Option<PathBuf>,
    /// Write `vigie-YYYYMMDD-HHMMSS.db` (daemon time zone) in this folder instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// With --dir: keep the N most recent `vigie-*.db` copies, delete the older ones.
    #[arg(long, value_name = "N", requires = "dir", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
}

/// The name of a dated copy in `--dir`.
fn dated_name(now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    format!(
        "vigie-{}.db",
        now.with_timezone(&tz).format("%Y%m%d-%H%M%S")
    )
}

/// Whether `name` is one of the dated copies `--dir` writes (and the only
/// files `--keep` may delete).
fn is_dated_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.len() == "vigie-YYYYMMDD-HHMMSS.db".len()
        && name.starts_with("vigie-")
        && name.ends_with(".db")
        && b[14] == b'-'
        && b[6..14].iter().chain(&b[15..21]).all(u8::is_ascii_digit)
}

/// The daemon configuration alone (the other files are not needed to copy
/// the database); its errors printed as file:line:col.
fn daemon_config(path: &Path) -> Option<config::DaemonConfig> {
    let mut diags = config::Diagnostics::default();
    let cfg = config::daemon::load(path, &mut diags);
    if cfg.is_none() {
        for d in diags.errors() {
            eprintln!("{d}");
        }
        eprintln!("vigie : la configuration {} est refusée", path.display());
    }
    cfg
}

/// A size for people: `12,3 Mo`, `456 ko`, `789 octets`.
fn size_fr(bytes: u64) -> String {
    let fr = |v: f64| format!("{v:.1}").replace('.', ",");
    match bytes {
        b if b >= 1 << 30 => format!("{} Go", fr(b as f64 / (1u64 << 30) as f64)),
        b if b >= 1 << 20 => format!("{} Mo", fr(b as f64 / (1u64 << 20) as f64)),
        b if b >= 1 << 10 => format!("{} ko", fr(b as f64 / 1024.0)),
        b => format!("{b} octets"),
    }
}

/// What a copy holds, for people.
pub fn describe(s: &Summary, out: &mut dyn Write) {
    // "2 En cours, 1 Terminé", "40 envoyés, 2 échecs": as `vigie show`
    // and the pages word them.
    let list = |rows: &[(String, i64)], label: &dyn Fn(u64, &str) -> String| -> String {
        if rows.is_empty() {
            return "aucun".into();
        }
        rows.iter()
            .map(|(state, n)| label((*n).max(0) as u64, state))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let total = |rows: &[(String, i64)]| rows.iter().map(|(_, n)| n).sum::<i64>();
    let _ = writeln!(
        out,
        "  intégrité : ok ; schéma : version {} ; taille : {}",
        s.schema_version,
        size_fr(s.size)
    );
    if s.digest_checked {
        let _ = writeln!(out, "  empreinte SHA-256 : conforme");
    }
    let _ = writeln!(
        out,
        "  événements : {} ({})",
        total(&s.events),
        list(&s.events, &|n, state| format!(
            "{n} {}",
            labels::event_state(state).to_lowercase()
        ))
    );
    let _ = writeln!(
        out,
        "  envois : {} ({})",
        total(&s.deliveries),
        list(&s.deliveries, &labels::deliveries)
    );
}

/// `vigie backup FILE` or `vigie backup --dir DIR [--keep N]`.
pub fn run_backup(config_path: &Path, args: BackupArgs, out: &mut dyn Write) -> i32 {
    let Some(cfg) = daemon_config(config_path) else {
        return 1;
    };
    let db = cfg.data_dir.join("vigie.db");
    if !db.is_file() {
        eprintln!(
            "vigie : pas de base de données {} (le démon a-t-il déjà démarré avec cette configuration ?)",
            db.display()
        );
        return 1;
    }
    let dest = match (&args.file, &args.dir) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => {
            use std::os::unix::fs::DirBuilderExt;
            if let Err(e) = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
            {
                eprintln!("vigie : impossible de créer {} : {e}", dir.display());
                return 1;
            }
            dir.join(dated_name(Utc::now(), cfg.timezone))
        }
        (None, None) => {
            eprintln!("vigie : indiquez le fichier de la copie, ou --dir DOSSIER");
            return 2;
        }
    };
    let summary = match backup::backup(&db, &dest) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigie : sauvegarde impossible : {e}");
            return 1;
        }
    };
    let _ = writeln!(
        out,
        "Copie de {} écrite dans {} et vérifiée (empreinte dans {}) :",
        db.display(),
        dest.display(),
        backup::digest_path(&dest).display()
    );
    describe(&summary, out);
    if let (Some(dir), Some(keep)) = (&args.dir, args.keep) {
        match prune(dir, keep as usize) {
            Ok(deleted) => {
                for p in &deleted {
                    let _ = writeln!(out, "Ancienne copie supprimée : {}", p.display());
                }
            }
            Err(e) => {
                eprintln!(
                    "vigie : la copie est faite, mais les anciennes copies de {} n'ont pas pu être triées : {e}",
                    dir.display()
                );
                return 1;
            }
        }
    }
    0
}

/// Deletes the oldest dated copies of `dir` beyond the `keep` most recent
/// (their names sort in time order), each with its `.sha256`; touches no
/// other file.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut copies: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_dated_name(n))
        .collect();
    copies.sort();
    let excess = copies.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for name in copies.into_iter().take(excess) {
        let p = dir.join(name);
        std::fs::remove_file(&p)?;
        match std::fs::remove_file(backup::digest_path(&p)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        deleted.push(p);
    }
    Ok(deleted)
}

/// `vigie restore FILE`: refused while the daemon runs (it holds the data
/// directory's lock) and for a copy that is damaged or newer than this
/// binary; the current database is kept aside, never deleted.
pub fn run_restore(config_path: &Path, file: &Path, out: &mut dyn Write) -> i32 {
    let Some(cfg) = daemon_config(config_path) else {
        return 1;
    };
    let data_dir = &cfg.data_dir;
    if !data_dir.is_dir() {
        eprintln!(
            "vigie : le dossier de données {} n'existe pas (créez-le, ou démarrez le démon une fois)",
            data_dir.display()
        );
        return 1;
    }
    let _lock = match backup::lock_data_dir(data_dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            eprintln!(
                "vigie : le démon tourne sur {} : arrêtez-le d'abord (systemctl stop vigie), puis recommencez",
                data_dir.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!(
                "vigie : impossible de vérifier que le démon est arrêté ({}/{}) : {e}",
                data_dir.display(),
                backup::LOCK_FILE
            );
            return 1;
        }
    };
    let db = data_dir.join("vigie.db");
    let stamp = Utc::now()
        .with_timezone(&cfg.timezone)
        .format("%Y%m%d-%H%M%S")
        .to_string();
    // The bytes staged next to the database are the ones checked; their
    // faults are told under the name of the copy given.
    let digest = backup::digest_path(file);
    let refused = std::cell::Cell::new(false);
    let verify = |staged: &Path| {
        backup::check_against(staged, &digest, Accept::UpToCurrent).map_err(|e| {
            refused.set(true);
            e.named(staged, file)
        })
    };
    match backup::put_in_place(file, &db, &stamp, verify) {
        Err(e) if refused.get() => {
            eprintln!("vigie : restauration refusée, rien n'a été changé : {e}");
            1
        }
        Ok((summary, kept)) => {
            let _ = writeln!(
                out,
                "{} remis en place dans {} :",
                file.display(),
                db.display()
            );
            describe(&summary, out);
            if !summary.digest_checked {
                let _ = writeln!(
                    out,
                    "  (pas de {} : seule la structure de la copie a été vérifiée)",
                    backup::digest_path(file).display()
                );
            }
            if let Some(k) = kept {
                let _ = writeln!(
                    out,
                    "L'ancienne base est gardée sous {} (avec ses fichiers -wal et -shm s'il y en avait).",
                    k.display()
                );
            }
            let _ = writeln!(out, "Démarrez le démon : systemctl start vigie");
            0
        }
        Err(e) => {
            eprintln!("vigie : restauration interrompue : {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dated_copies_are_candidates_for_deletion() {
        let now = DateTime::parse_from_rfc3339("2026-06-15T22:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let name = dated_name(now, chrono_tz::Europe::Paris);
        assert_eq!(name, "vigie-20260616-003005.db");
        assert!(is_dated_name(&name));
        for other in [
            "vigie.db",
            "vigie-20260616-003005.db-wal",
            "vigie-2026061-003005.db",
            "vigie-20260616_003005.db",
            "notes-20260616-003005.db",
            "vigie-2026061a-003005.db",
        ] {
            assert!(!is_dated_name(other), "{other}");
        }
    }

    #[test]
    fn sizes_read_in_french() {
        assert_eq!(size_fr(512), "512 octets");
        assert_eq!(size_fr(1536), "1,5 ko");
        assert_eq!(size_fr(3 * 1024 * 1024), "3,0 Mo");
    }
}
