//! Whose a session is, and the tariff of its group: from the cycle record's identity, late
//! or at plug-in, after a restart, by `assign_session`, and across a reload.

use chrono::TimeZone;
use rust_decimal::Decimal;

use super::*;
use crate::devices::model::ChargeState::{self, A, B, C};
use crate::tokens::AuthorizedBy;

/// The example site with a group tariff for `company` at 0.20 per kWh (the site's is 0.35).
fn cfg_with(extra: &str) -> Config {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml"))
        .unwrap_or_default();
    let text = format!("{text}\n{extra}");
    match crate::config::load_str(&text, "example.toml") {
        Ok(c) => c,
        Err(e) => panic!("example config: {e}"),
    }
}

const COMPANY: &str = r#"
[tariff.groups.company]
currency = "EUR"
energy_price = "0.20"
"#;

fn cfg() -> Config {
    cfg_with(COMPANY)
}

fn t(s: i64) -> DateTime<Utc> {
    // A Saturday, 13:00 in Berlin: outside the example's weekday window.
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::seconds(s)
}

fn who(token: &str, group: Option<&str>, by: AuthorizedBy) -> Identity {
    Identity {
        token: Some(token.into()),
        user: Some(format!("user of {token}")),
        vehicle: None,
        group: group.map(str::to_string),
        authorized_by: Some(by),
    }
}

/// cp-01 in `state`, drawing `amps` on three phases, its register at `wh`, the authoriser
/// having found `identity`.
fn view(
    at: i64,
    state: Option<ChargeState>,
    amps: f64,
    wh: f64,
    identity: &Identity,
) -> CycleRecord {
    let mut cv = ChargerCycle {
        online: state.is_some(),
        state,
        current_a: [Some(amps); 3],
        power_w: Some(amps * 230.0 * 3.0),
        energy_wh: Some(wh),
        setpoint_a: Some(16.0),
        ..ChargerCycle::unread("cp-01")
    };
    cv.auth.identity = identity.clone();
    CycleRecord {
        chargers: vec![cv],
        ..CycleRecord::blank(t(at), 32.0)
    }
}

fn updates(out: Vec<TrackerOutput>) -> Vec<SessionUpdate> {
    out.into_iter()
        .filter_map(|o| match o {
            TrackerOutput::Session(u) => Some(*u),
            TrackerOutput::Alert { .. } => None,
        })
        .collect()
}

/// Charges 11,040 W from `from` for `secs`, one view a second, with `identity` seen.
fn charge(
    tr: &mut SessionTracker,
    from: i64,
    secs: i64,
    wh0: f64,
    identity: &Identity,
) -> (Vec<SessionUpdate>, f64) {
    let mut out = Vec::new();
    let mut wh = wh0;
    for s in from..from + secs {
        wh += 16.0 * 230.0 * 3.0 / 3600.0;
        out.extend(updates(tr.observe(&view(s, Some(C), 16.0, wh, identity))));
    }
    (out, wh)
}

/// The energy cost of `r` at `price` per kWh, as the cost lines round it.
fn energy_cost(r: &SessionRecord, price: Decimal) -> Decimal {
    (Decimal::from(r.energy_wh) / Decimal::from(1000) * price).round_dp(2)
}

fn total(r: &SessionRecord) -> Decimal {
    r.cost
        .as_ref()
        .map(|c| c.total)
        .unwrap_or_else(|| panic!("no cost on {}", r.session_id))
}

#[test]
fn an_identity_known_at_plug_in_is_on_every_record_and_its_group_tariff_bills() {
    let mut tr = SessionTracker::new(&cfg());
    let anna = who("04A1", Some("company"), AuthorizedBy::Local);
    let started = updates(tr.observe(&view(0, Some(B), 0.0, 0.0, &anna)));
    assert_eq!(started[0].change, SessionChange::Started);
    assert_eq!(started[0].record.identity, anna);
    let (ups, wh) = charge(&mut tr, 1, 600, 0.0, &anna);
    assert!(ups.iter().all(|u| u.record.identity == anna));
    let done = updates(tr.observe(&view(601, Some(A), 0.0, wh, &Identity::default())));
    let r = &done[0].record;
    assert_eq!(
        r.identity, anna,
        "the unplugged cycle's empty identity is not taken"
    );
    assert_eq!(
        r.tariff.as_ref().map(|t| t.energy_price),
        Some(Decimal::new(20, 2))
    );
    assert!(r.energy_wh > 1_000);
    assert_eq!(total(r), energy_cost(r, Decimal::new(20, 2)));
    // Flat in session.v1.
    let json = serde_json::to_value(r).unwrap_or_default();
    assert_eq!(json["token"], "04A1");
    assert_eq!(json["group"], "company");
    assert_eq!(json["authorized_by"], "local");
}

