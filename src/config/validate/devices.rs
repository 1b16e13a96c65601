//! The main meter and the chargers: models, links, unit ids, phase wiring.

use std::collections::HashMap;
use std::time::Duration;

use super::{check, check_id, check_timeout, default_frame_gap, num};
use crate::config::error::KeyPath;
use crate::config::models;
use crate::config::raw::{RawCharger, RawConfig, RawMeter, DEFAULT_TCP_TIMEOUT_MS};
use crate::config::report::Reporter;
use crate::config::types::{Charger, Device, Link, PhaseIndex};
use crate::devices::model::{DeviceKind, ModelSpec, Transport};

/// Baud rate assumed for a model with no serial settings on record, for the frame gap.
const FALLBACK_BAUD: u32 = 9600;

/// Facts from other sections that device checks compare against.
pub struct Context<'a> {
    pub site_phases: u8,
    /// `None` when the site's own limit is invalid (already reported).
    pub grid_limit_a: Option<f64>,
    pub interval_ms: i64,
    pub bus_names: Vec<&'a str>,
}

/// The link keys a meter and a charger share.
struct LinkKeys<'a> {
    model: &'a str,
    bus: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<i64>,
    framing: Option<&'a str>,
    timeout_ms: Option<i64>,
    frame_gap_ms: Option<i64>,
    unit: Option<i64>,
}

impl<'a> From<&'a RawMeter> for LinkKeys<'a> {
    fn from(m: &'a RawMeter) -> Self {
        LinkKeys {
            model: &m.model,
            bus: m.bus.as_deref(),
            host: m.host.as_deref(),
            port: m.port,
            framing: m.framing.as_deref(),
            timeout_ms: m.timeout_ms,
            frame_gap_ms: m.frame_gap_ms,
            unit: m.unit,
        }
    }
}

impl<'a> From<&'a RawCharger> for LinkKeys<'a> {
    fn from(c: &'a RawCharger) -> Self {
        LinkKeys {
            model: &c.model,
            bus: c.bus.as_deref(),
            host: c.host.as_deref(),
            port: c.port,
            framing: c.framing.as_deref(),
            timeout_ms: c.timeout_ms,
            frame_gap_ms: c.frame_gap_ms,
            unit: c.unit,
        }
    }
}

fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Meter => "meter",
        DeviceKind::Charger => "charger",
    }
}

fn known(kind: DeviceKind) -> String {
    let names: Vec<&str> = models::all()
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.name)
        .collect();
    names.join(", ")
}

fn model(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    name: &str,
    kind: DeviceKind,
) -> Option<&'static ModelSpec> {
    let path = path.key("model");
    match models::find(name) {
        Some(spec) if spec.kind == kind => Some(spec),
        Some(spec) => {
            rep.error(
                &path,
                format!(
                    "{name:?} is a {} model, not a {}; known {} models: {}",
                    kind_name(spec.kind),
                    kind_name(kind),
                    kind_name(kind),
                    known(kind)
                ),
            );
            None
        }
        None => {
            rep.error(
                &path,
                format!(
                    "unknown {} model {name:?}; known: {}",
                    kind_name(kind),
                    known(kind)
                ),
            );
            None
        }
    }
}

