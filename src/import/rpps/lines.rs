//! Reading an extract line by line: each line with its number, decoded as
//! UTF-8, else as Windows-1252 (the encoding of older extracts), warned once.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::import::ImportError;

/// The lines of a file, read one at a time, with their numbers (the header
/// is line 1). UTF-8; a line that is not is decoded as Windows-1252.
pub(super) struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    line: u64,
    warned_encoding: bool,
}

impl Lines {
    pub(super) fn open(path: &Path) -> Result<Lines, ImportError> {
        let file = File::open(path).map_err(|source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(ImportError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("is a directory, not an extract file"),
            });
        }
        Ok(Lines {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            buf: Vec::with_capacity(4096),
            line: 0,
            warned_encoding: false,
        })
    }

    pub(super) fn header(&mut self, warnings: &mut Vec<String>) -> Result<String, ImportError> {
        match self.next_line(warnings)? {
            Some((_, h)) if !h.trim().is_empty() => Ok(h.into_owned()),
            _ => Err(ImportError::Header {
                path: self.path.clone(),
                message: "the file is empty".into(),
            }),
        }
    }

    pub(super) fn next_line(
        &mut self,
        warnings: &mut Vec<String>,
    ) -> Result<Option<(u64, Cow<'_, str>)>, ImportError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| ImportError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        let text = match std::str::from_utf8(&self.buf) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                if !self.warned_encoding {
                    self.warned_encoding = true;
                    warnings.push(format!(
                        "{}:{}: not UTF-8: read as Windows-1252 (and so is every such line)",
                        self.path.display(),
                        self.line
                    ));
                }
                Cow::Owned(windows_1252(&self.buf))
            }
        };
        Ok(Some((self.line, text)))
    }
}

/// Decodes Windows-1252 (Latin-1 with typographic signs in 0x80–0x9F).
fn windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9f => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_lines_are_read() {
        assert_eq!(windows_1252(b"Pr\xe9nom \x80 \x9c"), "Prénom € œ");
    }
}
