//! Raw → checked: every rule is run and every failure collected, never fail-fast, so one
//! `check-config` shows the installer the whole list.
//!
//! Each section has its own file; this one holds the site, the control loop and the RS-485
//! buses, and assembles the [`Config`] only when nothing was reported.

mod anomaly;
mod auth;
mod circuits;
mod demand;
mod devices;
mod failsafe;
pub mod files;
mod links;
mod services;
mod zone;

use std::path::PathBuf;
use std::time::Duration;

use super::error::KeyPath;
use super::raw::{RawBus, RawConfig, RawControl, RawSite};
use super::report::Reporter;
use super::types::{Bus, Config, Control, Site};
use crate::devices::model::Parity;

/// Facts from other sections that the device checks (`devices`, and `links` for their
/// links) compare against. Here so that `devices` uses `links` and not the other way too.
pub struct Context<'a> {
    pub site_phases: u8,
    /// `None` when the site's own limit is invalid (already reported).
    pub grid_limit_a: Option<f64>,
    pub interval_ms: i64,
    pub bus_names: Vec<&'a str>,
    /// The installer's own models (`[devices] models_dir`).
    pub user_models: &'a [&'static crate::devices::model::ModelSpec],
}

/// Standard RS-485 line rates.
pub const BAUD_RATES: [i64; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// Checks `raw`, reporting into `rep`; the checked config when nothing was wrong.
pub fn validate(raw: &RawConfig, rep: &mut Reporter<'_>) -> Option<Config> {
    // The site's own zone is checked here; without one it takes the tariff's, once the
    // tariff is checked below (its zone is parsed there, and only there).
    let own_zone = raw
        .site
        .timezone
        .as_deref()
        .map(|name| zone::zone(name, &KeyPath::root("site").key("timezone"), rep));
    let site = site(&raw.site, rep).filter(|_| !matches!(own_zone, Some(None)));
    let control = control(&raw.control, rep);
    // Later checks compare against these; a broken value is replaced by its default so
    // that one mistake does not hide or multiply others.
    let interval_ms = control
        .as_ref()
        .map_or(1000, |c| c.interval.as_millis() as i64);
    let buses = buses(&raw.bus, interval_ms, rep);
    let user_models = super::models::user_models(&raw.devices, rep);
    let ctx = Context {
        site_phases: site.as_ref().map_or(3, |s| s.phases),
        grid_limit_a: site.as_ref().map(|s| s.grid_limit_a),
        interval_ms,
        bus_names: raw.bus.iter().map(|b| b.name.as_str()).collect(),
        user_models: &user_models,
    };
    let mut meter = devices::meter(&raw.meter, &ctx, rep);
    let mut chargers = devices::chargers(&raw.charger, &ctx, rep);
    links::unique_links(raw, meter.as_ref(), &chargers, rep);
    links::share_converter_lines(meter.as_mut(), &mut chargers);
    let circuits = circuits::circuits(&raw.circuit, &raw.charger, rep);
    if let (Some(site), Some(chargers)) = (&site, all(&chargers)) {
        failsafe::check(site, &chargers, &circuits, rep);
    }
    let site_id = raw.site.id.as_str();
    let tariff = raw.tariff.as_ref().map(|t| services::tariff(t, rep));
    let tariff_groups = raw
        .tariff
        .as_ref()
        .map(|t| services::tariff_groups(t, rep))
        .unwrap_or_default();
    let timezone = site_zone(own_zone.flatten(), tariff.as_ref());
    let mqtt = raw.mqtt.as_ref().map(|m| services::mqtt(m, site_id, rep));
    let storage = services::storage(&raw.storage, rep);
    let api = services::api(&raw.api, rep);
    let log = services::log(&raw.log, rep);
    let auth = auth::auth(&raw.auth, rep);
    if let Some(a) = &auth {
        ungrouped_tariffs(a, &tariff_groups, rep);
    }
    auth::chargers(
        &raw.charger,
        &chargers,
        auth.as_ref(),
        raw.mqtt.is_some(),
        rep,
    );
    let anomaly = anomaly::anomaly(&raw.anomaly, rep);
    let demand = raw.demand.as_ref().map(|d| demand::demand(d, rep));
    let schedules = demand::schedules(&raw.schedule, &raw.charger, rep);
    files::check(raw, rep);

    if rep.has_errors() {
        return None;
    }
    Some(Config {
        site: Site {
            timezone: timezone?,
            ..site?
        },
        control: control?,
        buses: all(&buses)?,
        meter: meter?,
        chargers: all(&chargers)?,
        circuits,
        tariff: tariff.flatten(),
        tariff_groups,
        mqtt: mqtt.flatten(),
        storage: storage?,
        api: api?,
        auth: auth?,
        log: log?,
        anomaly: anomaly?,
        demand: demand.flatten(),
        schedules,
        clock: raw.clock.clone(),
    })
}

/// A warning for each group on the token list with no `[tariff.groups]` entry, once the
/// site has group tariffs at all: its sessions are billed at the site's `[tariff]`.
fn ungrouped_tariffs(
    auth: &super::types::Auth,
    groups: &std::collections::BTreeMap<String, super::types::Tariff>,
    rep: &mut Reporter<'_>,
) {
    if groups.is_empty() {
        return;
    }
    let mut missing: Vec<&str> = auth
        .tokens
        .iter()
        .filter_map(|t| t.group.as_deref())
        .filter(|g| !groups.contains_key(*g))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for g in missing {
        rep.warn(
            &KeyPath::root("tariff").key("groups"),
            format!("group {g:?} of the token list has no tariff here: its sessions are billed at the site's [tariff]"),
        );
    }
}

/// The site's time zone: `[site] timezone` (`site`, as checked), else the tariff's (as its
/// check parsed it), else UTC. `None` when the zone it would take was not valid: the check
/// of that zone reported it.
fn site_zone(
    site: Option<chrono_tz::Tz>,
    tariff: Option<&Option<super::types::Tariff>>,
) -> Option<chrono_tz::Tz> {
    match (site, tariff) {
        (Some(zone), _) => Some(zone),
        (None, Some(tariff)) => tariff.as_ref().map(|t| t.timezone),
        (None, None) => Some(chrono_tz::UTC),
    }
}

/// All values, when every one of them was valid.
fn all<T: Clone>(items: &[Option<T>]) -> Option<Vec<T>> {
    items.iter().cloned().collect()
}

/// Reports `reason` at `path` unless `ok`; returns `ok`.
pub(crate) fn check(rep: &mut Reporter<'_>, ok: bool, path: &KeyPath, reason: String) -> bool {
    if !ok {
        rep.error(path, reason);
    }
    ok
}

/// Amps (or any quantity) for a message: no float noise, no needless ".0".
pub(crate) fn num(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    format!("{rounded}")
}

/// An identifier of letters, digits and the given extra characters.
pub(crate) fn check_id(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    id: &str,
    extra: &str,
    shown: &str,
) -> bool {
    if id.is_empty() {
        rep.error(path, "must not be empty");
        return false;
    }
    let ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    check(
        rep,
        ok,
        path,
        format!("may only contain {shown}, got {id:?}"),
    )
}

fn site(raw: &RawSite, rep: &mut Reporter<'_>) -> Option<Site> {
    let p = KeyPath::root("site");
    let errors_before = rep.count();
    check_id(rep, &p.key("id"), &raw.id, "_-", "A–Z, a–z, 0–9, _ and -");
    let limit = raw.grid_limit_a;
    let limit_ok = check(
        rep,
        limit.is_finite() && limit > 0.0 && limit <= 4000.0,
        &p.key("grid_limit_a"),
        format!(
            "must be more than 0 A and at most 4000 A, got {}",
            num(limit)
        ),
    );
    check(
        rep,
        raw.phases == 1 || raw.phases == 3,
        &p.key("phases"),
        format!("must be 1 or 3, got {}", raw.phases),
    );
    check(
        rep,
        (100.0..=500.0).contains(&raw.voltage_v),
        &p.key("voltage_v"),
        format!("must be 100–500 V, got {}", num(raw.voltage_v)),
    );
    let margin = raw.margin_a;
    if check(
        rep,
        margin.is_finite() && margin >= 0.0,
        &p.key("margin_a"),
        format!("must be at least 0 A, got {}", num(margin)),
    ) && limit_ok
    {
        check(
            rep,
            margin < limit,
            &p.key("margin_a"),
            format!(
                "must be less than grid_limit_a ({} A), got {}",
                num(limit),
                num(margin)
            ),
        );
    }
    let fs = raw.failsafe_current_a;
    check(
        rep,
        fs.is_finite() && (fs == 0.0 || fs >= 6.0),
        &p.key("failsafe_current_a"),
        format!(
            "must be 0 (pause all chargers) or at least 6 A (IEC 61851), got {}",
            num(fs)
        ),
    );
    (rep.count() == errors_before).then(|| Site {
        id: raw.id.clone(),
        grid_limit_a: limit,
        phases: raw.phases as u8,
        voltage_v: raw.voltage_v,
        margin_a: margin,
        failsafe_current_a: fs,
        timezone: chrono_tz::UTC,
    })
}

/// The main meter's own read period when the config sets none (capped at `interval_ms`).
const DEFAULT_METER_INTERVAL_MS: i64 = 200;

fn control(raw: &RawControl, rep: &mut Reporter<'_>) -> Option<Control> {
    let p = KeyPath::root("control");
    let before = rep.count();
    let interval_ok = check(
        rep,
        (100..=60_000).contains(&raw.interval_ms),
        &p.key("interval_ms"),
        format!("must be 100–60000 ms, got {}", raw.interval_ms),
    );
    let mi = raw
        .meter_interval_ms
        .unwrap_or(DEFAULT_METER_INTERVAL_MS.min(raw.interval_ms));
    // Unset, it follows interval_ms: a bad interval_ms is reported once, on its own key.
    let derived_from_bad_interval = raw.meter_interval_ms.is_none() && !interval_ok;
    check(
        rep,
        derived_from_bad_interval
            || ((50..=60_000).contains(&mi) && (!interval_ok || mi <= raw.interval_ms)),
        &p.key("meter_interval_ms"),
        format!("must be 50–60000 ms and at most interval_ms, got {mi}"),
    );
    let mt = raw.meter_timeout_s;
    let floor_ms = if interval_ok { 2 * raw.interval_ms } else { 0 };
    check(
        rep,
        // The range first: a huge value must not overflow the product.
        (1..=300).contains(&mt) && mt * 1000 >= floor_ms,
        &p.key("meter_timeout_s"),
        format!(
            "must be at least twice interval_ms ({} ms) and at most 300 s, got {mt}",
            floor_ms
        ),
    );
    check(
        rep,
        raw.ramp_step_a.is_finite() && raw.ramp_step_a > 0.0,
        &p.key("ramp_step_a"),
        format!("must be more than 0 A, got {}", num(raw.ramp_step_a)),
    );
    check(
        rep,
        raw.hysteresis_a.is_finite() && raw.hysteresis_a >= 0.0,
        &p.key("hysteresis_a"),
        format!("must be at least 0 A, got {}", num(raw.hysteresis_a)),
    );
    check(
        rep,
        (1..=86_400).contains(&raw.rotation_interval_s),
        &p.key("rotation_interval_s"),
        format!("must be 1–86400 s, got {}", raw.rotation_interval_s),
    );
    check(
        rep,
        raw.unused_threshold_a.is_finite() && raw.unused_threshold_a >= 0.0,
        &p.key("unused_threshold_a"),
        format!("must be at least 0 A, got {}", num(raw.unused_threshold_a)),
    );
    (rep.count() == before).then(|| Control {
        interval: Duration::from_millis(raw.interval_ms as u64),
        meter_interval: Duration::from_millis(mi as u64),
        meter_timeout: Duration::from_secs(mt as u64),
        ramp_step_a: raw.ramp_step_a,
        hysteresis_a: raw.hysteresis_a,
        rotation_interval: Duration::from_secs(raw.rotation_interval_s as u64),
        unused_threshold_a: raw.unused_threshold_a,
    })
}

/// A request timeout: 10–10000 ms and within one control cycle, since the loop waits for
/// its reads before deciding.
pub(crate) fn check_timeout(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    timeout_ms: i64,
    interval_ms: i64,
) -> bool {
    check(
        rep,
        (10..=10_000).contains(&timeout_ms),
        path,
        format!("must be 10–10000 ms, got {timeout_ms}"),
    ) && check(
        rep,
        timeout_ms <= interval_ms,
        path,
        format!("must not exceed control.interval_ms ({interval_ms} ms), got {timeout_ms}"),
    )
}

fn buses(raw: &[RawBus], interval_ms: i64, rep: &mut Reporter<'_>) -> Vec<Option<Bus>> {
    let mut out = Vec::new();
    for (i, b) in raw.iter().enumerate() {
        let p = KeyPath::root("bus").index(i);
        let before = rep.count();
        if check_id(
            rep,
            &p.key("name"),
            &b.name,
            "_.-",
            "A–Z, a–z, 0–9, _, . and -",
        ) {
            if let Some(first) = raw[..i].iter().position(|o| o.name == b.name) {
                rep.error(
                    &p.key("name"),
                    format!("bus name {:?} is already used by bus[{first}]", b.name),
                );
            }
        }
        check(
            rep,
            !b.device.trim().is_empty(),
            &p.key("device"),
            "must name the serial device, e.g. /dev/ttyUSB0".into(),
        );
        check(
            rep,
            BAUD_RATES.contains(&b.baud),
            &p.key("baud"),
            format!("must be a standard rate ({BAUD_RATES:?}), got {}", b.baud),
        );
        let parity = match b.parity.as_str() {
            "none" => Some(Parity::None),
            "even" => Some(Parity::Even),
            "odd" => Some(Parity::Odd),
            other => {
                rep.error(
                    &p.key("parity"),
                    format!("must be \"none\", \"even\" or \"odd\", got {other:?}"),
                );
                None
            }
        };
        check(
            rep,
            b.stop_bits == 1 || b.stop_bits == 2,
            &p.key("stop_bits"),
            format!("must be 1 or 2, got {}", b.stop_bits),
        );
        check_timeout(rep, &p.key("timeout_ms"), b.timeout_ms, interval_ms);
        if let Some(gap) = b.frame_gap_ms {
            check(
                rep,
                (1..=1000).contains(&gap),
                &p.key("frame_gap_ms"),
                format!("must be 1–1000 ms, got {gap}"),
            );
        }
        let bus = (rep.count() == before).then(|| Bus {
            name: b.name.clone(),
            device: PathBuf::from(&b.device),
            baud: b.baud as u32,
            parity: parity.unwrap_or(Parity::None),
            stop_bits: b.stop_bits as u8,
            timeout: Duration::from_millis(b.timeout_ms as u64),
            frame_gap: b.frame_gap_ms.map_or_else(
                || default_frame_gap(b.baud as u32),
                |ms| Duration::from_millis(ms as u64),
            ),
        });
        out.push(bus);
    }
    out
}

/// Modbus RTU's inter-frame silence: 3.5 character times of 11 bits, at least 2 ms (the
/// spec fixes 1.75 ms above 19200 baud; USB adapters need the extra slack).
pub fn default_frame_gap(baud: u32) -> Duration {
    let micros = 38_500_000 / u64::from(baud.max(1));
    Duration::from_micros(micros.max(2_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_gap_is_three_and_a_half_characters_but_at_least_2_ms() {
        assert_eq!(default_frame_gap(9600), Duration::from_micros(4010));
        assert_eq!(default_frame_gap(1200), Duration::from_micros(32083));
        assert_eq!(default_frame_gap(115_200), Duration::from_millis(2));
    }

    fn control_with(extra: &str) -> Result<Config, crate::config::ConfigErrors> {
        crate::config::load_str(
            &format!(
                "[site]\nid = \"s\"\ngrid_limit_a = 63.0\n\
                 [meter]\nmodel = \"eastron-sdm630\"\nhost = \"127.0.0.1\"\ntimeout_ms = 100\n\
                 [control]\n{extra}\n"
            ),
            "test",
        )
    }

    #[test]
    fn meter_interval_defaults_to_200_ms_capped_at_the_cycle() {
        let c = control_with("").expect("valid");
        assert_eq!(c.control.meter_interval, Duration::from_millis(200));
        let c = control_with("interval_ms = 150").expect("valid");
        assert_eq!(c.control.meter_interval, Duration::from_millis(150));
        let c = control_with("meter_interval_ms = 1000").expect("valid");
        assert_eq!(c.control.meter_interval, Duration::from_secs(1));
    }

    #[test]
    fn a_bad_interval_is_one_error_not_two() {
        let errs = control_with("interval_ms = 5").expect_err("interval_ms = 5");
        assert_eq!(errs.len(), 1, "{errs}");
        assert!(errs.to_string().contains("control.interval_ms: "), "{errs}");
    }

    #[test]
    fn meter_interval_out_of_range_is_a_located_error() {
        for bad in ["meter_interval_ms = 20", "meter_interval_ms = 1500"] {
            let errs = control_with(bad).expect_err(bad);
            let e = errs.iter().next().expect("one error");
            let shown = e.to_string();
            assert_eq!(errs.len(), 1, "{errs}");
            assert!(
                shown.starts_with("test:") && shown.contains("control.meter_interval_ms: "),
                "{shown}"
            );
            assert!(shown.contains("at most interval_ms"), "{shown}");
        }
    }

    #[test]
    fn numbers_print_without_float_noise() {
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(48.0), "48");
    }
}
