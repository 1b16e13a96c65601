//! The detectors' thresholds: the `[anomaly]` section, checked (see
//! `docs/anomalies.md` for each rule and why its default is what it is).

use serde::Deserialize;

/// Thresholds of every anomaly rule, as `[anomaly]` spells them. `Default` is what a site
/// gets without `[anomaly]`, or for any key it leaves out. Counts are `i64` so that a
/// negative one reaches validation, which holds them to their ranges.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Off: no anomaly alerts at all.
    pub enabled: bool,
    /// A car may take this long to follow a lower setpoint (IEC 61851: 5 s): the highest
    /// setpoint written within it is what the charger may draw.
    pub response_s: f64,
    /// Setpoint ignored: drawing more than setpoint × (1 + pct/100) + a …
    pub setpoint_tolerance_pct: f64,
    pub setpoint_tolerance_a: f64,
    /// … for this long.
    pub setpoint_hold_s: f64,
    /// Unexpected draw: more than this on a phase while nothing may be drawn …
    pub unexpected_draw_a: f64,
    /// … for this long.
    pub unexpected_draw_hold_s: f64,
    /// Stuck session: state C, offered at least the minimum, below this on every phase …
    pub stuck_current_a: f64,
    /// … for this long.
    pub stuck_hold_s: f64,
    /// Bay blocked: plugged in, not drawing, not held back by the site (capacity, or a
    /// departure plan waiting for a cheaper slot), for this long.
    pub bay_blocked_s: f64,
    /// Meter drift: register against integrated power over windows of at least this long …
    pub drift_window_s: f64,
    /// … and at least this much energy …
    pub drift_min_wh: f64,
    /// … off by more than this share (and two register steps).
    pub drift_tolerance_pct: f64,
    /// Register frozen: this much integrated energy (plus two register steps) with no
    /// register change.
    pub frozen_wh: f64,
    /// Register jump: a step beyond what the charger's maximum power could deliver in the
    /// time, by more than this (plus two register steps).
    pub jump_margin_wh: f64,
    /// Overpower: power above max_current_a × phases × voltage × (1 + pct/100), or above
    /// the charger's own currents × voltage × (1 + pct/100) …
    pub overpower_margin_pct: f64,
    /// … for this long.
    pub overpower_hold_s: f64,
    /// Phase map: only a charger's current steps of at least this much are evidence …
    pub phase_step_a: f64,
    /// … and this many units of evidence more wrong than right raise it (a step counts by
    /// its log-likelihood ratio against the site's measured noise, 8 a unit).
    pub phase_evidence: i64,
    /// Site meter against the chargers: a difference beyond this much …
    pub meter_tolerance_w: f64,
    /// … plus this share of the chargers' power (or of their step) counts.
    pub meter_tolerance_pct: f64,
    /// Only a change of the chargers' summed power of at least this much is a step …
    pub meter_step_w: f64,
    /// … and this many more unseen than seen steps raise it.
    pub meter_evidence: i64,
    /// The chargers reporting more than the site imports must hold this long.
    pub meter_hold_s: f64,
    /// Session outliers: judged against this charger's last this many completed sessions …
    pub outlier_sessions: i64,
    /// … once it has at least this many …
    pub outlier_min_sessions: i64,
    /// … when energy or duration is above the median by more than this many scaled MADs.
    pub outlier_mads: f64,
    /// Unauthorised draw: a charger in `local` or `cloud` mode with nobody authorised draws
    /// above the draw floor for this long.
    pub unauthorized_hold_s: f64,
    /// Unknown token: presented this many times (an appearance in a charger's id register,
    /// on any charger) …
    pub unknown_token_count: i64,
    /// … within this long.
    pub unknown_token_window_s: f64,
    /// Token in use twice: one token on two connected chargers for this long.
    pub token_twice_hold_s: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            response_s: 5.0,
            setpoint_tolerance_pct: 10.0,
            setpoint_tolerance_a: 0.5,
            setpoint_hold_s: 7.0,
            unexpected_draw_a: 1.0,
            unexpected_draw_hold_s: 10.0,
            stuck_current_a: 0.5,
            stuck_hold_s: 45.0,
            bay_blocked_s: 4.0 * 3600.0,
            drift_window_s: 30.0,
            drift_min_wh: 50.0,
            drift_tolerance_pct: 10.0,
            frozen_wh: 30.0,
            jump_margin_wh: 100.0,
            overpower_margin_pct: 10.0,
            overpower_hold_s: 5.0,
            phase_step_a: 3.0,
            phase_evidence: 3,
            meter_tolerance_w: 2000.0,
            meter_tolerance_pct: 20.0,
            meter_step_w: 3000.0,
            meter_evidence: 3,
            meter_hold_s: 30.0,
            outlier_sessions: 50,
            outlier_min_sessions: 10,
            outlier_mads: 5.0,
            unauthorized_hold_s: 10.0,
            unknown_token_count: 3,
            unknown_token_window_s: 3600.0,
            token_twice_hold_s: 30.0,
        }
    }
}

