//! The directory of professionals and its named groups (SPEC §3), from TOML
//! or CSV, and the matching of selectors against it.
//!
//! This module owns who is who. It never sends anything and never reads the
//! rosters' files: on-call resolution is given to it as a function.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::diag::{Diagnostics, Loc, Located, SourceText};
use super::reader::{Ctx, Table};
use super::selector::Selector;
use chrono::NaiveDate;

use crate::model::{EmailAddress, Period, Phone, Rpps, RppsCheck, Season, fold_eq, parse_slug};

#[derive(Clone, Debug)]
pub struct Professional {
    pub id: String,
    pub name: String,
    pub profession: String,
    pub specialty: Option<String>,
    pub rpps: Option<Rpps>,
    pub commune: String,
    pub structure: Option<String>,
    pub email: Option<EmailAddress>,
    /// The MSSanté secure mailbox, for the e-mail channels with
    /// `address = "mssante"`.
    pub mssante: Option<EmailAddress>,
    pub phone: Option<Phone>,
    pub roles: Vec<String>,
    pub tags: Vec<String>,
    pub active: bool,
    /// The days the professional is there (`available_from`,
    /// `available_until`, `season`): outside them they are not alerted,
    /// not eligible for a shift and not reminded.
    pub available: Period,
    pub loc: Loc,
}

#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub professionals: Vec<Professional>,
    pub groups: BTreeMap<String, Selector>,
    /// Professions the CPTS adds to those Vigie knows (`[directory]
    /// extra_professions`, see [`super::professions`]).
    pub extra_professions: Vec<String>,
    /// Indexes of `professionals`, sorted by id (no copy of the ids: the
    /// directory is most of what the daemon keeps in memory).
    by_id: Vec<u32>,
}

/// Who is on shift for a roster id at the moment a selector is evaluated.
pub type OnCall<'a> = &'a dyn Fn(&str) -> Vec<String>;

impl Professional {
    /// Active and inside their availability on `date`.
    pub fn present_on(&self, date: NaiveDate) -> bool {
        self.active && self.available.contains(date)
    }

    /// The address a per-recipient channel needs (the e-mail for `email`,
    /// the phone for a webhook such as an SMS gateway), or the reason, in
    /// French for the pages, why there is none. An `[email.NAME]` channel
    /// says its field with [`Self::contact`].
    pub fn contact_for(&self, channel: &str) -> Result<String, &'static str> {
        if channel == "email" {
            self.contact(Contact::Email)
        } else {
            self.contact(Contact::Phone)
        }
    }

    /// The address in one field of the directory, or the reason, in French
    /// for the pages, why there is none.
    pub fn contact(&self, field: Contact) -> Result<String, &'static str> {
        match field {
            Contact::Email => self
                .email
                .as_ref()
                .map(|e| e.as_str().to_string())
                .ok_or("pas d'adresse e-mail dans l'annuaire"),
            Contact::Mssante => self
                .mssante
                .as_ref()
                .map(|e| e.as_str().to_string())
                .ok_or("pas de messagerie MSSanté dans l'annuaire"),
            Contact::Phone => self
                .phone
                .as_ref()
                .map(|p| p.as_str().to_string())
                .ok_or("pas de numéro de téléphone dans l'annuaire"),
        }
    }
}

/// The directory field a channel delivers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    Email,
    Mssante,
    Phone,
}

impl Directory {
    pub fn get(&self, id: &str) -> Option<&Professional> {
        let i = self
            .by_id
            .binary_search_by(|&i| self.professionals[i as usize].id.as_str().cmp(id))
            .ok()?;
        Some(&self.professionals[self.by_id[i] as usize])
    }

    /// The active professionals a selector matches, in directory order,
    /// whatever their availability (for the checks that look at every day).
    pub fn select(&self, sel: &Selector, on_call: OnCall<'_>) -> Vec<&Professional> {
        self.select_where(sel, on_call, &|p| p.active)
    }

    /// The professionals a selector matches who are there on `date` (active
    /// and inside their availability): who an alert or a reminder reaches.
    pub fn select_on(
        &self,
        sel: &Selector,
        on_call: OnCall<'_>,
        date: NaiveDate,
    ) -> Vec<&Professional> {
        self.select_where(sel, on_call, &|p| p.present_on(date))
    }

