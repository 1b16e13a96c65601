//! A database that sled 0.34 panics on instead of returning an error: a store holding five
//! alerts, with 25 bytes cut from its log 25 bytes in (found by the store fuzz target).
#![allow(dead_code)]

use std::path::Path;

use evsite::store::Store;

/// A sound store at `path` holding five alerts, flushed and closed: the fuzz target's seed.
pub async fn store_with_five_alerts(path: &Path) {
    let (store, _) = Store::open(path).expect("store");
    for i in 0..5 {
        let alert = serde_json::json!({"alert_id": format!("a-{i}"), "kind": "overload"});
        store
            .put_alert(&format!("a-{i}"), &alert, None)
            .await
            .expect("alert stored");
    }
    store.flush().await.expect("flushed");
    drop(store);
    super::db::wait_released(path);
}

pub async fn database_sled_crashes_on(path: &Path) {
    store_with_five_alerts(path).await;
    let log = path.join("db");
    let mut bytes = std::fs::read(&log).expect("sled's log");
    bytes.drain(25..50);
    std::fs::write(&log, bytes).expect("cut");
}
