//! The `evsite-sim` command line: `serve` a scenario's devices in real time over Modbus, or
//! `run` it against the real controller on a virtual clock and write the scorecard.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use evsite::simulator::{serve_site, spawn_stepper, write_config, Scenario, SiteModel};
use evsite_sim::fleet::Bounds;

#[derive(Parser)]
#[command(
    name = "evsite-sim",
    version,
    about = "Simulated EV charging sites for evsite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a scenario's meter and chargers over Modbus TCP (loopback) and RTU
    /// (pseudo-terminals) in real time, until Ctrl-C or SIGTERM. RS-485 devices with
    /// `link = "gateway-tcp"` or `"gateway-rtu"` are served behind a simulated Modbus TCP
    /// gateway or transparent serial converter on loopback instead.
    Serve {
        /// A scenario file, or the name of a shipped scenario (e.g. `small`).
        scenario: String,
        /// Write an evsite config pointing at the served devices to this file.
        #[arg(long, value_name = "FILE")]
        write_config: Option<PathBuf>,
        /// Simulated seconds per wall-clock second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Where the written config keeps evsite's data (default: a fresh temp directory).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Model files (a directory of `*.toml`, or one file) the scenario's devices may name
        /// besides the built-in models; overrides the scenario's `models_dir`. The written
        /// config names the same files (`[devices] models_dir`).
        #[arg(long, value_name = "PATH")]
        models: Option<PathBuf>,
    },
    /// Run a scenario against the real controller on a virtual clock (a day takes seconds)
    /// and write its scorecard as JSON.
    Run {
        /// A scenario file, or the name of a shipped scenario (e.g. `small`).
        scenario: String,
        /// Where to write the scorecard (JSON); it is also printed.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Keep the run's store (sessions, alerts, samples) in this directory, for
        /// `evsite report --db DIR` and `evsite sessions --db DIR`.
        #[arg(long, value_name = "DIR")]
        db: Option<PathBuf>,
    },
    /// Generate N random but realistic sites from one seed (buildings, chargers of every
    /// model and link, cars and, with --faults, injected faults) and run each against the
    /// real controller on a virtual clock, in parallel; print the fleet's table and write
    /// its report as JSON. The same seed gives the same report.
    Fleet {
        #[arg(long, default_value_t = 20)]
        sites: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Inject 0 to 3 faults per site, of every kind, at sizes across each rule's
        /// sensitivity.
        #[arg(long)]
        faults: bool,
        /// Where to write the report (JSON).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Sites run at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Draw shorter runs than the full 2 to 24 hours (a quick look).
        #[arg(long, default_value_t = 24.0)]
        max_hours: f64,
        /// Draw fewer chargers than the full 2 to 60.
        #[arg(long, default_value_t = 60)]
        max_chargers: usize,
    },
}

fn main() -> anyhow::Result<()> {
    evsite::app::logging::init_stderr("info");
    match Cli::parse().command {
        Command::Run {
            scenario,
            report,
            db,
        } => {
            let path = evsite_sim::scenario_path(&scenario);
            let scenario = Scenario::from_path(&path)?;
            let card = evsite_sim::run::run_keeping(&scenario, db.as_deref())?;
            let json = serde_json::to_string_pretty(&card)?;
            if let Some(file) = report {
                std::fs::write(&file, &json)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            println!("{json}");
            Ok(())
        }
        Command::Fleet {
            sites,
            seed,
            faults,
            report,
            jobs,
            max_hours,
            max_chargers,
        } => {
            anyhow::ensure!(
                (2.0..=24.0).contains(&max_hours) && (2..=60).contains(&max_chargers),
                "--max-hours must be within 2–24 and --max-chargers within 2–60"
            );
            let bounds = evsite_sim::fleet::Bounds {
                hours: [Bounds::FULL.hours[0], max_hours],
                chargers: [Bounds::FULL.chargers[0], max_chargers],
            };
            fleet(sites, seed, faults, report, jobs, bounds)
        }
        Command::Serve {
            scenario,
            write_config: config_path,
            speed,
            data_dir,
            models,
        } => tokio::runtime::Runtime::new()?.block_on(serve(
            scenario,
            config_path,
            speed,
            data_dir,
            models,
        )),
    }
}

async fn serve(
    scenario: String,
    config_path: Option<PathBuf>,
    speed: f64,
    data_dir: Option<PathBuf>,
    models: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(speed > 0.0 && speed.is_finite(), "--speed must be positive");
    let path = evsite_sim::scenario_path(&scenario);
    let mut scenario = Scenario::from_path(&path)?;
    if let Some(models) = models {
        // Absolute, so that the written config names the same files wherever it is read.
        scenario.models_dir = Some(std::path::absolute(&models)?);
    }
    let site = SiteModel::from_registry(&scenario)?.into_shared();
    let mut served = serve_site(site.clone()).await?;
    println!(
        "scenario {} ({}), speed ×{speed}",
        scenario.name,
        path.display()
    );
    for e in &served.endpoints {
        println!("{}", evsite_sim::describe(e));
    }
    if let Some(file) = config_path {
        let data_dir = data_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "evsite-sim-{}-{}",
                scenario.name,
                std::process::id()
            ))
        });
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let model = site
            .lock()
            .map_err(|_| anyhow::anyhow!("site model lock poisoned"))?;
        write_config::write_config(&file, &model, &served.endpoints, &data_dir)?;
        drop(model);
        println!("config written to {}", file.display());
    }
    let stepper = spawn_stepper(site, speed);
    tokio::select! {
        _ = evsite::app::run::shutdown_signal() => {}
        _ = served.join_next() => anyhow::bail!("a server stopped unexpectedly"),
    }
    stepper.abort();
    println!("stopped");
    Ok(())
}

fn fleet(
    sites: usize,
    seed: u64,
    faults: bool,
    report: Option<PathBuf>,
    jobs: Option<usize>,
    bounds: Bounds,
) -> anyhow::Result<()> {
    use evsite_sim::fleet::{run_fleet, FleetOptions};
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let opts = FleetOptions {
        sites,
        seed,
        faults,
        jobs,
        bounds,
    };
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |row: &evsite_sim::fleet::SiteRow| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        eprintln!(
            "[{n}/{sites}] {} ({} chargers, {:.1} h): overload {} s, utilization {}",
            row.name, row.chargers, row.hours, row.overload_s, row.utilization
        );
    };
    let fleet = run_fleet(&opts, &progress)?;
    if let Some(file) = report {
        std::fs::write(&file, serde_json::to_string_pretty(&fleet)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    print!("{}", fleet.table());
    eprintln!(
        "{} sites in {:.0} s on {jobs} threads; worst cycle p99 {:.2} ms",
        fleet.sites,
        started.elapsed().as_secs_f64(),
        fleet.cycle_ms_p99_worst
    );
    Ok(())
}
