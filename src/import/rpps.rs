//! The public *Annuaire Santé* extract (`PS_LibreAcces_Personne_activite_*.txt`)
//! to directory entries: `vigie directory import-rpps FILE --commune C…`.
//!
//! The extract has one row per activity of a professional (a person working
//! in two practices has two rows), `|`-separated with a trailing `|`, one
//! header row, UTF-8 (a line that is not is read as Windows-1252, the
//! encoding of older extracts). Columns are found by their header name
//! ([`COLUMNS`]), compared loosely (case, accents and punctuation aside), so
//! a reordered or widened extract still reads.
//!
//! Kept: the people with at least one activity whose commune
//! (`Libellé commune (coord. structure)`, else the town of
//! `Bureau cedex (coord. structure)`) is one of the given communes, compared
//! with [`fold`](crate::model::fold), and whose profession code is one Vigie imports
//! ([`PROFESSIONS`]). One entry per person (`Identification nationale PP`):
//! the commune and structure of their first activity in the given communes;
//! e-mail and phone from the first of those activities that has a valid one;
//! their other sites listed in comments.
//!
//! The file is read line by line: memory grows with the people kept, never
//! with the size of the extract (about 800 MB for the whole of France).

mod communes;
mod entries;
mod layout;
mod lines;
mod mssante;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{Entry, ImportError, french_phone, slugify, title_case};
use crate::model::{EmailAddress, Rpps, RppsCheck};
use communes::{Communes, cedex_town};
use entries::entries;
use layout::{Layout, Required};
use lines::Lines;
use mssante::merge_mssante;

/// Profession codes of the extract (`Code profession`) and the directory's
/// profession slugs (SPEC §3). Other professions are skipped and counted.
pub const PROFESSIONS: &[(&str, &str)] = &[
    ("10", "medecin"),
    ("21", "pharmacien"),
    ("40", "chirurgien_dentiste"),
    ("50", "sage_femme"),
    ("60", "infirmier"),
    ("70", "masseur_kinesitherapeute"),
    ("80", "pedicure_podologue"),
    ("91", "orthophoniste"),
    ("92", "orthoptiste"),
];

/// The columns read from the extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Id,
    NationalId,
    LastName,
    FirstName,
    ProfessionCode,
    ProfessionLabel,
    SkillType,
    SkillLabel,
    SiteName,
    SiteSign,
    Commune,
    CommuneCode,
    PostalCode,
    Cedex,
    Phone,
    Phone2,
    Email,
}

/// The one table mapping the extract's header names to what Vigie reads,
/// and whether the import refuses a file without the column.
const COLUMNS: &[(Col, &str, Required)] = &[
    (Col::Id, "Identifiant PP", Required::Yes),
    (Col::NationalId, "Identification nationale PP", Required::No),
    (Col::LastName, "Nom d'exercice", Required::Yes),
    (Col::FirstName, "Prénom d'exercice", Required::Yes),
    (Col::ProfessionCode, "Code profession", Required::Yes),
    (Col::ProfessionLabel, "Libellé profession", Required::No),
    (Col::SkillType, "Code type savoir-faire", Required::No),
    (Col::SkillLabel, "Libellé savoir-faire", Required::No),
    (Col::SiteName, "Raison sociale site", Required::No),
    (Col::SiteSign, "Enseigne commerciale site", Required::No),
    (
        Col::Commune,
        "Libellé commune (coord. structure)",
        Required::Yes,
    ),
    (
        Col::CommuneCode,
        "Code commune (coord. structure)",
        Required::No,
    ),
    (
        Col::PostalCode,
        "Code postal (coord. structure)",
        Required::No,
    ),
    (Col::Cedex, "Bureau cedex (coord. structure)", Required::No),
    (Col::Phone, "Téléphone (coord. structure)", Required::No),
    (Col::Phone2, "Téléphone 2 (coord. structure)", Required::No),
    (
        Col::Email,
        "Adresse e-mail (coord. structure)",
        Required::No,
    ),
];

