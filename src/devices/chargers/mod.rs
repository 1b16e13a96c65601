//! Charger models, one file each: a `SPEC` register map per model.
pub mod abb_terra_ac;
pub mod alfen_eve;
pub mod bender_cc613;
pub mod mennekes_amtron_compact;
pub mod phoenix_charx;
pub mod phoenix_ev_eth;
pub mod schneider_evlink_pro;
pub mod vestel_evc04;
pub mod webasto_next;
