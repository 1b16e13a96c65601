//! The site's ledger on disk: every session update and alert change from the pipeline,
//! each stored in one flushed write together with the outbox message announcing it, before
//! anyone is told. Then the sync is woken. The chargers' Modbus counts are added up per
//! hour, for the report's station health; they are not announced.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, Notify};

use super::pipeline::{LinkTally, SiteEvent};
use crate::alerts::{Alert, AlertChange};
use crate::clock::Clock;
use crate::config::Config;
use crate::sessions::machine::{RecordState, SessionRecord, StopReason};
use crate::sessions::tracker::{SessionChange, SessionTracker, SessionUpdate, HISTORY};
use crate::sessions::vehicles::{vehicle_key, Visit};
use crate::store::{LinkHour, OutboxEvent, Store, StoreError};

/// Stores sessions and alerts; wakes the sync after each outbox write.
pub struct Recorder {
    store: Store,
    site: String,
    /// Without a cloud link there is nobody to announce to: no outbox messages, and
    /// finished sessions count as synced (so retention applies).
    announce: bool,
    /// How session messages carry identities (`[auth] publish_identity`).
    publish: crate::tokens::privacy::Publish,
    wake: Arc<Notify>,
    /// Stamps session messages, the one clock alerts are stamped by too.
    clock: Clock,
}

/// How `cfg`'s site publishes identities. A salt that cannot be stored leaves nothing to
/// publish identities with: they are then left out of the messages altogether (logged), never
/// sent plain against the setting.
pub fn publisher(cfg: &Config, store: &Store) -> crate::tokens::privacy::Publish {
    use crate::tokens::privacy::{Publish, PublishIdentity};
    match store.publisher(cfg.auth.publish_identity) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the salt for hashed identities could not be stored: identities are left out of session messages");
            debug_assert_eq!(cfg.auth.publish_identity, PublishIdentity::Hashed);
            Publish::Withheld
        }
    }
}

impl Recorder {
    pub fn new(cfg: &Config, store: Store, wake: Arc<Notify>, clock: Clock) -> Self {
        Recorder {
            publish: publisher(cfg, &store),
            store,
            site: cfg.site.id.clone(),
            announce: cfg.mqtt.is_some(),
            wake,
            clock,
        }
    }

    /// Stores what arrives until every sender is gone, then flushes.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<SiteEvent>) {
        while let Some(e) = rx.recv().await {
            self.handle(e).await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "store flush at exit failed");
        }
    }

    pub async fn handle(&mut self, e: SiteEvent) {
        match e {
            SiteEvent::Session(u) => {
                // A failure is logged there; the tracker's next update stores it whole.
                let _ = self.session(*u).await;
            }
            SiteEvent::Alert(c) => self.alert(c).await,
            SiteEvent::DemandWindow(w) => {
                if let Err(e) = self.store.put_demand_window(&w).await {
                    tracing::error!(error = %e, start = %w.start, "demand window not stored");
                }
            }
            SiteEvent::LinkTally(t) => self.links(t).await,
            SiteEvent::Assigned(a) => self.assigned(*a).await,
        }
    }

    /// Stores an assigned session (see `crate::commands::assign`) and answers its command.
    async fn assigned(&mut self, a: super::pipeline::Assigned) {
        let outcome = match a.update {
            Some(u) => {
                let record = u.record.clone();
                match self.session(u).await {
                    Ok(()) => Ok(record),
                    Err(e) => Err(crate::commands::CommandError::Store(e)),
                }
            }
            None => {
                let out = crate::commands::assign::assign_stored(
                    &self.store,
                    &self.site,
                    self.announce.then_some(&self.publish),
                    self.clock.now(),
                    a.assignment,
                    a.tariff,
                )
                .await;
                if out.is_ok() && self.announce {
                    self.wake.notify_one();
                }
                out
            }
        };
        a.done.send(outcome);
    }

    /// Adds a quarter hour's Modbus counts into the store's hourly rows.
    async fn links(&mut self, t: LinkTally) {
        let counts: Vec<(&str, LinkHour)> = t
            .chargers
            .iter()
            .map(|c| {
                (
                    c.charger.as_str(),
                    LinkHour {
                        requests: c.requests,
                        failed: c.failed,
                    },
                )
            })
            .collect();
        if let Err(e) = self.store.add_link_counts(t.from, &counts).await {
            tracing::error!(from = %t.from, error = %e, "Modbus request counts not stored");
        }
    }

    async fn session(&mut self, u: SessionUpdate) -> Result<(), StoreError> {
        let event = (self.announce && u.publish).then(|| {
            OutboxEvent::new(
                self.site.clone(),
                u.change.message_type(),
                self.clock.now(),
                self.publish.session(&u.record),
            )
        });
        let id = u.record.session_id.clone();
        let put = if u.restamped {
            self.store
                .put_restamped_session(&u.record, &u.new_samples, event)
                .await
        } else {
            self.store
                .put_session(&u.record, &u.new_samples, event)
                .await
        };
        match put {
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
                    let ended_at = u.record.ended_at.unwrap_or(u.record.plugged_in_at);
                    if let Err(e) = self.store.end_plan(&u.record.charger, ended_at).await {
                        tracing::error!(charger = %u.record.charger, error = %e, "the session's commanded plan could not be dropped");
                    }
                }
            }
            // Nothing else can be done here: the tracker still holds the session, and the
            // next update stores it whole (record and its samples) again.
            Err(e) => {
                tracing::error!(session = %id, error = %e, "session not stored");
                return Err(e);
            }
        }
        Ok(())
    }

    async fn alert(&mut self, change: AlertChange) {
        let alert = change.alert();
        let event = if self.announce {
            match alert_message(&self.site, alert) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::error!(alert = %alert.alert_id, error = %e, "alert not announced: it cannot be encoded");
                    None
                }
            }
        } else {
            None
        };
        let announced = event.is_some();
        match self.store.put_alert(&alert.alert_id, alert, event).await {
            Ok(_) if announced => self.wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(alert = %alert.alert_id, error = %e, "alert not stored"),
        }
    }
}