/// A real-valued key: its name, its value, and the range that keeps its rule meaningful.
pub(crate) type RealKey = (&'static str, fn(&Settings) -> f64, f64, f64, &'static str);
/// A count: its name, its value, and its range.
pub(crate) type CountKey = (&'static str, fn(&Settings) -> i64, i64, i64);

/// Every real-valued key of `[anomaly]` with its range (the unit as the error says it).
pub(crate) const REAL_KEYS: &[RealKey] = &[
    ("response_s", |s| s.response_s, 0.0, 60.0, " s"),
    (
        "setpoint_tolerance_pct",
        |s| s.setpoint_tolerance_pct,
        0.0,
        100.0,
        " %",
    ),
    (
        "setpoint_tolerance_a",
        |s| s.setpoint_tolerance_a,
        0.0,
        32.0,
        " A",
    ),
    ("setpoint_hold_s", |s| s.setpoint_hold_s, 1.0, 3600.0, " s"),
    (
        "unexpected_draw_a",
        |s| s.unexpected_draw_a,
        0.1,
        32.0,
        " A",
    ),
    (
        "unexpected_draw_hold_s",
        |s| s.unexpected_draw_hold_s,
        1.0,
        3600.0,
        " s",
    ),
    ("stuck_current_a", |s| s.stuck_current_a, 0.1, 6.0, " A"),
    ("stuck_hold_s", |s| s.stuck_hold_s, 10.0, 86_400.0, " s"),
    (
        "bay_blocked_s",
        |s| s.bay_blocked_s,
        60.0,
        7.0 * 86_400.0,
        " s",
    ),
    ("drift_window_s", |s| s.drift_window_s, 5.0, 3600.0, " s"),
    ("drift_min_wh", |s| s.drift_min_wh, 1.0, 100_000.0, " Wh"),
    (
        "drift_tolerance_pct",
        |s| s.drift_tolerance_pct,
        1.0,
        100.0,
        " %",
    ),
    ("frozen_wh", |s| s.frozen_wh, 1.0, 100_000.0, " Wh"),
    (
        "jump_margin_wh",
        |s| s.jump_margin_wh,
        0.0,
        1_000_000.0,
        " Wh",
    ),
    (
        "overpower_margin_pct",
        |s| s.overpower_margin_pct,
        0.0,
        100.0,
        " %",
    ),
    (
        "overpower_hold_s",
        |s| s.overpower_hold_s,
        1.0,
        3600.0,
        " s",
    ),
    ("phase_step_a", |s| s.phase_step_a, 1.0, 32.0, " A"),
    (
        "meter_tolerance_w",
        |s| s.meter_tolerance_w,
        0.0,
        1_000_000.0,
        " W",
    ),
    (
        "meter_tolerance_pct",
        |s| s.meter_tolerance_pct,
        0.0,
        100.0,
        " %",
    ),
    ("meter_step_w", |s| s.meter_step_w, 100.0, 1_000_000.0, " W"),
    ("meter_hold_s", |s| s.meter_hold_s, 1.0, 3600.0, " s"),
    ("outlier_mads", |s| s.outlier_mads, 1.0, 100.0, ""),
    (
        "unauthorized_hold_s",
        |s| s.unauthorized_hold_s,
        1.0,
        3600.0,
        " s",
    ),
    (
        "unknown_token_window_s",
        |s| s.unknown_token_window_s,
        60.0,
        7.0 * 86_400.0,
        " s",
    ),
    (
        "token_twice_hold_s",
        |s| s.token_twice_hold_s,
        1.0,
        3600.0,
        " s",
    ),
];

/// Every count of `[anomaly]` with its range.
pub(crate) const COUNT_KEYS: &[CountKey] = &[
    ("phase_evidence", |s| s.phase_evidence, 1, 100),
    ("meter_evidence", |s| s.meter_evidence, 1, 100),
    ("outlier_sessions", |s| s.outlier_sessions, 3, 1000),
    ("outlier_min_sessions", |s| s.outlier_min_sessions, 3, 1000),
    ("unknown_token_count", |s| s.unknown_token_count, 2, 1000),
];
