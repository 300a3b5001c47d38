//! The MSSanté correspondence extract (`Extraction_Correspondance_MSSante_*.txt`):
//! the secure personal mailbox of each kept person.

use std::collections::HashMap;
use std::path::Path;

use super::Person;
use super::layout::{Layout, Required};
use super::lines::Lines;
use crate::import::ImportError;
use crate::model::EmailAddress;

/// The columns read from the MSSanté extract
/// (`Extraction_Correspondance_MSSante_*.txt`).
const MSSANTE_COLUMNS: &[(MssCol, &str, Required)] = &[
    (MssCol::Kind, "Type de BAL", Required::No),
    (MssCol::Address, "Adresse BAL", Required::Yes),
    (MssCol::Id, "Identifiant PP", Required::No),
    (
        MssCol::NationalId,
        "Identification nationale PP",
        Required::No,
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MssCol {
    Kind,
    Address,
    Id,
    NationalId,
}

/// Reads the MSSanté extract and gives each kept person their first
/// personal mailbox (`Type de BAL` = `PER`). Returns how many got one.
pub(super) fn merge_mssante(
    path: &Path,
    people: &mut [Person],
    warnings: &mut Vec<String>,
) -> Result<usize, ImportError> {
    let mut reader = Lines::open(path)?;
    let header = reader.header(warnings)?;
    // `|` as the Annuaire Santé publishes it; `;` as a spreadsheet saves it.
    let layout = Layout::with_separators(
        path,
        &header,
        MSSANTE_COLUMNS,
        "Extraction_Correspondance_MSSante",
        b"|;",
    )?;
    if layout.index(MssCol::Id).is_none() && layout.index(MssCol::NationalId).is_none() {
        return Err(ImportError::Header {
            path: path.to_path_buf(),
            message: "neither `Identifiant PP` nor `Identification nationale PP` in the header"
                .into(),
        });
    }
    let mut lookup: HashMap<&str, usize> = HashMap::new();
    for (i, p) in people.iter().enumerate() {
        lookup.insert(p.key.as_str(), i);
        lookup.entry(p.id.as_str()).or_insert(i);
    }
    let mut hits: Vec<(usize, String)> = Vec::new();
    let mut bounds = Vec::new();
    while let Some((line_no, line)) = reader.next_line(warnings)? {
        if line.trim().is_empty() {
            continue;
        }
        layout.split(&line, line_no, &mut bounds)?;
        let get = |c: MssCol| layout.get(&line, &bounds, c);
        let kind = get(MssCol::Kind);
        if !kind.is_empty() && !kind.eq_ignore_ascii_case("PER") {
            continue;
        }
        let person = [get(MssCol::NationalId), get(MssCol::Id)]
            .into_iter()
            .filter(|k| !k.is_empty())
            .find_map(|k| lookup.get(k).copied());
        let Some(i) = person else { continue };
        if hits.iter().any(|(j, _)| *j == i) {
            continue;
        }
        let address = get(MssCol::Address);
        match EmailAddress::parse(address) {
            Ok(a) => hits.push((i, a.as_str().to_string())),
            Err(why) => warnings.push(format!(
                "{}:{line_no}: {why}: MSSanté mailbox dropped",
                path.display()
            )),
        }
    }
    drop(lookup);
    let n = hits.len();
    for (i, address) in hits {
        people[i].mssante = Some(address);
    }
    Ok(n)
}
