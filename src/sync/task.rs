//! The sync: reacts to the link's events, the outbox wake, the telemetry timer and command
//! replies. Publishes only through `try_publish` (it must never wait on the event loop it
//! feeds), so every publish handed over is recorded in the window in hand-over order.
//!
//! Delivery: on every connection the window restarts from the oldest seq in the store, so
//! whatever was out when a connection died goes again with its stored msg_id (at-least-once;
//! consumers dedup by msg_id). A message leaves the store only on its PUBACK.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::{interval, timeout, Instant, MissedTickBehavior};

use super::command::{self, Incoming};
use super::link::LinkEvent;
use super::options::SyncOptions;
use super::payloads;
use super::window::{Sent, Window};
use crate::commands::RawCommand;
use crate::store::{OutboxTopic, Store};
use crate::view::SiteState;

/// Events handled before the acks gathered are written: one transaction per batch.
const ACK_BATCH: usize = 512;
/// How long a clean shutdown waits for the broker to take the offline status.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct Sync {
    opts: SyncOptions,
    store: Store,
    view: watch::Receiver<Arc<SiteState>>,
    commands: mpsc::Sender<RawCommand>,
    client: Option<AsyncClient>,
    window: Window,
    window_size: usize,
    acks: Vec<u64>,
    replies_tx: mpsc::Sender<Value>,
    replies_rx: mpsc::Receiver<Value>,
    status_acked: bool,
    disconnected: bool,
    topics: Topics,
}

struct Topics {
    sessions: String,
    alerts: String,
    status: String,
    telemetry: String,
    reply: String,
    commands: String,
    command_prefix: String,
    auth_request: String,
}