/// The outbox message announcing `alert` in its present state: `alert.raised` at its
/// `raised_at`, `alert.cleared` at its `cleared_at`, the alert itself as `data`.
pub fn alert_message(site: &str, alert: &Alert) -> Result<OutboxEvent, serde_json::Error> {
    Ok(OutboxEvent::new(
        site,
        alert.event_type(),
        alert.event_ts(),
        serde_json::to_value(alert)?,
    ))
}

/// The alerts stored as active, to continue after a restart. They are raised again, under
/// new ids, if they cannot be read and their condition still holds.
pub fn stored_alerts(store: &Store) -> Vec<Alert> {
    store.active_alerts().unwrap_or_else(|e| {
        tracing::error!(error = %e, "active alerts could not be read back");
        Vec::new()
    })
}

/// Hands the tracker the sessions that were active when evsite last stopped. A session on a
/// charger no longer configured is closed as `controller_offline` with what it had; those
/// closings are returned for the recorder to store and announce.
pub fn recover_sessions(
    store: &Store,
    tracker: &mut SessionTracker,
    now: DateTime<Utc>,
) -> Result<Vec<SessionUpdate>, StoreError> {
    tracker.learn(latest_finished_wh(store)?);
    tracker.learn_vehicles(vehicle_visits(store)?);
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
                restamped: false,
            });
        }
    }
    Ok(closed)
}

/// The energy of the latest completed sessions, oldest first: what the end-time estimator
/// learns at start. The store lists sessions by id (random UUIDs), so they are put in the
/// order they ended before the latest are taken.
pub fn latest_finished_wh(store: &Store) -> Result<Vec<u64>, StoreError> {
    let mut finished: Vec<(DateTime<Utc>, u64)> = store
        .sessions(&Default::default())?
        .into_iter()
        .filter(|r| r.state == RecordState::Completed && r.energy_wh > 0)
        .map(|r| (r.ended_at.unwrap_or(r.plugged_in_at), r.energy_wh))
        .collect();
    finished.sort_by_key(|(ended, _)| *ended);
    let skip = finished.len().saturating_sub(HISTORY);
    Ok(finished.into_iter().skip(skip).map(|(_, wh)| wh).collect())
}

/// The completed sessions of known vehicles, oldest first, as `(key, visit)`: what each
/// returning vehicle's end estimate learns at start (the tracker keeps the latest of each).
/// A session whose identity was forgotten or expired names no vehicle and is left out.
pub fn vehicle_visits(store: &Store) -> Result<Vec<(String, Visit)>, StoreError> {
    let mut visits: Vec<(DateTime<Utc>, String, Visit)> = store
        .sessions(&Default::default())?
        .into_iter()
        .filter(|r| r.state == RecordState::Completed && r.energy_wh > 0)
        .filter_map(|r| {
            let key = vehicle_key(r.ev_id.as_deref(), &r.identity, None)?;
            let visit = Visit {
                energy_wh: r.energy_wh as f64,
                stop_a: r.taper_stop_a,
            };
            Some((r.ended_at.unwrap_or(r.plugged_in_at), key, visit))
        })
        .collect();
    visits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(visits.into_iter().map(|(_, k, v)| (k, v)).collect())
}