#[test]
fn an_identity_that_comes_late_is_announced_and_reprices_the_session_from_its_start() {
    let mut tr = SessionTracker::new(&cfg());
    let nobody = Identity::default();
    tr.observe(&view(0, Some(B), 0.0, 0.0, &nobody));
    let (before, wh) = charge(&mut tr, 1, 600, 0.0, &nobody);
    let last = &before.last().unwrap_or_else(|| panic!("no update")).record;
    assert!(last.identity.is_empty());
    assert_eq!(total(last), energy_cost(last, Decimal::new(35, 2)));

    // The card is swiped ten minutes in.
    let anna = who("04A1", Some("company"), AuthorizedBy::Local);
    let ups = updates(tr.observe(&view(601, Some(C), 16.0, wh + 3.0, &anna)));
    assert_eq!(ups.len(), 1, "the identity is announced at once");
    assert!(ups[0].publish);
    assert_eq!(ups[0].change, SessionChange::Updated);
    assert_eq!(ups[0].record.identity, anna);
    assert_eq!(
        total(&ups[0].record),
        energy_cost(&ups[0].record, Decimal::new(20, 2)),
        "the whole session at the group's price, from its start"
    );

    // Another card later does not take the session over.
    let bob = who("0B0B", None, AuthorizedBy::Local);
    let (after, wh) = charge(&mut tr, 602, 60, wh + 3.0, &bob);
    assert!(after.iter().all(|u| u.record.identity == anna));
    let done = updates(tr.observe(&view(700, Some(A), 0.0, wh, &bob)));
    assert_eq!(done[0].record.identity, anna);
}

#[test]
fn a_free_charger_that_learns_the_token_later_records_it() {
    let mut tr = SessionTracker::new(&cfg());
    let free = Identity {
        authorized_by: Some(AuthorizedBy::Free),
        ..Identity::default()
    };
    let started = updates(tr.observe(&view(0, Some(B), 0.0, 0.0, &free)));
    assert_eq!(started[0].record.identity, free);
    let anna = who("04A1", None, AuthorizedBy::Free);
    let ups = updates(tr.observe(&view(1, Some(B), 0.0, 0.0, &anna)));
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].record.identity, anna);
}

#[test]
fn a_group_without_a_tariff_is_billed_at_the_sites() {
    let mut tr = SessionTracker::new(&cfg());
    let guest = who("0C0C", Some("visitors"), AuthorizedBy::Cloud);
    tr.observe(&view(0, Some(B), 0.0, 0.0, &guest));
    let (_, wh) = charge(&mut tr, 1, 300, 0.0, &guest);
    let done = updates(tr.observe(&view(301, Some(A), 0.0, wh, &guest)));
    let r = &done[0].record;
    assert_eq!(r.identity.group.as_deref(), Some("visitors"));
    assert_eq!(total(r), energy_cost(r, Decimal::new(35, 2)));
}

#[test]
fn the_identity_survives_a_restart() {
    let mut tr = SessionTracker::new(&cfg());
    let anna = who("04A1", Some("company"), AuthorizedBy::Cache);
    tr.observe(&view(0, Some(B), 0.0, 0.0, &anna));
    let (_, wh) = charge(&mut tr, 1, 300, 0.0, &anna);
    let stored = tr.active().pop().unwrap_or_else(|| panic!("no session"));
    assert_eq!(stored.identity, anna);
    let mut stored = stored;
    stored.tariff = updates(tr.observe(&view(301, Some(C), 16.0, wh, &anna)))
        .pop()
        .and_then(|u| u.record.tariff)
        .or_else(|| tr.current(t(301)).pop().and_then(|r| r.tariff));
    let samples = tr.slots[0].machine.samples().to_vec();

    // After the restart the charger reports no id (the authoriser starts empty).
    let mut again = SessionTracker::new(&cfg());
    assert!(again.resume(&stored, samples, t(400)));
    let (ups, wh) = charge(&mut again, 400, 120, wh, &Identity::default());
    assert!(!ups.is_empty());
    assert!(ups.iter().all(|u| u.record.identity == anna));
    let done = updates(again.observe(&view(520, Some(A), 0.0, wh, &Identity::default())));
    assert_eq!(done[0].record.identity, anna);
    assert_eq!(
        total(&done[0].record),
        energy_cost(&done[0].record, Decimal::new(20, 2))
    );
}

