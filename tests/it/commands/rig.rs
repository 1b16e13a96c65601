//! A real controller against a simulated site on tokio's paused clock, a real on-disk store,
//! and the command handler serving a channel as the MQTT sync would feed it.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::support::scenario::Head;
use evsite::clock::Clock;
use evsite::commands::{serve, CommandContext, RawCommand};
use evsite::config::Config;
use evsite::control::record::CycleRecord;
use evsite::control::runner::Controller;
use evsite::simulator::{ChargerTruth, Scenario, SharedSite, SiteModel};
use evsite::store::Store;
use evsite_sim::run::{in_memory, InMemory};

pub const GRID_A: f64 = 32.0;
/// Amps of slack for register encodings.
pub const TOL: f64 = 0.05;
const STEP_S: f64 = 0.1;

/// Two 3-phase chargers (6–32 A), each with a car that takes all it is offered.
pub fn scenario() -> Scenario {
    scenario_with_cars(&[("cp-1", 0), ("cp-2", 0)])
}

/// The same two chargers, with a car only at those of `cars`, arriving `arrive_s` in.
pub fn scenario_with_cars(cars: &[(&str, u32)]) -> Scenario {
    let head = Head {
        duration_s: 7200,
        grid_limit_a: GRID_A,
        base_a: [2.0, 2.0, 2.0],
        ..Head::new("commands", 5)
    }
    .toml();
    let mut text = format!(
        r#"{head}# A demand target far above what the grid limit lets the site draw: it never caps here,
# but the demand commands have a section to act on.
[demand]
limit_kw = 1000.0
"#
    );
    for (id, model, map) in [
        ("cp-1", "alfen-eve", "1, 2, 3"),
        ("cp-2", "vestel-evc04", "2, 3, 1"),
    ] {
        text.push_str(&format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [{map}]\nmin_current_a = 6.0\nmax_current_a = 32.0\n"
        ));
        let Some((_, arrive_s)) = cars.iter().find(|(c, _)| *c == id) else {
            continue;
        };
        text.push_str(&format!(
            "[[vehicle]]\ncharger = \"{id}\"\narrive_s = {arrive_s}\ndepart_s = 7200\ncapacity_kwh = 100\n\
             soc_start = 0.1\nsoc_target = 1.0\nmax_current_a = 32\nphases = 3\n\
             response_delay_s = 2\ntaper_from_soc = 1.0\n"
        ));
    }
    Scenario::parse(&text, "commands test").expect("test scenario parses")
}

pub struct Rig {
    pub site: SharedSite,
    pub cfg: Arc<Config>,
    pub ctl: Controller,
    /// The last cycle's record.
    pub view: Option<Arc<CycleRecord>>,
    pub clock: Clock,
    pub store: Store,
    tick: tokio::time::Interval,
    stepped_to: Instant,
}

impl Rig {
    /// A rig whose store lives at `store_dir` (reopened by a restart test).
    pub fn new(sim_dir: &Path, store_dir: &Path) -> Rig {
        Rig::on(scenario(), sim_dir, store_dir)
    }

    /// A rig on scenario `s`.
    pub fn on(s: Scenario, sim_dir: &Path, store_dir: &Path) -> Rig {
        let model = SiteModel::from_registry(&s).expect("site builds");
        let InMemory { site, cfg, links } = in_memory(model, sim_dir).expect("wired");
        let clock = Clock::starting_at(s.start);
        let ctl = Controller::new(cfg.clone(), &links, clock.clone()).expect("controller");
        let (store, _) = Store::open(store_dir).expect("store opens");
        let mut tick = tokio::time::interval(cfg.control.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Rig {
            site,
            cfg,
            ctl,
            view: None,
            clock,
            store,
            tick,
            stepped_to: Instant::now(),
        }
    }

    pub fn context(&self) -> CommandContext {
        CommandContext {
            cfg: self.cfg.clone(),
            store: self.store.clone(),
            control: self.ctl.commands(),
            clock: self.clock.clone(),
            sessions: None,
        }
    }

    /// The handler serving a channel, as the daemon runs it.
    pub fn serve(&self) -> Commands {
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(serve(rx, self.context()));
        Commands { tx, task }
    }

    pub async fn cycles(&mut self, n: usize) {
        for _ in 0..n {
            self.tick.tick().await;
            let now = Instant::now();
            let mut due = now.duration_since(self.stepped_to).as_secs_f64();
            self.stepped_to = now;
            {
                let mut site = self.site.lock().expect("site lock");
                while due > 1e-9 {
                    let dt = due.min(STEP_S);
                    site.step(dt);
                    due -= dt;
                }
            }
            self.view = Some(self.ctl.cycle().await);
        }
    }

    pub fn truth(&self, id: &str) -> ChargerTruth {
        let site = self.site.lock().expect("site lock");
        site.charger_truth()
            .into_iter()
            .find(|t| t.id == id)
            .expect("charger in the site")
    }

    pub fn setpoint(&self, id: &str) -> f64 {
        self.truth(id).setpoint_a.unwrap_or(0.0)
    }

    /// The setpoint the controller's own view reports.
    pub fn view_setpoint(&self, id: &str) -> Option<f64> {
        self.view.as_ref()?.charger(id)?.setpoint_a
    }
}

pub struct Commands {
    tx: mpsc::Sender<RawCommand>,
    pub task: JoinHandle<()>,
}

impl Commands {
    /// Send one command as the sync would, and wait for its reply.
    pub async fn send(&self, name: &str, payload: impl Into<Vec<u8>>) -> Value {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(RawCommand {
                name: name.to_owned(),
                payload: payload.into(),
                reply,
            })
            .await
            .expect("handler running");
        rx.await.expect("a reply to every command")
    }

    pub async fn json(&self, name: &str, body: Value) -> Value {
        self.send(name, body.to_string()).await
    }

    /// Close the channel and wait for the handler to end.
    pub async fn close(self) {
        drop(self.tx);
        self.task.await.expect("handler ends cleanly");
    }
}

pub fn ok(reply: &Value) -> bool {
    reply["ok"] == Value::Bool(true)
}

pub fn error(reply: &Value) -> String {
    reply["error"].as_str().unwrap_or_default().to_owned()
}