/// At most this many other sites are remembered per person (for comments).
const MAX_SITES: usize = 16;

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Communes as the CPTS writes them (the entries carry these), or
    /// their INSEE or postal codes (the entries carry the extract's name).
    pub communes: Vec<String>,
    /// The MSSanté correspondence extract, for secure mailboxes.
    pub mssante: Option<PathBuf>,
}

/// The outcome: entries in directory order, warnings, counts.
#[derive(Debug, Default)]
pub struct Import {
    pub entries: Vec<Entry>,
    /// Doubtful values dropped or kept, each naming its file and line.
    pub warnings: Vec<String>,
    pub stats: Stats,
}

#[derive(Debug, Default)]
pub struct Stats {
    /// Data rows read (activities), the header excepted.
    pub rows: u64,
    /// Activities in the given communes, whatever the profession.
    pub in_communes: u64,
    /// Activities in the given communes skipped for their profession:
    /// code → (label, count).
    pub skipped_professions: BTreeMap<String, (String, u64)>,
    /// Given communes where no activity at all was found (a typo?).
    pub communes_not_found: Vec<String>,
    /// Communes given by a name that several départements have.
    pub homonyms: Vec<Homonym>,
    /// Codes given that are the INSEE code of some communes and the postal
    /// code of others: the code, the communes by INSEE code, by postal code.
    pub ambiguous_codes: Vec<(String, Vec<String>, Vec<String>)>,
    /// MSSanté mailboxes merged.
    pub mssante: usize,
}

/// A commune name given that communes of several départements bear.
#[derive(Debug)]
pub struct Homonym {
    /// The name as given.
    pub name: String,
    /// Per département: its code, the activities kept there, one INSEE
    /// code of a commune of that name there.
    pub departements: Vec<(String, u64, String)>,
}

impl Stats {
    /// Activities skipped for their profession, in all.
    pub fn skipped(&self) -> u64 {
        self.skipped_professions.values().map(|(_, n)| n).sum()
    }
}

/// A place someone works at, for the comments.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Site {
    structure: String,
    commune: String,
}

impl Site {
    fn describe(&self) -> String {
        match (self.structure.is_empty(), self.commune.is_empty()) {
            (false, false) => format!("{}, {}", self.structure, self.commune),
            (false, true) => self.structure.clone(),
            (true, _) => self.commune.clone(),
        }
    }
}

/// One person being gathered from their activities.
#[derive(Debug)]
struct Person {
    /// `Identification nationale PP` (else `Identifiant PP`).
    key: String,
    /// `Identifiant PP` as written (RPPS or ADELI).
    id: String,
    last: String,
    first: String,
    profession: &'static str,
    specialty: Option<(String, bool)>,
    rpps: Option<String>,
    /// The commune of the first activity in the given communes, as the
    /// directory will say it.
    commune: String,
    structure: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    /// Bad values already warned about, so each is said once.
    warned: Vec<String>,
    /// Other activities in the given communes.
    more_here: Vec<Site>,
    /// Activities elsewhere (communes as the extract writes them).
    elsewhere: Vec<Site>,
    mssante: Option<String>,
}