/// Checks a device's model, link and unit id; the device when all are valid.
fn device(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    keys: &LinkKeys<'_>,
    kind: DeviceKind,
    ctx: &Context<'_>,
) -> Option<Device> {
    let before = rep.count();
    let spec = model(rep, path, keys.model, kind);
    let supports = |t: Transport| spec.is_none_or(|s| s.transports.contains(&t));
    let transports = |s: Option<&ModelSpec>| {
        s.map(|s| {
            let names: Vec<&str> = s
                .transports
                .iter()
                .map(|t| match t {
                    Transport::Tcp => "tcp (host)",
                    Transport::Rtu => "rtu (bus)",
                })
                .collect();
            names.join(", ")
        })
        .unwrap_or_default()
    };
    let link = match (keys.bus, keys.host) {
        (Some(_), Some(_)) => {
            rep.error(
                &path.key("host"),
                "give either bus (RS-485) or host (TCP), not both",
            );
            None
        }
        (None, None) => {
            rep.error(
                path,
                "needs a link: bus = \"…\" (RS-485) or host = \"…\" (TCP)",
            );
            None
        }
        (Some(bus), None) => {
            let defined = if ctx.bus_names.is_empty() {
                "no [[bus]] is defined".to_owned()
            } else {
                format!("defined: {}", ctx.bus_names.join(", "))
            };
            let mut ok = check(
                rep,
                ctx.bus_names.contains(&bus),
                &path.key("bus"),
                format!("no [[bus]] named {bus:?} ({defined})"),
            );
            ok &= check(
                rep,
                supports(Transport::Rtu),
                &path.key("bus"),
                format!(
                    "model {:?} cannot be reached over RS-485; it supports {}",
                    keys.model,
                    transports(spec)
                ),
            );
            for (key, given) in [
                ("port", keys.port.is_some()),
                ("timeout_ms", keys.timeout_ms.is_some()),
                ("framing", keys.framing.is_some()),
                ("frame_gap_ms", keys.frame_gap_ms.is_some()),
            ] {
                ok &= check(
                    rep,
                    !given,
                    &path.key(key),
                    "only applies to devices reached over TCP (host); an RS-485 device uses its \
                     bus's settings"
                        .into(),
                );
            }
            ok.then(|| Link::Rtu {
                bus: bus.to_owned(),
            })
        }
        (None, Some(host)) => tcp_link(rep, path, keys, spec, host, ctx),
    };
    // Unit 255 is a TCP device's "this device"; an RTU frame must carry a real address.
    let tcp = keys.host.is_some() && keys.bus.is_none() && keys.framing.is_none_or(|f| f == TCP);
    let unit = keys.unit.or(spec.map(|s| i64::from(s.default_unit)));
    // A model's default unit may be a TCP-only 255, so the defaulted value is checked too.
    if let Some(u) = unit {
        let ok = u == 255 && tcp || (1..=247).contains(&u);
        let shown = if keys.unit.is_some() {
            format!("got {u}")
        } else {
            format!("the model's default is {u}; set unit")
        };
        let reason = if u == 0 {
            "must not be 0 (the Modbus broadcast address)".to_owned()
        } else {
            format!(
                "must be 1–247 (255 is also allowed for TCP devices, not with rtu-over-tcp), \
                 {shown}"
            )
        };
        check(rep, ok, &path.key("unit"), reason);
    }
    if rep.count() != before {
        return None;
    }
    Some(Device {
        model: spec?,
        link: link?,
        unit: u8::try_from(unit?).ok()?,
    })
}

const TCP: &str = "tcp";
const RTU_OVER_TCP: &str = "rtu-over-tcp";

/// The link of a device given a `host`: Modbus TCP (to the device itself, or to a gateway in
/// front of an RS-485 device), or RTU frames over TCP to a transparent serial converter.
fn tcp_link(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    keys: &LinkKeys<'_>,
    spec: Option<&ModelSpec>,
    host: &str,
    ctx: &Context<'_>,
) -> Option<Link> {
    let supports = |t: Transport| spec.is_none_or(|s| s.transports.contains(&t));
    let mut ok = check(
        rep,
        !host.trim().is_empty() && !host.contains(char::is_whitespace),
        &path.key("host"),
        format!("must be a host name or IP address, got {host:?}"),
    );
    let framing = keys.framing.unwrap_or(TCP);
    let rtu_over_tcp = match framing {
        TCP => {
            // An RS-485 model is reached through a protocol-converting gateway.
            ok &= check(
                rep,
                supports(Transport::Tcp) || supports(Transport::Rtu),
                &path.key("host"),
                format!("model {:?} cannot be reached over Modbus TCP", keys.model),
            );
            false
        }
        RTU_OVER_TCP => {
            ok &= check(
                rep,
                supports(Transport::Rtu),
                &path.key("framing"),
                format!(
                    "model {:?} has no RS-485 interface to put behind a serial converter; \
                     leave framing out (Modbus TCP)",
                    keys.model
                ),
            );
            true
        }
        other => {
            rep.error(
                &path.key("framing"),
                format!(
                    "must be \"{TCP}\" (Modbus TCP, also through a gateway) or \
                     \"{RTU_OVER_TCP}\" (RTU frames to a transparent serial converter), \
                     got {other:?}"
                ),
            );
            return None;
        }
    };
    let port = if rtu_over_tcp {
        // Converters have no standard port (502, 4196, 8899, 20108 are all common).
        ok &= check(
            rep,
            keys.port.is_some(),
            &path.key("port"),
            "needed with framing = \"rtu-over-tcp\": serial converters have no standard port"
                .into(),
        );
        keys.port
    } else {
        keys.port.or(spec.map(|s| i64::from(s.default_port)))
    };
    if let Some(port) = keys.port {
        ok &= check(
            rep,
            (1..=65_535).contains(&port),
            &path.key("port"),
            format!("must be 1–65535, got {port}"),
        );
    }
    let timeout_ms = keys.timeout_ms.unwrap_or(DEFAULT_TCP_TIMEOUT_MS);
    ok &= check_timeout(rep, &path.key("timeout_ms"), timeout_ms, ctx.interval_ms);
    if let Some(gap) = keys.frame_gap_ms {
        ok &= check(
            rep,
            rtu_over_tcp,
            &path.key("frame_gap_ms"),
            "only applies with framing = \"rtu-over-tcp\"".into(),
        ) && check(
            rep,
            (1..=1000).contains(&gap),
            &path.key("frame_gap_ms"),
            format!("must be 1–1000 ms, got {gap}"),
        );
    }
    let (port, true) = (port?, ok) else {
        return None;
    };
    let host = host.to_owned();
    let port = port as u16;
    let timeout = Duration::from_millis(timeout_ms as u64);
    if !rtu_over_tcp {
        return Some(Link::Tcp {
            host,
            port,
            timeout,
        });
    }
    let baud = spec
        .and_then(|s| s.serial)
        .map_or(FALLBACK_BAUD, |s| s.baud);
    let frame_gap = keys.frame_gap_ms.map_or_else(
        || default_frame_gap(baud),
        |ms| Duration::from_millis(ms as u64),
    );
    Some(Link::RtuOverTcp {
        host,
        port,
        timeout,
        frame_gap,
    })
}

