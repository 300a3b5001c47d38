//! Rosters the professionals keep themselves (SPEC §15), as the app
//! does them: the effective configuration (the files with the decided
//! swaps folded in, what [`App::config`] answers, so the roster check, the
//! calendars, the `on_call` selector and the shift reminders all follow),
//! the personal pages' tokens, and the swap operations. Each operation
//! writes its request row and the messages it sends in one transaction.
//!
//! # Rules where SPEC is silent
//! - Every active professional of the directory has a personal page; an
//!   inactive one's link answers 404, like a forged one.
//! - Only a shift that has not started can be offered; a request can be
//!   cancelled while nobody took it. The taker must still be a candidate
//!   (eligible, active, there that day, free) when they take.
//! - The roster's `notify` is its `check.notify` (nobody when the roster
//!   has no scheduled check). It is told of every swap, asked to approve
//!   with `swap_approval = true`, and alerted once when a request is still
//!   open 48 h before its shift ([`SWAP_ALERT`]).
//! - A refused approval puts the request back to open for another taker
//!   (not the refused one: the audit log's `swap.refuse` rows say who) and
//!   tells the other candidates again. A pending take keeps its taker busy
//!   at that time; approving runs the take's checks again.
//! - The errors' messages are in French: the personal pages show them.
//! - Takes and approvals run one at a time in the daemon (each checks that
//!   the taker is free against the swaps decided before it); the first
//!   taker wins by the database's conditional update in any case.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::App;
use super::overlay::Overlay;
use crate::config::{ConfigSet, Roster};
use crate::engine::EngineError;
use crate::roster::Occurrence;
use crate::roster::swaps::{self as rs, Swap};
use crate::store::outbox;
use crate::store::swaps::{self as q, SwapRow};

mod links;
mod mails;

/// An open request this close to its shift alerts the roster's `notify`.
pub const SWAP_ALERT: chrono::Duration = chrono::Duration::hours(48);
/// How far ahead a personal page shows shifts.
pub const PERSONAL_DAYS: u32 = 60;

/// A shift on someone's personal page.
#[derive(Clone, Debug)]
pub struct PersonalShift {
    pub roster: String,
    pub roster_title: String,
    pub occ: Occurrence,
    /// Their live request for it (open or pending), if any.
    pub request: Option<SwapRow>,
}

/// An open request a professional may take.
#[derive(Clone, Debug)]
pub struct Offer {
    pub request: SwapRow,
    pub roster_title: String,
    pub occ: Occurrence,
    pub requester_name: String,
}

/// What a personal page shows.
#[derive(Clone, Debug)]
pub struct PersonalView {
    pub id: String,
    pub name: String,
    pub shifts: Vec<PersonalShift>,
    pub offers: Vec<Offer>,
    /// Their read-only calendar (`/c/{calendar token}.ics`).
    pub calendar_url: String,
    /// The page's own address.
    pub url: String,
}

/// What taking a request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// The shift is theirs now.
    Done,
    /// Theirs once the bureau approves.
    Pending,
}

fn not_found() -> EngineError {
    EngineError::NotFound("lien personnel inconnu".into())
}

/// The takes of `rows` waiting for the bureau (their takers are busy
/// meanwhile), the request `except` aside.
fn pending_of(rows: &[SwapRow], except: Option<i64>) -> Vec<Swap> {
    rows.iter()
        .filter(|r| r.state == q::PENDING && Some(r.id) != except)
        .filter_map(|r| {
            Some(Swap {
                roster: r.roster.clone(),
                date: r.date,
                shift: r.shift.clone(),
                from: r.requester.clone(),
                to: r.taker.clone()?,
            })
        })
        .collect()
}

impl App {
    async fn pending_takes(&self, except: Option<i64>) -> Result<Vec<Swap>, EngineError> {
        let rows = self.store.call(|c| q::in_states(c, &[q::PENDING])).await?;
        Ok(pending_of(&rows, except))
    }

