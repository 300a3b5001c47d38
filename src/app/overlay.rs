//! The effective configuration (SPEC §15): the files with the decided
//! swaps folded into the rosters' assignments, which [`App::config`]
//! answers, and the index of the personal pages' tokens.
//!
//! [`App::config`]: super::App::config

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
    /// professionals of `file`; the whole token is then checked in
    /// constant time.
    pub index: Arc<TokenIndex>,
}

/// The first 32 bits of every professional's personal and calendar
/// tokens, each with the professional's position in the directory, sorted:
/// 8 bytes per token (a map of strings to lists of ids took about 230, 4.6
/// MB of a 20 MB daemon for a directory of 10 000).
pub(super) struct TokenIndex(Vec<(u32, u32)>);

impl TokenIndex {
    fn build(file: &ConfigSet, links: &crate::engine::links::LinkSigner) -> TokenIndex {
        let mut index = Vec::with_capacity(2 * file.directory.professionals.len());
        for (i, p) in file.directory.professionals.iter().enumerate() {
            for t in [links.personal_token(&p.id), links.calendar_token(&p.id)] {
                if let (Some(prefix), Ok(i)) = (prefix(&t), u32::try_from(i)) {
                    index.push((prefix, i));
                }
            }
        }
        index.sort_unstable();
        TokenIndex(index)
    }

    /// The positions in the directory of the professionals with a token
    /// that starts as `token` does (the first 8 hex digits).
    pub fn candidates(&self, token: &str) -> impl Iterator<Item = usize> + '_ {
        let found: &[(u32, u32)] = match prefix(token) {
            Some(p) => {
                let from = self.0.partition_point(|&(q, _)| q < p);
                let to = from + self.0[from..].partition_point(|&(q, _)| q == p);
                &self.0[from..to]
            }
            None => &[],
        };
        found.iter().map(|&(_, i)| i as usize)
    }
}

/// The number written by the first 8 hex digits of `token`, in lower case
/// as tokens are written (a token in capitals is nobody's, as before).
fn prefix(token: &str) -> Option<u32> {
    let head = token.get(..8)?;
    head.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then(|| u32::from_str_radix(head, 16).ok())
        .flatten()
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
            None => Arc::new(TokenIndex::build(file, app_links)),
        };
        Overlay {
            file: file.clone(),
            set,
            swaps: Arc::new(swaps),
            index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_finds_every_professional_whose_token_starts_the_same() {
        let mut index = TokenIndex(vec![
            (0xdead_beef, 4),
            (0x0000_0001, 0),
            (0xdead_beef, 2),
            (0xffff_ffff, 7),
        ]);
        index.0.sort_unstable();
        let found = |t: &str| index.candidates(t).collect::<Vec<_>>();
        assert_eq!(found("deadbeef00112233"), [2, 4]);
        assert!(found("DEADBEEF00112233").is_empty());
        assert_eq!(found("00000001ab"), [0]);
        assert_eq!(found("ffffffff"), [7]);
        assert!(found("deadbeee").is_empty());
        // Not a token: too short, not hex, a sign that parsing would take.
        assert!(found("dead").is_empty());
        assert!(found("deadbeeg00").is_empty());
        assert!(found("+eadbeef").is_empty());
        assert!(found("épée").is_empty());
    }
}
