//! The control loop: every interval, read the main meter and all chargers concurrently,
//! allocate, and write only what changed — decreases first, increases only into room that is
//! free now — plus heartbeats. Fail-safe and start-up rules come from [`super::safety`].
//! Every cycle ends in one [`CycleRecord`], handed on in order to whoever subscribed.

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::allocate::{
    allocate, online_draw_a, AllocInput, ChargerInput, Decision, LinkState, Reason, Turn,
};
use super::base::BaseLoadFilter;
use chrono::{DateTime, Utc};

use super::charger::{prepare_fallback, setpoint_refresh, setpoint_step_a, IdleWatch};
use super::command::ControlCommand;
use super::demand::{DemandMeter, DemandStatus};
use super::gate::{gate, GateCharger, GateConstraint};
use super::limits::{CycleLimits, CycleObs, Limits};
use super::ramp::next_setpoint;
use super::record::{ChargerCycle, CycleRecord, GridReading, SiteLimit};
use super::safety::{MeterWatch, Mode, Transition};
use super::usage::{UsageParams, UsageTracker};
use super::why;
use crate::alerts::{AlertKind, AlertSignal as ControlAlert};
use crate::clock::{Clock, ClockView};
use crate::config::{Charger, Config, Link};
use crate::devices::model::ChargeState;
use crate::devices::traits::{CurrentLimit, Heartbeat, ReadAll};
use crate::devices::{ModbusDevice, Snapshot};
use crate::modbus::{DeviceLink, Links};
use crate::sessions::tariff::TariffSnapshot;
use crate::sync::LinkStatus;
use crate::tokens::{AuthCache, AuthInput, AuthQueue, AuthStatus, Authoriser};

mod clock;
mod fast;
mod reconfigure;
mod shaping;
mod targets;
pub use fast::{lowered_setpoint, MeterCheck};
pub use shaping::alloc_priority;

/// A charger that fails this many reads in a row is reported offline (it is *counted* as
/// offline — at its last setpoint — from the first failed read).
const OFFLINE_AFTER_FAILS: u32 = 3;
/// Vehicles may take this long to follow a lower limit (IEC 61851); an overload that lasts
/// longer is an alert.
const RESPONSE_WINDOW: Duration = Duration::from_secs(5);

struct ChargerRt {
    cfg: Charger,
    dev: ModbusDevice<DeviceLink>,
    last: Option<Snapshot>,
    fails: u32,
    reported_offline: bool,
    reported_fault: bool,
    /// Last value written (None: never written).
    written: Option<f64>,
    written_at: Option<Instant>,
    heartbeat_at: Option<Instant>,
    usage: UsageTracker,
    turn: Turn,
    reason: Reason,
    idle: IdleWatch,
    /// The session's departure plan.
    plan: shaping::PlanRt,
    /// Who may charge here, session by session.
    auth: Authoriser,
}

impl ChargerRt {
    fn assumed_a(&self) -> f64 {
        self.written.unwrap_or(self.cfg.max_current_a)
    }
}

/// The load manager of one site.
pub struct Controller {
    cfg: Arc<Config>,
    meter: ModbusDevice<DeviceLink>,
    chargers: Vec<ChargerRt>,
    watch: MeterWatch,
    /// The mode the last full cycle ran in (the fast path acts in `normal` and `holding`).
    mode: Mode,
    /// Meter checks between cycles that lowered setpoints (see `runner/fast.rs`).
    fast_interventions: u64,
    base: BaseLoadFilter,
    clock: Clock,
    /// Every limit's source: the installer's and the cloud's (see [`super::limits`]).
    limits: Limits,
    /// The limits the last cycle resolved: what the fast path works to between cycles.
    cycle_limits: Arc<CycleLimits>,
    /// This cycle's allocation, for explaining it in the record (normal mode only).
    allocation: Option<(AllocInput, Vec<Decision>)>,
    /// How long the main meter had been silent at this cycle (None: it answered).
    meter_silent_s: Option<f64>,
    overload_since: Option<Instant>,
    overload_reported: bool,
    /// Cycles run so far (the last record's `seq`).
    seq: u64,
    /// Alert conditions seen this cycle, for its record.
    alerts: Vec<ControlAlert>,
    /// Where every cycle's record goes (see [`Controller::subscribe`]).
    records: Option<mpsc::Sender<Arc<CycleRecord>>>,
    /// Records dropped since the subscriber last kept up.
    records_dropped: u64,
    commands_tx: mpsc::UnboundedSender<ControlCommand>,
    commands_rx: mpsc::UnboundedReceiver<ControlCommand>,
    /// The demand windows (`[demand]`), and where the current one stands.
    demand: Option<DemandMeter>,
    demand_status: Option<DemandStatus>,
    demand_reported: bool,
    /// The tariff plans are priced with.
    tariff: Option<TariffSnapshot>,
    /// The wall clock as this cycle saw it (see `runner/clock.rs`).
    clock_view: ClockView,
    unsynced_reported: bool,
    /// Tokens the cloud accepted before (see [`crate::store::auth_cache`]).
    auth_cache: AuthCache,
    /// Where requests for the cloud go, and whether its link is up (None: no cloud).
    auth_cloud: Option<CloudAuth>,
}

