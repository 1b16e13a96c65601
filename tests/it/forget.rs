//! Forgetting whose a session was, on a real sled database: `evsite forget --user U` and the
//! identity retention remove token, user, vehicle and vehicle id, keep energy, cost and group,
//! and are idempotent.

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;

use evsite::sessions::cost::Cost;
use evsite::sessions::machine::{RecordState, SessionRecord};
use evsite::store::Store;

fn t0() -> DateTime<Utc> {
    "2026-03-02T18:00:00Z".parse().expect("time")
}

/// A session of `user` (token, vehicle, vehicle id, group), ended `days` after t0 unless
/// still active, with 7,500 Wh and a cost of 2.25.
fn session(id: &str, user: &str, days: i64, active: bool) -> SessionRecord {
    let mut r = SessionRecord::new(id.into(), "cp-1".into(), t0() + TimeDelta::days(days));
    r.state = if active {
        RecordState::Active
    } else {
        RecordState::Completed
    };
    r.ended_at = (!active).then(|| r.plugged_in_at + TimeDelta::hours(2));
    r.energy_wh = 7_500;
    r.cost = Some(Cost {
        currency: "EUR".into(),
        total: Decimal::new(225, 2),
        lines: Vec::new(),
    });
    r.identity.token = Some(format!("tok-{user}"));
    r.identity.user = Some(user.into());
    r.identity.vehicle = Some(format!("car of {user}"));
    r.identity.group = Some("residents".into());
    r.ev_id = Some(format!("EVCC-{user}"));
    r
}

async fn stored(dir: &std::path::Path, records: &[SessionRecord]) {
    let (store, _) = Store::open(dir).expect("store opens");
    for r in records {
        store.put_session(r, &[], None).await.expect("stored");
    }
    store.flush().await.expect("flushed");
}

fn forget(db: &std::path::Path, user: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["forget", "--user", user, "--db"])
        .arg(db)
        .env_remove("EVSITE_CONFIG")
        .output()
        .expect("evsite runs")
}

fn anonymous_but_billed(r: &SessionRecord) {
    assert_eq!(r.identity.token, None, "{r:?}");
    assert_eq!(r.identity.user, None, "{r:?}");
    assert_eq!(r.identity.vehicle, None, "{r:?}");
    assert_eq!(r.ev_id, None, "{r:?}");
    assert_eq!(r.identity.group.as_deref(), Some("residents"), "{r:?}");
    assert_eq!(r.energy_wh, 7_500);
    assert_eq!(r.cost.as_ref().map(|c| c.total), Some(Decimal::new(225, 2)));
}

#[tokio::test]
async fn forget_removes_one_users_identity_keeps_the_accounts_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let before = [
        session("s-1", "ann", 0, false),
        session("s-2", "ann", 1, false),
        session("s-3", "bob", 1, false),
        session("s-4", "ann", 2, true),
    ];
    stored(&db, &before).await;

    let out = forget(&db, "ann");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("in 2 sessions"), "{text}");
    assert!(text.contains("s-1") && text.contains("s-2"), "{text}");
    assert!(
        text.contains("1 session of user \"ann\" still active"),
        "{text}"
    );

    let again = forget(&db, "ann");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{again:?}");
    assert!(text.contains("no stored session names user"), "{text}");

    let store = Store::open_existing(&db).expect("opens");
    for id in ["s-1", "s-2"] {
        anonymous_but_billed(&store.session(id).expect("read").expect("kept"));
    }
    assert_eq!(store.session("s-3").expect("read"), Some(before[2].clone()));
    assert_eq!(store.session("s-4").expect("read"), Some(before[3].clone()));
}

#[tokio::test]
async fn forget_while_the_database_is_held_says_so_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("db");
    let record = session("s-1", "ann", 0, false);
    stored(&db, std::slice::from_ref(&record)).await;
    let (held, _) = Store::open(&db).expect("opens");
    let out = forget(&db, "ann");
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{out:?}"
    );
    assert_eq!(held.session("s-1").expect("read"), Some(record));
}

#[tokio::test]
async fn identities_past_their_retention_are_removed_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, _) = Store::open(dir.path()).expect("store opens");
    let old = session("s-old", "ann", 0, false);
    let recent = session("s-new", "ann", 40, false);
    let running = session("s-run", "ann", 0, true);
    for r in [&old, &recent, &running] {
        store.put_session(r, &[], None).await.expect("stored");
    }
    let cutoff = t0() + TimeDelta::days(30);
    assert_eq!(store.expire_identities(cutoff).await.expect("expired"), 1);
    anonymous_but_billed(&store.session("s-old").expect("read").expect("kept"));
    assert_eq!(store.session("s-new").expect("read"), Some(recent));
    assert_eq!(store.session("s-run").expect("read"), Some(running));
    assert_eq!(store.expire_identities(cutoff).await.expect("again"), 0);
}
