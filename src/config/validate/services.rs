//! The service sections: tariff, MQTT, storage, local API and logging. Checked lightly:
//! enough to catch typos at install time rather than at the first session or connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;

use super::{check, zone};
use crate::config::error::KeyPath;
use crate::config::raw::{RawApi, RawLog, RawMqtt, RawStorage, RawTariff};
use crate::config::report::Reporter;
use crate::config::types::{Api, Log, Mqtt, Storage, Tariff};
use crate::sessions::tariff::day_names::{self, NAMES};
use crate::sessions::tariff::{parse_amount, ClockTime, TouWindow};

/// An amount of money, parsed exactly (never as f64) into what sessions are billed with.
fn amount(rep: &mut Reporter<'_>, path: &KeyPath, value: &str) -> Option<Decimal> {
    let amount = parse_amount(value);
    check(
        rep,
        amount.is_some(),
        path,
        format!("must be a decimal amount such as \"0.35\", got {value:?}"),
    );
    amount
}

/// A window's local time, "HH:MM"; "24:00" only where `end_of_day` is allowed.
fn local_time(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    value: &str,
    end_of_day: bool,
) -> Option<ClockTime> {
    let time = value
        .parse::<ClockTime>()
        .ok()
        .filter(|t| end_of_day || *t < ClockTime::END_OF_DAY);
    let range = if end_of_day {
        "00:00–24:00"
    } else {
        "00:00–23:59"
    };
    check(
        rep,
        time.is_some(),
        path,
        format!("must be a local time \"HH:MM\" ({range}), got {value:?}"),
    );
    time
}

/// `[tariff]`, parsed into the snapshot sessions are billed with.
pub fn tariff(raw: &RawTariff, rep: &mut Reporter<'_>) -> Option<Tariff> {
    one_tariff(raw, &KeyPath::root("tariff"), "UTC", rep)
}

/// `[tariff.groups.NAME]`: each group's whole tariff, checked as `[tariff]` is, its zone
/// defaulting to the site tariff's (`site_zone`, as written). Empty when any is wrong (each
/// mistake reported at its place).
pub fn tariff_groups(
    raw: &RawTariff,
    rep: &mut Reporter<'_>,
) -> std::collections::BTreeMap<String, Tariff> {
    let site_zone = raw.timezone.as_deref().unwrap_or("UTC");
    let mut groups = std::collections::BTreeMap::new();
    for (name, group) in &raw.groups {
        let p = KeyPath::root("tariff").key("groups").key(name);
        check(
            rep,
            !name.trim().is_empty() && name.trim() == name,
            &p,
            format!("a group name must be non-empty without surrounding blanks, got {name:?}"),
        );
        for inner in group.groups.keys() {
            rep.error(
                &p.key("groups").key(inner),
                "group tariffs are listed under [tariff] only, not inside a group's",
            );
        }
        if let Some(t) = one_tariff(group, &p, site_zone, rep) {
            groups.insert(name.clone(), t);
        }
    }
    groups
}

/// One tariff at `p`, its zone `default_zone` when it names none.
fn one_tariff(
    raw: &RawTariff,
    p: &KeyPath,
    default_zone: &str,
    rep: &mut Reporter<'_>,
) -> Option<Tariff> {
    let before = rep.count();
    check(
        rep,
        raw.currency.len() == 3 && raw.currency.bytes().all(|b| b.is_ascii_uppercase()),
        &p.key("currency"),
        format!(
            "must be an ISO 4217 code such as \"EUR\", got {:?}",
            raw.currency
        ),
    );
    let energy_price = amount(rep, &p.key("energy_price"), &raw.energy_price);
    let session_fee = amount(rep, &p.key("session_fee"), &raw.session_fee);
    let idle_fee_per_min = amount(rep, &p.key("idle_fee_per_min"), &raw.idle_fee_per_min);
    let time_fee_per_hour = amount(rep, &p.key("time_fee_per_hour"), &raw.time_fee_per_hour);
    check(
        rep,
        (0..=10_080).contains(&raw.idle_grace_min),
        &p.key("idle_grace_min"),
        format!("must be 0–10080 minutes, got {}", raw.idle_grace_min),
    );
    let timezone = zone::zone(
        raw.timezone.as_deref().unwrap_or(default_zone),
        &p.key("timezone"),
        rep,
    );
    let mut windows = Vec::new();
    for (i, w) in raw.window.iter().enumerate() {
        let wp = p.key("window").index(i);
        let start = local_time(rep, &wp.key("start"), &w.start, false);
        let end = local_time(rep, &wp.key("end"), &w.end, true);
        check(
            rep,
            w.start != w.end,
            &wp.key("end"),
            "must differ from start".into(),
        );
        let price = amount(rep, &wp.key("energy_price"), &w.energy_price);
        let mut days = Vec::new();
        for (j, day) in w.days.iter().enumerate() {
            let dp = wp.key("days").index(j);
            match day_names::parse(day) {
                None => {
                    let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                    rep.error(
                        &dp,
                        format!("must be one of {}, got {day:?}", names.join(", ")),
                    )
                }
                Some(_) if w.days[..j].contains(day) => {
                    rep.error(&dp, format!("{day:?} is listed twice"))
                }
                Some(d) => days.push(d),
            }
        }
        if let (Some(start), Some(end), Some(price)) = (start, end, price) {
            windows.push(TouWindow::new(start, end, price, days));
        }
    }
    if rep.count() != before {
        return None;
    }
    Some(Tariff {
        currency: raw.currency.clone(),
        energy_price: energy_price?,
        session_fee: session_fee?,
        idle_fee_per_min: idle_fee_per_min?,
        idle_grace_min: u32::try_from(raw.idle_grace_min).ok()?,
        time_fee_per_hour: time_fee_per_hour?,
        timezone: timezone?,
        windows,
    })
}

