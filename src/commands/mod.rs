//! Commands from the cloud (`P/cmd/{name}`): the MQTT sync hands each one over as it came,
//! and gets back the reply it publishes on `P/cmd/reply`.

use tokio::sync::oneshot;

/// A command as received: its name (the last topic level) and raw body. Whoever handles it
/// answers on `reply` with the JSON to publish on `P/cmd/reply`.
#[derive(Debug)]
pub struct RawCommand {
    pub name: String,
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<serde_json::Value>,
}
