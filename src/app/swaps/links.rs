//! The personal pages' tokens (SPEC §15): the page's `/g/{token}` and the
//! calendar's `/c/{token}.ics`, whose owners they name, and the link the
//! bureau resends.

use chrono::{DateTime, Utc};

use super::mails;
use super::not_found;
use crate::app::App;
use crate::engine::EngineError;
use crate::store::outbox;

impl App {
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
        let professionals = &o.file.directory.professionals;
        let mut found = None;
        // Every candidate is checked (no early exit on the first match).
        for i in o.index.candidates(token) {
            let id = &professionals[i].id;
            if matches(id, token) {
                found = Some(id.clone());
            }
        }
        found.filter(|id| o.set.directory.get(id).is_some_and(|p| p.active))
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

    pub(super) fn owner(&self, token: &str) -> Result<String, EngineError> {
        self.personal_owner(token).ok_or_else(not_found)
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
        let items = mails::link(&set, p, &url);
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
