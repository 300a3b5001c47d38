//! Selectors: who a plan step, roster or reminder is for (SPEC §1).
//!
//! A selector is a table of optional keys, AND between keys, OR inside a
//! list. Matching happens in [`crate::config::directory`], which owns the
//! professionals and the groups.

use super::diag::{Loc, Located};
use super::reader::{Table, TableOrList};

#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub professions: Vec<Located<String>>,
    pub communes: Vec<Located<String>>,
    pub roles: Vec<Located<String>>,
    pub tags: Vec<Located<String>>,
    pub ids: Vec<Located<String>>,
    /// Names of directory groups.
    pub groups: Vec<Located<String>>,
    /// Roster ids: whoever is on shift when the selector is evaluated.
    pub on_call: Vec<Located<String>>,
    pub all: bool,
    pub loc: Option<Loc>,
}

impl Selector {
    /// Reads a selector table; reports unknown keys and an empty selector.
    pub fn read(t: Table<'_, '_>) -> Selector {
        let list = |k: &str| t.str_list(k).unwrap_or_default();
        let sel = Selector {
            professions: list("professions"),
            communes: list("communes"),
            roles: list("roles"),
            tags: list("tags"),
            ids: list("ids"),
            groups: list("groups"),
            on_call: list("on_call"),
            all: t.bool("all").map(|b| b.value).unwrap_or(false),
            loc: Some(t.loc()),
        };
        if sel.is_empty() {
            t.ctx().error(
                &t.loc(),
                format!(
                    "{} selects nobody: give at least one of professions, communes, roles, \
                     tags, ids, groups, on_call, or all = true",
                    t.name()
                ),
            );
        }
        t.finish();
        sel
    }

    /// A selector written as a list of group names: `["bureau", "officines"]`.
    pub fn of_groups(names: Vec<Located<String>>, loc: Loc) -> Selector {
        Selector {
            groups: names,
            loc: Some(loc),
            ..Selector::default()
        }
    }

    /// Reads a key that is either a selector table or a list of group names.
    pub fn read_key(t: &Table<'_, '_>, key: &str) -> Option<Selector> {
        let loc = t.value_loc(key)?;
        match t.table_or_list(key)? {
            TableOrList::Table(inner) => Some(Selector::read(inner)),
            TableOrList::List(names) => {
                if names.is_empty() {
                    t.ctx()
                        .error(&loc, format!("`{key}` in {} names no group", t.name()));
                }
                Some(Selector::of_groups(names, loc))
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.all
            && self.professions.is_empty()
            && self.communes.is_empty()
            && self.roles.is_empty()
            && self.tags.is_empty()
            && self.ids.is_empty()
            && self.groups.is_empty()
            && self.on_call.is_empty()
    }
}
