//! `evsite demo --mqtt URL`: the demo site's sessions, alerts, status and telemetry go to a
//! broker exactly as the daemon's would — through a store's outbox, the recorder and the sync
//! — so a cloud consumer can be tried against the demo. The store lives in a temporary
//! directory removed at the end; cloud commands reach the demo's controller.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, watch, Notify};

use super::DemoError;
use crate::app::recorder::{Record, Recorder};
use crate::config::Config;
use crate::control::command::ControlCommand;
use crate::control::view::SiteView;
use crate::store::Store;
use crate::sync::{self, SyncHandle, SyncOptions};

/// The `[mqtt]` section the demo adds to its config for `url`.
pub fn mqtt_section(url: &str) -> String {
    format!(
        "\n[mqtt]\nurl = {}\nclient_id = \"evsite-demo-{}\"\ntelemetry_interval_s = 2\n",
        toml::Value::String(url.to_string()),
        std::process::id()
    )
}

/// The running link; records go in through the sender [`Uplink::start`] returns.
pub struct Uplink {
    recorder: tokio::task::JoinHandle<()>,
    sync: SyncHandle,
    dir: PathBuf,
}

impl Uplink {
    pub fn start(
        cfg: &Arc<Config>,
        view: &watch::Receiver<Arc<SiteView>>,
        control: mpsc::UnboundedSender<ControlCommand>,
    ) -> Result<(Uplink, mpsc::UnboundedSender<Record>), DemoError> {
        let opts = SyncOptions::from_config(cfg, Utc::now())
            .map_err(|e| DemoError::Config(e.to_string()))?;
        let dir = cfg.storage.path.clone();
        let (store, _) = Store::open(&dir).map_err(|e| DemoError::Config(e.to_string()))?;
        let wake = Arc::new(Notify::new());
        let recorder = Recorder::new(cfg, store.clone(), wake.clone());
        let (sink, rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(recorder.run(rx));
        let commands_tx = crate::app::run::spawn_command_handler(cfg, &store, control);
        let sync = sync::spawn(opts, store, view.clone(), wake, commands_tx);
        Ok((
            Uplink {
                recorder,
                sync,
                dir,
            },
            sink,
        ))
    }

    /// Once every record sender is gone: stores what is left, says goodbye to the broker and
    /// removes the temporary store.
    pub async fn finish(self) {
        let _ = self.recorder.await;
        self.sync.shutdown().await;
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "demo store not removed");
        }
    }
}
