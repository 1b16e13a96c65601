//! `evsite demo` end to end: the built binary serves its simulated site, the real controller
//! manages it, and the plain output (stdout is a pipe here) shows cars charging under the limit.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// A bound on how long the 20-second demo may take, start-up and shutdown included.
const GUARD: Duration = Duration::from_secs(180);

#[derive(Debug)]
struct Line {
    t: f64,
    state: String,
    setpoint: Option<f64>,
    energy: Option<f64>,
}

/// `value` of `key=value` in a whitespace-separated line, with `unit` stripped.
fn field<'a>(words: &[&'a str], key: &str, unit: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.strip_suffix(unit).unwrap_or(v))
}

/// Charger status lines, per charger id in the order they appear.
fn charger_lines(out: &str) -> Vec<(String, Vec<Line>)> {
    let mut by: Vec<(String, Vec<Line>)> = Vec::new();
    for l in out.lines() {
        let words: Vec<&str> = l.split_whitespace().collect();
        let (Some(t), Some(id)) = (words.first(), words.get(1)) else {
            continue;
        };
        let Some(t) = t.strip_suffix('s').and_then(|t| t.parse::<f64>().ok()) else {
            continue;
        };
        if !id.starts_with("cp-") {
            continue;
        }
        let line = Line {
            t,
            state: field(&words, "state", "").unwrap_or("?").to_string(),
            setpoint: field(&words, "setpoint", "A").and_then(|v| v.parse().ok()),
            energy: field(&words, "energy", "Wh").and_then(|v| v.parse().ok()),
        };
        match by.iter_mut().find(|(c, _)| c == id) {
            Some((_, v)) => v.push(line),
            None => by.push((id.to_string(), vec![line])),
        }
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_cars_charging_under_the_limit_and_exits_cleanly() {
    let child = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["demo", "--for", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(GUARD, child.wait_with_output())
        .await
        .expect("the demo ends within its guard time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        !stdout.contains('\x1b'),
        "no terminal escapes when stdout is a pipe"
    );

    let chargers = charger_lines(&stdout);
    assert_eq!(chargers.len(), 5, "five chargers reported:\n{stdout}");
    // Some charger had no car or a waiting one, then charged with a setpoint, its energy
    // register moving up meanwhile.
    let progressed = chargers.iter().find(|(_, lines)| {
        lines.iter().enumerate().any(|(i, early)| {
            (early.state == "A" || early.state == "B")
                && lines[i + 1..].iter().any(|late| {
                    late.state == "C"
                        && late.setpoint.is_some_and(|s| s > 0.0)
                        && late.t > early.t
                        && matches!((early.energy, late.energy), (Some(e0), Some(e1)) if e1 > e0)
                })
        })
    });
    assert!(progressed.is_some(), "no car seen charging:\n{stdout}");

    // Every metered grid phase stays under the limit, and so does the true peak.
    let mut grid_lines = 0;
    for l in stdout.lines().filter(|l| l.contains(" grid=")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        let limit: f64 = field(&words, "limit", "A").unwrap().parse().unwrap();
        for a in field(&words, "grid", "A").unwrap().split('/') {
            let a: f64 = a.parse().unwrap();
            assert!(a < limit, "grid {a} A over {limit} A: {l}");
        }
        grid_lines += 1;
    }
    assert!(grid_lines >= 5, "status every few seconds:\n{stdout}");
    let peak = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak grid current "))
        .expect("a summary with the peak");
    let words: Vec<&str> = peak.split_whitespace().collect();
    let peak_a: f64 = words[0].parse().unwrap();
    let limit_a: f64 = words
        .iter()
        .position(|w| *w == "limit")
        .and_then(|i| words.get(i + 1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        peak_a > 0.0 && peak_a < limit_a,
        "peak {peak_a} A, limit {limit_a} A"
    );
    assert!(
        stdout.contains("delivered"),
        "energy per charger in the summary"
    );
}

#[tokio::test]
async fn a_speed_that_is_not_positive_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["demo", "--for", "1", "--speed", "0"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(GUARD, out).await.unwrap().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--speed"));
}
