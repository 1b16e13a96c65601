//! Local API figures on loopback, against the simulator in real time: (a) `/api/state`
//! latency with 100 chargers while 50 Server-Sent Events clients follow every cycle, and the
//! control cycle p99 with and without those clients (the API must not slow the loop: goal
//! ratio ≤ 1.1); (b) the resident memory of the real `evsite run` daemon serving the API at
//! 20 chargers (goal ≤ 20 MiB, read from /proc/PID/status).
//!
//! `cargo bench --bench api` (release). Prints the figures; exits non-zero on error. Every
//! loop is bounded; everything is on 127.0.0.1.

#[path = "../tests/it/support/daemon.rs"]
mod daemon;
#[path = "../tests/it/support/http.rs"]
mod http;
#[path = "support/site.rs"]
mod site;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::{Duration, Instant};

use evsite::clock::Clock;
use evsite::modbus::{Links, TcpConnector};
use evsite::simulator::write_config::config_toml;
use evsite::simulator::{serve_site, spawn_stepper, SiteModel};
use evsite::site::SiteBuilder;
use site::{percentile, scenario, BenchResult};

/// Cycles measured in each half (at 200 ms: 30 s each).
const CYCLES: usize = 150;
const WARMUP: u64 = 20;
/// The building's load: flat.
const FLAT_BASE: &str = "[[0, 40, 35, 30]]";
const SSE_CLIENTS: usize = 50;
const INTERVAL_MS: u64 = 200;
/// Modbus timeouts may not exceed the interval.
const TIMEOUT_MS: u64 = 150;

/// The cycle durations the loop reports, by seq, from the site's live state.
#[derive(Default)]
struct Cycles {
    ms: Mutex<Vec<(u64, f64)>>,
}

impl Cycles {
    fn since(&self, seq: u64) -> Vec<f64> {
        let ms = self.ms.lock().map(|m| m.clone()).unwrap_or_default();
        ms.into_iter()
            .filter(|(s, _)| *s > seq)
            .map(|(_, m)| m)
            .collect()
    }
    fn last_seq(&self) -> u64 {
        self.ms
            .lock()
            .ok()
            .and_then(|m| m.last().map(|(s, _)| *s))
            .unwrap_or(0)
    }
}

