//! Changes to a running controller from outside its loop (cloud commands, a config reload).
//! They queue on a channel and are applied at the start of the next cycle, so a change never
//! lands halfway through one and a paused-clock simulation stays deterministic.

/// One change to apply. Every variant keeps the installer's `grid_limit_a` and each
/// charger's `max_current_a` as hard ceilings: nothing here can raise them.
#[derive(Debug)]
pub enum ControlCommand {
    /// A lower site limit (None: back to the installer's `grid_limit_a`).
    SetSiteLimit { limit_a: Option<f64> },
}
