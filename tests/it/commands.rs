//! Cloud commands end to end: fed through `serve` as the MQTT sync feeds them, with a real
//! on-disk store and a real controller against a simulated site. Effects are read from the
//! controller (`site_limit_a`, its view) and from the simulated chargers' registers.

mod props;
mod rig;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use evsite::commands::{handle, load_overrides, CommandContext};
use evsite::control::command::ControlCommand;
use evsite::store::Store;
use rig::{error, ok, scenario_with_cars, Rig, GRID_A, TOL};

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    )
}

/// An absolute profile from an hour ago with one period.
fn profile(id: u32, purpose: &str, limit: f64, start: DateTime<Utc>) -> Value {
    json!({
        "chargingProfileId": id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": rfc(start - TimeDelta::hours(1)),
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]
        }
    })
}

#[tokio::test(start_paused = true)]
async fn good_commands_answer_ok_and_take_effect() {
    let (sim, db) = dirs();
    let mut rig = Rig::new(sim.path(), db.path());
    let cmds = rig.serve();
    rig.ctl.start().await;
    rig.cycles(30).await;
    assert!(rig.setpoint("cp-1") > 12.0, "both cars share 31 A at first");

    let now = rig.clock.now();
    let r = cmds
        .json(
            "set_site_limit",
            json!({"request_id": "a1", "limit_a": 20.0, "expires_at": rfc(now + TimeDelta::hours(1))}),
        )
        .await;
    assert_eq!(r, json!({"request_id": "a1", "ok": true, "error": null}));
    let r = cmds
        .json(
            "set_charger",
            json!({"request_id": "a2", "charger": "cp-1", "max_current_a": 7.0}),
        )
        .await;
    assert!(ok(&r), "{r}");
    rig.cycles(20).await;
    assert_eq!(rig.ctl.site_limit_a(), 20.0);
    assert_eq!(
        rig.view
            .as_ref()
            .map(|v| v.limit.limit_a)
            .unwrap_or_default(),
        20.0
    );
    assert!(
        rig.setpoint("cp-1") <= 7.0 + TOL,
        "{}",
        rig.setpoint("cp-1")
    );
    assert!(rig.setpoint("cp-1") >= 6.0 - TOL);
    assert_eq!(
        rig.view_setpoint("cp-1").map(|s| s <= 7.0 + TOL),
        Some(true)
    );

    let r = cmds
        .json(
            "set_charger",
            json!({"request_id": "a3", "charger": "cp-2", "enabled": false}),
        )
        .await;
    assert!(ok(&r), "{r}");
    rig.cycles(3).await;
    assert_eq!(rig.setpoint("cp-2"), 0.0);

    // Back on and uncapped: the configured maximum lifts the cloud cap.
    for (id, body) in [
        ("a4", json!({"charger": "cp-2", "enabled": true})),
        ("a5", json!({"charger": "cp-1", "max_current_a": 32.0})),
    ] {
        let mut body = body;
        body["request_id"] = json!(id);
        assert!(ok(&cmds.json("set_charger", body).await));
    }
    rig.cycles(40).await;
    assert!(rig.setpoint("cp-1") > 7.0 + TOL, "{}", rig.setpoint("cp-1"));
    assert!(rig.setpoint("cp-2") >= 6.0 - TOL);
    assert!(rig.store.charger_overrides().expect("read").is_empty());
    cmds.close().await;
}