    /// Whether `row` may still count (the take checks, run again when the
    /// bureau approves): the shift has not started, the requester is still
    /// on it, the taker is still a candidate.
    fn still_takeable(
        &self,
        set: &ConfigSet,
        row: &SwapRow,
        taker: &str,
        pending: &[Swap],
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let (roster, occ) = self
            .occurrence(set, row)
            .ok_or_else(|| EngineError::Invalid("cette garde n'existe plus au planning".into()))?;
        if occ.start <= now {
            return Err(EngineError::Invalid("cette garde a déjà commencé".into()));
        }
        if !occ.assignees.contains(&row.requester) {
            return Err(EngineError::Invalid(
                "le demandeur n'est plus de garde sur ce créneau (planning modifié)".into(),
            ));
        }
        if !rs::candidates(set, roster, &occ, &row.requester, pending)
            .iter()
            .any(|c| c.id == taker)
        {
            return Err(EngineError::Invalid(
                "le remplaçant ne peut pas prendre cette garde (hors du planning, absent ce jour-là ou déjà de garde à cette heure)".into(),
            ));
        }
        Ok(())
    }

    /// Reads the decided swaps and rebuilds the effective configuration
    /// (after a reload, and after each swap that counts).
    pub async fn refresh_swaps(&self) -> Result<(), crate::store::StoreError> {
        let _g = self.overlay_lock.lock().await;
        let rows = self.store.call(|c| q::done(c)).await?;
        let file = self.file_config();
        // Built outside the lock: readers keep the old one meanwhile.
        let previous = self
            .overlay
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let o = Overlay::build(&file, &rows, &self.links, Some(&previous));
        *self.overlay.write().unwrap_or_else(|e| e.into_inner()) = o;
        Ok(())
    }

    /// The swaps in effect, in decision order.
    pub fn swaps(&self) -> Arc<Vec<Swap>> {
        self.overlay
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .swaps
            .clone()
    }

    /// What `token`'s personal page shows now.
    pub async fn personal(&self, token: &str) -> Result<PersonalView, EngineError> {
        let me = self.owner(token)?;
        let set = self.config();
        let now = self.clock.now();
        let today = now.with_timezone(&set.daemon.timezone).date_naive();
        let live = self
            .store
            .call(|c| q::in_states(c, &[q::OPEN, q::PENDING]))
            .await?;
        let pending = pending_of(&live, None);
        let refused = self.store.call(|c| q::refusals(c)).await?;
        let p = set.directory.get(&me).ok_or_else(not_found)?;
        let title = |id: &str| {
            set.roster(id)
                .map(|r| r.title.clone())
                .unwrap_or_else(|| id.to_string())
        };
        // From yesterday: a night shift begun then still runs.
        let shifts = rs::shifts_of(&set, &me, today - chrono::Days::new(1), PERSONAL_DAYS + 1)
            .into_iter()
            .filter(|o| o.end > now)
            .map(|occ| PersonalShift {
                roster: occ.roster.clone(),
                roster_title: title(&occ.roster),
                request: live
                    .iter()
                    .find(|r| {
                        r.requester == me
                            && r.roster == occ.roster
                            && r.date == occ.date
                            && r.shift == occ.shift
                    })
                    .cloned(),
                occ,
            })
            .collect();
        let mut offers = Vec::new();
        for r in live
            .iter()
            .filter(|r| r.state == q::OPEN && r.requester != me)
        {
            let Some((roster, occ)) = self.occurrence(&set, r) else {
                continue;
            };
            // Started, or the file no longer puts the requester there.
            if occ.start <= now
                || !occ.assignees.contains(&r.requester)
                || refused.iter().any(|(i, w)| *i == r.id && *w == me)
            {
                continue;
            }
            if rs::candidates(&set, roster, &occ, &r.requester, &pending)
                .iter()
                .any(|c| c.id == me)
            {
                offers.push(Offer {
                    request: r.clone(),
                    roster_title: roster.title.clone(),
                    requester_name: set
                        .directory
                        .get(&r.requester)
                        .map(|p| p.name.clone())
                        .unwrap_or_else(|| r.requester.clone()),
                    occ,
                });
            }
        }
        let url = self.personal_url(&me).unwrap_or_default();
        Ok(PersonalView {
            id: me.clone(),
            name: p.name.clone(),
            shifts,
            offers,
            calendar_url: format!(
                "{}/c/{}.ics",
                set.daemon.public_url.trim_end_matches('/'),
                self.links.calendar_token(&me)
            ),
            url,
        })
    }

