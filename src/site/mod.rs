//! One site, wired once: the control loop and the pipeline that follows its cycle records —
//! sessions and alerts ([`pipeline`]), the recorder storing them ([`recorder`]), the cloud
//! commands and the MQTT sync — assembled by [`SiteBuilder`] for the daemon, the demo and
//! the simulator alike. Each takes a clock (the system's, a simulated site's, a paused
//! one) and, where it records, a store.
//!
//! ```text
//! Controller ──CycleRecord (bounded, in order)──▶ stage: Pipeline ──SiteEvent──▶ recorder ──▶ store/outbox ──▶ sync
//!                                                        │                   └──▶ display (demo, scored run)
//!                                                        └──SiteState (watch)──▶ demo, telemetry, watchdog
//! ```

mod cloud;
pub mod pipeline;
pub mod recorder;
mod stage;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::alerts::AlertKind;
use crate::clock::Clock;
use crate::commands::{self, load_overrides, CommandContext, RawCommand};
use crate::config::Config;
use crate::control::command::ControlCommand;
use crate::control::runner::Controller;
use crate::modbus::{LinkError, Links};
use crate::store::Store;
use crate::sync;

use cloud::CloudLink;
pub use cloud::Signal;

pub use crate::view::SiteState;
pub use pipeline::{Pipeline, SiteEvent};

use recorder::{prune_forever, recover_sessions, stored_alerts, Recorder};
use stage::Stage;

/// Cycle records the pipeline may fall behind by before the loop drops them: ten minutes at
/// the default interval. The pipeline is in-memory work; only a wedged task gets there.
pub const RECORD_QUEUE: usize = 600;

/// Assembles a site. See the module docs.
pub struct SiteBuilder {
    cfg: Arc<Config>,
    clock: Clock,
    links: Links,
    store: Option<Store>,
    store_notes: Vec<String>,
    history_wh: Vec<u64>,
    display: bool,
    live: bool,
    started_at: DateTime<Utc>,
}

/// A built site, without its controller (which the caller runs).
pub struct Site {
    /// The live view, updated after every cycle.
    pub state: watch::Receiver<Arc<SiteState>>,
    /// Every event, for a display (only with [`SiteBuilder::display`]).
    pub events: Option<mpsc::UnboundedReceiver<SiteEvent>>,
    /// A new config for the tasks that follow a reload (the session tracker's tariff).
    pub configs: watch::Sender<Arc<Config>>,
    /// What the controller is told: limits, profiles, reconfiguration.
    pub control: mpsc::UnboundedSender<ControlCommand>,
    /// Where the site records (None: it keeps nothing).
    pub store: Option<Store>,
    stage: JoinHandle<Pipeline>,
    recorder: Option<JoinHandle<()>>,
    pruner: Option<JoinHandle<()>>,
    sync: Option<CloudLink>,
}

impl SiteBuilder {
    pub fn new(cfg: Arc<Config>, clock: Clock, links: Links) -> Self {
        let started_at = clock.now();
        SiteBuilder {
            cfg,
            clock,
            links,
            store: None,
            store_notes: Vec::new(),
            history_wh: Vec::new(),
            display: false,
            live: true,
            started_at,
        }
    }

    /// Record sessions and alerts in `store` (and, with `[mqtt]`, sync them from its outbox):
    /// open sessions and alerts are picked up, cloud limits re-applied, commands answered.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// The store had to be recovered at start (`store_recovered`): `message` says how.
    pub fn store_recovered(mut self, message: String) -> Self {
        self.store_notes.push(message);
        self
    }

    /// Energies of earlier sessions (Wh), which end-time estimates start from.
    pub fn history(mut self, wh: &[u64]) -> Self {
        self.history_wh = wh.to_vec();
        self
    }

    /// Also hand every event to [`Site::events`].
    pub fn display(mut self) -> Self {
        self.display = true;
        self
    }

    /// Publish only the cycle in the live state, not the sessions and alerts (a scored run
    /// that nobody watches).
    pub fn cycles_only(mut self) -> Self {
        self.live = false;
        self
    }

    /// The `started_at` of `P/status` (default: the clock when the builder was made).
    pub fn started_at(mut self, at: DateTime<Utc>) -> Self {
        self.started_at = at;
        self
    }

