//! `[anomaly]`: every threshold finite and in a range that keeps its rule meaningful.

use super::{check, num};
use crate::anomaly::Settings;
use crate::config::error::KeyPath;
use crate::config::raw::RawAnomaly;
use crate::config::report::Reporter;

pub(super) fn anomaly(raw: &RawAnomaly, rep: &mut Reporter<'_>) -> Option<Settings> {
    let p = KeyPath::root("anomaly");
    let before = rep.count();
    let mut range = |key: &str, v: f64, lo: f64, hi: f64, unit: &str| {
        check(
            rep,
            v.is_finite() && (lo..=hi).contains(&v),
            &p.key(key),
            format!("must be {}–{}{unit}, got {}", num(lo), num(hi), num(v)),
        );
    };
    range("response_s", raw.response_s, 0.0, 60.0, " s");
    range(
        "setpoint_tolerance_pct",
        raw.setpoint_tolerance_pct,
        0.0,
        100.0,
        " %",
    );
    range(
        "setpoint_tolerance_a",
        raw.setpoint_tolerance_a,
        0.0,
        32.0,
        " A",
    );
    range("setpoint_hold_s", raw.setpoint_hold_s, 1.0, 3600.0, " s");
    range("unexpected_draw_a", raw.unexpected_draw_a, 0.1, 32.0, " A");
    range(
        "unexpected_draw_hold_s",
        raw.unexpected_draw_hold_s,
        1.0,
        3600.0,
        " s",
    );
    range("stuck_current_a", raw.stuck_current_a, 0.1, 6.0, " A");
    range("stuck_hold_s", raw.stuck_hold_s, 10.0, 86_400.0, " s");
    range(
        "bay_blocked_s",
        raw.bay_blocked_s,
        60.0,
        7.0 * 86_400.0,
        " s",
    );
    range("drift_window_s", raw.drift_window_s, 5.0, 3600.0, " s");
    range("drift_min_wh", raw.drift_min_wh, 1.0, 100_000.0, " Wh");
    range(
        "drift_tolerance_pct",
        raw.drift_tolerance_pct,
        1.0,
        100.0,
        " %",
    );
    range("frozen_wh", raw.frozen_wh, 1.0, 100_000.0, " Wh");
    range(
        "jump_margin_wh",
        raw.jump_margin_wh,
        0.0,
        1_000_000.0,
        " Wh",
    );
    range(
        "overpower_margin_pct",
        raw.overpower_margin_pct,
        0.0,
        100.0,
        " %",
    );
    range("overpower_hold_s", raw.overpower_hold_s, 1.0, 3600.0, " s");
    range("phase_step_a", raw.phase_step_a, 1.0, 32.0, " A");
    range(
        "meter_tolerance_w",
        raw.meter_tolerance_w,
        0.0,
        1_000_000.0,
        " W",
    );
    range(
        "meter_tolerance_pct",
        raw.meter_tolerance_pct,
        0.0,
        100.0,
        " %",
    );
    range("meter_step_w", raw.meter_step_w, 100.0, 1_000_000.0, " W");
    range("meter_hold_s", raw.meter_hold_s, 1.0, 3600.0, " s");
    range("outlier_mads", raw.outlier_mads, 1.0, 100.0, "");
    let mut count = |key: &str, v: i64, lo: i64, hi: i64| {
        check(
            rep,
            (lo..=hi).contains(&v),
            &p.key(key),
            format!("must be {lo}–{hi}, got {v}"),
        );
    };
    count("meter_evidence", raw.meter_evidence, 1, 100);
    count("outlier_sessions", raw.outlier_sessions, 3, 1000);
    count("outlier_min_sessions", raw.outlier_min_sessions, 3, 1000);
    check(
        rep,
        raw.outlier_min_sessions <= raw.outlier_sessions,
        &p.key("outlier_min_sessions"),
        format!(
            "must not exceed outlier_sessions ({}), got {}",
            raw.outlier_sessions, raw.outlier_min_sessions
        ),
    );
    check(
        rep,
        (1..=100).contains(&raw.phase_evidence),
        &p.key("phase_evidence"),
        format!("must be 1–100, got {}", raw.phase_evidence),
    );
    (rep.count() == before).then_some(Settings {
        enabled: raw.enabled,
        response_s: raw.response_s,
        setpoint_tolerance_pct: raw.setpoint_tolerance_pct,
        setpoint_tolerance_a: raw.setpoint_tolerance_a,
        setpoint_hold_s: raw.setpoint_hold_s,
        unexpected_draw_a: raw.unexpected_draw_a,
        unexpected_draw_hold_s: raw.unexpected_draw_hold_s,
        stuck_current_a: raw.stuck_current_a,
        stuck_hold_s: raw.stuck_hold_s,
        bay_blocked_s: raw.bay_blocked_s,
        drift_window_s: raw.drift_window_s,
        drift_min_wh: raw.drift_min_wh,
        drift_tolerance_pct: raw.drift_tolerance_pct,
        frozen_wh: raw.frozen_wh,
        jump_margin_wh: raw.jump_margin_wh,
        overpower_margin_pct: raw.overpower_margin_pct,
        overpower_hold_s: raw.overpower_hold_s,
        phase_step_a: raw.phase_step_a,
        phase_evidence: raw.phase_evidence.clamp(1, 100) as u32,
        meter_tolerance_w: raw.meter_tolerance_w,
        meter_tolerance_pct: raw.meter_tolerance_pct,
        meter_step_w: raw.meter_step_w,
        meter_evidence: raw.meter_evidence.clamp(1, 100) as u32,
        meter_hold_s: raw.meter_hold_s,
        outlier_sessions: raw.outlier_sessions.clamp(3, 1000) as u32,
        outlier_min_sessions: raw.outlier_min_sessions.clamp(3, 1000) as u32,
        outlier_mads: raw.outlier_mads,
    })
}
