//! What returning vehicles took before: for each vehicle the site recognises, the energy of
//! its last sessions and the current it stopped at after a taper. A car that comes back to
//! the same car park tends to arrive with a similar charge and stop at the same target, so its
//! own past says more of its end than the site's mix of cars does.
//!
//! A vehicle is known by its ISO 15118 id (EVCCID) where the charger reports one, else by the
//! vehicle its token names on the token list, else by the token itself. Bounded: the latest
//! [`VISITS`] sessions of the [`VEHICLES`] vehicles seen most recently. Pure: the tracker feeds
//! it finished sessions, the daemon the stored ones at start.

use std::collections::{HashMap, VecDeque};

use crate::tokens::Identity;

/// Sessions remembered per vehicle.
pub const VISITS: usize = 10;
/// Vehicles remembered; the one seen longest ago is forgotten first.
pub const VEHICLES: usize = 1_000;

/// The key a vehicle is remembered by: its ISO 15118 id, else the vehicle or token of its
/// identity, else the id the charger reports (`id_tag`), none when nothing names it.
pub fn vehicle_key(
    ev_id: Option<&str>,
    identity: &Identity,
    id_tag: Option<&str>,
) -> Option<String> {
    fn named(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    if let Some(ev) = named(ev_id) {
        return Some(format!("ev:{ev}"));
    }
    if let Some(v) = named(identity.vehicle.as_deref()) {
        return Some(format!("vehicle:{v}"));
    }
    named(identity.token.as_deref())
        .or(named(id_tag))
        .map(|t| format!("token:{t}"))
}

/// One finished session of a vehicle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visit {
    pub energy_wh: f64,
    /// The current it stopped at after a taper (A), when it tapered.
    pub stop_a: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct Vehicle {
    visits: VecDeque<Visit>,
    /// When it was last seen, in learning order.
    seen: u64,
}

/// The histories of the vehicles the site has seen.
#[derive(Debug, Clone, Default)]
pub struct VehicleHistories {
    vehicles: HashMap<String, Vehicle>,
    learned: u64,
}

impl VehicleHistories {
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns a finished session of vehicle `key` (in the order they ended).
    pub fn learn(&mut self, key: &str, visit: Visit) {
        if !(visit.energy_wh.is_finite() && visit.energy_wh > 0.0) {
            return;
        }
        self.learned += 1;
        if !self.vehicles.contains_key(key) && self.vehicles.len() >= VEHICLES {
            let oldest = self
                .vehicles
                .iter()
                .min_by_key(|(_, v)| v.seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.vehicles.remove(&k);
            }
        }
        let v = self.vehicles.entry(key.to_string()).or_default();
        v.seen = self.learned;
        if v.visits.len() == VISITS {
            v.visits.pop_front();
        }
        v.visits.push_back(visit);
    }

    /// The energy of the vehicle's remembered sessions (Wh), sorted; empty for a stranger.
    pub fn energies(&self, key: &str) -> Vec<f64> {
        let mut e: Vec<f64> = self
            .vehicles
            .get(key)
            .map(|v| v.visits.iter().map(|s| s.energy_wh).collect())
            .unwrap_or_default();
        e.sort_by(f64::total_cmp);
        e
    }

    /// The currents the vehicle stopped at after a taper (A), oldest first.
    pub fn stops(&self, key: &str) -> VecDeque<f64> {
        self.vehicles
            .get(key)
            .map(|v| v.visits.iter().filter_map(|s| s.stop_a).collect())
            .unwrap_or_default()
    }

    /// How many vehicles are remembered.
    pub fn len(&self) -> usize {
        self.vehicles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vehicles.is_empty()
    }

    /// Forgets the vehicles whose key `gone` says (a person's identity was removed).
    pub fn forget(&mut self, gone: impl Fn(&str) -> bool) -> usize {
        let before = self.vehicles.len();
        self.vehicles.retain(|k, _| !gone(k));
        before - self.vehicles.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(wh: f64) -> Visit {
        Visit {
            energy_wh: wh,
            stop_a: None,
        }
    }

    #[test]
    fn a_vehicle_is_known_by_its_ev_id_then_its_vehicle_then_its_token() {
        let mut id = Identity {
            token: Some("04A1".into()),
            vehicle: Some("Zoe".into()),
            ..Default::default()
        };
        assert_eq!(
            vehicle_key(Some("EVCC01"), &id, Some("x")).as_deref(),
            Some("ev:EVCC01")
        );
        assert_eq!(
            vehicle_key(Some(" "), &id, None).as_deref(),
            Some("vehicle:Zoe")
        );
        id.vehicle = None;
        assert_eq!(
            vehicle_key(None, &id, Some("x")).as_deref(),
            Some("token:04A1")
        );
        id.token = None;
        assert_eq!(
            vehicle_key(None, &id, Some("x")).as_deref(),
            Some("token:x")
        );
        assert_eq!(vehicle_key(None, &id, Some("")), None);
    }

    #[test]
    fn each_vehicle_keeps_its_latest_sessions() {
        let mut h = VehicleHistories::new();
        for i in 0..(VISITS + 5) {
            h.learn("ev:a", visit(1_000.0 * (i + 1) as f64));
        }
        h.learn("ev:b", visit(0.0));
        let e = h.energies("ev:a");
        assert_eq!(e.len(), VISITS);
        assert_eq!(e.first().copied(), Some(6_000.0), "the oldest went first");
        assert!(h.energies("ev:b").is_empty(), "no energy, nothing learned");
        assert!(h.energies("ev:c").is_empty());
    }

    #[test]
    fn the_vehicle_seen_longest_ago_is_forgotten_first() {
        let mut h = VehicleHistories::new();
        for i in 0..VEHICLES {
            h.learn(&format!("ev:{i}"), visit(1_000.0));
        }
        // Vehicle 0 comes back: vehicle 1 is now the one seen longest ago.
        h.learn("ev:0", visit(2_000.0));
        h.learn("ev:new", visit(3_000.0));
        assert_eq!(h.len(), VEHICLES);
        assert_eq!(h.energies("ev:0"), vec![1_000.0, 2_000.0]);
        assert!(h.energies("ev:1").is_empty());
        assert_eq!(h.energies("ev:new"), vec![3_000.0]);
        assert_eq!(h.forget(|k| k == "ev:new"), 1);
        assert!(h.energies("ev:new").is_empty());
    }
}

#[cfg(test)]
#[path = "vehicles_tests.rs"]
mod tracker_tests;
