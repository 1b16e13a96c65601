//! Commands as they arrive on `P/cmd/{name}`: the checks every command shares (a JSON object
//! with a `request_id`), `resync` (answered by the link itself) and the replies the link
//! makes when the handler cannot. Pure.

use serde_json::{json, Value};

/// What to do with one message under `P/cmd/`.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `P/cmd/reply` is our own output, seen again through the `P/cmd/+` subscription.
    OwnReply,
    Resync {
        request_id: String,
        from_seq: u64,
    },
    /// Well-formed enough for the command handler.
    Forward {
        request_id: String,
    },
    /// Answer with this reply, change nothing.
    Refuse(Value),
}

pub fn reply_ok(request_id: &str) -> Value {
    json!({"request_id": request_id, "ok": true, "error": null})
}

pub fn reply_err(request_id: Option<&str>, error: impl Into<String>) -> Value {
    json!({"request_id": request_id, "ok": false, "error": error.into()})
}

pub fn classify(name: &str, payload: &[u8]) -> Incoming {
    if name == "reply" {
        return Incoming::OwnReply;
    }
    let body: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => return Incoming::Refuse(reply_err(None, format!("malformed JSON: {e}"))),
    };
    let Some(obj) = body.as_object() else {
        return Incoming::Refuse(reply_err(None, "the body must be a JSON object"));
    };
    let request_id = match obj.get("request_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Incoming::Refuse(reply_err(None, "request_id must be a non-empty string"))
        }
        None => return Incoming::Refuse(reply_err(None, "missing request_id")),
    };
    if name != "resync" {
        return Incoming::Forward { request_id };
    }
    match obj.get("from_seq").and_then(Value::as_u64) {
        Some(from_seq) if from_seq >= 1 => Incoming::Resync {
            request_id,
            from_seq,
        },
        _ => Incoming::Refuse(reply_err(
            Some(&request_id),
            "resync needs from_seq, a whole number from 1",
        )),
    }
}

/// Whether a resync from `from_seq` can be served, given the oldest seq the outbox holds and
/// the seq the next message will get: Ok with the seq to send again from, or the refusal.
pub fn resync(
    request_id: &str,
    from_seq: u64,
    oldest: Option<u64>,
    next_seq: u64,
) -> Result<u64, Value> {
    if from_seq > next_seq {
        return Err(reply_err(
            Some(request_id),
            format!("seq {from_seq} has not been written yet: the next seq is {next_seq}"),
        ));
    }
    let held_from = oldest.unwrap_or(next_seq);
    if from_seq < held_from {
        let why = match oldest {
            Some(o) => format!(
                "seq {from_seq} was delivered and is no longer held: the oldest seq held is {o}"
            ),
            None => format!(
                "seq {from_seq} was delivered and is no longer held: the outbox is empty, \
                 the next seq is {next_seq}"
            ),
        };
        return Err(reply_err(Some(request_id), why));
    }
    Ok(from_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(i: Incoming) -> Value {
        match i {
            Incoming::Refuse(v) => v,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn malformed_bodies_get_a_null_request_id() {
        for (payload, why) in [
            (&b"{not json"[..], "malformed JSON"),
            (b"[1,2]", "JSON object"),
            (b"{}", "missing request_id"),
            (br#"{"request_id":7}"#, "non-empty string"),
            (br#"{"request_id":""}"#, "non-empty string"),
        ] {
            let r = refused(classify("set_charger", payload));
            assert_eq!(r["request_id"], Value::Null);
            assert_eq!(r["ok"], false);
            assert!(r["error"].as_str().unwrap().contains(why), "{r}");
        }
    }

    #[test]
    fn commands_are_forwarded_and_our_replies_ignored() {
        assert_eq!(
            classify("set_site_limit", br#"{"request_id":"r1","limit_a":20}"#),
            Incoming::Forward {
                request_id: "r1".into()
            }
        );
        assert_eq!(classify("reply", b"anything"), Incoming::OwnReply);
    }

    #[test]
    fn resync_needs_a_seq() {
        assert_eq!(
            classify("resync", br#"{"request_id":"r","from_seq":5}"#),
            Incoming::Resync {
                request_id: "r".into(),
                from_seq: 5
            }
        );
        let r = refused(classify("resync", br#"{"request_id":"r","from_seq":-1}"#));
        assert_eq!(r["request_id"], "r");
    }

    #[test]
    fn resync_only_from_what_is_held() {
        assert_eq!(resync("r", 5, Some(3), 10), Ok(5));
        assert_eq!(resync("r", 3, Some(3), 10), Ok(3));
        assert_eq!(resync("r", 10, None, 10), Ok(10));
        let e = resync("r", 2, Some(3), 10).unwrap_err();
        assert!(e["error"]
            .as_str()
            .unwrap()
            .contains("oldest seq held is 3"));
        let e = resync("r", 4, None, 10).unwrap_err();
        assert!(e["error"].as_str().unwrap().contains("outbox is empty"));
        let e = resync("r", 11, Some(3), 10).unwrap_err();
        assert!(e["error"].as_str().unwrap().contains("not been written"));
    }
}
