//! Draining an outbox backlog to a local mosquitto at QoS 1, beside `mosquitto_pub -q 1 -l`
//! publishing the same payloads in the same run. Goal: evsite within 1.5× of mosquitto_pub,
//! with the process's memory flat during the drain (the backlog is streamed from disk).
//!
//! `cargo bench --bench drain` (release; `DRAIN_N` sets the backlog, default 100,000).

#[path = "../tests/it/support/mosquitto.rs"]
mod mosquitto;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use evsite::sessions::machine::SessionRecord;
use evsite::site::SiteState;
use evsite::store::{OutboxEvent, Store};
use evsite::sync::{self, SyncOptions};
use mosquitto::{Mosquitto, Setup};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const SITE: &str = "bench-site";
/// Lines per mosquitto_pub run (see below).
const PUB_CHUNK: usize = 25_000;

/// A completed session with three cost lines, as the daemon writes it (about 1 KB).
fn record(i: usize) -> BenchResult<SessionRecord> {
    let plugged = Utc::now() - TimeDelta::days(3) + TimeDelta::seconds(i as i64);
    let v = serde_json::json!({
        "session_id": format!("bench-{i:07}"),
        "charger": format!("cp-{:02}", i % 24),
        "state": "completed",
        "plugged_in_at": plugged,
        "charging_started_at": plugged + TimeDelta::seconds(15),
        "charging_completed_at": plugged + TimeDelta::minutes(95),
        "ended_at": plugged + TimeDelta::minutes(120),
        "energy_wh": 17_000 + i % 1000,
        "meter_start_wh": 2_000_000 + i * 20_000,
        "meter_end_wh": 2_017_000 + i * 20_000 + i % 1000,
        "max_power_w": 11_040,
        "stop_reason": "unplugged",
        "energy_source": "register",
        "estimated_end_at": null,
        "cost": {"currency": "EUR", "total": "7.39", "lines": [
            {"kind": "energy", "label": "standard", "quantity": "13.000", "unit": "kWh",
             "unit_price": "0.35", "amount": "4.55"},
            {"kind": "energy", "label": "peak 17:00-21:00", "quantity": "4.000", "unit": "kWh",
             "unit_price": "0.45", "amount": "1.80"},
            {"kind": "idle_fee", "label": "idle after 15 min grace", "quantity": "10",
             "unit": "min", "unit_price": "0.10", "amount": "1.00"}
        ]}
    });
    Ok(serde_json::from_value(v)?)
}

