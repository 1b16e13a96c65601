//! The JSON of alert changes and alerts, held against the schemas the cloud and the API
//! readers have: names and field names do not change.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Alert, AlertKind, AlertSignal, AlertState, Severity};

fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The part of `name` at `pointer`, with the file's `$defs` for its references.
fn part(name: &str, pointer: &str) -> (Value, Value) {
    let file = schema_file(name);
    let sub = file.pointer(pointer).unwrap().clone();
    let wrapped = json!({ "$defs": file["$defs"], "$ref": format!("#{pointer}") });
    (sub, wrapped)
}

fn assert_valid(schema: &Value, instance: &Value) {
    let v = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{instance:#}");
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn required(schema: &Value) -> Vec<String> {
    let mut r: Vec<String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn an_alert_change_serialises_as_the_cycle_record_always_had_it() {
    let site = AlertSignal {
        kind: AlertKind::MeterOffline,
        raised: true,
        charger: None,
        message: "main meter unreadable".into(),
    };
    let charger = AlertSignal {
        kind: AlertKind::ChargerFault,
        raised: false,
        charger: Some("cp-2".into()),
        message: "state E cleared".into(),
    };
    // Byte for byte what the record's `alerts` held before the types were merged.
    assert_eq!(
        serde_json::to_string(&site).unwrap(),
        r#"{"kind":"meter_offline","raised":true,"charger":null,"message":"main meter unreadable"}"#
    );
    assert_eq!(
        serde_json::to_string(&charger).unwrap(),
        r#"{"kind":"charger_fault","raised":false,"charger":"cp-2","message":"state E cleared"}"#
    );
    let (items, _) = part("state.json", "/$defs/cycle/properties/alerts/items");
    let (_, list) = part("state.json", "/$defs/cycle/properties/alerts");
    let both = serde_json::to_value([&site, &charger]).unwrap();
    assert_valid(&list, &both);
    for s in [&site, &charger] {
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(sorted(keys(&v)), required(&items));
        let back: AlertSignal = serde_json::from_value(v).unwrap();
        assert_eq!(&back, s);
    }
    // The schema is not a rubber stamp: `on` for `raised` is refused.
    let mut renamed = serde_json::to_value(&site).unwrap();
    let raised = renamed.as_object_mut().unwrap().remove("raised").unwrap();
    renamed["on"] = raised;
    let v = jsonschema::validator_for(&list).unwrap();
    assert!(!v.is_valid(&json!([renamed])));
}

#[test]
fn every_kind_has_one_name_in_the_code_and_the_schemas() {
    let names: Vec<&str> = AlertKind::ALL.iter().map(|k| k.name()).collect();
    for k in AlertKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.name()));
        let back: AlertKind = serde_json::from_value(json!(k.name())).unwrap();
        assert_eq!(back, k);
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "two kinds share a name");
    // `/api/state`: the open alerts and the cycle's changes both take every kind.
    let listed = schema_file("state.json")["$defs"]["alert_kind"]["enum"].clone();
    assert_eq!(listed, json!(names));
    // `P/alerts`: an open set, by pattern; every kind fits it.
    let (kind, _) = part("alert.v1.json", "/$defs/alert/properties/kind");
    for n in &names {
        assert_valid(&kind, &json!(n));
    }
}

fn raised_alert() -> Alert {
    Alert {
        alert_id: "7d0f5a4e-3b1c-4c8e-9a57-2f6d0b9e1c42".into(),
        kind: AlertKind::Overload,
        severity: Severity::Critical,
        charger: None,
        state: AlertState::Raised,
        message: "L1 at 66.0 A over the 63 A limit".into(),
        raised_at: t("2026-11-21T08:00:05Z"),
        cleared_at: None,
    }
}

#[test]
fn an_alert_serialises_as_published_and_stored() {
    let raised = raised_alert();
    let cleared = Alert {
        kind: AlertKind::ChargerOffline,
        severity: Severity::Warning,
        charger: Some("cp-1".into()),
        state: AlertState::Cleared,
        cleared_at: Some(t("2026-11-21T08:02:00Z")),
        ..raised_alert()
    };
    assert_eq!(
        serde_json::to_string(&raised).unwrap(),
        r#"{"alert_id":"7d0f5a4e-3b1c-4c8e-9a57-2f6d0b9e1c42","kind":"overload","severity":"critical","charger":null,"state":"raised","message":"L1 at 66.0 A over the 63 A limit","raised_at":"2026-11-21T08:00:05Z","cleared_at":null}"#
    );
    assert_eq!(
        serde_json::to_string(&cleared).unwrap(),
        r#"{"alert_id":"7d0f5a4e-3b1c-4c8e-9a57-2f6d0b9e1c42","kind":"charger_offline","severity":"warning","charger":"cp-1","state":"cleared","message":"L1 at 66.0 A over the 63 A limit","raised_at":"2026-11-21T08:00:05Z","cleared_at":"2026-11-21T08:02:00Z"}"#
    );
    assert_eq!(raised.event_type(), "alert.raised");
    assert_eq!(raised.event_ts(), raised.raised_at);
    assert_eq!(cleared.event_type(), "alert.cleared");
    assert_eq!(cleared.event_ts(), t("2026-11-21T08:02:00Z"));

    // `data` of a `P/alerts` message, for both states.
    let (published, wrapped) = part("alert.v1.json", "/$defs/alert");
    for a in [&raised, &cleared] {
        let v = serde_json::to_value(a).unwrap();
        assert_valid(&wrapped, &v);
        assert_eq!(sorted(keys(&v)), required(&published));
    }
    // An open alert in `/api/state`.
    let (open, wrapped) = part("state.json", "/$defs/alert");
    let v = serde_json::to_value(&raised).unwrap();
    assert_valid(&wrapped, &v);
    assert_eq!(sorted(keys(&v)), required(&open));
}

#[test]
fn alerts_stored_by_earlier_builds_still_read() {
    // As stored before: every field written, and (older still) without the optional ones.
    let full = r#"{"alert_id":"7d0f5a4e-3b1c-4c8e-9a57-2f6d0b9e1c42","kind":"overload","severity":"critical","charger":null,"state":"raised","message":"L1 at 66.0 A over the 63 A limit","raised_at":"2026-11-21T08:00:05Z","cleared_at":null}"#;
    let bare = r#"{"alert_id":"7d0f5a4e-3b1c-4c8e-9a57-2f6d0b9e1c42","kind":"overload","severity":"critical","state":"raised","message":"L1 at 66.0 A over the 63 A limit","raised_at":"2026-11-21T08:00:05Z"}"#;
    for text in [full, bare] {
        let a: Alert = serde_json::from_str(text).unwrap();
        assert_eq!(a, raised_alert());
    }
    // And written back the same.
    assert_eq!(serde_json::to_string(&raised_alert()).unwrap(), full);
}

#[test]
fn the_mqtt_doc_names_every_field_of_an_alert() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mqtt.md"))
        .unwrap();
    let start = doc
        .find("Alert `data`:")
        .expect("the alert payload paragraph");
    let para = &doc[start..start + doc[start..].find("\n\n").unwrap_or(doc.len() - start)];
    for field in keys(&serde_json::to_value(raised_alert()).unwrap()) {
        assert!(
            para.contains(&format!("`{field}`")),
            "docs/mqtt.md does not name `{field}`: {para}"
        );
    }
}
