//! Device links: `bus` (RS-485), or `host` with Modbus TCP framing (the device itself, or a
//! protocol-converting gateway in front of an RS-485 device) or RTU framing over TCP (a
//! transparent serial converter); and the checks across devices (one unit per link, one
//! framing per gateway, one line timing per converter).

use std::collections::HashMap;
use std::time::Duration;

use super::{check, check_timeout, default_frame_gap, Context};
use crate::config::error::KeyPath;
use crate::config::raw::{RawCharger, RawConfig, RawMeter, DEFAULT_TCP_TIMEOUT_MS};
use crate::config::report::Reporter;
use crate::config::types::{Charger, Device, Link};
use crate::devices::model::{ModelSpec, Transport};

/// Baud rate assumed for a model with no serial settings on record, for the frame gap.
const FALLBACK_BAUD: u32 = 9600;

/// The link keys a meter and a charger share.
pub(super) struct LinkKeys<'a> {
    pub(super) model: &'a str,
    pub(super) bus: Option<&'a str>,
    pub(super) host: Option<&'a str>,
    pub(super) port: Option<i64>,
    pub(super) framing: Option<&'a str>,
    pub(super) timeout_ms: Option<i64>,
    pub(super) frame_gap_ms: Option<i64>,
    pub(super) unit: Option<i64>,
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

/// Checks the link keys of a device of model `spec` (`None`: unknown, already reported); the
/// link when they are valid.
pub(super) fn link(
    rep: &mut Reporter<'_>,
    path: &KeyPath,
    keys: &LinkKeys<'_>,
    spec: Option<&ModelSpec>,
    ctx: &Context<'_>,
) -> Option<Link> {
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
    match (keys.bus, keys.host) {
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
    }
}

/// Unit 255 is a TCP device's "this device"; an RTU frame must carry a real address.
pub(super) fn unit_255_allowed(keys: &LinkKeys<'_>) -> bool {
    keys.host.is_some() && keys.bus.is_none() && keys.framing.is_none_or(|f| f == TCP)
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
