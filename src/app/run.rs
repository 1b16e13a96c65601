//! `evsite run`: the daemon. The site as [`SiteBuilder`] wires it, on the system clock and
//! the configured store; SIGHUP reloads the config ([`super::reload`]); on SIGTERM or Ctrl-C,
//! safe currents, then everything recorded is flushed before exit. systemd hears of it all
//! ([`super::notify`]). The local API ([`crate::api`]) serves the live state beside it.

use std::path::PathBuf;
use std::sync::Arc;

use super::notify::{self, Notifier};
use super::reload::Reloader;
use crate::clock::Clock;
use crate::config::Config;
use crate::modbus::{Links, TcpConnector};
use crate::site::SiteBuilder;
use crate::store::{Store, StoreError};

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
    abort_on_panic();
    let log = super::logging::init_daemon(&cfg.log.level);
    // Caught before anything else: SIGHUP's default action would end the daemon.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(RunError::Signal)?;
    let notifier = Notifier::from_env();
    let cfg = Arc::new(cfg);
    let (store, notes) = open_store(&cfg).await?;
    let links = Links::new(Arc::new(TcpConnector));
    let clock = Clock::system();
    // Asked once before the first cycle, so a synchronised system starts trusted; then until
    // a source vouches (see `clock::trust`).
    if let Some(source) = crate::clock::trust::check(&cfg.clock).await {
        clock.set_trusted(source);
    }
    tokio::spawn(crate::clock::trust::watch(clock.clone(), cfg.clock.clone()));
    let mut builder = SiteBuilder::new(cfg.clone(), clock, links).store(store);
    for note in notes {
        builder = builder.store_recovered(note);
    }
    let (controller, site) = builder.build()?;
    tracing::info!(site = %cfg.site.id, chargers = cfg.chargers.len(), log = ?log.sink(), "evsite started");
    // Held to the end: dropping it stops the server.
    let _api = crate::api::start_logged(cfg.clone(), &site).await;
    let reloader = Reloader::new(
        config_path,
        site.configs.clone(),
        site.control.clone(),
        log,
        notifier,
    );
    tokio::spawn(reloader.serve(hangups));
    tokio::spawn(notify::supervise(
        site.state.clone(),
        notifier,
        cfg.control.interval,
    ));

    let unreached = controller
        .run(async {
            shutdown_signal().await;
            tracing::info!("stopping: chargers to safe current");
            notifier.stopping();
        })
        .await;
    // The controller is gone: its record channel closes, the pipeline takes the last
    // records, and the recorder stores what is left and flushes.
    site.finish().await;
    if unreached.is_empty() {
        tracing::info!("evsite stopped: chargers at safe current, records flushed");
    } else {
        tracing::warn!(
            unreached = %unreached.join(", "),
            "evsite stopped: records flushed; these chargers could not be set to the safe current and fall back on their own"
        );
    }
    Ok(())
}

/// A panic anywhere — the loop, the pipeline, a link task whose panic tokio would otherwise
/// catch and carry on without — ends the daemon at once, in every build as in the release
/// build (`panic = "abort"`): a half-dead daemon is worse than none. The chargers' own
/// fallbacks, written at start, then take over (invariant 3); systemd restarts the daemon,
/// which picks its sessions up from the store.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

/// Opens the database. One that cannot be opened was moved aside by [`Store::open`]; if even
/// a fresh one cannot be made there (disk full, permissions), sessions go to a temporary
/// database so the site stays controlled: control never waits for storage. Returns what
/// had to be done, for `store_recovered` alerts.
async fn open_store(cfg: &Config) -> Result<(Store, Vec<String>), StoreError> {
    let mut notes = Vec::new();
    // Tried in a child process first where the daemon's own executable is at hand: a panic
    // in sled on corrupted files must not end the daemon at every start.
    let opened = match std::env::current_exe() {
        Ok(exe) => Store::open_guarded(&cfg.storage.path, &exe).await,
        Err(e) => {
            tracing::warn!(error = %e, "own executable unknown: database opened without a trial");
            Store::open(&cfg.storage.path)
        }
    };
    let (store, opened) = match opened {
        Ok(s) => s,
        Err(e) => {
            let fallback = std::env::temp_dir().join(format!("evsite-{}", std::process::id()));
            tracing::error!(path = %cfg.storage.path.display(), error = %e, fallback = %fallback.display(), "database unusable: recording to a temporary database");
            notes.push(format!(
                "the database at {} cannot be used ({e}): sessions are recorded in a temporary database at {} until it is fixed",
                cfg.storage.path.display(),
                fallback.display()
            ));
            Store::open(&fallback)?
        }
    };
    if let Some(moved) = &opened.moved_aside {
        tracing::error!(moved_to = %moved.display(), "database unusable: moved aside, a fresh one started");
        notes.push(format!(
            "the database could not be opened; it was moved to {} and a fresh one started",
            moved.display()
        ));
    }
    Ok((store, notes))
}