impl Sync {
    pub(crate) fn new(
        opts: SyncOptions,
        store: Store,
        view: watch::Receiver<Arc<SiteState>>,
        commands: mpsc::Sender<RawCommand>,
    ) -> Self {
        let (replies_tx, replies_rx) = mpsc::channel(256);
        let topics = Topics {
            sessions: opts.topic(OutboxTopic::Sessions.leaf()),
            alerts: opts.topic(OutboxTopic::Alerts.leaf()),
            status: opts.topic("status"),
            telemetry: opts.topic("telemetry"),
            reply: opts.topic("cmd/reply"),
            commands: opts.topic("cmd/+"),
            command_prefix: opts.topic("cmd/"),
            auth_request: opts.topic("auth/request"),
        };
        Sync {
            window: Window::new(opts.effective_window(), 1),
            window_size: opts.effective_window(),
            opts,
            store,
            view,
            commands,
            client: None,
            acks: Vec::new(),
            replies_tx,
            replies_rx,
            status_acked: false,
            disconnected: false,
            topics,
        }
    }

    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<LinkEvent>,
        wake: Arc<Notify>,
        mut shutdown: oneshot::Receiver<()>,
        stop_link: watch::Sender<bool>,
    ) {
        let mut poll = interval(self.opts.outbox_poll);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut telemetry = interval(self.opts.telemetry_interval.max(Duration::from_secs(1)));
        telemetry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let auth = self.opts.auth_requests.clone();
        let auth_asked = || async {
            match &auth {
                Some(q) => q.notified().await,
                None => std::future::pending().await,
            }
        };
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = events.recv() => match event {
                    Some(event) => {
                        self.on_link(event);
                        // Take what else is waiting, so acks are written in batches.
                        while self.acks.len() < ACK_BATCH {
                            match events.try_recv() {
                                Ok(event) => self.on_link(event),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                Some(reply) = self.replies_rx.recv() => self.publish_reply(&reply),
                _ = telemetry.tick() => self.publish_telemetry(),
                _ = auth_asked() => self.publish_auth_requests(),
                _ = wake.notified() => {}
                _ = poll.tick() => {}
            }
            self.write_acks();
            self.refill();
        }
        self.close(&mut events).await;
        let _ = stop_link.send(true);
    }

    fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected(client) => self.on_connected(client),
            LinkEvent::Lost => {
                self.client = None;
            }
            LinkEvent::Event(Event::Outgoing(Outgoing::Publish(pkid))) => {
                self.window.went_out(pkid)
            }
            LinkEvent::Event(Event::Outgoing(Outgoing::AwaitAck(_))) => self.window.held_back(),
            LinkEvent::Event(Event::Outgoing(Outgoing::Disconnect)) => self.disconnected = true,
            LinkEvent::Event(Event::Incoming(Packet::PubAck(ack))) => {
                match self.window.acked(ack.pkid) {
                    Some(Sent::Outbox(seq)) => self.acks.push(seq),
                    Some(Sent::Status) => self.status_acked = true,
                    _ => {}
                }
            }
            LinkEvent::Event(Event::Incoming(Packet::Publish(p))) => {
                self.on_message(&p.topic, &p.payload)
            }
            LinkEvent::Event(_) => {}
        }
    }

    /// A fresh connection: commands subscribed again (clean session), a fresh retained
    /// status and telemetry, and the outbox from its oldest unacknowledged message.
    fn on_connected(&mut self, client: AsyncClient) {
        // Acks gathered on the old connection are real: write them before re-reading.
        self.write_acks();
        if let Err(e) = client.try_subscribe(self.topics.commands.clone(), QoS::AtLeastOnce) {
            tracing::warn!(error = %e, "cannot subscribe to commands");
        }
        self.client = Some(client);
        let oldest = match self.store.oldest() {
            Ok(Some((seq, _))) => seq,
            Ok(None) => self.store.next_seq().unwrap_or(1),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                1
            }
        };
        self.window.restart(oldest);
        let status = payloads::online(&self.opts.version, self.opts.started_at);
        let topic = self.topics.status.clone();
        self.publish(topic, QoS::AtLeastOnce, true, status, Sent::Status);
        self.publish_telemetry();
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let Some(name) = topic.strip_prefix(&self.topics.command_prefix) else {
            return;
        };
        match command::classify(name, payload) {
            Incoming::OwnReply => {}
            Incoming::Refuse(reply) => {
                tracing::info!(command = name, error = %reply["error"], "command refused");
                self.publish_reply(&reply);
            }
            Incoming::Resync {
                request_id,
                from_seq,
            } => {
                let reply = self.resync(&request_id, from_seq);
                self.publish_reply(&reply);
            }
            Incoming::Forward { request_id } => self.forward(name, payload, request_id),
        }
    }

    fn resync(&mut self, request_id: &str, from_seq: u64) -> Value {
        let held = self
            .store
            .oldest()
            .and_then(|o| Ok((o.map(|(seq, _)| seq), self.store.next_seq()?)));
        let (oldest, next) = match held {
            Ok(h) => h,
            Err(e) => return command::reply_err(Some(request_id), format!("store: {e}")),
        };
        match command::resync(request_id, from_seq, oldest, next) {
            Ok(seq) => {
                tracing::info!(from_seq = seq, "resync requested");
                self.window.rewind(seq);
                command::reply_ok(request_id)
            }
            Err(reply) => reply,
        }
    }

    /// Hands a command to its handler; its answer (or a timeout reply) comes back through
    /// `replies`, so a slow handler never holds up the link.
    fn forward(&self, name: &str, payload: &[u8], request_id: String) {
        let commands = self.commands.clone();
        let replies = self.replies_tx.clone();
        let wait = self.opts.command_timeout;
        let name = name.to_owned();
        let payload = payload.to_vec();
        tokio::spawn(async move {
            let (tx, rx) = oneshot::channel();
            let raw = RawCommand {
                name: name.clone(),
                payload,
                reply: tx,
            };
            let deadline = Instant::now() + wait;
            let reply = match tokio::time::timeout_at(deadline, commands.send(raw)).await {
                Err(_) => command::reply_err(Some(&request_id), "the controller is busy"),
                Ok(Err(_)) => command::reply_err(Some(&request_id), "commands are not handled"),
                Ok(Ok(())) => match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(_)) => command::reply_err(Some(&request_id), "the command was dropped"),
                    Err(_) => command::reply_err(
                        Some(&request_id),
                        format!("no answer within {} s", wait.as_secs_f64()),
                    ),
                },
            };
            let _ = replies.send(reply).await;
        });
    }

    fn publish_reply(&mut self, reply: &Value) {
        let topic = self.topics.reply.clone();
        if self.client.is_none() {
            tracing::info!(reply = %reply, "offline: command reply dropped");
            return;
        }
        self.publish(
            topic,
            QoS::AtLeastOnce,
            false,
            reply.to_string().into_bytes(),
            Sent::Reply,
        );
    }

    /// Authorisation requests are live too: asked now or never. Without a connection the
    /// control loop, seeing the link down, lets the token list and the cache decide.
    fn publish_auth_requests(&mut self) {
        let Some(queue) = self.opts.auth_requests.clone() else {
            return;
        };
        for r in queue.take() {
            if self.client.is_none() {
                tracing::info!(charger = %r.charger, "offline: authorisation request dropped; the list and the cache decide");
                continue;
            }
            let body = payloads::auth_request(&self.opts.site_id, &r);
            let topic = self.topics.auth_request.clone();
            if !self.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                body.to_string().into_bytes(),
                Sent::Reply,
            ) {
                tracing::warn!(charger = %r.charger, "authorisation request not handed over; the cloud's timeout decides");
            }
        }
    }

    /// Telemetry is live data: sent when connected, never queued for later.
    fn publish_telemetry(&mut self) {
        if self.client.is_none() {
            return;
        }
        let Some(cycle) = self.view.borrow().cycle.clone() else {
            return;
        };
        let body = payloads::telemetry(&self.opts.site_id, self.opts.voltage_v, &cycle);
        let topic = self.topics.telemetry.clone();
        self.publish(
            topic,
            QoS::AtMostOnce,
            false,
            body.to_string().into_bytes(),
            Sent::Telemetry,
        );
    }

    /// Hands one publish over; false when the client cannot take it now.
    fn publish(
        &mut self,
        topic: String,
        qos: QoS,
        retain: bool,
        body: Vec<u8>,
        what: Sent,
    ) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        match client.try_publish(topic, qos, retain, body) {
            Ok(()) => {
                self.window.handed_over(what);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, ?what, "publish not handed over");
                false
            }
        }
    }

    /// Fills the window from the store, reading from disk only what goes out now. The stored
    /// bytes are the message as published, kept with its topic, so nothing is decoded. The
    /// window is topped up in batches (a quarter of it at a time) rather than one message per
    /// acknowledgement, so a backlog costs one disk read per batch.
    fn refill(&mut self) {
        let room = self.window.room();
        let batch = (self.window_size / 4).max(1);
        if self.client.is_none() || room == 0 || (room < batch && room < self.window_size) {
            return;
        }
        for entry in self.store.outbox_raw_from(self.window.cursor()).take(room) {
            let msg = match entry {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    return;
                }
            };
            let topic = match msg.topic {
                OutboxTopic::Sessions => self.topics.sessions.clone(),
                OutboxTopic::Alerts => self.topics.alerts.clone(),
            };
            if !self.publish(
                topic,
                QoS::AtLeastOnce,
                false,
                msg.payload().to_vec(),
                Sent::Outbox(msg.seq),
            ) {
                return;
            }
        }
    }

    fn write_acks(&mut self) {
        if self.acks.is_empty() {
            return;
        }
        if let Err(e) = self.store.ack_many(&self.acks) {
            // Still in the store: they go again on the next connection.
            tracing::error!(error = %e, "cannot delete delivered messages");
        }
        self.acks.clear();
    }

    /// Clean shutdown: the offline status, retained, and a DISCONNECT so the broker does not
    /// send the last will; then the acks made durable.
    async fn close(&mut self, events: &mut mpsc::Receiver<LinkEvent>) {
        let topic = self.topics.status.clone();
        if self.publish(
            topic,
            QoS::AtLeastOnce,
            true,
            payloads::offline(),
            Sent::Status,
        ) {
            self.status_acked = false;
            let deadline = Instant::now() + SHUTDOWN_WAIT;
            while !self.status_acked {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(event)) => self.on_link(event),
                    _ => break,
                }
            }
            if let Some(client) = &self.client {
                if client.try_disconnect().is_ok() {
                    while !self.disconnected {
                        match timeout(SHUTDOWN_WAIT, events.recv()).await {
                            Ok(Some(event)) => self.on_link(event),
                            _ => break,
                        }
                    }
                }
            }
        }
        self.write_acks();
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "cannot flush the store");
        }
    }
}