/// Imports the people practising in `opts.communes` from the extract at
/// `path` (and the MSSanté extract when given).
pub fn import(path: &Path, opts: &Options) -> Result<Import, ImportError> {
    let mut communes = Communes::new(&opts.communes);
    let mut out = Import::default();
    let mut reader = Lines::open(path)?;
    let header = reader.header(&mut out.warnings)?;
    let layout = Layout::new(path, &header, COLUMNS, "PS_LibreAcces_Personne_activite")?;
    drop(header);

    let mut people: Vec<Person> = Vec::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    // The sites elsewhere of the person on the rows just read, kept until
    // their key changes: the extract lists a person's activities together,
    // so those read before their first kept activity are not lost.
    let mut pending_key = String::new();
    let mut pending: Vec<Site> = Vec::new();
    let mut found = vec![false; communes.len()];
    // Per commune given as a code: the communes it matched by their INSEE
    // code, and by their postal code.
    let mut code_communes: Vec<(BTreeSet<String>, BTreeSet<String>)> =
        vec![Default::default(); communes.len()];
    // Per commune given by name: département → (activities, an INSEE code).
    let mut departements: Vec<BTreeMap<String, (u64, String)>> =
        vec![BTreeMap::new(); communes.len()];

    let mut bounds = Vec::new();
    while let Some((line_no, line)) = reader.next_line(&mut out.warnings)? {
        if line.trim().is_empty() {
            continue;
        }
        out.stats.rows += 1;
        layout.split(&line, line_no, &mut bounds)?;
        let get = |c: Col| layout.get(&line, &bounds, c);
        let key = match get(Col::NationalId) {
            "" => get(Col::Id),
            k => k,
        };
        let label = match get(Col::Commune) {
            "" => cedex_town(get(Col::Cedex)),
            l => l,
        };
        let (insee, postal) = (get(Col::CommuneCode), get(Col::PostalCode));
        let Some((ci, by_insee)) = communes.find_how(label, insee, postal) else {
            // An activity elsewhere: remembered only for a kept person (or
            // the person on the rows just read).
            let site = Site {
                structure: structure_of(&get).unwrap_or_default().to_string(),
                commune: label.to_string(),
            };
            if let Some(&i) = by_key.get(key) {
                push_site(&mut people[i].elsewhere, site);
            } else if !key.is_empty() {
                if pending_key != key {
                    pending_key.clear();
                    pending_key.push_str(key);
                    pending.clear();
                }
                push_site(&mut pending, site);
            }
            continue;
        };
        found[ci] = true;
        out.stats.in_communes += 1;
        if let Some(by_insee) = by_insee {
            let (a, b) = &mut code_communes[ci];
            let seen = if by_insee { a } else { b };
            if seen.len() < 16 {
                seen.insert(title_case(label));
            }
        }
        let dep = communes::departement(insee, postal);
        if communes.by_name(ci) && !dep.is_empty() {
            let e = departements[ci].entry(dep).or_default();
            e.0 += 1;
            if e.1.is_empty() {
                e.1 = insee.to_string();
            }
        }
        let commune = communes.label(ci, label);
        let code = get(Col::ProfessionCode);
        let Some(&(_, profession)) = PROFESSIONS.iter().find(|(c, _)| *c == code) else {
            let e = out
                .stats
                .skipped_professions
                .entry(code.to_string())
                .or_insert_with(|| (get(Col::ProfessionLabel).to_string(), 0));
            e.1 += 1;
            continue;
        };
        if key.is_empty() {
            out.warnings.push(format!(
                "{}:{line_no}: no `Identifiant PP`: activity skipped",
                path.display()
            ));
            continue;
        }
        let structure = structure_of(&get);
        let idx = match by_key.get(key) {
            Some(&i) => {
                let p = &mut people[i];
                let site = Site {
                    structure: structure.unwrap_or_default().to_string(),
                    commune,
                };
                let first = Site {
                    structure: p.structure.clone().unwrap_or_default(),
                    commune: p.commune.clone(),
                };
                if site != first {
                    push_site(&mut p.more_here, site);
                }
                i
            }
            None => {
                let last = title_case(get(Col::LastName));
                let first = title_case(get(Col::FirstName));
                if last.is_empty() && first.is_empty() {
                    out.warnings.push(format!(
                        "{}:{line_no}: `{key}` has no name: activity skipped",
                        path.display()
                    ));
                    continue;
                }
                let id = get(Col::Id).to_string();
                let rpps = rpps_of(&id, key, path, line_no, &mut out.warnings);
                let elsewhere = if pending_key == key {
                    std::mem::take(&mut pending)
                } else {
                    Vec::new()
                };
                people.push(Person {
                    key: key.to_string(),
                    id,
                    last,
                    first,
                    profession,
                    specialty: None,
                    rpps,
                    commune,
                    structure: structure.map(str::to_string),
                    email: None,
                    phone: None,
                    warned: Vec::new(),
                    more_here: Vec::new(),
                    elsewhere,
                    mssante: None,
                });
                by_key.insert(key.to_string(), people.len() - 1);
                people.len() - 1
            }
        };
        let p = &mut people[idx];
        let skill = get(Col::SkillLabel);
        let ordinal = get(Col::SkillType) == "S";
        if !skill.is_empty() && p.specialty.as_ref().is_none_or(|(_, o)| !*o && ordinal) {
            let slug = slugify(skill, '_');
            if !slug.is_empty() {
                p.specialty = Some((slug, ordinal));
            }
        }
        let at = format!("{}:{line_no}", path.display());
        if p.email.is_none() {
            let raw = get(Col::Email);
            if !raw.is_empty() {
                match EmailAddress::parse(raw) {
                    Ok(e) => p.email = Some(e.as_str().to_string()),
                    Err(why) => warn_once(p, raw, &mut out.warnings, || {
                        format!("{at}: {why}: e-mail dropped")
                    }),
                }
            }
        }
        if p.phone.is_none() {
            for raw in [get(Col::Phone), get(Col::Phone2)] {
                if raw.is_empty() {
                    continue;
                }
                match french_phone(raw) {
                    Ok(ph) => {
                        p.phone = Some(ph.as_str().to_string());
                        break;
                    }
                    Err(why) => warn_once(p, raw, &mut out.warnings, || {
                        format!("{at}: {why}: phone dropped")
                    }),
                }
            }
        }
    }

    for (i, f) in found.iter().enumerate() {
        if !f {
            out.stats
                .communes_not_found
                .push(communes.given(i).to_string());
        }
    }
    for (i, (by_insee, by_postal)) in code_communes.into_iter().enumerate() {
        if !by_insee.is_empty() && !by_postal.is_empty() {
            out.stats.ambiguous_codes.push((
                communes.given(i).to_string(),
                by_insee.into_iter().collect(),
                by_postal.into_iter().collect(),
            ));
        }
    }
    for (i, deps) in departements.into_iter().enumerate() {
        if deps.len() > 1 {
            out.stats.homonyms.push(Homonym {
                name: communes.given(i).to_string(),
                departements: deps
                    .into_iter()
                    .map(|(d, (n, code))| (d, n, code))
                    .collect(),
            });
        }
    }
    if let Some(mss) = &opts.mssante {
        out.stats.mssante = merge_mssante(mss, &mut people, &mut out.warnings)?;
    }
    out.entries = entries(people);
    Ok(out)
}

