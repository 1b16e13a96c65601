//! A reloaded config taken over by the running controller: limits, tuning and per-charger
//! settings change between two cycles; the devices stay connected. A config whose devices
//! differ from the running ones cannot be applied without reconnecting, so it is refused here
//! too, whatever the caller checked.

use std::sync::Arc;

use super::Controller;
use crate::config::Config;
use crate::control::usage::{UsageParams, UsageTracker};

impl Controller {
    /// Take over `cfg`'s live settings. What the cloud commanded stays in force, under the new
    /// `grid_limit_a` and maximums: a site limit until the expiry it was commanded with.
    pub(super) fn reconfigure(&mut self, cfg: Arc<Config>) {
        let same_devices = cfg.meter == self.cfg.meter
            && cfg.site.phases == self.cfg.site.phases
            && cfg.chargers.len() == self.chargers.len()
            && cfg.chargers.iter().zip(&self.chargers).all(|(n, rt)| {
                n.id == rt.cfg.id && n.device == rt.cfg.device && n.phases == rt.cfg.phases
            });
        if !same_devices {
            tracing::error!("new configuration changes the devices: restart evsite to apply it");
            return;
        }
        let params = UsageParams::new(cfg.control.unused_threshold_a);
        let tuning = cfg.control.unused_threshold_a != self.cfg.control.unused_threshold_a;
        for (rt, new) in self.chargers.iter_mut().zip(&cfg.chargers) {
            // The usage tracker judges the car against the charger's range: a new range or
            // threshold means judging it afresh.
            if tuning
                || new.min_current_a != rt.cfg.min_current_a
                || new.max_current_a != rt.cfg.max_current_a
                || new.phase_map.len() != rt.cfg.phase_map.len()
            {
                rt.usage = UsageTracker::new(
                    params,
                    new.phase_map.len(),
                    new.min_current_a,
                    new.max_current_a,
                );
            }
            rt.auth.reconfigure(new.auth, new.token.as_deref());
            rt.cfg = new.clone();
        }
        match (&cfg.demand, self.demand.as_mut()) {
            (Some(d), Some(dm)) => dm.reconfigure(d.clone(), cfg.site.timezone),
            (Some(d), None) => {
                self.demand = Some(crate::control::demand::DemandMeter::new(
                    d.clone(),
                    cfg.site.timezone,
                ))
            }
            (None, _) => {
                self.demand = None;
                self.demand_status = None;
            }
        }
        self.tariff = super::tariff_of(&cfg);
        // The installer's part of the limits only: the cloud's (its site limit and expiry,
        // charger caps, profiles) is held apart and stays as commanded, under the new bounds.
        self.limits.reconfigure(cfg.clone());
        self.cfg = cfg;
    }
}
