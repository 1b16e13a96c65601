//! evsite-sim: serves a scenario's simulated site over Modbus, or runs it against the real
//! controller on a virtual clock and scores the result.
#![forbid(unsafe_code)]

pub mod fleet;
pub mod optimum;
pub mod run;
pub mod score;

use std::path::{Path, PathBuf};

use evsite::simulator::{Endpoint, Link};

/// The scenarios shipped with the simulator.
pub const SCENARIO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");

/// The fault scenarios of the anomaly detectors (each injects one fault), under
/// [`SCENARIO_DIR`]: named like `faults/stuck-session`.
pub const FAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/faults");

/// A scenario argument: a path to a file, or the name of a shipped scenario (`small`,
/// `faults/meter-drift`).
pub fn scenario_path(arg: &str) -> PathBuf {
    let direct = Path::new(arg);
    if direct.is_file() {
        return direct.to_path_buf();
    }
    Path::new(SCENARIO_DIR).join(format!("{arg}.toml"))
}

/// One line per device: where and how it is served.
pub fn describe(e: &Endpoint) -> String {
    let d = &e.device;
    let link = match &e.link {
        Link::Tcp { port } => format!("tcp 127.0.0.1:{port}"),
        Link::GatewayTcp { port } => format!("tcp 127.0.0.1:{port} (gateway)"),
        Link::GatewayRtu { port } => format!("rtu-over-tcp 127.0.0.1:{port} (serial converter)"),
        Link::Rtu { bus, path, serial } => format!(
            "rtu {} (bus {bus}, {} baud, parity {:?}, {} stop bit(s))",
            path.display(),
            serial.baud,
            serial.parity,
            serial.stop_bits
        ),
    };
    format!("{:<8} {:<26} {link}  unit {}", d.id, d.model.name, d.unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_are_found_by_name_and_all_load() {
        let p = scenario_path("small");
        assert!(p.is_file(), "{}", p.display());
        let dirs = [SCENARIO_DIR, FAULT_DIR];
        let entries = dirs.iter().flat_map(|d| std::fs::read_dir(d).unwrap());
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let s = evsite::simulator::Scenario::from_path(&path).unwrap();
            evsite::simulator::SiteModel::from_registry(&s)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!s.all_vehicles().is_empty(), "{}", path.display());
        }
    }
}
