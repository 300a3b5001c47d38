//! Vigilance (SPEC §13): polls Météo-France's DPVigilance map (or
//! MeteoAlarm's Atom/CAP feed, `source = "meteoalarm"`), keeps the
//! last good one, and turns a change of today's colour into a proposal to
//! the bureau (or, with `mode = "declare"`, an upward declaration at once).
//!
//! [`App::vigilance_step`] is one poll (the daemon's loop calls it every
//! `every`; tests call it themselves). A failed poll (network, HTTP error,
//! malformed or stale bulletin) keeps the last good map and is shown in
//! the status; it never stops anything. Vigie never resolves by itself:
//! back to vert only proposes it. Tomorrow's colours are shown, never
//! acted on.

mod feed;
mod mail;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::App;
use crate::config::ConfigSet;
use crate::config::plan::{Plan, Scenario};
use crate::config::vigilance::{Trigger, VigilanceConfig};
use crate::engine::{DeclareRequest, EngineError};
use crate::model::meteoalarm::parse_meteoalarm;
use crate::model::vigilance::{VigilanceMap, parse_dpvigilance, rank};
use crate::store::vigilance::{self as q, NewProposal, Proposal};
use feed::fetch;
use mail::owner_mails;

/// A bulletin older than this is refused.
const MAX_AGE_HOURS: i64 = 36;

/// The actor of what the feed does by itself.
pub const ACTOR: &str = "vigilance";

/// What the daemon knows of the feed.
#[derive(Default, Debug)]
pub struct VigilanceState {
    /// The last good map.
    map: Option<VigilanceMap>,
    last_poll: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    /// Why the last poll failed (`None` when it succeeded).
    last_error: Option<String>,
    pub polls: u64,
    pub failures: u64,
    /// The map kept in the database was read (once, at the first need).
    loaded: bool,
}

/// What the dashboard shows of the feed.
pub struct VigilanceView {
    /// The last good map.
    pub map: Option<VigilanceMap>,
    /// When the last poll happened.
    pub polled: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VigilanceOutcome {
    /// The poll brought a good map.
    pub ok: bool,
    /// Proposals written.
    pub proposals: usize,
    /// Declarations made at once (`mode = "declare"`).
    pub declared: usize,
}

/// A change to act on, before it is written.
struct Change<'a> {
    plan: &'a Plan,
    scenario: &'a Scenario,
    trigger: &'a Trigger,
    departement: String,
    colour: String,
}

