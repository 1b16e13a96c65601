//! Changes to a running controller from outside its loop (cloud commands, a config reload).
//! They queue on a channel and are applied at the start of the next cycle, so a change never
//! lands halfway through one and a paused-clock simulation stays deterministic.

use std::sync::Arc;

use crate::config::Config;

/// One change to apply. The installer's `grid_limit_a` and each charger's `max_current_a` stay
/// hard ceilings: only the installer's own config file (a reload) can change them.
#[derive(Debug)]
pub enum ControlCommand {
    /// A lower site limit (None: back to the installer's `grid_limit_a`).
    SetSiteLimit { limit_a: Option<f64> },
    /// A reloaded config's live settings (limits, tuning, charger limits, priorities, phase
    /// maps, circuits). Its devices must be the running ones; a config that changes them is
    /// refused (they are only connected at start).
    Reconfigure(Arc<Config>),
}
