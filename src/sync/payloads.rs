//! The link's own messages: `P/status` (online, or the last will's offline) and
//! `P/telemetry`, built from the controller's latest view. Pure.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::control::record::CycleRecord;

pub const TELEMETRY_SCHEMA: &str = "evsite.telemetry.v1";

/// `{"online":true,"version":…,"started_at":…}`, retained on every (re)connect.
pub fn online(version: &str, started_at: DateTime<Utc>) -> Vec<u8> {
    json!({"online": true, "version": version, "started_at": started_at})
        .to_string()
        .into_bytes()
}

/// `{"online":false}`: the last will, and the clean shutdown's last word.
pub fn offline() -> Vec<u8> {
    br#"{"online":false}"#.to_vec()
}

/// Rounds away float noise (230.00000000003) that would only cost bytes on a metered link.
fn round(v: f64, dp: i32) -> f64 {
    let f = 10f64.powi(dp);
    (v * f).round() / f
}

fn finite(v: Option<f64>, dp: i32) -> Value {
    match v {
        Some(v) if v.is_finite() => json!(round(v, dp)),
        _ => Value::Null,
    }
}

/// `P/telemetry`: grid current and power per phase (power from the nominal voltage: the
/// main meter's currents are what the limit is about), the limit in force and each
/// charger's state, current per phase, power, setpoint and energy register. Nothing before
/// the first cycle: there is nothing true to say yet.
pub fn telemetry(site: &str, voltage_v: f64, view: &CycleRecord) -> Value {
    let grid = match view.grid_a {
        Some(a) => json!({
            "current_a": a.map(|x| round(x, 2)),
            "power_w": a.map(|x| round(x * voltage_v, 0)),
        }),
        None => json!({"current_a": null, "power_w": null}),
    };
    let chargers: Vec<Value> = view
        .chargers
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "online": c.online,
                "state": c.state,
                "current_a": c.current_or_zero_a().map(|x| round(x, 2)),
                "power_w": finite(c.power_w, 0),
                "setpoint_a": finite(c.setpoint_a, 2),
                "energy_wh": finite(c.energy_wh.map(f64::floor), 0),
            })
        })
        .collect();
    json!({
        "schema": TELEMETRY_SCHEMA,
        "site": site,
        "ts": view.at,
        "mode": view.mode,
        "grid": grid,
        "limit_a": round(view.limit.limit_a, 2),
        "chargers": chargers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::record::ChargerCycle;
    use crate::control::safety::Mode;
    use crate::devices::model::ChargeState;

    #[test]
    fn telemetry_carries_grid_and_every_charger() {
        let at = "2026-11-21T18:04:05Z".parse().unwrap();
        let view = CycleRecord {
            mode: Mode::Normal,
            grid_a: Some([10.0, 20.5, 0.0]),
            chargers: vec![ChargerCycle {
                online: true,
                state: Some(ChargeState::C),
                current_a: [Some(16.0); 3],
                power_w: Some(11040.4),
                energy_wh: Some(123456.7),
                setpoint_a: Some(16.0),
                ..ChargerCycle::unread("cp1")
            }],
            ..CycleRecord::blank(at, 32.0)
        };
        let t = telemetry("depot-7", 230.0, &view);
        assert_eq!(t["ts"], "2026-11-21T18:04:05Z");
        assert_eq!(t["mode"], "normal");
        assert_eq!(t["grid"]["power_w"], json!([2300.0, 4715.0, 0.0]));
        assert_eq!(t["chargers"][0]["state"], "C");
        assert_eq!(t["chargers"][0]["energy_wh"], json!(123456.0));
        assert_eq!(t["chargers"][0]["power_w"], json!(11040.0));
    }

    #[test]
    fn an_unread_meter_has_nulls_not_zeros() {
        let now = Utc::now();
        let t = telemetry("s", 230.0, &CycleRecord::blank(now, 32.0));
        assert_eq!(t["grid"]["current_a"], Value::Null);
        assert_eq!(t["mode"], "startup");
        assert_eq!(t["ts"], json!(now));
    }

    #[test]
    fn status_payloads() {
        let on: Value = serde_json::from_slice(&online("1.2.3", Utc::now())).unwrap();
        assert_eq!(on["online"], true);
        assert_eq!(on["version"], "1.2.3");
        let off: Value = serde_json::from_slice(&offline()).unwrap();
        assert_eq!(off, json!({"online": false}));
    }
}