impl App {
    /// One poll of the vigilance feed, with `now` taken once.
    pub async fn vigilance_step(&self) -> VigilanceOutcome {
        let set = self.config();
        let Some(cfg) = set.daemon.vigilance.clone() else {
            return VigilanceOutcome::default();
        };
        let now = self.clock.now();
        let fetched = fetch(&cfg).await;
        self.load_kept_map().await;
        let prev = self.vigilance_lock().map.clone();
        let parsed = fetched
            .and_then(|body| match cfg.source.as_str() {
                "meteoalarm" => {
                    parse_meteoalarm(&body, &cfg.departements, now, set.daemon.timezone)
                }
                _ => parse_dpvigilance(&body, &cfg.departements),
            })
            .and_then(|m| match &prev {
                Some(p) if m.update_time < p.update_time => Err(format!(
                    "bulletin périmé : mis à jour le {}, plus ancien que celui en mémoire ({})",
                    self.local(m.update_time),
                    self.local(p.update_time)
                )),
                _ if now - m.update_time > chrono::Duration::hours(MAX_AGE_HOURS) => Err(format!(
                    "bulletin périmé : mis à jour le {}, il y a plus de {MAX_AGE_HOURS} h",
                    self.local(m.update_time)
                )),
                _ => Ok(m),
            });
        let map = {
            let mut st = self.vigilance_lock();
            st.polls += 1;
            st.last_poll = Some(now);
            match parsed {
                Ok(m) => {
                    st.map = Some(m.clone());
                    st.last_success = Some(now);
                    st.last_error = None;
                    m
                }
                Err(e) => {
                    tracing::warn!(error = %e, "vigilance poll failed; keeping the last good map");
                    st.failures += 1;
                    st.last_error = Some(e);
                    return VigilanceOutcome::default();
                }
            }
        };
        let (ut, colours) = (map.update_time, map.colours_json());
        if let Err(e) = self.store.call(move |c| q::save_map(c, ut, &colours)).await {
            tracing::error!(error = %e, "vigilance: cannot keep the map");
        }
        let mut out = VigilanceOutcome {
            ok: true,
            ..Default::default()
        };
        let today = now.with_timezone(&set.daemon.timezone).date_naive();
        for plan in set.plans_in_force(today) {
            for scenario in &plan.scenarios {
                for trigger in &scenario.triggers {
                    let (departement, colour) = worst(&map, &cfg, &trigger.phenomenon);
                    let before = prev.as_ref().map(|p| worst(p, &cfg, &trigger.phenomenon).1);
                    if before.as_deref() == Some(colour.as_str()) {
                        continue;
                    }
                    let change = Change {
                        plan,
                        scenario,
                        trigger,
                        departement,
                        colour,
                    };
                    match self.act(&set, &cfg, &map, change, now).await {
                        Ok(Acted::Proposed) => out.proposals += 1,
                        Ok(Acted::Declared) => out.declared += 1,
                        Ok(Acted::Nothing) => {}
                        Err(e) => tracing::error!(error = %e, "vigilance: cannot act on a change"),
                    }
                }
            }
        }
        out
    }

