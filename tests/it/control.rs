//! The real control loop against the real simulator: start-up and meter fail-safe, overload
//! answered within one cycle, and between cycles within one meter period (the fast path), silent chargers kept reserved, the chargers' own fallbacks set
//! at start, safe currents at shutdown and on SIGTERM of the real binary, and the scorecard of
//! every shipped scenario. Every assertion reads the simulator's truth, never the
//! controller's own view.

use std::sync::Arc;

use tokio::time::{Duration, Instant};

use evsite::alerts::{AlertKind, AlertSignal};
use evsite::clock::Clock;
use evsite::config::Config;
use evsite::control::runner::{Controller, MeterCheck};
use evsite::devices::codec::{decode_number, encode_number};
use evsite::devices::model::ChargeState;
use evsite::devices::registry;
use evsite::devices::regmap::Register;
use evsite::simulator::{ChargerTruth, Scenario, SharedSite, SiteModel};
use evsite_sim::run::{in_memory, InMemory};

const FAILSAFE_A: f64 = 6.0;
/// Model step the rig advances the site by (as `evsite-sim run` does).
const STEP_S: f64 = 0.1;
/// Amps of slack for register encodings (0.1 A or 1 mA resolution).
const TOL: f64 = 0.05;

fn head(limit_a: f64, base: &str) -> String {
    format!(
        r#"
name = "control"
seed = 3
duration_s = 3600
start = "2026-01-15T17:00:00Z"
[site]
id = "control"
grid_limit_a = {limit_a}
phases = 3
voltage_v = 230.0
margin_a = 1.0
failsafe_current_a = {FAILSAFE_A}
[base_load]
points = {base}
[meter]
model = "eastron-sdm630"
transport = "rtu"
"#
    )
}

fn charger(id: &str, model: &str, phase_map: &str) -> String {
    format!(
        "[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"tcp\"\nphases = 3\n\
         phase_map = [{phase_map}]\nmin_current_a = 6.0\nmax_current_a = 32.0\n"
    )
}

/// A 3-phase car that takes whatever it is offered for the whole test.
fn car(charger: &str) -> String {
    format!(
        "[[vehicle]]\ncharger = \"{charger}\"\narrive_s = 0\ndepart_s = 3600\ncapacity_kwh = 100\n\
         soc_start = 0.1\nsoc_target = 1.0\nmax_current_a = 32\nphases = 3\n\
         response_delay_s = 2\ntaper_from_soc = 1.0\n"
    )
}

fn fault(kind: &str, target: &str, at_s: f64, duration_s: f64) -> String {
    format!("[[fault]]\nat_s = {at_s}\nduration_s = {duration_s}\nkind = \"{kind}\"\ntarget = \"{target}\"\n")
}

fn scenario(head: String, parts: &[String]) -> Scenario {
    let text = format!("{head}\n{}", parts.join("\n"));
    Scenario::parse(&text, "control test").expect("test scenario parses")
}

/// The controller wired to a simulated site in memory, on tokio's paused clock; the site is
/// stepped to the tokio clock before every cycle, so site time and controller time agree.
struct Rig {
    site: SharedSite,
    cfg: Arc<Config>,
    ctl: Controller,
    /// Alert changes of the cycles run since they were last taken.
    alerts: Vec<AlertSignal>,
    tick: tokio::time::Interval,
    stepped_to: Instant,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(scenario: &Scenario) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let model = SiteModel::from_registry(scenario).expect("site builds");
        let InMemory { site, cfg, links } = in_memory(model, dir.path()).expect("wired");
        let clock = Clock::starting_at(scenario.start);
        let ctl = Controller::new(cfg.clone(), &links, clock).expect("controller");
        let mut tick = tokio::time::interval(cfg.control.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Rig {
            site,
            cfg,
            ctl,
            alerts: Vec::new(),
            tick,
            stepped_to: Instant::now(),
            _dir: dir,
        }
    }

