//! The effective configuration (SPEC §15): the files with the decided
//! swaps folded into the rosters' assignments, which [`App::config`]
//! answers, and the index of the personal pages' tokens.
//!
//! [`App::config`]: super::App::config

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::ConfigSet;
use crate::roster::swaps::{self as rs, Swap};
use crate::store::swaps::SwapRow;

/// The configuration with the swaps folded in, and what derives from it.
#[derive(Clone)]
pub(super) struct Overlay {
    /// The effective set ([`super::App::config`]).
    pub set: Arc<ConfigSet>,
    /// The swaps applied, in decision order.
    pub swaps: Arc<Vec<Swap>>,
    /// The files it was built on.
    pub file: Arc<ConfigSet>,
    /// Personal and calendar tokens by their first 8 hex digits →
    /// professional ids;
    /// the whole token is then checked in constant time.
    pub index: Arc<HashMap<String, Vec<String>>>,
}

impl Overlay {
    /// The overlay of `file` with the swaps of `rows`; the token index of
    /// `previous` is kept when it was built on the same files (a swap does
    /// not change the directory: no HMAC per professional per swap).
    pub fn build(
        file: &Arc<ConfigSet>,
        rows: &[SwapRow],
        app_links: &crate::engine::links::LinkSigner,
        previous: Option<&Overlay>,
    ) -> Overlay {
        let swaps: Vec<Swap> = rows
            .iter()
            .filter_map(|r| {
                Some(Swap {
                    roster: r.roster.clone(),
                    date: r.date,
                    shift: r.shift.clone(),
                    from: r.requester.clone(),
                    to: r.taker.clone()?,
                })
            })
            .collect();
        let set = if swaps.is_empty() {
            file.clone()
        } else {
            Arc::new(rs::apply(file, &swaps).0)
        };
        let index = match previous.filter(|o| Arc::ptr_eq(&o.file, file)) {
            Some(o) => o.index.clone(),
            None => {
                let mut index: HashMap<String, Vec<String>> = HashMap::new();
                for p in &file.directory.professionals {
                    for t in [
                        app_links.personal_token(&p.id),
                        app_links.calendar_token(&p.id),
                    ] {
                        index
                            .entry(t[..8].to_string())
                            .or_default()
                            .push(p.id.clone());
                    }
                }
                Arc::new(index)
            }
        };
        Overlay {
            file: file.clone(),
            set,
            swaps: Arc::new(swaps),
            index,
        }
    }
}
