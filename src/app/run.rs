//! `evsite run`: the daemon. The control loop, and around it the session tracker fed by every
//! cycle's view and the recorder storing sessions and alerts; SIGHUP reloads the config
//! ([`super::reload`]); on SIGTERM or Ctrl-C, safe currents, then everything recorded is
//! flushed before exit. systemd hears of it all ([`super::notify`]).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, watch, Notify};

use super::notify::{self, Notifier};
use super::recorder::{prune_forever, recover_sessions, Record, Recorder};
use super::reload::Reloader;
use crate::clock::Clock;
use crate::commands::{self, load_overrides, CommandContext};
use crate::config::Config;
use crate::control::runner::Controller;
use crate::control::view::SiteView;
use crate::modbus::{Links, TcpConnector};
use crate::sessions::tracker::{SessionTracker, TrackerOutput};
use crate::store::{Store, StoreError};
use crate::sync;

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Link(#[from] crate::modbus::link::LinkError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot handle SIGHUP: {0}")]
    Signal(std::io::Error),
}

/// Run the controller for `cfg` (read from `config_path`, which SIGHUP reloads) until a
/// shutdown signal. Sets up the daemon's logging.
pub async fn run(cfg: Config, config_path: PathBuf) -> Result<(), RunError> {
    let log = super::logging::init_daemon(&cfg.log.level);
    // Caught before anything else: SIGHUP's default action would end the daemon.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(RunError::Signal)?;
    let notifier = Notifier::from_env();
    let started_at = Utc::now();
    let cfg = Arc::new(cfg);
    let (rec_tx, rec_rx) = mpsc::unbounded_channel();
    let store = open_store(&cfg, &rec_tx)?;
    let mut tracker = SessionTracker::new(&cfg);
    // Nothing read back from the store may keep the site from being controlled: what cannot
    // be read is logged and left in the store for inspection.
    match recover_sessions(&store, &mut tracker, Utc::now()) {
        Ok(closed) => {
            for c in closed {
                let _ = rec_tx.send(Record::Tracker(TrackerOutput::Session(Box::new(c))));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "open sessions could not be read back; they stay as stored")
        }
    }
    let wake = Arc::new(Notify::new());
    let recorder = tokio::spawn(Recorder::new(&cfg, store.clone(), wake.clone()).run(rec_rx));
    let pruner = tokio::spawn(prune_forever(
        store.clone(),
        cfg.storage.retention_days,
        cfg.storage.max_size_mb,
    ));

    let links = Links::new(Arc::new(TcpConnector));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let (controller, view) = Controller::new(cfg.clone(), &links, Clock::system(), events_tx)?;
    // Limits and profiles the cloud set before a restart still hold.
    let control = controller.commands();
    match load_overrides(&store, &cfg, Utc::now()) {
        Ok(cmds) => {
            for c in cmds {
                let _ = control.send(c);
            }
        }
        Err(e) => tracing::error!(error = %e, "stored cloud limits could not be read back"),
    }
    let commands_tx = spawn_command_handler(&cfg, &store, control);
    let forward = {
        let tx = rec_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events_rx.recv().await {
                let _ = tx.send(Record::Control(e));
            }
        })
    };
    // The config in force, for the tasks that follow a reload.
    let (configs, config) = watch::channel(cfg.clone());
    let tracking = tokio::spawn(track(tracker, view.clone(), config, rec_tx));
    let sync = start_sync(&cfg, started_at, &store, &view, wake, commands_tx);
    tracing::info!(site = %cfg.site.id, chargers = cfg.chargers.len(), log = ?log.sink(), "evsite started");
    let reloader = Reloader::new(config_path, configs, controller.commands(), log, notifier);
    tokio::spawn(reloader.serve(hangups));
    tokio::spawn(notify::supervise(view, notifier, cfg.control.interval));

    controller
        .run(async {
            shutdown_signal().await;
            tracing::info!("stopping: chargers to safe current");
            notifier.stopping();
        })
        .await;
    // The controller is gone: its view and event channels close, the tracker sees the last
    // view, and the recorder stores what is left and flushes.
    let _ = tracking.await;
    let _ = forward.await;
    let _ = recorder.await;
    pruner.abort();
    if let Some(sync) = sync {
        sync.shutdown().await;
    }
    tracing::info!("evsite stopped: chargers at safe current, records flushed");
    Ok(())
}

