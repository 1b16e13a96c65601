//! Two electrical facts every part of the site counts the same way: when a phase current is
//! a draw, and the power phase currents deliver at a voltage. Pure, and imports nothing, so
//! the loop, the sessions, the anomaly rules and the displays can all use it.

/// Below this a phase current is no draw (A): a charger's reading at rest (noise, the
/// contactor's coil, a car's standby) stays under it, and a car that charges at all takes
/// more. The session tracker (charging or not), the end estimate and the displays count
/// by it. The loop's idle watch asks a different question and has its own threshold
/// (`control::charger::IDLE_CEILING_A`).
pub const DRAW_FLOOR_A: f64 = 0.5;

/// The power (W) of phase currents at one voltage: their sum × the voltage. Currents are
/// taken as given (clamp a negative reading before, where one can occur).
pub fn power_w(current_a: &[f64], voltage_v: f64) -> f64 {
    current_a.iter().sum::<f64>() * voltage_v
}

/// What a charger draws (W): its power reading, else its phase currents at the site's
/// voltage; never below 0 (a charger draws, it does not feed).
pub fn charger_power_w(reading_w: Option<f64>, current_a: &[f64], voltage_v: f64) -> f64 {
    reading_w
        .unwrap_or_else(|| power_w(current_a, voltage_v))
        .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_is_the_currents_sum_times_the_voltage() {
        assert_eq!(power_w(&[16.0, 16.0, 16.0], 230.0), 11_040.0);
        assert_eq!(power_w(&[10.0, 0.0, 0.0], 230.0), 2_300.0);
        assert_eq!(power_w(&[], 230.0), 0.0);
    }

    #[test]
    fn a_chargers_power_reading_wins_over_its_currents_and_is_never_negative() {
        assert_eq!(charger_power_w(Some(7_000.0), &[16.0; 3], 230.0), 7_000.0);
        assert_eq!(charger_power_w(None, &[16.0; 3], 230.0), 11_040.0);
        assert_eq!(charger_power_w(Some(-40.0), &[16.0; 3], 230.0), 0.0);
    }
}
