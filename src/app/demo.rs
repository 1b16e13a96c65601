//! `evsite demo`: a newcomer's first run, with no config and no hardware. A simulated site
//! (meter and five chargers, cars arriving) is served on loopback — Modbus TCP on 127.0.0.1
//! and RTU on a pseudo-terminal — and the real controller manages it over those links while
//! the terminal shows what it sees and does. The site runs `speed` times faster than real
//! time so cars arrive, charge and complete within a couple of minutes. The site is wired as
//! the daemon's is ([`crate::site::SiteBuilder`]), on the simulated site's clock; sessions
//! and alerts stay in memory unless `--mqtt` gives them a (temporary) store to sync from.
//! The local API and its live page are served as the daemon serves them, on `--api` (or a
//! free port beside it when that one is taken), and the page's URL is printed at start.

mod dilate;
mod ledger;
mod records;
mod render;
mod tally;
mod uplink;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::Config;
use crate::control::record::CycleRecord;
use crate::modbus::{Links, TcpConnector};
use crate::simulator::serve::ServeError;
use crate::simulator::write_config::config_toml;
use crate::simulator::{serve_site, spawn_stepper, Scenario, ScenarioError, SiteError, SiteModel};
use crate::site::{SiteBuilder, SiteEvent, SiteState};
use crate::store::Store;

pub use ledger::ChargerSessions;
pub use render::clock as site_clock;
pub use tally::Tally;

use ledger::{Ledger, Note};

/// The demo site, built into the binary so the demo needs no file.
pub const SCENARIO: &str = include_str!("../simulator/demo.toml");
/// The demo site's tariff, added to the config the demo builds (a scenario carries none): an
/// evening peak window from 17:15 on the site's clock, which starts at 17:00 UTC, and an idle
/// fee after a minute, so a car left plugged in after charging pays for the bay.
pub const TARIFF: &str = r#"
[tariff]
currency = "EUR"
energy_price = "0.28"
idle_fee_per_min = "0.10"
idle_grace_min = 1
timezone = "UTC"

[[tariff.window]]
start = "17:15"
end = "21:00"
energy_price = "0.42"
"#;
/// The demo site's earlier sessions (Wh), which end-time estimates start from as they would
/// on a site that has been running a while: its cars are small and come topped up.
const PAST_SESSIONS_WH: [u64; 5] = [1_800, 2_400, 3_100, 2_000, 2_700];
/// Default site seconds per wall-clock second.
pub const DEFAULT_SPEED: f64 = 30.0;
/// How often plain output prints the site's status.
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// How often the terminal view is redrawn.
const REDRAW_EVERY: Duration = Duration::from_secs(1);
/// How often the site's true grid current is sampled for the peak (the site's own step).
const SAMPLE_EVERY: Duration = crate::simulator::serve::STEP;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--speed must be a positive number, not {0}")]
    Speed(f64),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("demo site: {0}")]
    Site(#[from] SiteError),
    #[error("serving the simulated site: {0}")]
    Serve(#[from] ServeError),
    #[error("config for the demo site: {0}")]
    Config(String),
    #[error("controller: {0}")]
    Link(#[from] crate::modbus::LinkError),
    #[error("controller task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("local API: {0}")]
    Api(#[from] crate::api::StartError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// End after this long (None: until Ctrl-C or SIGTERM).
    pub run_for: Option<Duration>,
    pub speed: f64,
    /// Print plain status lines instead of redrawing a terminal view.
    pub plain: bool,
    /// Also publish to this broker (`mqtt://` or `mqtts://`), as the daemon would.
    pub mqtt: Option<String>,
    /// Where the live page and the local API listen; a taken port falls back to a free one.
    pub api: SocketAddr,
}

impl Options {
    /// Plain output exactly when stdout is not a terminal.
    pub fn new(run_for: Option<Duration>, speed: f64) -> Self {
        Options {
            run_for,
            speed,
            plain: !std::io::stdout().is_terminal(),
            mqtt: None,
            api: SocketAddr::from(([127, 0, 0, 1], 8787)),
        }
    }
}

/// What the demo did, printed at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub elapsed_s: f64,
    pub site_s: f64,
    pub limit_a: f64,
    pub tally: Tally,
    /// Per charger: its sessions' count, energy and cost (the running ones as they stood).
    pub sessions: Vec<(String, ChargerSessions)>,
    pub currency: Option<String>,
    /// With `--mqtt`: the messages the broker never took before the demo's store was removed.
    pub unsent: Option<usize>,
}

/// How long the demo, at its end, keeps trying to hand the broker what it queued.
const DELIVER_WITHIN: Duration = Duration::from_secs(20);

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "summary after {:.1} s ({} of site time):",
            self.elapsed_s,
            site_clock(self.site_s)
        )?;
        let currency = self.currency.as_deref().unwrap_or("");
        let money = |c: Option<rust_decimal::Decimal>| {
            c.map_or_else(|| "-".into(), |c| format!("{c} {currency}"))
        };
        let delivered = self.tally.delivered_wh();
        for (id, s) in &self.sessions {
            let wh = delivered
                .iter()
                .find(|(d, _)| d == id)
                .map_or(0.0, |(_, wh)| *wh);
            writeln!(
                f,
                "  {id:<8} delivered {:.3} kWh  sessions={} completed={} session_energy={}Wh cost={}",
                wh / 1000.0,
                s.started,
                s.completed,
                s.energy_wh,
                money(s.cost)
            )?;
        }
        let total = |g: fn(&ChargerSessions) -> usize| {
            self.sessions.iter().map(|(_, s)| g(s)).sum::<usize>()
        };
        writeln!(
            f,
            "sessions: {} started, {} completed, {:.3} kWh, cost {}",
            total(|s| s.started),
            total(|s| s.completed),
            self.sessions.iter().map(|(_, s)| s.energy_wh).sum::<u64>() as f64 / 1000.0,
            money(
                self.sessions
                    .iter()
                    .filter_map(|(_, s)| s.cost)
                    .reduce(|a, b| a + b)
            )
        )?;
        let peak = self.tally.peak_a();
        writeln!(
            f,
            "peak grid current {peak:.1} A on L{}, limit {} A: {}",
            self.tally.peak_phase(),
            self.limit_a,
            if peak <= self.limit_a {
                "never exceeded"
            } else {
                "EXCEEDED"
            }
        )?;
        match self.unsent {
            None => Ok(()),
            Some(0) => writeln!(f, "mqtt: every queued message delivered"),
            Some(n) => writeln!(
                f,
                "mqtt: {n} queued messages NOT delivered: the broker did not take them within {} s",
                DELIVER_WITHIN.as_secs()
            ),
        }
    }
}

