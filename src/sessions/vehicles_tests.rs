//! A returning vehicle's history in the tracker's end estimates: learned from its finished
//! sessions or handed over at start, and used only for that vehicle.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{Visit, VISITS};
use crate::config::Config;
use crate::control::record::{ChargerCycle, CycleRecord};
use crate::devices::model::ChargeState::{self, A, B, C};
use crate::sessions::machine::SessionRecord;
use crate::sessions::tracker::{SessionTracker, TrackerOutput};

/// 16 A on three phases at 230 V (W).
const POWER_W: f64 = 16.0 * 230.0 * 3.0;

fn cfg() -> Config {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
        .unwrap_or_default();
    match crate::config::load_str(&text, "example.toml") {
        Ok(c) => c,
        Err(e) => panic!("example config: {e}"),
    }
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::seconds(s)
}

/// Charger cp-01 in `state`, drawing `amps` on three phases, its register at `wh`, the
/// vehicle's token `tag` in its id register.
fn view(at: i64, state: ChargeState, amps: f64, wh: f64, tag: Option<&str>) -> CycleRecord {
    CycleRecord {
        chargers: vec![ChargerCycle {
            online: true,
            state: Some(state),
            current_a: [Some(amps); 3],
            power_w: Some(amps * 230.0 * 3.0),
            energy_wh: Some(wh),
            setpoint_a: Some(16.0),
            id_tag: tag.map(str::to_string),
            ..ChargerCycle::unread("cp-01")
        }],
        ..CycleRecord::blank(t(at), 32.0)
    }
}

fn records(out: Vec<TrackerOutput>) -> Vec<SessionRecord> {
    out.into_iter()
        .filter_map(|o| match o {
            TrackerOutput::Session(u) => Some(u.record),
            TrackerOutput::Alert { .. } => None,
        })
        .collect()
}

/// A session from `from` that charges at 16 A for `secs`, one view a second; returns the
/// records it gave and the register after it. Left plugged (`end` false) or unplugged.
fn session(
    tr: &mut SessionTracker,
    from: i64,
    secs: i64,
    wh0: f64,
    tag: Option<&str>,
    end: bool,
) -> (Vec<SessionRecord>, f64) {
    let mut out = tr.observe(&view(from, B, 0.0, wh0, tag));
    let mut wh = wh0;
    for s in from + 1..=from + secs {
        wh += POWER_W / 3600.0;
        out.extend(tr.observe(&view(s, C, 16.0, wh, tag)));
    }
    if end {
        for s in from + secs + 1..from + secs + 120 {
            out.extend(tr.observe(&view(s, B, 0.0, wh, tag)));
        }
        out.extend(tr.observe(&view(from + secs + 120, A, 0.0, wh, tag)));
    }
    (records(out), wh)
}

/// The end estimate of the last update with one, less its time (s), and what the estimate
/// should be if the session takes `total_wh` at 16 A (s).
fn secs_left(records: &[SessionRecord], total_wh: f64) -> Option<(i64, i64)> {
    let r = records
        .iter()
        .rev()
        .find(|r| r.estimated_end_at.is_some())?;
    let left = (r.estimated_end_at? - r.updated_at?).num_seconds();
    let want = (total_wh - r.energy_wh as f64) / POWER_W * 3600.0;
    Some((left, want.round() as i64))
}

/// A site whose sessions take 20 kWh, and a car (token `CAR-A`) that takes 5.5 kWh each
/// time: its own history, learned from its sessions here, says when it ends, a stranger's
/// estimate stays on the site's.
#[test]
fn a_returning_vehicle_is_estimated_from_its_own_sessions() {
    let mut tr = SessionTracker::new(&cfg());
    tr.learn([20_000; 10]);
    let mut wh = 1_000.0;
    let mut at = 0;
    for _ in 0..3 {
        let (records, after) = session(&mut tr, at, 1_800, wh, Some("CAR-A"), true);
        let last = records.last().cloned();
        assert!(
            last.is_some_and(|r| r.ended_at.is_some()),
            "the visit ended"
        );
        wh = after;
        at += 4_000;
    }
    // Its fourth visit, a few minutes in.
    let (records, _) = session(&mut tr, at, 200, wh, Some("CAR-A"), false);
    let (own, want) = secs_left(&records, 5_520.0).expect("an estimate");
    assert!(
        (own - want).abs() <= 30,
        "its own history says {own} s, want {want}"
    );

    // A stranger on the same site and the same car switched to the site's history: both
    // are told what the site's 20 kWh sessions take.
    let mut site_only = SessionTracker::new(&cfg());
    site_only.learn([20_000; 10]);
    site_only.set_vehicle_history(false);
    site_only.learn_vehicles((0..3).map(|_| {
        (
            "token:CAR-A".to_string(),
            Visit {
                energy_wh: 5_520.0,
                stop_a: None,
            },
        )
    }));
    let (records, _) = session(&mut site_only, 0, 200, 1_000.0, Some("CAR-A"), false);
    let (site, want) = secs_left(&records, 20_000.0).expect("an estimate");
    assert!(
        (site - want).abs() <= 30,
        "site history says {site} s, want {want}"
    );

    let mut stranger = SessionTracker::new(&cfg());
    stranger.learn([20_000; 10]);
    stranger.learn_vehicles([(
        "token:CAR-A".to_string(),
        Visit {
            energy_wh: 5_520.0,
            stop_a: None,
        },
    )]);
    let (records, _) = session(&mut stranger, 0, 200, 1_000.0, Some("CAR-B"), false);
    let (other, want) = secs_left(&records, 20_000.0).expect("an estimate");
    assert!(
        (other - want).abs() <= 30,
        "a stranger: {other} s, want {want}"
    );
}

/// Handed over at start (from the store), a vehicle's history counts as if learned live;
/// past its own largest session the site's history takes over again.
#[test]
fn a_history_handed_over_at_start_counts_and_is_outgrown() {
    let mut tr = SessionTracker::new(&cfg());
    tr.learn([20_000; 10]);
    tr.learn_vehicles((0..VISITS * 2).map(|_| {
        (
            "token:CAR-A".to_string(),
            Visit {
                energy_wh: 5_520.0,
                stop_a: Some(4.0),
            },
        )
    }));
    let (first, wh) = session(&mut tr, 0, 200, 1_000.0, Some("CAR-A"), false);
    let (own, want) = secs_left(&first, 5_520.0).expect("an estimate");
    assert!(
        (own - want).abs() <= 30,
        "handed over: {own} s, want {want}"
    );
    assert_eq!(first.last().and_then(|r| r.ev_id.clone()), None);
    // Past 5.5 kWh the car takes more than it ever did: the site's 20 kWh again.
    let mut out = Vec::new();
    let mut e = wh;
    for s in 201..=2_400 {
        e += POWER_W / 3600.0;
        out.extend(tr.observe(&view(s, C, 16.0, e, Some("CAR-A"))));
    }
    let (later, want) = secs_left(&records(out), 20_000.0).expect("an estimate");
    assert!(
        (later - want).abs() <= 30,
        "outgrown: {later} s, want {want}"
    );
}