/// The cloud as the authorisers see it.
struct CloudAuth {
    requests: AuthQueue,
    link: watch::Receiver<LinkStatus>,
}

impl Controller {
    /// Build the controller; devices are reached through `links`.
    pub fn new(
        cfg: Arc<Config>,
        links: &Links,
        clock: Clock,
    ) -> Result<Self, crate::modbus::link::LinkError> {
        let meter = ModbusDevice::new(cfg.meter.model, links.device(&cfg.meter, &cfg.buses)?);
        let params = UsageParams::new(cfg.control.unused_threshold_a);
        let mut chargers = Vec::with_capacity(cfg.chargers.len());
        for c in &cfg.chargers {
            let dev = ModbusDevice::new(c.device.model, links.device(&c.device, &cfg.buses)?);
            chargers.push(ChargerRt {
                usage: UsageTracker::new(
                    params,
                    c.phase_map.len(),
                    c.min_current_a,
                    c.max_current_a,
                ),
                cfg: c.clone(),
                dev,
                last: None,
                fails: 0,
                reported_offline: false,
                reported_fault: false,
                written: None,
                written_at: None,
                heartbeat_at: None,
                turn: Turn::default(),
                idle: IdleWatch::default(),
                reason: Reason::Offline,
                plan: shaping::PlanRt::default(),
                auth: Authoriser::new(&c.id, c.auth, c.token.as_deref()),
            });
        }
        let watch = MeterWatch::new(cfg.control.meter_timeout, Instant::now());
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let limits = Limits::new(cfg.clone());
        let cycle_limits = Arc::new(limits.resolve(&CycleObs {
            now: clock.now(),
            time_trusted: false,
            mode: Mode::Startup,
            demand: None,
            chargers: Vec::new(),
        }));
        Ok(Controller {
            meter,
            chargers,
            watch,
            mode: Mode::Startup,
            fast_interventions: 0,
            base: BaseLoadFilter::default(),
            clock,
            limits,
            cycle_limits,
            allocation: None,
            meter_silent_s: None,
            overload_since: None,
            overload_reported: false,
            seq: 0,
            alerts: Vec::new(),
            records: None,
            records_dropped: 0,
            commands_tx,
            commands_rx,
            demand: cfg
                .demand
                .clone()
                .map(|d| DemandMeter::new(d, cfg.site.timezone)),
            demand_status: None,
            demand_reported: false,
            tariff: tariff_of(&cfg),
            clock_view: ClockView::default(),
            unsynced_reported: false,
            auth_cache: AuthCache::default(),
            auth_cloud: None,
            cfg,
        })
    }

