//! What `evsite demo` prints: the full-screen view redrawn on a terminal, the plain status
//! lines written when stdout is a pipe or a file, and the final summary. Pure text from a
//! [`CycleRecord`], so it is tested without a terminal.

use std::fmt::Write as _;

use crate::control::record::{ChargerCycle, CycleRecord, Reason};
use crate::control::safety::Mode;

use super::tally::Tally;

/// Width of a phase's bar, in characters.
const BAR_WIDTH: usize = 30;
/// ANSI: cursor home; erase to end of line; erase below.
const HOME: &str = "\x1b[H";
const ERASE_LINE: &str = "\x1b[K";
const ERASE_BELOW: &str = "\x1b[J";

/// What the header shows beside the view.
pub struct Header<'a> {
    pub site_id: &'a str,
    pub speed: f64,
    pub elapsed_s: f64,
    /// Seconds of site time simulated so far.
    pub site_s: f64,
    /// The site's clock.
    pub site_now: chrono::DateTime<chrono::Utc>,
}

/// `value` against `limit` as a bar of `width` cells: `#` up to the value, `.` for the rest.
pub fn bar(value: f64, limit: f64, width: usize) -> String {
    let filled = if limit > 0.0 {
        ((value / limit).clamp(0.0, 1.0) * width as f64).round() as usize
    } else {
        0
    };
    format!("{}{}", "#".repeat(filled), ".".repeat(width - filled))
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Startup => "startup",
        Mode::Normal => "normal",
        Mode::Holding => "holding (meter missed)",
        Mode::Failsafe => "FAILSAFE",
    }
}

/// The controller's reason in words.
pub fn reason_text(reason: Reason) -> &'static str {
    match reason {
        Reason::Charging => "charging",
        Reason::Offline => "offline",
        Reason::NoCar => "paused: no car",
        Reason::Disabled => "paused: disabled",
        Reason::Fault => "paused: fault",
        Reason::Limited => "paused: limited",
        Reason::BadPhaseMap => "paused: bad phase map",
        Reason::NoCapacity => "paused: no capacity",
        Reason::WaitingTurn => "paused: waiting turn",
    }
}

/// Why the charger has its current, as the cycle says it (its reason, from a record that has
/// no why).
pub fn why_text(c: &ChargerCycle) -> &str {
    if c.why.text.trim().is_empty() {
        reason_text(c.reason)
    } else {
        &c.why.text
    }
}

fn state_text(c: &ChargerCycle) -> String {
    match (c.online, c.state) {
        (false, _) => "offline".into(),
        (true, Some(s)) => s.letter().to_string(),
        (true, None) => "-".into(),
    }
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}{unit}"))
}

/// One screen of the live view, each line erased to its end so shorter text leaves no rests.
/// `sessions` is the sessions block ([`super::records::session_rows`]), `alerts` the alerts
/// block ([`super::records::alert_rows`]).
pub fn frame(
    h: &Header,
    v: &CycleRecord,
    tally: &Tally,
    sessions: &[String],
    alerts: &[String],
) -> String {
    let mut lines = Vec::new();
    lines.push(format!(
        "evsite demo — site {}, ×{} speed, {:.0} s elapsed ({} of site time, site clock {})",
        h.site_id,
        h.speed,
        h.elapsed_s,
        clock(h.site_s),
        h.site_now.format("%H:%M:%S")
    ));
    lines.push(format!(
        "mode {}   cycle {:.1} ms   peak {:.1} A of {} A",
        mode_name(v.mode),
        v.cycle_ms,
        tally.peak_a(),
        v.limit.limit_a
    ));
    if let Some(d) = &v.demand {
        lines.push(format!("demand  {}", d.summary()));
    }
    lines.push(String::new());
    for p in 0..3 {
        let a = v.grid_a.map(|g| g[p]);
        lines.push(format!(
            "grid L{}  {:>6}  [{}]  limit {} A",
            p + 1,
            opt(a, 1, " A"),
            bar(a.unwrap_or(0.0), v.limit.limit_a, BAR_WIDTH),
            v.limit.limit_a
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<8} {:<7} {:>6} {:>6} {:>6} {:>9} {:>14}  why",
        "charger", "state", "L1 A", "L2 A", "L3 A", "setpoint", "energy"
    ));
    for c in &v.chargers {
        let a = c.current_or_zero_a();
        lines.push(format!(
            "{:<8} {:<7} {:>6.1} {:>6.1} {:>6.1} {:>9} {:>14}  {}",
            c.id,
            state_text(c),
            a[0],
            a[1],
            a[2],
            opt(c.setpoint_a, 1, " A"),
            opt(c.energy_wh.map(|e| e / 1000.0), 3, " kWh"),
            why_text(c)
        ));
    }
    lines.push(String::new());
    lines.extend(sessions.iter().cloned());
    lines.push(String::new());
    lines.extend(alerts.iter().cloned());
    lines.push(String::new());
    lines.push("Ctrl-C stops the demo (chargers are set to their safe current first).".into());
    let mut out = String::from(HOME);
    for l in lines {
        let _ = writeln!(out, "{l}{ERASE_LINE}");
    }
    out.push_str(ERASE_BELOW);
    out
}

