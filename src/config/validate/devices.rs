//! The main meter and the chargers: models, unit ids, phase wiring; their links are checked
//! in `links`.

use super::links::{self, LinkKeys};
use super::{check, check_id, num, Context};
use crate::config::error::KeyPath;
use crate::config::models;
use crate::config::raw::{RawCharger, RawMeter};
use crate::config::report::Reporter;
use crate::config::types::{Charger, Device, PhaseIndex};
use crate::devices::model::{DeviceKind, ModelSpec};

fn kind_name(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Meter => "meter",
        DeviceKind::Charger => "charger",
    }
}

fn known(kind: DeviceKind, user: &[&'static ModelSpec]) -> String {
    let names: Vec<&str> = models::all(user)
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
    user: &[&'static ModelSpec],
) -> Option<&'static ModelSpec> {
    let path = path.key("model");
    match models::find(user, name) {
        Some(spec) if spec.kind == kind => Some(spec),
        Some(spec) => {
            rep.error(
                &path,
                format!(
                    "{name:?} is a {} model, not a {}; known {} models: {}",
                    kind_name(spec.kind),
                    kind_name(kind),
                    kind_name(kind),
                    known(kind, user)
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
                    known(kind, user)
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
    let spec = model(rep, path, keys.model, kind, ctx.user_models);
    let link = links::link(rep, path, keys, spec, ctx);
    let tcp = links::unit_255_allowed(keys);
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
    let plan = super::demand::plan(c, &p, rep);
    if rep.count() != before {
        return None;
    }
    Some(Charger {
        plan: plan?,
        id: c.id.clone(),
        device: device?,
        phases: c.phases as u8,
        phase_map: phase_map?,
        min_current_a: c.min_current_a,
        max_current_a: max,
        priority: c.priority as u8,
        enabled: c.enabled,
        auth: c.auth,
        token: c.token.clone(),
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
