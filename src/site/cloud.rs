//! The cloud link as a site starts it. Keeping the site safe needs no cloud, so a link that
//! cannot start (a password, CA, certificate or key file missing, unreadable or wrong) never
//! stops the site, and is never silent either: `cloud_link_down` is raised with the reason
//! (on the page, in `evsite status`, in `/metrics`), the files are read again every
//! [`RETRY`], and once the link starts the alert clears. Sessions and alerts wait in the
//! outbox meanwhile.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::alerts::AlertKind;
use crate::clock::Clock;
use crate::commands::RawCommand;
use crate::config::Config;
use crate::store::Store;
use crate::sync::{self, LinkStatus, SyncHandle, SyncOptions};
use crate::view::SiteState;

/// How often the link's files are read again while it cannot start.
pub const RETRY: Duration = Duration::from_secs(5);

/// A condition raised or cleared from outside the control loop, for the alert book.
#[derive(Debug, Clone)]
pub struct Signal {
    pub kind: AlertKind,
    pub on: bool,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// What the link needs besides its options.
pub(crate) struct Parts {
    pub cfg: Arc<Config>,
    pub started_at: DateTime<Utc>,
    pub store: Store,
    pub state: watch::Receiver<Arc<SiteState>>,
    pub wake: Arc<Notify>,
    pub commands: mpsc::Sender<RawCommand>,
    pub signals: mpsc::UnboundedSender<Signal>,
    pub clock: Clock,
    /// Authorisation requests from the control loop, for `P/auth/request`.
    pub auth: crate::tokens::AuthQueue,
}

impl Parts {
    fn signal(&self, on: bool, message: String) {
        let _ = self.signals.send(Signal {
            kind: AlertKind::CloudLinkDown,
            on,
            message,
            at: self.clock.now(),
        });
    }

    /// Raises `cloud_link_down` with `message`, clearing one raised with another reason.
    fn replace(&self, message: String) {
        self.signal(false, String::new());
        self.signal(true, message);
    }

    fn spawn(&self, mut opts: SyncOptions) -> SyncHandle {
        opts.auth_requests = Some(self.auth.clone());
        sync::spawn(
            opts,
            self.store.clone(),
            self.state.clone(),
            self.wake.clone(),
            self.commands.clone(),
        )
    }
}

/// The link, running or waiting for its files.
pub(crate) struct CloudLink {
    running: Arc<Mutex<Option<SyncHandle>>>,
    retrier: Option<JoinHandle<()>>,
    status: watch::Receiver<LinkStatus>,
}

impl CloudLink {
    /// Starts the link when `[mqtt]` is configured: at once if its files are right, else
    /// as soon as they are.
    pub(crate) fn start(parts: Parts) -> Option<CloudLink> {
        parts.cfg.mqtt.as_ref()?;
        match SyncOptions::from_config(&parts.cfg, parts.started_at) {
            Ok(opts) => {
                let handle = parts.spawn(opts);
                // A `cloud_link_down` carried over from before a restart is over.
                parts.signal(false, String::new());
                Some(CloudLink {
                    status: handle.status(),
                    running: Arc::new(Mutex::new(Some(handle))),
                    retrier: None,
                })
            }
            Err(e) => {
                let message = down_message(&e);
                tracing::error!(error = %e, retry_s = RETRY.as_secs(), "MQTT link not started: the site runs without it, messages wait in the outbox");
                // One carried over from before a restart may give an older reason.
                parts.replace(message);
                let (status_tx, status) = watch::channel(LinkStatus::default());
                let running = Arc::new(Mutex::new(None));
                let retrier = tokio::spawn(retry(parts, running.clone(), status_tx, e));
                Some(CloudLink {
                    running,
                    retrier: Some(retrier),
                    status,
                })
            }
        }
    }

    /// The link's state as it changes (never connected while it waits for its files).
    pub(crate) fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// Stops waiting for the files; the running link, if it ever started.
    pub(crate) async fn stop_retrying(self) -> Option<SyncHandle> {
        if let Some(r) = self.retrier {
            r.abort();
            let _ = r.await;
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.take()
    }
}

fn down_message(e: &sync::SyncError) -> String {
    format!(
        "the cloud link cannot start: {e}; the site runs without it and messages wait in the outbox (files read again every {} s)",
        RETRY.as_secs()
    )
}

/// Reads the files again every [`RETRY`] until the link starts, then hands its status on.
async fn retry(
    parts: Parts,
    running: Arc<Mutex<Option<SyncHandle>>>,
    status: watch::Sender<LinkStatus>,
    first: sync::SyncError,
) {
    let mut last = first.to_string();
    let opts = loop {
        tokio::time::sleep(RETRY).await;
        match SyncOptions::from_config(&parts.cfg, parts.started_at) {
            Ok(opts) => break opts,
            Err(e) => {
                // A new reason (one file fixed, another still wrong) replaces the alert.
                let now = e.to_string();
                if now != last {
                    tracing::error!(error = %e, "MQTT link still cannot start");
                    parts.replace(down_message(&e));
                    last = now;
                }
            }
        }
    };
    let handle = parts.spawn(opts);
    let mut link = handle.status();
    *running.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    tracing::info!("MQTT link started: its files are readable now");
    parts.signal(false, String::new());
    loop {
        status.send_replace(link.borrow_and_update().clone());
        if link.changed().await.is_err() {
            return;
        }
    }
}
