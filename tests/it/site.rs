//! The site as one pipeline: the control loop's records reach the sessions and alerts in
//! order, every one of them; the loop never waits for a consumer; and a shutdown says which
//! chargers it could not set to their safe current. Real controller, real simulated site in
//! memory, tokio's paused clock.

use crate::support::scenario;

use scenario::Head;

use evsite::clock::Clock;
use evsite::control::runner::Controller;
use evsite::simulator::{Scenario, SiteModel};
use evsite::site::{SiteBuilder, SiteEvent};
use evsite_sim::run::{in_memory, InMemory};

fn scenario(extra: &str) -> Scenario {
    let chargers: String = ["cp-1", "cp-2"]
        .iter()
        .map(|id| {
            format!(
                "[[charger]]\nid = \"{id}\"\nmodel = \"alfen-eve\"\ntransport = \"tcp\"\n\
                 phases = 3\nphase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 32.0\n"
            )
        })
        .collect();
    let head = Head {
        grid_limit_a: 40.0,
        base_a: [5.0, 5.0, 5.0],
        ..Head::new("site", 5)
    }
    .toml();
    let text = format!(
        r#"{head}
{chargers}
[[vehicle]]
charger = "cp-1"
arrive_s = 0
depart_s = 3600
capacity_kwh = 100
soc_start = 0.1
soc_target = 1.0
max_current_a = 32
phases = 3
response_delay_s = 2
taper_from_soc = 1.0
{extra}
"#
    );
    Scenario::parse(&text, "site test").expect("test scenario parses")
}

#[tokio::test(start_paused = true)]
async fn every_cycle_reaches_the_pipeline_in_order() {
    let s = scenario("");
    let dir = tempfile::tempdir().expect("temp dir");
    let model = SiteModel::from_registry(&s).expect("site");
    let InMemory { site, cfg, links } = in_memory(model, dir.path()).expect("wired");
    let (mut ctl, mut built) = SiteBuilder::new(cfg.clone(), Clock::starting_at(s.start), links)
        .display()
        .build()
        .expect("site builds");
    let mut events = built.events.take().expect("a display gets events");
    ctl.start().await;
    const CYCLES: u64 = 120;
    for _ in 0..CYCLES {
        tokio::time::sleep(cfg.control.interval).await;
        site.lock()
            .expect("site lock")
            .step(cfg.control.interval.as_secs_f64());
        // Back to back, without waiting for the pipeline between cycles.
        ctl.cycle().await;
    }
    let state = built.state.clone();
    drop(ctl);
    let mut started = 0;
    while let Some(e) = events.recv().await {
        if let SiteEvent::Session(u) = e {
            started += usize::from(u.change == evsite::sessions::tracker::SessionChange::Started);
        }
    }
    let pipeline = built.finish().await.expect("the pipeline ends cleanly");
    assert_eq!(
        pipeline.observed(),
        (CYCLES, CYCLES),
        "every record, in order"
    );
    let last = state.borrow().clone();
    assert_eq!(last.cycle.as_ref().map(|c| c.seq), Some(CYCLES));
    assert_eq!(started, 1, "the car on cp-1 started one session");
    assert_eq!(last.sessions.len(), 1, "and it is running at the end");
    assert!(last.sessions[0].energy_wh > 0, "{:?}", last.sessions[0]);
}

#[tokio::test(start_paused = true)]
async fn the_loop_never_waits_for_a_stalled_consumer() {
    let s = scenario("");
    let dir = tempfile::tempdir().expect("temp dir");
    let model = SiteModel::from_registry(&s).expect("site");
    let InMemory { cfg, links, .. } = in_memory(model, dir.path()).expect("wired");
    let mut ctl = Controller::new(cfg.clone(), &links, Clock::starting_at(s.start)).expect("ctl");
    let mut records = ctl.subscribe(3);
    // Nobody reads: the loop goes on regardless.
    for _ in 0..10 {
        ctl.cycle().await;
    }
    let mut seen = Vec::new();
    while let Ok(r) = records.try_recv() {
        seen.push(r.seq);
    }
    assert_eq!(
        seen,
        vec![1, 2, 3],
        "the queue kept what fitted; the rest was dropped"
    );
    // Once the consumer reads again, records flow, and the gap shows in `seq`.
    let next = ctl.cycle().await;
    assert_eq!(next.seq, 11);
    assert_eq!(records.try_recv().map(|r| r.seq).ok(), Some(11));
}

