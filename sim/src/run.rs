//! `evsite-sim run`: the real controller against a simulated site, in one process, on tokio's
//! paused clock — Modbus goes over in-memory streams, so a day of site time takes seconds and
//! the same seed gives the same result. Beside it, an ideal controller with perfect knowledge
//! of the vehicles and the base load drives a twin of the site; `utilization` compares them.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::time::{Duration, Instant};

use evsite::clock::Clock;
use evsite::config::Config;
use evsite::control::allocate::Turn;
use evsite::devices::model::Transport;
use evsite::modbus::{BoxedStream, Connector, Links, RtuBus, RtuSettings};
use evsite::simulator::write_config::{config_toml, tokens_toml};
use evsite::simulator::{
    rtu_lines, serve_rtu_stream, serve_tcp_stream, Endpoint, Link, Scenario, SharedSite, SiteModel,
    Units,
};

use crate::optimum::{optimum, BaseTrace};
use crate::score::{AnomalyLog, Scorecard, Scorer, SessionLog};

mod cloud;
mod ideal;
use evsite::control::command::ControlCommand;
use evsite::sessions::tracker::SessionTracker;
use evsite::simulator::FaultKind;
use evsite::site::SiteBuilder;
use evsite::store::Store;
use ideal::{ideal_control, IdealShaping};

