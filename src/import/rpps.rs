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
//! with [`fold`], and whose profession code is one Vigie imports
//! ([`PROFESSIONS`]). One entry per person (`Identification nationale PP`):
//! the commune and structure of their first activity in the given communes;
//! e-mail and phone from the first of those activities that has a valid one;
//! their other sites listed in comments.
//!
//! The file is read line by line: memory grows with the people kept, never
//! with the size of the extract (about 800 MB for the whole of France).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{Entry, ImportError, french_phone, slugify, title_case};
use crate::model::{EmailAddress, Rpps, RppsCheck, fold};

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
    (Col::Cedex, "Bureau cedex (coord. structure)", Required::No),
    (Col::Phone, "Téléphone (coord. structure)", Required::No),
    (Col::Phone2, "Téléphone 2 (coord. structure)", Required::No),
    (
        Col::Email,
        "Adresse e-mail (coord. structure)",
        Required::No,
    ),
];

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Required {
    Yes,
    No,
}

/// At most this many other sites are remembered per person (for comments).
const MAX_SITES: usize = 16;

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Commune labels as the CPTS writes them; the entries carry these.
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
    /// MSSanté mailboxes merged.
    pub mssante: usize,
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
    /// Index into the given communes, of the first activity there.
    commune: usize,
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
        let Some(ci) = communes.find(label) else {
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
                    commune: communes.given(ci).to_string(),
                };
                let first = Site {
                    structure: p.structure.clone().unwrap_or_default(),
                    commune: communes.given(p.commune).to_string(),
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
                    commune: ci,
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
    if let Some(mss) = &opts.mssante {
        out.stats.mssante = merge_mssante(mss, &mut people, &mut out.warnings)?;
    }
    out.entries = entries(people, &communes);
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

/// The town of a `Bureau cedex` label: `68800 THANN CEDEX` → `THANN`.
fn cedex_town(s: &str) -> &str {
    let s = s.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
    let upper = s.to_ascii_uppercase();
    match upper.rfind(" CEDEX") {
        Some(i) => s[..i].trim(),
        None => s,
    }
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

/// Sorts the people (last name, first name, identifier) and gives each a
/// unique id: first initial and last name (`cmartin`); when several people
/// share it, the one with the smallest identifier (the oldest registration)
/// keeps it and the others get `cmartin-2`, `cmartin-3`… in the order of
/// their identifiers, so a newcomer does not take an id already in use.
fn entries(mut people: Vec<Person>, communes: &Communes) -> Vec<Entry> {
    people.sort_by_cached_key(|p| (fold(&p.last), fold(&p.first), p.key.clone()));
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
            let email = match (&p.mssante, &p.email) {
                (Some(m), Some(plain)) => {
                    comments.push(format!(
                        "e-mail is the MSSanté mailbox (reachable through an MSSanté operator only); \
                         e-mail of the practice: {plain}"
                    ));
                    Some(m.clone())
                }
                (Some(m), None) => {
                    comments.push(
                        "e-mail is the MSSanté mailbox (reachable through an MSSanté operator only)"
                            .to_string(),
                    );
                    Some(m.clone())
                }
                (None, e) => e.clone(),
            };
            let name = format!("{} {}", p.first, p.last).trim().to_string();
            Entry {
                id,
                name,
                profession: p.profession.to_string(),
                specialty: p.specialty.map(|s| s.0),
                rpps: p.rpps,
                commune: communes.given(p.commune).to_string(),
                structure: p.structure,
                email,
                phone: p.phone,
                comments,
            }
        })
        .collect()
}