/// `--for` as a duration.
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Write to stdout, ignoring failures: a closed terminal must not stop the demo before the
/// controller has set the chargers to their safe current.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Run the demo until `opts.run_for` has passed or a shutdown signal, then print a summary.
pub async fn run(opts: Options) -> Result<Summary, DemoError> {
    if !(opts.speed > 0.0 && opts.speed.is_finite()) {
        return Err(DemoError::Speed(opts.speed));
    }
    let scenario = Scenario::parse(SCENARIO, "demo scenario")?;
    let names: Vec<&str> = scenario.chargers.iter().map(|c| c.model.as_str()).collect();
    let dilated = dilate::dilated_models(&names, opts.speed);
    let resolve = |name: &str| {
        dilated
            .iter()
            .copied()
            .find(|m| m.name == name)
            .or_else(|| crate::devices::registry::find(name))
    };
    let model = SiteModel::new(&scenario, &resolve)?;
    let site = model.into_shared();
    let served = serve_site(site.clone()).await?;
    // Only `--mqtt` opens a store (the outbox), here, and removes it at the end.
    let data_dir = std::env::temp_dir().join(format!("evsite-demo-{}", std::process::id()));
    let (mut text, site_start) = {
        let m = site
            .lock()
            .map_err(|_| DemoError::Config("site model lock poisoned".into()))?;
        let text = config_toml(&m, &served.endpoints, &data_dir)
            .map_err(|e| DemoError::Config(e.to_string()))?;
        (text, m.wall_time())
    };
    text.push_str(TARIFF);
    if let Some(url) = &opts.mqtt {
        text.push_str(&uplink::mqtt_section(url));
    }
    let cfg = crate::config::load_str(&text, "demo site")
        .map_err(|e| DemoError::Config(e.to_string()))?;
    let cfg = Arc::new(cfg);
    let links = Links::new(Arc::new(TcpConnector));
    // One clock for the controller, the sessions and the alerts: the site's own.
    let clock = {
        let site = site.clone();
        Clock::following(Arc::new(move || {
            site.lock().map_or(site_start, |s| s.wall_time())
        }))
    };
    let mut builder = SiteBuilder::new(cfg.clone(), clock, links)
        .history(&PAST_SESSIONS_WH)
        .started_at(Utc::now())
        .display();
    if cfg.mqtt.is_some() {
        let (store, _) =
            Store::open(&cfg.storage.path).map_err(|e| DemoError::Config(e.to_string()))?;
        builder = builder.store(store);
    }
    let (controller, mut built) = builder.build()?;
    let api = start_api(&cfg, &built, opts.api).await?;
    let page = format!("live page: http://{}/", api.addr());
    emit(&format!("{page}\n"));
    let mut events = built.events.take();
    let mut state = built.state.clone();

    let started = Instant::now();
    let deadline = opts.run_for.map(|d| started + d);
    let stop = async move {
        match deadline {
            Some(at) => tokio::select! {
                _ = super::run::shutdown_signal() => {}
                _ = tokio::time::sleep_until(at) => {}
            },
            None => super::run::shutdown_signal().await,
        }
    };
    let mut ctl = tokio::spawn(controller.run(stop));
    // The site's clock starts once the controller has written its first setpoints, so no
    // car finds a charger still at its factory current however slowly the links come up.
    let mut ended = false;
    tokio::select! {
        _ = state.changed() => {}
        r = &mut ctl => { r?; ended = true; }
    }
    let stepper = spawn_stepper(site.clone(), opts.speed);
    let mut screen = Screen {
        opts: &opts,
        page,
        site_id: cfg.site.id.clone(),
        phases: usize::from(cfg.site.phases),
        started,
        tally: Tally::default(),
        ledger: Ledger::new(&cfg),
        site_s: 0.0,
        site_now: site_start,
        state: state.borrow_and_update().clone(),
    };
    if !ended {
        screen
            .watch(&mut ctl, &mut state, &mut events, &site)
            .await?;
    }
    stepper.abort();
    drop(served);
    // The controller has stopped: the pipeline takes its last records and ends, and what it
    // said last still counts.
    if let Some(events) = &mut events {
        while let Some(e) = events.recv().await {
            screen.event(e);
        }
    }
    screen.sync_clock(&site);
    if state.has_changed().unwrap_or(false) {
        let st = state.borrow_and_update().clone();
        screen.state(st);
    }
    screen.finish();
    drop(api);
    let sessions = screen.ledger.per_charger(&screen.state.sessions);
    // The demo's store goes with it: what it queued for the broker is delivered first.
    let unsent = if cfg.mqtt.is_some() {
        let (_, unsent) = built.finish_delivering(Some(DELIVER_WITHIN)).await;
        Some(unsent)
    } else {
        built.finish().await;
        None
    };
    if cfg.mqtt.is_some() {
        if let Err(e) = std::fs::remove_dir_all(&cfg.storage.path) {
            tracing::warn!(dir = %cfg.storage.path.display(), error = %e, "demo store not removed");
        }
    }
    Ok(Summary {
        elapsed_s: started.elapsed().as_secs_f64(),
        site_s: screen.site_s,
        limit_a: cfg.site.grid_limit_a,
        tally: screen.tally,
        sessions,
        currency: screen.ledger.currency().map(str::to_owned),
        unsent,
    })
}

