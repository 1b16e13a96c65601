//! The truth a run is scored against: what the scorer may know that the controller may not
//! (per-phase currents, what each charger really offers, what each vehicle really took).

use crate::devices::model::ChargeState;
use crate::simulator::scenario::FaultKind;

use super::SiteModel;

/// What the scorer may know that the controller may not.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerTruth {
    pub id: String,
    pub setpoint_a: Option<f64>,
    pub offered_a: f64,
    /// Current on each grid phase (0-based index) drawn through this charger.
    pub grid_a: [f64; 3],
    pub state: ChargeState,
    pub energy_register_wh: f64,
    pub in_fallback: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VehicleTruth {
    pub charger: String,
    pub arrive_s: f64,
    pub depart_s: f64,
    pub plugged: bool,
    pub complete: bool,
    pub soc: f64,
    pub energy_wh: f64,
    /// The user's token the vehicle carries, if any: the same token on a later visit is a
    /// returning vehicle.
    pub token: Option<String>,
}

impl SiteModel {
    /// Per-phase current through a circuit's chargers.
    pub fn circuit_current_a(&self, id: &str) -> Option<[f64; 3]> {
        self.circuits.iter().find(|(c, _)| c == id)?;
        let mut sum = [0.0; 3];
        for (ci, c) in self.chargers.iter().enumerate() {
            if c.circuit.as_deref() == Some(id) {
                for (s, a) in sum.iter_mut().zip(self.charger_grid_a(ci)) {
                    *s += a;
                }
            }
        }
        Some(sum)
    }

    pub fn charger_truth(&self) -> Vec<ChargerTruth> {
        (0..self.chargers.len())
            .map(|ci| {
                let c = &self.chargers[ci];
                let error = self.fault_active(ci + 1, FaultKind::ChargerError);
                ChargerTruth {
                    id: c.id.clone(),
                    setpoint_a: c.setpoint_a,
                    offered_a: c.offered_a(error),
                    grid_a: self.charger_grid_a(ci),
                    state: self.charger_state(ci),
                    energy_register_wh: c.energy_wh,
                    in_fallback: c.fallback.is_some(),
                }
            })
            .collect()
    }

    pub fn vehicle_truth(&self) -> Vec<VehicleTruth> {
        self.visits
            .iter()
            .map(|v| VehicleTruth {
                charger: self.chargers[v.charger].id.clone(),
                arrive_s: v.arrive_s,
                depart_s: v.depart_s,
                plugged: v.plugged,
                complete: v.vehicle.is_complete(),
                soc: v.vehicle.soc(),
                energy_wh: v.vehicle.energy_wh(),
                token: v.token.clone(),
            })
            .collect()
    }
}
