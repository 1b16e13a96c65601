//! Time dilation for the demo's simulated chargers. The site runs `speed` times faster than
//! the controller, which cycles in real time; a charger watchdog counted in site seconds would
//! then expire `speed` times too early and the chargers would drop to their fallback current
//! although the controller is alive. The simulated models get their watchdog periods scaled by
//! `speed`, which keeps them what they are in wall-clock time; the controller keeps the real
//! models. A comms timeout the controller writes into the charger is not dilated, so the demo
//! scenario uses no model that has one.

use crate::devices::model::ModelSpec;

/// `spec` with its charger watchdogs (setpoint validity, heartbeat period, default comms
/// timeout) lengthened by `speed`.
pub fn dilated(spec: &ModelSpec, speed: f64) -> ModelSpec {
    let scale = |s: u32| {
        (f64::from(s) * speed)
            .ceil()
            .clamp(1.0, f64::from(u32::MAX)) as u32
    };
    let mut out = *spec;
    if let Some(c) = out.charger.as_mut() {
        c.setpoint_validity_s = c.setpoint_validity_s.map(scale);
        if let Some(hb) = c.heartbeat.as_mut() {
            hb.period_s = scale(hb.period_s);
        }
        if let Some(ct) = c.comms_timeout.as_mut() {
            ct.default_s = scale(ct.default_s);
        }
    }
    out
}

/// Dilated copies of the registry's models named in `names`, for the simulated site's
/// resolver. They live as long as the process (a handful of small structs, made once).
pub fn dilated_models(names: &[&str], speed: f64) -> Vec<&'static ModelSpec> {
    let mut out: Vec<&'static ModelSpec> = Vec::new();
    for name in names {
        if out.iter().any(|m| m.name == *name) {
            continue;
        }
        if let Some(spec) = crate::devices::registry::find(name) {
            out.push(Box::leak(Box::new(dilated(spec, speed))));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::registry::find;

    #[test]
    fn watchdogs_are_lengthened_by_the_speed_and_the_rest_is_kept() {
        let real = find("mennekes-amtron-compact").unwrap();
        let d = dilated(real, 30.0);
        let (rc, dc) = (real.charger.unwrap(), d.charger.unwrap());
        assert_eq!(
            dc.heartbeat.unwrap().period_s,
            rc.heartbeat.unwrap().period_s * 30
        );
        assert_eq!(dc.setpoint, rc.setpoint);
        assert_eq!(d.name, real.name);

        let alfen = find("alfen-eve").unwrap();
        let validity = alfen.charger.unwrap().setpoint_validity_s.unwrap();
        let d = dilated(alfen, 30.0);
        assert_eq!(d.charger.unwrap().setpoint_validity_s, Some(validity * 30));
    }

    #[test]
    fn models_are_made_once_per_name_and_unknown_names_skipped() {
        let m = dilated_models(&["alfen-eve", "alfen-eve", "no-such-model"], 2.0);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "alfen-eve");
    }
}