fn close_orphan(mut r: SessionRecord) -> SessionRecord {
    r.state = RecordState::Interrupted;
    r.stop_reason = Some(StopReason::ControllerOffline);
    r.ended_at = Some(r.updated_at.unwrap_or(r.plugged_in_at));
    r
}

/// Prunes old samples hourly, within the configured retention and size cap, and removes the
/// identities of sessions past the identity retention.
pub async fn prune_forever(store: Store, storage: crate::config::Storage) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let now = Utc::now();
        let identities = TimeDelta::days(i64::from(storage.identity_retention_days));
        match store.expire_identities(now - identities).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "identities past their retention removed"),
            Err(e) => tracing::error!(error = %e, "removing expired identities failed"),
        }
        let retention = TimeDelta::days(i64::from(storage.retention_days));
        match store
            .prune(now, retention, storage.max_size_mb.saturating_mul(1 << 20))
            .await
        {
            Ok(r) if r.expired + r.for_size + r.link_hours > 0 => tracing::info!(
                expired = r.expired,
                for_size = r.for_size,
                link_hours = r.link_hours,
                size_on_disk = r.size_on_disk,
                "old samples pruned"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::plan::Plan;
    use crate::store::commands::{CommandChange, PlanOverride};

    #[tokio::test]
    async fn a_session_that_ends_takes_its_commanded_plan_with_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::open(dir.path()).expect("store opens");
        let cfg = crate::config::load_str(
            include_str!("../../tests/fixtures/config/base.toml"),
            "base",
        )
        .expect("a valid config");
        let charger = cfg.chargers[0].id.clone();
        let t0: DateTime<Utc> = "2026-01-15T17:00:00Z".parse().expect("time");
        let plan = PlanOverride {
            plan: Plan {
                energy_wh: 20_000,
                depart_at: t0 + TimeDelta::hours(12),
            },
            set_at: t0 + TimeDelta::minutes(5),
        };
        let change = CommandChange::Plan {
            charger: charger.clone(),
            plan: Some(plan),
        };
        let ok = serde_json::json!({"ok": true});
        store
            .commit_command("p1", t0, &ok, &change)
            .await
            .expect("stored");
        let mut rec = Recorder::new(
            &cfg,
            store.clone(),
            Arc::new(Notify::new()),
            Clock::system(),
        );
        let mut s = SessionRecord::new("s-1".into(), charger.clone(), t0);
        let update = |s: &SessionRecord| {
            SiteEvent::Session(Box::new(SessionUpdate {
                change: SessionChange::Completed,
                record: s.clone(),
                new_samples: Vec::new(),
                publish: false,
                restamped: false,
            }))
        };
        // A session that ended before the plan was set leaves it for the next one.
        s.state = RecordState::Completed;
        s.ended_at = Some(t0 + TimeDelta::minutes(1));
        rec.handle(update(&s)).await;
        assert_eq!(
            store.plan_overrides().expect("read"),
            vec![(charger.clone(), plan)]
        );
        // The session the plan was set in ends: it goes.
        s.session_id = "s-2".into();
        s.ended_at = Some(t0 + TimeDelta::hours(2));
        rec.handle(update(&s)).await;
        assert!(store.plan_overrides().expect("read").is_empty());
    }

    fn base() -> Config {
        crate::config::load_str(
            include_str!("../../tests/fixtures/config/base.toml"),
            "base",
        )
        .expect("a valid config")
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_message_is_stamped_by_the_site_clock() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::open(dir.path()).expect("store opens");
        let cfg = base();
        assert!(cfg.mqtt.is_some(), "announced only with a cloud link");
        // Months away from the system time, so a stamp from the system clock shows.
        let t0: DateTime<Utc> = "2024-03-01T09:30:00Z".parse().expect("time");
        let clock = Clock::starting_at(t0);
        let mut rec = Recorder::new(&cfg, store.clone(), Arc::new(Notify::new()), clock);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        let record = SessionRecord::new("s-1".into(), cfg.chargers[0].id.clone(), t0);
        rec.handle(SiteEvent::Session(Box::new(SessionUpdate {
            change: SessionChange::Started,
            record,
            new_samples: Vec::new(),
            publish: true,
            restamped: false,
        })))
        .await;
        let (_, message) = store.oldest().expect("read").expect("a message");
        assert_eq!(message.kind, "session.started");
        assert_eq!(message.ts, t0 + TimeDelta::seconds(90));
    }

    #[tokio::test]
    async fn the_estimator_learns_the_latest_sessions_not_the_first_ids() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::open(dir.path()).expect("store opens");
        let cfg = base();
        let t0: DateTime<Utc> = "2026-01-15T17:00:00Z".parse().expect("time");
        // 80 sessions, the later ones with the smaller ids: id order is the reverse of
        // time order, as random UUIDs are to time order in general.
        let n = HISTORY as i64 + 30;
        for i in 0..n {
            let id = format!("{:08x}-0000-4000-8000-000000000000", n - i);
            let mut r = SessionRecord::new(id, cfg.chargers[0].id.clone(), t0);
            r.plugged_in_at = t0 + TimeDelta::hours(i);
            r.ended_at = Some(t0 + TimeDelta::hours(i) + TimeDelta::minutes(50));
            r.state = RecordState::Completed;
            r.energy_wh = 1_000 + i as u64;
            store.put_session(&r, &[], None).await.expect("stored");
        }
        let learned = latest_finished_wh(&store).expect("read");
        let latest: Vec<u64> = (n - HISTORY as i64..n).map(|i| 1_000 + i as u64).collect();
        assert_eq!(learned, latest);
    }

    /// `assign_session` through the pipeline: a running session is changed in the tracker
    /// (and stays assigned), one that ended first is changed as stored; both re-priced by the
    /// group's tariff, stored with their message, and answered once stored.
    #[tokio::test]
    async fn an_assignment_reaches_a_running_and_an_ended_session_in_order() {
        use crate::commands::assign::{AssignRequest, Assignment, Responder};
        use crate::control::record::{ChargerCycle, CycleRecord};
        use crate::devices::model::ChargeState::{self, A, B, C};
        use crate::tokens::{AuthorizedBy, Identity};
        use rust_decimal::Decimal;

        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::open(dir.path()).expect("store opens");
        let text = format!(
            "{}\n[tariff.groups.company]\ncurrency = \"EUR\"\nenergy_price = \"0.20\"\n",
            include_str!("../../tests/fixtures/config/base.toml")
        );
        let cfg = crate::config::load_str(&text, "base").expect("a valid config");
        let charger = cfg.chargers[0].id.clone();
        // A Saturday: the base tariff's weekday window does not apply.
        let t0: DateTime<Utc> = "2026-11-21T09:00:00Z".parse().expect("time");
        let view = |s: i64, state: ChargeState, amps: f64, wh: f64| CycleRecord {
            chargers: vec![ChargerCycle {
                online: true,
                state: Some(state),
                current_a: [Some(amps); 3],
                power_w: Some(amps * 230.0 * 3.0),
                energy_wh: Some(wh),
                setpoint_a: Some(16.0),
                ..ChargerCycle::unread(&charger)
            }],
            ..CycleRecord::blank(t0 + TimeDelta::seconds(s), 63.0)
        };
        let mut pipeline = super::super::Pipeline::new(&cfg);
        let mut rec = Recorder::new(
            &cfg,
            store.clone(),
            Arc::new(Notify::new()),
            Clock::system(),
        );
        let mut wh = 0.0;
        for e in pipeline.observe(&view(0, B, 0.0, wh)) {
            rec.handle(e).await;
        }
        for s in 1..600 {
            wh += 16.0 * 230.0 * 3.0 / 3600.0;
            for e in pipeline.observe(&view(s, C, 16.0, wh)) {
                rec.handle(e).await;
            }
        }
        let id = pipeline.active_sessions()[0].session_id.clone();
        let owner = Identity {
            user: Some("fleet car 7".into()),
            group: Some("company".into()),
            authorized_by: Some(AuthorizedBy::Assigned),
            ..Identity::default()
        };
        let assign = |pipeline: &mut super::super::Pipeline| {
            let (done, answer) = Responder::new();
            let req = AssignRequest {
                assignment: Assignment {
                    session_id: id.clone(),
                    identity: owner.clone(),
                },
                done,
            };
            (pipeline.assign(req, t0 + TimeDelta::seconds(600)), answer)
        };
        let price = |r: &SessionRecord, p: Decimal| {
            (Decimal::from(r.energy_wh) / Decimal::from(1000) * p).round_dp(2)
        };
        let seq_before = store.outbox_len();

        // Running: the tracker's record, stored and announced as an update.
        let (event, answer) = assign(&mut pipeline);
        rec.handle(event).await;
        let running = answer.await.expect("answered").expect("assigned");
        assert_eq!(running.identity, owner);
        assert_eq!(running.state, RecordState::Active);
        let stored = store.session(&id).expect("read").expect("stored");
        assert_eq!(stored.identity, owner);
        let total = stored.cost.as_ref().map(|c| c.total).expect("priced");
        assert_eq!(total, price(&stored, Decimal::new(20, 2)));
        assert_eq!(store.outbox_len(), seq_before + 1);

        // The session goes on assigned, and ends.
        for s in 600..660 {
            wh += 16.0 * 230.0 * 3.0 / 3600.0;
            for e in pipeline.observe(&view(s, C, 16.0, wh)) {
                rec.handle(e).await;
            }
        }
        for e in pipeline.observe(&view(660, A, 0.0, wh)) {
            rec.handle(e).await;
        }
        let ended = store.session(&id).expect("read").expect("stored");
        assert_eq!(ended.state, RecordState::Completed);
        assert_eq!(ended.identity, owner);

        // Named again once ended: the stored record, re-priced from its samples.
        let other = Identity {
            user: Some("visitor".into()),
            ..owner.clone()
        };
        let (done, answer) = Responder::new();
        let event = pipeline.assign(
            AssignRequest {
                assignment: Assignment {
                    session_id: id.clone(),
                    identity: other.clone(),
                },
                done,
            },
            t0 + TimeDelta::seconds(700),
        );
        let SiteEvent::Assigned(a) = &event else {
            panic!("an assignment");
        };
        assert!(a.update.is_none(), "the tracker no longer holds it");
        rec.handle(event).await;
        let r = answer.await.expect("answered").expect("assigned");
        assert_eq!(r.identity, other);
        assert_eq!(r.state, RecordState::Completed);
        assert_eq!(r.energy_wh, ended.energy_wh);
        assert_eq!(r.cost, ended.cost, "the same group, the same price");
        let mut last = None;
        for m in store.outbox_from(0) {
            last = Some(m.expect("read").1);
        }
        let last = last.expect("a message");
        assert_eq!(last.kind, "session.completed");
        assert_eq!(last.data["session_id"], serde_json::json!(id));
        assert_eq!(last.data["user"], "visitor");
        assert_eq!(last.data["authorized_by"], "assigned");

        // An unknown session: refused by the recorder, nothing stored.
        let (done, answer) = Responder::new();
        let event = pipeline.assign(
            AssignRequest {
                assignment: Assignment {
                    session_id: "nobody".into(),
                    identity: other,
                },
                done,
            },
            t0,
        );
        let before = store.outbox_len();
        rec.handle(event).await;
        let refused = answer.await.expect("answered");
        assert!(refused.is_err_and(|e| e.to_string().contains("unknown session")));
        assert_eq!(store.outbox_len(), before);
    }

    /// Restored at start from a real store: the completed sessions of known vehicles, in the
    /// order they ended, with the current each stopped at; a session that names nobody, or
    /// was interrupted, teaches nothing.
    #[tokio::test]
    async fn vehicle_histories_are_read_back_from_the_stored_sessions() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::open(dir.path()).expect("store opens");
        let t0: DateTime<Utc> = "2026-01-15T17:00:00Z".parse().expect("time");
        let mut put = Vec::new();
        for (i, (ev, token, state)) in [
            (Some("EVCC-1"), Some("T-1"), RecordState::Completed),
            (None, Some("T-2"), RecordState::Completed),
            (None, None, RecordState::Completed),
            (None, Some("T-2"), RecordState::Interrupted),
        ]
        .into_iter()
        .enumerate()
        {
            // Ended in the reverse order of their ids.
            let mut r = SessionRecord::new(format!("s-{}", 9 - i), "cp-1".into(), t0);
            r.ended_at = Some(t0 + TimeDelta::hours(i as i64));
            r.state = state;
            r.energy_wh = 1_000 * (i as u64 + 1);
            r.ev_id = ev.map(str::to_string);
            r.identity.token = token.map(str::to_string);
            r.taper_stop_a = Some(3.0 + i as f64);
            put.push(r);
        }
        for r in &put {
            store.put_session(r, &[], None).await.expect("stored");
        }
        let visits = vehicle_visits(&store).expect("read");
        let want = vec![
            (
                "ev:EVCC-1".to_string(),
                Visit {
                    energy_wh: 1_000.0,
                    stop_a: Some(3.0),
                },
            ),
            (
                "token:T-2".to_string(),
                Visit {
                    energy_wh: 2_000.0,
                    stop_a: Some(4.0),
                },
            ),
        ];
        assert_eq!(visits, want);
    }
}
