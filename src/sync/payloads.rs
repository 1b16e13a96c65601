//! The link's own messages: `P/status` (online, or the last will's offline) and
//! `P/telemetry`, built from the controller's latest view. Pure.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::control::demand::DemandStatus;
use crate::control::record::CycleRecord;
use crate::control::why::Why;

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
///
/// Each charger's `why` is compact ([`why`]); should the payload with every `why` in full be
/// longer than [`TELEMETRY_BUDGET`], every `why` is cut to its `code` and `source`, so a
/// large site's telemetry still fits a small broker's packet.
pub fn telemetry(site: &str, voltage_v: f64, view: &CycleRecord) -> Value {
    let full = telemetry_with(site, voltage_v, view, why);
    if full.to_string().len() <= TELEMETRY_BUDGET {
        return full;
    }
    telemetry_with(site, voltage_v, view, why_brief)
}

/// The longest telemetry sent with every `why` in full, in bytes: a 10 KiB packet (so that a
/// broker with a small packet cap still takes it) less room for the MQTT header and topic.
pub const TELEMETRY_BUDGET: usize = 10 * 1024 - 256;

fn telemetry_with(site: &str, voltage_v: f64, view: &CycleRecord, why: fn(&Why) -> Value) -> Value {
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
                "why": why(&c.why),
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

/// Why a charger has its current, compact: its stable `code`, and of `source`, `constraint`,
/// `phase`, `limit_a` and `until` only those that say something (`{"code":"charging"}`;
/// `{"code":"circuit","source":"installer","constraint":"hall-a","phase":2,"limit_a":100.0}`).
/// The sentence for a person is left out: the cloud words it from these, in its users'
/// language, and 40 chargers' sentences would take a third of the packet.
pub fn why(w: &Why) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("code".into(), json!(w.code));
    if let Some(s) = w.source {
        o.insert("source".into(), json!(s));
    }
    if let Some(c) = w.constraint.as_ref().filter(|c| !c.is_empty()) {
        o.insert("constraint".into(), json!(c));
    }
    if let Some(p) = w.phase {
        o.insert("phase".into(), json!(p));
    }
    if let Some(a) = w.limit_a.filter(|a| a.is_finite()) {
        o.insert("limit_a".into(), json!(round(a, 2)));
    }
    if let Some(u) = w.until {
        o.insert(
            "until".into(),
            json!(u.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
    }
    Value::Object(o)
}

/// A `why` cut to its `code` and `source`: what a payload over its budget carries.
pub fn why_brief(w: &Why) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("code".into(), json!(w.code));
    if let Some(s) = w.source {
        o.insert("source".into(), json!(s));
    }
    Value::Object(o)
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

/// The schema of `P/auth/request`.
pub const AUTH_REQUEST_SCHEMA: &str = "evsite.auth_request.v1";

/// `P/auth/request`: may this token charge here? Answered on `P/cmd/authorize` with the same
/// `request_id`.
pub fn auth_request(site: &str, r: &crate::tokens::AuthRequest) -> Value {
    json!({
        "schema": AUTH_REQUEST_SCHEMA,
        "site": site,
        "request_id": r.request_id,
        "charger": r.charger,
        "token": r.token,
        "at": r.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::record::{ChargerCycle, LimitSource};
    use crate::control::safety::Mode;
    use crate::control::why::WhyCode;
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

    /// A circuit binding on L2 with every part named, until a time with nanoseconds.
    fn circuit_why(until: DateTime<Utc>) -> Why {
        Why {
            code: WhyCode::Circuit,
            source: Some(LimitSource::Installer),
            constraint: Some("hall-a".into()),
            phase: Some(2),
            limit_a: Some(100.000_000_1),
            until: Some(until),
            text: "limited by circuit hall-a on L2 (100 A, installer)".into(),
        }
    }

    #[test]
    fn the_why_is_compact_with_only_the_parts_that_say_something() {
        let until: DateTime<Utc> = "2026-11-21T18:00:00.123456789Z".parse().unwrap();
        let w = circuit_why(until);
        assert_eq!(
            why(&w),
            json!({"code": "circuit", "source": "installer", "constraint": "hall-a",
                   "phase": 2, "limit_a": 100.0, "until": "2026-11-21T18:00:00Z"})
        );
        let paused = Why::from_reason(crate::control::allocate::Reason::Disabled);
        assert_eq!(why(&paused), json!({"code": "disabled"}));
        let nan = Why {
            limit_a: Some(f64::NAN),
            ..Why::default()
        };
        assert_eq!(why(&nan), json!({"code": "unknown"}), "no NaN on the wire");
        // Every charger carries its own.
        let at = "2026-11-21T18:04:05Z".parse().unwrap();
        let view = CycleRecord {
            chargers: vec![
                ChargerCycle {
                    why: w.clone(),
                    ..ChargerCycle::unread("cp-1")
                },
                ChargerCycle {
                    why: paused.clone(),
                    ..ChargerCycle::unread("cp-2")
                },
            ],
            ..CycleRecord::blank(at, 32.0)
        };
        let t = telemetry("depot-7", 230.0, &view);
        assert_eq!(t["chargers"][0]["why"], why(&w));
        assert_eq!(t["chargers"][1]["why"], why(&paused));
    }

    /// 40 chargers, each with a long id, every value present and the fullest why there is:
    /// over the budget in full, so every why is cut and the telemetry fits a 10 KiB packet;
    /// with shorter whys they go in full (the figures are in docs/mqtt.md).
    #[test]
    fn forty_chargers_fit_a_10_kib_packet() {
        let at: DateTime<Utc> = "2026-11-21T18:04:05Z".parse().unwrap();
        let chargers = (0..40)
            .map(|i| ChargerCycle {
                online: true,
                state: Some(ChargeState::C),
                current_a: [Some(31.99); 3],
                power_w: Some(22_077.0),
                energy_wh: Some(12_345_678.9),
                setpoint_a: Some(31.99),
                why: Why {
                    constraint: Some(format!("circuit-hall-{i:02}")),
                    ..circuit_why(at)
                },
                ..ChargerCycle::unread(&format!("depot-7-cp-{i:02}"))
            })
            .collect();
        let view = CycleRecord {
            mode: Mode::Normal,
            grid_a: Some([99.99; 3]),
            chargers,
            demand: Some(DemandStatus {
                window_start: at,
                window_end: at,
                energy_wh: 123_456.7,
                limit_kw: 250.0,
                projected_kw: 249.99,
                allowed_kw: 249.99,
                month_peak_kw: 249.99,
                finished: None,
                building_exceeds: false,
            }),
            ..CycleRecord::blank(at, 100.0)
        };
        let len = |t: &Value| t.to_string().len();
        let full = telemetry_with("depot-7", 230.0, &view, why);
        let sent = telemetry("depot-7", 230.0, &view);
        println!(
            "telemetry of 40 chargers: {} bytes with every why in full, {} sent",
            len(&full),
            len(&sent)
        );
        assert!(len(&full) > TELEMETRY_BUDGET, "the fullest why is over");
        assert!(len(&sent) <= TELEMETRY_BUDGET, "{} bytes", len(&sent));
        for (c, rec) in sent["chargers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&view.chargers)
        {
            assert_eq!(c["why"], why_brief(&rec.why), "cut to code and source");
        }
        // The same site with circuits of short names and no end time: every why in full.
        let mut short = view.clone();
        for c in &mut short.chargers {
            c.why.constraint = Some("hall-a".into());
            c.why.until = None;
        }
        let sent = telemetry("depot-7", 230.0, &short);
        println!("with short names and no end times: {} bytes", len(&sent));
        assert!(len(&sent) <= TELEMETRY_BUDGET, "{} bytes", len(&sent));
        for (c, rec) in sent["chargers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&short.chargers)
        {
            assert_eq!(c["why"], why(&rec.why), "in full");
        }
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
