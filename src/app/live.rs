//! `evsite check-config --live`: a config that passed `check-config`, tried once against the
//! site. Each device is read as `probe` reads it and its readings held against what the
//! configured model and site can produce, so a wrong model or unit is named; the broker is
//! connected with the configured TLS and credentials and one message is published to
//! `P/status` and read back; the API address is bound. One table; every part is tried even
//! when one fails.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, Transport};

use super::probe::{probe_rows, ProbeRow};
use crate::config::Config;
use crate::devices::Snapshot;
use crate::sync::SyncOptions;

/// How long the broker part may take (connect, subscribe, publish, read back).
const BROKER_WITHIN: Duration = Duration::from_secs(10);

/// One part tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `device`, `broker` or `api`.
    pub part: &'static str,
    /// Which one: the device id, the broker URL, the API address.
    pub name: String,
    /// Where it was reached (link, host:port).
    pub at: String,
    pub ok: bool,
    /// What was seen, or what failed and why.
    pub detail: String,
}

/// Tries every part of the site in `cfg` once.
pub async fn check(cfg: &Config) -> Vec<Part> {
    let (devices, broker) = tokio::join!(probe_rows(cfg), broker(cfg));
    let mut parts: Vec<Part> = devices.iter().map(|r| device(cfg, r)).collect();
    parts.extend(broker);
    parts.push(api(cfg));
    parts
}

/// The table `check-config --live` prints.
pub fn render(parts: &[Part]) -> String {
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            vec![
                p.part.to_owned(),
                p.name.clone(),
                p.at.clone(),
                if p.ok { "ok" } else { "FAILED" }.to_owned(),
                p.detail.clone(),
            ]
        })
        .collect();
    super::table::render(&["part", "name", "at", "result", "detail"], &rows)
}

fn device(cfg: &Config, row: &ProbeRow) -> Part {
    let (ok, detail) = match &row.result {
        Err(e) => (false, format!("no answer as a {}: {e}", row.model)),
        Ok(s) => match implausible(cfg, &row.device, s) {
            Some(why) => (
                false,
                format!(
                    "answers, but not as a {} would ({why}): wrong model or unit?",
                    row.model
                ),
            ),
            None => (true, summary(row.model, s)),
        },
    };
    Part {
        part: "device",
        name: row.device.clone(),
        at: row.link.clone(),
        ok,
        detail,
    }
}

fn summary(model: &str, s: &Snapshot) -> String {
    let v: Vec<String> = s
        .voltage_v
        .iter()
        .flatten()
        .map(|v| format!("{v:.0}"))
        .collect();
    let a: Vec<String> = s
        .current_a
        .iter()
        .flatten()
        .map(|a| format!("{a:.1}"))
        .collect();
    let mut out = format!("{model}: {} V, {} A", v.join("/"), a.join("/"));
    if let Some(state) = s.state {
        out.push_str(&format!(", state {}", state.letter()));
    }
    out
}

/// Why readings cannot come from the configured model on this site: the model's voltage,
/// current and energy registers decoded as that model gives values no installation of it
/// shows. A device of another make answering at the unit, or another unit's registers,
/// decode to such values.
fn implausible(cfg: &Config, device: &str, s: &Snapshot) -> Option<String> {
    let nominal = cfg.site.voltage_v;
    let voltages: Vec<f64> = s.voltage_v.iter().flatten().copied().collect();
    // A phase a single-phase device does not use may read 0; at least one must be live.
    if !voltages.is_empty() {
        let live = voltages
            .iter()
            .any(|v| (v - nominal).abs() <= 0.2 * nominal);
        let wild = voltages
            .iter()
            .any(|v| !v.is_finite() || *v < 0.0 || *v > 1.5 * nominal);
        if !live || wild {
            let shown: Vec<String> = voltages.iter().map(|v| format!("{v:.1}")).collect();
            return Some(format!(
                "phase voltages {} V against a site at {nominal:.0} V",
                shown.join("/")
            ));
        }
    }
    let ceiling = match cfg.chargers.iter().find(|c| c.id == device) {
        Some(c) => c.max_current_a * 1.5 + 5.0,
        None => cfg.site.grid_limit_a * 3.0 + 50.0,
    };
    if let Some(a) = s
        .current_a
        .iter()
        .flatten()
        .find(|a| !a.is_finite() || **a < -ceiling || **a > ceiling)
    {
        return Some(format!("a phase current of {a:.1} A"));
    }
    if let Some(wh) = s.energy_wh.filter(|wh| !wh.is_finite() || *wh < 0.0) {
        return Some(format!("an energy register of {wh:.0} Wh"));
    }
    None
}

