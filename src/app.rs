//! The application core: the one door into the engine for the API, the
//! pages, the CLI's daemon commands and the timers (issue 13).
//!
//! [`App`] owns what every part of the running daemon shares: the
//! configuration snapshot and its reload, the store, the clock, the link
//! key, the metrics and the outbox. Its operations ("declare as this
//! actor", "change the level", "resolve", "answer through a link", "tick
//! the timers") build the engine's context with `now` taken once, let the
//! engine claim the first deliveries inside its own transaction through
//! the [`engine::OutboxPort`] the outbox implements, and wake the outbox
//! when deliveries were written and not handed over. No handler knows
//! about hand-overs or wake-ups.
//!
//! What only the web needs (pages, sessions, the login limiter, caches) is
//! the web's own state ([`crate::web::WebState`]); the wiring that starts
//! and stops everything is [`crate::daemon`].

mod journal;
mod overlay;
mod swaps;
mod vigilance;

pub use swaps::{Offer, PERSONAL_DAYS, PersonalShift, PersonalView, SWAP_ALERT, Taken};
pub use vigilance::{VigilanceOutcome, VigilanceState, VigilanceView};

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use tokio::sync::Notify;

use crate::config::{self, ConfigSet, Diagnostics};
use crate::engine::{self, DeclareRequest, Declared, EngineError, LinkView, links::LinkSigner};
use crate::metrics::Metrics;
use crate::schedule::clock::Clock;
use crate::store::actions::ActionRow;
use crate::store::{Store, StoreError};

/// The timer loop goes round every second; this long without a turn, it
/// is stuck (the systemd watchdog restarts it sooner under systemd).
pub const TIMERS_STALE: Duration = Duration::from_secs(60);

/// Deliveries due this long with no send attempted meanwhile: the outbox
/// is stuck (a long fan-out that moves is not).
pub const OUTBOX_STUCK: Duration = Duration::from_secs(15 * 60);

/// The outcome of the last configuration load, for `/readyz` and the pages.
#[derive(Clone, Debug)]
pub struct ReloadStatus {
    /// When the configuration in use was loaded.
    pub last_good_at: DateTime<Utc>,
    /// When the last attempt (start, SIGHUP or API) happened.
    pub last_attempt_at: DateTime<Utc>,
    /// Whether the last attempt was accepted.
    pub ok: bool,
    /// The errors that made the last attempt fail (empty when it succeeded).
    pub errors: Vec<String>,
    /// Warnings of the configuration in use.
    pub warnings: Vec<String>,
    /// Incremented at each accepted reload.
    pub generation: u64,
}

impl ReloadStatus {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "ok": self.ok,
            "last_attempt_at": self.last_attempt_at.to_rfc3339(),
            "last_good_at": self.last_good_at.to_rfc3339(),
            "generation": self.generation,
            "errors": self.errors,
            "warnings": self.warnings,
        })
    }
}

/// What [`App::preview`] answers: the plan in force, the scenario, the
/// level and the engine's preview steps (broadcasts, then tiers).
#[derive(Debug)]
pub struct DeclarePreview {
    pub plan_title: String,
    pub plan_version: String,
    pub scenario_title: String,
    /// The level that would be declared (the first one when none is asked).
    pub level: Option<String>,
    /// The scenario's levels, lowest first.
    pub levels: Vec<String>,
    pub steps: Vec<engine::PreviewStep>,
}

