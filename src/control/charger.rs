//! Per-charger rules of the loop that talk to no one: when a car counts as idle, how often a
//! setpoint must be refreshed so the charger does not fall back, and setting the charger's own
//! fallback at start.

use tokio::time::Duration;

use crate::devices::model::ChargeState;
use crate::devices::traits::{CommsTimeout, SafeCurrent};
use crate::devices::{DeviceError, ModbusDevice};
use crate::modbus::DeviceLink;

/// Setpoint resolution of a charger model, as its spec states it; 0.1 A for a model that is
/// not a charger.
pub fn setpoint_step_a(model: &crate::devices::model::ModelSpec) -> f64 {
    model.charger.map_or(0.1, |c| c.setpoint_step_a)
}

/// How often a setpoint must be rewritten though unchanged, so the charger does not fall back
/// while the controller lives: within a third of a setpoint's validity (Alfen), and within half
/// the comms timeout of a model that has no heartbeat register to feed it (ABB Terra AC stops
/// charging when it expires).
pub fn setpoint_refresh(spec: crate::devices::model::ChargerSpec) -> Option<Duration> {
    let validity = spec
        .setpoint_validity_s
        .map(|v| Duration::from_secs(u64::from(v)) / 3);
    let comms = match (spec.heartbeat, spec.comms_timeout) {
        (None, Some(ct)) => Some(Duration::from_secs(u64::from(ct.default_s)) / 2),
        _ => None,
    };
    match (validity, comms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A car is idle when it was offered at least its minimum for [`IDLE_AFTER_S`] and drew
/// nothing: charging complete, or not ready. It stops being idle the moment it draws.
pub const IDLE_AFTER_S: f64 = 60.0;
/// While every phase stays below this, a car offered current counts as taking none of it
/// (A). Not the same question as [`crate::electric::DRAW_FLOOR_A`] (0.5 A), which asks
/// whether current flows at all, for the session's state and its energy: this one asks
/// whether the car uses its offer, so that the loop may cap it at its minimum and give the
/// rest to others. A car trickling under it (a full battery balancing, cabin heating) keeps
/// far more than it takes at its minimum, so it is reclaimed; a car that resumes charging
/// takes several amps within a cycle or two and passes it at once. Higher than the floor
/// so a charger reading a little current at rest cannot keep a full car's offer forever.
pub const IDLE_CEILING_A: f64 = 1.0;

#[derive(Debug, Clone, Default)]
pub struct IdleWatch {
    offered_since_s: Option<f64>,
    pub idle: bool,
}

impl IdleWatch {
    pub fn observe(&mut self, state: ChargeState, offered: bool, measured: &[f64; 3], now_s: f64) {
        let drawing = measured.iter().any(|&a| a >= IDLE_CEILING_A);
        if !state.is_connected() || drawing {
            *self = IdleWatch::default();
            return;
        }
        if !offered {
            self.offered_since_s = None;
            return;
        }
        let since = *self.offered_since_s.get_or_insert(now_s);
        if now_s - since >= IDLE_AFTER_S {
            self.idle = true;
        }
    }
}

/// Set what a model offers so that a dead daemon leaves the site safe: its comms timeout, and
/// its safe current where that is writable. A capability the model lacks is not an error.
pub async fn prepare_fallback(
    dev: &ModbusDevice<DeviceLink>,
    safe_a: f64,
) -> Result<(), DeviceError> {
    if let Some(t) = dev.default_comms_timeout() {
        dev.configure_comms_timeout(t).await?;
    }
    match dev.set_safe_current_a(safe_a).await {
        Ok(()) | Err(DeviceError::Unsupported(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHARGING: [f64; 3] = [10.0, 10.0, 10.0];
    const NOTHING: [f64; 3] = [0.0, 0.3, 0.0];

    #[test]
    fn a_car_offered_current_that_draws_nothing_becomes_idle_after_a_minute() {
        let mut w = IdleWatch::default();
        w.observe(ChargeState::B, true, &NOTHING, 0.0);
        w.observe(ChargeState::B, true, &NOTHING, IDLE_AFTER_S - 1.0);
        assert!(!w.idle, "not before the minute is up");
        w.observe(ChargeState::B, true, &NOTHING, IDLE_AFTER_S);
        assert!(w.idle);
        w.observe(ChargeState::C, true, &CHARGING, IDLE_AFTER_S + 1.0);
        assert!(!w.idle, "drawing again ends it at once");
    }

    #[test]
    fn a_paused_car_is_waiting_not_idle() {
        let mut w = IdleWatch::default();
        for t in 0..200 {
            w.observe(ChargeState::B, false, &NOTHING, f64::from(t));
        }
        assert!(!w.idle, "it was never offered anything");
        w.observe(ChargeState::B, true, &NOTHING, 200.0);
        w.observe(ChargeState::B, true, &NOTHING, 200.0 + IDLE_AFTER_S - 1.0);
        assert!(!w.idle, "the minute counts from the offer");
    }

    #[test]
    fn setpoints_are_refreshed_before_the_charger_gives_up_on_them() {
        let find = |name| {
            crate::devices::registry::find(name)
                .and_then(|m| m.charger)
                .expect("charger model")
        };
        let alfen = setpoint_refresh(find("alfen-eve")).expect("validity");
        assert_eq!(alfen, Duration::from_secs(20), "a third of Alfen's 60 s");
        let abb = find("abb-terra-ac");
        let every = setpoint_refresh(abb).expect("comms timeout without heartbeat");
        let timeout = abb
            .comms_timeout
            .map(|c| u64::from(c.default_s))
            .unwrap_or(0);
        assert!(every.as_secs() * 2 <= timeout, "{every:?} vs {timeout} s");
        // Vestel feeds its timeout through the alive register instead.
        assert_eq!(setpoint_refresh(find("vestel-evc04")), None);
    }

    #[test]
    fn a_trickle_between_the_draw_floor_and_the_idle_ceiling_still_idles() {
        // Current flows (the session counts it as charging) but the car uses nothing of
        // its offer: the watch reclaims it.
        let trickle = [0.0, 0.7, 0.0];
        assert!(trickle.iter().any(|&a| a >= crate::electric::DRAW_FLOOR_A));
        let mut w = IdleWatch::default();
        w.observe(ChargeState::C, true, &trickle, 0.0);
        w.observe(ChargeState::C, true, &trickle, IDLE_AFTER_S);
        assert!(w.idle, "a trickle under {IDLE_CEILING_A} A is idle");
        w.observe(
            ChargeState::C,
            true,
            &[0.0, IDLE_CEILING_A, 0.0],
            IDLE_AFTER_S + 1.0,
        );
        assert!(!w.idle, "{IDLE_CEILING_A} A on one phase is a draw");
    }

    #[test]
    fn unplugging_clears_idle() {
        let mut w = IdleWatch::default();
        w.observe(ChargeState::B, true, &NOTHING, 0.0);
        w.observe(ChargeState::B, true, &NOTHING, IDLE_AFTER_S);
        assert!(w.idle);
        w.observe(ChargeState::A, false, &NOTHING, IDLE_AFTER_S + 1.0);
        assert!(!w.idle);
    }
}
