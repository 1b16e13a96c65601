use chrono::TimeZone;

use super::*;
use crate::devices::model::ChargeState::{self, A, B, C};
use crate::sessions::energy::MeterNote;

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

/// A view where charger cp-01 (lifetime register) is in `state`, drawing `amps` on three
/// phases with its register at `wh`.
fn view(at: i64, state: Option<ChargeState>, amps: f64, wh: f64) -> CycleRecord {
    CycleRecord {
        chargers: vec![ChargerCycle {
            online: state.is_some(),
            state,
            current_a: [Some(amps); 3],
            power_w: Some(amps * 230.0 * 3.0),
            energy_wh: Some(wh),
            setpoint_a: Some(16.0),
            ..ChargerCycle::unread("cp-01")
        }],
        ..CycleRecord::blank(t(at), 32.0)
    }
}

fn sessions(out: &[TrackerOutput]) -> Vec<&SessionUpdate> {
    out.iter()
        .filter_map(|o| match o {
            TrackerOutput::Session(u) => Some(u.as_ref()),
            TrackerOutput::Alert { .. } => None,
        })
        .collect()
}

fn alerts(out: &[TrackerOutput]) -> Vec<&AlertSignal> {
    out.iter()
        .filter_map(|o| match o {
            TrackerOutput::Alert { alert, .. } => Some(alert),
            TrackerOutput::Session(_) => None,
        })
        .collect()
}

/// Drives a charge of 16 A × 3 phases (11,040 W) from `from` for `secs`, one view a second.
fn charge(tr: &mut SessionTracker, from: i64, secs: i64, wh0: f64) -> (Vec<TrackerOutput>, f64) {
    let mut out = Vec::new();
    let mut wh = wh0;
    for s in from..from + secs {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        out.extend(tr.observe(&view(s, Some(C), 16.0, wh)));
    }
    (out, wh)
}

#[test]
fn a_session_is_started_updated_billed_and_completed() {
    let mut tr = SessionTracker::new(&cfg());
    let out = tr.observe(&view(0, Some(B), 0.0, 1_000.0));
    let started = sessions(&out);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].change, SessionChange::Started);
    assert!(started[0].publish);
    assert!(
        started[0].record.tariff.is_some(),
        "tariff snapshotted at plug-in"
    );

    let (out, wh) = charge(&mut tr, 1, 1_200, 1_000.0);
    let ups = sessions(&out);
    // Stored every minute, announced every five.
    assert!(ups.len() >= 20, "{} updates", ups.len());
    let published = ups.iter().filter(|u| u.publish).count();
    assert!((4..=7).contains(&published), "{published} published");
    let last = ups
        .last()
        .map(|u| u.record.clone())
        .unwrap_or_else(|| panic!("no update"));
    assert!(last.estimated_end_at.is_some_and(|e| e > t(1_200)));

    let out = tr.observe(&view(1_201, Some(A), 0.0, wh));
    let done = sessions(&out);
    assert_eq!(done.len(), 1);
    let r = &done[0].record;
    assert_eq!(done[0].change, SessionChange::Completed);
    assert_eq!(r.stop_reason, Some(StopReason::Unplugged));
    assert_eq!(r.energy_wh, (wh - 1_000.0).round() as u64);
    let cost = r.cost.as_ref().unwrap_or_else(|| panic!("no cost"));
    // 0.35 EUR/kWh at noon Berlin time (no window), plus no fees within the grace.
    let kwh = rust_decimal::Decimal::from(r.energy_wh) / rust_decimal::Decimal::from(1000);
    let want = (kwh * rust_decimal::Decimal::new(35, 2)).round_dp(2);
    assert_eq!(cost.total, want);
    assert!(tr.active().is_empty());
}