fn warn_once(p: &mut Person, raw: &str, warnings: &mut Vec<String>, msg: impl FnOnce() -> String) {
    if !p.warned.iter().any(|w| w == raw) {
        p.warned.push(raw.to_string());
        let who = format!("{} {} ({})", p.first, p.last, p.key);
        warnings.push(format!("{} — {who}", msg()));
    }
}

fn push_site(sites: &mut Vec<Site>, site: Site) {
    if sites.len() < MAX_SITES && !sites.contains(&site) {
        sites.push(site);
    }
}

/// The structure's name: its trading name when it has one
/// (`PHARMACIE DU CENTRE`), else its legal name (`SELARL …`).
fn structure_of<'a>(get: &impl Fn(Col) -> &'a str) -> Option<&'a str> {
    [get(Col::SiteSign), get(Col::SiteName)]
        .into_iter()
        .find(|s| !s.is_empty())
}

/// The RPPS of a person: `Identifiant PP` when it is 11 digits (RPPS),
/// none for ADELI numbers (9 characters).
fn rpps_of(
    id: &str,
    key: &str,
    path: &Path,
    line: u64,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let candidate = if id.len() == 11 {
        id
    } else {
        key.strip_prefix('8').filter(|r| r.len() == 11)?
    };
    match Rpps::parse(candidate) {
        Ok((r, RppsCheck::Valid)) => Some(r.as_str().to_string()),
        Ok((r, RppsCheck::LuhnMismatch)) => {
            warnings.push(format!(
                "{}:{line}: RPPS {candidate} fails the Luhn check (kept; `vigie check` will warn too)",
                path.display()
            ));
            Some(r.as_str().to_string())
        }
        Err(_) => None,
    }
}
