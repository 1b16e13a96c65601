//! Control loop figures on real Modbus TCP over loopback, against the simulator in real time:
//! (a) how long one controller cycle takes with 100 chargers of mixed models, and (b) how long
//! after a base-load step on the meter the last lowered setpoint reaches the chargers, with
//! the daemon's own `run` loop at `interval_ms = 1000`: with the overload fast path (the meter
//! read every `meter_interval_ms = 200`) and without it (`meter_interval_ms = 1000`).
//! Goals: cycle p99 ≤ 50 ms; reaction p99 ≤ 300 ms with the fast path.
//!
//! `cargo bench --bench control_cycle` (release). Prints the figures; exits non-zero on error.

#[path = "support/site.rs"]
mod site;

use std::sync::Arc;

use tokio::time::{Duration, Instant};

use evsite::clock::Clock;
use evsite::control::runner::Controller;
use evsite::modbus::{Links, TcpConnector};
use evsite::simulator::write_config::config_toml;
use evsite::simulator::{serve_site, spawn_stepper, Scenario, ServedSite, SiteModel};
use site::{percentile, scenario, BenchResult};

const CYCLES: usize = 200;
const WARMUP: usize = 5;
const STEPS: usize = 20;
/// Base-load period of the reaction bench: low for half, high for half.
const PERIOD_S: f64 = 6.0;

/// Serve `scenario` on loopback in real time and build a controller for it.
async fn setup(
    scenario: &Scenario,
    dir: &std::path::Path,
    control: &str,
) -> BenchResult<(ServedSite, Controller, Arc<evsite::config::Config>)> {
    let site = SiteModel::from_registry(scenario)?.into_shared();
    let served = serve_site(site.clone()).await?;
    spawn_stepper(site.clone(), 1.0);
    let text = {
        let model = site.lock().map_err(|_| "site lock poisoned")?;
        format!("{}{control}", config_toml(&model, &served.endpoints, dir)?)
    };
    let cfg = Arc::new(evsite::config::load_str(&text, "bench").map_err(|e| e.to_string())?);
    let links = Links::new(Arc::new(TcpConnector));
    let ctl = Controller::new(cfg.clone(), &links, Clock::system())?;
    Ok((served, ctl, cfg))
}

async fn cycle_bench() -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let s = scenario(100, 800.0, "[[0, 40, 35, 30]]")?;
    let (served, mut ctl, _cfg) = setup(&s, dir.path(), "").await?;
    ctl.start().await;
    for _ in 0..WARMUP {
        ctl.cycle().await;
    }
    let mut ms: Vec<f64> = Vec::with_capacity(CYCLES);
    let mut view = None;
    for _ in 0..CYCLES {
        let rec = ctl.cycle().await;
        ms.push(rec.cycle_ms);
        view = Some(rec);
    }
    // The figures only count if the cycles did their work: every charger answered and was
    // written a setpoint.
    let truth = served
        .site
        .lock()
        .map_err(|_| "site lock poisoned")?
        .charger_truth();
    let written = truth.iter().filter(|t| t.setpoint_a.is_some()).count();
    let view = view.ok_or("no cycle ran")?;
    let online = view.chargers.iter().filter(|c| c.online).count();
    if written != truth.len() || online != truth.len() || view.grid_a.is_none() {
        return Err(format!(
            "only {online} chargers online, {written} written, meter {:?}",
            view.grid_a
        )
        .into());
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "cycle, 100 TCP chargers + TCP meter, {CYCLES} cycles: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
    Ok(())
}

async fn reaction_bench(meter_interval_ms: u64) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    // Low (10 A) for the first half of every period, high (70 A) for the second.
    let mut points = vec!["[0, 10, 10, 10]".to_string()];
    for k in 0..=STEPS + 1 {
        // Spread the steps over the control interval's phase: a step just before a cycle is
        // answered at once, one just after it waits almost a whole interval.
        let phase = (k as f64 * 0.37).fract();
        let up = PERIOD_S * (k as f64 + 1.0) + PERIOD_S / 2.0 + phase;
        let down = PERIOD_S * (k as f64 + 2.0);
        points.push(format!("[{}, 10, 10, 10], [{up}, 70, 70, 70]", up - 0.01));
        points.push(format!(
            "[{}, 70, 70, 70], [{down}, 10, 10, 10]",
            down - 0.01
        ));
    }
    let base = format!("[{}]", points.join(", "));
    let s = scenario(12, 200.0, &base)?;
    let control =
        format!("\n[control]\ninterval_ms = 1000\nmeter_interval_ms = {meter_interval_ms}\n");
    let (served, ctl, cfg) = setup(&s, dir.path(), &control).await?;
    let site = served.site.clone();
    let interval_ms = cfg.control.interval.as_secs_f64() * 1000.0;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(ctl.run(async {
        let _ = stop_rx.await;
    }));

    // Watch the truth every few ms: when the base load goes high, and when the last
    // setpoint decrease of that high phase lands.
    let poll = Duration::from_millis(2);
    let mut reactions = Vec::new();
    let mut high_since: Option<Instant> = None;
    let mut last_down: Option<Instant> = None;
    let mut prev: Vec<Option<f64>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(PERIOD_S * (STEPS as f64 + 3.0));
    while reactions.len() < STEPS && Instant::now() < deadline {
        let (base, setpoints) = {
            let s = site.lock().map_err(|_| "site lock poisoned")?;
            let sp: Vec<Option<f64>> = s.charger_truth().iter().map(|t| t.setpoint_a).collect();
            (s.base_load_a()[0], sp)
        };
        let now = Instant::now();
        let high = base > 40.0;
        match (high, high_since) {
            (true, None) => {
                high_since = Some(now);
                last_down = None;
            }
            (false, Some(since)) => {
                // Skip the first period: the site is still ramping up.
                if s_time_ok(&site)? {
                    let down = last_down.ok_or("a base-load step lowered no setpoint")?;
                    reactions.push(down.duration_since(since).as_secs_f64() * 1000.0);
                }
                high_since = None;
            }
            _ => {}
        }
        if high_since.is_some()
            && setpoints
                .iter()
                .zip(&prev)
                .any(|(n, p)| matches!((n, p), (Some(n), Some(p)) if n < p))
        {
            last_down = Some(now);
        }
        prev = setpoints;
        tokio::time::sleep(poll).await;
    }
    let _ = stop_tx.send(());
    daemon.await?;
    if reactions.len() < STEPS {
        return Err(format!("only {} steps observed", reactions.len()).into());
    }
    reactions.sort_by(f64::total_cmp);
    println!(
        "reaction, 12 TCP chargers, interval {interval_ms:.0} ms, meter every {meter_interval_ms} ms, {} steps: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (poll resolution {} ms)",
        reactions.len(),
        percentile(&reactions, 0.5),
        percentile(&reactions, 0.99),
        reactions[reactions.len() - 1],
        poll.as_millis()
    );
    Ok(())
}

/// Whether the site is past its first period (steady state before measuring).
fn s_time_ok(site: &evsite::simulator::SharedSite) -> BenchResult<bool> {
    Ok(site.lock().map_err(|_| "site lock poisoned")?.time_s() > PERIOD_S * 2.0)
}

fn main() -> BenchResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        cycle_bench().await?;
        reaction_bench(200).await?;
        reaction_bench(1000).await
    })
}