/// Starts the handler of cloud commands for the controller behind `control`; the sync hands
/// it what arrives on `P/cmd/+`.
pub(crate) fn spawn_command_handler(
    cfg: &Arc<Config>,
    store: &Store,
    control: mpsc::UnboundedSender<crate::control::command::ControlCommand>,
) -> mpsc::Sender<crate::commands::RawCommand> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(commands::serve(
        rx,
        CommandContext {
            cfg: cfg.clone(),
            store: store.clone(),
            control,
            clock: Clock::system(),
        },
    ));
    tx
}

/// Starts the cloud link when `[mqtt]` is configured. One that cannot start (a certificate
/// or password file unreadable) is logged; the site runs on and the outbox keeps every
/// message for when the link is fixed.
fn start_sync(
    cfg: &Config,
    started_at: chrono::DateTime<Utc>,
    store: &Store,
    view: &watch::Receiver<Arc<SiteView>>,
    wake: Arc<Notify>,
    commands: mpsc::Sender<crate::commands::RawCommand>,
) -> Option<sync::SyncHandle> {
    cfg.mqtt.as_ref()?;
    match sync::SyncOptions::from_config(cfg, started_at) {
        Ok(opts) => Some(sync::spawn(
            opts,
            store.clone(),
            view.clone(),
            wake,
            commands,
        )),
        Err(e) => {
            tracing::error!(error = %e, "MQTT sync not started: messages wait in the outbox");
            None
        }
    }
}

/// Opens the database. One that cannot be opened was moved aside by [`Store::open`]; if even
/// a fresh one cannot be made there (disk full, permissions), sessions go to a temporary
/// database so the site stays controlled: control never waits for storage.
fn open_store(cfg: &Config, rec: &mpsc::UnboundedSender<Record>) -> Result<Store, StoreError> {
    let (store, opened) = match Store::open(&cfg.storage.path) {
        Ok(s) => s,
        Err(e) => {
            let fallback = std::env::temp_dir().join(format!("evsite-{}", std::process::id()));
            tracing::error!(path = %cfg.storage.path.display(), error = %e, fallback = %fallback.display(), "database unusable: recording to a temporary database");
            let _ = rec.send(Record::StoreRecovered {
                message: format!(
                    "the database at {} cannot be used ({e}): sessions are recorded in a temporary database at {} until it is fixed",
                    cfg.storage.path.display(),
                    fallback.display()
                ),
                at: Utc::now(),
            });
            Store::open(&fallback)?
        }
    };
    if let Some(moved) = &opened.moved_aside {
        tracing::error!(moved_to = %moved.display(), "database unusable: moved aside, a fresh one started");
        let _ = rec.send(Record::StoreRecovered {
            message: format!(
                "the database could not be opened; it was moved to {} and a fresh one started",
                moved.display()
            ),
            at: Utc::now(),
        });
    }
    Ok(store)
}

/// Feeds every cycle's view to the session tracker until the controller stops; a reloaded
/// config brings its tariff to the sessions that start after it.
async fn track(
    mut tracker: SessionTracker,
    mut view: watch::Receiver<Arc<SiteView>>,
    mut config: watch::Receiver<Arc<Config>>,
    tx: mpsc::UnboundedSender<Record>,
) {
    loop {
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() {
                    break;
                }
                let v = view.borrow_and_update().clone();
                for out in tracker.observe(&v) {
                    let _ = tx.send(Record::Tracker(out));
                }
            }
            Ok(()) = config.changed() => {
                let cfg = config.borrow_and_update().clone();
                tracker.reconfigure(&cfg);
            }
        }
    }
}
