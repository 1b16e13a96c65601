//! The connection task: owns rumqttc's event loop and polls it without pause (nothing moves
//! otherwise), forwards every event in order, and reconnects with backoff.
//!
//! Each connection attempt gets a fresh client and event loop, so nothing queued for a dead
//! connection can leak into the next one: after a reconnect the sync re-sends from the store,
//! the one source of truth for what is unacknowledged.

use std::time::Duration;

use rand::Rng;
use rumqttc::{AsyncClient, ConnectionError, Event, Packet};
use std::sync::Arc;

use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use super::backoff::BackoffState;
use super::options::SyncOptions;

/// What the connection task reports, in order.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// CONNACK accepted: publish through this client until `Lost`.
    Connected(AsyncClient),
    Event(Event),
    Lost,
}

/// What the link is doing, for the daemon's status and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    pub connected: bool,
    /// Connections accepted by the broker since start.
    pub connections: u64,
    /// Connection attempts that failed (refused, unreachable, TLS) since start.
    pub failed_attempts: u64,
    /// Whether the last failed attempt was a refused CONNACK (bad credentials).
    pub refused: bool,
}

/// Polls until `stop` turns true (or the receiver of `events` is gone). A `retry` cuts the
/// current backoff short: the next attempt is made at once.
pub(crate) async fn run(
    opts: SyncOptions,
    events: mpsc::Sender<LinkEvent>,
    status: watch::Sender<LinkStatus>,
    mut stop: watch::Receiver<bool>,
    retry: Arc<Notify>,
) {
    let mut backoff = BackoffState::new(opts.backoff);
    let mut refused_logged = false;
    let mut failure_logged = false;
    let capacity = opts.effective_window() + super::options::EXTRA_REQUESTS;
    loop {
        let (client, mut eventloop) = AsyncClient::new(opts.mqtt_options(), capacity);
        let mut connected_at: Option<Instant> = None;
        let failure = loop {
            let polled = tokio::select! {
                polled = eventloop.poll() => polled,
                _ = stop.wait_for(|s| *s) => return,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) if connected_at.is_none() => {
                    connected_at = Some(Instant::now());
                    tracing::info!(host = %opts.host, port = opts.port, "connected to the MQTT broker");
                    refused_logged = false;
                    failure_logged = false;
                    status.send_modify(|s| {
                        s.connected = true;
                        s.connections += 1;
                        s.refused = false;
                    });
                    if events
                        .send(LinkEvent::Connected(client.clone()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(event) => {
                    if events.send(LinkEvent::Event(event)).await.is_err() {
                        return;
                    }
                }
                Err(e) => break e,
            }
        };
        drop(client);
        drop(eventloop);
        if *stop.borrow() {
            return;
        }
        let refused = matches!(failure, ConnectionError::ConnectionRefused(_));
        status.send_modify(|s| {
            s.connected = false;
            if connected_at.is_none() {
                s.failed_attempts += 1;
                s.refused = refused;
            }
        });
        if let Some(at) = connected_at {
            backoff.connection_ended(at.elapsed());
            tracing::warn!(error = %failure, "lost the MQTT broker");
            if events.send(LinkEvent::Lost).await.is_err() {
                return;
            }
        }
        let delay = backoff.next_delay(rand::thread_rng().gen::<f64>());
        log_failure(
            &failure,
            delay,
            backoff.attempt(),
            &mut refused_logged,
            &mut failure_logged,
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = retry.notified() => tracing::debug!("reconnecting now"),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A refused CONNACK (bad credentials, unknown client) is logged once per episode of failed
/// attempts at warn; other failures too, then at debug, so an outage does not flood the log.
fn log_failure(
    failure: &ConnectionError,
    delay: Duration,
    attempt: u32,
    refused_logged: &mut bool,
    failure_logged: &mut bool,
) {
    let delay_ms = delay.as_millis() as u64;
    match failure {
        ConnectionError::ConnectionRefused(code) if !*refused_logged => {
            *refused_logged = true;
            tracing::warn!(
                ?code,
                delay_ms,
                "the MQTT broker refused the connection; retrying"
            );
        }
        _ if !*failure_logged => {
            *failure_logged = true;
            tracing::warn!(error = %failure, delay_ms, "cannot reach the MQTT broker; retrying");
        }
        _ => tracing::debug!(error = %failure, delay_ms, attempt, "MQTT connect failed"),
    }
}
