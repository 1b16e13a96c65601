//! One line per model for `evsite models`: what it is, how to reach it, what it can do.

use super::model::{DeviceKind, ModelSpec, Parity, Transport};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    pub name: &'static str,
    pub kind: DeviceKind,
    /// "tcp", "rtu" or "tcp, rtu".
    pub transports: String,
    pub default_unit: u8,
    /// "9600 8N1", or "-" for TCP-only models.
    pub serial: String,
    /// Only for models reachable over TCP.
    pub default_port: Option<u16>,
    /// e.g. "setpoint, heartbeat, comms-timeout".
    pub capabilities: String,
    pub confidence: &'static str,
}

impl ModelRow {
    pub const HEADERS: [&'static str; 8] = [
        "model",
        "kind",
        "transport",
        "unit",
        "serial",
        "port",
        "capabilities",
        "confidence",
    ];

    /// The row as table cells, in [`Self::HEADERS`] order.
    pub fn cells(&self) -> [String; 8] {
        [
            self.name.to_string(),
            match self.kind {
                DeviceKind::Meter => "meter",
                DeviceKind::Charger => "charger",
            }
            .to_string(),
            self.transports.clone(),
            self.default_unit.to_string(),
            self.serial.clone(),
            self.default_port
                .map_or_else(|| "-".to_string(), |p| p.to_string()),
            self.capabilities.clone(),
            self.confidence.to_string(),
        ]
    }
}

pub fn describe(spec: &ModelSpec) -> ModelRow {
    let transports = spec
        .transports
        .iter()
        .map(|t| match t {
            Transport::Tcp => "tcp",
            Transport::Rtu => "rtu",
        })
        .collect::<Vec<_>>()
        .join(", ");
    let serial = spec.serial.map_or_else(
        || "-".to_string(),
        |s| {
            let p = match s.parity {
                Parity::None => 'N',
                Parity::Even => 'E',
                Parity::Odd => 'O',
            };
            format!("{} 8{}{}", s.baud, p, s.stop_bits)
        },
    );
    let r = &spec.readings;
    let mut caps: Vec<&str> = Vec::new();
    if r.voltage.iter().any(Option::is_some) {
        caps.push("voltages");
    }
    if r.current.iter().any(Option::is_some) {
        caps.push("currents");
    }
    if r.power.is_some() {
        caps.push("power");
    }
    if r.energy.is_some() {
        caps.push(match spec.charger.map(|c| c.energy_scope) {
            Some(super::model::EnergyScope::Session) => "session-energy",
            _ => "energy",
        });
    }
    if let Some(c) = &spec.charger {
        caps.push("state");
        caps.push("setpoint");
        if c.enable.is_some() {
            caps.push("enable");
        }
        if c.heartbeat.is_some() {
            caps.push("heartbeat");
        }
        if c.comms_timeout.is_some() {
            caps.push("comms-timeout");
        }
        if c.safe_current.is_some() {
            caps.push("safe-current");
        }
        if c.id_tag.is_some() {
            caps.push("user-id");
        }
        if c.ev_id.is_some() {
            caps.push("vehicle-id");
        }
    }
    ModelRow {
        name: spec.name,
        kind: spec.kind,
        transports,
        default_unit: spec.default_unit,
        serial,
        default_port: spec
            .transports
            .contains(&Transport::Tcp)
            .then_some(spec.default_port),
        capabilities: caps.join(", "),
        confidence: spec.confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::registry;

    #[test]
    fn rows() {
        let m = describe(registry::find("mennekes-amtron-compact").unwrap());
        assert_eq!(m.transports, "rtu");
        assert_eq!(m.serial, "57600 8N2");
        assert_eq!(m.default_port, None);
        assert_eq!(m.default_unit, 50);
        assert!(m.capabilities.contains("heartbeat") && m.capabilities.contains("enable"));

        let abb = describe(registry::find("abb-terra-ac").unwrap());
        assert_eq!(abb.transports, "tcp, rtu");
        assert_eq!(abb.default_port, Some(502));
        assert!(abb.capabilities.contains("comms-timeout"));
        assert!(abb.capabilities.contains("session-energy"));
        assert!(!abb.capabilities.contains("heartbeat"));
        assert!(!abb.capabilities.contains("user-id"));

        let bender = describe(registry::find("bender-cc613").unwrap());
        assert!(bender.capabilities.ends_with("user-id, vehicle-id"));
        let next = describe(registry::find("webasto-next").unwrap());
        assert!(next.capabilities.ends_with("user-id"));

        let sdm = describe(registry::find("eastron-sdm120").unwrap());
        assert_eq!(sdm.serial, "2400 8N1");
        assert!(!sdm.capabilities.contains("setpoint"));
        assert_eq!(sdm.cells()[5], "-");
        assert_eq!(describe(registry::find("alfen-eve").unwrap()).serial, "-");
    }
}
