use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn settings(limit_kw: f64) -> Demand {
    Demand {
        limit_kw,
        window: std::time::Duration::from_secs(900),
        include_building: true,
        margin_pct: 2.0,
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

#[test]
fn windows_align_to_the_local_quarter_hours() {
    let at = utc(2026, 12, 3, 14, 22, 10);
    assert_eq!(
        window_start(at, 900, chrono_tz::UTC),
        utc(2026, 12, 3, 14, 15, 0)
    );
    assert_eq!(
        window_start(at, 900, chrono_tz::Europe::Brussels),
        utc(2026, 12, 3, 14, 15, 0)
    );
    // Nepal is UTC+5:45: its local quarter hours fall on :00 UTC too, its hours on :15.
    assert_eq!(
        window_start(at, 3600, chrono_tz::Asia::Kathmandu),
        utc(2026, 12, 3, 14, 15, 0)
    );
    assert_eq!(
        window_start(utc(2026, 12, 3, 14, 15, 0), 900, chrono_tz::UTC),
        utc(2026, 12, 3, 14, 15, 0)
    );
}

#[test]
fn the_budget_spreads_what_is_left_over_what_is_left() {
    // 20 kW, 2 % margin: 4.9 kWh per quarter hour.
    assert!((allowed_w(20_000.0, 2.0, 900.0, 0.0, 0.0) - 19_600.0).abs() < 1e-6);
    // Half the window at 30 kW (3.75 kWh): 1.15 kWh left for 450 s.
    assert!((allowed_w(20_000.0, 2.0, 900.0, 450.0, 3750.0) - 9200.0).abs() < 1e-6);
    // A quiet first half leaves room above the limit.
    assert!(allowed_w(20_000.0, 2.0, 900.0, 450.0, 500.0) > 20_000.0);
    // Spent: nothing, never negative.
    assert_eq!(allowed_w(20_000.0, 2.0, 900.0, 600.0, 6000.0), 0.0);
}

#[test]
fn finished_windows_and_the_month_peak() {
    let mut m = DemandMeter::new(settings(20.0), chrono_tz::UTC);
    let t0 = utc(2026, 11, 30, 23, 30, 0);
    // 16 kW through one window, 24 kW through the next (December starts at 00:00).
    let mut finished = Vec::new();
    for s in 0..=2700 {
        let p = if s < 900 { 16_000.0 } else { 24_000.0 };
        let st = m.observe(t0 + Duration::seconds(s), Some(p), 0.0);
        finished.extend(st.finished);
    }
    assert_eq!(finished.len(), 3);
    assert!((finished[0].demand_kw - 16.0).abs() < 0.01);
    assert!(!finished[0].exceeded());
    assert!((finished[1].demand_kw - 24.0).abs() < 0.01);
    assert!(finished[1].exceeded());
    let st = m.observe(t0 + Duration::seconds(2701), Some(0.0), 0.0);
    // The second window was November's last; December's peak is the third's.
    assert_eq!(finished[1].start, utc(2026, 11, 30, 23, 45, 0));
    assert!((st.month_peak_kw - 24.0).abs() < 0.01);
    assert_eq!(finished[2].start, utc(2026, 12, 1, 0, 0, 0));
}

#[test]
fn the_building_alone_over_the_target_is_reported() {
    let mut m = DemandMeter::new(settings(20.0), chrono_tz::UTC);
    let t0 = utc(2026, 12, 3, 10, 0, 0);
    let st = m.observe(t0, Some(25_000.0), 22_000.0);
    assert!(st.building_exceeds);
    let st = m.observe(t0 + Duration::seconds(1), Some(25_000.0), 15_000.0);
    assert!(!st.building_exceeds);
    // One second at 25 kW spent: 4.9 kWh − 6.94 Wh over the 899 s left.
    let expected = (4900.0 - 25_000.0 / 3600.0) * 3600.0 / 899.0 / 1000.0;
    assert!((st.allowed_kw - expected).abs() < 1e-9);
}

#[test]
fn a_month_override_applies_to_its_month_only() {
    let mut m = DemandMeter::new(settings(20.0), chrono_tz::UTC);
    m.set_month_limit(Some((2026, 12, 30.0)));
    assert_eq!(m.limit_kw(utc(2026, 12, 31, 23, 0, 0)), 30.0);
    assert_eq!(m.limit_kw(utc(2027, 1, 1, 0, 0, 0)), 20.0);
}

proptest! {
    /// A site that draws what the budget allows (plus a building load it cannot move, up to
    /// the limit) ends every window at or under the limit, whatever the cars' lag.
    #[test]
    fn following_the_budget_keeps_every_window_under_the_limit(
        limit_kw in 5.0f64..200.0,
        building in proptest::collection::vec(0.0f64..1.0, 1..20),
        want in 0.5f64..3.0,
        lag_s in 0usize..6,
        start_s in 0i64..900,
    ) {
        let mut m = DemandMeter::new(settings(limit_kw), chrono_tz::UTC);
        let t0 = utc(2026, 12, 3, 0, 0, 0) + Duration::seconds(start_s);
        let limit_w = limit_kw * 1000.0;
        let mut allowed_hist = vec![limit_w; lag_s + 1];
        let mut p = 0.0;
        for s in 0..3600 {
            let b = building[(s as usize / 180) % building.len()] * limit_w * 0.9;
            let st = m.observe(t0 + Duration::seconds(s), Some(p), b);
            if let Some(w) = st.finished {
                // Lagging cars overshoot for lag_s at most at the full wish: the margin
                // covers what a few seconds can add.
                let slack = want * limit_kw * lag_s as f64 / 900.0;
                prop_assert!(w.demand_kw <= limit_kw + slack + 1e-6,
                    "window {} kW over {} kW", w.demand_kw, limit_kw);
                if lag_s == 0 {
                    prop_assert!(w.demand_kw <= limit_kw + 1e-6);
                }
            }
            allowed_hist.push(st.allowed_kw * 1000.0);
            let followed = allowed_hist[allowed_hist.len() - 1 - lag_s];
            // The chargers take what is allowed beyond the building, up to their wish.
            let chargers = (followed - b).clamp(0.0, want * limit_w);
            p = b + chargers;
        }
    }
}

#[test]
fn the_summary_reads_projection_target_and_peak_and_warns_of_the_building() {
    let mut m = DemandMeter::new(settings(25.0), chrono_tz::UTC);
    let t = utc(2026, 11, 21, 17, 0, 0);
    m.restore_month_peak(t, 23.94);
    m.observe(t, Some(18_200.0), 5_000.0);
    let s = m.observe(t + Duration::seconds(60), Some(18_200.0), 5_000.0);
    assert_eq!(
        s.summary(),
        "18.2 kW projected of 25.0 kW target · month peak 23.9 kW"
    );
    let over = DemandStatus {
        building_exceeds: true,
        ..s
    };
    assert!(over
        .summary()
        .ends_with("month peak 23.9 kW · the building alone is over the target"));
}

#[test]
fn untrusted_windows_roll_over_but_are_never_closed_as_billing_windows() {
    let mut m = DemandMeter::new(settings(20.0), chrono_tz::UTC);
    m.set_provisional(true);
    let t0 = utc(2025, 3, 1, 4, 0, 0);
    for s in 0..=1800 {
        let st = m.observe(t0 + Duration::seconds(s), Some(10_000.0), 0.0);
        assert_eq!(st.finished, None, "closed at {s} s while untrusted");
        assert_eq!(st.month_peak_kw, 0.0);
    }
    // The budget still follows the windows: the third one started with nothing spent.
    let st = m.observe(t0 + Duration::seconds(1801), Some(10_000.0), 0.0);
    assert!(st.energy_wh < 10.0, "{}", st.energy_wh);
}

#[test]
fn a_clock_step_keeps_the_energy_and_aligns_it_to_the_true_window() {
    let mut m = DemandMeter::new(settings(20.0), chrono_tz::UTC);
    m.set_provisional(true);
    let t0 = utc(2025, 3, 1, 4, 0, 0);
    // 5 minutes at 12 kW on the stale time: 1 kWh.
    for s in 0..=300 {
        m.observe(t0 + Duration::seconds(s), Some(12_000.0), 0.0);
    }
    // NTP steps the clock 646 days forward, to 10:07:00 of the true day; it is trusted now.
    let step = Duration::days(646) + Duration::hours(6) + Duration::minutes(2);
    m.clock_stepped(step);
    m.set_provisional(false);
    let t1 = t0 + Duration::seconds(301) + step;
    let st = m.observe(t1, Some(12_000.0), 0.0);
    assert_eq!(st.window_start, utc(2026, 12, 7, 10, 0, 0));
    assert_eq!(st.finished, None, "the stale window is not billed");
    // The 1 kWh so far (and one second more), not 646 days of power.
    assert!((st.energy_wh - 1003.33).abs() < 0.1, "{}", st.energy_wh);
    // From now on windows close as billing windows, on the true time.
    let mut closed = None;
    for s in 1..=600 {
        let st = m.observe(t1 + Duration::seconds(s), Some(12_000.0), 0.0);
        closed = closed.or(st.finished);
    }
    let w = closed.expect("the true window closed");
    assert_eq!(w.start, utc(2026, 12, 7, 10, 0, 0));
    assert_eq!(w.end, utc(2026, 12, 7, 10, 15, 0));
}

#[test]
fn a_step_not_yet_announced_is_not_integrated_as_time() {
    let t0 = utc(2025, 3, 1, 4, 0, 0);
    let step = Duration::days(646) + Duration::hours(6) + Duration::minutes(2);
    // The step comes in the middle of a cycle: the meter sees it before the loop announces
    // it, and then the announcement.
    let mut m = DemandMeter::new(settings(20.0), chrono_tz::UTC);
    for s in 0..=300 {
        let steady = t0 + Duration::seconds(s);
        m.observe_steady(steady, steady, Some(12_000.0), 0.0);
    }
    let steady = t0 + Duration::seconds(301);
    let st = m.observe_steady(steady + step, steady, Some(12_000.0), 0.0);
    assert_eq!(st.finished, None, "the stale window is not closed");
    assert!((st.energy_wh - 1003.33).abs() < 0.1, "{}", st.energy_wh);
    m.clock_stepped(step);
    let steady = t0 + Duration::seconds(302);
    let st = m.observe_steady(steady + step, steady, Some(12_000.0), 0.0);
    assert_eq!(st.window_start, utc(2026, 12, 7, 10, 0, 0));
    assert!((st.energy_wh - 1006.67).abs() < 0.1, "{}", st.energy_wh);
}