#[test]
fn a_vehicle_that_stops_drawing_raises_charging_complete_once_and_clears_on_unplug() {
    let mut tr = SessionTracker::new(&cfg());
    tr.observe(&view(0, Some(B), 0.0, 0.0));
    let (_, wh) = charge(&mut tr, 1, 120, 0.0);
    let mut out = Vec::new();
    for s in 121..400 {
        out.extend(tr.observe(&view(s, Some(B), 0.0, wh)));
    }
    let raised: Vec<_> = alerts(&out)
        .into_iter()
        .filter(|a| a.kind == AlertKind::ChargingComplete)
        .collect();
    assert_eq!(raised.len(), 1);
    assert!(raised[0].raised);
    let out = tr.observe(&view(400, Some(A), 0.0, wh));
    let cleared: Vec<_> = alerts(&out)
        .into_iter()
        .filter(|a| a.kind == AlertKind::ChargingComplete)
        .collect();
    assert_eq!(cleared.len(), 1);
    assert!(!cleared[0].raised);
    let done = sessions(&out);
    assert!(done[0].record.estimated_end_at.is_some_and(|e| e <= t(200)));
}

fn interrupted_session() -> (SessionRecord, Vec<Sample>, f64) {
    let mut tr = SessionTracker::new(&cfg());
    tr.observe(&view(0, Some(B), 0.0, 5_000.0));
    let (_, wh) = charge(&mut tr, 1, 600, 5_000.0);
    // As stored together: the record and its samples of the same moment.
    let last = tr.active().pop().unwrap_or_else(|| panic!("no session"));
    let samples = tr.slots[0].machine.samples().to_vec();
    (last, samples, wh)
}

#[test]
fn a_session_whose_vehicle_left_during_an_outage_is_closed_with_the_register_energy() {
    let (record, samples, wh) = interrupted_session();
    let mut tr = SessionTracker::new(&cfg());
    assert!(tr.resume(&record, samples, t(3_000)));
    // The car charged on its own for a while, then left.
    let register = wh + 2_000.0;
    let out = tr.observe(&view(3_000, Some(A), 0.0, register));
    let done = sessions(&out);
    assert_eq!(done.len(), 1);
    let r = &done[0].record;
    assert_eq!(r.session_id, record.session_id);
    assert_eq!(r.stop_reason, Some(StopReason::ControllerOffline));
    assert_eq!(r.state, RecordState::Interrupted);
    assert_eq!(r.energy_wh, (register - 5_000.0).round() as u64);
    assert_eq!(r.ended_at, record.updated_at);
    assert!(alerts(&out)
        .iter()
        .any(|a| a.kind == AlertKind::SessionInterrupted && a.raised));
}

#[test]
fn a_session_whose_vehicle_is_still_plugged_continues_after_a_restart() {
    let (record, samples, wh) = interrupted_session();
    let mut tr = SessionTracker::new(&cfg());
    assert!(tr.resume(&record, samples, t(700)));
    let (out, wh2) = charge(&mut tr, 700, 300, wh + 200.0);
    assert!(sessions(&out)
        .iter()
        .all(|u| u.record.session_id == record.session_id));
    assert!(sessions(&out)
        .iter()
        .all(|u| u.change != SessionChange::Started));
    let out = tr.observe(&view(1_000, Some(A), 0.0, wh2));
    let r = &sessions(&out)[0].record;
    assert_eq!(r.stop_reason, Some(StopReason::Unplugged));
    assert_eq!(r.energy_wh, (wh2 - 5_000.0).round() as u64);
}

#[test]
fn a_charger_lost_mid_session_interrupts_it_and_resumes_on_the_same_session() {
    let mut tr = SessionTracker::new(&cfg());
    tr.observe(&view(0, Some(B), 0.0, 0.0));
    let (_, wh) = charge(&mut tr, 1, 60, 0.0);
    let mut out = Vec::new();
    for s in 61..200 {
        out.extend(tr.observe(&view(s, None, 0.0, wh)));
    }
    let a = alerts(&out);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::SessionInterrupted);
    let out = tr.observe(&view(200, Some(C), 16.0, wh + 50.0));
    assert!(alerts(&out).iter().any(|a| !a.raised));
    assert_eq!(tr.active().len(), 1);
}

