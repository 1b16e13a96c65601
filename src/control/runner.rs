//! The control loop: every interval, read the main meter and all chargers concurrently,
//! allocate, and write only what changed — decreases first, increases only into room that is
//! free now — plus heartbeats. Fail-safe and start-up rules come from [`super::safety`].

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::allocate::{
    allocate, AllocInput, ChargerInput, CircuitInput, Decision, LinkState, Reason, Turn,
};
use super::base::BaseLoadFilter;
use super::gate::{gate, GateCharger, GateConstraint};
use super::ramp::next_setpoint;
use super::safety::{MeterWatch, Mode, Transition};
use super::usage::{UsageParams, UsageTracker};
use super::view::{AlertKind, ChargerView, ControlEvent, SiteView};
use crate::clock::Clock;
use crate::config::{Charger, Config};
use crate::devices::model::ChargeState;
use crate::devices::traits::{CommsTimeout, CurrentLimit, Heartbeat, ReadAll, SafeCurrent};
use crate::devices::{DeviceError, ModbusDevice, Snapshot};
use crate::modbus::{DeviceLink, Links};

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
}

impl ChargerRt {
    fn step_a(&self) -> f64 {
        let spec = self.dev.spec();
        match spec.charger.map(|c| c.setpoint.scale) {
            // A register in whole amps takes whole amps; finer ones get 0.1 A.
            Some(scale) if scale >= 1.0 => 1.0,
            _ => 0.1,
        }
    }

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
    base: BaseLoadFilter,
    clock: Clock,
    /// A lower site limit from a command, if any (never above `grid_limit_a`).
    site_limit_override: Option<f64>,
    overload_since: Option<Instant>,
    overload_reported: bool,
    view_tx: watch::Sender<Arc<SiteView>>,
    events: mpsc::UnboundedSender<ControlEvent>,
}