/// The application core (see the module docs).
pub struct App {
    /// The configuration file, re-read on each reload.
    pub config_path: PathBuf,
    /// The valid configuration read from the files; swapped whole on reload.
    current: RwLock<Arc<ConfigSet>>,
    /// The files with the decided swaps folded in (what [`App::config`]
    /// answers), and the personal tokens' index (SPEC §15).
    overlay: RwLock<overlay::Overlay>,
    /// Serialises the rebuilds of `overlay` (a swap and a reload may come
    /// together: the last rebuild must see both).
    overlay_lock: tokio::sync::Mutex<()>,
    /// Serialises the swap decisions of this daemon (take, approve), so
    /// that each checks "free" against the swaps decided before it; the
    /// database's conditional update still makes the first taker win.
    swap_lock: tokio::sync::Mutex<()>,
    /// The outcome of the last load attempt.
    reload: RwLock<ReloadStatus>,
    pub store: Store,
    /// Wall time: the system clock, or a manual one in tests.
    pub clock: Arc<dyn Clock>,
    /// Serialises reloads (SIGHUP and API may arrive together).
    reload_lock: tokio::sync::Mutex<()>,
    /// Signs and checks response links.
    pub links: LinkSigner,
    /// The outbox as the engine sees it: the in-transaction claim of a
    /// declaration's first deliveries, and the wake-up.
    outbox: Arc<dyn engine::OutboxPort>,
    /// Wakes the timer loop (a test moved the clock).
    pub timers_wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// The vigilance feed's last good map and last poll (`app::vigilance`).
    vigilance: std::sync::Mutex<VigilanceState>,
    /// When the timer loop last went round (for the systemd watchdog).
    heartbeat: std::sync::Mutex<std::time::Instant>,
}

/// What [`App::new`] takes.
pub struct AppParts {
    pub config_path: PathBuf,
    pub set: ConfigSet,
    pub warnings: Vec<String>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub links: LinkSigner,
    pub outbox: Arc<dyn engine::OutboxPort>,
    pub metrics: Arc<Metrics>,
}

/// What one turn of the timers did.
#[derive(Debug, Default, Clone, Copy)]
pub struct TimerTurn {
    /// Escalation steps taken (tiers notified, chains restarted, exhausted).
    pub escalations: usize,
    /// Reminder deliveries written.
    pub reminder_deliveries: usize,
}