#[test]
fn a_session_across_the_autumn_dst_change_bills_the_repeated_hour_in_its_window() {
    // A night window 01:00–03:00 Berlin time, every day. On 2026-10-25 clocks go back at
    // 03:00 CEST (01:00 UTC), so the window lasts three real hours: 23:00–02:00 UTC.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
        .unwrap_or_default()
        .replace(
            "start = \"17:00\"\nend = \"21:00\"",
            "start = \"01:00\"\nend = \"03:00\"",
        )
        .replace(
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]",
        );
    let cfg = crate::config::load_str(&text, "night.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut tr = SessionTracker::new(&cfg);
    let start = Utc
        .with_ymd_and_hms(2026, 10, 24, 22, 30, 0)
        .single()
        .unwrap_or_default();
    let at = |s: i64| start + TimeDelta::seconds(s);
    let mk = |s: i64, state, amps: f64, wh: f64| CycleRecord {
        at: at(s),
        ..view(0, Some(state), amps, wh)
    };
    tr.observe(&mk(0, B, 0.0, 0.0));
    let watts = 16.0 * 230.0 * 3.0;
    let mut wh = 0.0;
    for s in (10..=4 * 3600).step_by(10) {
        wh += watts * 10.0 / 3600.0;
        tr.observe(&mk(s, C, 16.0, wh));
    }
    let out = tr.observe(&mk(4 * 3600 + 10, A, 0.0, wh));
    let r = &sessions(&out)[0].record;
    let cost = r.cost.as_ref().unwrap_or_else(|| panic!("no cost"));
    let energy = |label: &str| {
        cost.lines
            .iter()
            .filter(|l| l.label == label)
            .map(|l| l.quantity)
            .sum::<rust_decimal::Decimal>()
    };
    let total_kwh = watts * 4.0 / 1000.0;
    let night = rust_decimal::Decimal::from_f64_retain(total_kwh * 0.75)
        .unwrap_or_default()
        .round_dp(3);
    let window_label = cost
        .lines
        .iter()
        .find(|l| l.unit_price == rust_decimal::Decimal::new(45, 2))
        .map(|l| l.label.clone())
        .unwrap_or_else(|| panic!("no window line in {cost:?}"));
    // Three of the four real hours were in the window, the repeated hour included.
    assert!(
        (energy(&window_label) - night).abs() <= rust_decimal::Decimal::new(2, 3),
        "{cost:?}"
    );
}

fn planned(at: i64, state: Option<ChargeState>, amps: f64, wh: f64, depart: i64) -> CycleRecord {
    let mut v = view(at, state, amps, wh);
    v.chargers[0].plan = Some(crate::control::plan::PlanStatus {
        energy_wh: 2_000,
        depart_at: t(depart),
        delivered_wh: 0.0,
        met: false,
        charging: true,
    });
    v
}

#[test]
fn a_plan_is_recorded_with_whether_it_was_met_by_departure() {
    let mut tr = SessionTracker::new(&cfg());
    let out = tr.observe(&planned(0, Some(B), 0.0, 1_000.0, 600));
    let plan = sessions(&out)[0]
        .record
        .plan
        .expect("the plan is recorded at plug-in");
    assert_eq!(
        (plan.energy_wh, plan.depart_at, plan.met),
        (2_000, t(600), false)
    );
    // 11 kW for 5 minutes: 920 Wh, short of the plan by the departure at 600 s.
    let mut wh = 1_000.0;
    for s in 1..=300 {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        tr.observe(&planned(s, Some(C), 16.0, wh, 600));
    }
    for s in 301..=700 {
        tr.observe(&planned(s, Some(B), 0.0, wh, 600));
    }
    // More energy after departure does not make a missed plan met.
    for s in 701..=1_400 {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        tr.observe(&planned(s, Some(C), 16.0, wh, 600));
    }
    let out = tr.observe(&view(1_401, Some(A), 0.0, wh));
    let done = sessions(&out);
    let last = done.last().expect("the session ends at unplug");
    assert!(last.record.energy_wh > 2_000);
    assert_eq!(last.record.plan.map(|p| p.met), Some(false));

    // The same plan met before departure stays met.
    let mut tr = SessionTracker::new(&cfg());
    tr.observe(&planned(0, Some(B), 0.0, 1_000.0, 3_600));
    let mut wh = 1_000.0;
    for s in 1..=900 {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        tr.observe(&planned(s, Some(C), 16.0, wh, 3_600));
    }
    let out = tr.observe(&view(901, Some(A), 0.0, wh));
    let last = *sessions(&out).last().expect("ended");
    assert_eq!(last.record.plan.map(|p| p.met), Some(true));
}