/// Fills the outbox through the store, a thousand sessions per transaction.
async fn fill(store: &Store, n: usize) -> BenchResult<()> {
    let mut start = 0;
    while start < n {
        let end = (start + 1000).min(n);
        let mut items = Vec::with_capacity(end - start);
        for i in start..end {
            let r = record(i)?;
            let data = serde_json::to_value(&r)?;
            items.push((
                r,
                OutboxEvent::new(SITE, "session.completed", Utc::now(), data),
            ));
        }
        store.put_sessions_batch(&items).await?;
        start = end;
    }
    Ok(())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Counts what arrives on `topic` (QoS 1, payloads dropped at once).
async fn counter(
    port: u16,
    id: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
) -> BenchResult<Arc<AtomicU64>> {
    let count = Arc::new(AtomicU64::new(0));
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    // Persistent: a reconnect under the flood resumes the queue instead of dropping it.
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(o, 100);
    // Without TCP_NODELAY each PUBACK waits on Nagle and the broker's delayed ACK: tens of
    // ms per message to a subscriber that acks one by one.
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (ready_tx, mut ready_rx) = mpsc::channel(1);
    let seen = count.clone();
    let topic = topic.to_owned();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    eprintln!("counter: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
        .await?
        .ok_or("counter ended")?;
    Ok(count)
}

async fn wait_count(count: &AtomicU64, n: u64) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while count.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return Err(format!("only {} of {n} arrived", count.load(Ordering::Relaxed)).into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

async fn run() -> BenchResult<()> {
    let n: usize = std::env::var("DRAIN_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(dir.path().join("db"))?;
    let t = Instant::now();
    fill(&store, n).await?;
    println!(
        "filled {n} outbox messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The payloads as published, for mosquitto_pub (one compact JSON per line), in files of
    // PUB_CHUNK lines: mosquitto 2.0.11 drops a `mosquitto_pub -l` connection after about
    // 34,470 messages ("disconnected due to out of memory" in its log, whatever the payload
    // size), so mosquitto_pub runs once per file, one after the other.
    let mut files = Vec::new();
    let mut bytes = 0usize;
    {
        let mut f: Option<std::io::BufWriter<std::fs::File>> = None;
        for (i, entry) in store.outbox_from(1).enumerate() {
            if i % PUB_CHUNK == 0 {
                if let Some(mut done) = f.take() {
                    done.flush()?;
                }
                let path = dir.path().join(format!("payloads-{}.jsonl", files.len()));
                f = Some(std::io::BufWriter::new(std::fs::File::create(&path)?));
                files.push(path);
            }
            let (_, env) = entry?;
            let body = serde_json::to_vec(&env)?;
            bytes += body.len();
            if let Some(f) = f.as_mut() {
                f.write_all(&body)?;
                f.write_all(b"\n")?;
            }
        }
        if let Some(mut done) = f.take() {
            done.flush()?;
        }
    }
    println!("mean payload {} bytes", bytes / n.max(1));

    let broker = Mosquitto::start(Setup::default()).await;
    let topic = format!("evsite/{SITE}/sessions");

    // evsite: spawn the sync on the backlog, time to an empty outbox.
    // Set before the broker goes: the counters' reconnect attempts are no news then.
    let done = Arc::new(AtomicBool::new(false));
    let count = counter(broker.port(), "count-evsite", &topic, done.clone()).await?;
    let rss_before = rss_kib();
    let peak = Arc::new(AtomicU64::new(rss_before));
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let v = rss_kib();
                peak.fetch_max(v, Ordering::Relaxed);
                samples.push(v);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop_rx.changed() => return samples,
                }
            }
        })
    };
    let (_view_tx, view_rx) = watch::channel(Arc::new(SiteState::default()));
    let (cmd_tx, _cmd_rx) = mpsc::channel(1);
    let opts = SyncOptions::plain(SITE, "127.0.0.1", broker.port(), "evsite-bench", Utc::now());
    let window = opts.window;
    let t = Instant::now();
    let handle = sync::spawn(
        opts,
        store.clone(),
        view_rx,
        Arc::new(Notify::new()),
        cmd_tx,
    );
    while store.outbox_len() > 0 {
        if t.elapsed() > Duration::from_secs(600) {
            return Err("the outbox did not drain".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let evsite_acked = t.elapsed();
    eprintln!("evsite drained in {:.2} s", evsite_acked.as_secs_f64());
    wait_count(&count, n as u64).await?;
    let evsite_arrived = t.elapsed();
    let _ = stop_tx.send(true);
    let samples = sampler.await?;
    let connections = handle.status().borrow().connections;
    handle.shutdown().await;
    let first_quarter = samples.len() / 4;
    let early = samples[..first_quarter.max(1)]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    let late = samples[samples.len() - first_quarter.max(1)..]
        .iter()
        .copied()
        .max()
        .unwrap_or(0);

    // mosquitto_pub: the same payloads, QoS 1, one per line.
    let count = counter(broker.port(), "count-pub", &topic, done.clone()).await?;
    let t = Instant::now();
    for file in &files {
        let status = tokio::process::Command::new(mosquitto::binary("mosquitto_pub"))
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args(["-t", &topic, "-q", "1", "-l", "-i", "bench-pub"])
            .stdin(std::fs::File::open(file)?)
            .status()
            .await?;
        if !status.success() {
            return Err(format!("mosquitto_pub failed: {status}").into());
        }
    }
    let pub_done = t.elapsed();
    wait_count(&count, n as u64).await?;
    let pub_arrived = t.elapsed();
    done.store(true, Ordering::Relaxed);

    println!();
    println!("backlog: {n} messages, window {window}, {connections} connection(s)");
    println!(
        "evsite drain:    {:>7.2} s to an empty outbox ({:.0} msg/s), {:.2} s until all arrived",
        evsite_acked.as_secs_f64(),
        n as f64 / evsite_acked.as_secs_f64(),
        evsite_arrived.as_secs_f64()
    );
    println!(
        "mosquitto_pub:   {:>7.2} s to exit of its {} runs ({:.0} msg/s), {:.2} s until all arrived",
        pub_done.as_secs_f64(),
        files.len(),
        n as f64 / pub_done.as_secs_f64(),
        pub_arrived.as_secs_f64()
    );
    println!(
        "ratio evsite / mosquitto_pub: {:.2} (acked), {:.2} (arrived); goal <= 1.5",
        evsite_acked.as_secs_f64() / pub_done.as_secs_f64(),
        evsite_arrived.as_secs_f64() / pub_arrived.as_secs_f64()
    );
    println!(
        "RSS: {} MiB before, peak {} MiB; max in first quarter {} MiB, last quarter {} MiB ({} samples)",
        rss_before / 1024,
        peak.load(Ordering::Relaxed) / 1024,
        early / 1024,
        late / 1024,
        samples.len()
    );
    Ok(())
}

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run()) {
        eprintln!("drain bench failed: {e}");
        std::process::exit(1);
    }
}
