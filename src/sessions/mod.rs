//! Charging sessions, the pure core: the per-charger state machine (`machine`), exact energy
//! from the charger's register or its power (`energy`), the tariff snapshotted at session start
//! (`tariff`) and the cost lines it gives (`cost`). The store and the loop around them come
//! with the session ledger; `tracker` runs one machine per charger off the controller's view.

pub mod cost;
pub mod energy;
pub mod machine;
pub mod tariff;
pub mod tracker;
