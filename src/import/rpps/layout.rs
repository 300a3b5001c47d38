//! The columns of a `|`-separated extract (`|` or `;` for the MSSanté
//! one): found in its header by their folded name (missing required ones
//! refused), and each data line split into fields, a line with another
//! field count than the header refused.

use std::path::Path;

use crate::import::ImportError;
use crate::model::fold;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Required {
    Yes,
    No,
}

/// Where each column is in a `|`-separated file.
pub(super) struct Layout<'p, C: 'static> {
    path: &'p Path,
    /// Field count of the header (without the empty field after a trailing `|`).
    width: usize,
    columns: Vec<(C, Option<usize>)>,
    /// The separator of the fields.
    sep: u8,
}

impl<'p, C: Copy + PartialEq + 'static> Layout<'p, C> {
    pub(super) fn new(
        path: &'p Path,
        header: &str,
        table: &'static [(C, &'static str, Required)],
        what: &str,
    ) -> Result<Self, ImportError> {
        Self::with_separators(path, header, table, what, b"|")
    }

    /// [`Self::new`] for an extract whose fields are separated by the first
    /// of `seps` its header has (`|`, else `;`).
    pub(super) fn with_separators(
        path: &'p Path,
        header: &str,
        table: &'static [(C, &'static str, Required)],
        what: &str,
        seps: &[u8],
    ) -> Result<Self, ImportError> {
        let header = header.trim_start_matches('\u{feff}');
        let err = |message: String| ImportError::Header {
            path: path.to_path_buf(),
            message,
        };
        let sep = seps
            .iter()
            .copied()
            .find(|&c| header.as_bytes().contains(&c));
        let Some(sep) = sep else {
            let sep = [';', '\t', ',']
                .into_iter()
                .find(|c| header.contains(*c))
                .map(|c| format!(" (it has {c:?} where the extract has '|')"))
                .unwrap_or_default();
            return Err(err(format!(
                "the header has no '|': not a {what} extract{sep}"
            )));
        };
        let mut bounds = Vec::new();
        split_bounds(header, sep, &mut bounds);
        let names: Vec<String> = bounds.iter().map(|&(a, b)| fold(&header[a..b])).collect();
        let mut columns = Vec::new();
        let mut missing = Vec::new();
        for &(c, name, required) in table {
            let folded = fold(name);
            let at = names.iter().position(|n| *n == folded);
            if at.is_none() && required == Required::Yes {
                missing.push(format!("\"{name}\""));
            }
            columns.push((c, at));
        }
        if !missing.is_empty() {
            return Err(err(format!(
                "missing column{} {} in the header: is this the {what} extract?",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", ")
            )));
        }
        Ok(Layout {
            path,
            width: bounds.len(),
            columns,
            sep,
        })
    }

    pub(super) fn index(&self, c: C) -> Option<usize> {
        self.columns.iter().find(|(k, _)| *k == c).and_then(|x| x.1)
    }

    /// Splits a data line; a line with another number of fields than the
    /// header is refused (a cut or joined line would shift every value).
    pub(super) fn split(
        &self,
        line: &str,
        line_no: u64,
        bounds: &mut Vec<(usize, usize)>,
    ) -> Result<(), ImportError> {
        split_bounds(line, self.sep, bounds);
        if bounds.len() != self.width {
            return Err(ImportError::Line {
                path: self.path.to_path_buf(),
                line: line_no,
                message: format!(
                    "{} fields where the header has {}: is the line cut, or is the separator not '{}'?",
                    bounds.len(),
                    self.width,
                    self.sep as char
                ),
            });
        }
        Ok(())
    }

    pub(super) fn get<'l>(&self, line: &'l str, bounds: &[(usize, usize)], c: C) -> &'l str {
        match self.index(c) {
            Some(i) => {
                let (a, b) = bounds[i];
                line[a..b].trim()
            }
            None => "",
        }
    }
}

/// The byte ranges of the `sep`-separated fields of a line, the empty
/// field after a trailing separator left out.
fn split_bounds(line: &str, sep: u8, bounds: &mut Vec<(usize, usize)>) {
    bounds.clear();
    let mut start = 0;
    for (i, b) in line.bytes().enumerate() {
        if b == sep {
            bounds.push((start, i));
            start = i + 1;
        }
    }
    if start < line.len() || !line.as_bytes().ends_with(&[sep]) {
        bounds.push((start, line.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_split_on_bars_with_or_without_the_trailing_one() {
        let mut b = Vec::new();
        split_bounds("a|b||c|", b'|', &mut b);
        assert_eq!(b, vec![(0, 1), (2, 3), (4, 4), (5, 6)]);
        split_bounds("a|b||c", b'|', &mut b);
        assert_eq!(b, vec![(0, 1), (2, 3), (4, 4), (5, 6)]);
        split_bounds("", b'|', &mut b);
        assert_eq!(b, vec![(0, 0)]);
    }
}
