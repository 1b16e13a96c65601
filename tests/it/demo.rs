//! `evsite demo` end to end: the built binary serves its simulated site, the real controller
//! manages it, and the plain output (stdout is a pipe here) shows cars charging under the limit
//! and their sessions starting, growing and completing with a cost that the summary adds up.

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
    /// Why it has its current, in the cycle's words (`why="…"`, quoted last on the line).
    why: Option<String>,
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
            why: l
                .split_once(" why=\"")
                .and_then(|(_, w)| w.strip_suffix('"'))
                .map(|w| w.replace("\\\"", "\"").replace("\\\\", "\\")),
        };
        match by.iter_mut().find(|(c, _)| c == id) {
            Some((_, v)) => v.push(line),
            None => by.push((id.to_string(), vec![line])),
        }
    }
    by
}

/// A session line of the plain output.
#[derive(Debug, Clone, PartialEq)]
enum Session {
    Started,
    Running { energy_wh: u64, cents: Option<u64> },
    Completed { energy_wh: u64, cents: Option<u64> },
}

/// `0.34` (two decimals, the euro's minor unit) as cents; `-` (no tariff) as None.
fn cents(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.')?;
    assert_eq!(frac.len(), 2, "money to the cent: {v}");
    Some(whole.parse::<u64>().ok()? * 100 + frac.parse::<u64>().ok()?)
}

/// Session lines (`  12.0s session cp-1 ...`), per charger id in the order they appear.
fn session_lines(out: &str) -> Vec<(String, Vec<(f64, Session)>)> {
    let mut by: Vec<(String, Vec<(f64, Session)>)> = Vec::new();
    for l in out.lines() {
        let words: Vec<&str> = l.split_whitespace().collect();
        let [t, "session", id, what, ..] = words[..] else {
            continue;
        };
        let Some(t) = t.strip_suffix('s').and_then(|t| t.parse::<f64>().ok()) else {
            continue;
        };
        let energy = || {
            field(&words, "energy", "Wh")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("energy in {l:?}"))
        };
        let cost = || field(&words, "cost", "").and_then(cents);
        let s = match what {
            "started" => Session::Started,
            "completed" => Session::Completed {
                energy_wh: energy(),
                cents: cost(),
            },
            w if w.starts_with("energy=") => {
                assert!(
                    field(&words, "est_end", "").is_some() && field(&words, "state", "").is_some(),
                    "estimated end and state: {l:?}"
                );
                Session::Running {
                    energy_wh: energy(),
                    cents: cost(),
                }
            }
            _ => continue,
        };
        match by.iter_mut().find(|(c, _)| c == id) {
            Some((_, v)) => v.push((t, s)),
            None => by.push((id.to_string(), vec![(t, s)])),
        }
    }
    by
}

/// The summary's line of one charger: delivered kWh by its register, then its sessions.
#[derive(Debug)]
struct ChargerSummary {
    delivered_wh: f64,
    sessions: usize,
    completed: usize,
    session_wh: u64,
    cents: Option<u64>,
}

fn summary_lines(out: &str) -> Vec<(String, ChargerSummary)> {
    out.lines()
        .filter(|l| l.starts_with("  cp-") && l.contains(" delivered "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let num = |key: &str, unit: &str| -> f64 {
                field(&words, key, unit)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{key} in {l:?}"))
            };
            let s = ChargerSummary {
                delivered_wh: words[2].parse::<f64>().unwrap() * 1000.0,
                sessions: num("sessions", "") as usize,
                completed: num("completed", "") as usize,
                session_wh: num("session_energy", "Wh") as u64,
                cents: field(&words, "cost", "").and_then(cents),
            };
            (words[0].to_string(), s)
        })
        .collect()
}