impl App {
    pub fn new(p: AppParts) -> App {
        let now = p.clock.now();
        let file = Arc::new(p.set);
        // The swaps decided before this start (a fresh database has none).
        let rows = p
            .store
            .call_blocking(|c| crate::store::swaps::done(c))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the swaps: the files' assignments only");
                Vec::new()
            });
        let overlay = overlay::Overlay::build(&file, &rows, &p.links, None);
        App {
            config_path: p.config_path,
            current: RwLock::new(file),
            overlay: RwLock::new(overlay),
            overlay_lock: tokio::sync::Mutex::new(()),
            swap_lock: tokio::sync::Mutex::new(()),
            reload: RwLock::new(ReloadStatus {
                last_good_at: now,
                last_attempt_at: now,
                ok: true,
                errors: Vec::new(),
                warnings: p.warnings,
                generation: 1,
            }),
            store: p.store,
            clock: p.clock,
            reload_lock: tokio::sync::Mutex::new(()),
            links: p.links,
            outbox: p.outbox,
            timers_wake: Arc::new(Notify::new()),
            metrics: p.metrics,
            vigilance: Default::default(),
            heartbeat: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// The configuration in use: the files with the decided swaps folded
    /// into the rosters' assignments (SPEC §15), so that every reader (roster
    /// check, calendars, `on_call`, shift reminders) sees who is really on
    /// shift.
    pub fn config(&self) -> Arc<ConfigSet> {
        self.overlay
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .set
            .clone()
    }

    /// The configuration as the files say it, without the swaps.
    pub fn file_config(&self) -> Arc<ConfigSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.reload
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Today in the daemon's time zone.
    pub fn today(&self) -> NaiveDate {
        let tz = self.config().daemon.timezone;
        self.clock.now().with_timezone(&tz).date_naive()
    }

    /// What an engine operation needs, with `now` taken once, on behalf of
    /// `actor` (audited) or of the daemon itself.
    fn ctx(&self, actor: Option<&str>) -> engine::Ctx {
        engine::Ctx {
            set: self.config(),
            links: self.links.clone(),
            now: self.clock.now(),
            outbox: Some(self.outbox.clone()),
            actor: actor.map(str::to_string),
            metrics: self.metrics.clone(),
        }
    }

    /// Deliveries were written and not handed over: the outbox looks for
    /// them now instead of at its next poll.
    fn written(&self, queued: usize) {
        if queued > 0 {
            self.outbox.wake();
        }
    }

    /// Declares a scenario as `actor` (an operator, `token:NAME`).
    pub async fn declare(&self, actor: &str, req: DeclareRequest) -> Result<Declared, EngineError> {
        let d = engine::declare(&self.store, self.ctx(Some(actor)), req).await?;
        if !d.handed_over {
            self.written(d.queued);
        }
        Ok(d)
    }

    /// What declaring `scenario` at `level` now would send, to whom, tier by
    /// tier, writing and sending nothing (the engine's preview, as `vigie
    /// plan preview` prints it): for the bureau's confirmation page.
    pub fn preview(
        &self,
        scenario: &str,
        level: Option<&str>,
        exercise: bool,
    ) -> Result<DeclarePreview, EngineError> {
        let ctx = self.ctx(None);
        let set = ctx.set.clone();
        let today = ctx.now.with_timezone(&set.daemon.timezone).date_naive();
        let (plan, sc) = set
            .plans_in_force(today)
            .into_iter()
            .find_map(|p| p.scenario(scenario).map(|s| (p, s)))
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "no plan in force today has a scenario `{scenario}`"
                ))
            })?;
        let steps = engine::preview(&ctx, plan, sc, level, exercise)?;
        Ok(DeclarePreview {
            plan_title: plan.title.clone(),
            plan_version: plan.version.value.0.clone(),
            scenario_title: sc.title.clone(),
            level: level
                .map(str::to_string)
                .or_else(|| sc.levels.first().map(|l| l.value.clone())),
            levels: sc.levels.iter().map(|l| l.value.clone()).collect(),
            steps,
        })
    }

    /// Changes an event's level as `actor`.
    pub async fn change_level(
        &self,
        actor: &str,
        id: i64,
        level: String,
    ) -> Result<Declared, EngineError> {
        let d = engine::change_level(&self.store, self.ctx(Some(actor)), id, level).await?;
        self.written(d.queued);
        Ok(d)
    }

    /// The actions checklist of event `id` (SPEC §12).
    pub async fn actions(&self, id: i64) -> Result<Vec<ActionRow>, EngineError> {
        engine::actions(&self.store, id).await
    }

    /// Ticks action `n` of event `id` as done by `actor`, logged in the
    /// main courante.
    pub async fn action_done(
        &self,
        actor: &str,
        id: i64,
        n: i64,
        note: Option<String>,
    ) -> Result<ActionRow, EngineError> {
        let ctx = self.ctx(Some(actor));
        engine::action_done(&self.store, ctx, id, n, actor.to_string(), note).await
    }

    /// Resolves an event as `actor`; returns the resolve notices queued.
    pub async fn resolve(
        &self,
        actor: &str,
        id: i64,
        note: Option<String>,
    ) -> Result<usize, EngineError> {
        let queued = engine::resolve(&self.store, self.ctx(Some(actor)), id, note).await?;
        self.written(queued);
        Ok(queued)
    }

    /// "Relancer les non-répondants" of event `id`, on behalf of `actor`.
    pub async fn remind(&self, actor: &str, id: i64) -> Result<engine::Reminded, EngineError> {
        let r = engine::remind(&self.store, self.ctx(Some(actor)), id).await?;
        self.written(r.queued);
        Ok(r)
    }

    /// What a response link shows (changes nothing).
    pub async fn link(&self, token: String) -> Result<LinkView, EngineError> {
        engine::link(&self.store, self.ctx(None), token).await
    }

    /// Records an answer through a response link (writes no delivery).
    pub async fn respond(
        &self,
        token: String,
        answer: crate::store::events::Answer,
    ) -> Result<LinkView, EngineError> {
        engine::respond(&self.store, self.ctx(None), token, answer).await
    }

    /// An answer by SMS from `phone` (E.164, SPEC §14) received on SMS
    /// channel `channel`: the active professionals with that number, the
    /// newest unresolved event that texted one of them on that channel (the
    /// one it texted wrote; several: nothing recorded), the response the text means; recorded as on the response
    /// page. `None`: nobody in the directory has that number.
    pub async fn respond_by_sms(
        &self,
        phone: &str,
        channel: &str,
        text: String,
    ) -> Result<Option<engine::SmsAnswer>, EngineError> {
        let set = self.config();
        let ids: Vec<String> = set
            .directory
            .professionals
            .iter()
            .filter(|p| p.active && p.phone.as_ref().is_some_and(|ph| ph.as_str() == phone))
            .map(|p| p.id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(None);
        }
        engine::respond_by_sms(&self.store, self.ctx(None), ids, channel.to_string(), text)
            .await
            .map(Some)
    }

    /// One turn of the timers: escalation steps due now, then routine
    /// reminders due now; wakes the outbox for what they wrote. An error of
    /// one is logged and does not stop the other.
    pub async fn timers_turn(&self) -> TimerTurn {
        self.beat();
        let mut turn = TimerTurn::default();
        match self.escalation_tick().await {
            Ok(n) => turn.escalations = n,
            Err(e) => tracing::error!(error = %e, "escalation tick failed"),
        }
        match self.reminder_tick().await {
            Ok(o) => {
                turn.reminder_deliveries = o.deliveries;
                self.written(o.deliveries);
            }
            Err(e) => tracing::error!(error = %e, "reminder tick failed"),
        }
        if let Err(e) = self.swap_alert_tick().await {
            tracing::error!(error = %e, "swap alert tick failed");
        }
        turn
    }

    /// Escalation timers due now, alone (tests of the scheduler tick it by
    /// hand); wakes the outbox for what they wrote.
    pub async fn escalation_tick(&self) -> Result<usize, EngineError> {
        let n = engine::tick(&self.store, self.ctx(None)).await?;
        self.written(n);
        Ok(n)
    }

    /// Wakes the background loops (a test moved the clock).
    pub fn kick(&self) {
        self.outbox.wake();
        self.timers_wake.notify_one();
    }

    /// The timer loop says it is alive.
    fn beat(&self) {
        *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
    }

    /// How long since the timer loop last went round.
    pub fn heartbeat_age(&self) -> Duration {
        self.heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Whether the daemon is healthy enough to tell the external monitor
    /// so (`[heartbeat]`, SPEC §16): the timer loop went round within
    /// [`TIMERS_STALE`], the database took a real write (a write
    /// transaction), and the outbox is not stuck (nothing due for
    /// [`OUTBOX_STUCK`] without a send attempt in that time). `Err` says
    /// what is wrong.
    pub async fn health(&self) -> Result<(), String> {
        let age = self.heartbeat_age();
        if age > TIMERS_STALE {
            return Err(format!("the timer loop has not run for {}s", age.as_secs()));
        }
        let now = self.clock.now();
        self.store
            .call(move |c| crate::store::health::write_probe(c, now))
            .await
            .map_err(|e| format!("the database does not take writes: {e}"))?;
        let since = now - chrono::Duration::from_std(OUTBOX_STUCK).unwrap_or_default();
        let stuck = self
            .store
            .call(move |c| crate::store::health::outbox_stuck(c, since))
            .await
            .map_err(|e| format!("cannot read the outbox: {e}"))?;
        if stuck {
            return Err(format!(
                "the outbox is stuck: deliveries due for {} min and no send attempted",
                OUTBOX_STUCK.as_secs() / 60
            ));
        }
        Ok(())
    }

    /// Fires the routine reminders due now (SPEC §6).
    pub async fn reminder_tick(
        &self,
    ) -> Result<crate::schedule::reminders::TickOutcome, StoreError> {
        let report: crate::schedule::reminders::CheckReport = Arc::new(|set, i, instant| {
            let roster = set.rosters.get(i)?;
            let check = roster.check.as_ref()?;
            let from = instant.with_timezone(&set.daemon.timezone).date_naive();
            let days = check.horizon.as_std().as_secs().div_ceil(86_400).max(1) as u32;
            Some(crate::roster::check(set, roster, from, days).mail_fr(&set.daemon.name))
        });
        let links = self.links.clone();
        let public_url = self.config().daemon.public_url.clone();
        let personal: crate::schedule::reminders::PersonalLink = Arc::new(move |id| {
            format!(
                "{}/g/{}",
                public_url.trim_end_matches('/'),
                links.personal_token(id)
            )
        });
        let out = crate::schedule::reminders::tick(
            &self.store,
            self.config(),
            self.clock.now(),
            Some(report),
            Some(personal),
        )
        .await?;
        self.metrics
            .reminder_firings
            .fetch_add(out.fired as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    /// Reloads every file. An invalid set is refused whole: the last good
    /// one stays in use and the failure is recorded.
    pub async fn reload(&self) -> ReloadStatus {
        let _guard = self.reload_lock.lock().await;
        let path = self.config_path.clone();
        let now = self.clock.now();
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = config::load(&path, |tz| now.with_timezone(&tz).date_naive());
            release_free_memory();
            loaded
        })
        .await;
        let (set, diags) = match loaded {
            Ok(l) => (l.set, l.diagnostics),
            Err(e) => {
                let mut d = Diagnostics::default();
                d.error(
                    &config::Loc::file_start(&self.config_path),
                    format!("reload task failed: {e}"),
                );
                (None, d)
            }
        };
        let status = {
            let mut st = self.reload.write().unwrap_or_else(|e| e.into_inner());
            st.last_attempt_at = now;
            match set {
                Some(set) => {
                    let old = self.file_config();
                    warn_restart_needed(&old, &set);
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                    st.ok = true;
                    st.errors.clear();
                    st.warnings = diags.warnings().map(|d| d.to_string()).collect();
                    st.last_good_at = now;
                    st.generation += 1;
                    self.metrics
                        .reloads_ok
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(
                        generation = st.generation,
                        warnings = st.warnings.len(),
                        "configuration reloaded"
                    );
                }
                None => {
                    st.ok = false;
                    self.metrics
                        .reloads_failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    st.errors = diags.errors().map(|d| d.to_string()).collect();
                    tracing::error!(
                        errors = st.errors.len(),
                        "reload refused, keeping the last good configuration"
                    );
                    for e in &st.errors {
                        tracing::error!("{e}");
                    }
                }
            }
            st.clone()
        };
        if status.ok
            && let Err(e) = self.refresh_swaps().await
        {
            tracing::error!(error = %e, "cannot read the swaps after the reload");
        }
        let summary = if status.ok {
            format!(
                "generation {}, {} warnings",
                status.generation,
                status.warnings.len()
            )
        } else {
            status.errors.join("\n")
        };
        if let Err(e) = self
            .store
            .record_config_load(now, status.ok, &summary)
            .await
        {
            tracing::error!(error = %e, "cannot record the reload in the database");
        }
        status
    }
}