    fn select_where(
        &self,
        sel: &Selector,
        on_call: OnCall<'_>,
        keep: &dyn Fn(&Professional) -> bool,
    ) -> Vec<&Professional> {
        // Each roster the selector names (its groups' included) asked once
        // for this selection, not once per professional.
        let mut rosters = Vec::new();
        self.on_call_rosters(sel, &mut rosters, 0);
        let asked: HashMap<&str, Vec<String>> =
            rosters.iter().map(|r| (r.as_str(), on_call(r))).collect();
        let cached = |r: &str| asked.get(r).cloned().unwrap_or_else(|| on_call(r));
        let on_call_ids: Option<HashSet<String>> = (!sel.on_call.is_empty())
            .then(|| sel.on_call.iter().flat_map(|r| cached(&r.value)).collect());
        // Someone on call now (through this selector or a group it names)
        // is there: the roster judged their presence by the day the shift
        // starts (a night shift begun on the last day of a season runs past
        // midnight), and `on_call` only names those present that day.
        let on_shift_ids: HashSet<&str> = asked.values().flatten().map(String::as_str).collect();
        let on_shift = |p: &Professional| p.active && on_shift_ids.contains(p.id.as_str());
        self.professionals
            .iter()
            .filter(|p| {
                (keep(p) || on_shift(p)) && self.matches(sel, p, on_call_ids.as_ref(), &cached, 0)
            })
            .collect()
    }

    /// The rosters whose on-call people a selector names, its groups'
    /// included.
    fn on_call_rosters(&self, sel: &Selector, out: &mut Vec<String>, depth: usize) {
        out.extend(sel.on_call.iter().map(|r| r.value.clone()));
        if depth <= 16 {
            for g in &sel.groups {
                if let Some(gs) = self.groups.get(&g.value) {
                    self.on_call_rosters(gs, out, depth + 1);
                }
            }
        }
    }

    fn matches(
        &self,
        sel: &Selector,
        p: &Professional,
        on_call_ids: Option<&HashSet<String>>,
        on_call: OnCall<'_>,
        depth: usize,
    ) -> bool {
        let any = |list: &[Located<String>], f: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|v| f(&v.value))
        };
        let ok = any(&sel.professions, &|v| v == p.profession)
            && any(&sel.communes, &|v| fold_eq(v, &p.commune))
            && any(&sel.roles, &|v| p.roles.iter().any(|r| r == v))
            && any(&sel.tags, &|v| p.tags.iter().any(|t| t == v))
            && any(&sel.ids, &|v| v == p.id)
            && on_call_ids.is_none_or(|ids| ids.contains(&p.id));
        if !ok {
            return false;
        }
        // Groups nest; cycles are refused at load, the depth bound is a guard.
        if depth > 16 {
            return false;
        }
        sel.groups.is_empty()
            || sel.groups.iter().any(|g| {
                self.groups.get(&g.value).is_some_and(|gs| {
                    let ids: Option<HashSet<String>> = (!gs.on_call.is_empty())
                        .then(|| gs.on_call.iter().flat_map(|r| on_call(&r.value)).collect());
                    self.matches(gs, p, ids.as_ref(), on_call, depth + 1)
                })
            })
    }

    /// Group names referenced by the groups that do not exist, and cycles.
    pub fn check_groups(&self, diags: &mut Diagnostics) {
        for (name, sel) in &self.groups {
            for g in &sel.groups {
                if !self.groups.contains_key(&g.value) {
                    diags.error(&g.loc, unknown_group(&g.value, self));
                }
            }
            let mut seen = vec![name.as_str()];
            if let Some(loc) = self.cycle_from(name, &mut seen) {
                diags.error(
                    &loc,
                    format!(
                        "group `{name}` includes itself through {}",
                        seen.join(" → ")
                    ),
                );
            }
        }
    }

    /// The professions a selector names must be known (or added).
    pub fn check_professions(&self, sel: &Selector, diags: &mut Diagnostics) {
        for p in &sel.professions {
            if let Err(e) = super::professions::check(&p.value, &self.extra_professions) {
                diags.error(&p.loc, e);
            }
        }
    }

    fn cycle_from<'a>(&'a self, name: &str, path: &mut Vec<&'a str>) -> Option<Loc> {
        let sel = self.groups.get(name)?;
        for g in &sel.groups {
            if path.first() == Some(&g.value.as_str()) {
                path.push(&g.value);
                return Some(g.loc.clone());
            }
            if path.contains(&g.value.as_str()) {
                continue;
            }
            path.push(&g.value);
            if let Some(loc) = self.cycle_from(&g.value, path) {
                return Some(loc);
            }
            path.pop();
        }
        None
    }

    fn index(&mut self, diags: &mut Diagnostics) {
        // Loaded once, kept for the daemon's life: no spare capacity.
        self.professionals.shrink_to_fit();
        let pros = &self.professionals;
        let mut order: Vec<u32> = (0..pros.len() as u32).collect();
        // Stable: of two professionals with the same id, the first in the
        // file comes first and is the one `get` finds.
        order.sort_by(|&a, &b| pros[a as usize].id.cmp(&pros[b as usize].id));
        let mut by_id = Vec::with_capacity(order.len());
        for w in 0..order.len() {
            let p = &pros[order[w] as usize];
            match by_id.last() {
                Some(&first) if pros[first as usize].id == p.id => {
                    let other = &pros[first as usize].loc;
                    diags.error(
                        &p.loc,
                        format!("duplicate professional id `{}` (first at {other})", p.id),
                    );
                }
                _ => by_id.push(order[w]),
            }
        }
        self.by_id = by_id;
    }
}

