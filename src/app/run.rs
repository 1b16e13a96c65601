//! `evsite run`: the daemon — the control loop until SIGTERM or Ctrl-C, then safe currents.

use std::sync::Arc;

use tokio::sync::mpsc;

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
}

/// Run the controller for `cfg` until a shutdown signal.
pub async fn run(cfg: Config) -> Result<(), RunError> {
    let cfg = Arc::new(cfg);
    let links = Links::new(Arc::new(TcpConnector));
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let (controller, _view) = Controller::new(cfg.clone(), &links, Clock::system(), events_tx)?;
    tracing::info!(site = %cfg.site.id, chargers = cfg.chargers.len(), "evsite started");
    // Alerts are logged by the controller; they are stored and synced once those parts run.
    tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
    controller.run(shutdown_signal()).await;
    tracing::info!("evsite stopped: chargers at safe current");
    Ok(())
}