impl Controller {
    /// Build the controller; devices are reached through `links`.
    pub fn new(
        cfg: Arc<Config>,
        links: &Links,
        clock: Clock,
        events: mpsc::UnboundedSender<ControlEvent>,
    ) -> Result<(Self, watch::Receiver<Arc<SiteView>>), crate::modbus::link::LinkError> {
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
            });
        }
        let (view_tx, view_rx) = watch::channel(Arc::new(SiteView::default()));
        let watch = MeterWatch::new(cfg.control.meter_timeout, Instant::now());
        Ok((
            Controller {
                cfg,
                meter,
                chargers,
                watch,
                base: BaseLoadFilter::default(),
                clock,
                site_limit_override: None,
                overload_since: None,
                overload_reported: false,
                view_tx,
                events,
            },
            view_rx,
        ))
    }

    /// The site limit in force: the installer's `grid_limit_a`, or a lower commanded one.
    pub fn site_limit_a(&self) -> f64 {
        let hard = self.cfg.site.grid_limit_a;
        self.site_limit_override.map_or(hard, |l| l.min(hard))
    }

    /// Set (or clear) a commanded site limit; it can only ever lower the installer's.
    pub fn set_site_limit(&mut self, limit_a: Option<f64>) {
        self.site_limit_override = limit_a.map(|l| l.clamp(0.0, self.cfg.site.grid_limit_a));
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

    /// One control cycle. Returns its duration (wall time spent, for statistics).
    pub async fn cycle(&mut self) -> std::time::Duration {
        let started = std::time::Instant::now();
        let now = Instant::now();
        let now_s = self.clock.elapsed_s();

        let (meter, reads) = futures::join!(
            self.meter.read_all(),
            join_all(self.chargers.iter().map(|c| c.dev.read_all()))
        );
        let grid = meter
            .ok()
            .and_then(|s| complete_currents(&s, self.cfg.site.phases));
        let (mode, transition) = self.watch.observe(grid.is_some(), now);
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

        let targets = match (mode, grid) {
            (Mode::Normal, Some(grid)) => self.normal_targets(grid, now_s),
            (Mode::Holding, _) => self.holding_targets(),
            _ => {
                self.base.reset();
                self.failsafe_targets()
            }
        };
        self.write(targets, now).await;
        if let Some(grid) = grid {
            self.check_overload(grid, now);
        }
        let took = started.elapsed();
        self.publish_view(mode, grid, took);
        took
    }

    fn online(c: &ChargerRt) -> Option<&Snapshot> {
        if c.fails == 0 {
            c.last.as_ref()
        } else {
            None
        }
    }

    fn normal_targets(&mut self, grid: [f64; 3], now_s: f64) -> Vec<f64> {
        // Usage first: it needs this cycle's measurement and the last setpoint.
        let mut inputs = Vec::with_capacity(self.chargers.len());
        for c in &mut self.chargers {
            let link = match Self::online(c).cloned() {
                Some(s) => {
                    let state = s.state.unwrap_or(ChargeState::A);
                    if !state.is_connected() {
                        c.usage.reset();
                    }
                    let measured = charger_currents(&s, c.cfg.phase_map.len());
                    c.idle.observe(
                        state,
                        c.written.unwrap_or(0.0) >= c.cfg.min_current_a,
                        &measured,
                        now_s,
                    );
                    c.usage.observe(
                        c.written.unwrap_or(0.0),
                        &measured[..c.cfg.phase_map.len()],
                        state.is_charging(),
                        now_s,
                    );
                    LinkState::Online {
                        state,
                        measured_a: measured,
                    }
                }
                None => LinkState::Offline {
                    assumed_a: c.assumed_a(),
                },
            };
            inputs.push(ChargerInput {
                phase_map: c.cfg.phase_map.clone(),
                min_a: c.cfg.min_current_a,
                max_a: c.cfg.max_current_a,
                // A car that took nothing when offered current (charging complete, or not
                // ready) is served after every car that charges, and only at its minimum:
                // it keeps the chance to resume without holding capacity others can use.
                priority: if c.idle.idle {
                    0
                } else {
                    c.cfg.priority.saturating_add(1)
                },
                enabled: c.cfg.enabled,
                profile_limit_a: c.idle.idle.then_some(c.cfg.min_current_a),
                step_a: c.step_a(),
                link,
                usage: c.usage.usage(),
                waiting_since_s: c.turn.waiting_since_s,
                charging_since_s: c.turn.charging_since_s,
            });
        }
        let circuits = self.circuit_inputs();
        let grid = self.filtered_grid(grid, &inputs);
        let input = AllocInput {
            phases: usize::from(self.cfg.site.phases),
            site_limit_a: self.site_limit_a(),
            margin_a: self.cfg.site.margin_a,
            circuits,
            grid_a: grid,
            chargers: inputs,
            now_s,
            rotation_interval_s: self.cfg.control.rotation_interval.as_secs_f64(),
        };
        let decisions = allocate(&input);
        for ((c, d), i) in self
            .chargers
            .iter_mut()
            .zip(&decisions)
            .zip(&input.chargers)
        {
            let connected =
                matches!(i.link, LinkState::Online { state, .. } if state.is_connected());
            c.turn = c.turn.after(d, connected, now_s);
            c.reason = d.reason;
        }
        self.ramp_and_gate(&input, &decisions)
    }

    /// The grid reading with its base-load part smoothed (see [`BaseLoadFilter`]): chargers'
    /// measured currents are kept as read, so the allocator's base load is the filtered one.
    fn filtered_grid(&mut self, grid: [f64; 3], inputs: &[ChargerInput]) -> [f64; 3] {
        let mut chargers = [0.0; 3];
        for i in inputs {
            if let LinkState::Online { measured_a, .. } = i.link {
                for (&gp, a) in i.phase_map.iter().zip(measured_a) {
                    if let Some(c) = chargers.get_mut(gp) {
                        *c += a;
                    }
                }
            }
        }
        let raw: [f64; 3] = std::array::from_fn(|p| grid[p] - chargers[p]);
        let threshold = self.site_limit_a() - self.cfg.site.margin_a;
        let base = self.base.update(raw, grid, threshold);
        std::array::from_fn(|p| base[p] + chargers[p])
    }

    fn circuit_inputs(&self) -> Vec<CircuitInput> {
        self.cfg
            .circuits
            .iter()
            .map(|ci| CircuitInput {
                limit_a: ci.limit_a,
                members: self
                    .chargers
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| ci.chargers.contains(&c.cfg.id))
                    .map(|(i, _)| i)
                    .collect(),
            })
            .collect()
    }

    /// Ramp increases, then let them through only into room free now. The allocation keeps
    /// the margin free; the gate lets the few seconds in which a car follows a lower limit use
    /// the margin, but never the limit itself: the worst case of that moment (the slow car
    /// still at its old current, the fast one already at its new) stays under the fuse.
    fn ramp_and_gate(&self, input: &AllocInput, decisions: &[Decision]) -> Vec<f64> {
        let ctl = &self.cfg.control;
        // Free capacity per constraint: site (0) then circuits (1..).
        let mut site_free = [0.0; 3];
        for (p, free) in site_free.iter_mut().enumerate() {
            let online: f64 = self
                .chargers
                .iter()
                .zip(&input.chargers)
                .map(|(c, i)| match i.link {
                    LinkState::Online { measured_a, .. } => c
                        .cfg
                        .phase_map
                        .iter()
                        .zip(measured_a)
                        .filter(|(&gp, _)| gp == p)
                        .map(|(_, a)| a)
                        .sum::<f64>(),
                    LinkState::Offline { .. } => 0.0,
                })
                .sum();
            let base = input.grid_a[p] - online;
            *free = input.site_limit_a
                - base
                - offline_reserve(&self.chargers, &input.chargers, p, None);
        }
        let mut constraints = vec![GateConstraint { free_a: site_free }];
        for ci in &input.circuits {
            let mut free = [0.0; 3];
            for (p, f) in free.iter_mut().enumerate() {
                *f = ci.limit_a
                    - offline_reserve(&self.chargers, &input.chargers, p, Some(&ci.members));
            }
            constraints.push(GateConstraint { free_a: free });
        }
        let mut gated = Vec::new();
        let mut order: Vec<usize> = (0..self.chargers.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(input.chargers[i].priority));
        for (i, (c, d)) in self.chargers.iter().zip(decisions).enumerate() {
            let previous = c.written.unwrap_or(0.0);
            let wanted = if matches!(d.reason, Reason::Offline) {
                // Nothing can be written; keep it reserved as it is.
                previous
            } else {
                next_setpoint(
                    c.written,
                    d.setpoint_a,
                    ctl.ramp_step_a,
                    ctl.hysteresis_a,
                    c.cfg.min_current_a,
                )
            };
            let active = input.chargers[i].usage.active;
            let measured = match input.chargers[i].link {
                LinkState::Online { measured_a, .. } => measured_a,
                LinkState::Offline { assumed_a } => [assumed_a; 3],
            };
            let mut grid_phases = Vec::new();
            let mut meas = Vec::new();
            for (k, &gp) in c.cfg.phase_map.iter().enumerate() {
                if active[k] {
                    grid_phases.push(gp);
                    meas.push(measured[k]);
                }
            }
            let mut cons = vec![0];
            cons.extend(
                input
                    .circuits
                    .iter()
                    .enumerate()
                    .filter(|(_, ci)| ci.members.contains(&i))
                    .map(|(k, _)| k + 1),
            );
            gated.push(GateCharger {
                grid_phases,
                measured_a: meas,
                previous_a: previous,
                wanted_a: wanted,
                min_a: c.cfg.min_current_a,
                constraints: cons,
            });
        }
        gate(&gated, &constraints, &order)
    }

    /// Meter briefly missing: keep what was written, only ever lower it.
    fn holding_targets(&self) -> Vec<f64> {
        self.chargers
            .iter()
            .map(|c| match Self::online(c) {
                Some(s) if !s.state.is_some_and(|st| st.is_connected()) => 0.0,
                _ => c.written.unwrap_or_else(|| self.failsafe_for(c)),
            })
            .collect()
    }

    fn failsafe_for(&self, c: &ChargerRt) -> f64 {
        let f = self.cfg.site.failsafe_current_a.min(c.cfg.max_current_a);
        if f < c.cfg.min_current_a {
            0.0
        } else {
            f
        }
    }

    /// No trustworthy measurement: every charger at the fail-safe current (proved to fit the
    /// limit with no knowledge of the base load by config validation).
    fn failsafe_targets(&self) -> Vec<f64> {
        self.chargers
            .iter()
            .map(|c| {
                let connected = Self::online(c)
                    .and_then(|s| s.state)
                    .is_some_and(|s| s.is_connected());
                if connected && c.cfg.enabled {
                    self.failsafe_for(c)
                } else {
                    0.0
                }
            })
            .collect()
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
            let jobs = batch.iter().map(|&i| {
                let c = &self.chargers[i];
                let t = targets[i];
                async move { (i, t, c.dev.set_current_limit(t).await) }
            });
            for (i, t, res) in join_all(jobs).await {
                let c = &mut self.chargers[i];
                match res {
                    Ok(()) => {
                        c.written = Some(t);
                        c.written_at = Some(now);
                    }
                    Err(e) => {
                        // Count it at the higher of old and new until a write succeeds.
                        c.written = Some(c.written.map_or(t, |w| w.max(t)));
                        tracing::debug!(charger = %c.cfg.id, error = %e, "setpoint write failed");
                    }
                }
            }
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

    fn check_overload(&mut self, grid: [f64; 3], now: Instant) {
        let limit = self.site_limit_a();
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

    fn alert(&self, kind: AlertKind, raised: bool, charger: Option<String>, message: String) {
        if raised {
            tracing::warn!(kind = ?kind, charger = charger.as_deref().unwrap_or("-"), "{message}");
        } else {
            tracing::info!(kind = ?kind, charger = charger.as_deref().unwrap_or("-"), "{message}");
        }
        let _ = self.events.send(ControlEvent::Alert {
            kind,
            raised,
            charger,
            message,
            at: self.clock.now(),
        });
    }

    fn publish_view(&self, mode: Mode, grid: Option<[f64; 3]>, took: std::time::Duration) {
        let chargers = self
            .chargers
            .iter()
            .map(|c| {
                let s = Self::online(c);
                ChargerView {
                    id: c.cfg.id.clone(),
                    online: s.is_some(),
                    state: s.and_then(|s| s.state),
                    current_a: s.map(|s| charger_currents(s, 3)).unwrap_or_default(),
                    power_w: s.and_then(|s| s.power_w),
                    energy_wh: s.and_then(|s| s.energy_wh),
                    setpoint_a: c.written,
                    reason: format!("{:?}", c.reason),
                }
            })
            .collect();
        let view = SiteView {
            at: Some(self.clock.now()),
            mode: Some(mode),
            grid_a: grid,
            limit_a: self.site_limit_a(),
            chargers,
            cycle_ms: took.as_secs_f64() * 1000.0,
        };
        self.view_tx.send_replace(Arc::new(view));
    }

    /// Set every charger to its safe current (the fail-safe current) before exit.
    pub async fn shutdown(&mut self) {
        let targets: Vec<f64> = self
            .chargers
            .iter()
            .map(|c| self.failsafe_for(c).min(c.written.unwrap_or(f64::MAX)))
            .collect();
        let jobs = self.chargers.iter().zip(targets).map(|(c, t)| async move {
            if let Err(e) = c.dev.set_current_limit(t).await {
                tracing::warn!(charger = %c.cfg.id, error = %e, "could not set safe current at shutdown");
            }
        });
        join_all(jobs).await;
    }

    /// Run cycles every `interval` until `stop` resolves, then write safe currents.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        self.start().await;
        let mut tick = tokio::time::interval(self.cfg.control.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => { self.cycle().await; }
            }
        }
        self.shutdown().await;
    }
}

