//! `evsite demo`: a newcomer's first run, with no config and no hardware. A simulated site
//! (meter and five chargers, cars arriving) is served on loopback — Modbus TCP on 127.0.0.1
//! and RTU on a pseudo-terminal — and the real controller manages it over those links while
//! the terminal shows what it sees and does. The site runs `speed` times faster than real
//! time so cars arrive, charge and complete within a couple of minutes.

mod dilate;
mod render;
mod tally;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::control::runner::Controller;
use crate::control::view::{ControlEvent, SiteView};
use crate::modbus::{Links, TcpConnector};
use crate::simulator::serve::ServeError;
use crate::simulator::write_config::config_toml;
use crate::simulator::{serve_site, spawn_stepper, Scenario, ScenarioError, SiteError, SiteModel};

pub use render::clock as site_clock;
pub use tally::Tally;

/// The demo site, built into the binary so the demo needs no file.
pub const SCENARIO: &str = include_str!("../simulator/demo.toml");
/// Default site seconds per wall-clock second.
pub const DEFAULT_SPEED: f64 = 30.0;
/// How often plain output prints the site's status.
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// How often the terminal view is redrawn.
const REDRAW_EVERY: Duration = Duration::from_secs(1);
/// How often the site's true grid current is sampled for the peak (the site's own step).
const SAMPLE_EVERY: Duration = crate::simulator::serve::STEP;
/// Alerts kept on screen.
const RECENT_ALERTS: usize = 5;

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// End after this long (None: until Ctrl-C or SIGTERM).
    pub run_for: Option<Duration>,
    pub speed: f64,
    /// Print plain status lines instead of redrawing a terminal view.
    pub plain: bool,
}

impl Options {
    /// Plain output exactly when stdout is not a terminal.
    pub fn new(run_for: Option<Duration>, speed: f64) -> Self {
        Options {
            run_for,
            speed,
            plain: !std::io::stdout().is_terminal(),
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
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "summary after {:.1} s ({} of site time):",
            self.elapsed_s,
            site_clock(self.site_s)
        )?;
        for (id, wh) in self.tally.delivered_wh() {
            writeln!(f, "  {id:<8} delivered {:.3} kWh", wh / 1000.0)?;
        }
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
        )
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
    // The store is never opened by the demo; the path only has to be well-formed.
    let data_dir = std::env::temp_dir().join(format!("evsite-demo-{}", std::process::id()));
    let text = {
        let m = site
            .lock()
            .map_err(|_| DemoError::Config("site model lock poisoned".into()))?;
        config_toml(&m, &served.endpoints, &data_dir)
            .map_err(|e| DemoError::Config(e.to_string()))?
    };
    let cfg = crate::config::load_str(&text, "demo site")
        .map_err(|e| DemoError::Config(e.to_string()))?;
    let cfg = Arc::new(cfg);
    let links = Links::new(Arc::new(TcpConnector));
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (controller, mut view_rx) =
        Controller::new(cfg.clone(), &links, Clock::system(), events_tx)?;

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
        _ = view_rx.changed() => {}
        r = &mut ctl => { r?; ended = true; }
    }
    let stepper = spawn_stepper(site.clone(), opts.speed);
    let mut screen = Screen {
        opts: &opts,
        site_id: cfg.site.id.clone(),
        phases: usize::from(cfg.site.phases),
        started,
        tally: Tally::default(),
        alerts: Vec::new(),
        site_s: 0.0,
    };
    if !ended {
        screen.watch(&mut ctl, view_rx, events_rx, &site).await?;
    }
    stepper.abort();
    drop(served);
    if !opts.plain {
        // Show the cursor again and leave the last frame on screen.
        emit("\x1b[?25h\n");
    }
    Ok(Summary {
        elapsed_s: started.elapsed().as_secs_f64(),
        site_s: screen.site_s,
        limit_a: cfg.site.grid_limit_a,
        tally: screen.tally,
    })
}

/// The display side of the demo: it follows the controller's view and events until the
/// controller has shut down.
struct Screen<'a> {
    opts: &'a Options,
    site_id: String,
    phases: usize,
    started: Instant,
    tally: Tally,
    alerts: Vec<String>,
    site_s: f64,
}

impl Screen<'_> {
    async fn watch(
        &mut self,
        ctl: &mut tokio::task::JoinHandle<()>,
        mut view_rx: tokio::sync::watch::Receiver<Arc<SiteView>>,
        mut events_rx: mpsc::UnboundedReceiver<ControlEvent>,
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
        let mut views_open = true;
        let mut events_open = true;
        loop {
            tokio::select! {
                r = &mut *ctl => {
                    r?;
                    break;
                }
                _ = sample.tick() => {
                    if let Ok(s) = site.lock() {
                        self.tally.observe_grid(s.grid_current_a(), self.phases);
                        self.site_s = s.time_s();
                    }
                }
                r = view_rx.changed(), if views_open => match r {
                    Ok(()) => {
                        let v = view_rx.borrow_and_update().clone();
                        self.tally.observe_view(&v, self.phases);
                    }
                    Err(_) => views_open = false,
                },
                ev = events_rx.recv(), if events_open => match ev {
                    Some(ev) => self.alert(ev),
                    None => events_open = false,
                },
                _ = redraw.tick() => {
                    let v = view_rx.borrow().clone();
                    self.draw(&v);
                }
            }
        }
        Ok(())
    }

    fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn alert(&mut self, ev: ControlEvent) {
        let ControlEvent::Alert {
            kind,
            raised,
            charger,
            message,
            ..
        } = ev;
        let t = self.elapsed_s();
        let body = format!(
            "{} {:?}{}: {message}",
            if raised { "RAISED" } else { "cleared" },
            kind,
            charger.map(|c| format!(" {c}")).unwrap_or_default()
        );
        if self.opts.plain {
            emit(&format!("{t:6.1}s alert: {body}\n"));
        }
        let line = format!("{t:.0}s {body}");
        self.alerts.push(line);
        if self.alerts.len() > RECENT_ALERTS {
            self.alerts.remove(0);
        }
    }

    fn draw(&self, v: &SiteView) {
        if self.opts.plain {
            let mut text = render::plain_lines(self.elapsed_s(), v).join("\n");
            text.push('\n');
            emit(&text);
        } else {
            let h = render::Header {
                site_id: &self.site_id,
                speed: self.opts.speed,
                elapsed_s: self.elapsed_s(),
                site_s: self.site_s,
            };
            emit(&render::frame(&h, v, &self.tally, &self.alerts));
        }
    }
}