/// The display side of the demo: it follows the site's live state and events until the
/// controller has shut down.
struct Screen<'a> {
    opts: &'a Options,
    /// The live page's line, kept under the terminal view.
    page: String,
    site_id: String,
    phases: usize,
    started: Instant,
    tally: Tally,
    ledger: Ledger,
    site_s: f64,
    /// The site's clock, as the header shows it.
    site_now: DateTime<Utc>,
    /// What the site looked like after its last cycle.
    state: Arc<SiteState>,
}

impl Screen<'_> {
    async fn watch(
        &mut self,
        ctl: &mut tokio::task::JoinHandle<Vec<String>>,
        state: &mut watch::Receiver<Arc<SiteState>>,
        events: &mut Option<mpsc::UnboundedReceiver<SiteEvent>>,
        site: &crate::simulator::SharedSite,
    ) -> Result<(), DemoError> {
        if !self.opts.plain {
            // Hide the cursor and clear the screen once; frames then redraw in place.
            emit("\x1b[?25l\x1b[2J");
        }
        let mut redraw = tokio::time::interval(if self.opts.plain {
            PLAIN_EVERY
        } else {
            REDRAW_EVERY
        });
        let mut sample = tokio::time::interval(SAMPLE_EVERY);
        let mut states_open = true;
        loop {
            tokio::select! {
                r = &mut *ctl => {
                    r?;
                    break;
                }
                _ = sample.tick() => {
                    if let Ok(s) = site.lock() {
                        self.tally.observe_grid(s.grid_current_a(), self.phases);
                    }
                    self.sync_clock(site);
                }
                r = state.changed(), if states_open => match r {
                    Ok(()) => {
                        let st = state.borrow_and_update().clone();
                        self.sync_clock(site);
                        self.state(st);
                    }
                    Err(_) => states_open = false,
                },
                Some(e) = next_event(events) => self.event(e),
                _ = redraw.tick() => self.draw(),
            }
        }
        Ok(())
    }

    /// Reads the site's clock (it only moves forward).
    fn sync_clock(&mut self, site: &crate::simulator::SharedSite) {
        if let Ok(s) = site.lock() {
            self.site_s = s.time_s();
            self.site_now = s.wall_time();
        }
    }

    fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn cycle(&self) -> Option<&CycleRecord> {
        self.state.cycle.as_deref()
    }

    fn state(&mut self, st: Arc<SiteState>) {
        if let Some(c) = st.cycle.as_deref() {
            self.tally.observe_view(c, self.phases);
        }
        self.state = st;
    }

    /// Plain output tells sessions starting and ending and alert changes as they happen; the
    /// terminal view shows them at its next redraw.
    fn event(&mut self, e: SiteEvent) {
        let Some(note) = self.ledger.event(e) else {
            return;
        };
        if !self.opts.plain {
            return;
        }
        let line = match &note {
            Note::SessionStarted(r) => records::started_line(r),
            Note::SessionEnded(r) => records::ended_line(r),
            Note::Alert(c) => records::alert_line(c),
        };
        emit(&format!("{:6.1}s {line}\n", self.elapsed_s()));
    }

    /// The running sessions as they stand at the end, then the terminal restored.
    fn finish(&self) {
        if self.opts.plain {
            emit(&self.running_lines());
        } else {
            self.draw();
            // Show the cursor again and leave the last frame on screen.
            emit("\x1b[?25h\n");
        }
    }

    fn running_lines(&self) -> String {
        let Some(v) = self.cycle() else {
            return String::new();
        };
        let t = self.elapsed_s();
        self.state
            .sessions
            .iter()
            .map(|r| format!("{t:6.1}s {}\n", records::running_line(r, v)))
            .collect()
    }

    fn draw(&self) {
        let Some(v) = self.cycle() else {
            return;
        };
        if self.opts.plain {
            let mut text = render::plain_lines(self.elapsed_s(), v).join("\n");
            text.push('\n');
            text.push_str(&self.running_lines());
            emit(&text);
        } else {
            let h = render::Header {
                site_id: &self.site_id,
                speed: self.opts.speed,
                elapsed_s: self.elapsed_s(),
                site_s: self.site_s,
                site_now: self.site_now,
            };
            let ended: Vec<_> = self.ledger.recent_finished().collect();
            let sessions = records::session_rows(&self.state.sessions, &ended, v);
            let alerts = records::alert_rows(self.state.alerts.len(), self.ledger.recent_alerts());
            let frame = render::frame(&h, v, &self.tally, &sessions, &alerts);
            emit(&format!("{frame}{}\x1b[K\n", self.page));
        }
    }
}

/// The local API on `addr`, or on a free port of the same address when that one is taken:
/// a second demo, or a daemon already on the default port, must not stop the demo.
async fn start_api(
    cfg: &Arc<Config>,
    site: &crate::site::Site,
    addr: SocketAddr,
) -> Result<crate::api::ApiServer, DemoError> {
    let ctx = crate::api::ApiContext::for_site(cfg.clone(), site)?;
    match crate::api::start(ctx.clone(), addr).await {
        Err(crate::api::StartError::Bind { source, .. })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            Ok(crate::api::start(ctx, SocketAddr::new(addr.ip(), 0)).await?)
        }
        other => Ok(other?),
    }
}

/// The next event of a display that has them; pending forever once they have ended.
async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<SiteEvent>>) -> Option<SiteEvent> {
    match events {
        Some(rx) => match rx.recv().await {
            Some(e) => Some(e),
            None => {
                *events = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}
