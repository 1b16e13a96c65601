//! Store figures for docs/benchmarks.md: durable session writes per second (each write a
//! session row, one new sample and its outbox message in one transaction, flushed), and disk
//! bytes per session-day of per-minute samples.
//!
//! Run: `cargo bench --bench store` (a plain main that prints its figures).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use evsite::sessions::cost::cost;
use evsite::sessions::energy::Sample;
use evsite::sessions::machine::SessionRecord;
use evsite::sessions::tariff::{parse_amount, TariffSnapshot, TouWindow};
use evsite::store::{OutboxEvent, Store};

/// Timed durable writes.
const WRITES: usize = 2_000;
/// Sessions whose whole day is written minute by minute, as the daemon does.
const LIVE_SESSIONS: usize = 10;
/// Sessions whose day is written in one write: the samples' own footprint.
const BULK_SESSIONS: usize = 50;
const MINUTES_PER_DAY: i64 = 1_440;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn tariff() -> BenchResult<TariffSnapshot> {
    let amount = |s: &str| parse_amount(s).ok_or_else(|| format!("{s:?} is not an amount"));
    let window = |start: &str, end: &str, price: &str| -> BenchResult<TouWindow> {
        Ok(TouWindow::new(
            start.parse().map_err(|()| "bad start")?,
            end.parse().map_err(|()| "bad end")?,
            amount(price)?,
            Vec::new(),
        ))
    };
    Ok(TariffSnapshot {
        currency: "EUR".to_owned(),
        energy_price: amount("0.35")?,
        session_fee: amount("0.50")?,
        idle_fee_per_min: amount("0.10")?,
        idle_grace_min: 30,
        time_fee_per_hour: amount("0")?,
        timezone: chrono_tz::Europe::Berlin,
        windows: vec![
            window("07:00", "09:00", "0.42")?,
            window("17:00", "21:00", "0.45")?,
            window("23:00", "06:00", "0.22")?,
        ],
    })
}

/// A session record as the daemon writes it mid-session: tariff snapshot, cost so far,
/// estimate.
fn record(id: &str, minute: i64, tariff: &TariffSnapshot, samples: &[Sample]) -> SessionRecord {
    let plugged = start();
    let now = plugged + TimeDelta::minutes(minute);
    let energy: f64 = samples.iter().map(|s| s.energy_wh).sum();
    let priced: Vec<(DateTime<Utc>, f64)> = samples
        .iter()
        .map(|s| (s.minute_start, s.energy_wh))
        .collect();
    SessionRecord {
        charging_started_at: Some(plugged + TimeDelta::seconds(20)),
        energy_wh: energy.round() as u64,
        meter_start_wh: Some(4_812_345),
        meter_end_wh: Some(4_812_345 + energy.round() as u64),
        max_power_w: Some(11_040),
        updated_at: Some(now),
        estimated_end_at: Some(now + TimeDelta::minutes(95)),
        cost: cost(tariff, &priced, plugged, None, now).ok(),
        tariff: Some(tariff.clone()),
        ..SessionRecord::new(id.to_owned(), "cp-07".to_owned(), plugged)
    }
}

fn sample(minute: i64) -> Sample {
    Sample {
        minute_start: start() + TimeDelta::minutes(minute),
        // 11 kW with a little variation, as a register delta gives it.
        energy_wh: 183.0 + (minute % 7) as f64 * 0.5,
    }
}

fn event(r: &SessionRecord, minute: i64) -> BenchResult<OutboxEvent> {
    Ok(OutboxEvent::new(
        "depot-7",
        "session.updated",
        start() + TimeDelta::minutes(minute),
        serde_json::to_value(r)?,
    ))
}

