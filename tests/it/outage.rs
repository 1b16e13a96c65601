//! A long broker outage and a flapping broker while sessions run: the demo site at 60× speed
//! syncs to a real Mosquitto that goes away for 30 simulated minutes, comes back, drops three
//! more times, and is last away until the demo's run is over. Nothing is lost (every `seq`
//! arrives, a duplicate only with its `msg_id`), order is kept (messages first arrive in `seq`
//! order), every session that started is completed at the broker, and the process's memory
//! stays bounded while the backlog builds up on disk.
//!
//! The last return matters: the link is then deep in its backoff (up to a minute, an hour of
//! site time), and the demo's store goes with the demo, so the demo must reconnect at once
//! and deliver its queue before it removes the store.

use crate::support::mosquitto;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mosquitto::{Mosquitto, Msg, Setup, Subscriber};

/// Site seconds per real second.
const SPEED: f64 = 60.0;
/// The demo's run (real seconds).
const RUN_FOR_S: u64 = 85;
/// The broker stays away this long (real time): 30 minutes of site time.
const OUTAGE: Duration = Duration::from_secs(30);
/// Memory the demo may use while the broker is away (it holds a window in flight, not the
/// backlog, which waits in the store).
const RSS_BOUND_KB: u64 = 64 * 1024;

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn sessions(msgs: &[Msg], kind: &str) -> BTreeSet<String> {
    msgs.iter()
        .filter(|m| m.topic.ends_with("/sessions"))
        .map(Msg::json)
        .filter(|v| v["type"] == kind)
        .filter_map(|v| v["data"]["session_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_minute_outage_and_a_flapping_broker_lose_nothing_and_keep_order() {
    let mut broker = Mosquitto::start(Setup {
        persistence: true,
        ..Setup::default()
    })
    .await;
    let topics = ["evsite/+/sessions", "evsite/+/alerts"];
    let mut cloud = Subscriber::connect(broker.port(), "outage-cloud", &topics, true).await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args([
            "demo",
            "--for",
            &RUN_FOR_S.to_string(),
            "--speed",
            &SPEED.to_string(),
            "--mqtt",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("demo starts");
    let run_ends = tokio::time::Instant::now() + Duration::from_secs(RUN_FOR_S);
    let mut stdout = demo.stdout.take().expect("stdout");
    let printed = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
            .await
            .expect("read stdout");
        text
    });
    let pid = demo.id().expect("a pid");

    let mut got = cloud
        .collect_until(Duration::from_secs(60), |m| {
            !sessions(m, "session.started").is_empty()
        })
        .await;
    assert!(
        !sessions(&got, "session.started").is_empty(),
        "a session started before the outage"
    );
    let before = got.len();

    // The outage: sessions go on; the demo's memory is sampled as its backlog grows.
    broker.stop().await;
    let mut peak_kb = 0;
    let outage_end = tokio::time::Instant::now() + OUTAGE;
    while tokio::time::Instant::now() < outage_end {
        if let Some(kb) = rss_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Back: what was queued during the outage arrives while the site runs on (the link's
    // backoff after half a minute of failed attempts is at most 32 s).
    broker.restart().await;
    let seen = got.len();
    got.extend(
        cloud
            .collect_until(Duration::from_secs(40), |m| !m.is_empty())
            .await,
    );
    assert!(
        got.len() > seen,
        "the queue went out once the broker was back"
    );
    // Flapping.
    for _ in 0..3 {
        broker.stop().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        broker.restart().await;
        got.extend(cloud.collect_until(Duration::from_secs(2), |_| false).await);
    }
    // Away until the run is over: only the demo's end-of-run delivery can bring the rest.
    broker.stop().await;
    tokio::time::sleep_until(run_ends + Duration::from_secs(1)).await;
    broker.restart().await;
    let status = tokio::time::timeout(Duration::from_secs(120), demo.wait())
        .await
        .expect("the demo ends")
        .expect("wait");
    assert!(status.success(), "the demo ran to its end");
    let printed = printed.await.expect("stdout read");
    assert!(
        printed.contains("mqtt: every queued message delivered"),
        "the demo's summary: {}",
        printed
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
    got.extend(
        cloud
            .collect_until(Duration::from_secs(30), |m| {
                let all: Vec<Msg> = got.iter().chain(m).cloned().collect();
                sessions(&all, "session.started").is_subset(&sessions(&all, "session.completed"))
            })
            .await,
    );

    let mut by_seq: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    let mut first_arrivals = Vec::new();
    for m in &got {
        let v = m.json();
        let seq = v["seq"].as_u64().expect("a seq");
        match by_seq.get(&seq) {
            Some(b) => assert_eq!(b["msg_id"], v["msg_id"], "seq {seq}: same msg_id"),
            None => first_arrivals.push(seq),
        }
        by_seq.insert(seq, v);
    }
    let last = by_seq.keys().last().copied().expect("messages");
    let missing: Vec<u64> = (1..=last).filter(|s| !by_seq.contains_key(s)).collect();
    assert!(missing.is_empty(), "seqs missing: {missing:?}");
    let mut sorted = first_arrivals.clone();
    sorted.sort_unstable();
    assert_eq!(first_arrivals, sorted, "first arrivals in seq order");
    let started = sessions(&got, "session.started");
    let completed = sessions(&got, "session.completed");
    assert!(
        started.is_subset(&completed),
        "every started session completed at the broker: {:?}",
        started.difference(&completed).collect::<Vec<_>>()
    );
    assert!(
        got.len() > before + 5,
        "messages made during the outage arrived"
    );
    assert!(
        peak_kb > 0 && peak_kb <= RSS_BOUND_KB,
        "memory while the broker was away: {peak_kb} kB"
    );
    println!(
        "outage: {} messages checked ({} after the outage began), {} sessions, peak RSS {} kB",
        by_seq.len(),
        got.len() - before,
        started.len(),
        peak_kb
    );
}