fn api(cfg: &Config) -> Part {
    let addr = cfg.api.listen;
    let (ok, detail) = match std::net::TcpListener::bind(addr) {
        Ok(_) => (true, "free: the daemon can listen here".to_owned()),
        Err(e) => (
            false,
            format!("cannot bind: {e} (is evsite or another program running on it?)"),
        ),
    };
    Part {
        part: "api",
        name: "api.listen".into(),
        at: addr.to_string(),
        ok,
        detail,
    }
}

/// Connects with the daemon's TLS and credentials under a client id of its own (so a running
/// daemon is not disconnected) and without the daemon's last will, publishes one message to
/// `P/status` (not retained: the daemon's retained status stays) and waits for it back.
async fn broker(cfg: &Config) -> Option<Part> {
    let mqtt = cfg.mqtt.as_ref()?;
    let fail = |at: String, detail: String| Part {
        part: "broker",
        name: mqtt.url.clone(),
        at,
        ok: false,
        detail,
    };
    let opts = match SyncOptions::from_config(cfg, chrono::Utc::now()) {
        Ok(o) => o,
        Err(e) => return Some(fail("-".into(), e.to_string())),
    };
    let at = format!("{}:{}", opts.host, opts.port);
    let mut o = MqttOptions::new(
        format!("{}-check-{}", opts.client_id, std::process::id()),
        opts.host.clone(),
        opts.port,
    );
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_session(true);
    if let Some(c) = &opts.credentials {
        o.set_credentials(c.username.clone(), c.password.expose().to_owned());
    }
    if let Some(tls) = &opts.tls {
        o.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    let topic = opts.topic("status");
    let marker = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "online": false,
        "check": marker,
        "version": opts.version,
        "note": "evsite check-config --live: a test message, not the site's status",
    })
    .to_string();
    let tried = tokio::time::timeout(BROKER_WITHIN, round_trip(o, &topic, &body, &marker)).await;
    Some(match tried {
        Ok(Ok(())) => Part {
            part: "broker",
            name: mqtt.url.clone(),
            at,
            ok: true,
            detail: format!("connected, published to {topic} and read it back"),
        },
        Ok(Err(e)) => fail(at, e),
        Err(_) => fail(
            at,
            format!(
                "no answer within {} s (connected, but the message did not come back: may this user subscribe to {topic}?)",
                BROKER_WITHIN.as_secs()
            ),
        ),
    })
}

async fn round_trip(o: MqttOptions, topic: &str, body: &str, marker: &str) -> Result<(), String> {
    let (client, mut events) = AsyncClient::new(o, 16);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                client
                    .subscribe(topic, QoS::AtLeastOnce)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    return Err(format!("the broker refused the subscription to {topic}"));
                }
                client
                    .publish(topic, QoS::AtLeastOnce, false, body.as_bytes().to_vec())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.topic == topic && String::from_utf8_lossy(&p.payload).contains(marker) {
                    let _ = client.disconnect().await;
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                return Err(format!("the broker refused the connection: {code:?}"))
            }
            Err(e) => return Err(format!("cannot connect: {e}")),
        }
    }
}