    /// Bring the site's physics up to the tokio clock.
    fn catch_up(&mut self) {
        let now = Instant::now();
        let mut due = now.duration_since(self.stepped_to).as_secs_f64();
        self.stepped_to = now;
        let mut site = self.site.lock().expect("site lock");
        while due > 1e-9 {
            let dt = due.min(STEP_S);
            site.step(dt);
            due -= dt;
        }
    }

    /// Wait for the next control tick, step the site to it, run one cycle.
    async fn cycle(&mut self) {
        self.tick.tick().await;
        self.catch_up();
        let rec = self.ctl.cycle().await;
        self.alerts.extend(rec.alerts.iter().cloned());
    }

    /// Wait one meter period, step the site to it, run one meter check (no cycle).
    async fn check(&mut self) -> MeterCheck {
        tokio::time::sleep(self.cfg.control.meter_interval).await;
        self.catch_up();
        self.ctl.meter_check().await
    }

    async fn cycles(&mut self, n: usize) {
        for _ in 0..n {
            self.cycle().await;
        }
    }

    /// Cycle until the site's clock reaches `t_s`.
    async fn run_until(&mut self, t_s: f64) {
        while self.time_s() < t_s {
            self.cycle().await;
        }
    }

    fn time_s(&self) -> f64 {
        self.site.lock().expect("site lock").time_s()
    }

    fn truth(&self) -> Vec<ChargerTruth> {
        self.site.lock().expect("site lock").charger_truth()
    }

    fn base_a(&self) -> [f64; 3] {
        self.site.lock().expect("site lock").base_load_a()
    }

    /// Alerts emitted since the last call: (kind, raised, charger).
    fn alerts(&mut self) -> Vec<(AlertKind, bool, Option<String>)> {
        self.alerts
            .drain(..)
            .map(|a| (a.kind, a.raised, a.charger))
            .collect()
    }

    /// Per grid phase: the base load plus every charger's written setpoint on that phase —
    /// the most the site can draw once the cars follow their setpoints.
    fn worst_case_a(&self, base: [f64; 3], skip: Option<&str>) -> [f64; 3] {
        let mut sum = base;
        for (t, c) in self.truth().iter().zip(&self.cfg.chargers) {
            if skip == Some(t.id.as_str()) {
                continue;
            }
            for &p in &c.phase_map {
                sum[p] += t.setpoint_a.unwrap_or(0.0);
            }
        }
        sum
    }
}

fn connected(t: &ChargerTruth) -> bool {
    t.state.is_connected()
}

fn setpoint(t: &ChargerTruth) -> f64 {
    t.setpoint_a.unwrap_or(f64::NAN)
}

#[tokio::test(start_paused = true)]
async fn nothing_rises_above_failsafe_before_the_first_good_meter_read() {
    let s = scenario(
        head(32.0, "[[0, 4, 4, 4]]"),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "2, 3, 1"),
            charger("cp-3", "schneider-evlink-pro", "3, 1, 2"),
            car("cp-1"),
            car("cp-2"),
            fault("meter_silent", "meter", 0.0, 3600.0),
        ],
    );
    let mut rig = Rig::new(&s);
    rig.ctl.start().await;
    let timeout_s = rig.cfg.control.meter_timeout.as_secs_f64();
    while rig.time_s() < timeout_s + 5.0 {
        rig.cycle().await;
        for t in rig.truth() {
            let written = t.setpoint_a.expect("every charger is written a setpoint");
            assert!(written <= FAILSAFE_A + TOL, "{} set to {written} A", t.id);
            assert!(
                t.offered_a <= FAILSAFE_A + TOL,
                "{} offers {}",
                t.id,
                t.offered_a
            );
        }
    }
    for t in rig.truth().iter().filter(|t| connected(t)) {
        assert!((setpoint(t) - FAILSAFE_A).abs() < TOL, "{t:?}");
    }
    let meter_alerts: Vec<_> = rig
        .alerts()
        .into_iter()
        .filter(|a| a.0 == AlertKind::MeterOffline)
        .collect();
    assert_eq!(meter_alerts, vec![(AlertKind::MeterOffline, true, None)]);
}