pub fn meter(raw: &RawMeter, ctx: &Context<'_>, rep: &mut Reporter<'_>) -> Option<Device> {
    device(
        rep,
        &KeyPath::root("meter"),
        &raw.into(),
        DeviceKind::Meter,
        ctx,
    )
}

pub fn chargers(
    raw: &[RawCharger],
    ctx: &Context<'_>,
    rep: &mut Reporter<'_>,
) -> Vec<Option<Charger>> {
    raw.iter()
        .enumerate()
        .map(|(i, c)| charger(raw, i, c, ctx, rep))
        .collect()
}

fn charger(
    all: &[RawCharger],
    i: usize,
    c: &RawCharger,
    ctx: &Context<'_>,
    rep: &mut Reporter<'_>,
) -> Option<Charger> {
    let p = KeyPath::root("charger").index(i);
    let before = rep.count();
    if check_id(rep, &p.key("id"), &c.id, "_.-", "A–Z, a–z, 0–9, _, . and -") {
        if let Some(first) = all[..i].iter().position(|o| o.id == c.id) {
            rep.error(
                &p.key("id"),
                format!("charger id {:?} is already used by charger[{first}]", c.id),
            );
        }
    }
    let device = device(rep, &p, &c.into(), DeviceKind::Charger, ctx);
    let phases_ok = check(
        rep,
        c.phases == 1 || c.phases == 3,
        &p.key("phases"),
        format!("must be 1 or 3, got {}", c.phases),
    ) && check(
        rep,
        c.phases <= i64::from(ctx.site_phases),
        &p.key("phases"),
        "a 3-phase charger cannot be connected to a 1-phase site".into(),
    );
    let phase_map = if phases_ok {
        phase_map(rep, &p, c, ctx.site_phases)
    } else {
        None
    };
    let min_ok = check(
        rep,
        c.min_current_a >= 6.0,
        &p.key("min_current_a"),
        format!(
            "must be at least 6 A (IEC 61851), got {}",
            num(c.min_current_a)
        ),
    );
    let max = c.max_current_a;
    let max_ok = check(
        rep,
        max.is_finite() && max > 0.0 && max <= 80.0,
        &p.key("max_current_a"),
        format!("must be more than 0 A and at most 80 A, got {}", num(max)),
    );
    if let (true, Some(limit)) = (max_ok, ctx.grid_limit_a) {
        check(
            rep,
            max <= limit,
            &p.key("max_current_a"),
            format!(
                "must not exceed site.grid_limit_a ({} A), got {}",
                num(limit),
                num(max)
            ),
        );
    }
    if min_ok && max_ok {
        check(
            rep,
            c.min_current_a <= max,
            &p.key("min_current_a"),
            format!(
                "must not exceed max_current_a ({} A), got {}",
                num(max),
                num(c.min_current_a)
            ),
        );
    }
    check(
        rep,
        (0..=9).contains(&c.priority),
        &p.key("priority"),
        format!("must be 0–9, got {}", c.priority),
    );
    if rep.count() != before {
        return None;
    }
    Some(Charger {
        id: c.id.clone(),
        device: device?,
        phases: c.phases as u8,
        phase_map: phase_map?,
        min_current_a: c.min_current_a,
        max_current_a: max,
        priority: c.priority as u8,
        enabled: c.enabled,
    })
}

