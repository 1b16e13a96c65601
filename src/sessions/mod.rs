//! Charging sessions: the per-charger state machine, energy accounting, tariffs and cost.

pub mod energy;
pub mod machine;