/// `view` as a cycle sees the clock: `shift` added to the time, `trusted` or not, `step` this cycle.
fn clocked(
    at: i64,
    shift: TimeDelta,
    state: Option<ChargeState>,
    amps: f64,
    wh: f64,
) -> CycleRecord {
    let mut v = view(at, state, amps, wh);
    v.at += shift;
    v
}

#[test]
fn a_session_across_a_clock_step_keeps_its_duration_and_is_restamped() {
    let mut tr = SessionTracker::new(&cfg());
    let step = TimeDelta::days(646);
    let stale = |at, state, amps, wh| {
        let mut v = view(at, state, amps, wh);
        v.clock.trusted = false;
        v
    };
    // Plugged in and charging for 10 minutes on the stale time, untrusted.
    let out = tr.observe(&stale(0, Some(B), 0.0, 1000.0));
    assert!(sessions(&out)[0].record.time_provisional);
    let mut wh = 1000.0;
    for s in 1..600 {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        tr.observe(&stale(s, Some(C), 16.0, wh));
    }
    // NTP steps the clock: the cycle's record carries the step, and the time is trusted.
    let mut v = clocked(600, step, Some(C), 16.0, wh);
    v.clock.step_ms = Some(step.num_milliseconds());
    tr.clock_stepped(step);
    let out = tr.observe(&v);
    let u = sessions(&out);
    assert_eq!(u.len(), 1, "the corrected record is announced at once");
    assert!(u[0].publish && u[0].restamped);
    let r = &u[0].record;
    assert_eq!(r.plugged_in_at, t(0) + step);
    assert_eq!(r.charging_started_at, Some(t(1) + step));
    assert!(!r.time_provisional);
    // All its samples, on the corrected clock, replace those stored.
    assert!(u[0].new_samples.len() >= 10);
    assert!(u[0]
        .new_samples
        .iter()
        .all(|s| s.minute_start >= t(0) + step));

    // It ends 5 minutes later: 15 minutes long, not 646 days; priced on the true time.
    for s in 601..900 {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        tr.observe(&clocked(s, step, Some(C), 16.0, wh));
    }
    let out = tr.observe(&clocked(900, step, Some(A), 0.0, wh));
    let done = sessions(&out);
    let r = &done.last().expect("ended").record;
    assert_eq!(r.ended_at, Some(t(900) + step));
    assert_eq!(
        r.ended_at.unwrap() - r.plugged_in_at,
        TimeDelta::seconds(900)
    );
    assert!(
        (r.energy_wh as f64 - (wh - 1000.0)).abs() <= 1.0,
        "{}",
        r.energy_wh
    );

    // The next session starts on the corrected clock, unshifted.
    let out = tr.observe(&clocked(1000, step, Some(B), 0.0, wh));
    assert_eq!(sessions(&out)[0].record.plugged_in_at, t(1000) + step);
}

/// A charge at 16 A × 3 whose register stands still from `frozen_from` on.
fn frozen_charge(tr: &mut SessionTracker, to: i64, frozen_from: i64) -> (Vec<TrackerOutput>, f64) {
    let mut out = Vec::new();
    let mut truth = 0.0;
    let mut register = 5_000.0;
    out.extend(tr.observe(&view(0, Some(C), 16.0, register)));
    for s in 1..to {
        let wh = 16.0 * 230.0 * 3.0 / 3600.0;
        truth += wh;
        if s < frozen_from {
            register += wh;
        }
        out.extend(tr.observe(&view(s, Some(C), 16.0, register.floor())));
    }
    (out, truth)
}

fn integrated_note(r: &SessionRecord) -> Option<&MeterNote> {
    r.energy_notes
        .iter()
        .find(|n| matches!(n, MeterNote::IntegratedPower { .. }))
}