/// Reads the MSSanté extract and gives each kept person their first
/// personal mailbox (`Type de BAL` = `PER`). Returns how many got one.
fn merge_mssante(
    path: &Path,
    people: &mut [Person],
    warnings: &mut Vec<String>,
) -> Result<usize, ImportError> {
    let mut reader = Lines::open(path)?;
    let header = reader.header(warnings)?;
    let layout = Layout::new(
        path,
        &header,
        MSSANTE_COLUMNS,
        "Extraction_Correspondance_MSSante",
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

/// The given communes, matched by their folded label. Labels already seen
/// are remembered (a France-wide extract has some 35,000), so most rows cost
/// one hash lookup.
struct Communes {
    given: Vec<(String, String)>,
    seen: HashMap<String, Option<usize>>,
}

impl Communes {
    fn new(given: &[String]) -> Communes {
        let mut list: Vec<(String, String)> = Vec::new();
        for g in given {
            let folded = fold(g);
            if !list.iter().any(|(_, f)| *f == folded) {
                list.push((g.trim().to_string(), folded));
            }
        }
        Communes {
            given: list,
            seen: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.given.len()
    }

    fn given(&self, i: usize) -> &str {
        &self.given[i].0
    }

    fn find(&mut self, label: &str) -> Option<usize> {
        if let Some(&hit) = self.seen.get(label) {
            return hit;
        }
        let folded = fold(label);
        let hit = self.given.iter().position(|(_, f)| *f == folded);
        if self.seen.len() > 200_000 {
            // Not a real extract (labels without end): stay bounded.
            self.seen.clear();
        }
        self.seen.insert(label.to_string(), hit);
        hit
    }
}

/// Where each column is in a `|`-separated file.
struct Layout<'p, C: 'static> {
    path: &'p Path,
    /// Field count of the header (without the empty field after a trailing `|`).
    width: usize,
    columns: Vec<(C, Option<usize>)>,
}

impl<'p, C: Copy + PartialEq + 'static> Layout<'p, C> {
    fn new(
        path: &'p Path,
        header: &str,
        table: &'static [(C, &'static str, Required)],
        what: &str,
    ) -> Result<Self, ImportError> {
        let header = header.trim_start_matches('\u{feff}');
        let err = |message: String| ImportError::Header {
            path: path.to_path_buf(),
            message,
        };
        if !header.contains('|') {
            let sep = [';', '\t', ',']
                .into_iter()
                .find(|c| header.contains(*c))
                .map(|c| format!(" (it has {c:?} where the extract has '|')"))
                .unwrap_or_default();
            return Err(err(format!(
                "the header has no '|': not a {what} extract{sep}"
            )));
        }
        let mut bounds = Vec::new();
        split_bounds(header, &mut bounds);
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
        })
    }

    fn index(&self, c: C) -> Option<usize> {
        self.columns.iter().find(|(k, _)| *k == c).and_then(|x| x.1)
    }

    /// Splits a data line; a line with another number of fields than the
    /// header is refused (a cut or joined line would shift every value).
    fn split(
        &self,
        line: &str,
        line_no: u64,
        bounds: &mut Vec<(usize, usize)>,
    ) -> Result<(), ImportError> {
        split_bounds(line, bounds);
        if bounds.len() != self.width {
            return Err(ImportError::Line {
                path: self.path.to_path_buf(),
                line: line_no,
                message: format!(
                    "{} fields where the header has {}: is the line cut, or is the separator not '|'?",
                    bounds.len(),
                    self.width
                ),
            });
        }
        Ok(())
    }

    fn get<'l>(&self, line: &'l str, bounds: &[(usize, usize)], c: C) -> &'l str {
        match self.index(c) {
            Some(i) => {
                let (a, b) = bounds[i];
                line[a..b].trim()
            }
            None => "",
        }
    }
}

/// The byte ranges of the `|`-separated fields of a line, the empty field
/// after a trailing `|` left out.
fn split_bounds(line: &str, bounds: &mut Vec<(usize, usize)>) {
    bounds.clear();
    let mut start = 0;
    for (i, b) in line.bytes().enumerate() {
        if b == b'|' {
            bounds.push((start, i));
            start = i + 1;
        }
    }
    if start < line.len() || !line.ends_with('|') {
        bounds.push((start, line.len()));
    }
}

/// The lines of a file, read one at a time, with their numbers (the header
/// is line 1). UTF-8; a line that is not is decoded as Windows-1252.
struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    line: u64,
    warned_encoding: bool,
}

impl Lines {
    fn open(path: &Path) -> Result<Lines, ImportError> {
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

    fn header(&mut self, warnings: &mut Vec<String>) -> Result<String, ImportError> {
        match self.next_line(warnings)? {
            Some((_, h)) if !h.trim().is_empty() => Ok(h.into_owned()),
            _ => Err(ImportError::Header {
                path: self.path.clone(),
                message: "the file is empty".into(),
            }),
        }
    }

    fn next_line(
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
    fn fields_are_split_on_bars_with_or_without_the_trailing_one() {
        let mut b = Vec::new();
        split_bounds("a|b||c|", &mut b);
        assert_eq!(b, vec![(0, 1), (2, 3), (4, 4), (5, 6)]);
        split_bounds("a|b||c", &mut b);
        assert_eq!(b, vec![(0, 1), (2, 3), (4, 4), (5, 6)]);
        split_bounds("", &mut b);
        assert_eq!(b, vec![(0, 0)]);
    }

    #[test]
    fn cedex_labels_give_their_town() {
        assert_eq!(cedex_town("68800 THANN CEDEX"), "THANN");
        assert_eq!(cedex_town("75015 PARIS"), "PARIS");
        assert_eq!(cedex_town("68100 MULHOUSE CEDEX 2"), "MULHOUSE");
        assert_eq!(cedex_town(""), "");
    }

    #[test]
    fn windows_1252_lines_are_read() {
        assert_eq!(windows_1252(b"Pr\xe9nom \x80 \x9c"), "Prénom € œ");
    }

    #[test]
    fn communes_match_whatever_the_case_and_accents() {
        let mut c = Communes::new(&["Saint-Amarin".into(), "Thann".into(), "THANN".into()]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.find("SAINT AMARIN"), Some(0));
        assert_eq!(c.find("saint-amarin"), Some(0));
        assert_eq!(c.find("THANN"), Some(1));
        assert_eq!(c.find("Thannenkirch"), None);
    }
}
