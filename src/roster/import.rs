//! Assignments from a spreadsheet: CSV with a header row naming the columns
//! `date`, `shift` and `who` (other columns are ignored), turned into the
//! `[[assignment]]` TOML to append to the roster file
//! (`vigie roster import-csv ROSTER_ID FILE`).
//!
//! - `date`: `2026-12-24`, or `24/12/2026` as French spreadsheets export it;
//! - `shift`: a shift name of the roster, which must occur on that date;
//! - `who`: professionals separated by `;`, each a directory id or a full
//!   name (case and accents ignored, e.g. `Claire Martin`); an empty `who`
//!   is a hole and the row is skipped.
//!
//! Every problem is reported as `file:line:col: message` and nothing is
//! produced when there is one. Assignees the coverage check would not count
//! (inactive, not eligible…) are warnings: the check reports them anyway.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};

use super::occurs_on;
use crate::config::diag::SourceText;
use crate::config::{ConfigSet, Diagnostics, Roster};
use crate::model::fold;

/// One row of the spreadsheet, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedAssignment {
    pub date: NaiveDate,
    pub shift: String,
    /// Directory ids.
    pub who: Vec<String>,
    /// Where the row is.
    pub line: usize,
}

/// Reads the CSV `text` of the file `path` for `roster`. The assignments
/// come back sorted by date and shift; the diagnostics hold the errors (then
/// the assignments must not be used) and the warnings.
pub fn parse_csv(
    set: &ConfigSet,
    roster: &Roster,
    path: &Path,
    text: &str,
) -> (Vec<ImportedAssignment>, Diagnostics) {
    let mut diags = Diagnostics::default();
    // Spreadsheets often write a byte order mark first.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let src = SourceText::new(path, text.to_string());
    let delimiter = crate::config::diag::csv_delimiter(text);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(src.text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            diags.error(&src.loc(0), format!("CSV error: {e}"));
            return (Vec::new(), diags);
        }
    };
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(c_date), Some(c_shift), Some(c_who)) =
        (column("date"), column("shift"), column("who"))
    else {
        diags.error(
            &src.loc(0),
            format!(
                "the header must name the columns date, shift and who (found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        );
        return (Vec::new(), diags);
    };

    let cal = set.daemon.holidays;
    let dir = &set.directory;
    let eligible: Option<Vec<&str>> = roster.eligible.as_ref().map(|sel| {
        dir.select(sel, &|_: &str| Vec::new())
            .into_iter()
            .map(|p| p.id.as_str())
            .collect()
    });
    let mut out: Vec<ImportedAssignment> = Vec::new();
    let mut seen: HashMap<(NaiveDate, String), usize> = HashMap::new();
    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let offset = e.position().map(|p| p.byte() as usize).unwrap_or(0);
                diags.error(&src.loc(offset), format!("CSV error: {e}"));
                continue;
            }
        };
        let start = src.csv_record_start(record.position().map(|p| p.byte() as usize).unwrap_or(0));
        let row_loc = src.loc(start);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |i: usize| record.get(i).unwrap_or("");
        let at = |i: usize| src.csv_cell_loc(start, i, delimiter);

        let date_text = cell(c_date);
        let date = match parse_date(date_text) {
            Some(d) => Some(d),
            None => {
                diags.error(
                    &at(c_date),
                    format!("invalid date \"{date_text}\" (write 2026-12-24 or 24/12/2026)"),
                );
                None
            }
        };
        let shift_name = cell(c_shift);
        let shift = roster.shift(shift_name);
        if shift.is_none() {
            let known: Vec<&str> = roster.shifts.iter().map(|s| s.name.as_str()).collect();
            let hint = crate::config::diag::did_you_mean(shift_name, known.iter().copied());
            diags.error(
                &at(c_shift),
                format!(
                    "unknown shift \"{shift_name}\"{hint} (shifts of roster {}: {})",
                    roster.id.value,
                    known.join(", ")
                ),
            );
        }
        if let (Some(d), Some(s)) = (date, shift)
            && !occurs_on(roster, s, d, cal.holiday(d).is_some())
        {
            let message = match roster.out_of_period(s, d) {
                Some(why) => format!("shift `{}` does not occur on {d}: {why}", s.name.value),
                None => format!(
                    "shift `{}` does not occur on {d} (a {}{})",
                    s.name.value,
                    super::weekday_en(d.weekday()),
                    if s.holidays {
                        ", not a public holiday"
                    } else {
                        ""
                    }
                ),
            };
            diags.error(&at(c_date), message);
        }

        let mut who: Vec<String> = Vec::new();
        for entry in cell(c_who)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let loc = at(c_who);
            match resolve(set, entry) {
                Ok(id) => {
                    if who.contains(&id) {
                        diags.error(&loc, format!("`{id}` is listed twice on this row"));
                        continue;
                    }
                    if let Some(p) = dir.get(&id) {
                        if !p.active {
                            diags.warning(&loc, format!("`{id}` is inactive in the directory"));
                        } else if let Some(d) = date
                            && !p.available.contains(d)
                        {
                            diags.warning(
                                &loc,
                                format!(
                                    "`{id}` is away on {d} ({})",
                                    crate::config::roster::describe_keys(
                                        &p.available,
                                        "available_from",
                                        "available_until"
                                    )
                                ),
                            );
                        } else if eligible.as_ref().is_some_and(|e| !e.contains(&id.as_str())) {
                            diags.warning(
                                &loc,
                                format!("`{id}` is not eligible for roster {}", roster.id.value),
                            );
                        }
                    }
                    who.push(id);
                }
                Err(m) => diags.error(&loc, m),
            }
        }
        let (Some(date), Some(shift)) = (date, shift) else {
            continue;
        };
        if who.is_empty() {
            // A hole in the spreadsheet: nothing to append, the check will
            // report the shift as uncovered.
            continue;
        }
        let key = (date, shift.name.value.clone());
        if let Some(first) = seen.insert(key, row_loc.line) {
            diags.error(
                &row_loc,
                format!(
                    "{date} {} is already on line {first} of this file",
                    shift.name.value
                ),
            );
            continue;
        }
        if let Some(a) = roster
            .assignments
            .iter()
            .find(|a| a.date.value == date && a.shift.value == shift.name.value)
        {
            diags.warning(
                &row_loc,
                format!(
                    "{date} {} is already assigned at {}: appending adds these people to it",
                    shift.name.value, a.date.loc
                ),
            );
        }
        out.push(ImportedAssignment {
            date,
            shift: shift.name.value.clone(),
            who,
            line: row_loc.line,
        });
    }
    let order = |name: &str| roster.shifts.iter().position(|s| s.name.value == name);
    out.sort_by_key(|a| (a.date, order(&a.shift)));
    (out, diags)
}