#[tokio::test(start_paused = true)]
async fn meter_silent_mid_run_goes_failsafe_after_the_timeout_and_recovers() {
    const FAULT_AT: f64 = 60.0;
    const FAULT_FOR: f64 = 600.0;
    let s = scenario(
        head(32.0, "[[0, 5, 5, 5]]"),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "2, 3, 1"),
            charger("cp-3", "schneider-evlink-pro", "3, 1, 2"),
            car("cp-1"),
            car("cp-2"),
            fault("meter_silent", "meter", FAULT_AT, FAULT_FOR),
        ],
    );
    let mut rig = Rig::new(&s);
    rig.ctl.start().await;
    rig.run_until(FAULT_AT - 1.0).await;
    for t in rig.truth().iter().filter(|t| connected(t)) {
        assert!(
            setpoint(t) > FAILSAFE_A + 1.0,
            "normal control first: {t:?}"
        );
    }
    assert!(rig.alerts().is_empty());

    let timeout_s = rig.cfg.control.meter_timeout.as_secs_f64();
    let interval_s = rig.cfg.control.interval.as_secs_f64();
    // The last good read was at most one interval before the fault.
    rig.run_until(FAULT_AT + timeout_s + interval_s).await;
    let mut raised = 0;
    while rig.time_s() < FAULT_AT + FAULT_FOR {
        for t in rig.truth().iter().filter(|t| connected(t)) {
            assert!(
                (setpoint(t) - FAILSAFE_A).abs() < TOL,
                "t={}: {t:?}",
                rig.time_s()
            );
        }
        raised += rig
            .alerts()
            .iter()
            .filter(|a| *a == &(AlertKind::MeterOffline, true, None))
            .count();
        rig.cycle().await;
    }
    assert_eq!(raised, 1, "one alert for one outage");

    // The meter answers again: the alert clears and setpoints rise within a few cycles.
    rig.cycles(3).await;
    let after = rig.alerts();
    assert!(
        after.contains(&(AlertKind::MeterOffline, false, None)),
        "{after:?}"
    );
    assert!(!after.contains(&(AlertKind::MeterOffline, true, None)));
    for t in rig.truth().iter().filter(|t| connected(t)) {
        assert!(setpoint(t) > FAILSAFE_A + 1.0, "control resumed: {t:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_steady_setpoint_keeps_a_comms_timeout_charger_from_falling_back() {
    // ABB Terra AC stops charging when nothing is written within its comms timeout; with a
    // steady allocation nothing changes, so the loop must rewrite the setpoint in time.
    let s = scenario(
        head(63.0, "[[0, 5, 5, 5]]"),
        &[charger("cp-1", "abb-terra-ac", "1, 2, 3"), car("cp-1")],
    );
    let mut rig = Rig::new(&s);
    rig.ctl.start().await;
    rig.run_until(30.0).await;
    let steady = setpoint(&rig.truth()[0]);
    assert!(steady >= 30.0, "the car gets its full share: {steady}");
    rig.run_until(300.0).await;
    let t = &rig.truth()[0];
    assert!(!t.in_fallback, "the charger never fell back: {t:?}");
    assert!(t.offered_a >= 30.0, "still charging at full current: {t:?}");
}

#[tokio::test(start_paused = true)]
async fn a_base_load_step_is_answered_in_the_next_cycle() {
    const LIMIT: f64 = 40.0;
    const MARGIN: f64 = 1.0;
    // 5 A per phase until t = 100.5 s, then a step to 20/18/16 A within 0.1 s.
    let s = scenario(
        head(
            LIMIT,
            "[[0, 5, 5, 5], [100.4, 5, 5, 5], [100.5, 20, 18, 16]]",
        ),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "1, 2, 3"),
            car("cp-1"),
            car("cp-2"),
        ],
    );
    let mut rig = Rig::new(&s);
    rig.ctl.start().await;
    // Site time is a float sum of steps: stop half a cycle short of the step.
    rig.run_until(99.5).await;
    let before = rig.worst_case_a([20.0, 18.0, 16.0], None);
    assert!(
        before.iter().any(|&a| a > LIMIT - MARGIN + 1.0),
        "the step must overload the site at the old setpoints: {before:?}"
    );
    rig.cycle().await;
    let base = rig.base_a();
    assert!((base[0] - 20.0).abs() < 1e-6, "the step happened: {base:?}");
    let after = rig.worst_case_a(base, None);
    for (p, a) in after.iter().enumerate() {
        assert!(
            *a <= LIMIT - MARGIN + TOL,
            "phase {}: base + setpoints = {a} A after one cycle",
            p + 1
        );
    }
    for t in rig.truth() {
        assert!(setpoint(&t) >= FAILSAFE_A, "still charging: {t:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_base_load_step_inside_a_cycle_is_answered_within_one_meter_period() {
    const LIMIT: f64 = 40.0;
    const MARGIN: f64 = 1.0;
    // A cycle at t = 100 s; the step lands between 100.4 and 100.5 s, well inside the cycle.
    let s = scenario(
        head(
            LIMIT,
            "[[0, 5, 5, 5], [100.4, 5, 5, 5], [100.5, 20, 18, 16]]",
        ),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "1, 2, 3"),
            car("cp-1"),
            car("cp-2"),
        ],
    );
    let mut rig = Rig::new(&s);
    assert_eq!(rig.cfg.control.interval, Duration::from_secs(1));
    assert_eq!(rig.cfg.control.meter_interval, Duration::from_millis(200));
    rig.ctl.start().await;
    rig.run_until(99.9).await;
    let cycle_at = rig.time_s();
    assert!((cycle_at - 100.0).abs() < 0.05, "last cycle at {cycle_at}");
    let steady: Vec<f64> = rig.truth().iter().map(setpoint).collect();
    let before = rig.worst_case_a([20.0, 18.0, 16.0], None);
    assert!(
        before.iter().any(|&a| a > LIMIT - MARGIN + 1.0),
        "the step must overload the site at the old setpoints: {before:?}"
    );
    // Checks at 100.2 and 100.4 s: still below the limit less the margin, nothing written.
    for _ in 0..2 {
        let c = rig.check().await;
        assert!(c.read && !c.over && c.lowered == 0, "{c:?}");
        let now: Vec<f64> = rig.truth().iter().map(setpoint).collect();
        assert_eq!(now, steady);
    }
    // The first check after the step (100.6 s): lowered setpoints written at once.
    let c = rig.check().await;
    let at = rig.time_s();
    assert!(at - 100.5 <= 0.2 + 1e-6, "checked at {at}");
    assert!(c.over && c.lowered == 2, "{c:?}");
    let base = rig.base_a();
    assert!((base[0] - 20.0).abs() < 1e-6, "the step happened: {base:?}");
    let after = rig.worst_case_a(base, None);
    for (p, a) in after.iter().enumerate() {
        assert!(
            *a <= LIMIT - MARGIN + TOL,
            "phase {}: base + setpoints = {a} A at {at} s, before the next cycle",
            p + 1
        );
    }
    assert_eq!(rig.ctl.fast_interventions(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_fast_path_never_raises_a_setpoint_and_pauses_rather_than_going_under_the_minimum() {
    const LIMIT: f64 = 40.0;
    // 9 A left per phase for two cars of 6 A minimum once the step lands, and the step goes
    // away again 2 s later, between two cycles.
    let s = scenario(
        head(
            LIMIT,
            "[[0, 5, 5, 5], [100.4, 5, 5, 5], [100.5, 30, 30, 30], [102.4, 30, 30, 30], \
             [102.5, 5, 5, 5]]",
        ),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "1, 2, 3"),
            car("cp-1"),
            car("cp-2"),
        ],
    );
    let mut rig = Rig::new(&s);
    // Before any cycle (start-up): the check does nothing, not even read.
    assert_eq!(rig.ctl.meter_check().await, MeterCheck::default());
    rig.ctl.start().await;
    rig.run_until(99.9).await;
    let mut prev: Vec<f64> = rig.truth().iter().map(setpoint).collect();
    assert!(
        prev.iter().all(|&a| a >= 12.0),
        "both cars charge: {prev:?}"
    );
    let mut lowered = 0;
    let mut quiet_after_drop = 0;
    // Checks only, no cycle, from 100.2 to 104.0 s.
    for _ in 0..19 {
        let c = rig.check().await;
        lowered += c.lowered;
        let now: Vec<f64> = rig.truth().iter().map(setpoint).collect();
        for (n, p) in now.iter().zip(&prev) {
            assert!(
                n <= p,
                "a setpoint rose from {p} to {n} at {} s",
                rig.time_s()
            );
            assert!(
                *n == 0.0 || *n >= 6.0 - TOL,
                "set under the minimum: {n} at {} s",
                rig.time_s()
            );
        }
        if rig.time_s() > 102.6 {
            assert!(!c.over && c.lowered == 0, "{c:?}");
            quiet_after_drop += 1;
        }
        prev = now;
    }
    assert!(lowered >= 1 && quiet_after_drop > 0);
    let paused = prev.iter().filter(|&&a| a == 0.0).count();
    assert_eq!(paused, 1, "one car paused, one at 6–9 A: {prev:?}");
    let running = prev.iter().copied().fold(0.0, f64::max);
    assert!((6.0..=9.0 + TOL).contains(&running), "{prev:?}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_charger_stays_reserved_and_is_reported_after_three_cycles() {
    const LIMIT: f64 = 50.0;
    const MARGIN: f64 = 1.0;
    const FAULT_AT: f64 = 60.0;
    let s = scenario(
        head(LIMIT, "[[0, 5, 5, 5]]"),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "1, 2, 3"),
            charger("cp-3", "schneider-evlink-pro", "1, 2, 3"),
            car("cp-1"),
            car("cp-2"),
            car("cp-3"),
            // The simulator's silence fault works on any device.
            fault("meter_silent", "cp-3", FAULT_AT, 600.0),
        ],
    );
    let mut rig = Rig::new(&s);
    rig.ctl.start().await;
    rig.run_until(FAULT_AT - 1.0).await;
    let last = setpoint(&rig.truth()[2]);
    assert!(last > FAILSAFE_A + 1.0, "cp-3 charging before: {last}");
    assert!(rig.alerts().is_empty());

    let offline = |a: &[(AlertKind, bool, Option<String>)]| {
        a.iter()
            .filter(|x| **x == (AlertKind::ChargerOffline, true, Some("cp-3".into())))
            .count()
    };
    for failed in 1..=2 {
        rig.cycle().await;
        assert_eq!(
            offline(&rig.alerts()),
            0,
            "no alert after {failed} failed read(s)"
        );
    }
    rig.cycle().await;
    assert_eq!(offline(&rig.alerts()), 1, "alert on the third failed read");

    let room = LIMIT - MARGIN - 5.0 - last;
    for _ in 0..30 {
        rig.cycle().await;
        let others = rig.worst_case_a([0.0; 3], Some("cp-3"));
        for a in others {
            assert!(a <= room + TOL, "others got {a} A of {room} A left");
        }
        assert_eq!(setpoint(&rig.truth()[2]), last, "nothing reaches cp-3");
    }
    assert_eq!(offline(&rig.alerts()), 0, "reported once");
}