    /// Every cycle's record from now on, in order, through a channel of `capacity`. The loop
    /// never waits for the subscriber: should it fall that far behind, records are dropped
    /// (counted and logged; `seq` shows the gap) and control goes on.
    pub fn subscribe(&mut self, capacity: usize) -> mpsc::Receiver<Arc<CycleRecord>> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.records = Some(tx);
        rx
    }

    /// The site limit in force: the lowest of the installer's `grid_limit_a`, a commanded
    /// limit that has not expired, and the site's `ChargePointMax` profile.
    pub fn site_limit_a(&self) -> f64 {
        self.site_limit().limit_a
    }

    /// The site limit in force and where it comes from.
    pub fn site_limit(&self) -> SiteLimit {
        self.limits.site(self.clock.now(), self.clock_view.trusted)
    }

    /// Every limit the last cycle worked to, each with its source.
    pub fn cycle_limits(&self) -> Arc<CycleLimits> {
        self.cycle_limits.clone()
    }

    /// The demand window so far (None: the site has no `[demand]`, or no cycle ran yet).
    pub fn demand_status(&self) -> Option<DemandStatus> {
        self.demand_status
    }

    /// Set (or clear) a commanded site limit with no expiry; it can only ever lower the
    /// installer's.
    pub fn set_site_limit(&mut self, limit_a: Option<f64>) {
        self.set_site_limit_until(limit_a, None);
    }

    /// Set (or clear) a commanded site limit that lapses at `expires_at`.
    pub fn set_site_limit_until(
        &mut self,
        limit_a: Option<f64>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        self.limits.set_site_limit(limit_a, expires_at);
    }

    /// Apply a cloud `set_charger`; an unknown id is ignored (the command layer checks ids).
    fn set_charger(&mut self, id: &str, enabled: Option<bool>, max_current_a: Option<f64>) {
        let Some(i) = self.chargers.iter().position(|c| c.cfg.id == id) else {
            tracing::warn!(charger = id, "set_charger for a charger not in the config");
            return;
        };
        self.limits.set_charger(i, enabled, max_current_a);
    }

    /// Connects the `cloud` chargers' authorisers to the cloud: their requests go to
    /// `requests` (published on `P/auth/request`) while `link` says the link is up; while it
    /// is down, the token list and the cache decide at once.
    pub fn connect_cloud_auth(&mut self, requests: AuthQueue, link: watch::Receiver<LinkStatus>) {
        self.auth_cloud = Some(CloudAuth { requests, link });
    }

    /// Every charger's authorisation now, in the config's order.
    pub fn auth_status(&self) -> Vec<AuthStatus> {
        self.chargers
            .iter()
            .map(|c| c.auth.status().clone())
            .collect()
    }

    /// Steps every charger that was read this cycle: a new session, a token presented, the
    /// cloud's timeout. Requests for the cloud are queued for the link.
    fn observe_auth(&mut self) {
        let now = self.clock.now();
        let now_s = self.clock.elapsed_s();
        let cloud_online = self
            .auth_cloud
            .as_ref()
            .is_some_and(|c| c.link.borrow().connected);
        let list = self.cfg.auth.tokens.clone();
        let timeout_s = self.cfg.auth.cloud_timeout.as_secs_f64();
        for c in &mut self.chargers {
            // A charger not read, or read without its state, keeps its authorisation: a
            // missed read is not an unplug.
            let Some(s) = (if c.fails == 0 { c.last.as_ref() } else { None }) else {
                continue;
            };
            let Some(state) = s.state else {
                continue;
            };
            let request = c.auth.step(&AuthInput {
                connected: state.is_connected(),
                id_tag: s.id_tag.as_deref(),
                list: &list,
                cache: &self.auth_cache,
                cloud_online,
                now,
                now_s,
                cloud_timeout_s: timeout_s,
            });
            if let Some(r) = request {
                tracing::info!(charger = %c.cfg.id, request_id = %r.request_id, "asking the cloud whether a token may charge");
                if let Some(cloud) = &self.auth_cloud {
                    cloud.requests.push(r);
                }
            }
        }
    }

    /// The cloud's answer: the cache follows it, then the charger that asked.
    fn auth_answer(&mut self, a: crate::tokens::AuthAnswer) {
        match (a.accepted, a.expires_at) {
            (true, Some(until)) => self.auth_cache.insert(&a.token, until),
            _ => self.auth_cache.remove(&a.token),
        }
        let list = self.cfg.auth.tokens.clone();
        let mut used = false;
        for c in &mut self.chargers {
            used |= c.auth.answer(&a, &list);
        }
        if !used {
            tracing::debug!(request_id = %a.request_id, "an authorisation answer for no waiting charger (cache updated)");
        }
    }

    /// A sender for changes applied at the start of the next cycle (see [`ControlCommand`]).
    pub fn commands(&self) -> mpsc::UnboundedSender<ControlCommand> {
        self.commands_tx.clone()
    }

    /// Applies every queued change, then lets a commanded site limit lapse at its expiry.
    fn apply_commands(&mut self) {
        while let Ok(cmd) = self.commands_rx.try_recv() {
            match cmd {
                ControlCommand::SetSiteLimit {
                    limit_a,
                    expires_at,
                } => self.set_site_limit_until(limit_a, expires_at),
                ControlCommand::SetCharger {
                    charger,
                    enabled,
                    max_current_a,
                } => self.set_charger(&charger, enabled, max_current_a),
                ControlCommand::SetProfiles(set) => self.limits.set_profiles(set),
                ControlCommand::SetPlan { charger, plan } => self.set_plan(&charger, plan),
                ControlCommand::RestorePlan {
                    charger,
                    plan,
                    delivered_wh,
                } => self.restore_plan(&charger, plan, delivered_wh),
                ControlCommand::SetDemandLimit(month) => {
                    if let Some(d) = self.demand.as_mut() {
                        d.set_month_limit(month);
                    }
                }
                ControlCommand::RestoreMonthPeak { at, peak_kw } => {
                    if let Some(d) = self.demand.as_mut() {
                        d.restore_month_peak(at, peak_kw);
                    }
                }
                ControlCommand::AuthAnswer(a) => self.auth_answer(a),
                ControlCommand::RestoreAuthCache(entries) => {
                    self.auth_cache = AuthCache::new(entries);
                }
                ControlCommand::Reconfigure(cfg) => self.reconfigure(cfg),
            }
        }
        if self.limits.expire(self.clock.now()) {
            tracing::info!("commanded site limit expired: back to the installer's limit");
        }
    }

    /// Prepare the chargers' own fallbacks so that a dead daemon leaves the site safe: comms
    /// timeouts and writable safe currents. Failures are logged; the loop still runs.
    pub async fn start(&mut self) {
        let failsafe = self.cfg.site.failsafe_current_a;
        let jobs = self.chargers.iter().map(|c| async move {
            let safe = failsafe.min(c.cfg.max_current_a);
            if let Err(e) = prepare_fallback(&c.dev, safe).await {
                tracing::warn!(charger = %c.cfg.id, error = %e, "could not set the charger's own fallback");
            }
        });
        join_all(jobs).await;
    }

    /// One control cycle. Returns its record, which subscribers have been handed too.
    pub async fn cycle(&mut self) -> Arc<CycleRecord> {
        let started = std::time::Instant::now();
        self.observe_clock();
        self.apply_commands();
        let now = Instant::now();
        let now_s = self.clock.elapsed_s();

        let (meter, reads) = futures::join!(
            self.meter.read_all(),
            join_all(self.chargers.iter().map(|c| c.dev.read_all()))
        );
        let meter = meter.ok();
        let grid = meter
            .as_ref()
            .and_then(|s| complete_currents(s, self.cfg.site.phases));
        let (mode, transition) = self.watch.observe(grid.is_some(), now);
        self.mode = mode;
        self.meter_silent_s =
            (mode != Mode::Normal).then(|| self.watch.silent_for(now).as_secs_f64());
        match transition {
            Some(Transition::EnteredFailsafe) => self.alert(
                AlertKind::MeterOffline,
                true,
                None,
                "main meter unreadable: chargers at fail-safe current".into(),
            ),
            Some(Transition::LeftFailsafe) => self.alert(
                AlertKind::MeterOffline,
                false,
                None,
                "main meter answers again: normal control resumed".into(),
            ),
            None => {}
        }
        for (c, r) in self.chargers.iter_mut().zip(reads) {
            match r {
                Ok(s) => {
                    c.fails = 0;
                    c.last = Some(s);
                }
                Err(e) => {
                    c.fails += 1;
                    if c.fails == 1 {
                        tracing::debug!(charger = %c.cfg.id, error = %e, "charger read failed");
                    }
                }
            }
        }
        self.report_charger_health();
        self.observe_demand(meter.as_ref(), grid);
        self.observe_plans();
        self.observe_auth();

        let normal = matches!((mode, grid), (Mode::Normal, Some(_)));
        if normal {
            self.observe_usage(now_s);
        }
        // Every limit of this cycle, once: what follows works to this one value.
        let limits = Arc::new(self.resolve_limits(mode, normal));
        self.cycle_limits = limits.clone();
        self.allocation = None;
        let targets = match (mode, grid) {
            (Mode::Normal, Some(grid)) => self.normal_targets(grid, now_s, &limits),
            (Mode::Holding, _) => self.holding_targets(&limits),
            _ => {
                self.base.reset();
                self.failsafe_targets(&limits)
            }
        };
        self.write(targets, now).await;
        if let Some(grid) = grid {
            self.check_overload(grid, now, limits.site.limit_a);
        }
        let took = started.elapsed();
        let record = Arc::new(self.record(mode, meter.as_ref(), grid, took, &limits));
        self.hand_on(&record);
        record
    }

    fn online(c: &ChargerRt) -> Option<&Snapshot> {
        if c.fails == 0 {
            c.last.as_ref()
        } else {
            None
        }
    }

    /// Write what changed: decreases first, then increases; refresh setpoints whose validity
    /// runs out and heartbeats at half their period.
    async fn write(&mut self, targets: Vec<f64>, now: Instant) {
        let mut down = Vec::new();
        let mut up = Vec::new();
        for (i, (c, &t)) in self.chargers.iter().zip(&targets).enumerate() {
            if Self::online(c).is_none() && c.written.is_some() {
                // Unreachable: writing would only time out again; its reserve stays counted.
                continue;
            }
            let changed = c.written.is_none_or(|w| (w - t).abs() > 1e-6);
            let refresh = c
                .dev
                .spec()
                .charger
                .and_then(setpoint_refresh)
                .is_some_and(|every| {
                    c.written_at
                        .is_none_or(|at| now.duration_since(at) >= every)
                });
            if changed || refresh {
                if c.written.is_some_and(|w| t > w) {
                    up.push(i);
                } else {
                    down.push(i);
                }
            }
        }
        for batch in [down, up] {
            let batch: Vec<(usize, f64)> = batch.into_iter().map(|i| (i, targets[i])).collect();
            self.write_setpoints(&batch, now).await;
        }
        let beats = self.chargers.iter_mut().filter_map(|c| {
            let hb = c.dev.spec().charger.and_then(|s| s.heartbeat)?;
            let due = c.heartbeat_at.is_none_or(|at| {
                now.duration_since(at) >= Duration::from_secs_f64(f64::from(hb.period_s) / 2.0)
            });
            due.then(|| {
                c.heartbeat_at = Some(now);
                &c.dev
            })
        });
        for r in join_all(beats.map(|d| d.heartbeat())).await {
            if let Err(e) = r {
                tracing::debug!(error = %e, "heartbeat write failed");
            }
        }
    }

    /// Write each `(charger, setpoint)` at once, concurrently; returns how many were
    /// acknowledged. A failed write leaves the charger counted at the higher of its old and
    /// new setpoint until a write succeeds.
    async fn write_setpoints(&mut self, batch: &[(usize, f64)], now: Instant) -> usize {
        let jobs = batch.iter().map(|&(i, t)| {
            let c = &self.chargers[i];
            async move { (i, t, c.dev.set_current_limit(t).await) }
        });
        let mut acknowledged = 0;
        for (i, t, res) in join_all(jobs).await {
            let c = &mut self.chargers[i];
            match res {
                Ok(()) => {
                    c.written = Some(t);
                    c.written_at = Some(now);
                    acknowledged += 1;
                }
                Err(e) => {
                    c.written = Some(c.written.map_or(t, |w| w.max(t)));
                    tracing::debug!(charger = %c.cfg.id, error = %e, "setpoint write failed");
                }
            }
        }
        acknowledged
    }

    fn report_charger_health(&mut self) {
        let mut raised = Vec::new();
        for c in &mut self.chargers {
            if c.fails >= OFFLINE_AFTER_FAILS && !c.reported_offline {
                c.reported_offline = true;
                raised.push((
                    AlertKind::ChargerOffline,
                    true,
                    c.cfg.id.clone(),
                    "charger does not answer; counted at its last setpoint".to_string(),
                ));
            } else if c.fails == 0 && c.reported_offline {
                c.reported_offline = false;
                raised.push((
                    AlertKind::ChargerOffline,
                    false,
                    c.cfg.id.clone(),
                    "charger answers again".to_string(),
                ));
            }
            let fault = Self::online(c)
                .and_then(|s| s.state)
                .is_some_and(|s| s.is_fault());
            if fault != c.reported_fault && (fault || c.fails == 0) {
                c.reported_fault = fault;
                let msg = if fault {
                    "charger reports an error state (E/F)"
                } else {
                    "charger error state cleared"
                };
                raised.push((
                    AlertKind::ChargerFault,
                    fault,
                    c.cfg.id.clone(),
                    msg.to_string(),
                ));
            }
        }
        for (kind, on, id, msg) in raised {
            self.alert(kind, on, Some(id), msg);
        }
    }

    fn check_overload(&mut self, grid: [f64; 3], now: Instant, limit: f64) {
        let over = grid
            .iter()
            .take(usize::from(self.cfg.site.phases))
            .any(|&a| a > limit);
        match (over, self.overload_since) {
            (true, None) => self.overload_since = Some(now),
            (true, Some(since))
                if !self.overload_reported && now.duration_since(since) > RESPONSE_WINDOW =>
            {
                self.overload_reported = true;
                self.alert(
                    AlertKind::Overload,
                    true,
                    None,
                    format!(
                        "grid current {grid:.1?} A above the {limit} A limit for more than {}s",
                        RESPONSE_WINDOW.as_secs()
                    ),
                );
            }
            (false, Some(_)) => {
                self.overload_since = None;
                if std::mem::replace(&mut self.overload_reported, false) {
                    self.alert(
                        AlertKind::Overload,
                        false,
                        None,
                        "grid current back under the limit".into(),
                    );
                }
            }
            _ => {}
        }
    }

    fn alert(&mut self, kind: AlertKind, raised: bool, charger: Option<String>, message: String) {
        if raised {
            tracing::warn!(kind = ?kind, charger = charger.as_deref().unwrap_or("-"), "{message}");
        } else {
            tracing::info!(kind = ?kind, charger = charger.as_deref().unwrap_or("-"), "{message}");
        }
        self.alerts.push(ControlAlert {
            kind,
            raised,
            charger,
            message,
        });
    }

    fn record(
        &mut self,
        mode: Mode,
        meter: Option<&Snapshot>,
        grid_a: Option<[f64; 3]>,
        took: std::time::Duration,
        limits: &CycleLimits,
    ) -> CycleRecord {
        let phases = usize::from(self.cfg.site.phases);
        let grid = meter.map(|s| {
            let mut r = GridReading {
                current_a: s.current_a,
                voltage_v: s.voltage_v,
                power_w: s.power_w,
            };
            for p in phases..3 {
                r.current_a[p] = None;
                r.voltage_v[p] = None;
            }
            r
        });
        let allocation = self.allocation.take();
        let slacks = allocation
            .as_ref()
            .map(|(input, decisions)| super::allocate::slack(input, decisions));
        let ctx = why::Context {
            limits,
            allocation: allocation
                .as_ref()
                .zip(slacks.as_deref())
                .map(|((input, decisions), s)| (input, decisions.as_slice(), s)),
            tz: self.cfg.site.timezone,
            meter_silent_s: self.meter_silent_s,
        };
        let chargers = self
            .chargers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let s = Self::online(c);
                let seen = why::Seen {
                    online: s.is_some(),
                    connected: s.and_then(|s| s.state).is_some_and(|st| st.is_connected()),
                    reason: c.reason,
                    setpoint_a: c.written,
                };
                let current_a = s.map(|s| s.current_a).unwrap_or_default();
                ChargerCycle {
                    id: c.cfg.id.clone(),
                    online: s.is_some(),
                    failed_reads: c.fails,
                    state: s.and_then(|s| s.state),
                    current_a,
                    power_w: s.and_then(|s| s.power_w),
                    energy_wh: s.and_then(|s| s.energy_wh),
                    applied_current_a: s.and_then(|s| s.applied_current_a),
                    id_tag: s.and_then(|s| s.id_tag.clone()),
                    ev_id: s.and_then(|s| s.ev_id.clone()),
                    auth: c.auth.status().clone(),
                    setpoint_a: c.written,
                    reason: c.reason,
                    enabled: limits.chargers[i].enabled,
                    link: c.dev.io().stats(),
                    plan: c.plan.status(),
                    why: why::explain(i, seen, &ctx),
                }
            })
            .collect();
        self.seq += 1;
        let (at, steady) = self.clock.now_and_steady();
        CycleRecord {
            seq: self.seq,
            at,
            mode,
            grid,
            meter_link: self.meter.io().stats(),
            grid_a,
            limit: limits.control,
            demand: self.demand_status,
            chargers,
            alerts: std::mem::take(&mut self.alerts),
            cycle_ms: took.as_secs_f64() * 1000.0,
            clock: self.clock_view,
            steady_at: Some(steady),
        }
    }

    /// Hands the record to the subscriber without waiting: control never waits for storage.
    fn hand_on(&mut self, record: &Arc<CycleRecord>) {
        let Some(tx) = &self.records else {
            return;
        };
        match tx.try_send(record.clone()) {
            Ok(()) => {
                if self.records_dropped > 0 {
                    tracing::warn!(
                        dropped = self.records_dropped,
                        "cycle records flow again after a stall"
                    );
                    self.records_dropped = 0;
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.records_dropped == 0 {
                    tracing::error!(
                        seq = record.seq,
                        "sessions and alerts are not keeping up: cycle records dropped; control goes on"
                    );
                }
                self.records_dropped += 1;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.records = None,
        }
    }

    /// Set every charger to its safe current (the fail-safe current) before exit. Returns
    /// the ids of the chargers that could not be written (their own fallback takes over).
    pub async fn shutdown(&mut self) -> Vec<String> {
        let targets: Vec<f64> = self
            .chargers
            .iter()
            .enumerate()
            .map(|(i, c)| self.limits.failsafe_a(i).min(c.written.unwrap_or(f64::MAX)))
            .collect();
        let jobs = self.chargers.iter().zip(targets).map(|(c, t)| async move {
            match c.dev.set_current_limit(t).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(charger = %c.cfg.id, error = %e, "could not set safe current at shutdown");
                    Some(c.cfg.id.clone())
                }
            }
        });
        join_all(jobs).await.into_iter().flatten().collect()
    }

    /// Run cycles every `interval`, and between them read the main meter every
    /// `meter_interval` (the overload fast path, [`Controller::meter_check`]), until `stop`
    /// resolves; then write safe currents. Returns the chargers that could not be set to
    /// their safe current.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) -> Vec<String> {
        self.start().await;
        let interval = self.cfg.control.interval;
        let every = self.cfg.control.meter_interval;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut checks = tokio::time::interval_at(Instant::now() + every, every);
        checks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let fast = every < interval;
        let mut last_cycle = Instant::now();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = tick.tick() => {
                    self.cycle().await;
                    last_cycle = Instant::now();
                }
                _ = checks.tick(), if fast => {
                    // A check that falls on a cycle is that cycle's meter read.
                    if last_cycle.elapsed() >= every / 2 {
                        self.meter_check().await;
                    }
                }
            }
        }
        self.shutdown().await
    }
}

/// The config's tariff, for pricing plans (parsed at validation: there is nothing left to
/// fail here).
fn tariff_of(cfg: &Config) -> Option<TariffSnapshot> {
    cfg.tariff.clone()
}

/// The meter's phase currents, if every phase the site has was read.
fn complete_currents(s: &Snapshot, phases: u8) -> Option<[f64; 3]> {
    let mut out = [0.0; 3];
    for (p, o) in out.iter_mut().enumerate().take(usize::from(phases)) {
        *o = s.current_a[p]?;
    }
    Some(out)
}

/// A charger's measured current per charger phase (missing phases read as 0).
fn charger_currents(s: &Snapshot, phases: usize) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (p, o) in out.iter_mut().enumerate().take(phases) {
        *o = s.current_a[p].unwrap_or(0.0).max(0.0);
    }
    out
}