/// A professional by id, else by full name (case and accents ignored).
fn resolve(set: &ConfigSet, entry: &str) -> Result<String, String> {
    let dir = &set.directory;
    if dir.get(entry).is_some() {
        return Ok(entry.to_string());
    }
    let wanted = fold(entry);
    let by_name: Vec<&str> = dir
        .professionals
        .iter()
        .filter(|p| fold(&p.name) == wanted)
        .map(|p| p.id.as_str())
        .collect();
    match by_name.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "unknown professional \"{entry}\" (neither an id nor a name of the directory)"
        )),
        many => Err(format!(
            "\"{entry}\" is the name of several professionals ({}): write the id",
            many.join(", ")
        )),
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()
}

/// The `[[assignment]]` tables to append to the roster file.
pub fn to_toml(roster: &Roster, source: &Path, assignments: &[ImportedAssignment]) -> String {
    let mut s = format!(
        "# ---- imported from {} for roster {}: {} assignment{} ----\n",
        source.display(),
        roster.id.value,
        assignments.len(),
        if assignments.len() == 1 { "" } else { "s" }
    );
    for a in assignments {
        let who: Vec<String> = a.who.iter().map(|w| toml_string(w)).collect();
        s.push_str(&format!(
            "\n[[assignment]]\ndate = {}      # {}\nshift = {}\nwho = [{}]\n",
            a.date,
            weekday_long(a.date),
            toml_string(&a.shift),
            who.join(", ")
        ));
    }
    s
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn weekday_long(d: NaiveDate) -> &'static str {
    match d.weekday() {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}