#[test]
fn a_register_found_frozen_is_billed_from_power_and_announced_with_all_its_samples() {
    let mut tr = SessionTracker::new(&cfg());
    let (_, truth) = frozen_charge(&mut tr, 900, 600);
    assert!(
        tr.active()[0].energy_wh as f64 <= truth - 800.0,
        "short before"
    );
    let u = match tr.register_fault("cp-01", RegisterFault::RegisterFrozen, true, t(900)) {
        Some(TrackerOutput::Session(u)) => u,
        other => panic!("no corrected update: {other:?}"),
    };
    assert!(u.publish && u.restamped, "all samples replace those stored");
    assert!((u.record.energy_wh as f64 - truth).abs() <= 20.0);
    let sum: f64 = u.new_samples.iter().map(|s| s.energy_wh).sum();
    assert!((sum - u.record.energy_wh as f64).abs() <= 1.0);
    assert!(
        matches!(integrated_note(&u.record), Some(MeterNote::IntegratedPower { since, .. }) if *since <= t(600))
    );
    assert!(u.record.cost.is_some(), "billed on the corrected energy");
    // Found again: nothing more to do.
    assert!(tr
        .register_fault("cp-01", RegisterFault::RegisterFrozen, true, t(901))
        .is_none());
}

#[test]
fn no_fault_found_no_correction() {
    let mut tr = SessionTracker::new(&cfg());
    let (out, _) = frozen_charge(&mut tr, 900, 600);
    assert!(sessions(&out)
        .iter()
        .all(|u| integrated_note(&u.record).is_none() && !u.restamped));
    let r = &tr.active()[0];
    let register = (5_000.0 + 599.0 * 11_040.0 / 3_600.0_f64).floor() - 5_000.0;
    assert_eq!(r.energy_wh as f64, register, "the register as it counts");
}

#[test]
fn a_session_on_power_keeps_its_note_when_picked_up_after_a_restart() {
    let mut tr = SessionTracker::new(&cfg());
    frozen_charge(&mut tr, 900, 600);
    tr.register_fault("cp-01", RegisterFault::RegisterFrozen, true, t(900));
    let record = tr.active().pop().unwrap_or_else(|| panic!("no session"));
    let samples = tr.slots[0].machine.samples().to_vec();
    let mut back = SessionTracker::new(&cfg());
    assert!(back.resume(&record, samples, t(1_000)));
    // The register still stands; the session counts what power shows.
    let register = record.meter_end_wh.unwrap_or(0) as f64;
    let mut out = Vec::new();
    for s in 1_000..1_300 {
        out.extend(back.observe(&view(s, Some(C), 16.0, register)));
    }
    let r = &back.active()[0];
    assert!(integrated_note(r).is_some(), "{:?}", r.energy_notes);
    assert!(r
        .energy_notes
        .iter()
        .any(|n| matches!(n, MeterNote::Resumed { .. })));
    let added = r.energy_wh as f64 - record.energy_wh as f64;
    assert!((added - 299.0 * 11_040.0 / 3_600.0).abs() <= 2.0, "{added}");
}

#[test]
fn a_new_session_goes_back_to_the_register_once_the_fault_cleared() {
    let mut tr = SessionTracker::new(&cfg());
    let (_, _) = frozen_charge(&mut tr, 900, 600);
    tr.register_fault("cp-01", RegisterFault::RegisterFrozen, true, t(900));
    tr.observe(&view(901, Some(A), 0.0, 7_000.0));
    assert!(tr
        .register_fault("cp-01", RegisterFault::RegisterFrozen, false, t(902))
        .is_none());
    tr.observe(&view(1_000, Some(C), 16.0, 7_000.0));
    tr.observe(&view(1_060, Some(C), 16.0, 7_100.0));
    let r = &tr.active()[0];
    assert!(integrated_note(r).is_none());
    assert_eq!(r.energy_wh, 100);
}

#[test]
fn a_phase_at_the_draw_floor_is_a_draw_and_the_derived_power_is_the_shared_one() {
    use crate::electric::DRAW_FLOOR_A;
    let with = |a: [Option<f64>; 3]| ChargerCycle {
        online: true,
        state: Some(C),
        current_a: a,
        ..ChargerCycle::unread("cp-01")
    };
    assert!(drawing(&with([None, Some(DRAW_FLOOR_A), None])));
    assert!(!drawing(&with([Some(DRAW_FLOOR_A - 0.01); 3])));
    // Currents × the site's voltage, a phase not read counted as nothing.
    let cv = with([Some(16.0), None, Some(8.0)]);
    assert_eq!(derived_power_w(&cv, 230.0), Some(24.0 * 230.0));
    assert_eq!(derived_power_w(&with([None; 3]), 230.0), None);
}
