//! The service sections: tariff, MQTT, storage, local API and logging. Checked lightly:
//! enough to catch typos at install time rather than at the first session or connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::check;
use crate::config::error::KeyPath;
use crate::config::raw::{RawApi, RawLog, RawMqtt, RawStorage, RawTariff};
use crate::config::report::Reporter;
use crate::config::types::{Api, Log, Mqtt, Storage, Tariff, TariffWindow};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A non-negative decimal such as `0.35` (money is parsed exactly later, never as f64).
fn is_decimal(s: &str) -> bool {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(frac)
}

/// "HH:MM" local time; "24:00" only where `end_of_day` is allowed.
fn is_time(s: &str, end_of_day: bool) -> bool {
    let Some((h, m)) = s.split_once(':') else {
        return false;
    };
    let two = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !two(h) || !two(m) {
        return false;
    }
    match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(h), Ok(m)) => (h < 24 && m < 60) || (end_of_day && h == 24 && m == 0),
        _ => false,
    }
}

fn check_decimal(rep: &mut Reporter<'_>, path: &KeyPath, value: &str) {
    check(
        rep,
        is_decimal(value),
        path,
        format!("must be a decimal amount such as \"0.35\", got {value:?}"),
    );
}

pub fn tariff(raw: &RawTariff, rep: &mut Reporter<'_>) -> Option<Tariff> {
    let p = KeyPath::root("tariff");
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
    check_decimal(rep, &p.key("energy_price"), &raw.energy_price);
    check_decimal(rep, &p.key("session_fee"), &raw.session_fee);
    check_decimal(rep, &p.key("idle_fee_per_min"), &raw.idle_fee_per_min);
    check_decimal(rep, &p.key("time_fee_per_hour"), &raw.time_fee_per_hour);
    check(
        rep,
        (0..=10_080).contains(&raw.idle_grace_min),
        &p.key("idle_grace_min"),
        format!("must be 0–10080 minutes, got {}", raw.idle_grace_min),
    );
    let tz_ok = !raw.timezone.is_empty()
        && raw
            .timezone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    check(
        rep,
        tz_ok,
        &p.key("timezone"),
        format!(
            "must be an IANA time zone such as \"Europe/Berlin\", got {:?}",
            raw.timezone
        ),
    );
    for (i, w) in raw.window.iter().enumerate() {
        let wp = p.key("window").index(i);
        check(
            rep,
            is_time(&w.start, false),
            &wp.key("start"),
            format!(
                "must be a local time \"HH:MM\" (00:00–23:59), got {:?}",
                w.start
            ),
        );
        check(
            rep,
            is_time(&w.end, true),
            &wp.key("end"),
            format!(
                "must be a local time \"HH:MM\" (00:00–24:00), got {:?}",
                w.end
            ),
        );
        check(
            rep,
            w.start != w.end,
            &wp.key("end"),
            "must differ from start".into(),
        );
        check_decimal(rep, &wp.key("energy_price"), &w.energy_price);
        for (j, day) in w.days.iter().enumerate() {
            let dp = wp.key("days").index(j);
            if !DAYS.contains(&day.as_str()) {
                rep.error(
                    &dp,
                    format!("must be one of {}, got {day:?}", DAYS.join(", ")),
                );
            } else if w.days[..j].contains(day) {
                rep.error(&dp, format!("{day:?} is listed twice"));
            }
        }
    }
    (rep.count() == before).then(|| Tariff {
        currency: raw.currency.clone(),
        energy_price: raw.energy_price.clone(),
        session_fee: raw.session_fee.clone(),
        idle_fee_per_min: raw.idle_fee_per_min.clone(),
        idle_grace_min: raw.idle_grace_min as u32,
        time_fee_per_hour: raw.time_fee_per_hour.clone(),
        timezone: raw.timezone.clone(),
        windows: raw
            .window
            .iter()
            .map(|w| TariffWindow {
                start: w.start.clone(),
                end: w.end.clone(),
                energy_price: w.energy_price.clone(),
                days: w.days.clone(),
            })
            .collect(),
    })
}

pub fn mqtt(raw: &RawMqtt, site_id: &str, rep: &mut Reporter<'_>) -> Option<Mqtt> {
    let p = KeyPath::root("mqtt");
    let before = rep.count();
    let host = raw
        .url
        .strip_prefix("mqtt://")
        .or_else(|| raw.url.strip_prefix("mqtts://"));
    match host {
        None => rep.error(
            &p.key("url"),
            format!("must start with mqtt:// or mqtts://, got {:?}", raw.url),
        ),
        Some(rest) => {
            check(
                rep,
                !rest.is_empty() && !rest.starts_with(':') && !rest.starts_with('/'),
                &p.key("url"),
                format!("must name the broker host, got {:?}", raw.url),
            );
        }
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
    (rep.count() == before).then(|| Storage {
        path: PathBuf::from(&raw.path),
        max_size_mb: raw.max_size_mb as u64,
        retention_days: raw.retention_days as u32,
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
        !raw.level.trim().is_empty() && tracing_subscriber::EnvFilter::try_new(&raw.level).is_ok(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_times() {
        assert!(is_decimal("0.35") && is_decimal("12") && !is_decimal("-1") && !is_decimal("1."));
        assert!(!is_decimal("1,5") && !is_decimal(""));
        assert!(is_time("17:00", false) && !is_time("24:00", false) && is_time("24:00", true));
        assert!(!is_time("7:00", false) && !is_time("12:60", false));
    }
}