fn reg_value(site: &SharedSite, device: usize, reg: &Register) -> f64 {
    let mut s = site.lock().expect("site lock");
    let words = s
        .read(device, reg.table, reg.addr, reg.words())
        .expect("read");
    decode_number(reg, &words)
        .expect("decodes")
        .expect("a number")
}

#[tokio::test(start_paused = true)]
async fn start_writes_the_comms_timeout_and_safe_current_where_models_have_them() {
    let s = scenario(
        head(32.0, "[[0, 5, 5, 5]]"),
        &[
            charger("cp-1", "abb-terra-ac", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "2, 3, 1"),
        ],
    );
    let mut rig = Rig::new(&s);
    let spec = |name: &str| {
        registry::find(name)
            .and_then(|m| m.charger)
            .expect("a charger model")
    };
    let (abb, vestel) = (spec("abb-terra-ac"), spec("vestel-evc04"));
    let abb_ct = abb.comms_timeout.expect("ABB has a comms timeout");
    let vestel_ct = vestel.comms_timeout.expect("Vestel has a comms timeout");
    let vestel_safe = vestel.safe_current.expect("Vestel has a safe current");
    // Clear them first (0 = watchdog off), so only the controller's writes can restore them.
    {
        let mut site = rig.site.lock().expect("site lock");
        for (dev, reg, v) in [
            (1, abb_ct.reg, 0.0),
            (2, vestel_ct.reg, 0.0),
            (2, vestel_safe, 16.0),
        ] {
            let words = encode_number(&reg, v).expect("encodes");
            site.write(dev, reg.table, reg.addr, &words)
                .expect("writable");
        }
    }
    assert_eq!(reg_value(&rig.site, 1, &abb_ct.reg), 0.0);
    assert_eq!(reg_value(&rig.site, 2, &vestel_safe), 16.0);

    rig.ctl.start().await;
    assert_eq!(
        reg_value(&rig.site, 1, &abb_ct.reg),
        f64::from(abb_ct.default_s)
    );
    assert_eq!(
        reg_value(&rig.site, 2, &vestel_ct.reg),
        f64::from(vestel_ct.default_s)
    );
    assert_eq!(reg_value(&rig.site, 2, &vestel_safe), FAILSAFE_A);
}