/// Settings that only take effect at start: say so instead of ignoring them.
fn warn_restart_needed(old: &ConfigSet, new: &ConfigSet) {
    let (a, b) = (&old.daemon, &new.daemon);
    if a.listen != b.listen {
        tracing::warn!(old = %a.listen, new = %b.listen, "http.listen changed: restart Vigie to apply it");
    }
    if a.data_dir != b.data_dir {
        tracing::warn!("daemon.data_dir changed: restart Vigie to apply it");
    }
    let heartbeat =
        |h: &Option<config::daemon::HeartbeatConfig>| h.as_ref().map(|h| (h.url.clone(), h.every));
    if heartbeat(&a.heartbeat) != heartbeat(&b.heartbeat) {
        tracing::warn!("[heartbeat] changed: restart Vigie to apply it");
    }
    // The outbox's channels are built at start (deliver::channels), with
    // the secrets their files held then.
    let channels = |d: &config::DaemonConfig| {
        format!(
            "{:?}",
            (
                d.all_email_channels().collect::<Vec<_>>(),
                &d.sms,
                &d.webhooks
            )
        )
    };
    if channels(a) != channels(b)
        || crate::deliver::channels::names(a) != crate::deliver::channels::names(b)
    {
        tracing::warn!(
            "[email], [email.NAME], [sms.NAME], [webhook.NAME] or the channels changed: restart Vigie to apply it"
        );
    }
}

/// Gives back to the system the memory freed after a load: parsing a
/// directory of 10 000 professionals peaks at several times what the
/// loaded set keeps, and glibc keeps freed memory in the arena of the
/// thread that parsed.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
