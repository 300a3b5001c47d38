//! Reading a file someone else put on the disk — configuration, plans,
//! rosters, secrets — without letting it hurt the daemon.
//!
//! Every file Vigie reads by name goes through [`read_bytes`] (or
//! [`read_text`], [`read_source`]): it opens the path without waiting
//! (`O_NONBLOCK`, so a FIFO does not block the open), then looks at what was
//! opened (`fstat` on the open file, so what is checked is what is read):
//! only a regular file of at most [`MAX_FILE_SIZE`] is read, and never more
//! than that many bytes even if the file grows meanwhile. A FIFO, a device,
//! a socket or a directory where a file is expected is refused with an error
//! that says what it is. Symbolic links are followed: `/etc` is full of
//! legitimate ones (configuration management, `/etc/alternatives`).
//!
//! Decision (SPEC is silent): 16 MiB is far above what a CPTS writes (the
//! directory of 10 000 professionals used by the benchmark is about 3 MiB)
//! and small enough that a wrong path (a disk image, a log) is refused at
//! once instead of being parsed.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::diag::{Diagnostics, Loc, SourceText};

/// The largest file read: 16 MiB.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// What an entry that is not a regular file is, for the error message.
fn kind(ft: &std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

fn not_regular(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    )
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {} MiB", MAX_FILE_SIZE / (1024 * 1024)),
    )
}

/// Reads a whole regular file of at most [`MAX_FILE_SIZE`] bytes. Anything
/// else — a FIFO, a device, a directory, a larger file — is an error whose
/// message says why (`not a regular file (a FIFO)`, `larger than 16 MiB`);
/// the open never waits for a writer.
pub fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    // A first look before opening: opening some devices has effects of
    // its own (a tape rewinds, a modem line is raised).
    if let Some(what) = kind(&std::fs::metadata(path)?.file_type()) {
        return Err(not_regular(what));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // What counts is what was opened: the path may have been swapped for
    // a FIFO between the look and the open.
    let meta = file.metadata()?;
    if let Some(what) = kind(&meta.file_type()) {
        return Err(not_regular(what));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(too_large());
    }
    read_at_most(file, meta.len())
}

/// Reads at most [`MAX_FILE_SIZE`] bytes, one more to tell a file that grew
/// past the limit since `fstat`.
fn read_at_most(file: File, expected: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(expected.min(MAX_FILE_SIZE) as usize + 1);
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_bytes`], as UTF-8 text (secret files and the like).
pub fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_bytes(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the file is not valid UTF-8 text",
        )
    })
}

/// Reads a file a CPTS writes, as text with line positions. A file that
/// cannot be read is reported at its start as `cannot read the {what}: …`
/// (`what`: "configuration", "plan"…); invalid UTF-8 is reported where it
/// starts.
pub fn read_source(path: &Path, what: &str, diags: &mut Diagnostics) -> Option<SourceText> {
    let bytes = match read_bytes(path) {
        Ok(b) => b,
        Err(e) => {
            diags.error(
                &Loc::file_start(path),
                format!("cannot read the {what}: {e}"),
            );
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(SourceText::new(path, text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let src = SourceText::new(path, String::from_utf8_lossy(e.as_bytes()).into_owned());
            diags.error(&src.loc(valid), "the file is not valid UTF-8");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plan.toml");
        mkfifo(&p);
        let e = read_bytes(&p).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
    }

    #[test]
    fn a_directory_and_a_device_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_bytes(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a directory)");
        let e = read_bytes(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a character device)");
    }

    #[test]
    fn a_file_over_16_mib_is_refused_and_one_at_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        let f = File::create(&p).unwrap();
        f.set_len(MAX_FILE_SIZE + 1).unwrap();
        assert_eq!(
            read_bytes(&p).unwrap_err().to_string(),
            "larger than 16 MiB"
        );
        f.set_len(MAX_FILE_SIZE).unwrap();
        assert_eq!(read_bytes(&p).unwrap().len() as u64, MAX_FILE_SIZE);
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.toml");
        std::fs::write(&target, "a = 1\n").unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_text(&link).unwrap(), "a = 1\n");
    }

    #[test]
    fn read_at_most_stops_one_byte_past_the_limit() {
        // /dev/zero never ends: what was read is bounded all the same.
        let f = File::open("/dev/zero").unwrap();
        assert_eq!(
            read_at_most(f, 0).unwrap_err().to_string(),
            "larger than 16 MiB"
        );
    }
}
