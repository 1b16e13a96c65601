//! Setpoint ramping: how a charger moves from what it was last given towards what the
//! allocator allows. Decreases are the allocator's safety answer and apply at once; increases
//! are paced so the site meter sees gentle steps and small jitter is not written.

/// The setpoint to write this cycle.
///
/// - `previous`: what the charger was last given; `None` when nothing has been written yet
///   (treated as paused: the charger's real setpoint is unknown, so it starts from the bottom).
/// - `target`: the allocator's setpoint, safe by construction.
///
/// The result is never above `target`, never between 0 and `min_a`: a decrease (of any size)
/// lands on `target`; an increase below `hysteresis_a` keeps `previous`; a larger one moves
/// by at most `ramp_step_a` (a non-positive step means no pacing); a start from paused goes
/// to `min_a`, or further up to `ramp_step_a` when that is larger.
pub fn next_setpoint(
    previous: Option<f64>,
    target: f64,
    ramp_step_a: f64,
    hysteresis_a: f64,
    min_a: f64,
) -> f64 {
    // A target that is not a number, or below the minimum, can only mean "pause".
    if !(target >= min_a && target > 0.0) {
        return 0.0;
    }
    let step = if ramp_step_a > 0.0 {
        ramp_step_a
    } else {
        f64::INFINITY
    };
    let previous = match previous {
        Some(p) if p >= min_a && p > 0.0 => p,
        // Paused, never written, or garbage: start from the bottom.
        _ => return target.min(min_a.max(step)),
    };
    if previous >= target {
        return target;
    }
    let increase = target - previous;
    if increase < hysteresis_a || hysteresis_a.is_nan() {
        return previous;
    }
    previous + increase.min(step)
}

#[cfg(test)]
mod tests {
    use super::next_setpoint;
    use proptest::prelude::*;

    #[test]
    fn decrease_applies_at_once_even_when_tiny() {
        assert_eq!(next_setpoint(Some(16.0), 15.9, 2.0, 1.0, 6.0), 15.9);
        assert_eq!(next_setpoint(Some(32.0), 6.0, 2.0, 1.0, 6.0), 6.0);
    }

    #[test]
    fn increase_is_paced_and_small_ones_are_ignored() {
        assert_eq!(next_setpoint(Some(10.0), 20.0, 2.0, 1.0, 6.0), 12.0);
        assert_eq!(next_setpoint(Some(10.0), 10.5, 2.0, 1.0, 6.0), 10.0);
        assert_eq!(next_setpoint(Some(10.0), 11.5, 2.0, 1.0, 6.0), 11.5);
    }

    #[test]
    fn start_from_paused_goes_to_min() {
        assert_eq!(next_setpoint(Some(0.0), 20.0, 2.0, 1.0, 6.0), 6.0);
        assert_eq!(next_setpoint(None, 20.0, 2.0, 1.0, 6.0), 6.0);
        // A ramp step larger than the minimum is honoured from the start too.
        assert_eq!(next_setpoint(None, 20.0, 10.0, 1.0, 6.0), 10.0);
        assert_eq!(next_setpoint(None, 8.0, 10.0, 1.0, 6.0), 8.0);
    }

    #[test]
    fn target_below_min_or_nan_pauses() {
        assert_eq!(next_setpoint(Some(16.0), 4.0, 2.0, 1.0, 6.0), 0.0);
        assert_eq!(next_setpoint(Some(16.0), f64::NAN, 2.0, 1.0, 6.0), 0.0);
        assert_eq!(next_setpoint(Some(16.0), 0.0, 2.0, 1.0, 6.0), 0.0);
    }

    proptest! {
        #[test]
        fn never_between_zero_and_min_never_above_target(
            previous in proptest::option::of(0.0f64..40.0),
            target in 0.0f64..40.0,
            ramp in 0.0f64..10.0,
            hyst in 0.0f64..3.0,
            min in 6.0f64..10.0,
        ) {
            let next = next_setpoint(previous, target, ramp, hyst, min);
            prop_assert!(next == 0.0 || next >= min, "{next} between 0 and {min}");
            prop_assert!(next <= target, "{next} above target {target}");
        }

        #[test]
        fn decreases_are_immediate(
            previous in 6.0f64..40.0,
            target in 6.0f64..40.0,
            ramp in 0.0f64..10.0,
            hyst in 0.0f64..3.0,
        ) {
            prop_assume!(target < previous);
            prop_assert_eq!(next_setpoint(Some(previous), target, ramp, hyst, 6.0), target);
        }

        #[test]
        fn increases_move_by_at_most_the_ramp_step(
            previous in 6.0f64..40.0,
            target in 6.0f64..40.0,
            ramp in 0.1f64..10.0,
            hyst in 0.0f64..3.0,
        ) {
            prop_assume!(target > previous);
            let next = next_setpoint(Some(previous), target, ramp, hyst, 6.0);
            prop_assert!(next >= previous && next - previous <= ramp + 1e-9);
        }
    }
}
