//! `evsite run`: the daemon — the control loop until SIGTERM or Ctrl-C, then safe currents;
//! SIGHUP reloads the config ([`super::reload`]); systemd hears of it all ([`super::notify`]).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::notify::{self, Notifier};
use super::reload::Reloader;
use crate::clock::Clock;
use crate::config::Config;
use crate::control::runner::Controller;
use crate::modbus::{Links, TcpConnector};

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
    let cfg = Arc::new(cfg);
    let links = Links::new(Arc::new(TcpConnector));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let (controller, view) = Controller::new(cfg.clone(), &links, Clock::system(), events_tx)?;
    tracing::info!(site = %cfg.site.id, chargers = cfg.chargers.len(), log = ?log.sink(), "evsite started");
    // Alerts are logged by the controller; they are stored and synced once those parts run.
    tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
    // The config in force, for the tasks that follow a reload.
    let (configs, _config) = watch::channel(cfg.clone());
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
    tracing::info!("evsite stopped: chargers at safe current");
    Ok(())
}
