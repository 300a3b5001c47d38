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
//! - A refused approval puts the request back to open for another taker.
//! - The errors' messages are in French: the personal pages show them.
//! - Takes and approvals run one at a time in the daemon (each checks that
//!   the taker is free against the swaps decided before it); the first
//!   taker wins by the database's conditional update in any case.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::App;
use super::overlay::Overlay;
use crate::config::{ConfigSet, Professional, Roster};
use crate::engine::EngineError;
use crate::engine::message::{self, Origin};
use crate::engine::render::Rendered;
use crate::roster::Occurrence;
use crate::roster::swaps::{self as rs, Swap};
use crate::store::outbox::{self, NewDelivery, Priority};
use crate::store::swaps::{self as q, SwapRow};

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

fn mail(p: &Professional, subject: String, text: String) -> Vec<NewDelivery> {
    let r = Rendered {
        subject,
        text,
        html: None,
    };
    let origin = Origin {
        event_id: None,
        step_id: None,
        priority: Priority::Reminder,
    };
    message::person_deliveries(p, &[&"email".to_string()], &r, origin, |_, _| None)
}

/// `samedi 20 juin 2026, 08:00–20:00`.
fn when(set: &ConfigSet, occ: &Occurrence) -> String {
    let tz = set.daemon.timezone;
    format!(
        "{}, {}–{}",
        crate::roster::ics::date_fr(occ.date),
        occ.start.with_timezone(&tz).format("%H:%M"),
        occ.end.with_timezone(&tz).format("%H:%M")
    )
}

