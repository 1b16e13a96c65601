//! Sessions and alerts as the demo prints them: the live view's sessions and alerts blocks,
//! and the plain lines written as sessions start, run and end. Pure text from records; all
//! times are the simulated site's clock.

use chrono::{DateTime, Utc};

use crate::alerts::{Alert, AlertChange, AlertState};
use crate::control::record::CycleRecord;
use crate::sessions::machine::{RecordState, SessionRecord};

use super::ledger::{kind_name, severity_name};
use crate::electric::DRAW_FLOOR_A;

/// `17:05:30`.
pub fn hms(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S").to_string()
}

/// The bill so far: `0.47 EUR`, or `-` without a tariff.
pub fn cost_text(r: &SessionRecord) -> String {
    r.cost
        .as_ref()
        .map_or_else(|| "-".into(), |c| format!("{} {}", c.total, c.currency))
}

/// When the vehicle is expected to stop drawing, `complete` once it has, `-` before any
/// estimate.
pub fn end_text(r: &SessionRecord) -> String {
    if r.charging_completed_at.is_some() {
        return "complete".into();
    }
    r.estimated_end_at.map_or_else(|| "-".into(), hms)
}

/// What the session is doing: `waiting` (plugged in, never charged), `charging`, `paused`,
/// `idle` (charging complete, still plugged in), or how it ended (`completed`,
/// `interrupted`).
pub fn state_text(r: &SessionRecord, v: &CycleRecord) -> &'static str {
    match r.state {
        RecordState::Completed => return "completed",
        RecordState::Interrupted => return "interrupted",
        RecordState::Active => {}
    }
    let drawing = v
        .chargers
        .iter()
        .find(|c| c.id == r.charger)
        .is_some_and(|c| c.current_or_zero_a().iter().any(|&a| a >= DRAW_FLOOR_A));
    if drawing {
        "charging"
    } else if r.charging_completed_at.is_some() {
        "idle"
    } else if r.charging_started_at.is_none() {
        "waiting"
    } else {
        "paused"
    }
}

/// The live view's sessions block: running sessions, then the last ended ones.
pub fn session_rows(
    active: &[SessionRecord],
    ended: &[&SessionRecord],
    v: &CycleRecord,
) -> Vec<String> {
    let mut out = vec![format!(
        "{:<8} {:<8} {:>10} {:>11} {:>9}  state",
        "session", "since", "energy", "cost", "end"
    )];
    if active.is_empty() && ended.is_empty() {
        out.push("  none yet".into());
    }
    for r in active.iter().chain(ended.iter().copied()) {
        let end = match r.state {
            RecordState::Active => end_text(r),
            _ => r.ended_at.map_or_else(|| "-".into(), hms),
        };
        out.push(format!(
            "{:<8} {:<8} {:>10} {:>11} {:>9}  {}",
            r.charger,
            hms(r.plugged_in_at),
            format!("{:.3} kWh", r.energy_wh as f64 / 1000.0),
            cost_text(r),
            end,
            state_text(r, v)
        ));
    }
    out
}

/// `17:05:30 raised  info     charging_complete cp-1: ...`.
pub fn alert_row(c: &AlertChange) -> String {
    let a = c.alert();
    let (word, at) = lifecycle(a);
    format!(
        "{} {word:<7} {:<8} {}{}: {}",
        hms(at),
        severity_name(a.severity),
        kind_name(a.kind),
        charger_suffix(a),
        a.message
    )
}

/// The live view's alerts block: how many are active, then the last changes.
pub fn alert_rows<'a>(active: usize, recent: impl Iterator<Item = &'a AlertChange>) -> Vec<String> {
    let mut out = vec![format!("alerts: {active} active; recent changes:")];
    out.extend(recent.map(|c| format!("  {}", alert_row(c))));
    if out.len() == 1 {
        out.push("  none".into());
    }
    out
}

/// Plain: `session cp-1 started at=17:00:31 id=1a2b3c4d`.
pub fn started_line(r: &SessionRecord) -> String {
    format!(
        "session {} started at={} id={}",
        r.charger,
        hms(r.plugged_in_at),
        r.session_id.get(..8).unwrap_or(&r.session_id)
    )
}

/// Plain, a running session: `session cp-1 energy=1234Wh cost=0.35 EUR est_end=17:12:00
/// state=charging`.
pub fn running_line(r: &SessionRecord, v: &CycleRecord) -> String {
    format!(
        "session {} energy={}Wh cost={} est_end={} state={}",
        r.charger,
        r.energy_wh,
        cost_text(r),
        end_text(r),
        state_text(r, v)
    )
}

/// Plain, an ended session: `session cp-1 completed energy=1234Wh cost=0.47 EUR
/// at=17:07:30`.
pub fn ended_line(r: &SessionRecord) -> String {
    let word = match r.state {
        RecordState::Interrupted => "interrupted",
        _ => "completed",
    };
    format!(
        "session {} {word} energy={}Wh cost={} at={}",
        r.charger,
        r.energy_wh,
        cost_text(r),
        r.ended_at.map_or_else(|| "-".into(), hms)
    )
}

/// Plain: `alert raised warning session_interrupted cp-3 at=17:05:00: ...`.
pub fn alert_line(c: &AlertChange) -> String {
    let a = c.alert();
    let (word, at) = lifecycle(a);
    format!(
        "alert {word} {} {}{} at={}: {}",
        severity_name(a.severity),
        kind_name(a.kind),
        charger_suffix(a),
        hms(at),
        a.message
    )
}