/// Plain status lines: the grid, then one line per charger, each prefixed with the elapsed
/// seconds so a log of them reads as a timeline.
pub fn plain_lines(elapsed_s: f64, v: &CycleRecord) -> Vec<String> {
    let t = format!("{elapsed_s:6.1}s");
    let grid = v.grid_a.map_or_else(
        || "-".into(),
        |g| format!("{:.1}/{:.1}/{:.1}A", g[0], g[1], g[2]),
    );
    let mut out = vec![format!(
        "{t} grid={grid} limit={}A mode={}",
        v.limit.limit_a,
        mode_name(v.mode)
    )];
    for c in &v.chargers {
        let a = c.current_or_zero_a();
        out.push(format!(
            "{t} {} state={} current={:.1}/{:.1}/{:.1}A setpoint={} energy={} reason={} why={:?}",
            c.id,
            state_text(c),
            a[0],
            a[1],
            a[2],
            opt(c.setpoint_a, 1, "A"),
            opt(c.energy_wh, 0, "Wh"),
            reason_text(c.reason).replace(' ', "-"),
            why_text(c)
        ));
    }
    out
}

/// `h:mm:ss` of a number of seconds.
pub fn clock(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::model::ChargeState;

    fn view() -> CycleRecord {
        CycleRecord {
            mode: Mode::Normal,
            grid_a: Some([16.0, 8.0, 40.0]),
            chargers: vec![ChargerCycle {
                online: true,
                state: Some(ChargeState::C),
                current_a: [Some(10.0); 3],
                energy_wh: Some(1234.4),
                setpoint_a: Some(10.5),
                reason: Reason::NoCapacity,
                ..ChargerCycle::unread("cp-1")
            }],
            cycle_ms: 2.0,
            ..CycleRecord::blank(chrono::Utc::now(), 32.0)
        }
    }

    #[test]
    fn bars_fill_in_proportion_and_clamp() {
        assert_eq!(bar(16.0, 32.0, 10), "#####.....");
        assert_eq!(bar(40.0, 32.0, 4), "####");
        assert_eq!(bar(-1.0, 32.0, 4), "....");
        assert_eq!(bar(5.0, 0.0, 3), "...");
    }

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(reason_text(Reason::NoCapacity), "paused: no capacity");
        assert_eq!(reason_text(Reason::Charging), "charging");
        assert_eq!(reason_text(Reason::Offline), "offline");
    }

    #[test]
    fn plain_lines_carry_every_field() {
        let lines = plain_lines(4.0, &view());
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "   4.0s grid=16.0/8.0/40.0A limit=32A mode=normal"
        );
        assert_eq!(
            lines[1],
            "   4.0s cp-1 state=C current=10.0/10.0/10.0A setpoint=10.5A energy=1234Wh \
             reason=paused:-no-capacity why=\"paused: no capacity\""
        );
    }

    /// Each charger's why, in the cycle's own words, in the frame and the plain lines.
    #[test]
    fn both_views_show_each_chargers_why() {
        let whys = [
            crate::control::why::Why::from_reason(crate::control::allocate::Reason::Disabled),
            crate::control::why::Why {
                code: crate::control::why::WhyCode::Circuit,
                text: "limited by circuit hall-a on L2 (100 A, installer)".into(),
                ..Default::default()
            },
        ];
        let mut v = view();
        v.chargers = whys
            .iter()
            .enumerate()
            .map(|(i, w)| ChargerCycle {
                why: w.clone(),
                ..ChargerCycle::unread(&format!("cp-{i}"))
            })
            .collect();
        let f = frame(&header(60.0), &v, &Tally::default(), &[], &[]);
        let lines = plain_lines(1.0, &v);
        for (c, w) in v.chargers.iter().zip(&whys) {
            assert!(
                f.lines()
                    .any(|l| l.starts_with(&c.id) && l.ends_with(&format!("  {}\x1b[K", w.text))),
                "{f}"
            );
            let line = lines
                .iter()
                .find(|l| l.contains(&format!(" {} ", c.id)))
                .unwrap();
            assert!(line.ends_with(&format!(" why={:?}", w.text)), "{line}");
        }
    }

    /// The demo's header `site_s` into the run, 12 s of wall time in at 30×.
    fn header(site_s: f64) -> Header<'static> {
        Header {
            site_id: "demo",
            speed: 30.0,
            elapsed_s: 12.0,
            site_s,
            site_now: chrono::DateTime::from_timestamp(1_768_500_000, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn the_frame_shows_grid_chargers_and_alerts() {
        let h = header(3725.0);
        let f = frame(
            &h,
            &view(),
            &Tally::default(),
            &["session  since".into(), "cp-1     17:00:30".into()],
            &[
                "recent alerts:".into(),
                "  17:00:03 raised  critical overload".into(),
            ],
        );
        assert!(f.starts_with(HOME) && f.ends_with(ERASE_BELOW));
        assert!(f.contains("1:02:05 of site time, site clock 18:00:00"));
        assert!(f.contains(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))));
        assert!(f.contains("cp-1"));
        assert!(f.contains("1.234 kWh"));
        assert!(f.contains("paused: no capacity"));
        assert!(f.contains("\ncp-1     17:00:30\x1b[K\n"));
        assert!(f.contains("  17:00:03 raised  critical overload"));
        assert!(!f.contains("demand"), "no [demand], no demand line");
    }

    #[test]
    fn the_frame_shows_the_demand_window_of_a_site_with_a_target() {
        let h = header(60.0);
        let at = chrono::DateTime::from_timestamp(1_768_500_000, 0).unwrap_or_default();
        let v = CycleRecord {
            demand: Some(crate::control::demand::DemandStatus {
                window_start: at,
                window_end: at + chrono::TimeDelta::minutes(15),
                energy_wh: 0.0,
                limit_kw: 25.0,
                projected_kw: 18.24,
                allowed_kw: 25.0,
                month_peak_kw: 23.9,
                finished: None,
                building_exceeds: false,
            }),
            ..view()
        };
        let f = frame(&h, &v, &Tally::default(), &[], &[]);
        assert!(
            f.contains(
                "\ndemand  18.2 kW projected of 25.0 kW target · month peak 23.9 kW\x1b[K\n"
            ),
            "{f}"
        );
    }
}
