//! Charging sessions, the pure core: the per-charger state machine (`machine`), exact energy
//! from the charger's register or its power (`energy`), the tariff snapshotted at session start
//! (`tariff`), the cost lines it gives (`cost`) and when the vehicle will stop drawing
//! (`estimate`). The store and the loop around them come with the session ledger; `tracker`
//! runs one machine per charger off the controller's view.

pub mod cost;
pub mod energy;
pub mod estimate;
pub mod machine;
pub mod tariff;
pub mod tracker;
pub mod vehicles;