    /// Reads the map kept in the database into memory, once: after a
    /// restart, a colour already acted on is not acted on again and an
    /// older bulletin is refused.
    async fn load_kept_map(&self) {
        if self.vigilance_lock().loaded {
            return;
        }
        // Once per process: proposals a stopped daemon left half-decided
        // are open again, not stuck.
        match self.store.call(|c| q::release_all(c)).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                proposals = n,
                "vigilance: proposals left half-decided are open again"
            ),
            Err(e) => tracing::error!(error = %e, "vigilance: cannot release claimed proposals"),
        }
        match self.store.call(|c| q::last_map(c)).await {
            Ok(kept) => {
                let kept = kept.and_then(|(t, c)| VigilanceMap::from_kept(t, &c));
                let mut st = self.vigilance_lock();
                st.loaded = true;
                if st.map.is_none() {
                    st.map = kept;
                }
            }
            Err(e) => tracing::error!(error = %e, "vigilance: cannot read the kept map"),
        }
    }

    fn vigilance_lock(&self) -> std::sync::MutexGuard<'_, VigilanceState> {
        self.vigilance.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.config().daemon.timezone)
            .format("%d/%m/%Y à %H:%M")
            .to_string()
    }

    async fn act(
        &self,
        set: &ConfigSet,
        cfg: &VigilanceConfig,
        map: &VigilanceMap,
        ch: Change<'_>,
        now: DateTime<Utc>,
    ) -> Result<Acted, EngineError> {
        let scenario_id = ch.scenario.id.value.clone();
        let sc = scenario_id.clone();
        let running = self
            .store
            .call(move |c| crate::store::events::unresolved_of_kind(c, &sc, false))
            .await?
            .into_iter()
            .next();
        let level_rank = |l: &str| ch.scenario.levels.iter().position(|x| x.value == l);
        let (sc, ph) = (scenario_id.clone(), ch.trigger.phenomenon.clone());
        let latest = self.store.call(move |c| q::latest(c, &sc, &ph)).await?;
        if let Some(l) = latest
            && l.state == q::OPEN
            && l.colour == ch.colour
        {
            return Ok(Acted::Nothing);
        }
        // Today's colour changed: what was proposed for the old one is gone.
        let (sc, ph) = (scenario_id.clone(), ch.trigger.phenomenon.clone());
        self.store
            .call(move |c| q::supersede(c, &sc, &ph, now))
            .await?;
        let (action, level) = if ch.colour == "vert" {
            if running.is_none() {
                return Ok(Acted::Nothing);
            }
            ("resolve", None)
        } else {
            let Some(level) = ch.trigger.levels.get(&ch.colour) else {
                return Ok(Acted::Nothing);
            };
            if running.as_ref().and_then(|r| r.level.as_deref()) == Some(level.as_str()) {
                return Ok(Acted::Nothing);
            }
            ("declare", Some(level.clone()))
        };
        let upward = match (&level, running.as_ref().and_then(|r| r.level.as_deref())) {
            (Some(_), None) => running.is_none(),
            (Some(l), Some(r)) => level_rank(l) > level_rank(r),
            (None, _) => false,
        };
        let mut p = NewProposal {
            source: cfg.source.clone(),
            departement: ch.departement.clone(),
            phenomenon: ch.trigger.phenomenon.clone(),
            colour: ch.colour.clone(),
            update_time: map.update_time,
            scenario: scenario_id,
            level,
            action: action.to_string(),
            state: q::OPEN.to_string(),
            event_id: None,
        };
        let acted = if ch.trigger.declare && upward {
            let id = self
                .carry_out(ACTOR, &p, running.as_ref().map(|r| r.id))
                .await?;
            p.state = q::DECLARED.to_string();
            p.event_id = id;
            Acted::Declared
        } else {
            Acted::Proposed
        };
        let mails = owner_mails(
            set,
            ch.plan,
            ch.scenario,
            &p,
            self.local(p.update_time),
            now,
        );
        let n = mails.len();
        self.store
            .call(move |c| {
                let tx = c.transaction()?;
                q::insert(&tx, &p, now)?;
                crate::store::outbox::insert(&tx, &mails, now)?;
                tx.commit()
            })
            .await?;
        self.written(n);
        Ok(acted)
    }

    /// Declares, changes the level or resolves as a proposal says; the
    /// event's id.
    async fn carry_out(
        &self,
        actor: &str,
        p: &NewProposal,
        running: Option<i64>,
    ) -> Result<Option<i64>, EngineError> {
        let source = format!(
            "Vigilance {} : {} {} ({}), bulletin du {}",
            source_name(&p.source),
            p.phenomenon,
            p.colour,
            p.departement,
            self.local(p.update_time)
        );
        let now = self.clock.now();
        self.store.audit(now, actor, "vigilance", &source).await?;
        match (p.action.as_str(), running, &p.level) {
            ("resolve", Some(id), _) => {
                self.resolve(actor, id, Some(source)).await?;
                Ok(Some(id))
            }
            ("resolve", None, _) => Err(EngineError::Conflict(format!(
                "aucun événement « {} » en cours à lever",
                p.scenario
            ))),
            (_, Some(id), Some(level)) => {
                self.change_level(actor, id, level.clone()).await?;
                Ok(Some(id))
            }
            _ => {
                let d = self
                    .declare(
                        actor,
                        DeclareRequest {
                            scenario: p.scenario.clone(),
                            level: p.level.clone(),
                            note: Some(source),
                            exercise: false,
                            key: Some(format!("vigilance-{}", p.phenomenon)),
                            downgrade: false,
                        },
                    )
                    .await?;
                Ok(Some(d.event_id))
            }
        }
    }

    /// Accepts an open proposal as `actor`: declares (key
    /// `vigilance-PHENOMENON`), changes the level or resolves.
    /// Refused (409) when today's colour is no longer the proposal's, or
    /// when it would lower the running event (that is "Changer de niveau").
    pub async fn accept_proposal(&self, actor: &str, id: i64) -> Result<Proposal, EngineError> {
        let p = self.claim_proposal(id).await?;
        match self.accept_claimed(actor, &p).await {
            Ok(event) => self.decide(id, q::ACCEPTED, actor, event).await,
            Err(e) => {
                self.store.call(move |c| q::release(c, id)).await?;
                Err(e)
            }
        }
    }

    async fn accept_claimed(&self, actor: &str, p: &Proposal) -> Result<Option<i64>, EngineError> {
        self.load_kept_map().await;
        let set = self.config();
        let today = {
            let st = self.vigilance_lock();
            match (set.daemon.vigilance.as_ref(), st.map.as_ref()) {
                (Some(cfg), Some(m)) => Some(worst(m, cfg, &p.phenomenon).1),
                _ => None,
            }
        };
        if today.as_deref() != Some(p.colour.as_str()) {
            return Err(EngineError::Conflict(format!(
                "la vigilance {} n'est plus {} aujourd'hui : la proposition {} est dépassée",
                p.phenomenon, p.colour, p.id
            )));
        }
        let sc = p.scenario.clone();
        let running = self
            .store
            .call(move |c| crate::store::events::unresolved_of_kind(c, &sc, false))
            .await?
            .into_iter()
            .next();
        let date = self
            .clock
            .now()
            .with_timezone(&set.daemon.timezone)
            .date_naive();
        let scenario = set
            .plans_in_force(date)
            .into_iter()
            .find_map(|pl| pl.scenario(&p.scenario));
        if let (Some(s), Some(new), Some(cur)) = (
            scenario,
            p.level.as_deref(),
            running.as_ref().and_then(|r| r.level.as_deref()),
        ) {
            let rank = |l: &str| s.levels.iter().position(|x| x.value == l);
            if p.action == "declare" && rank(new) < rank(cur) {
                return Err(EngineError::Conflict(format!(
                    "accepter abaisserait l'événement en cours du niveau {cur} au niveau {new} : \
                     pour baisser le niveau, utilisez « Changer de niveau »"
                )));
            }
        }
        let running = running.map(|e| e.id);
        let new = NewProposal {
            source: p.source.clone(),
            departement: p.departement.clone(),
            phenomenon: p.phenomenon.clone(),
            colour: p.colour.clone(),
            update_time: p.update_time,
            scenario: p.scenario.clone(),
            level: p.level.clone(),
            action: p.action.clone(),
            state: q::ACCEPTED.to_string(),
            event_id: None,
        };
        self.carry_out(actor, &new, running).await
    }

    /// Dismisses an open proposal as `actor`.
    pub async fn dismiss_proposal(&self, actor: &str, id: i64) -> Result<Proposal, EngineError> {
        self.claim_proposal(id).await?;
        let detail = format!("proposition {id} ignorée");
        if let Err(e) = self
            .store
            .audit(self.clock.now(), actor, "vigilance", &detail)
            .await
        {
            self.store.call(move |c| q::release(c, id)).await?;
            return Err(e.into());
        }
        self.decide(id, q::DISMISSED, actor, None).await
    }

    /// Claims an open proposal in the store, so that only one accept or
    /// dismiss carries it out however many arrive at once.
    async fn claim_proposal(&self, id: i64) -> Result<Proposal, EngineError> {
        // Before any claim of this process: what a stopped one left claimed
        // is released first, never a claim of ours.
        self.load_kept_map().await;
        let p = self
            .store
            .call(move |c| {
                let p = q::get(c, id)?;
                let claimed = p.is_some() && q::claim(c, id)?;
                Ok((p, claimed))
            })
            .await?;
        match p {
            (None, _) => Err(EngineError::NotFound(format!("no proposal {id}"))),
            (Some(p), true) => Ok(p),
            (Some(p), false) => Err(EngineError::Conflict(format!(
                "la proposition {id} n'est plus ouverte ({})",
                state_fr(&p.state)
            ))),
        }
    }

    async fn decide(
        &self,
        id: i64,
        state: &'static str,
        actor: &str,
        event: Option<i64>,
    ) -> Result<Proposal, EngineError> {
        let (actor, now) = (actor.to_string(), self.clock.now());
        let p = self
            .store
            .call(move |c| {
                if !q::decide(c, id, state, &actor, now, event)? {
                    return Ok(None);
                }
                q::get(c, id)
            })
            .await?;
        p.ok_or_else(|| EngineError::Conflict(format!("proposal {id} was decided meanwhile")))
    }

    /// The open proposals.
    pub async fn open_proposals(&self) -> Result<Vec<Proposal>, EngineError> {
        Ok(self.store.call(|c| q::open(c)).await?)
    }

    /// `GET /api/v1/vigilance` and the status's `vigilance`: the colours per
    /// département and phenomenon (today and "demain"), the last poll, the
    /// last error, the open proposals. `null` without `[vigilance]`.
    pub async fn vigilance_status(&self) -> Result<Value, EngineError> {
        let set = self.config();
        let Some(cfg) = set.daemon.vigilance.as_ref() else {
            return Ok(Value::Null);
        };
        self.load_kept_map().await;
        let proposals = self.open_proposals().await?;
        let st = self.vigilance_lock();
        let colours: Vec<Value> = st
            .map
            .iter()
            .flat_map(|m| m.colours.iter())
            .map(|((d, p), c)| {
                json!({"departement": d, "phenomenon": p, "today": c.today, "demain": c.tomorrow})
            })
            .collect();
        Ok(json!({
            "source": cfg.source,
            "departements": cfg.departements,
            "update_time": st.map.as_ref().map(|m| m.update_time),
            "last_poll": st.last_poll,
            "last_success": st.last_success,
            "last_error": st.last_error,
            "ok": st.last_error.is_none(),
            "polls": st.polls,
            "failures": st.failures,
            "colours": colours,
            "proposals": proposals,
        }))
    }

    /// For the dashboard: the last good map, the last poll and the last
    /// error; `None` without `[vigilance]`.
    pub fn vigilance_view(&self) -> Option<VigilanceView> {
        self.config().daemon.vigilance.as_ref()?;
        let st = self.vigilance_lock();
        Some(VigilanceView {
            map: st.map.clone(),
            polled: st.last_poll,
            error: st.last_error.clone(),
        })
    }

    /// (polls, failures, whether the last poll failed) for `/metrics`.
    pub fn vigilance_counts(&self) -> Option<(u64, u64, bool)> {
        self.config().daemon.vigilance.as_ref()?;
        let st = self.vigilance_lock();
        Some((st.polls, st.failures, st.last_error.is_some()))
    }
}

/// A proposal's state, in French.
fn state_fr(state: &str) -> &'static str {
    match state {
        q::ACCEPTED => "acceptée",
        q::DISMISSED => "ignorée",
        q::DECLARED => "déclenchée d'office",
        q::SUPERSEDED => "dépassée par un changement de couleur",
        q::CLAIMED => "décision en cours",
        _ => "décidée",
    }
}

enum Acted {
    Nothing,
    Proposed,
    Declared,
}

/// The département where `phenomenon` is worst today, and its colour (vert
/// in the first département when the map does not name it).
fn worst(map: &VigilanceMap, cfg: &VigilanceConfig, phenomenon: &str) -> (String, String) {
    let mut best = (cfg.departements[0].clone(), "vert".to_string());
    for d in &cfg.departements {
        if let Some(c) = map.colours.get(&(d.clone(), phenomenon.to_string()))
            && rank(&c.today) > rank(&best.1)
        {
            best = (d.clone(), c.today.clone());
        }
    }
    best
}

/// The name of a source as people read it.
pub(super) fn source_name(source: &str) -> &'static str {
    match source {
        "meteoalarm" => "MeteoAlarm",
        _ => "Météo-France",
    }
}