/// The message for a group name that does not exist, with the known ones.
pub fn unknown_group(name: &str, dir: &Directory) -> String {
    let known: Vec<&str> = dir.groups.keys().map(String::as_str).collect();
    let hint = super::diag::did_you_mean(name, known.iter().copied());
    format!(
        "unknown group `{name}`{hint} (directory groups: {})",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Loads the directory from a `.toml` or `.csv` file.
pub fn load(
    path: &Path,
    extra_professions: &[Located<String>],
    diags: &mut Diagnostics,
) -> Option<Directory> {
    let src = super::source::read_source(path, "directory", diags)?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // Those of vigie.toml first: the rows are checked against them.
    let mut extra = Vec::new();
    for p in extra_professions {
        match parse_slug(&p.value, "profession") {
            Ok(()) => extra.push(p.value.clone()),
            Err(e) => diags.error(&p.loc, e),
        }
    }
    let mut dir = if is_csv {
        load_csv(&src, extra, diags)?
    } else {
        load_toml(&src, extra, diags)?
    };
    dir.index(diags);
    dir.check_groups(diags);
    Some(dir)
}

fn load_toml(src: &SourceText, extra: Vec<String>, diags: &mut Diagnostics) -> Option<Directory> {
    let ctx = Ctx::new(src);
    let doc = ctx.parse();
    let mut dir = Directory {
        extra_professions: extra,
        ..Directory::default()
    };
    if let Some(doc) = &doc {
        let root = Table::root(&ctx, doc);
        if let Some(t) = root.table("directory") {
            for p in t.str_list("extra_professions").unwrap_or_default() {
                match parse_slug(&p.value, "profession") {
                    Ok(()) => dir.extra_professions.push(p.value),
                    Err(e) => ctx.error(&p.loc, e),
                }
            }
            t.finish();
        }
        let mut phones = HashMap::new();
        for t in root.tables("professional") {
            let loc = t.loc();
            let field = |k: &str| t.str(k).map(|v| (v.value, v.loc));
            let raw = RawProfessional {
                id: t.req_str("id").map(|v| (v.value, v.loc)),
                name: t.req_str("name").map(|v| (v.value, v.loc)),
                profession: t.req_str("profession").map(|v| (v.value, v.loc)),
                specialty: field("specialty"),
                rpps: field("rpps"),
                commune: t.req_str("commune").map(|v| (v.value, v.loc)),
                structure: field("structure"),
                email: field("email"),
                mssante: field("mssante"),
                phone: field("phone"),
                roles: t.str_list("roles").unwrap_or_default(),
                tags: t.str_list("tags").unwrap_or_default(),
                active: t.bool("active").map(|b| b.value).unwrap_or(true),
                available: super::roster::read_period(&t, "available_from", "available_until"),
            };
            t.finish();
            let phone_at = raw.phone.as_ref().map(|p| p.1.clone());
            if let Some(p) = raw.build(loc, &ctx, &dir.extra_professions) {
                shared_phone(&mut phones, &p, phone_at, &ctx);
                dir.professionals.push(p);
            }
        }
        for (name, t) in root.entries("group") {
            if let Err(e) = parse_slug(&name.value, "group name") {
                ctx.error(&name.loc, e);
            }
            dir.groups.insert(name.value, Selector::read(t));
        }
        root.finish();
        if dir.professionals.is_empty() {
            ctx.warning(
                &src.loc(0),
                "the directory lists no professional ([[professional]])",
            );
        }
    }
    merge(diags, ctx.into_diagnostics());
    doc.map(|_| dir)
}

pub(crate) fn merge(into: &mut Diagnostics, from: Diagnostics) {
    for d in from.iter() {
        match d.severity {
            super::diag::Severity::Error => into.error(&d.loc, d.message.clone()),
            super::diag::Severity::Warning => into.warning(&d.loc, d.message.clone()),
        }
    }
}

/// Warns at the `phone` of active professional `p` when an active one
/// before them has the same number: an answer by SMS from it cannot say
/// who wrote it (SPEC §14).
fn shared_phone(
    seen: &mut HashMap<String, (String, Loc)>,
    p: &Professional,
    at: Option<Loc>,
    ctx: &Ctx<'_>,
) {
    let (true, Some(phone), Some(at)) = (p.active, &p.phone, at) else {
        return;
    };
    match seen.get(phone.as_str()) {
        Some((first, first_at)) => ctx.warning(
            &at,
            format!(
                "phone {} is also `{first}`'s (at {first_at}): an answer by SMS from it goes to \
                 whichever of them the event texted, and is not recorded if it texted both",
                phone.as_str()
            ),
        ),
        None => {
            seen.insert(phone.as_str().to_string(), (p.id.clone(), at));
        }
    }
}

struct RawProfessional {
    id: Option<(String, Loc)>,
    name: Option<(String, Loc)>,
    profession: Option<(String, Loc)>,
    specialty: Option<(String, Loc)>,
    rpps: Option<(String, Loc)>,
    commune: Option<(String, Loc)>,
    structure: Option<(String, Loc)>,
    email: Option<(String, Loc)>,
    mssante: Option<(String, Loc)>,
    phone: Option<(String, Loc)>,
    roles: Vec<Located<String>>,
    tags: Vec<Located<String>>,
    active: bool,
    available: Period,
}

impl RawProfessional {
    fn build(self, loc: Loc, ctx: &Ctx<'_>, extra: &[String]) -> Option<Professional> {
        let mut ok = true;
        let mut check = |r: Result<(), String>, at: &Loc| {
            if let Err(e) = r {
                ctx.error(at, e);
                ok = false;
            }
        };
        if let Some((id, at)) = &self.id {
            check(parse_slug(id, "professional id"), at);
        }
        if let Some((p, at)) = &self.profession {
            // A known profession is a slug; an unknown one, slug or not
            // (`sage-femme`), gets the profession meant.
            check(super::professions::check(p, extra), at);
        }
        for (what, v) in [("name", &self.name), ("commune", &self.commune)] {
            if let Some((s, at)) = v
                && s.trim().is_empty()
            {
                check(Err(format!("`{what}` is empty")), at);
            }
        }
        let mut address = |v: &Option<(String, Loc)>| {
            v.as_ref()
                .filter(|(e, _)| !e.is_empty())
                .and_then(|(e, at)| EmailAddress::parse(e).map_err(|m| check(Err(m), at)).ok())
        };
        let email = address(&self.email);
        let mssante = address(&self.mssante);
        let phone = self
            .phone
            .as_ref()
            .filter(|(p, _)| !p.is_empty())
            .and_then(|(p, at)| Phone::parse(p).map_err(|m| check(Err(m), at)).ok());
        let rpps =
            self.rpps.as_ref().filter(|(r, _)| !r.is_empty()).and_then(
                |(r, at)| match Rpps::parse(r) {
                    Ok((rpps, RppsCheck::Valid)) => Some(rpps),
                    Ok((rpps, RppsCheck::LuhnMismatch)) => {
                        ctx.warning(
                            at,
                            format!("RPPS \"{r}\" fails the Luhn check: is it mistyped?"),
                        );
                        Some(rpps)
                    }
                    Err(m) => {
                        check(Err(m), at);
                        None
                    }
                },
            );
        let p = Professional {
            id: self.id?.0,
            name: self.name?.0,
            profession: self.profession?.0,
            specialty: self.specialty.map(|v| v.0),
            rpps,
            commune: self.commune?.0,
            structure: self.structure.map(|v| v.0),
            email,
            mssante,
            phone,
            // Not collected in place: that would keep the larger
            // allocation of the located values for the daemon's life.
            roles: exact(self.roles),
            tags: exact(self.tags),
            active: self.active,
            available: self.available,
            loc,
        };
        ok.then_some(p)
    }
}

/// The values of a list, in a vector of their own size.
fn exact(list: Vec<Located<String>>) -> Vec<String> {
    let mut v = Vec::with_capacity(list.len());
    v.extend(list.into_iter().map(|l| l.value));
    v
}

const CSV_FIELDS: &[&str] = &[
    "id",
    "name",
    "profession",
    "specialty",
    "rpps",
    "commune",
    "structure",
    "email",
    "mssante",
    "phone",
    "roles",
    "tags",
    "active",
    "available_from",
    "available_until",
    "season",
];

/// CSV form: a header row with the TOML field names, list fields separated
/// by `;` (or `,` inside a cell). Groups cannot be written in CSV: a CSV
/// directory has none. The separator of the cells is `,`, or `;` when the
/// header row has more `;` than `,` (what a French spreadsheet writes); a
/// byte-order mark at the start is skipped.
fn load_csv(src: &SourceText, extra: Vec<String>, diags: &mut Diagnostics) -> Option<Directory> {
    let ctx = Ctx::new(src);
    let bom = if src.text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let body = &src.text[bom..];
    let delimiter = super::diag::csv_delimiter(body);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            diags.error(&src.loc(0), format!("CSV error: {e}"));
            return None;
        }
    };
    let mut columns = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !CSV_FIELDS.contains(&h) {
            ctx.error(
                &src.loc(0),
                format!("unknown column `{h}` in the CSV header"),
            );
        }
        columns.insert(h.to_string(), i);
    }
    for required in ["id", "name", "profession", "commune"] {
        if !columns.contains_key(required) {
            ctx.error(
                &src.loc(0),
                format!("missing required column `{required}` in the CSV header"),
            );
        }
    }
    let mut dir = Directory {
        extra_professions: extra,
        ..Directory::default()
    };
    let mut phones = HashMap::new();
    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let offset = bom + e.position().map(|p| p.byte() as usize).unwrap_or(0);
                ctx.error(&src.loc(offset), format!("CSV error: {e}"));
                continue;
            }
        };
        let start =
            src.csv_record_start(bom + record.position().map(|p| p.byte() as usize).unwrap_or(0));
        let loc = src.loc(start);
        let cell = |name: &str| -> Option<(String, Loc)> {
            let i = *columns.get(name)?;
            let v = record.get(i)?.to_string();
            // Column of the cell: count the fields before it on the line.
            let col_loc = src.csv_cell_loc(start, i, delimiter);
            (!v.is_empty()).then_some((v, col_loc))
        };
        let required = |name: &str| {
            let v = cell(name);
            if v.is_none() && columns.contains_key(name) {
                ctx.error(&loc, format!("missing value for `{name}`"));
            }
            v
        };
        let list = |name: &str| -> Vec<Located<String>> {
            cell(name)
                .map(|(v, at)| {
                    v.split([';', ','])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Located::new(s.to_string(), at.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let active = match cell("active") {
            None => true,
            Some((v, at)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "oui" | "yes" => true,
                "false" | "0" | "non" | "no" => false,
                _ => {
                    ctx.error(
                        &at,
                        format!("`active` must be true or false, found \"{v}\""),
                    );
                    true
                }
            },
        };
        let date = |name: &str| {
            cell(name).and_then(|(v, at)| {
                NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map_err(|_| {
                        ctx.error(
                            &at,
                            format!("`{name}` must be a date written YYYY-MM-DD, found \"{v}\""),
                        )
                    })
                    .ok()
                    .map(|d| (d, at))
            })
        };
        let from = date("available_from");
        let until = date("available_until");
        if let (Some((f, _)), Some((u, at))) = (&from, &until)
            && f > u
        {
            ctx.error(
                at,
                format!(
                    "`available_until` ({u}) is before `available_from` ({f}): nothing would be left"
                ),
            );
        }
        let season = cell("season")
            .and_then(|(v, at)| Season::parse(&v).map_err(|e| ctx.error(&at, e)).ok());
        let raw = RawProfessional {
            available: Period {
                from: from.map(|d| d.0),
                until: until.map(|d| d.0),
                season,
            },
            id: required("id"),
            name: required("name"),
            profession: required("profession"),
            specialty: cell("specialty"),
            rpps: cell("rpps"),
            commune: required("commune"),
            structure: cell("structure"),
            email: cell("email"),
            mssante: cell("mssante"),
            phone: cell("phone"),
            roles: list("roles"),
            tags: list("tags"),
            active,
        };
        let phone_at = raw.phone.as_ref().map(|p| p.1.clone());
        if let Some(p) = raw.build(loc, &ctx, &dir.extra_professions) {
            shared_phone(&mut phones, &p, phone_at, &ctx);
            dir.professionals.push(p);
        }
    }
    merge(diags, ctx.into_diagnostics());
    Some(dir)
}