/// Waits (bounded) until `n` more cycles than `from` were seen; returns their durations.
async fn cycles_after(cycles: &Cycles, from: u64, n: usize) -> BenchResult<Vec<f64>> {
    let deadline = Instant::now() + Duration::from_millis(INTERVAL_MS * n as u64 * 3 + 10_000);
    loop {
        let got = cycles.since(from);
        if got.len() >= n {
            return Ok(got);
        }
        if Instant::now() > deadline {
            return Err(format!("only {} of {n} cycles came", got.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hundred_chargers() -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let s = scenario(100, 800.0, FLAT_BASE)?;
    let site = SiteModel::from_registry(&s)?.into_shared();
    let served = serve_site(site.clone()).await?;
    spawn_stepper(site.clone(), 1.0);
    let text = {
        let model = site.lock().map_err(|_| "site lock poisoned")?;
        config_toml(&model, &served.endpoints, dir.path())?
    };
    // A faster loop than the default 1 s, for enough cycles in a short run.
    let timeout = format!("timeout_ms = {TIMEOUT_MS}\n");
    let mut text = text
        .replace("[meter]\n", &format!("[meter]\n{timeout}"))
        .replace("[[charger]]\n", &format!("[[charger]]\n{timeout}"));
    text.push_str(&format!("\n[control]\ninterval_ms = {INTERVAL_MS}\n"));
    let cfg = Arc::new(evsite::config::load_str(&text, "bench").map_err(|e| e.to_string())?);
    let links = Links::new(Arc::new(TcpConnector));
    let (controller, built) = SiteBuilder::new(cfg.clone(), Clock::system(), links).build()?;
    let ctx = evsite::api::ApiContext::for_site(cfg.clone(), &built)?;
    let api = evsite::api::start(ctx, "127.0.0.1:0".parse()?).await?;
    let addr = api.addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ctl = tokio::spawn(controller.run(async {
        let _ = stop_rx.await;
    }));
    let cycles = Arc::new(Cycles::default());
    {
        let cycles = cycles.clone();
        let mut state = built.state.clone();
        tokio::spawn(async move {
            while state.changed().await.is_ok() {
                let st = state.borrow_and_update().clone();
                if let (Some(c), Ok(mut ms)) = (&st.cycle, cycles.ms.lock()) {
                    ms.push((c.seq, c.cycle_ms));
                }
            }
        });
    }
    cycles_after(&cycles, 0, WARMUP as usize).await?;

    // Without clients.
    let mut alone = cycles_after(&cycles, cycles.last_seq(), CYCLES).await?;

    // With 50 clients following every cycle, and requests for the state one after another.
    let events = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..SSE_CLIENTS {
        let events = events.clone();
        clients.push(tokio::spawn(async move {
            let mut sse = http::Sse::open(addr, "/api/events").await;
            loop {
                sse.next().await;
                events.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let wait = Instant::now() + Duration::from_secs(10);
    while events.load(Ordering::Relaxed) < SSE_CLIENTS as u64 && Instant::now() < wait {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let from = cycles.last_seq();
    let events_from = events.load(Ordering::Relaxed);
    let mut latency = Vec::new();
    let mut body_len = 0;
    while cycles.since(from).len() < CYCLES && latency.len() < 100_000 {
        let t = std::time::Instant::now();
        let r = http::get(addr, "/api/state").await;
        latency.push(t.elapsed().as_secs_f64() * 1000.0);
        if r.status != 200 {
            return Err(format!("/api/state answered {}", r.status).into());
        }
        body_len = r.body.len();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut with = cycles_after(&cycles, from, CYCLES).await?;
    let delivered = events.load(Ordering::Relaxed) - events_from;
    for c in clients {
        c.abort();
    }
    let _ = stop_tx.send(());
    ctl.await?;

    alone.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);
    latency.sort_by(f64::total_cmp);
    let (p99_alone, p99_with) = (percentile(&alone, 0.99), percentile(&with, 0.99));
    println!(
        "/api/state, 100 chargers, {SSE_CLIENTS} SSE clients, {} requests ({} kB each): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latency.len(),
        body_len / 1000,
        percentile(&latency, 0.5),
        percentile(&latency, 0.99),
        latency[latency.len() - 1]
    );
    println!(
        "SSE: {delivered} state events delivered over {} cycles ({:.1} per client per cycle)",
        with.len(),
        delivered as f64 / SSE_CLIENTS as f64 / with.len() as f64
    );
    println!(
        "control cycle ({INTERVAL_MS} ms interval), {CYCLES} cycles each: without clients p50 {:.2} ms p99 {:.2} ms; with {SSE_CLIENTS} SSE clients and /api/state requests p50 {:.2} ms p99 {:.2} ms; p99 ratio {:.2}",
        percentile(&alone, 0.5),
        p99_alone,
        percentile(&with, 0.5),
        p99_with,
        p99_with / p99_alone
    );
    Ok(())
}

/// VmRSS and VmHWM (kB) of process `pid`.
fn rss_kb(pid: u32) -> BenchResult<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> BenchResult<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| format!("no {name}"))?;
        Ok(line.split_whitespace().nth(1).ok_or("no value")?.parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

async fn daemon_rss() -> BenchResult<()> {
    let s = scenario(20, 200.0, FLAT_BASE)?;
    let served = daemon::Served::start(&s).await;
    served.add_config("\n[api]\nlisten = \"127.0.0.1:0\"\n");
    // The daemon as a plain child: its pid for /proc, its log for the API's address.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .arg("run")
        .arg("--config")
        .arg(&served.config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        child.stdout.take().ok_or("no stdout")?,
    ));
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("local API listening") {
                return Some(line);
            }
        }
        None
    })
    .await?
    .ok_or("the daemon ended before its API listened")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr: SocketAddr = daemon::field(&line, "addr").parse()?;
    // Five clients following the events, and the state asked for 20 times a second, for 30 s.
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(tokio::spawn(async move {
            let mut sse = http::Sse::open(addr, "/api/events").await;
            loop {
                sse.next().await;
            }
        }));
    }
    let until = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while Instant::now() < until {
        let r = http::get(addr, "/api/state").await;
        if r.status != 200 {
            return Err(format!("/api/state answered {}", r.status).into());
        }
        let _ = http::get(addr, "/metrics").await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss, hwm) = rss_kb(pid)?;
    for c in clients {
        c.abort();
    }
    println!(
        "daemon RSS, 20 chargers, API serving 5 SSE clients and {n} state + metrics requests over 30 s: VmRSS {:.1} MiB ({rss} kB), VmHWM {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    child.kill().await?;
    Ok(())
}

fn main() -> BenchResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        hundred_chargers().await?;
        daemon_rss().await
    })
}