pub fn mqtt(raw: &RawMqtt, site_id: &str, rep: &mut Reporter<'_>) -> Option<Mqtt> {
    let p = KeyPath::root("mqtt");
    let before = rep.count();
    // The same parse the link connects with, so a URL that passes here cannot fail there.
    match crate::sync::parse_url(&raw.url) {
        Err(crate::sync::SyncError::Url { reason, .. }) => {
            rep.error(&p.key("url"), format!("{reason}, got {:?}", raw.url))
        }
        Err(e) => rep.error(&p.key("url"), e.to_string()),
        Ok(_) => {}
    }
    let client_id = raw
        .client_id
        .clone()
        .unwrap_or_else(|| format!("evsite-{site_id}"));
    check(
        rep,
        !client_id.is_empty() && !client_id.contains(['+', '#', '/']),
        &p.key("client_id"),
        format!("must be non-empty without +, # or /, got {client_id:?}"),
    );
    for (key, value) in [
        ("username", &raw.username),
        ("password_file", &raw.password_file),
        ("ca_file", &raw.ca_file),
        ("cert_file", &raw.cert_file),
        ("key_file", &raw.key_file),
    ] {
        if let Some(v) = value {
            check(
                rep,
                !v.is_empty(),
                &p.key(key),
                "must not be empty; leave the key out instead".into(),
            );
        }
    }
    match (&raw.cert_file, &raw.key_file) {
        (Some(_), None) => rep.error(
            &p.key("key_file"),
            "missing: cert_file and key_file go together (client certificate)",
        ),
        (None, Some(_)) => rep.error(
            &p.key("cert_file"),
            "missing: cert_file and key_file go together (client certificate)",
        ),
        _ => {}
    }
    let prefix = &raw.topic_prefix;
    check(
        rep,
        !prefix.is_empty()
            && !prefix.contains(['+', '#'])
            && !prefix.starts_with('/')
            && !prefix.ends_with('/'),
        &p.key("topic_prefix"),
        format!("must be non-empty, without + or #, and not start or end with /, got {prefix:?}"),
    );
    check(
        rep,
        (1..=3600).contains(&raw.telemetry_interval_s),
        &p.key("telemetry_interval_s"),
        format!("must be 1–3600 s, got {}", raw.telemetry_interval_s),
    );
    let path = |v: &Option<String>| v.as_ref().map(PathBuf::from);
    (rep.count() == before).then(|| Mqtt {
        url: raw.url.clone(),
        client_id,
        username: raw.username.clone(),
        password_file: path(&raw.password_file),
        ca_file: path(&raw.ca_file),
        cert_file: path(&raw.cert_file),
        key_file: path(&raw.key_file),
        topic_prefix: prefix.clone(),
        telemetry_interval: Duration::from_secs(raw.telemetry_interval_s as u64),
    })
}

pub fn storage(raw: &RawStorage, rep: &mut Reporter<'_>) -> Option<Storage> {
    let p = KeyPath::root("storage");
    let before = rep.count();
    check(
        rep,
        !raw.path.is_empty(),
        &p.key("path"),
        "must not be empty".into(),
    );
    check(
        rep,
        raw.max_size_mb >= 1,
        &p.key("max_size_mb"),
        format!("must be at least 1 MB, got {}", raw.max_size_mb),
    );
    check(
        rep,
        (1..=36_500).contains(&raw.retention_days),
        &p.key("retention_days"),
        format!("must be 1–36500 days, got {}", raw.retention_days),
    );
    let identity_days = raw.identity_retention_days.unwrap_or(raw.retention_days);
    check(
        rep,
        (1..=raw.retention_days.max(1)).contains(&identity_days),
        &p.key("identity_retention_days"),
        format!(
            "must be 1 day to retention_days ({}), got {identity_days}",
            raw.retention_days
        ),
    );
    (rep.count() == before).then(|| Storage {
        path: PathBuf::from(&raw.path),
        max_size_mb: raw.max_size_mb as u64,
        retention_days: raw.retention_days as u32,
        identity_retention_days: identity_days as u32,
    })
}

pub fn api(raw: &RawApi, rep: &mut Reporter<'_>) -> Option<Api> {
    let p = KeyPath::root("api");
    let before = rep.count();
    let listen = raw.listen.parse::<SocketAddr>().ok();
    check(
        rep,
        listen.is_some(),
        &p.key("listen"),
        format!(
            "must be an address and port such as \"127.0.0.1:8787\", got {:?}",
            raw.listen
        ),
    );
    if let Some(file) = &raw.token_file {
        check(
            rep,
            !file.trim().is_empty(),
            &p.key("token_file"),
            "must name a file holding the bearer token".into(),
        );
    }
    // Off loopback anyone on the network could read the site: only with a token.
    if let Some(addr) = listen {
        check(
            rep,
            addr.ip().is_loopback() || raw.token_file.is_some(),
            &p.key("token_file"),
            format!(
                "required when api.listen ({addr}) is not a loopback address: a file holding the bearer token clients must send"
            ),
        );
    }
    let listen = listen.filter(|_| rep.count() == before)?;
    Some(Api {
        listen,
        token_file: raw.token_file.as_ref().map(PathBuf::from),
    })
}

pub fn log(raw: &RawLog, rep: &mut Reporter<'_>) -> Option<Log> {
    let ok = check(
        rep,
        !raw.level.trim().is_empty() && crate::app::logging::parse_level(&raw.level).is_ok(),
        &KeyPath::root("log").key("level"),
        format!(
            "must be a log filter such as \"info\" or \"evsite=debug\", got {:?}",
            raw.level
        ),
    );
    ok.then(|| Log {
        level: raw.level.clone(),
    })
}
