//! The cloud link over MQTT (docs/mqtt.md): the durable outbox published at QoS 1 in seq
//! order with a window in flight, status with a last will, telemetry, and commands.
//!
//! Layout: `options` (settings from the config: broker, credentials, TLS), `link` (the task
//! that owns rumqttc's event loop and reconnects with `backoff`), `task` (the sync itself:
//! what to publish, when to ack), `window` (packet ids to seqs), `command` and `payloads`
//! (the messages, pure).

mod backoff;
mod command;
mod error;
mod link;
mod options;
mod payloads;
mod task;
mod window;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

pub use backoff::{Backoff, BackoffState};
pub use command::{classify, reply_err, reply_ok, Incoming};
pub use error::SyncError;
pub use link::LinkStatus;
pub use options::{
    parse_url, read_password, tls_config, Credentials, Secret, SyncOptions, MAX_WINDOW,
};
pub use payloads::{offline, online, telemetry, TELEMETRY_SCHEMA};
pub use window::{Sent, Window};

use crate::commands::RawCommand;
use crate::store::Store;
use crate::view::SiteState;

/// The running link.
#[derive(Debug)]
pub struct SyncHandle {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    link: JoinHandle<()>,
    status: watch::Receiver<LinkStatus>,
    retry: Arc<Notify>,
    store: Store,
}

impl SyncHandle {
    /// Publishes `{"online":false}` (retained), waits briefly for the broker to take it,
    /// disconnects cleanly (so the last will is not sent) and stops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the MQTT sync task ended abnormally");
        }
        let _ = self.link.await;
    }

    /// Stops at once, as a crash would: no offline status, no clean disconnect (the broker
    /// then publishes the last will), acks not yet written may be lost. Returns once both
    /// tasks are gone (and with them their hold on the store).
    pub async fn abort(self) {
        self.task.abort();
        self.link.abort();
        let _ = self.task.await;
        let _ = self.link.await;
    }

    /// Delivers what waits in the outbox before a store that will not outlive the process is
    /// removed (the demo's): the link reconnects at once instead of at the end of its backoff,
    /// and again whenever it loses the broker, until the outbox is empty or `within` has
    /// passed. Returns the messages still waiting.
    pub async fn deliver_queued(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        let mut status = self.status.clone();
        loop {
            match self.store.oldest() {
                Ok(None) => return 0,
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    return self.store.outbox_len();
                }
            }
            if !status.borrow_and_update().connected {
                self.retry.notify_one();
            }
            // Acks leave the store without a signal of their own: look again shortly.
            let look_again = tokio::time::Instant::now() + Duration::from_millis(100);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return self.store.outbox_len(),
                _ = tokio::time::sleep_until(look_again.min(deadline)) => {}
                _ = status.changed() => {}
            }
        }
    }

    /// The link's state as it changes.
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }
}

/// Starts the link: connects, then publishes the outbox, status and telemetry and relays
/// commands until shut down. Must be called within a tokio runtime.
pub fn spawn(
    opts: SyncOptions,
    store: Store,
    view: watch::Receiver<Arc<SiteState>>,
    outbox_wake: Arc<Notify>,
    commands: mpsc::Sender<RawCommand>,
) -> SyncHandle {
    let (events_tx, events_rx) = mpsc::channel(opts.effective_window() * 2 + 256);
    let (status_tx, status_rx) = watch::channel(LinkStatus::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let retry = Arc::new(Notify::new());
    let link = tokio::spawn(link::run(
        opts.clone(),
        events_tx,
        status_tx,
        stop_rx,
        retry.clone(),
    ));
    let sync = task::Sync::new(opts, store.clone(), view, commands);
    let task = tokio::spawn(sync.run(events_rx, outbox_wake, shutdown_rx, stop_tx));
    SyncHandle {
        shutdown: shutdown_tx,
        task,
        link,
        status: status_rx,
        retry,
        store,
    }
}