#[tokio::test(start_paused = true)]
async fn shutdown_names_the_chargers_it_could_not_reach() {
    // cp-2 stops answering after a minute and stays silent.
    let s = scenario(
        "[[fault]]\nat_s = 60\nduration_s = 100000\nkind = \"meter_silent\"\ntarget = \"cp-2\"\n",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let model = SiteModel::from_registry(&s).expect("site");
    let InMemory { site, cfg, links } = in_memory(model, dir.path()).expect("wired");
    let mut ctl = Controller::new(cfg.clone(), &links, Clock::starting_at(s.start)).expect("ctl");
    ctl.start().await;
    for _ in 0..90 {
        tokio::time::sleep(cfg.control.interval).await;
        site.lock()
            .expect("site lock")
            .step(cfg.control.interval.as_secs_f64());
        ctl.cycle().await;
    }
    let unreached = ctl.shutdown().await;
    assert_eq!(unreached, vec!["cp-2".to_string()]);
    let truth = site.lock().expect("site lock").charger_truth();
    assert!(
        truth[0].setpoint_a.is_some_and(|a| a <= 6.0 + 0.05),
        "cp-1 at its safe current: {:?}",
        truth[0].setpoint_a
    );
}

/// On time it cannot trust (a controller booted without a real-time clock, before NTP), the
/// loop applies every `[[schedule]]` at its lowest and says so after 5 minutes with
/// `clock_unsynced`; once the time is trusted, schedules follow it again and the alert clears.
#[tokio::test(start_paused = true)]
async fn untrusted_time_applies_schedules_at_their_lowest_and_is_announced() {
    use chrono::Timelike;
    use evsite::alerts::AlertKind;
    use evsite::clock::{TimeSource, TrustSource};
    use evsite::config::{Schedule, ScheduleCap};
    use evsite::control::record::LimitSource;
    use std::sync::Arc;

    let s = scenario("");
    let dir = tempfile::tempdir().expect("temp dir");
    let model = SiteModel::from_registry(&s).expect("site");
    let InMemory { site, cfg, links } = in_memory(model, dir.path()).expect("wired");
    // An evening cap, twelve hours from the scenario's start: not in force on the true time.
    let mut with_schedule = (*cfg).clone();
    let from = ((s.start.hour() + 12) % 24 * 60) as u16;
    with_schedule.schedules.push(Schedule {
        charger: None,
        days: Vec::new(),
        from_min: from,
        to_min: from + 60,
        cap: ScheduleCap::Amps(10.0),
    });
    let cfg = Arc::new(with_schedule);
    let start = tokio::time::Instant::now();
    let t0 = s.start;
    let wall: TimeSource =
        Arc::new(move || t0 + chrono::TimeDelta::from_std(start.elapsed()).unwrap_or_default());
    let clock = Clock::live(wall);
    let mut ctl = Controller::new(cfg.clone(), &links, clock.clone()).expect("ctl");
    ctl.start().await;
    let mut raised = None;
    for i in 0..310u64 {
        tokio::time::sleep(cfg.control.interval).await;
        site.lock()
            .expect("site lock")
            .step(cfg.control.interval.as_secs_f64());
        let r = ctl.cycle().await;
        assert!(!r.clock.trusted);
        assert_eq!(r.limit.source, LimitSource::Schedule, "cycle {i}");
        assert_eq!(r.limit.limit_a, 10.0);
        if r.alerts
            .iter()
            .any(|a| a.kind == AlertKind::ClockUnsynced && a.raised)
        {
            raised.get_or_insert(i);
        }
    }
    let raised = raised.expect("clock_unsynced raised");
    assert!((295..=301).contains(&raised), "raised at cycle {raised}");

    clock.set_trusted(TrustSource::Installer);
    let r = ctl.cycle().await;
    assert!(r.clock.trusted);
    assert_eq!(r.limit.source, LimitSource::Installer, "{:?}", r.limit);
    assert!(r
        .alerts
        .iter()
        .any(|a| a.kind == AlertKind::ClockUnsynced && !a.raised));
}
