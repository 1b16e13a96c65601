//! The link's own messages: `P/status` (online, or the last will's offline) and
//! `P/telemetry`, built from the controller's latest view. Pure.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::control::demand::DemandStatus;
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
/// main meter's currents are what the limit is about), the limit in force, each charger's
/// state, current per phase, power, setpoint and energy register, and the demand window so
/// far when the site has a `[demand]` target. Nothing before the first cycle: there is
/// nothing true to say yet.
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
    let mut t = json!({
        "schema": TELEMETRY_SCHEMA,
        "site": site,
        "ts": view.at,
        "mode": view.mode,
        "grid": grid,
        "limit_a": round(view.limit.limit_a, 2),
        "chargers": chargers,
    });
    if let (Some(d), Some(obj)) = (&view.demand, t.as_object_mut()) {
        obj.insert("demand".into(), demand(d));
    }
    t
}

/// The demand window so far: energy in whole Wh, powers to 10 W.
fn demand(d: &DemandStatus) -> Value {
    json!({
        "window_start": d.window_start,
        "window_end": d.window_end,
        "energy_wh": finite(Some(d.energy_wh.floor()), 0),
        "limit_kw": finite(Some(d.limit_kw), 2),
        "projected_kw": finite(Some(d.projected_kw), 2),
        "allowed_kw": finite(Some(d.allowed_kw), 2),
        "month_peak_kw": finite(Some(d.month_peak_kw), 2),
        "building_exceeds": d.building_exceeds,
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
        assert!(t.get("demand").is_none(), "no [demand], no demand: {t}");
    }

    #[test]
    fn telemetry_carries_the_demand_window_when_the_site_has_a_target() {
        let at: DateTime<Utc> = "2026-11-21T18:04:05Z".parse().unwrap();
        let start = "2026-11-21T18:00:00Z".parse().unwrap();
        let view = CycleRecord {
            demand: Some(DemandStatus {
                window_start: start,
                window_end: "2026-11-21T18:15:00Z".parse().unwrap(),
                energy_wh: 1234.56,
                limit_kw: 25.0,
                projected_kw: 18.23456,
                allowed_kw: 27.000000001,
                month_peak_kw: 23.9,
                finished: None,
                building_exceeds: false,
            }),
            ..CycleRecord::blank(at, 32.0)
        };
        let t = telemetry("depot-7", 230.0, &view);
        assert_eq!(
            t["demand"],
            json!({
                "window_start": "2026-11-21T18:00:00Z",
                "window_end": "2026-11-21T18:15:00Z",
                "energy_wh": 1234.0,
                "limit_kw": 25.0,
                "projected_kw": 18.23,
                "allowed_kw": 27.0,
                "month_peak_kw": 23.9,
                "building_exceeds": false,
            })
        );
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
