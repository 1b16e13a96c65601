//! A simulated run that keeps its store (`evsite-sim run SCENARIO --db DIR`): the real
//! `evsite sessions --db DIR` and `evsite report --db DIR` read back the sessions and energy
//! the run's scorecard counted.

use std::path::Path;
use std::process::Command;

use evsite::simulator::Scenario;

fn evsite(args: &[&str], db: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(args)
        .args(["--format", "json", "--db"])
        .arg(db)
        .output()
        .expect("evsite runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"))
}

#[test]
fn a_kept_store_holds_the_sessions_and_energy_of_the_run() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim/scenarios/small.toml");
    let scenario = Scenario::from_path(&path).expect("scenario");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let card = evsite_sim::run::run_keeping(&scenario, Some(&db)).expect("run");
    let sessions = card.sessions.expect("sessions scored");
    assert!(sessions >= 4, "{card:?}");

    let listed = evsite(&["sessions"], &db);
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), sessions, "one stored session per scored one");
    let stored_wh: f64 = listed
        .iter()
        .map(|s| s["energy_wh"].as_f64().expect("energy_wh"))
        .sum();

    let report = evsite(&["report"], &db);
    let totals = &report["totals"];
    assert_eq!(
        totals["sessions"].as_u64(),
        Some(sessions as u64),
        "{totals}"
    );
    let reported_wh = totals["energy_wh"].as_f64().expect("energy_wh");
    assert_eq!(
        reported_wh, stored_wh,
        "the report sums the stored sessions"
    );
    // Each session is within the scorecard's own bound of what the vehicles took.
    let bound = card.session_energy_error_wh.expect("scored") * sessions as f64 + 1.0;
    assert!(
        (reported_wh - card.energy_wh).abs() <= bound,
        "report {reported_wh} Wh, scorecard {} Wh (bound {bound})",
        card.energy_wh
    );
}