    /// Builds the controller and starts the pipeline behind it. Must run inside a tokio
    /// runtime. The caller runs the controller; [`Site::finish`] once it has stopped.
    pub fn build(self) -> Result<(Controller, Site), LinkError> {
        let cfg = self.cfg;
        let mut controller = Controller::new(cfg.clone(), &self.links, self.clock.clone())?;
        let records = controller.subscribe(RECORD_QUEUE);
        let control = controller.commands();
        let (state_tx, state) = watch::channel(Arc::new(SiteState::default()));
        let mut pipeline = Pipeline::new(&cfg);
        pipeline
            .tracker_mut()
            .learn(self.history_wh.iter().copied());
        let mut sinks = Vec::new();
        let mut early = Vec::new();
        let (mut recorder, mut pruner, mut sync) = (None, None, None);
        // Conditions raised from outside the loop (the cloud link's) reach the alert book here.
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let (assign_tx, assignments) = mpsc::unbounded_channel();
        if let Some(store) = &self.store {
            let now = self.clock.now();
            pipeline.restore_alerts(stored_alerts(store));
            // Nothing read back from the store may keep the site from being controlled: what
            // cannot be read is logged and left in the store for inspection.
            match store.sessions(&crate::store::SessionFilter::default()) {
                Ok(mut past) => {
                    past.sort_by_key(|r| r.plugged_in_at);
                    pipeline.anomalies_mut().learn_sessions(&past);
                }
                Err(e) => {
                    tracing::error!(error = %e, "past sessions could not be read; session outliers start from none")
                }
            }
            match recover_sessions(store, pipeline.tracker_mut(), now) {
                Ok(closed) => {
                    early.extend(closed.into_iter().map(|u| SiteEvent::Session(Box::new(u))))
                }
                Err(e) => {
                    tracing::error!(error = %e, "open sessions could not be read back; they stay as stored")
                }
            }
            for note in &self.store_notes {
                early.extend(pipeline.signal(AlertKind::StoreRecovered, None, true, note, now));
            }
            // The month's peak so far is what this month is billed at already.
            if cfg.demand.is_some() {
                match store.month_peak(now, cfg.site.timezone) {
                    Ok(Some(w)) => {
                        let _ = control.send(ControlCommand::RestoreMonthPeak {
                            at: w.start,
                            peak_kw: w.demand_kw,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "stored demand windows could not be read back")
                    }
                }
            }
            // Limits and profiles the cloud set before a restart still hold.
            match load_overrides(store, &cfg, now) {
                Ok(cmds) => {
                    for c in cmds {
                        let _ = control.send(c);
                    }
                }
                Err(e) => tracing::error!(error = %e, "stored cloud limits could not be read back"),
            }
            let wake = Arc::new(Notify::new());
            let (tx, rx) = mpsc::unbounded_channel();
            sinks.push(tx);
            recorder = Some(tokio::spawn(
                Recorder::new(&cfg, store.clone(), wake.clone(), self.clock.clone()).run(rx),
            ));
            pruner = Some(tokio::spawn(prune_forever(
                store.clone(),
                cfg.storage.clone(),
            )));
            // Tokens the cloud accepted before a restart still count while it is offline.
            match store.cached_tokens(now) {
                Ok(cached) if !cached.is_empty() => {
                    let _ = control.send(ControlCommand::RestoreAuthCache(
                        cached.into_iter().map(|(t, c)| (t, c.until)).collect(),
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "the cache of accepted tokens could not be read back")
                }
            }
            let commands =
                spawn_command_handler(&cfg, store, control.clone(), self.clock.clone(), assign_tx);
            let auth = crate::tokens::AuthQueue::default();
            sync = CloudLink::start(cloud::Parts {
                cfg: cfg.clone(),
                started_at: self.started_at,
                store: store.clone(),
                state: state.clone(),
                wake,
                commands,
                signals: signals_tx,
                clock: self.clock.clone(),
                auth: auth.clone(),
            });
            if let Some(link) = &sync {
                controller.connect_cloud_auth(auth, link.status());
            }
        }
        let events = self.display.then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            sinks.push(tx);
            rx
        });
        stage::hand_on(&mut sinks, early);
        let (configs, config) = watch::channel(cfg.clone());
        let stage = tokio::spawn(
            Stage {
                pipeline,
                records,
                sinks,
                state: state_tx,
                live: self.live,
                config,
                signals,
                assignments,
            }
            .run(),
        );
        Ok((
            controller,
            Site {
                state,
                events,
                configs,
                control,
                store: self.store,
                stage,
                recorder,
                pruner,
                sync,
            },
        ))
    }
}

impl Site {
    /// The MQTT link's state as it changes (None without `[mqtt]`).
    pub fn link_status(&self) -> Option<watch::Receiver<sync::LinkStatus>> {
        self.sync.as_ref().map(CloudLink::status)
    }

    /// Once the controller has stopped (its record channel closed): the pipeline takes the
    /// last records, the recorder stores what is left and flushes, the sync says goodbye.
    /// Returns the pipeline, with the sessions still running.
    pub async fn finish(self) -> Option<Pipeline> {
        self.finish_delivering(None).await.0
    }

    /// As [`Site::finish`], and before the sync says goodbye it tries for up to `within` to
    /// deliver everything still in the outbox (for a store removed afterwards, as the
    /// demo's). Returns the messages it could not deliver with the pipeline (0 without a
    /// sync).
    pub async fn finish_delivering(
        self,
        within: Option<std::time::Duration>,
    ) -> (Option<Pipeline>, usize) {
        let pipeline = match self.stage.await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "the session pipeline failed");
                None
            }
        };
        if let Some(r) = self.recorder {
            let _ = r.await;
        }
        if let Some(p) = self.pruner {
            p.abort();
        }
        let mut unsent = 0;
        if let Some(s) = match self.sync {
            Some(link) => link.stop_retrying().await,
            None => None,
        } {
            if let Some(within) = within {
                unsent = s.deliver_queued(within).await;
            }
            s.shutdown().await;
        }
        (pipeline, unsent)
    }
}

/// Starts the handler of cloud commands for the controller behind `control`; the sync hands
/// it what arrives on `P/cmd/+`.
fn spawn_command_handler(
    cfg: &Arc<Config>,
    store: &Store,
    control: mpsc::UnboundedSender<ControlCommand>,
    clock: Clock,
    sessions: mpsc::UnboundedSender<commands::assign::AssignRequest>,
) -> mpsc::Sender<RawCommand> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(commands::serve(
        rx,
        CommandContext {
            cfg: cfg.clone(),
            store: store.clone(),
            control,
            clock,
            sessions: Some(sessions),
        },
    ));
    tx
}
