//! The detectors' thresholds: the `[anomaly]` section, checked (see
//! `docs/anomalies.md` for each rule and why its default is what it is).

/// Thresholds of every anomaly rule. `Default` is what a site gets without `[anomaly]`.
#[derive(Debug, Clone, PartialEq)]
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
    /// Overpower: power above max_current_a × phases × voltage × (1 + pct/100) …
    pub overpower_margin_pct: f64,
    /// … for this long.
    pub overpower_hold_s: f64,
    /// Phase map: only a charger's current steps of at least this much are evidence …
    pub phase_step_a: f64,
    /// … and this many more wrong than right ones raise it.
    pub phase_evidence: u32,
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
        }
    }
}