/// Each malformed kind: (command, body, a word the error must contain).
fn malformed(now: DateTime<Utc>) -> Vec<(&'static str, String, &'static str)> {
    let future = rfc(now + TimeDelta::hours(1));
    let past = rfc(now - TimeDelta::minutes(1));
    let p = |patch: Value| {
        let mut body = json!({"request_id": "x", "charger": "cp-1", "profile": profile(1, "TxDefaultProfile", 10.0, now)});
        merge(&mut body, patch);
        body.to_string()
    };
    let j = |v: Value| v.to_string();
    vec![
        ("set_site_limit", "not json".into(), "not JSON"),
        ("set_site_limit", "[1, 2]".into(), "JSON object"),
        (
            "set_site_limit",
            j(json!({"limit_a": 20, "expires_at": future})),
            "request_id",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": 7, "limit_a": 20, "expires_at": future})),
            "request_id",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "", "limit_a": 20, "expires_at": future})),
            "request_id",
        ),
        ("reboot", j(json!({"request_id": "x"})), "unknown command"),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": 20})),
            "expires_at",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": "20", "expires_at": future})),
            "invalid type",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": 20, "expires_at": future, "force": true})),
            "unknown field",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": 0, "expires_at": future})),
            "limit_a",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": -3, "expires_at": future})),
            "limit_a",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": 20, "expires_at": past})),
            "future",
        ),
        (
            "set_site_limit",
            j(json!({"request_id": "x", "limit_a": 20, "expires_at": "tomorrow"})),
            "RFC 3339",
        ),
        (
            "set_charger",
            j(json!({"request_id": "x", "charger": "cp-9", "enabled": false})),
            "no charger",
        ),
        (
            "set_charger",
            j(json!({"request_id": "x", "charger": "cp-1"})),
            "nothing to set",
        ),
        (
            "set_charger",
            j(json!({"request_id": "x", "charger": "cp-1", "max_current_a": 40})),
            "configured range",
        ),
        (
            "set_charger",
            j(json!({"request_id": "x", "charger": "cp-1", "max_current_a": 3})),
            "configured range",
        ),
        (
            "set_charger",
            j(json!({"request_id": "x", "charger": "cp-1", "enabled": "no"})),
            "invalid type",
        ),
        ("set_profile", p(json!({"charger": "cp-9"})), "no charger"),
        (
            "set_profile",
            p(json!({"profile": {"chargingProfileKind": "Relative"}})),
            "Relative",
        ),
        (
            "set_profile",
            p(json!({"profile": {"chargingProfileKind": "Recurring"}})),
            "recurrencyKind",
        ),
        (
            "set_profile",
            p(json!({"profile": {"recurrencyKind": "Daily"}})),
            "recurrencyKind",
        ),
        (
            "set_profile",
            p(json!({"profile": {"chargingProfilePurpose": "Other"}})),
            "unknown variant",
        ),
        (
            "set_profile",
            p(json!({"profile": {"transactionId": 5}})),
            "unknown field",
        ),
        (
            "set_profile",
            p(json!({"profile": {"chargingSchedule": {"chargingRateUnit": "W"}}})),
            "in A",
        ),
        (
            "set_profile",
            p(json!({"profile": {"chargingSchedule": {"chargingRateUnit": "kW"}}})),
            "chargingRateUnit",
        ),
        (
            "set_profile",
            p(json!({"profile": {"chargingSchedule": {"startSchedule": null}}})),
            "startSchedule",
        ),
        (
            "set_profile",
            p(json!({"profile": {"chargingSchedule": {"duration": 0}}})),
            "duration",
        ),
        (
            "set_profile",
            p(json!({"profile": {"validTo": past}})),
            "validTo",
        ),
        (
            "set_profile",
            p(
                json!({"profile": {"chargingSchedule": {"chargingSchedulePeriod": [{"startPeriod": 60, "limit": 10}]}}}),
            ),
            "first startPeriod",
        ),
        (
            "set_profile",
            p(
                json!({"profile": {"chargingSchedule": {"chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}, {"startPeriod": 0, "limit": 8}]}}}),
            ),
            "increase",
        ),
        (
            "set_profile",
            p(
                json!({"profile": {"chargingSchedule": {"chargingSchedulePeriod": [{"startPeriod": 0, "limit": -1}]}}}),
            ),
            "limit",
        ),
        (
            "set_profile",
            p(
                json!({"profile": {"chargingSchedule": {"chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10, "numberPhases": 4}]}}}),
            ),
            "numberPhases",
        ),
        (
            "set_profile",
            p(json!({"charger": null, "profile": {"chargingProfilePurpose": "TxProfile"}})),
            "TxProfile",
        ),
        (
            "set_profile",
            p(
                json!({"charger": null, "profile": {"chargingProfilePurpose": "ChargePointMaxProfile", "chargingSchedule": {"chargingSchedulePeriod": [{"startPeriod": 0, "limit": 40}]}}}),
            ),
            "grid_limit_a of 32",
        ),
        (
            "resync",
            j(json!({"request_id": "x", "from_seq": 1})),
            "sync link",
        ),
    ]
}

/// Overwrites `into`'s fields with `patch`'s, recursively (null removes).
fn merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() && !matches!(a.get(&k), Some(Value::Object(_))) && k != "charger" {
                    a.remove(&k);
                } else if let Some(slot) = a.get_mut(&k) {
                    merge(slot, v);
                } else {
                    a.insert(k, v);
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[tokio::test(start_paused = true)]
async fn malformed_commands_get_a_reason_and_change_nothing() {
    let (sim, db) = dirs();
    let rig = Rig::new(sim.path(), db.path());
    // The handler talks to a queue nobody drains: anything it queued would be a change.
    let (control, mut queued) = mpsc::unbounded_channel();
    let ctx = CommandContext {
        control,
        ..rig.context()
    };
    let now = rig.clock.now();
    for (i, (name, body, word)) in malformed(now).into_iter().enumerate() {
        // A fresh request id each, so no answer comes from a stored reply.
        let body = body.replace("\"request_id\":\"x\"", &format!("\"request_id\":\"x{i}\""));
        let reply = handle(&ctx, name, body.as_bytes()).await;
        assert_eq!(reply["ok"], json!(false), "{name} {body}: {reply}");
        let e = error(&reply);
        assert!(
            e.contains(word),
            "{name} {body}: error {e:?} should say {word:?}"
        );
        assert!(queued.try_recv().is_err(), "{name} {body} queued a change");
    }
    assert_eq!(rig.store.site_limit_override().expect("read"), None);
    assert!(rig.store.charger_overrides().expect("read").is_empty());
    assert!(rig.store.profiles().expect("read").is_empty());
    assert_eq!(rig.ctl.site_limit_a(), GRID_A);
}

#[tokio::test(start_paused = true)]
async fn a_site_limit_above_the_installers_is_refused_not_clamped() {
    let (sim, db) = dirs();
    let mut rig = Rig::new(sim.path(), db.path());
    let cmds = rig.serve();
    let expires = rfc(rig.clock.now() + TimeDelta::hours(1));
    let r = cmds
        .json(
            "set_site_limit",
            json!({"request_id": "big", "limit_a": 32.5, "expires_at": expires}),
        )
        .await;
    assert_eq!(r["ok"], json!(false));
    assert_eq!(r["request_id"], json!("big"));
    assert!(error(&r).contains("grid_limit_a of 32 A"), "{r}");
    rig.cycles(2).await;
    assert_eq!(rig.ctl.site_limit_a(), GRID_A);
    assert_eq!(rig.store.site_limit_override().expect("read"), None);
    // The installer's own limit is accepted, and leaves nothing to revert.
    let r = cmds
        .json(
            "set_site_limit",
            json!({"request_id": "eq", "limit_a": GRID_A, "expires_at": expires}),
        )
        .await;
    assert!(ok(&r), "{r}");
    assert_eq!(rig.store.site_limit_override().expect("read"), None);
    cmds.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_repeated_request_id_is_answered_again_and_applied_once() {
    let (sim, db) = dirs();
    let rig = Rig::new(sim.path(), db.path());
    let (control, mut queued) = mpsc::unbounded_channel();
    let ctx = CommandContext {
        control,
        ..rig.context()
    };
    let expires = rfc(rig.clock.now() + TimeDelta::hours(1));
    let first = handle(
        &ctx,
        "set_site_limit",
        json!({"request_id": "same", "limit_a": 20, "expires_at": expires})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert!(ok(&first));
    // The same id with another body: the first answer, nothing applied.
    let again = handle(
        &ctx,
        "set_site_limit",
        json!({"request_id": "same", "limit_a": 10, "expires_at": expires})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(again, first);
    assert!(matches!(
        queued.try_recv(),
        Ok(ControlCommand::SetSiteLimit { limit_a: Some(l), .. }) if l == 20.0
    ));
    assert!(queued.try_recv().is_err(), "applied once");
    let stored = rig
        .store
        .site_limit_override()
        .expect("read")
        .expect("stored");
    assert_eq!(stored.limit_a, 20.0);

    // A refusal is remembered too.
    let bad = json!({"request_id": "bad", "limit_a": 99, "expires_at": expires}).to_string();
    let r1 = handle(&ctx, "set_site_limit", bad.as_bytes()).await;
    let r2 = handle(&ctx, "set_site_limit", bad.as_bytes()).await;
    assert_eq!(r1["ok"], json!(false));
    assert_eq!(r1, r2);
    assert_eq!(rig.store.replies_len().expect("read"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_commanded_site_limit_reverts_at_its_expiry() {
    let (sim, db) = dirs();
    let mut rig = Rig::new(sim.path(), db.path());
    let cmds = rig.serve();
    rig.ctl.start().await;
    let expires = rig.clock.now() + TimeDelta::minutes(10);
    let r = cmds
        .json(
            "set_site_limit",
            json!({"request_id": "e", "limit_a": 16, "expires_at": rfc(expires)}),
        )
        .await;
    assert!(ok(&r), "{r}");
    rig.cycles(2).await;
    assert_eq!(rig.ctl.site_limit_a(), 16.0);
    while rig.clock.now() < expires {
        assert_eq!(rig.ctl.site_limit_a(), 16.0);
        rig.cycles(1).await;
    }
    assert_eq!(rig.ctl.site_limit_a(), GRID_A);
    assert_eq!(
        rig.view
            .as_ref()
            .map(|v| v.limit.limit_a)
            .unwrap_or_default(),
        GRID_A
    );
    // A restart after the expiry does not bring it back.
    let restored = load_overrides(&rig.store, &rig.cfg, rig.clock.now()).expect("read");
    assert!(!restored
        .iter()
        .any(|c| matches!(c, ControlCommand::SetSiteLimit { .. })));
    cmds.close().await;
}

#[tokio::test(start_paused = true)]
async fn profiles_limit_a_chargers_setpoint_and_the_site() {
    let (sim, db) = dirs();
    let mut rig = Rig::new(sim.path(), db.path());
    let cmds = rig.serve();
    rig.ctl.start().await;
    let now = rig.clock.now();
    let r = cmds
        .json(
            "set_profile",
            json!({"request_id": "p1", "charger": "cp-1", "profile": profile(11, "TxDefaultProfile", 8.0, now)}),
        )
        .await;
    assert!(ok(&r), "{r}");
    let r = cmds
        .json(
            "set_profile",
            json!({"request_id": "p2", "profile": profile(12, "ChargePointMaxProfile", 24.0, now)}),
        )
        .await;
    assert!(ok(&r), "{r}");
    rig.cycles(40).await;
    assert_eq!(rig.ctl.site_limit_a(), 24.0);
    let cp1 = rig.setpoint("cp-1");
    assert!((6.0 - TOL..=8.0 + TOL).contains(&cp1), "cp-1 at {cp1}");
    assert_eq!(rig.store.profiles().expect("read").len(), 2);

    // An empty period list removes the profile: the charger gets more again.
    let mut removal = profile(11, "TxDefaultProfile", 8.0, now);
    removal["chargingSchedule"]["chargingSchedulePeriod"] = json!([]);
    let r = cmds
        .json(
            "set_profile",
            json!({"request_id": "p3", "charger": "cp-1", "profile": removal}),
        )
        .await;
    assert!(ok(&r), "{r}");
    rig.cycles(40).await;
    assert!(rig.setpoint("cp-1") > 8.0 + TOL, "{}", rig.setpoint("cp-1"));
    assert_eq!(rig.store.profiles().expect("read").len(), 1);
    cmds.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_the_cloud_limits() {
    let (sim, db) = dirs();
    let now;
    {
        let rig = Rig::new(sim.path(), db.path());
        now = rig.clock.now();
        let cmds = rig.serve();
        let expires = rfc(now + TimeDelta::hours(2));
        for (name, body) in [
            (
                "set_site_limit",
                json!({"request_id": "r1", "limit_a": 18, "expires_at": expires}),
            ),
            (
                "set_charger",
                json!({"request_id": "r2", "charger": "cp-2", "enabled": false}),
            ),
            (
                "set_profile",
                json!({"request_id": "r3", "charger": "cp-1", "profile": profile(3, "TxDefaultProfile", 9.0, now)}),
            ),
        ] {
            assert!(ok(&cmds.json(name, body).await));
        }
        cmds.close().await;
    }
    let sim2 = tempfile::tempdir().expect("dir");
    let mut rig = Rig::new(sim2.path(), db.path());
    let tx = rig.ctl.commands();
    for c in load_overrides(&rig.store, &rig.cfg, rig.clock.now()).expect("read") {
        tx.send(c).expect("controller queue");
    }
    rig.ctl.start().await;
    rig.cycles(40).await;
    assert_eq!(rig.ctl.site_limit_a(), 18.0);
    assert_eq!(rig.setpoint("cp-2"), 0.0);
    let cp1 = rig.setpoint("cp-1");
    assert!((6.0 - TOL..=9.0 + TOL).contains(&cp1), "cp-1 at {cp1}");
    // The stored replies came back with the database: a late retry is still answered.
    let r = rig.store.stored_reply("r1").expect("read").expect("kept");
    assert_eq!(r["ok"], json!(true));
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_a_month_demand_target_until_it_is_cleared() {
    let (sim, db) = dirs();
    let rig = Rig::new(sim.path(), db.path());
    let cmds = rig.serve();
    let restored = || -> Vec<Option<(i32, u32, f64)>> {
        load_overrides(&rig.store, &rig.cfg, rig.clock.now())
            .expect("read")
            .iter()
            .filter_map(|c| match c {
                ControlCommand::SetDemandLimit(m) => Some(*m),
                _ => None,
            })
            .collect()
    };
    assert!(restored().is_empty(), "nothing commanded yet");
    let r = cmds
        .json(
            "set_demand_limit",
            json!({"request_id": "d1", "month": "2026-01", "limit_kw": 18.5}),
        )
        .await;
    assert!(ok(&r), "{r}");
    assert_eq!(restored(), vec![Some((2026, 1, 18.5))]);
    let r = cmds
        .json(
            "set_demand_limit",
            json!({"request_id": "d2", "month": "2026-01"}),
        )
        .await;
    assert!(ok(&r), "{r}");
    assert!(restored().is_empty(), "cleared: the config's target again");
    cmds.close().await;
}

/// The plan commands `load_overrides` queues for a new controller, by charger.
fn restored_plans(rig: &Rig) -> Vec<ControlCommand> {
    load_overrides(&rig.store, &rig.cfg, rig.clock.now())
        .expect("read")
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                ControlCommand::SetPlan { .. } | ControlCommand::RestorePlan { .. }
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_commanded_plan_survives_a_restart_with_its_session_and_goes_when_the_session_ends() {
    let (sim, db) = dirs();
    let depart;
    {
        let mut rig = Rig::new(sim.path(), db.path());
        let cmds = rig.serve();
        depart = rig.clock.now() + TimeDelta::hours(6);
        for (request_id, charger) in [("pl1", "cp-1"), ("pl2", "cp-2")] {
            let r = cmds
                .json(
                    "set_plan",
                    json!({"request_id": request_id, "charger": charger, "energy_wh": 20000, "depart_at": rfc(depart)}),
                )
                .await;
            assert!(ok(&r), "{r}");
        }
        rig.cycles(3).await;
        // The sessions in progress, as the recorder keeps them: 3 and 1 kWh so far.
        for (charger, wh) in [("cp-1", 3000), ("cp-2", 1000)] {
            let mut s = evsite::sessions::machine::SessionRecord::new(
                format!("s-{charger}"),
                charger.into(),
                rig.clock.now(),
            );
            s.energy_wh = wh;
            rig.store.put_session(&s, &[], None).await.expect("stored");
        }
        cmds.close().await;
    }
    // Back up: cp-1's car is still plugged in; cp-2's left while evsite was down, and
    // another car comes 20 s later.
    let sim2 = tempfile::tempdir().expect("dir");
    let mut rig = Rig::on(
        scenario_with_cars(&[("cp-1", 0), ("cp-2", 20)]),
        sim2.path(),
        db.path(),
    );
    let restored = restored_plans(&rig);
    let delivered: Vec<(String, f64)> = restored
        .iter()
        .filter_map(|c| match c {
            ControlCommand::RestorePlan {
                charger,
                plan,
                delivered_wh,
            } if plan.depart_at == depart && plan.energy_wh == 20000 => {
                Some((charger.clone(), *delivered_wh))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered,
        vec![("cp-1".into(), 3000.0), ("cp-2".into(), 1000.0)],
        "{restored:?}"
    );
    let tx = rig.ctl.commands();
    for c in restored {
        tx.send(c).expect("controller queue");
    }
    rig.ctl.start().await;
    rig.cycles(5).await;
    let view = rig.view.clone().expect("a cycle ran");
    let plan = view
        .charger("cp-1")
        .and_then(|c| c.plan)
        .expect("cp-1's session keeps its plan");
    assert_eq!((plan.energy_wh, plan.depart_at), (20000, depart));
    // What it had before the restart counts: at most 32 A × 3 × 230 V for 5 s more.
    assert!(
        (3000.0..3000.0 + 31.0).contains(&plan.delivered_wh),
        "{plan:?}"
    );
    rig.cycles(25).await;
    let cp2 = rig.view.as_ref().and_then(|v| v.charger("cp-2").cloned());
    assert!(
        cp2.as_ref()
            .is_some_and(|c| c.state.is_some_and(|s| s.is_connected())),
        "the next car is plugged in: {cp2:?}"
    );
    assert_eq!(
        cp2.and_then(|c| c.plan),
        None,
        "cp-2's plan went with the session that ended while evsite was down, not to the next car"
    );
    // cp-1's session ends: its plan goes from the store with it.
    assert!(rig
        .store
        .end_plan("cp-1", rig.clock.now())
        .await
        .expect("write"));
    let cp1 = |c: &ControlCommand| matches!(c, ControlCommand::SetPlan { charger, .. } | ControlCommand::RestorePlan { charger, .. } if charger == "cp-1");
    assert!(!restored_plans(&rig).iter().any(cp1));
    // A plan set after a session ended is the next session's: that end leaves it, and with
    // no session open on the charger it waits for the next car.
    let ended = rig.clock.now();
    rig.cycles(2).await;
    let cmds = rig.serve();
    let r = cmds
        .json(
            "set_plan",
            json!({"request_id": "pl3", "charger": "cp-1", "energy_wh": 5000, "depart_at": rfc(depart)}),
        )
        .await;
    assert!(ok(&r), "{r}");
    let mut s = evsite::sessions::machine::SessionRecord::new(
        "s-cp-1".into(),
        "cp-1".into(),
        ended - TimeDelta::hours(1),
    );
    s.state = evsite::sessions::machine::RecordState::Completed;
    s.ended_at = Some(ended);
    rig.store.put_session(&s, &[], None).await.expect("stored");
    assert!(!rig.store.end_plan("cp-1", ended).await.expect("write"));
    let next: Vec<_> = restored_plans(&rig).into_iter().filter(cp1).collect();
    assert!(
        matches!(next.as_slice(), [ControlCommand::SetPlan { plan: Some(p), .. }] if p.energy_wh == 5000),
        "{next:?}"
    );
    // Cleared by command: the config's plan again, nothing stored.
    let r = cmds
        .json("set_plan", json!({"request_id": "pl4", "charger": "cp-1"}))
        .await;
    assert!(ok(&r), "{r}");
    assert!(!restored_plans(&rig).iter().any(cp1));
    cmds.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_session_open_with_the_configs_plan_goes_on_with_what_it_had_after_a_restart() {
    let (sim, db) = dirs();
    let rig = Rig::new(sim.path(), db.path());
    let now = rig.clock.now();
    let depart = now + TimeDelta::hours(8);
    let mut s = evsite::sessions::machine::SessionRecord::new(
        "s-cp-2".into(),
        "cp-2".into(),
        now - TimeDelta::hours(1),
    );
    s.energy_wh = 7000;
    s.plan = Some(evsite::sessions::machine::SessionPlan {
        energy_wh: 25000,
        depart_at: depart,
        met: false,
    });
    rig.store.put_session(&s, &[], None).await.expect("stored");
    let restored = restored_plans(&rig);
    assert!(
        matches!(
            restored.as_slice(),
            [ControlCommand::RestorePlan { charger, plan, delivered_wh }]
                if charger == "cp-2" && plan.energy_wh == 25000 && plan.depart_at == depart
                    && *delivered_wh == 7000.0
        ),
        "{restored:?}"
    );
    // A plan whose departure has passed is not carried over.
    s.plan = s.plan.map(|p| evsite::sessions::machine::SessionPlan {
        depart_at: now - TimeDelta::minutes(1),
        ..p
    });
    rig.store.put_session(&s, &[], None).await.expect("stored");
    assert!(restored_plans(&rig).is_empty());
}

#[tokio::test(start_paused = true)]
async fn old_replies_are_pruned() {
    let db = tempfile::tempdir().expect("dir");
    let (store, _) = Store::open(db.path()).expect("opens");
    let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
    let reply = json!({"ok": true});
    let none = evsite::store::commands::CommandChange::None;
    store
        .commit_command("old", t0, &reply, &none)
        .await
        .expect("write");
    store
        .commit_command("new", t0 + TimeDelta::days(8), &reply, &none)
        .await
        .expect("write");
    let pruned = store
        .prune_replies(t0 + TimeDelta::days(8) - evsite::commands::REPLY_RETENTION)
        .await
        .expect("prune");
    assert_eq!(pruned, 1);
    assert_eq!(store.stored_reply("old").expect("read"), None);
    assert!(store.stored_reply("new").expect("read").is_some());
}