#[test]
fn assign_names_the_owner_of_a_running_session_and_reprices_it() {
    let mut tr = SessionTracker::new(&cfg());
    let anna = who("04A1", None, AuthorizedBy::Local);
    tr.observe(&view(0, Some(B), 0.0, 0.0, &anna));
    let (_, wh) = charge(&mut tr, 1, 300, 0.0, &anna);
    let id = tr.active()[0].session_id.clone();
    assert!(tr
        .assign("no-such-session", Identity::default(), t(301))
        .is_none());

    let owner = Identity {
        user: Some("fleet car 7".into()),
        group: Some("company".into()),
        authorized_by: Some(AuthorizedBy::Assigned),
        ..Identity::default()
    };
    let u = tr
        .assign(&id, owner.clone(), t(301))
        .unwrap_or_else(|| panic!("the running session is assigned"));
    assert_eq!(u.record.session_id, id);
    assert_eq!(u.change, SessionChange::Updated);
    assert!(u.publish);
    assert_eq!(u.record.identity, owner);
    assert_eq!(
        total(&u.record),
        energy_cost(&u.record, Decimal::new(20, 2))
    );
    // The assignment holds over the charger's own id for the rest of the session.
    let (ups, wh) = charge(&mut tr, 301, 60, wh, &anna);
    assert!(ups.iter().all(|u| u.record.identity == owner));
    let done = updates(tr.observe(&view(361, Some(A), 0.0, wh, &anna)));
    assert_eq!(done[0].record.identity, owner);
}

#[test]
fn assign_ended_reprices_a_stored_session_from_its_samples() {
    let mut tr = SessionTracker::new(&cfg());
    let nobody = Identity::default();
    tr.observe(&view(0, Some(B), 0.0, 0.0, &nobody));
    let (_, wh) = charge(&mut tr, 1, 600, 0.0, &nobody);
    let samples = tr.slots[0].machine.samples().to_vec();
    let done = updates(tr.observe(&view(601, Some(A), 0.0, wh, &nobody)));
    let mut r = done[0].record.clone();
    let site_total = total(&r);
    assert_eq!(site_total, energy_cost(&r, Decimal::new(35, 2)));

    let owner = who("04A1", Some("company"), AuthorizedBy::Assigned);
    let tariff = tr.group_tariff(Some("company"));
    assign_ended(&mut r, &samples, owner.clone(), tariff);
    assert_eq!(r.identity, owner);
    assert_eq!(total(&r), energy_cost(&r, Decimal::new(20, 2)));
    assert!(total(&r) < site_total);

    // A group with no tariff keeps the snapshot the session was billed by.
    assert!(tr.group_tariff(Some("visitors")).is_none());
    let guest = who("0C0C", Some("visitors"), AuthorizedBy::Assigned);
    assign_ended(&mut r, &samples, guest.clone(), None);
    assert_eq!(r.identity, guest);
    assert_eq!(total(&r), energy_cost(&r, Decimal::new(20, 2)));
}

#[test]
fn a_reload_keeps_a_running_session_on_its_snapshot() {
    let mut tr = SessionTracker::new(&cfg());
    let anna = who("04A1", Some("company"), AuthorizedBy::Local);
    tr.observe(&view(0, Some(B), 0.0, 0.0, &anna));
    let (_, wh) = charge(&mut tr, 1, 120, 0.0, &anna);
    let dearer = COMPANY.replace("0.20", "0.50");
    tr.reconfigure(&cfg_with(&dearer));
    let (_, wh) = charge(&mut tr, 121, 120, wh, &anna);
    let done = updates(tr.observe(&view(241, Some(A), 0.0, wh, &anna)));
    assert_eq!(
        total(&done[0].record),
        energy_cost(&done[0].record, Decimal::new(20, 2))
    );
    // The next session of the group takes the new price.
    tr.observe(&view(300, Some(B), 0.0, wh, &anna));
    let (_, wh2) = charge(&mut tr, 301, 120, wh, &anna);
    let done = updates(tr.observe(&view(421, Some(A), 0.0, wh2, &anna)));
    assert_eq!(
        total(&done[0].record),
        energy_cost(&done[0].record, Decimal::new(50, 2))
    );
}