    fn occurrence<'a>(&self, set: &'a ConfigSet, r: &SwapRow) -> Option<(&'a Roster, Occurrence)> {
        let roster = set.roster(&r.roster)?;
        let occ = rs::occurrence_on(set, roster, r.date, &r.shift)?;
        Some((roster, occ))
    }

    /// `token`'s holder asks for a replacement on one of their shifts: the
    /// request is recorded and every candidate gets a message with their
    /// own link, in one transaction; with how many were told. When nobody
    /// may take it, the roster's `notify` is told at once.
    pub async fn request_swap(
        &self,
        token: &str,
        roster_id: &str,
        date: NaiveDate,
        shift: &str,
    ) -> Result<(SwapRow, usize), EngineError> {
        let me = self.owner(token)?;
        let set = self.config();
        let now = self.clock.now();
        let roster = set
            .roster(roster_id)
            .ok_or_else(|| EngineError::Invalid(format!("aucun planning « {roster_id} »")))?;
        let occ = rs::occurrence_on(&set, roster, date, shift)
            .filter(|o| o.assignees.contains(&me))
            .ok_or_else(|| {
                EngineError::Invalid("vous n'êtes pas de garde sur ce créneau".into())
            })?;
        if occ.start <= now {
            return Err(EngineError::Invalid("cette garde a déjà commencé".into()));
        }
        let requester = set.directory.get(&me).ok_or_else(not_found)?;
        let pending = self.pending_takes(None).await?;
        let mut items = Vec::new();
        let candidates = rs::candidates(&set, roster, &occ, &me, &pending);
        for c in &candidates {
            let link = self.personal_url(&c.id).unwrap_or_default();
            items.extend(mails::request(
                &set,
                roster,
                &occ,
                c,
                &requester.name,
                &link,
            ));
        }
        let told = candidates.len();
        if told == 0 {
            // Nobody to ask: the bureau knows at once.
            for n in mails::notify_of(&set, roster, occ.date)
                .into_iter()
                .filter(|n| n.id != me)
            {
                items.extend(mails::nobody(&set, roster, &occ, n, &requester.name));
            }
        }
        let (rid, sh, me2) = (roster_id.to_string(), shift.to_string(), me.clone());
        let (row, n) = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let Some(id) = q::insert(&tx, &rid, date, &sh, &me2, now)? else {
                    return Ok((None, 0));
                };
                let n = outbox::insert(&tx, &items, now)?;
                crate::store::audit_row(
                    &tx,
                    now,
                    &format!("personal:{me2}"),
                    "swap.request",
                    &format!("{rid} {date} {sh} #{id}"),
                )?;
                let row = q::get(&tx, id)?;
                tx.commit()?;
                Ok((row, n))
            })
            .await?;
        self.written(n);
        let row = row.ok_or_else(|| {
            EngineError::Conflict("un remplaçant est déjà recherché pour cette garde".into())
        })?;
        Ok((row, told))
    }

    /// `token`'s holder takes an open request: the first taker wins; a
    /// later one gets [`EngineError::Conflict`]. The requester and the
    /// roster's `notify` are told in the same transaction (the taker reads
    /// the outcome on the page).
    pub async fn take_swap(&self, token: &str, request: i64) -> Result<Taken, EngineError> {
        let me = self.owner(token)?;
        let _one_at_a_time = self.swap_lock.lock().await;
        let set = self.config();
        let now = self.clock.now();
        let row = self
            .store
            .call(move |c| q::get(c, request))
            .await?
            .ok_or_else(|| {
                EngineError::Conflict(format!("la demande n° {request} n'existe pas"))
            })?;
        if row.state == q::CANCELLED {
            return Err(EngineError::Conflict(
                "cette demande a été annulée : la garde n'est plus à reprendre".into(),
            ));
        }
        if row.state != q::OPEN {
            return Err(EngineError::Conflict(
                "cette garde a déjà été prise par un collègue".into(),
            ));
        }
        let refused = self.store.call(|c| q::refusals(c)).await?;
        if refused.iter().any(|(i, w)| *i == request && *w == me) {
            return Err(EngineError::Conflict(
                "le bureau a refusé votre proposition pour cette garde".into(),
            ));
        }
        let pending = self.pending_takes(None).await?;
        self.still_takeable(&set, &row, &me, &pending, now)
            .map_err(|e| match e {
                EngineError::Invalid(m) if m.starts_with("le remplaçant") => EngineError::Invalid(
                    "vous ne pouvez pas prendre cette garde (hors du planning, absent ce jour-là, déjà de garde à cette heure ou déjà proposé pour une garde à cette heure)".into(),
                ),
                e => e,
            })?;
        let (roster, occ) = self
            .occurrence(&set, &row)
            .ok_or_else(|| EngineError::Invalid("cette garde n'existe plus au planning".into()))?;
        let approval = roster.swap_approval;
        let taker = set.directory.get(&me).ok_or_else(not_found)?;
        let items = mails::taken(&set, roster, &occ, &row.requester, taker, approval);
        let to_state = if approval { q::PENDING } else { q::DONE };
        let me2 = me.clone();
        let (won, n) = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                if !q::take(&tx, request, &me2, to_state, now)? {
                    return Ok((false, 0));
                }
                let n = outbox::insert(&tx, &items, now)?;
                crate::store::audit_row(
                    &tx,
                    now,
                    &format!("personal:{me2}"),
                    "swap.take",
                    &format!("#{request} {to_state}"),
                )?;
                tx.commit()?;
                Ok((true, n))
            })
            .await?;
        if !won {
            return Err(EngineError::Conflict(
                "cette garde a déjà été prise par un collègue".into(),
            ));
        }
        self.written(n);
        if approval {
            Ok(Taken::Pending)
        } else {
            self.refresh_swaps().await?;
            Ok(Taken::Done)
        }
    }

    /// `token`'s holder withdraws their open request.
    pub async fn cancel_swap(&self, token: &str, request: i64) -> Result<(), EngineError> {
        let me = self.owner(token)?;
        let me2 = me.clone();
        let now = self.clock.now();
        let ok = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let ok = q::cancel(&tx, request, &me, now)?;
                if ok {
                    crate::store::audit_row(
                        &tx,
                        now,
                        &format!("personal:{me}"),
                        "swap.cancel",
                        &format!("#{request}"),
                    )?;
                }
                tx.commit()?;
                Ok(ok)
            })
            .await?;
        if ok {
            return Ok(());
        }
        // Why not, for the page.
        let row = self.store.call(move |c| q::get(c, request)).await?;
        let why = match row {
            Some(r) if r.requester == me2 && r.state == q::CANCELLED => {
                "cette demande est déjà annulée"
            }
            Some(r) if r.requester == me2 && r.state == q::PENDING => {
                "un collègue a déjà proposé de vous remplacer : le bureau doit valider l'échange, la demande ne peut plus être annulée"
            }
            Some(r) if r.requester == me2 => "cette garde a déjà été prise par un collègue",
            _ => "cette demande n'existe pas parmi les vôtres",
        };
        Err(EngineError::Conflict(why.into()))
    }

    /// The bureau approves (or refuses) a pending swap, as `actor`; the
    /// requester and the taker are told.
    pub async fn decide_swap(
        &self,
        actor: &str,
        request: i64,
        approve: bool,
    ) -> Result<(), EngineError> {
        let _one_at_a_time = self.swap_lock.lock().await;
        let set = self.config();
        let now = self.clock.now();
        let row = self
            .store
            .call(move |c| q::get(c, request))
            .await?
            .filter(|r| r.state == q::PENDING)
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "la demande n° {request} n'attend pas de validation"
                ))
            })?;
        let taker = row.taker.clone().unwrap_or_default();
        let pending = self.pending_takes(Some(request)).await?;
        if approve {
            self.still_takeable(&set, &row, &taker, &pending, now)?;
        }
        let (roster, occ) = self
            .occurrence(&set, &row)
            .filter(|(_, o)| o.start > now)
            .ok_or_else(|| {
                EngineError::Invalid("cette garde a déjà commencé ou n'existe plus".into())
            })?;
        let mut items = Vec::new();
        for id in [&row.requester, &taker] {
            if let Some(p) = set.directory.get(id) {
                items.extend(mails::decided(&set, roster, &occ, p, approve));
            }
        }
        if !approve {
            // Open again: the other colleagues are told again, not those
            // the bureau refused.
            let refused = self.store.call(|c| q::refusals(c)).await?;
            let requester = set
                .directory
                .get(&row.requester)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| row.requester.clone());
            for c in rs::candidates(&set, roster, &occ, &row.requester, &pending) {
                if c.id == taker || refused.iter().any(|(i, w)| *i == request && *w == c.id) {
                    continue;
                }
                let link = self.personal_url(&c.id).unwrap_or_default();
                items.extend(mails::request(&set, roster, &occ, c, &requester, &link));
            }
        }
        let by = actor.to_string();
        let (ok, n) = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                if !q::decide(&tx, request, approve, &by, now)? {
                    return Ok((false, 0));
                }
                let n = outbox::insert(&tx, &items, now)?;
                crate::store::audit_row(
                    &tx,
                    now,
                    &by,
                    if approve {
                        "swap.approve"
                    } else {
                        "swap.refuse"
                    },
                    &if approve {
                        format!("#{request}")
                    } else {
                        format!("#{request} {taker}")
                    },
                )?;
                tx.commit()?;
                Ok((true, n))
            })
            .await?;
        if !ok {
            return Err(EngineError::Conflict(format!(
                "la demande n° {request} n'attend pas de validation"
            )));
        }
        self.written(n);
        if approve {
            self.refresh_swaps().await?;
        }
        Ok(())
    }

    /// Open requests, and those waiting for the bureau's approval, whose
    /// shift starts within [`SWAP_ALERT`] alert the roster's `notify`, once
    /// each; returns how many requests it alerted about.
    pub async fn swap_alert_tick(&self) -> Result<usize, EngineError> {
        let set = self.config();
        let now = self.clock.now();
        let open = self
            .store
            .call(|c| q::in_states(c, &[q::OPEN, q::PENDING]))
            .await?;
        let mut alerted = 0;
        for r in open.into_iter().filter(|r| !r.alerted) {
            let Some((roster, occ)) = self.occurrence(&set, &r) else {
                continue;
            };
            if occ.start - SWAP_ALERT > now || occ.start <= now {
                continue;
            }
            let requester = set
                .directory
                .get(&r.requester)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| r.requester.clone());
            let mut items = Vec::new();
            for n in mails::notify_of(&set, roster, occ.date) {
                items.extend(mails::alert(
                    &set,
                    roster,
                    &occ,
                    n,
                    &requester,
                    r.state == q::PENDING,
                ));
            }
            let id = r.id;
            let n = self
                .store
                .call(move |c| {
                    let tx = c.transaction()?;
                    if !q::mark_alerted(&tx, id, now)? {
                        return Ok(None);
                    }
                    let n = outbox::insert(&tx, &items, now)?;
                    tx.commit()?;
                    Ok(Some(n))
                })
                .await?;
            if let Some(n) = n {
                self.written(n);
                alerted += 1;
            }
        }
        Ok(alerted)
    }

    /// Effective assignments of a roster with their source (`file` or
    /// `swap`), for the API and `vigie roster export`.
    pub fn roster_assignments(
        &self,
        id: &str,
        from: NaiveDate,
        days: u32,
    ) -> Option<Vec<rs::Effective>> {
        let set = self.config();
        let roster = set.roster(id)?;
        Some(rs::assignments(&set, roster, &self.swaps(), from, days))
    }
}
