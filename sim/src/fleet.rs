//! `evsite-sim fleet`: proof on sites nobody wrote. N sites are generated from one seed
//! ([`generate`]), each is run against the real controller on its own virtual clock
//! ([`crate::run::run`]), in parallel on every core, and the scorecards are summed up into
//! one report ([`report`]): per site, aggregated, and per anomaly kind with the rule's
//! detection rate against the fault's size. The same seed gives the same report.

pub mod generate;
pub mod report;

use std::any::Any;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use generate::Bounds;
pub use report::{FleetReport, SiteRow};

use crate::run::{run, RunError};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetOptions {
    pub sites: usize,
    pub seed: u64,
    pub faults: bool,
    /// Sites run at once (at least 1).
    pub jobs: usize,
    pub bounds: Bounds,
}

/// Generate and run every site, calling `progress` as each one finishes (in any order).
pub fn run_fleet(
    opts: &FleetOptions,
    progress: &(dyn Fn(&SiteRow) + Sync),
) -> Result<FleetReport, RunError> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Result<SiteRow, RunError>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, opts.sites.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= opts.sites {
                    break;
                }
                let scenario = generate::site(opts.seed, i, opts.faults, opts.bounds);
                // A panic in one site's run is that site's error, named, and the others go on.
                let row = std::panic::catch_unwind(AssertUnwindSafe(|| run(&scenario)))
                    .unwrap_or_else(|panic| Err(RunError::Io(panicked(&scenario, panic))))
                    .map(|card| SiteRow::new(i, &scenario, card));
                if let Ok(r) = &row {
                    progress(r);
                }
                if let Ok(mut rows) = rows.lock() {
                    rows.push(row);
                }
            });
        }
    });
    let mut rows = rows
        .into_inner()
        .map_err(|_| RunError::Io(std::io::Error::other("a site's result was lost")))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    if rows.len() != opts.sites {
        return Err(RunError::Io(std::io::Error::other(format!(
            "{} of {} sites gave no result",
            opts.sites - rows.len(),
            opts.sites
        ))));
    }
    rows.sort_by_key(|r| r.index);
    Ok(FleetReport::new(opts, rows))
}

/// A site's run that panicked, named so that it can be generated again from the seed.
fn panicked(scenario: &evsite::simulator::Scenario, panic: Box<dyn Any + Send>) -> io::Error {
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    io::Error::other(format!(
        "site {} (seed {}) panicked: {why}",
        scenario.name, scenario.seed
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dozen short sites with faults, as the test command runs them (the 200-site runs and
    /// their figures are in docs/benchmarks.md and docs/anomalies.md).
    #[test]
    fn a_small_fleet_is_scored_the_same_from_its_seed() {
        let opts = FleetOptions {
            sites: 12,
            seed: 11,
            faults: true,
            jobs: 2,
            bounds: Bounds {
                hours: [1.0, 3.0],
                chargers: [2, 6],
            },
        };
        let fleet = run_fleet(&opts, &|_| {}).unwrap();
        eprintln!("{}", fleet.table());
        assert_eq!(fleet.rows.len(), 12);
        assert!(fleet.rows.iter().enumerate().all(|(i, r)| r.index == i));
        // Every injected fault an anomaly rule is meant for is scored, once.
        let scenarios: Vec<_> = (0..opts.sites)
            .map(|i| generate::site(opts.seed, i, true, opts.bounds))
            .collect();
        let meant = scenarios
            .iter()
            .flat_map(|s| &s.faults)
            .filter(|f| crate::score::anomalies::expected(f.kind).is_some())
            .count();
        let scored: usize = fleet.detection.values().map(|d| d.injected).sum();
        assert!(meant > 0, "the seed injects no fault a rule is meant for");
        assert_eq!(scored, meant);
        let link: usize = fleet.link_faults.values().sum();
        assert_eq!(
            link,
            scenarios.iter().flat_map(|s| &s.faults).count() - meant
        );
        // The same site again gives the same row (cycle times aside).
        for i in [0, 7] {
            let again = SiteRow::new(i, &scenarios[i], run(&scenarios[i]).unwrap());
            assert_eq!(
                serde_json::to_string(&again).unwrap(),
                serde_json::to_string(&fleet.rows[i]).unwrap()
            );
        }
        // Where no fault hurts it, the controller delivers what the ideal one does. The
        // other goals are measured on 200-site fleets (docs/benchmarks.md).
        for r in fleet
            .rows
            .iter()
            .filter(|r| r.faults.is_empty() && r.link_faults.is_empty())
        {
            assert!(
                r.utilization >= 0.95,
                "{}: utilization {}",
                r.name,
                r.utilization
            );
        }
        // The goals this fleet holds (the full list and the larger fleets: docs/benchmarks.md).
        // No overload the controller answers for, on any site.
        assert_eq!(fleet.aggregate.sites_with_overload, 0, "{}", fleet.table());
        // Sessions exact to 20 Wh, also where a register froze or drifted.
        for r in &fleet.rows {
            assert!(
                r.session_energy_error_wh.is_none_or(|e| e <= 20.0),
                "{}: session energy error {:?} Wh",
                r.name,
                r.session_energy_error_wh
            );
        }
        // No false alarm of any kind.
        assert!(
            fleet.false_alarms.values().all(|a| a.false_alarms == 0),
            "{:?}",
            fleet.false_alarms
        );
        let table = fleet.table();
        assert!(
            table.contains("fleet seed 11: 12 sites with faults"),
            "{table}"
        );
    }
}