/// Sessions start, grow, complete with a cost, and the summary's session figures are those
/// the lines showed: completed sessions plus where the running ones stood at the end.
fn check_sessions(stdout: &str) {
    let sessions = session_lines(stdout);
    assert!(!sessions.is_empty(), "no session lines:\n{stdout}");

    // A session seen started, then running with growing energy, then completed with a
    // positive cost: the whole life of one car within the run.
    let lived = sessions.iter().any(|(_, lines)| {
        let Some(start) = lines.iter().position(|(_, s)| *s == Session::Started) else {
            return false;
        };
        let Some(end) = lines[start..]
            .iter()
            .position(|(_, s)| matches!(s, Session::Completed { .. }))
            .map(|i| start + i)
        else {
            return false;
        };
        let energies: Vec<u64> = lines[start..end]
            .iter()
            .filter_map(|(_, s)| match s {
                Session::Running { energy_wh, .. } => Some(*energy_wh),
                _ => None,
            })
            .collect();
        let grew =
            energies.windows(2).any(|w| w[1] > w[0]) && energies.windows(2).all(|w| w[1] >= w[0]);
        let Session::Completed { energy_wh, cents } = lines[end].1 else {
            return false;
        };
        grew && energies.last().is_some_and(|&e| energy_wh >= e)
            && energy_wh > 0
            && cents.is_some_and(|c| c > 0)
    });
    assert!(
        lived,
        "no session started, grew and completed with a cost:\n{stdout}"
    );

    let summary = summary_lines(stdout);
    assert_eq!(summary.len(), 5, "a summary line per charger:\n{stdout}");
    let mut total_wh = 0;
    for (id, sum) in &summary {
        let lines = sessions
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, l)| l.as_slice())
            .unwrap_or_default();
        let started = lines.iter().filter(|(_, s)| *s == Session::Started).count();
        let completed: Vec<(u64, Option<u64>)> = lines
            .iter()
            .filter_map(|(_, s)| match s {
                Session::Completed { energy_wh, cents } => Some((*energy_wh, *cents)),
                _ => None,
            })
            .collect();
        // The running session's last line, if the charger's last event is not an end.
        let running = match lines.last() {
            Some((_, Session::Running { energy_wh, cents })) => Some((*energy_wh, *cents)),
            _ => None,
        };
        assert_eq!(sum.sessions, started, "{id}: sessions started");
        assert_eq!(sum.completed, completed.len(), "{id}: sessions completed");
        let wh: u64 = completed.iter().chain(&running).map(|(e, _)| e).sum();
        assert_eq!(sum.session_wh, wh, "{id}: session energy of its lines");
        let costs: Vec<u64> = completed
            .iter()
            .chain(&running)
            .filter_map(|(_, c)| *c)
            .collect();
        let cost = (!costs.is_empty()).then(|| costs.iter().sum::<u64>());
        assert_eq!(sum.cents, cost, "{id}: cost of its sessions");
        // Session energy is whole Wh from the register the delivered figure follows (printed
        // to the Wh): they agree within a Wh per session and the printing.
        let slack = 1.0 + started as f64;
        assert!(
            (sum.delivered_wh - sum.session_wh as f64).abs() <= slack,
            "{id}: sessions {} Wh, register {} Wh",
            sum.session_wh,
            sum.delivered_wh
        );
        total_wh += sum.session_wh;
    }
    assert!(total_wh > 0, "energy in the sessions");
    let totals = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sessions: "))
        .expect("a sessions total in the summary");
    let kwh: f64 = totals
        .split(", ")
        .find_map(|p| p.strip_suffix(" kWh"))
        .and_then(|v| v.parse().ok())
        .expect("total kWh");
    assert!(
        (kwh * 1000.0 - total_wh as f64).abs() < 0.5 + 1e-6,
        "total {kwh} kWh, chargers {total_wh} Wh"
    );

    // The charging-complete alert's lifecycle is reported with its severity.
    assert!(
        stdout.contains("alert raised info charging_complete"),
        "charging complete raised:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_cars_charging_under_the_limit_and_sessions_completing() {
    let child = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["demo", "--for", "30"])
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
    // Every line of every charger says why it has its current, in words.
    for (id, lines) in &chargers {
        for l in lines {
            assert!(
                l.why.as_deref().is_some_and(|w| !w.trim().is_empty()),
                "{id} at {} s has no why:\n{stdout}",
                l.t
            );
        }
    }

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
    check_sessions(&stdout);
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
