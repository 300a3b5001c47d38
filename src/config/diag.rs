//! Diagnostics: every problem found in the files, with the place it points at.
//!
//! A [`Loc`] is computed once, when a value is read, so a diagnostic stays
//! meaningful after the source text is gone. Errors print as
//! `path:line:col: message` (the form `vigie check` promises), warnings as
//! `path:line:col: warning: message`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a file: 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<Path>,
    pub line: usize,
    pub col: usize,
}

impl Loc {
    /// The start of a file, for problems that concern a file as a whole.
    pub fn file_start(file: &Path) -> Loc {
        Loc {
            file: Arc::from(file),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A value read from a file, with the place it was read from.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.loc, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.loc, self.message),
        }
    }
}

/// The problems found while loading a set of files, in the order found.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Error,
            loc: loc.clone(),
            message: message.into(),
        });
    }

    pub fn warning(&mut self, loc: &Loc, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            loc: loc.clone(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorts by file, line and column so the output reads top to bottom.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            (&a.loc.file, a.loc.line, a.loc.col).cmp(&(&b.loc.file, b.loc.line, b.loc.col))
        });
        self.items.dedup();
    }
}

/// A file's text with the offsets of its lines, to turn byte offsets into
/// line and column.
pub struct SourceText {
    pub path: Arc<Path>,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let path: PathBuf = path.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText {
            path: Arc::from(path.as_path()),
            text,
            line_starts,
        }
    }

    /// The location of a byte offset (clamped to the text).
    pub fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        Loc {
            file: self.path.clone(),
            line: line + 1,
            col,
        }
    }

    /// The byte where a CSV record starts, from the position the csv crate
    /// gives (after a CRLF it may give the LF).
    pub fn csv_record_start(&self, byte: usize) -> usize {
        let mut start = byte;
        while matches!(self.text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        start
    }

    /// The location of the `index`-th field of the CSV record starting at
    /// byte `start`, cells separated by `delimiter` (quotes are honoured):
    /// where a CSV cell's problem is.
    pub fn csv_cell_loc(&self, start: usize, index: usize, delimiter: u8) -> Loc {
        let bytes = self.text.as_bytes();
        let mut i = start;
        let mut field = 0;
        let mut quoted = false;
        while i < bytes.len() && field < index {
            match bytes[i] {
                b'"' => quoted = !quoted,
                b if b == delimiter && !quoted => field += 1,
                b'\n' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        self.loc(i)
    }

    /// The location `lines` lines below `offset`, at column 1 (used to point
    /// inside multi-line strings such as templates).
    pub fn loc_lines_below(&self, offset: usize, lines: usize) -> Loc {
        let here = self.loc(offset);
        let line = (here.line + lines).min(self.line_starts.len());
        if lines == 0 {
            here
        } else {
            Loc {
                file: self.path.clone(),
                line,
                col: 1,
            }
        }
    }
}

/// The cell separator of a CSV text: `,`, or `;` when its first line has
/// more `;` than `,` (what a French spreadsheet writes).
pub fn csv_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

/// Of `candidates`, the one `word` most likely misspells: the nearest by
/// edit distance when near enough for the word's length (one edit up to
/// five letters, two up to eleven, a quarter beyond), else one that
/// contains it or that it contains (`phone` in `telephone`), for words of
/// five letters or more. For "did you mean"; a short word gets no guess
/// rather than a wild one.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let len = word.chars().count();
    let limit = (len / 3).clamp(1, 2).max(len / 4);
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, _)| *d > 0 && *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
        .or_else(|| {
            candidates.iter().copied().find(|c| {
                *c != word
                    && ((word.len() >= 5 && c.contains(word)) || (c.len() >= 5 && word.contains(c)))
            })
        })
}

/// `: did you mean `x`?` when [`closest`] finds one, else nothing: the tail
/// of a message about an unknown name.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(": did you mean `{c}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_guess_only_when_it_is_likely() {
        let keys = ["id", "name", "phone", "quorum", "holidays", "approved"];
        assert_eq!(closest("quorom", keys), Some("quorum"));
        assert_eq!(closest("holiday", keys), Some("holidays"));
        assert_eq!(closest("approuve", keys), Some("approved"));
        assert_eq!(closest("telephone", keys), Some("phone"));
        assert_eq!(closest("x", keys), None, "a short word gets no wild guess");
        assert_eq!(closest("ab", keys), None);
        assert_eq!(closest("quorum", keys), None, "not itself");
    }
}