/// Raised, or cleared, and when: a cleared alert is stamped with when its condition went away.
fn lifecycle(a: &Alert) -> (&'static str, DateTime<Utc>) {
    match a.state {
        AlertState::Raised => ("raised", a.raised_at),
        AlertState::Cleared => ("cleared", a.cleared_at.unwrap_or(a.raised_at)),
    }
}

fn charger_suffix(a: &Alert) -> String {
    a.charger
        .as_deref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertKind, Severity};
    use crate::control::record::ChargerCycle;
    use crate::sessions::cost::Cost;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, h, m, s).single().unwrap()
    }

    fn record() -> SessionRecord {
        SessionRecord {
            charging_started_at: Some(at(17, 1, 0)),
            energy_wh: 1234,
            estimated_end_at: Some(at(17, 12, 0)),
            cost: Some(Cost {
                currency: "EUR".into(),
                total: Decimal::new(35, 2),
                lines: Vec::new(),
            }),
            ..SessionRecord::new("0123456789abcdef".into(), "cp-1".into(), at(17, 0, 30))
        }
    }

    fn view(amps: f64) -> CycleRecord {
        CycleRecord {
            chargers: vec![ChargerCycle {
                current_a: [Some(amps); 3],
                ..ChargerCycle::unread("cp-1")
            }],
            ..CycleRecord::blank(at(17, 0, 0), 32.0)
        }
    }

    #[test]
    fn plain_session_lines_carry_energy_cost_and_end() {
        let r = record();
        assert_eq!(
            started_line(&r),
            "session cp-1 started at=17:00:30 id=01234567"
        );
        assert_eq!(
            running_line(&r, &view(16.0)),
            "session cp-1 energy=1234Wh cost=0.35 EUR est_end=17:12:00 state=charging"
        );
        let mut done = r.clone();
        done.charging_completed_at = Some(at(17, 8, 0));
        assert_eq!(
            running_line(&done, &view(0.0)),
            "session cp-1 energy=1234Wh cost=0.35 EUR est_end=complete state=idle"
        );
        done.state = RecordState::Completed;
        done.ended_at = Some(at(17, 10, 5));
        assert_eq!(
            ended_line(&done),
            "session cp-1 completed energy=1234Wh cost=0.35 EUR at=17:10:05"
        );
    }

    #[test]
    fn a_session_waits_charges_pauses_and_idles() {
        let mut r = record();
        assert_eq!(state_text(&r, &view(0.0)), "paused");
        r.charging_started_at = None;
        assert_eq!(state_text(&r, &view(0.0)), "waiting");
        r.charging_completed_at = Some(at(17, 8, 0));
        assert_eq!(state_text(&r, &view(0.0)), "idle");
        assert_eq!(state_text(&r, &view(6.0)), "charging");
        r.cost = None;
        r.estimated_end_at = None;
        r.charging_completed_at = None;
        assert_eq!(cost_text(&r), "-");
        assert_eq!(end_text(&r), "-");
    }

    #[test]
    fn the_sessions_block_lists_running_then_ended_sessions() {
        let r = record();
        let mut ended = record();
        ended.charger = "cp-2".into();
        ended.state = RecordState::Completed;
        ended.ended_at = Some(at(17, 9, 0));
        let rows = session_rows(std::slice::from_ref(&r), &[&ended], &view(10.0));
        assert_eq!(rows.len(), 3);
        assert!(rows[1].starts_with("cp-1     17:00:30"), "{}", rows[1]);
        assert!(rows[1].contains("1.234 kWh") && rows[1].contains("0.35 EUR"));
        assert!(rows[1].contains("17:12:00") && rows[1].ends_with("charging"));
        assert!(rows[2].contains("17:09:00") && rows[2].ends_with("completed"));
        assert_eq!(session_rows(&[], &[], &view(0.0)).len(), 2);
    }

    #[test]
    fn alerts_read_with_their_lifecycle_and_severity() {
        let mut a = Alert {
            alert_id: "x".into(),
            kind: AlertKind::ChargingComplete,
            severity: Severity::Info,
            charger: Some("cp-1".into()),
            state: AlertState::Raised,
            message: "charging complete: the vehicle can be moved".into(),
            raised_at: at(17, 5, 0),
            cleared_at: None,
        };
        let raised = AlertChange::Raised(a.clone());
        assert_eq!(
            alert_row(&raised),
            "17:05:00 raised  info     charging_complete cp-1: charging complete: the vehicle can be moved"
        );
        assert_eq!(
            alert_line(&raised),
            "alert raised info charging_complete cp-1 at=17:05:00: charging complete: the vehicle \
             can be moved"
        );
        assert_eq!(
            alert_rows(1, [&raised].into_iter()),
            vec![
                "alerts: 1 active; recent changes:".to_string(),
                format!("  {}", alert_row(&raised))
            ]
        );
        assert_eq!(alert_rows(0, [].into_iter()).len(), 2);
        a.state = AlertState::Cleared;
        a.cleared_at = Some(at(17, 7, 30));
        a.charger = None;
        a.kind = AlertKind::MeterOffline;
        a.severity = Severity::Critical;
        a.message = "meter".into();
        assert_eq!(
            alert_line(&AlertChange::Cleared(a)),
            "alert cleared critical meter_offline at=17:07:30: meter"
        );
    }
}