/// The grid phase (0-based) of each charger phase; installers rotate phases between
/// chargers so single-phase cars do not all load L1.
fn phase_map(
    rep: &mut Reporter<'_>,
    p: &KeyPath,
    c: &RawCharger,
    site_phases: u8,
) -> Option<Vec<PhaseIndex>> {
    let Some(map) = &c.phase_map else {
        return Some((0..c.phases as usize).collect());
    };
    let path = p.key("phase_map");
    if !check(
        rep,
        map.len() as i64 == c.phases,
        &path,
        format!(
            "must list one grid phase per charger phase ({} entries), got {}",
            c.phases,
            map.len()
        ),
    ) {
        return None;
    }
    let mut ok = true;
    for (j, &phase) in map.iter().enumerate() {
        let here = path.index(j);
        ok &= check(
            rep,
            (1..=i64::from(site_phases)).contains(&phase),
            &here,
            format!("must be a grid phase 1–{site_phases}, got {phase}"),
        );
        if map[..j].contains(&phase) {
            rep.error(&here, format!("grid phase {phase} is listed twice"));
            ok = false;
        }
    }
    ok.then(|| map.iter().map(|&x| (x - 1) as PhaseIndex).collect())
}

/// No two devices may answer on the same bus and unit, or the same host, port and unit; and
/// one `host:port` speaks one framing (a gateway either converts to Modbus TCP or passes RTU
/// frames through, never both).
pub fn unique_links(
    raw: &RawConfig,
    meter: Option<&Device>,
    chargers: &[Option<Charger>],
    rep: &mut Reporter<'_>,
) {
    let mut seen: HashMap<(String, Option<u16>, u8), String> = HashMap::new();
    let mut framings: HashMap<(String, u16), (&'static str, String)> = HashMap::new();
    let named = std::iter::once((KeyPath::root("meter"), "meter".to_owned(), meter)).chain(
        chargers.iter().enumerate().map(|(i, c)| {
            let path = KeyPath::root("charger").index(i);
            let name = format!("charger {:?}", raw.charger[i].id);
            (path, name, c.as_ref().map(|c| &c.device))
        }),
    );
    for (path, name, device) in named {
        let Some(device) = device else { continue };
        let (key, shown) = match &device.link {
            Link::Rtu { bus } => (
                (format!("bus:{bus}"), None, device.unit),
                format!("bus {bus:?} unit {}", device.unit),
            ),
            Link::Tcp { host, port, .. } | Link::RtuOverTcp { host, port, .. } => {
                let endpoint = (host.to_lowercase(), *port);
                let kind = device.link.kind();
                match framings.get(&endpoint) {
                    Some((first_kind, first)) if *first_kind != kind => rep.error(
                        &path.key("framing"),
                        format!(
                            "{host}:{port} is reached with framing = \"{first_kind}\" by \
                             {first}; one gateway speaks one framing, got \"{kind}\""
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        framings.insert(endpoint, (kind, name.clone()));
                    }
                }
                (
                    (
                        format!("tcp:{}", host.to_lowercase()),
                        Some(*port),
                        device.unit,
                    ),
                    format!("{host}:{port} unit {}", device.unit),
                )
            }
        };
        match seen.get(&key) {
            Some(first) => rep.error(
                &path.key("unit"),
                format!("{shown} is already used by {first}"),
            ),
            None => {
                seen.insert(key, name);
            }
        }
    }
}

/// Devices behind one serial converter share its line: the longest frame gap any of them
/// needs is kept for all, as the link to `host:port` is one.
pub fn share_converter_lines(meter: Option<&mut Device>, chargers: &mut [Option<Charger>]) {
    let mut devices: Vec<&mut Device> = meter
        .into_iter()
        .chain(chargers.iter_mut().flatten().map(|c| &mut c.device))
        .collect();
    let mut gaps: HashMap<(String, u16), Duration> = HashMap::new();
    for d in &devices {
        if let Link::RtuOverTcp {
            host,
            port,
            frame_gap,
            ..
        } = &d.link
        {
            let gap = gaps.entry((host.to_lowercase(), *port)).or_default();
            *gap = (*gap).max(*frame_gap);
        }
    }
    for d in &mut devices {
        if let Link::RtuOverTcp {
            host,
            port,
            frame_gap,
            ..
        } = &mut d.link
        {
            if let Some(gap) = gaps.get(&(host.to_lowercase(), *port)) {
                *frame_gap = *gap;
            }
        }
    }
}