/// The roster's `notify` (its check's), there on `day`.
fn notify_of<'a>(set: &'a ConfigSet, roster: &Roster, day: NaiveDate) -> Vec<&'a Professional> {
    match &roster.check {
        Some(c) => set
            .directory
            .select_on(&c.notify, &|_: &str| Vec::new(), day),
        None => Vec::new(),
    }
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

    /// The professional whose personal token this is (active ones only).
    pub fn personal_owner(&self, token: &str) -> Option<String> {
        self.token_owner(token, |id, t| self.links.personal_matches(id, t))
    }

    /// The professional whose calendar token this is (active ones only).
    fn calendar_owner(&self, token: &str) -> Option<String> {
        self.token_owner(token, |id, t| self.links.calendar_matches(id, t))
    }

    fn token_owner(&self, token: &str, matches: impl Fn(&str, &str) -> bool) -> Option<String> {
        let o = self.overlay.read().unwrap_or_else(|e| e.into_inner());
        let ids = o.index.get(token.get(..8)?)?;
        let set = o.set.clone();
        let mut found = None;
        for id in ids {
            if matches(id, token) {
                found = Some(id.clone());
            }
        }
        found.filter(|id| set.directory.get(id).is_some_and(|p| p.active))
    }

    /// The address of `id`'s personal page (`None`: not in the directory).
    pub fn personal_url(&self, id: &str) -> Option<String> {
        let set = self.config();
        set.directory.get(id)?;
        Some(format!(
            "{}/g/{}",
            set.daemon.public_url.trim_end_matches('/'),
            self.links.personal_token(id)
        ))
    }

    fn owner(&self, token: &str) -> Result<String, EngineError> {
        self.personal_owner(token).ok_or_else(not_found)
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
        let p = set.directory.get(&me).ok_or_else(not_found)?;
        let title = |id: &str| {
            set.roster(id)
                .map(|r| r.title.clone())
                .unwrap_or_else(|| id.to_string())
        };
        let shifts = rs::shifts_of(&set, &me, today, PERSONAL_DAYS)
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
            if occ.start <= now {
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
    /// own link, in one transaction.
    pub async fn request_swap(
        &self,
        token: &str,
        roster_id: &str,
        date: NaiveDate,
        shift: &str,
    ) -> Result<SwapRow, EngineError> {
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
        for c in rs::candidates(&set, roster, &occ, &me, &pending) {
            let link = self.personal_url(&c.id).unwrap_or_default();
            items.extend(mail(
                c,
                format!("Remplacement demandé : garde « {} » du {}", occ.shift, crate::roster::ics::date_fr(occ.date)),
                format!(
                    "Bonjour {},\n\n{} cherche un remplaçant pour la garde « {} » du planning « {} » : {}.\n\nD'après les plannings, vous êtes libre à ce moment-là. Pour la prendre, ouvrez votre page de gardes et choisissez « Je prends cette garde » :\n{link}\n\nLe premier volontaire est retenu.\n\nMessage automatique de Vigie — {}.\n",
                    c.name, requester.name, occ.shift, roster.title, when(&set, &occ), set.daemon.name
                ),
            ));
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
        row.ok_or_else(|| {
            EngineError::Conflict("un remplaçant est déjà recherché pour cette garde".into())
        })
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
            .ok_or_else(|| EngineError::NotFound(format!("aucune demande n° {request}")))?;
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
        let requester_name = set
            .directory
            .get(&row.requester)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| row.requester.clone());
        let what = format!(
            "la garde « {} » du planning « {} » ({})",
            occ.shift,
            roster.title,
            when(&set, &occ)
        );
        let mut items = Vec::new();
        if let Some(req) = set.directory.get(&row.requester) {
            let text = if approval {
                format!(
                    "Bonjour {},\n\n{} propose de prendre {what}. Le remplacement sera effectif dès que le bureau l'aura validé ; vous serez prévenu(e).\n\nMessage automatique de Vigie — {}.\n",
                    req.name, taker.name, set.daemon.name
                )
            } else {
                format!(
                    "Bonjour {},\n\n{} prend {what}. Vous n'êtes plus de garde ce jour-là ; les rappels et les calendriers suivent.\n\nMessage automatique de Vigie — {}.\n",
                    req.name, taker.name, set.daemon.name
                )
            };
            items.extend(mail(
                req,
                format!(
                    "Remplacement trouvé : garde « {} » du {}",
                    occ.shift,
                    crate::roster::ics::date_fr(occ.date)
                ),
                text,
            ));
        }
        // The requester (told above) and the taker (who just did it) are
        // not told twice when they are among `notify`.
        for n in notify_of(&set, roster, occ.date)
            .into_iter()
            .filter(|n| n.id != row.requester && n.id != me)
        {
            let text = if approval {
                format!(
                    "Bonjour {},\n\n{} propose de remplacer {} pour {what}.\n\nCe remplacement attend la validation du bureau : tableau de bord de Vigie, rubrique « Échanges de gardes ».\n\nMessage automatique de Vigie — {}.\n",
                    n.name, taker.name, requester_name, set.daemon.name
                )
            } else {
                format!(
                    "Bonjour {},\n\n{} remplace {} pour {what}.\n\nLe planning, les calendriers et les rappels en tiennent compte ; `vigie roster export {}` donne les affectations à reporter dans le fichier.\n\nMessage automatique de Vigie — {}.\n",
                    n.name, taker.name, requester_name, roster.id.value, set.daemon.name
                )
            };
            let subject = if approval {
                format!(
                    "Échange de garde à valider : « {} » du {}",
                    occ.shift,
                    crate::roster::ics::date_fr(occ.date)
                )
            } else {
                format!(
                    "Échange de garde : « {} » du {}",
                    occ.shift,
                    crate::roster::ics::date_fr(occ.date)
                )
            };
            items.extend(mail(n, subject, text));
        }
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
            Ok(())
        } else {
            Err(EngineError::Conflict(
                "cette demande n'est plus ouverte".into(),
            ))
        }
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
        if approve {
            let taker = row.taker.clone().unwrap_or_default();
            let pending = self.pending_takes(Some(request)).await?;
            self.still_takeable(&set, &row, &taker, &pending, now)?;
        }
        let mut items = Vec::new();
        if let Some((roster, occ)) = self.occurrence(&set, &row) {
            let what = format!(
                "la garde « {} » du planning « {} » ({})",
                occ.shift,
                roster.title,
                when(&set, &occ)
            );
            let verdict = if approve { "validé" } else { "refusé" };
            for id in [Some(&row.requester), row.taker.as_ref()]
                .into_iter()
                .flatten()
            {
                if let Some(p) = set.directory.get(id) {
                    let more = if approve {
                        "Le remplacement est effectif."
                    } else {
                        "La demande est de nouveau ouverte aux autres volontaires."
                    };
                    items.extend(mail(p, format!("Échange de garde {verdict} : « {} » du {}", occ.shift, crate::roster::ics::date_fr(occ.date)), format!("Bonjour {},\n\nLe bureau a {verdict} l'échange pour {what}. {more}\n\nMessage automatique de Vigie — {}.\n", p.name, set.daemon.name)));
                }
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
                    &format!("#{request}"),
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

    /// Open requests whose shift starts within [`SWAP_ALERT`] alert the
    /// roster's `notify`, once each; returns the deliveries written.
    pub async fn swap_alert_tick(&self) -> Result<usize, EngineError> {
        let set = self.config();
        let now = self.clock.now();
        let open = self.store.call(|c| q::in_states(c, &[q::OPEN])).await?;
        let mut total = 0;
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
            for n in notify_of(&set, roster, occ.date) {
                items.extend(mail(n, format!("Garde sans remplaçant : « {} » du {}", occ.shift, crate::roster::ics::date_fr(occ.date)), format!("Bonjour {},\n\n{} cherche toujours un remplaçant pour la garde « {} » du planning « {} » ({}), qui commence dans moins de 48 heures. Personne ne l'a encore prise.\n\nMessage automatique de Vigie — {}.\n", n.name, requester, occ.shift, roster.title, when(&set, &occ), set.daemon.name)));
            }
            let id = r.id;
            let n = self
                .store
                .call(move |c| {
                    let tx = c.transaction()?;
                    if !q::mark_alerted(&tx, id, now)? {
                        return Ok(0);
                    }
                    let n = outbox::insert(&tx, &items, now)?;
                    tx.commit()?;
                    Ok(n)
                })
                .await?;
            total += n;
        }
        self.written(total);
        Ok(total)
    }

    /// Mails `id` the link of their personal page again, as `actor` (the
    /// dashboard's directory); `NotFound` for an id not in the directory
    /// or inactive, `Invalid` without an e-mail address.
    pub async fn send_personal_link(&self, actor: &str, id: &str) -> Result<String, EngineError> {
        let set = self.config();
        let now = self.clock.now();
        let p =
            set.directory.get(id).filter(|p| p.active).ok_or_else(|| {
                EngineError::NotFound(format!("aucun professionnel actif « {id} »"))
            })?;
        if p.email.is_none() {
            return Err(EngineError::Invalid(format!(
                "{} n'a pas d'adresse e-mail",
                p.name
            )));
        }
        let url = self.personal_url(id).unwrap_or_default();
        let items = mail(
            p,
            format!("Votre page de gardes — {}", set.daemon.name),
            format!(
                "Bonjour {},\n\nVoici le lien de votre page de gardes : vos prochaines gardes, la recherche d'un remplaçant, les gardes à reprendre et votre calendrier.\n{url}\n\nCe lien vous est personnel : ne le transférez pas.\n\nMessage automatique de Vigie — {}.\n",
                p.name, set.daemon.name
            ),
        );
        let (actor, id2, name) = (actor.to_string(), id.to_string(), p.name.clone());
        let n = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let n = outbox::insert(&tx, &items, now)?;
                crate::store::audit_row(&tx, now, &actor, "personal.link", &id2)?;
                tx.commit()?;
                Ok(n)
            })
            .await?;
        self.written(n);
        Ok(name)
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

    /// The read-only calendar of the holder of the calendar token `token`
    /// (not the page's): their shifts on every roster, 30 days back and 90
    /// ahead.
    pub fn personal_calendar(&self, token: &str) -> Result<String, EngineError> {
        let me = self.calendar_owner(token).ok_or_else(not_found)?;
        let set = self.config();
        let now: DateTime<Utc> = self.clock.now();
        let today = now.with_timezone(&set.daemon.timezone).date_naive();
        Ok(crate::roster::ics::personal_ics(&set, &me, today, now))
    }
}
