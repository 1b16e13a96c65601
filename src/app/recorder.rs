//! The daemon's ledger: sessions from the tracker and alerts from the controller and the
//! tracker, each stored in one flushed write together with the outbox message announcing it,
//! before anyone is told. Then the sync is woken.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, Notify};

use crate::alerts::{AlertBook, AlertChange, AlertKind, AlertPolicy};
use crate::config::Config;
use crate::control::view::ControlEvent;
use crate::sessions::machine::{RecordState, SessionRecord, StopReason};
use crate::sessions::tracker::{SessionChange, SessionTracker, SessionUpdate, TrackerOutput};
use crate::store::{OutboxEvent, Store, StoreError};

/// What the recorder is handed.
#[derive(Debug)]
pub enum Record {
    Tracker(TrackerOutput),
    Control(ControlEvent),
    /// The database was unusable at start: moved aside, or replaced by a temporary one.
    StoreRecovered {
        message: String,
        at: DateTime<Utc>,
    },
}

/// Stores sessions and alerts; wakes the sync after each outbox write.
pub struct Recorder {
    store: Store,
    site: String,
    /// Without a cloud link there is nobody to announce to: no outbox messages, and
    /// finished sessions count as synced (so retention applies).
    announce: bool,
    wake: Arc<Notify>,
    alerts: AlertBook,
}

impl Recorder {
    pub fn new(cfg: &Config, store: Store, wake: Arc<Notify>) -> Self {
        let mut alerts = AlertBook::new(AlertPolicy::default());
        match store.active_alerts() {
            Ok(active) => alerts.restore(active),
            // They are raised again, under new ids, if their condition still holds.
            Err(e) => tracing::error!(error = %e, "active alerts could not be read back"),
        }
        Recorder {
            store,
            site: cfg.site.id.clone(),
            announce: cfg.mqtt.is_some(),
            wake,
            alerts,
        }
    }

    /// Stores what arrives until every sender is gone, then flushes.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => self.handle(r).await,
                    None => break,
                },
                _ = tick.tick() => {
                    let changes = self.alerts.tick(Utc::now());
                    self.store_alerts(changes).await;
                }
            }
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush at exit failed");
        }
    }

    pub async fn handle(&mut self, r: Record) {
        match r {
            Record::Tracker(TrackerOutput::Session(u)) => self.session(*u).await,
            Record::Tracker(TrackerOutput::Alert(a)) => {
                let kind = AlertKind::from(a.kind);
                let changes =
                    self.alerts
                        .signal(kind, Some(&a.charger), a.raised, &a.message, a.at);
                self.store_alerts(changes).await;
            }
            Record::Control(ControlEvent::Alert {
                kind,
                raised,
                charger,
                message,
                at,
            }) => {
                let changes =
                    self.alerts
                        .signal(kind.into(), charger.as_deref(), raised, &message, at);
                self.store_alerts(changes).await;
            }
            Record::StoreRecovered { message: msg, at } => {
                let changes = self
                    .alerts
                    .signal(AlertKind::StoreRecovered, None, true, &msg, at);
                self.store_alerts(changes).await;
            }
        }
    }

    async fn session(&mut self, u: SessionUpdate) {
        let event = (self.announce && u.publish).then(|| {
            OutboxEvent::new(
                self.site.clone(),
                u.change.message_type(),
                Utc::now(),
                serde_json::to_value(&u.record).unwrap_or_default(),
            )
        });
        let id = u.record.session_id.clone();
        match self
            .store
            .put_session(&u.record, &u.new_samples, event)
            .await
        {
            Ok(_) => {
                if self.announce && u.publish {
                    self.wake.notify_one();
                }
                if !self.announce && u.record.state != RecordState::Active {
                    if let Err(e) = self.store.mark_synced(&id).await {
                        tracing::error!(session = %id, error = %e, "could not mark the session done");
                    }
                }
                if u.change == SessionChange::Started {
                    tracing::info!(
                        session = %id,
                        charger = %u.record.charger,
                        "session started"
                    );
                }
                if u.record.state != RecordState::Active {
                    tracing::info!(
                        session = %id,
                        charger = %u.record.charger,
                        energy_wh = u.record.energy_wh,
                        stop_reason = ?u.record.stop_reason,
                        "session ended"
                    );
                }
            }
            // Nothing else can be done here: the tracker still holds the session, and the
            // next update stores it whole (record and its samples) again.
            Err(e) => tracing::error!(session = %id, error = %e, "session not stored"),
        }
    }

    async fn store_alerts(&mut self, changes: Vec<AlertChange>) {
        for change in changes {
            let (alert, kind) = match &change {
                AlertChange::Raised(a) => (a, "alert.raised"),
                AlertChange::Cleared(a) => (a, "alert.cleared"),
            };
            let event = self.announce.then(|| {
                OutboxEvent::new(
                    self.site.clone(),
                    kind,
                    Utc::now(),
                    serde_json::to_value(alert).unwrap_or_default(),
                )
            });
            match self.store.put_alert(&alert.alert_id, alert, event).await {
                Ok(_) if self.announce => self.wake.notify_one(),
                Ok(_) => {}
                Err(e) => tracing::error!(alert = %alert.alert_id, error = %e, "alert not stored"),
            }
        }
    }
}

/// Hands the tracker the sessions that were active when evsite last stopped. A session on a
/// charger no longer configured is closed as `controller_offline` with what it had; those
/// closings are returned for the recorder to store and announce.
pub fn recover_sessions(
    store: &Store,
    tracker: &mut SessionTracker,
    now: DateTime<Utc>,
) -> Result<Vec<SessionUpdate>, StoreError> {
    let finished: Vec<u64> = store
        .sessions(&Default::default())?
        .into_iter()
        .filter(|r| r.state == RecordState::Completed)
        .map(|r| r.energy_wh)
        .collect();
    tracker.learn(finished.iter().rev().take(50).rev().copied());
    let mut closed = Vec::new();
    for record in store.open_sessions()? {
        let samples = store.samples(&record.session_id)?;
        if tracker.resume(&record, samples, now) {
            tracing::info!(session = %record.session_id, charger = %record.charger, "session picked up after restart");
        } else {
            let record = close_orphan(record);
            tracing::warn!(session = %record.session_id, charger = %record.charger, "session of a charger no longer configured closed");
            closed.push(SessionUpdate {
                change: SessionChange::Completed,
                record,
                new_samples: Vec::new(),
                publish: true,
            });
        }
    }
    Ok(closed)
}

fn close_orphan(mut r: SessionRecord) -> SessionRecord {
    r.state = RecordState::Interrupted;
    r.stop_reason = Some(StopReason::ControllerOffline);
    r.ended_at = Some(r.updated_at.unwrap_or(r.plugged_in_at));
    r
}

/// Prunes old samples hourly, within the configured retention and size cap.
pub async fn prune_forever(store: Store, retention_days: u32, max_size_mb: u64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let retention = TimeDelta::days(i64::from(retention_days));
        match store
            .prune(Utc::now(), retention, max_size_mb.saturating_mul(1 << 20))
            .await
        {
            Ok(r) if r.expired + r.for_size > 0 => tracing::info!(
                expired = r.expired,
                for_size = r.for_size,
                size_on_disk = r.size_on_disk,
                "old samples pruned"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
    }
}
