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

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::App;
use crate::config::plan::{Plan, Scenario};
use crate::config::vigilance::{Trigger, VigilanceConfig};
use crate::config::{ConfigSet, Professional};
use crate::engine::message::{self, Origin};
use crate::engine::render::Rendered;
use crate::engine::{DeclareRequest, EngineError};
use crate::model::meteoalarm::parse_meteoalarm;
use crate::model::vigilance::{VigilanceMap, parse_dpvigilance, rank};
use crate::store::outbox::{NewDelivery, Priority};
use crate::store::vigilance::{self as q, NewProposal, Proposal};

/// The largest answer read from the feed.
const MAX_BODY: usize = 8 << 20;

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
        let (sc, ph) = (scenario_id.clone(), ch.trigger.phenomenon.clone());
        let latest = self.store.call(move |c| q::latest(c, &sc, &ph)).await?;
        if let Some(l) = latest
            && l.state == q::OPEN
            && l.colour == ch.colour
        {
            return Ok(Acted::Nothing);
        }
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
    pub async fn accept_proposal(&self, actor: &str, id: i64) -> Result<Proposal, EngineError> {
        let p = self.open_proposal(id).await?;
        let sc = p.scenario.clone();
        let running = self
            .store
            .call(move |c| crate::store::events::unresolved_of_kind(c, &sc, false))
            .await?
            .into_iter()
            .next()
            .map(|e| e.id);
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
        let event = self.carry_out(actor, &new, running).await?;
        self.decide(id, q::ACCEPTED, actor, event).await
    }

    /// Dismisses an open proposal as `actor`.
    pub async fn dismiss_proposal(&self, actor: &str, id: i64) -> Result<Proposal, EngineError> {
        self.open_proposal(id).await?;
        self.store
            .audit(
                self.clock.now(),
                actor,
                "vigilance",
                &format!("proposition {id} ignorée"),
            )
            .await?;
        self.decide(id, q::DISMISSED, actor, None).await
    }

    async fn open_proposal(&self, id: i64) -> Result<Proposal, EngineError> {
        let p = self
            .store
            .call(move |c| q::get(c, id))
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no proposal {id}")))?;
        if p.state != q::OPEN {
            return Err(EngineError::Conflict(format!(
                "proposal {id} is {} already",
                p.state
            )));
        }
        Ok(p)
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
fn source_name(source: &str) -> &'static str {
    match source {
        "meteoalarm" => "MeteoAlarm",
        _ => "Météo-France",
    }
}

/// Fetches the map: the body, or why not (in French, no URL, no key).
async fn fetch(cfg: &VigilanceConfig) -> Result<String, String> {
    let key = match &cfg.api_key_file {
        Some(p) => {
            let path = crate::config::daemon::secret_path(p);
            Some(
                crate::config::source::read_text(&path)
                    .map_err(|e| format!("clé API illisible ({}) : {e}", path.display()))?
                    .trim()
                    .to_string(),
            )
        }
        None => None,
    };
    let client = reqwest::Client::builder()
        .timeout(cfg.every.as_std().min(Duration::from_secs(10)))
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("client HTTP : {}", e.without_url()))?;
    let mut req = client.get(&cfg.url);
    if let Some(k) = key {
        req = req.header("apikey", k);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            "pas de réponse à temps".to_string()
        } else {
            format!("réseau : {}", e.without_url())
        }
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(format!("HTTP {} : clé API refusée", status.as_u16()));
    }
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    // A map is some hundreds of KiB: a larger answer is not one.
    let mut body = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("réponse interrompue : {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!(
                "réponse trop grande (plus de {} Mio)",
                MAX_BODY >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "réponse qui n'est pas du texte UTF-8".to_string())
}

/// The e-mail to the plan's owners about a proposal (or a declaration
/// made at once).
fn owner_mails(
    set: &ConfigSet,
    plan: &Plan,
    scenario: &Scenario,
    p: &NewProposal,
    bulletin: String,
    now: DateTime<Utc>,
) -> Vec<NewDelivery> {
    let Some(sel) = &plan.owners else {
        return Vec::new();
    };
    let today = now.with_timezone(&set.daemon.timezone).date_naive();
    let owners: Vec<&Professional> = set.directory.select_on(sel, &|_: &str| Vec::new(), today);
    let what = format!(
        "vigilance {} {} pour le département {}",
        p.phenomenon, p.colour, p.departement
    );
    let (subject, doing) = match (p.state.as_str(), p.action.as_str(), &p.level) {
        (q::DECLARED, _, Some(l)) => (
            format!(
                "Vigilance {} {} : « {} » déclenché",
                p.phenomenon, p.colour, scenario.title
            ),
            format!(
                "Vigie a déclenché le scénario « {} » au niveau {l}.",
                scenario.title
            ),
        ),
        (_, "resolve", _) => (
            format!(
                "Vigilance {} levée : lever « {} » ?",
                p.phenomenon, scenario.title
            ),
            format!(
                "Vigie propose de lever le scénario « {} » en cours. Rien n'est fait sans votre accord.",
                scenario.title
            ),
        ),
        (_, _, l) => (
            format!(
                "Vigilance {} {} : déclencher « {} » ?",
                p.phenomenon, p.colour, scenario.title
            ),
            format!(
                "Vigie propose de déclencher le scénario « {} » au niveau {}. Rien n'est envoyé sans votre accord.",
                scenario.title,
                l.as_deref().unwrap_or("-")
            ),
        ),
    };
    let r_text = |name: &str| {
        format!(
            "Bonjour {name},\n\n{} annonce une {what} (bulletin du {bulletin}).\n{doing}\n\nPour décider (« Déclencher » ou « Ignorer ») : {}/bureau\n\nMessage automatique de Vigie — {}.\n",
            source_name(&p.source),
            set.daemon.public_url,
            set.daemon.name
        )
    };
    let mut out = Vec::new();
    let email = "email".to_string();
    for o in owners {
        let r = Rendered {
            subject: subject.clone(),
            text: r_text(&o.name),
            html: None,
        };
        let origin = Origin {
            event_id: None,
            step_id: None,
            priority: Priority::Crisis,
        };
        out.extend(message::person_deliveries(
            o,
            &[&email],
            &r,
            origin,
            |_, _| None,
        ));
    }
    out
}