/// How often a setpoint must be rewritten though unchanged, so the charger does not fall back
/// while the controller lives: within a third of a setpoint's validity (Alfen), and within half
/// the comms timeout of a model that has no heartbeat register to feed it (ABB Terra AC stops
/// charging when it expires).
fn setpoint_refresh(spec: crate::devices::model::ChargerSpec) -> Option<Duration> {
    let validity = spec
        .setpoint_validity_s
        .map(|v| Duration::from_secs(u64::from(v)) / 3);
    let comms = match (spec.heartbeat, spec.comms_timeout) {
        (None, Some(ct)) => Some(Duration::from_secs(u64::from(ct.default_s)) / 2),
        _ => None,
    };
    match (validity, comms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A car is idle when it was offered at least its minimum for [`IDLE_AFTER_S`] and drew
/// nothing: charging complete, or not ready. It stops being idle the moment it draws.
const IDLE_AFTER_S: f64 = 60.0;
/// Below this a phase counts as drawing nothing.
const DRAWING_A: f64 = 1.0;

#[derive(Debug, Clone, Default)]
pub struct IdleWatch {
    offered_since_s: Option<f64>,
    pub idle: bool,
}

impl IdleWatch {
    pub fn observe(&mut self, state: ChargeState, offered: bool, measured: &[f64; 3], now_s: f64) {
        let drawing = measured.iter().any(|&a| a >= DRAWING_A);
        if !state.is_connected() || drawing {
            *self = IdleWatch::default();
            return;
        }
        if !offered {
            self.offered_since_s = None;
            return;
        }
        let since = *self.offered_since_s.get_or_insert(now_s);
        if now_s - since >= IDLE_AFTER_S {
            self.idle = true;
        }
    }
}

/// Set what a model offers so that a dead daemon leaves the site safe: its comms timeout, and
/// its safe current where that is writable. A capability the model lacks is not an error.
async fn prepare_fallback(dev: &ModbusDevice<DeviceLink>, safe_a: f64) -> Result<(), DeviceError> {
    if let Some(t) = dev.default_comms_timeout() {
        dev.configure_comms_timeout(t).await?;
    }
    match dev.set_safe_current_a(safe_a).await {
        Ok(()) | Err(DeviceError::Unsupported(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn offline_reserve(
    chargers: &[ChargerRt],
    inputs: &[ChargerInput],
    phase: usize,
    members: Option<&[usize]>,
) -> f64 {
    chargers
        .iter()
        .zip(inputs)
        .enumerate()
        .filter(|(i, _)| members.is_none_or(|m| m.contains(i)))
        .filter_map(|(_, (c, inp))| match inp.link {
            LinkState::Offline { assumed_a } => {
                Some(c.cfg.phase_map.iter().filter(|&&gp| gp == phase).count() as f64 * assumed_a)
            }
            LinkState::Online { .. } => None,
        })
        .sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    const CHARGING: [f64; 3] = [10.0, 10.0, 10.0];
    const NOTHING: [f64; 3] = [0.0, 0.3, 0.0];

    #[test]
    fn a_car_offered_current_that_draws_nothing_becomes_idle_after_a_minute() {
        let mut w = IdleWatch::default();
        w.observe(ChargeState::B, true, &NOTHING, 0.0);
        w.observe(ChargeState::B, true, &NOTHING, IDLE_AFTER_S - 1.0);
        assert!(!w.idle, "not before the minute is up");
        w.observe(ChargeState::B, true, &NOTHING, IDLE_AFTER_S);
        assert!(w.idle);
        w.observe(ChargeState::C, true, &CHARGING, IDLE_AFTER_S + 1.0);
        assert!(!w.idle, "drawing again ends it at once");
    }

    #[test]
    fn a_paused_car_is_waiting_not_idle() {
        let mut w = IdleWatch::default();
        for t in 0..200 {
            w.observe(ChargeState::B, false, &NOTHING, f64::from(t));
        }
        assert!(!w.idle, "it was never offered anything");
        w.observe(ChargeState::B, true, &NOTHING, 200.0);
        w.observe(ChargeState::B, true, &NOTHING, 200.0 + IDLE_AFTER_S - 1.0);
        assert!(!w.idle, "the minute counts from the offer");
    }

    #[test]
    fn setpoints_are_refreshed_before_the_charger_gives_up_on_them() {
        let find = |name| {
            crate::devices::registry::find(name)
                .and_then(|m| m.charger)
                .expect("charger model")
        };
        let alfen = setpoint_refresh(find("alfen-eve")).expect("validity");
        assert_eq!(alfen, Duration::from_secs(20), "a third of Alfen's 60 s");
        let abb = find("abb-terra-ac");
        let every = setpoint_refresh(abb).expect("comms timeout without heartbeat");
        let timeout = abb
            .comms_timeout
            .map(|c| u64::from(c.default_s))
            .unwrap_or(0);
        assert!(every.as_secs() * 2 <= timeout, "{every:?} vs {timeout} s");
        // Vestel feeds its timeout through the alive register instead.
        assert_eq!(setpoint_refresh(find("vestel-evc04")), None);
    }

    #[test]
    fn unplugging_clears_idle() {
        let mut w = IdleWatch::default();
        w.observe(ChargeState::B, true, &NOTHING, 0.0);
        w.observe(ChargeState::B, true, &NOTHING, IDLE_AFTER_S);
        assert!(w.idle);
        w.observe(ChargeState::A, false, &NOTHING, IDLE_AFTER_S + 1.0);
        assert!(!w.idle);
    }
}
