//! Torture by kill -9: the real daemon against a served site where cars keep arriving and
//! leaving, killed with SIGKILL at random points (mid-cycle, mid-flush, mid-publish),
//! restarted at once, again and again, syncing to a real Mosquitto throughout. At the end every
//! vehicle's true energy is compared with the stored and the published sessions: none lost,
//! none duplicated, energy within one register step and a read cycle, every outbox `seq` at the
//! broker once or as a duplicate with the same `msg_id`.
//!
//! `EVSITE_TORTURE_KILLS` sets the number of kills (default 4, as the test command runs it;
//! `scripts/torture-kill.sh N` runs N), `EVSITE_TORTURE_SEED` the random seed (printed).

use crate::support::daemon;
use crate::support::mosquitto;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use evsite::sessions::machine::RecordState;
use evsite::simulator::Scenario;
use evsite::store::{SessionFilter, Store};

use daemon::{until, Daemon, Served};
use mosquitto::{Mosquitto, Msg, Setup, Subscriber};

const CHARGERS: [(&str, &str); 4] = [
    ("cp-1", "1, 2, 3"),
    ("cp-2", "2, 3, 1"),
    ("cp-3", "3, 1, 2"),
    ("cp-4", "1, 2, 3"),
];
/// A daemon lives this long (s) between kills, at random.
const UP_S: (f64, f64) = (0.4, 3.0);
/// A visit lasts this long (s): many kill cycles, so every car is seen by some daemon.
const VISIT_S: (f64, f64) = (14.0, 30.0);
/// Between two cars on one charger (s).
const GAP_S: (f64, f64) = (2.0, 6.0);
/// One read cycle at 11 kW is 3 Wh; a Wh register is exact. What the tracker may be off by.
const TOLERANCE_WH: f64 = 20.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The site: four 16 A chargers with Wh registers and cars back to back on each, for
/// `span_s` seconds of site time (real time: the site is stepped at speed 1).
fn scenario(rng: &mut SmallRng, span_s: f64) -> (Scenario, usize) {
    let mut text = format!(
        "name = \"torture\"\nseed = 7\nduration_s = {}\nstart = \"2026-11-21T17:00:00Z\"\n\
         [site]\nid = \"torture\"\ngrid_limit_a = 63.0\nphases = 3\nvoltage_v = 230.0\n\
         margin_a = 1.0\nfailsafe_current_a = 6.0\n[base_load]\npoints = [[0, 4, 4, 4]]\n\
         [meter]\nmodel = \"eastron-sdm630\"\ntransport = \"rtu\"\n",
        (span_s * 2.0).ceil()
    );
    for (id, phase_map) in CHARGERS {
        text.push_str(&format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"alfen-eve\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [{phase_map}]\nmin_current_a = 6.0\nmax_current_a = 16.0\n"
        ));
    }
    let mut cars = 0;
    for (id, _) in CHARGERS {
        let mut t = rng.gen_range(1.0..4.0);
        loop {
            let depart = t + rng.gen_range(VISIT_S.0..VISIT_S.1);
            if depart > span_s {
                break;
            }
            text.push_str(&format!(
                "[[vehicle]]\ncharger = \"{id}\"\narrive_s = {t:.1}\ndepart_s = {depart:.1}\n\
                 capacity_kwh = 100\nsoc_start = 0.2\nsoc_target = 1.0\nmax_current_a = 16\n\
                 phases = 3\nresponse_delay_s = 1\ntaper_from_soc = 1.0\n"
            ));
            cars += 1;
            t = depart + rng.gen_range(GAP_S.0..GAP_S.1);
        }
    }
    (
        Scenario::parse(&text, "torture site").expect("torture scenario parses"),
        cars,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_is_lost_or_doubled_by_repeated_kill_9() {
    let kills: usize = env_or("EVSITE_TORTURE_KILLS", 4);
    let seed: u64 = env_or("EVSITE_TORTURE_SEED", 20261203);
    println!("torture: {kills} kills, seed {seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    // The kills take about this long; the cars keep coming a little longer.
    let span_s = kills as f64 * (UP_S.0 + UP_S.1) / 2.0 + 35.0;
    let (scenario, cars) = scenario(&mut rng, span_s);

    let broker = Mosquitto::start(Setup {
        persistence: true,
        ..Setup::default()
    })
    .await;
    let topics = ["evsite/torture/sessions", "evsite/torture/alerts"];
    let mut cloud = Subscriber::connect(broker.port(), "torture-cloud", &topics, true).await;
    let served = Served::start(&scenario).await;
    served.add_config(&format!(
        "\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nclient_id = \"evsite-torture\"\n",
        broker.port()
    ));
    let (site, config) = (served.site.clone(), served.config.clone());

    let mut published: Vec<Msg> = Vec::new();
    for i in 0..kills {
        let mut d = Daemon::start(&config);
        d.line_with(&["evsite started"]).await;
        let up = Duration::from_secs_f64(rng.gen_range(UP_S.0..UP_S.1));
        // The kill point is the test's subject, not a synchronisation: anywhere will do.
        published.extend(cloud.collect_until(up, |_| false).await);
        d.signal("-KILL");
        let status = d.exit().await;
        assert!(!status.success(), "kill {i}: the daemon was killed");
    }

    // A last daemon sees the remaining cars out and syncs everything.
    let mut d = Daemon::start(&config);
    d.line_with(&["evsite started"]).await;
    until(&site, "every car has left", |s| s.time_s() > span_s + 2.0).await;
    let dir = served.dir.path().to_path_buf();
    // Every session ended in the store, and the cloud has seen each one's last record.
    let ended = |a: &[Msg], b: &[Msg]| {
        a.iter()
            .chain(b)
            .filter(|m| m.topic.ends_with("/sessions"))
            .map(Msg::json)
            .filter(|v| v["type"] == "session.completed")
            .filter_map(|v| v["data"]["session_id"].as_str().map(str::to_owned))
            .collect::<BTreeSet<String>>()
            .len()
    };
    let rest = cloud
        .collect_until(Duration::from_secs(120), |m| ended(&published, m) >= cars)
        .await;
    published.extend(rest);
    d.signal("-TERM");
    assert!(d.exit().await.success(), "the last daemon stops cleanly");

    // Stored sessions against the vehicles' truth.
    let truth = site.lock().expect("site lock").vehicle_truth();
    let (store, _) = Store::open(dir.join("data")).expect("store opens");
    let sessions = store.sessions(&SessionFilter::default()).expect("sessions");
    // The daemon stamps sessions with the wall clock, the site counts its own seconds: on each
    // charger the n-th vehicle must have the n-th session.
    let mut worst: f64 = 0.0;
    for (id, _) in CHARGERS {
        let mut cars: Vec<_> = truth
            .iter()
            .filter(|v| v.charger == id && v.arrive_s < span_s)
            .collect();
        cars.sort_by(|a, b| a.arrive_s.total_cmp(&b.arrive_s));
        let mut recorded: Vec<_> = sessions.iter().filter(|r| r.charger == id).collect();
        recorded.sort_by_key(|r| r.plugged_in_at);
        assert_eq!(
            recorded.len(),
            cars.len(),
            "{id}: one session per vehicle (none lost, none doubled): {recorded:#?}"
        );
        for (v, r) in cars.iter().zip(&recorded) {
            assert_ne!(r.state, RecordState::Active, "ended: {r:#?}");
            let err = (r.energy_wh as f64 - v.energy_wh).abs();
            worst = worst.max(err);
            assert!(
                err <= TOLERANCE_WH,
                "{id}, the car arriving at {:.1}s: recorded {} Wh, it took {:.1} Wh ({:?})",
                v.arrive_s,
                r.energy_wh,
                v.energy_wh,
                r.stop_reason
            );
        }
    }

    // The broker: every seq, a duplicate only with the same msg_id, and each session's last
    // stored record is what the cloud last heard of it.
    let mut by_seq: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    let mut duplicates = 0;
    for m in &published {
        let v = m.json();
        let seq = v["seq"].as_u64().expect("a seq");
        if let Some(before) = by_seq.get(&seq) {
            assert_eq!(before["msg_id"], v["msg_id"], "seq {seq}: same msg_id");
            duplicates += 1;
        }
        by_seq.insert(seq, v);
    }
    let last = by_seq.keys().last().copied().unwrap_or(0);
    let missing: Vec<u64> = (1..=last).filter(|s| !by_seq.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "seqs missing at the broker: {missing:?}"
    );
    for r in &sessions {
        let completed: Vec<&serde_json::Value> = by_seq
            .values()
            .filter(|v| {
                v["type"] == "session.completed" && v["data"]["session_id"] == *r.session_id
            })
            .collect();
        assert_eq!(completed.len(), 1, "{}: one completion", r.session_id);
        assert_eq!(
            completed[0]["data"]["energy_wh"].as_u64(),
            Some(r.energy_wh),
            "{}: the cloud has the stored energy",
            r.session_id
        );
    }
    println!(
        "torture: {kills} kills survived, {} vehicles, {} sessions checked, {} messages checked \
         ({duplicates} duplicates with their msg_id), worst energy error {worst:.1} Wh",
        cars,
        sessions.len(),
        by_seq.len()
    );
}
