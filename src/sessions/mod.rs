//! Charging sessions: the per-charger state machine, energy accounting, tariffs and cost.

pub mod cost;
pub mod tariff;
