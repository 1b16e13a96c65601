//! The safety invariant under any command sequence: whatever the cloud sends — valid,
//! invalid, in any order — the site limit in force never exceeds the installer's
//! `grid_limit_a`, and no charger is ever written more than its configured maximum or the
//! cloud cap it holds.

use chrono::{DateTime, Duration as TimeDelta, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::rig::{Rig, GRID_A, TOL};
use evsite::commands::handle;

#[derive(Debug, Clone)]
enum Cmd {
    SiteLimit {
        limit: f64,
        expires_min: i64,
    },
    Charger {
        id: usize,
        enabled: Option<bool>,
        max: Option<f64>,
    },
    Profile {
        id: u32,
        site: bool,
        purpose: usize,
        level: u32,
        limits: Vec<f64>,
        recurring: bool,
    },
    Wait {
        cycles: usize,
    },
}

const CHARGERS: [&str; 2] = ["cp-1", "cp-2"];
const PURPOSES: [&str; 3] = ["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"];

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (-5.0..60.0f64, -5i64..30)
            .prop_map(|(limit, expires_min)| Cmd::SiteLimit { limit, expires_min }),
        (
            0..2usize,
            proptest::option::of(any::<bool>()),
            proptest::option::of(-5.0..50.0f64)
        )
            .prop_map(|(id, enabled, max)| Cmd::Charger { id, enabled, max }),
        (
            1..6u32,
            any::<bool>(),
            0..3usize,
            0..3u32,
            proptest::collection::vec(-2.0..60.0f64, 0..4),
            any::<bool>()
        )
            .prop_map(
                |(id, site, purpose, level, limits, recurring)| Cmd::Profile {
                    id,
                    site,
                    purpose,
                    level,
                    limits,
                    recurring
                }
            ),
        (1..20usize).prop_map(|cycles| Cmd::Wait { cycles }),
    ]
}

fn body(c: &Cmd, now: DateTime<Utc>) -> Option<(&'static str, Value)> {
    Some(match c {
        Cmd::SiteLimit { limit, expires_min } => (
            "set_site_limit",
            json!({"limit_a": limit, "expires_at": (now + TimeDelta::minutes(*expires_min)).to_rfc3339()}),
        ),
        Cmd::Charger { id, enabled, max } => (
            "set_charger",
            json!({"charger": CHARGERS[*id], "enabled": enabled, "max_current_a": max}),
        ),
        Cmd::Profile {
            id,
            site,
            purpose,
            level,
            limits,
            recurring,
        } => {
            let periods: Vec<Value> = limits
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"startPeriod": i * 600, "limit": l}))
                .collect();
            let mut profile = json!({
                "chargingProfileId": id,
                "stackLevel": level,
                "chargingProfilePurpose": PURPOSES[*purpose],
                "chargingProfileKind": if *recurring { "Recurring" } else { "Absolute" },
                "chargingSchedule": {
                    "startSchedule": (now - TimeDelta::minutes(5)).to_rfc3339(),
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": periods
                }
            });
            if *recurring {
                profile["recurrencyKind"] = json!("Daily");
            }
            let charger = if *site {
                Value::Null
            } else {
                json!(CHARGERS[*id as usize % 2])
            };
            (
                "set_profile",
                json!({"charger": charger, "profile": profile}),
            )
        }
        Cmd::Wait { .. } => return None,
    })
}

fn run(cmds: Vec<Cmd>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    rt.block_on(async move {
        let (sim, db) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let mut rig = Rig::new(sim.path(), db.path());
        let ctx = rig.context();
        rig.ctl.start().await;
        rig.cycles(5).await;
        for (n, c) in cmds.iter().enumerate() {
            let cycles = match body(c, rig.clock.now()) {
                Some((name, mut b)) => {
                    b["request_id"] = json!(format!("q{n}"));
                    handle(&ctx, name, b.to_string().as_bytes()).await;
                    1
                }
                None => match c {
                    Cmd::Wait { cycles } => *cycles,
                    _ => 1,
                },
            };
            for _ in 0..cycles {
                rig.cycles(1).await;
                let limit = rig.ctl.site_limit_a();
                prop_assert!(
                    (0.0..=GRID_A).contains(&limit),
                    "site limit {limit} after {c:?}"
                );
                for (i, id) in CHARGERS.iter().enumerate() {
                    let cap = rig
                        .store
                        .charger_override(id)
                        .expect("read")
                        .max_current_a
                        .unwrap_or(rig.cfg.chargers[i].max_current_a)
                        .min(rig.cfg.chargers[i].max_current_a);
                    let sp = rig.setpoint(id);
                    prop_assert!(sp <= cap + TOL, "{id} at {sp} A, cap {cap} A, after {c:?}");
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_command_sequence_lifts_a_limit_above_the_installers(cmds in proptest::collection::vec(cmd(), 1..12)) {
        run(cmds)?;
    }
}