#[tokio::test(start_paused = true)]
async fn shutdown_leaves_every_charger_at_the_failsafe_current() {
    let s = scenario(
        head(40.0, "[[0, 5, 5, 5]]"),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "2, 3, 1"),
            charger("cp-3", "schneider-evlink-pro", "3, 1, 2"),
            car("cp-1"),
            car("cp-2"),
        ],
    );
    let mut rig = Rig::new(&s);
    rig.ctl.start().await;
    rig.run_until(40.0).await;
    let truth = rig.truth();
    assert!(truth
        .iter()
        .filter(|t| connected(t))
        .all(|t| setpoint(t) > FAILSAFE_A + 1.0));
    rig.ctl.shutdown().await;
    for t in rig.truth() {
        if connected(&t) {
            assert!((setpoint(&t) - FAILSAFE_A).abs() < TOL, "{t:?}");
        } else {
            assert!(setpoint(&t) <= FAILSAFE_A + TOL, "{t:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_with_every_charger_at_the_failsafe_current() {
    use evsite::simulator::write_config::write_config;
    use evsite::simulator::{serve_site, spawn_stepper};

    let s = scenario(
        head(32.0, "[[0, 5, 5, 5]]"),
        &[
            charger("cp-1", "alfen-eve", "1, 2, 3"),
            charger("cp-2", "vestel-evc04", "2, 3, 1"),
            charger("cp-3", "schneider-evlink-pro", "3, 1, 2"),
            car("cp-1"),
            car("cp-2"),
        ],
    );
    let site = SiteModel::from_registry(&s).expect("site").into_shared();
    let served = serve_site(site.clone()).await.expect("served");
    let _stepper = spawn_stepper(site.clone(), 1.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("evsite.toml");
    {
        let model = site.lock().expect("site lock");
        write_config(&config, &model, &served.endpoints, dir.path()).expect("config written");
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .kill_on_drop(true)
        .spawn()
        .expect("evsite starts");
    let pid = child.id().expect("a pid");

    // Wait (bounded) until the controller has written a setpoint above the fail-safe one.
    let charging = async {
        loop {
            let above = site
                .lock()
                .expect("site lock")
                .charger_truth()
                .iter()
                .any(|t| t.setpoint_a.is_some_and(|a| a > FAILSAFE_A + 1.0));
            if above {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), charging)
        .await
        .expect("the daemon raises a setpoint within a minute");

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the daemon exits within 30 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    let truth = site.lock().expect("site lock").charger_truth();
    assert!(truth.iter().any(connected));
    for t in truth.iter().filter(|t| connected(t)) {
        assert!((setpoint(t) - FAILSAFE_A).abs() < TOL, "{t:?}");
    }
    for t in &truth {
        assert!(t.state != ChargeState::F, "{t:?}");
    }
}

#[test]
fn every_shipped_scenario_runs_without_overload_at_high_utilization_with_exact_sessions_and_reproducibly(
) {
    let mut paths: Vec<_> = std::fs::read_dir(evsite_sim::SCENARIO_DIR)
        .expect("scenario dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    // One thread per scenario: each run is independent and single-threaded. Reproducibility
    // is checked on two scenarios (one with faults) to keep the debug-build test time sane.
    let twice = ["small", "meter-silent", "demand-depot", "recurring"];
    let runs: Vec<_> = paths
        .into_iter()
        .map(|path| {
            std::thread::spawn(move || {
                let s = Scenario::from_path(&path).expect("scenario");
                let a = evsite_sim::run::run(&s).expect("first run");
                let b = twice
                    .contains(&s.name.as_str())
                    .then(|| evsite_sim::run::run(&s).expect("second run"));
                (path, a, b)
            })
        })
        .collect();
    let mut compared = 0;
    for run in runs {
        let (path, mut a, b) = run.join().expect("run thread");
        assert_eq!(a.overload_s, 0.0, "{}: {a:?}", path.display());
        // The issue's bar: every amp the site can spare reaches the cars.
        assert!(a.utilization >= 0.95, "{}: {a:?}", path.display());
        assert!(a.cycles > 0, "{}", path.display());
        // The sessions bar: one recorded session per visit, each within 10 Wh of what the
        // vehicle really took.
        assert_eq!(a.sessions, Some(a.vehicles), "{}: {a:?}", path.display());
        let err = a.session_energy_error_wh.unwrap_or(f64::INFINITY);
        assert!(err <= 10.0, "{}: {a:?}", path.display());
        // The anomaly bar: no anomaly alert that no injected fault explains.
        assert_eq!(a.false_alarms(), 0, "{}: {:?}", path.display(), a.anomalies);
        if a.demand_limit_kw.is_some() {
            demand_bar(&path, &a);
        }
        // Returning vehicles: their own history beats the site's on their end times.
        match (a.recurring_end_time_mae_s, a.recurring_end_time_mae_site_s) {
            (Some(own), Some(site)) => assert!(own < site, "{}: {a:?}", path.display()),
            _ => assert!(a.scenario != "recurring", "{}: {a:?}", path.display()),
        }
        if let Some(mut b) = b {
            for card in [&mut a, &mut b] {
                card.cycle_ms_p50 = 0.0;
                card.cycle_ms_p99 = 0.0;
            }
            assert_eq!(a, b, "{}: two runs differ", path.display());
            compared += 1;
        }
    }
    assert_eq!(compared, twice.len(), "the reproducibility scenarios exist");
}

/// The demand bar (issue 13): no window over the target that the building's own load
/// allowed to keep under it, every feasible plan met, and against the offline optimum under
/// the same demand budget (`evsite_sim::optimum`): at least 95 % of its energy and a cost per
/// kWh within 5 % of its. The optimum is a bound: no run may beat it beyond its one-minute
/// steps' rounding.
fn demand_bar(path: &std::path::Path, a: &evsite_sim::score::Scorecard) {
    let p = path.display();
    assert_eq!(
        a.demand_overshoot_windows, a.building_over_windows,
        "{p}: only windows the building alone takes over may exceed: {a:?}"
    );
    assert!(a.plans_total > 0, "{p}: the scenario has plans");
    assert_eq!(a.plans_met, a.plans_feasible, "{p}: {a:?}");
    let u = a
        .optimum_utilization
        .unwrap_or_else(|| panic!("{p}: a demand scenario is judged against the optimum"));
    assert!(u >= 0.95, "{p}: {u} of the optimum's energy: {a:?}");
    assert!(u <= 1.01, "{p}: the run beat its bound: {a:?}");
    assert_eq!(a.optimum_plans_held, Some(a.plans_total), "{p}: {a:?}");
    let (Some(cost), Some(best)) = (a.cost_per_kwh, a.optimum_cost_per_kwh) else {
        panic!("{p}: a demand scenario with a tariff has costs: {a:?}");
    };
    assert!(
        cost / best <= rust_decimal::Decimal::new(105, 2),
        "{p}: cost per kWh {cost} vs the optimum's {best}"
    );
    assert!(
        a.peak_demand_kw > 0.0 && a.energy_cost.is_some(),
        "{p}: {a:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_circuit_bound_charger_is_told_limited_by_its_circuit_on_its_phase() {
    // A 1-phase charger on grid phase L2, on a 20 A circuit behind a roomy 80 A main fuse.
    let circuit = "[[circuit]]\nid = \"hall-a\"\nlimit_a = 20.0\n".to_string();
    let one_phase = "[[charger]]\nid = \"cp-1\"\nmodel = \"alfen-eve\"\ntransport = \"tcp\"\n\
                     phases = 1\nphase_map = [2]\nmin_current_a = 6.0\nmax_current_a = 32.0\n\
                     circuit = \"hall-a\"\n"
        .to_string();
    let car = "[[vehicle]]\ncharger = \"cp-1\"\narrive_s = 0\ndepart_s = 3600\n\
               capacity_kwh = 100\nsoc_start = 0.1\nsoc_target = 1.0\nmax_current_a = 32\n\
               phases = 1\nresponse_delay_s = 2\ntaper_from_soc = 1.0\n"
        .to_string();
    let s = scenario(head(80.0, "[[0, 4, 4, 4]]"), &[circuit, one_phase, car]);
    let mut rig = Rig::new(&s);
    let mut last = None;
    for _ in 0..40 {
        rig.tick.tick().await;
        rig.catch_up();
        last = Some(rig.ctl.cycle().await);
    }
    let rec = last.expect("cycles ran");
    let c = rec.charger("cp-1").expect("cp-1 in the record");
    // The site has room on L2 (80 A less 4 A of base load); the circuit less its margin
    // (20 − 1 A) is what the car gets.
    assert_eq!(c.setpoint_a, Some(19.0), "{c:?}");
    let why = &c.why;
    assert_eq!(why.code, evsite::control::why::WhyCode::Circuit, "{why:?}");
    assert_eq!(why.constraint.as_deref(), Some("hall-a"));
    assert_eq!(why.phase, Some(2));
    assert_eq!(why.limit_a, Some(20.0));
    assert_eq!(
        why.source,
        Some(evsite::control::record::LimitSource::Installer)
    );
    assert_eq!(
        why.text,
        "limited by circuit hall-a on L2 (20 A, installer)"
    );
}