/// Physics step of both sites.
const STEP: Duration = Duration::from_millis(100);
/// Fake TCP ports of the in-memory devices start here.
const FIRST_PORT: u16 = 20000;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("scenario: {0}")]
    Site(#[from] evsite::simulator::SiteError),
    #[error("writing the site's config: {0}")]
    Config(String),
    #[error("runtime: {0}")]
    Io(#[from] io::Error),
    #[error("controller: {0}")]
    Link(#[from] evsite::modbus::LinkError),
    #[error("store: {0}")]
    Store(#[from] evsite::store::StoreError),
}

/// Connects the controller's TCP links to the simulated devices over in-memory streams.
struct MemConnector {
    site: SharedSite,
    ports: HashMap<u16, Units>,
}

impl Connector for MemConnector {
    fn connect(&self, _host: &str, port: u16) -> BoxFuture<'static, io::Result<BoxedStream>> {
        let units = self.ports.get(&port).cloned();
        let site = self.site.clone();
        Box::pin(async move {
            let units = units.ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
            let (client, server) = tokio::io::duplex(1 << 16);
            tokio::spawn(async move {
                let _ = serve_tcp_stream(server, site, units).await;
            });
            Ok(Box::new(client) as BoxedStream)
        })
    }
}

/// Run `scenario` to its end on a paused clock and score it.
pub fn run(scenario: &Scenario) -> Result<Scorecard, RunError> {
    run_keeping(scenario, None)
}

/// As [`run`], and with `db` the run records its sessions, alerts and samples in a store
/// there, as the daemon does, so `evsite report --db DIR` and `evsite sessions --db DIR` can
/// be tried on its history.
pub fn run_keeping(scenario: &Scenario, db: Option<&Path>) -> Result<Scorecard, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    rt.block_on(run_paused(scenario, db))
}

/// The in-memory site: endpoints for the config, TCP units per fake port, RTU units per line.
type MemSite = (Vec<Endpoint>, HashMap<u16, Units>, Vec<(String, Units)>);

/// In-memory endpoints: TCP devices on fake ports, RTU devices grouped per serial setting
/// into lines, as `evsite-sim serve` groups them on pseudo-terminals.
fn endpoints(model: &SiteModel) -> MemSite {
    let devices = model.devices();
    let mut eps = Vec::new();
    let mut ports = HashMap::new();
    for d in devices.iter().filter(|d| d.transport == Transport::Tcp) {
        let port = FIRST_PORT + d.index as u16;
        ports.insert(port, Units::from([(d.unit, d.index)]));
        eps.push(Endpoint {
            device: d.clone(),
            link: Link::Tcp { port },
        });
    }
    let lines = rtu_lines(&devices);
    for line in &lines {
        for d in &line.devices {
            eps.push(Endpoint {
                device: d.clone(),
                link: Link::Rtu {
                    path: format!("/dev/null/{}", line.bus).into(),
                    bus: line.bus.clone(),
                    serial: line.serial,
                },
            });
        }
    }
    let lines = lines.iter().map(|l| (l.bus.clone(), l.units())).collect();
    (eps, ports, lines)
}

/// A simulated site wired to a controller's links over in-memory streams, with the config
/// written for it: what a deterministic run (or a test) drives the real controller with.
pub struct InMemory {
    pub site: SharedSite,
    pub cfg: Arc<Config>,
    pub links: Links,
}

/// Serve `model` in memory and load the config written for it (store under `data_dir`).
/// Must be called inside a tokio runtime: it spawns the RTU lines' servers.
pub fn in_memory(model: SiteModel, data_dir: &Path) -> Result<InMemory, RunError> {
    let (eps, ports, lines) = endpoints(&model);
    let text = config_toml(&model, &eps, data_dir).map_err(|e| RunError::Config(e.to_string()))?;
    let mut cfg = evsite::config::load_str(&text, "simulated site")
        .map_err(|e| RunError::Config(e.to_string()))?;
    // The values-only load leaves the token list unread: it is the scenario's own.
    if let Some(tokens) = tokens_toml(&model) {
        let list = evsite::tokens::TokenList::parse(&tokens, "scenario tokens")
            .map_err(|e| RunError::Config(e.to_string()))?;
        cfg.auth.tokens = Arc::new(list);
    }
    // The cloud is modelled in the run (see `run/cloud.rs`): no broker is connected.
    if model.shaping().cloud.is_some() {
        cfg.mqtt = None;
    }
    let cfg = Arc::new(cfg);
    let site = model.into_shared();
    let links = Links::new(Arc::new(MemConnector {
        site: site.clone(),
        ports,
    }));
    for (bus, units) in lines {
        let (client, server) = tokio::io::duplex(1 << 12);
        let s = site.clone();
        tokio::spawn(async move {
            let _ = serve_rtu_stream(server, s, units).await;
        });
        let settings = cfg
            .buses
            .iter()
            .find(|b| b.name == bus)
            .map(RtuSettings::from)
            .ok_or_else(|| {
                RunError::Config(format!("bus {bus} missing from the written config"))
            })?;
        links.insert_rtu(&bus, RtuBus::from_stream(client, settings));
    }
    Ok(InMemory { site, cfg, links })
}

async fn run_paused(scenario: &Scenario, db: Option<&Path>) -> Result<Scorecard, RunError> {
    let user = SiteModel::user_models(scenario)?;
    let resolve = |name: &str| user.find(name);
    let real = SiteModel::new(scenario, &resolve)?;
    let mut ideal = SiteModel::new(scenario, &resolve)?;
    let data_dir = std::env::temp_dir().join(format!("evsite-sim-{}", scenario.name));
    let InMemory { site, cfg, links } = in_memory(real, &data_dir)?;
    let mut scorer = {
        let real = site
            .lock()
            .map_err(|_| io::Error::other("site lock poisoned"))?;
        Scorer::new(scenario, &real, &cfg)
    };
    let clock = Clock::starting_at(scenario.start);
    let mut builder = SiteBuilder::new(cfg.clone(), clock, links)
        .display()
        .cycles_only();
    if let Some(db) = db {
        let (store, _) = Store::open(db)?;
        builder = builder.store(store);
    }
    let (mut controller, mut built) = builder.build()?;
    let mut events = built
        .events
        .take()
        .ok_or_else(|| io::Error::other("the site hands out no events"))?;
    let mut log = SessionLog::default();
    // Returning vehicles' estimates are scored apart: two trackers beside the site's, on the
    // same cycles, one with the vehicles' own history and one with the site's alone.
    let mut recurring = returning_vehicles(scenario).then(|| {
        let own = SessionTracker::new(&cfg);
        let mut site_only = SessionTracker::new(&cfg);
        site_only.set_vehicle_history(false);
        [
            (own, SessionLog::default()),
            (site_only, SessionLog::default()),
        ]
    });
    let mut anomalies = AnomalyLog::default();
    // A `draw_while_disabled` fault is a cloud `set_charger` the charger then ignores:
    // (when, charger, enabled), in time order.
    let mut switches: Vec<(f64, String, bool)> = scenario
        .faults
        .iter()
        .filter(|f| f.kind == FaultKind::DrawWhileDisabled)
        .flat_map(|f| {
            [
                (f.at_s, f.target.clone(), false),
                (f.at_s + f.duration_s, f.target.clone(), true),
            ]
        })
        .collect();
    switches.sort_by(|a, b| b.0.total_cmp(&a.0));
    let commands = controller.commands();
    let mut cloud = scenario.cloud.clone().map(|spec| {
        let cloud = cloud::ModelCloud::new(spec, scenario.start);
        controller.connect_cloud_auth(cloud.queue(), cloud.link());
        cloud
    });
    let started = Instant::now();

    let end = Instant::now() + Duration::from_secs_f64(scenario.duration_s);
    // The world: both sites step together; the ideal controller acts on its twin every
    // control interval; the scorer samples the real site every step.
    let world_site = site.clone();
    let interval = cfg.control.interval;
    let oracle_cfg = cfg.clone();
    let world = tokio::spawn(async move {
        let mut tick = tokio::time::interval(STEP);
        let mut turns = vec![Turn::default(); oracle_cfg.chargers.len()];
        let mut shaping = IdealShaping::new(&oracle_cfg);
        let mut next_oracle = Instant::now();
        let dt = STEP.as_secs_f64();
        let mut trace = BaseTrace::default();
        let mut steps: u64 = 0;
        loop {
            let now = tick.tick().await;
            if now >= end {
                break;
            }
            if now >= next_oracle {
                ideal_control(&oracle_cfg, &mut ideal, &mut turns, &mut shaping);
                next_oracle += interval;
            }
            ideal.step(dt);
            scorer.sample_ideal(&ideal, dt);
            let sample = match world_site.lock() {
                Ok(mut s) => {
                    s.step(dt);
                    let site = s.site();
                    trace.sample(
                        steps as f64 * dt,
                        dt,
                        s.base_load_a(),
                        site.voltage_v,
                        site.phases,
                    );
                    steps += 1;
                    scorer.sample_shaping(&s, dt);
                    crate::score::Sample::of(&s)
                }
                Err(_) => break,
            };
            scorer.sample(&sample, dt);
        }
        (scorer, ideal, trace)
    });

    controller.start().await;
    // Full cycles every interval; between them the main meter on its own period, as the
    // daemon's `Controller::run` does (the overload fast path).
    let every = cfg.control.meter_interval;
    let mut next_cycle = Instant::now();
    let mut next_check = next_cycle + every;
    let mut cycles = Vec::new();
    let mut alerts = 0;
    loop {
        if every < interval && next_check < next_cycle {
            tokio::time::sleep_until(next_check).await;
            if next_check >= end {
                break;
            }
            controller.meter_check().await;
            // A check that waited for a timeout does not make the next ones run in a burst.
            next_check = Instant::now().max(next_check) + every;
            continue;
        }
        tokio::time::sleep_until(next_cycle).await;
        let now = next_cycle;
        if now >= end {
            break;
        }
        next_cycle += interval;
        let t_s = (now - started).as_secs_f64();
        while switches.last().is_some_and(|(at, _, _)| *at <= t_s) {
            if let Some((_, charger, enabled)) = switches.pop() {
                let _ = commands.send(ControlCommand::SetCharger {
                    charger,
                    enabled: Some(enabled),
                    max_current_a: None,
                });
            }
        }
        if let Some(c) = cloud.as_mut() {
            c.before_cycle(t_s, &commands);
        }
        let rec = controller.cycle().await;
        for (tracker, log) in recurring.iter_mut().flatten() {
            log.observe_tracker(tracker.observe(&rec));
        }
        if let Some(c) = cloud.as_mut() {
            c.after_cycle(t_s);
        }
        next_check = Instant::now() + every;
        cycles.push(rec.cycle_ms);
        alerts += rec.alerts.iter().filter(|a| a.raised).count();
        while let Ok(e) = events.try_recv() {
            anomalies.observe(&e, scenario.start);
            log.observe(e);
        }
    }
    if std::env::var_os("EVSITE_SIM_DEBUG").is_some() {
        eprintln!(
            "fast path: {} meter checks lowered setpoints",
            controller.fast_interventions()
        );
    }
    // The pipeline takes the last records once the controller is gone.
    drop(controller);
    while let Some(e) = events.recv().await {
        anomalies.observe(&e, scenario.start);
        log.observe(e);
    }
    if std::env::var_os("EVSITE_SIM_DEBUG").is_some() {
        for (kind, charger, t) in anomalies.raised() {
            eprintln!("anomaly {} on {charger:?} at {t:.1} s", kind.name());
        }
    }
    let pipeline = built
        .finish()
        .await
        .ok_or_else(|| io::Error::other("the session pipeline failed"))?;
    let (mut scorer, ideal, trace) = world.await.map_err(|e| io::Error::other(e.to_string()))?;
    let real = site
        .lock()
        .map_err(|_| io::Error::other("site lock poisoned"))?;
    scorer.finish(&real, &ideal, cycles, alerts);
    scorer.record_sessions(log.score(
        scenario.start,
        &pipeline.active_sessions(),
        &real.vehicle_truth(),
        scenario.duration_s,
    ));
    if let Some([(own, own_log), (site_only, site_log)]) = &recurring {
        let at = scenario.start + chrono::TimeDelta::seconds(scenario.duration_s as i64);
        let truth = real.vehicle_truth();
        let mae = |t: &SessionTracker, l: &SessionLog| {
            l.recurring_end_time_mae_s(scenario.start, &t.current(at), &truth, scenario.duration_s)
        };
        scorer.record_recurring(mae(own, own_log), mae(site_only, site_log));
    }
    scorer.record_anomalies(
        anomalies.score(&scenario.faults, &cfg.anomaly),
        anomalies.outcomes(&scenario.faults, &cfg.anomaly),
    );
    if shaped(&cfg) {
        let solving = std::time::Instant::now();
        let best = optimum(scenario, &cfg, &trace).map_err(|e| io::Error::other(e.to_string()))?;
        if std::env::var_os("EVSITE_SIM_DEBUG").is_some() {
            eprintln!(
                "optimum: {best:?} in {:.1} s",
                solving.elapsed().as_secs_f64()
            );
        }
        scorer.record_optimum(&best);
    }
    Ok(scorer.into_card())
}

/// Whether some vehicle of the scenario comes back: its token on more than one visit.
fn returning_vehicles(scenario: &Scenario) -> bool {
    let mut seen = std::collections::HashSet::new();
    scenario
        .vehicles
        .iter()
        .filter_map(|v| v.token.as_deref())
        .any(|t| !seen.insert(t))
}

/// Whether the run is judged against the offline optimum: a site with a demand target, a
/// departure plan or a schedule, where how the controller spends energy over time matters.
fn shaped(cfg: &Config) -> bool {
    cfg.demand.is_some()
        || !cfg.schedules.is_empty()
        || cfg.chargers.iter().any(|c| c.plan.is_some())
}