/// Size of every file under `dir`.
fn dir_bytes(dir: &Path) -> BenchResult<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn durable_writes(tariff: &TariffSnapshot) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(dir.path().join("db"))?;
    let mut samples = Vec::new();
    let mut latencies = Vec::with_capacity(WRITES);
    let began = Instant::now();
    for i in 0..WRITES as i64 {
        // The record (with its cost) is built outside the timed part: the figure is the store's.
        samples.push(sample(i % MINUTES_PER_DAY));
        let r = record(
            "bench-session",
            i,
            tariff,
            &samples[samples.len().saturating_sub(600)..],
        );
        let ev = event(&r, i)?;
        let t = Instant::now();
        store
            .put_session(&r, &samples[samples.len() - 1..], Some(ev))
            .await?;
        latencies.push(t.elapsed());
    }
    let total: Duration = latencies.iter().sum();
    let wall = began.elapsed();
    latencies.sort_unstable();
    let row_bytes = serde_json::to_vec(&record("bench-session", 0, tariff, &samples[..600]))?.len();
    println!("durable put_session (record + 1 sample + outbox event, flushed), {WRITES} writes:");
    println!(
        "  {:.0} writes/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (record JSON {row_bytes} B; loop wall {:.1} s)",
        WRITES as f64 / total.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 1.0).as_secs_f64() * 1e3,
        wall.as_secs_f64(),
    );
    Ok(())
}

async fn bytes_per_session_day(tariff: &TariffSnapshot) -> BenchResult<()> {
    // As the daemon writes: every minute each session's record, its new sample and a
    // message; each message acked (delivered) as the sync would.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("db");
    let (store, _) = Store::open(&path)?;
    store.flush().await?;
    let empty = dir_bytes(&path)?;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); LIVE_SESSIONS];
    for minute in 0..MINUTES_PER_DAY {
        for (n, s) in samples.iter_mut().enumerate() {
            s.push(sample(minute));
            let id = format!("live-{n}");
            // The cost over the last hours keeps the record the realistic size without
            // pricing a whole day each minute.
            let r = record(&id, minute, tariff, &s[s.len().saturating_sub(120)..]);
            let ev = event(&r, minute)?;
            if let Some(seq) = store.put_session(&r, &s[s.len() - 1..], Some(ev)).await? {
                store.ack(seq).await?;
            }
        }
    }
    store.flush().await?;
    let live = dir_bytes(&path)?;
    let live_sled = store.size_on_disk()?;
    drop(store);
    println!(
        "disk per session-day, written minute by minute ({LIVE_SESSIONS} sessions x {MINUTES_PER_DAY} writes, messages acked):"
    );
    println!(
        "  {:.0} kB per session-day (directory {} kB, empty {} kB; sled size_on_disk {} kB)",
        (live - empty) as f64 / LIVE_SESSIONS as f64 / 1e3,
        live / 1000,
        empty / 1000,
        live_sled / 1000
    );

    // The samples' own footprint: each session's day in one write.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("db");
    let (store, _) = Store::open(&path)?;
    store.flush().await?;
    let empty = dir_bytes(&path)?;
    let day: Vec<Sample> = (0..MINUTES_PER_DAY).map(sample).collect();
    for n in 0..BULK_SESSIONS {
        let r = record(&format!("bulk-{n}"), MINUTES_PER_DAY, tariff, &day);
        store.put_session(&r, &day, None).await?;
    }
    store.flush().await?;
    let bulk = dir_bytes(&path)?;
    println!("disk per session-day, each day in one write ({BULK_SESSIONS} sessions):");
    println!(
        "  {:.0} kB per session-day ({:.1} B per sample; directory {} kB, empty {} kB)",
        (bulk - empty) as f64 / BULK_SESSIONS as f64 / 1e3,
        (bulk - empty) as f64 / (BULK_SESSIONS as f64 * MINUTES_PER_DAY as f64),
        bulk / 1000,
        empty / 1000
    );
    Ok(())
}

fn main() -> BenchResult<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tariff = tariff()?;
    rt.block_on(async {
        durable_writes(&tariff).await?;
        bytes_per_session_day(&tariff).await
    })
}
