//! The outbox: messages for `P/sessions` and `P/alerts`, keyed by a gap-free `seq`, written in
//! the same transaction as the change they announce and deleted only once delivered.
//!
//! A stored value is one tag byte naming the topic ([`OutboxTopic`]) followed by the envelope's
//! JSON exactly as it is published, so the sync knows where a message goes without reading
//! it. Schema 1 stored the JSON alone; [`tag_untagged`] brings such entries up to date.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use uuid::Uuid;

use super::keys::{decode_seq, seq_key};
use super::session_row::mark_if_latest;
use super::{Store, StoreError};

/// The key in `meta` of the seq the next outbox message gets.
pub(crate) const NEXT_SEQ_KEY: &[u8] = b"next_seq";

pub const SESSION_SCHEMA: &str = "evsite.session.v1";
pub const ALERT_SCHEMA: &str = "evsite.alert.v1";

/// Where a stored message is published. The write that stores it decides: a session write
/// announces on `sessions`, an alert write on `alerts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxTopic {
    Sessions,
    Alerts,
}

impl OutboxTopic {
    /// The topic under the site's prefix: `sessions`, `alerts`.
    pub const fn leaf(self) -> &'static str {
        match self {
            OutboxTopic::Sessions => "sessions",
            OutboxTopic::Alerts => "alerts",
        }
    }

    /// The envelope schema of the messages on this topic.
    pub const fn schema(self) -> &'static str {
        match self {
            OutboxTopic::Sessions => SESSION_SCHEMA,
            OutboxTopic::Alerts => ALERT_SCHEMA,
        }
    }

    /// The first byte of a stored value. Neither is `{`, which began every schema-1 value.
    const fn tag(self) -> u8 {
        match self {
            OutboxTopic::Sessions => 1,
            OutboxTopic::Alerts => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(OutboxTopic::Sessions),
            2 => Some(OutboxTopic::Alerts),
            _ => None,
        }
    }

    fn from_schema(schema: &str) -> Option<Self> {
        [OutboxTopic::Sessions, OutboxTopic::Alerts]
            .into_iter()
            .find(|t| t.schema() == schema)
    }
}

/// One stored message as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub topic: OutboxTopic,
    /// The tag byte and the payload, as stored (no copy).
    value: sled::IVec,
}

impl StoredMessage {
    /// The envelope's JSON, exactly as published.
    pub fn payload(&self) -> &[u8] {
        &self.value[1..]
    }
}

/// The topic and the payload of a stored value.
fn split_value(value: &[u8]) -> Result<(OutboxTopic, &[u8]), StoreError> {
    match value.split_first() {
        Some((&tag, payload)) => match OutboxTopic::from_tag(tag) {
            Some(topic) => Ok((topic, payload)),
            None => Err(StoreError::corrupt(
                "outbox entry",
                format!("topic tag {tag}"),
            )),
        },
        None => Err(StoreError::corrupt("outbox entry", "empty")),
    }
}

/// A message as published (contract: `{schema, msg_id, seq, site, type, ts, data}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub schema: String,
    /// Drawn once when the message is stored: the same on every retry.
    pub msg_id: Uuid,
    pub seq: u64,
    pub site: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ts: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// A message to hand to the outbox with a write; the store adds schema, msg_id and seq.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub site: String,
    /// `session.started`, `alert.raised`, …
    pub kind: String,
    pub ts: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl OutboxEvent {
    pub fn new(
        site: impl Into<String>,
        kind: impl Into<String>,
        ts: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        OutboxEvent {
            site: site.into(),
            kind: kind.into(),
            ts,
            data,
        }
    }
}

