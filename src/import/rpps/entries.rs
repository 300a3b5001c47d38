//! The people gathered to directory entries: sorted, given unique ids, their
//! other sites and missing RPPS told in comments, the MSSanté mailbox in
//! its own field (`mssante`).

use std::collections::HashMap;

use super::{PROFESSIONS, Person, Site};
use crate::import::{Entry, slugify, title_case};
use crate::model::fold;

/// The id a person would have alone: initial and last name, folded.
fn id_base(p: &Person) -> String {
    let initial: String = slugify(&p.first, ' ').chars().take(1).collect();
    let mut base = format!("{initial}{}", slugify(&p.last, ' ').replace(' ', ""));
    base.truncate(56);
    if base.is_empty() {
        base = "pro".to_string();
    }
    base
}

/// Sorts the people (profession in the order of [`PROFESSIONS`], then last
/// name, first name, identifier) and gives each a
/// unique id: first initial and last name (`cmartin`); when several people
/// share it, the one with the smallest identifier (the oldest registration)
/// keeps it and the others get `cmartin-2`, `cmartin-3`… in the order of
/// their identifiers, so a newcomer does not take an id already in use.
pub(super) fn entries(mut people: Vec<Person>) -> Vec<Entry> {
    people.sort_by_cached_key(|p| {
        let rank = PROFESSIONS
            .iter()
            .position(|(_, slug)| *slug == p.profession);
        (rank, fold(&p.last), fold(&p.first), p.key.clone())
    });
    let bases: Vec<String> = people.iter().map(id_base).collect();
    let mut by_base: HashMap<&str, Vec<(&str, usize)>> = HashMap::new();
    for (i, (p, b)) in people.iter().zip(&bases).enumerate() {
        by_base.entry(b).or_default().push((&p.key, i));
    }
    let mut ids = vec![String::new(); people.len()];
    for (base, mut holders) in by_base {
        holders.sort();
        for (n, (_, i)) in holders.into_iter().enumerate() {
            ids[i] = if n == 0 {
                base.to_string()
            } else {
                format!("{base}-{}", n + 1)
            };
        }
    }
    people
        .into_iter()
        .zip(ids)
        .map(|(p, id)| {
            let mut comments = Vec::new();
            if p.rpps.is_none() {
                comments.push(format!("no RPPS: Annuaire Santé identifier {}", p.id));
            }
            if !p.more_here.is_empty() {
                comments.push(format!(
                    "also practises at: {}",
                    p.more_here
                        .iter()
                        .map(Site::describe)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            if !p.elsewhere.is_empty() {
                comments.push(format!(
                    "also practises outside these communes: {}",
                    p.elsewhere
                        .iter()
                        .map(|s| Site {
                            structure: s.structure.clone(),
                            commune: title_case(&s.commune),
                        }
                        .describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            let name = format!("{} {}", p.first, p.last).trim().to_string();
            Entry {
                id,
                name,
                profession: p.profession.to_string(),
                specialty: p.specialty.map(|s| s.0),
                rpps: p.rpps,
                commune: p.commune,
                structure: p.structure,
                email: p.email,
                mssante: p.mssante,
                phone: p.phone,
                comments,
            }
        })
        .collect()
}
