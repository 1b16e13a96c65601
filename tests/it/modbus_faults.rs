//! Modbus faults in a served site, against the real daemon: a charger that stops answering
//! (timeouts), answers garbage, refuses every request with an exception, reads NaN and 0xFFFF
//! sentinels, or answers as another unit; the RS-485 meter answering as another unit. Each
//! fault is counted and logged once per episode (not once per request), the site stays under
//! its limit throughout, and the charger is read and controlled again afterwards.

use crate::support::daemon;

use std::time::Duration;

use evsite::simulator::Scenario;

use daemon::{until, Daemon, Served};

/// (fault, from s, for s) on cp-1, one after the other.
const FAULTS: [(&str, f64, f64); 5] = [
    ("meter_silent", 6.0, 3.0),
    ("garbled_frames", 10.0, 3.0),
    ("exceptions", 14.0, 3.0),
    ("no_value", 18.0, 3.0),
    ("wrong_unit", 22.0, 3.0),
];
const LIMIT_A: f64 = 40.0;

fn scenario() -> Scenario {
    let mut text = format!(
        "name = \"faults\"\nseed = 5\nduration_s = 3600\nstart = \"2026-11-21T17:00:00Z\"\n\
         [site]\nid = \"faults\"\ngrid_limit_a = {LIMIT_A}\nphases = 3\nvoltage_v = 230.0\n\
         margin_a = 1.0\nfailsafe_current_a = 6.0\n[base_load]\npoints = [[0, 4, 4, 4]]\n\
         [meter]\nmodel = \"eastron-sdm630\"\ntransport = \"rtu\"\n"
    );
    for id in ["cp-1", "cp-2"] {
        text.push_str(&format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"alfen-eve\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 32.0\n\
             [[vehicle]]\ncharger = \"{id}\"\narrive_s = 1\ndepart_s = 3600\ncapacity_kwh = 100\n\
             soc_start = 0.2\nsoc_target = 1.0\nmax_current_a = 32\nphases = 3\n\
             response_delay_s = 1\ntaper_from_soc = 1.0\n"
        ));
    }
    for (kind, at, dur) in FAULTS {
        text.push_str(&format!(
            "[[fault]]\nat_s = {at}\nduration_s = {dur}\nkind = \"{kind}\"\ntarget = \"cp-1\"\n"
        ));
    }
    // Shorter than the meter timeout: the loop holds, it does not fail safe.
    text.push_str(
        "[[fault]]\nat_s = 26\nduration_s = 2\nkind = \"wrong_unit\"\ntarget = \"meter\"\n",
    );
    Scenario::parse(&text, "faults").expect("scenario parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_counted_logged_once_and_survived() {
    let served = Served::start(&scenario()).await;
    let site = served.site.clone();
    let cfg: toml::Table =
        toml::from_str(&std::fs::read_to_string(&served.config).expect("config")).expect("toml");
    let port = cfg["charger"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"].as_str() == Some("cp-1")))
        .and_then(|c| c["port"].as_integer())
        .expect("cp-1's port");
    let cp1 = format!(":{port} unit");

    let mut d = Daemon::start(&served.config);
    d.line_with(&["evsite started"]).await;
    // Through every fault, the grid stays under the limit (beyond the cars' response time).
    let mut peak: f64 = 0.0;
    let end = FAULTS[4].1 + FAULTS[4].2 + 4.0;
    let watch = async {
        loop {
            let (t, grid) = {
                let s = site.lock().expect("site lock");
                (s.time_s(), s.grid_current_a())
            };
            if t > 3.0 {
                peak = grid.iter().copied().fold(peak, f64::max);
            }
            if t > end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(90), watch)
        .await
        .expect("the faults run their course");
    assert!(peak <= LIMIT_A, "grid peaked at {peak:.1} A of {LIMIT_A} A");
    // cp-1 is controlled again: both cars are given more than the fail-safe current.
    until(&site, "both cars charge again", |s| {
        s.charger_truth()
            .iter()
            .all(|t| t.setpoint_a.is_some_and(|a| a > 6.5))
    })
    .await;
    d.line_with(&["modbus device recovered", &cp1]).await;
    d.signal("-TERM");
    let (log, status) = d.all_lines().await;
    assert!(status.success(), "the daemon stops cleanly");

    // Logged once per episode and kind: a handful of lines for dozens of failed requests.
    let failed: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("modbus request failed") && l.contains(&cp1))
        .collect();
    let recovered: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("modbus device recovered") && l.contains(&cp1))
        .collect();
    let failures: u64 = recovered
        .iter()
        .filter_map(|l| {
            l.split("failures=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    println!(
        "faults: {} failed requests of cp-1 counted, {} warning lines, {} recoveries, peak grid {peak:.1} A",
        failures,
        failed.len(),
        recovered.len()
    );
    for kind in ["timeout", "bad_frame"] {
        assert!(
            failed
                .iter()
                .any(|l| l.contains(&format!("kind=\"{kind}\""))
                    || l.contains(&format!("kind={kind}"))),
            "a {kind} was logged: {failed:#?}"
        );
    }
    for l in &failed {
        println!("  {l}");
    }
    assert!(
        failures > failed.len() as u64,
        "more failed requests ({failures}) than lines about them ({})",
        failed.len()
    );
    assert!(
        failed.len() <= 2 * FAULTS.len(),
        "logged once per episode, not per request: {} lines for {failures} failures",
        failed.len()
    );

    // The failed requests were stored as the daemon stopped: the report has cp-1's error
    // ratio, and cp-2's (which never failed) below it.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args([
            "report",
            "--format",
            "json",
            "--from",
            "2020-01-01",
            "--config",
        ])
        .arg(&served.config)
        .output()
        .await
        .expect("evsite report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let ratio = |id: &str| {
        report["health"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["charger"] == id))
            .and_then(|h| h["error_ratio"].as_f64())
    };
    let (cp1_ratio, cp2_ratio) = (ratio("cp-1"), ratio("cp-2"));
    println!("error ratio: cp-1 {cp1_ratio:?}, cp-2 {cp2_ratio:?}");
    assert!(cp1_ratio.is_some_and(|r| r > 0.0), "{report:#}");
    assert!(
        cp2_ratio.is_some_and(|r| r < cp1_ratio.unwrap_or(0.0)),
        "{report:#}"
    );
}