/// Takes the next seq and stores the envelope, inside the caller's transaction, so the seq
/// counter, the message and the change it announces commit together or not at all.
pub(crate) fn append(
    meta: &TransactionalTree,
    outbox: &TransactionalTree,
    topic: OutboxTopic,
    msg_id: Uuid,
    event: &OutboxEvent,
) -> Result<u64, ConflictableTransactionError<StoreError>> {
    let seq = match meta.get(NEXT_SEQ_KEY)? {
        None => 1,
        Some(v) => decode_seq(&v).map_err(ConflictableTransactionError::Abort)?,
    };
    let envelope = Envelope {
        schema: topic.schema().to_owned(),
        msg_id,
        seq,
        site: event.site.clone(),
        kind: event.kind.clone(),
        ts: event.ts,
        data: event.data.clone(),
    };
    let mut bytes = vec![topic.tag()];
    serde_json::to_writer(&mut bytes, &envelope).map_err(|source| {
        ConflictableTransactionError::Abort(StoreError::Encode {
            what: "outbox envelope",
            source,
        })
    })?;
    let next = seq.checked_add(1).ok_or_else(|| {
        ConflictableTransactionError::Abort(StoreError::corrupt("outbox seq", "exhausted"))
    })?;
    outbox.insert(&seq_key(seq), bytes)?;
    meta.insert(NEXT_SEQ_KEY, &seq_key(next))?;
    Ok(seq)
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<(u64, Envelope), StoreError> {
    let seq = decode_seq(key)?;
    let (_, payload) = split_value(value)?;
    let envelope =
        serde_json::from_slice(payload).map_err(|e| StoreError::corrupt("outbox entry", e))?;
    Ok((seq, envelope))
}

/// The schema-1 to schema-2 step: puts the topic tag in front of every entry stored without
/// one, taking the topic from the envelope's schema. Entries already tagged are left alone,
/// so a step cut short by a crash is simply run again.
pub(crate) fn tag_untagged(db: &sled::Db) -> Result<usize, StoreError> {
    /// Entries rewritten per batch, so a long backlog is not held in memory at once.
    const BATCH: usize = 1024;
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        schema: &'a str,
    }
    let outbox = db.open_tree("outbox")?;
    let mut tagged = 0;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in outbox.iter() {
        let (key, value) = item?;
        if value.first() != Some(&b'{') {
            continue;
        }
        let head: Head<'_> = serde_json::from_slice(&value)
            .map_err(|e| StoreError::corrupt("schema-1 outbox entry", e))?;
        let topic = OutboxTopic::from_schema(head.schema).ok_or_else(|| {
            StoreError::corrupt("schema-1 outbox entry", format!("schema {}", head.schema))
        })?;
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.push(topic.tag());
        bytes.extend_from_slice(&value);
        batch.insert(key, bytes);
        in_batch += 1;
        if in_batch == BATCH {
            outbox.apply_batch(std::mem::take(&mut batch))?;
            tagged += in_batch;
            in_batch = 0;
        }
    }
    outbox.apply_batch(batch)?;
    Ok(tagged + in_batch)
}

impl Store {
    /// Outbox entries from `seq` on, in seq order, read from disk as iterated.
    pub fn outbox_from(
        &self,
        seq: u64,
    ) -> impl Iterator<Item = Result<(u64, Envelope), StoreError>> + Send + 'static {
        self.outbox.range(seq_key(seq)..).map(|item| {
            let (k, v) = item?;
            decode_entry(&k, &v)
        })
    }

    /// Outbox entries from `seq` on as stored: each with its topic and the envelope's JSON
    /// exactly as it goes on the wire, so publishing needs no decoding and re-encoding.
    pub fn outbox_raw_from(
        &self,
        seq: u64,
    ) -> impl Iterator<Item = Result<StoredMessage, StoreError>> + Send + 'static {
        self.outbox.range(seq_key(seq)..).map(|item| {
            let (k, value) = item?;
            let (topic, _) = split_value(&value)?;
            Ok(StoredMessage {
                seq: decode_seq(&k)?,
                topic,
                value,
            })
        })
    }

    /// The oldest undelivered message.
    pub fn oldest(&self) -> Result<Option<(u64, Envelope)>, StoreError> {
        match self.outbox.first()? {
            None => Ok(None),
            Some((k, v)) => decode_entry(&k, &v).map(Some),
        }
    }

    /// Messages waiting for delivery.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The seq the next message will get.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        match self.meta.get(NEXT_SEQ_KEY)? {
            None => Ok(1),
            Some(v) => decode_seq(&v),
        }
    }

    /// Deletes a delivered message (flushed before returning). When it was the latest message
    /// of its session, the session counts as synced from then on. Returns whether it was there.
    pub async fn ack(&self, seq: u64) -> Result<bool, StoreError> {
        let existed = (&self.outbox, &self.sessions).transaction(|(outbox, sessions)| {
            let Some(value) = outbox.remove(&seq_key(seq))? else {
                return Ok(false);
            };
            if let Some(id) = session_of(&value) {
                mark_if_latest(sessions, &id, seq)?;
            }
            Ok(true)
        })?;
        self.db.flush_async().await?;
        Ok(existed)
    }
}

impl Store {
    /// Deletes delivered messages in one transaction, without waiting for a flush: sled
    /// writes it out within its flush interval, and an ack lost to a crash only means the
    /// message is delivered again (same msg_id), which consumers dedup. Sessions whose
    /// latest message is among them count as synced. Returns how many were there.
    pub fn ack_many(&self, seqs: &[u64]) -> Result<usize, StoreError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let removed = (&self.outbox, &self.sessions).transaction(|(outbox, sessions)| {
            let mut removed = 0;
            for &seq in seqs {
                let Some(value) = outbox.remove(&seq_key(seq))? else {
                    continue;
                };
                removed += 1;
                if let Some(id) = session_of(&value) {
                    mark_if_latest(sessions, &id, seq)?;
                }
            }
            Ok(removed)
        })?;
        Ok(removed)
    }
}

/// The session a stored message announces, if it is a session message.
fn session_of(value: &[u8]) -> Option<String> {
    let (OutboxTopic::Sessions, payload) = split_value(value).ok()? else {
        return None;
    };
    let envelope: Envelope = serde_json::from_slice(payload).ok()?;
    envelope
        .data
        .get("session_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
