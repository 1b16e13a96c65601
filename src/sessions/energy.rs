//! Energy accounting for one session: the charger's energy register turned into delivered
//! watt-hours, with per-minute samples.
//!
//! A register is only trusted for differences: it may count per session (ABB Terra AC) or for
//! life, reset, roll over, or glitch. Each reading is judged against what the charger could
//! physically have delivered since the last trusted one. Where the register cannot tell (a
//! reset, a confirmed jump) the power readings bridge the gap, and a charger with no register
//! at all is integrated from power, which the record then says.

use chrono::{DateTime, TimeDelta, Utc};

use crate::devices::model::EnergyScope;

/// A register may deliver this much more than the charger's rated power would explain
/// (meter tolerance, power read between peaks).
const POWER_SLACK: f64 = 1.25;
/// Fixed allowance on top of the register's own resolution, for rounding at both ends.
const FIXED_SLACK_WH: f64 = 10.0;

/// Where a session's energy figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergySource {
    /// Differences of the charger's energy register.
    Register,
    /// The charger gave no register reading: power integrated over time (trapezoid).
    Integrated,
}

/// How to read one charger's energy register.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterConfig {
    pub scope: EnergyScope,
    /// The most the charger can deliver, in W; not positive or not finite: no jump check.
    pub max_power_w: f64,
    /// The value at which the register wraps to 0, in Wh, when known (a u32 counting
    /// 0.1 kWh wraps at 2^32 × 100 Wh).
    pub modulus_wh: Option<f64>,
    /// The register's step in Wh (100 for a 0.1 kWh register); drops within it are noise.
    pub resolution_wh: f64,
    /// The register is an integer counting whole steps of `resolution_wh`: a change shows the
    /// true count crossing a step, so energy between two changes is exact, and what lies
    /// before the first and after the last change is taken from power, within one step.
    pub stepped: bool,
}

impl MeterConfig {
    /// A lifetime register counting whole Wh, with no known modulus.
    pub fn lifetime(max_power_w: f64) -> Self {
        MeterConfig {
            scope: EnergyScope::Lifetime,
            max_power_w,
            modulus_wh: None,
            resolution_wh: 1.0,
            stepped: false,
        }
    }
}

/// Energy attributed to one UTC minute.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub minute_start: DateTime<Utc>,
    pub energy_wh: f64,
}

/// Something the register did that the record should show.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MeterNote {
    /// The register dropped and restarted counting; the gap was bridged from power.
    Reset {
        at: DateTime<Utc>,
        from_wh: f64,
        to_wh: f64,
    },
    /// The register wrapped at its modulus; the energy across the wrap was counted.
    Rollover {
        at: DateTime<Utc>,
        from_wh: f64,
        to_wh: f64,
    },
    /// A rise larger than the charger could deliver in the time: not counted.
    ImplausibleJump {
        at: DateTime<Utc>,
        from_wh: f64,
        to_wh: f64,
        allowed_wh: f64,
    },
    /// The next reading confirmed a jump: the register now counts from there, the jump
    /// itself not counted.
    Rebased {
        at: DateTime<Utc>,
        from_wh: f64,
        to_wh: f64,
    },
    /// evsite restarted mid-session: the session was picked up from its last stored state
    /// (`last_seen`). A register counts the gap; integrated power cannot.
    Resumed {
        at: DateTime<Utc>,
        last_seen: DateTime<Utc>,
    },
}

impl MeterNote {
    /// The note with its times moved by `shift` (a record restamped after a clock step).
    pub fn shifted(mut self, shift: TimeDelta) -> Self {
        match &mut self {
            MeterNote::Reset { at, .. }
            | MeterNote::Rollover { at, .. }
            | MeterNote::ImplausibleJump { at, .. }
            | MeterNote::Rebased { at, .. } => *at += shift,
            MeterNote::Resumed { at, last_seen } => {
                *at += shift;
                *last_seen += shift;
            }
        }
        self
    }
}

/// A session's stored energy state, to pick it up after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub samples: Vec<Sample>,
    pub start_wh: Option<f64>,
    /// The last trusted register reading and when it was read.
    pub last_wh: Option<f64>,
    pub last_at: DateTime<Utc>,
    pub max_power_w: Option<f64>,
    pub notes: Vec<MeterNote>,
    /// The energy the record showed, which for a stepped register includes power since its
    /// last crossing (not in the samples yet).
    pub energy_wh: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct RegisterPoint {
    at: DateTime<Utc>,
    value_wh: f64,
}

/// A rejected reading, kept to see whether the register really moved there.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Suspect {
    point: RegisterPoint,
    /// Power-integrated energy from the last trusted reading up to the suspect one.
    bridge_wh: f64,
}

/// One session's energy, fed every observation of the charger.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyMeter {
    cfg: MeterConfig,
    energy_wh: f64,
    start_wh: Option<f64>,
    /// The last trusted register reading.
    trusted: Option<RegisterPoint>,
    suspect: Option<Suspect>,
    last_power: Option<(DateTime<Utc>, f64)>,
    /// Power-integrated energy since the last trusted register reading.
    bridge_wh: f64,
    /// Whether power was integrated into `bridge_wh` (else it says nothing).
    bridge_powered: bool,
    /// A stepped register's trusted reading is a step it was seen to cross (not just the
    /// value at plug-in, which lies anywhere within a step).
    on_step: bool,
    last_at: Option<DateTime<Utc>>,
    max_power_w: Option<f64>,
    samples: Vec<Sample>,
    notes: Vec<MeterNote>,
}

impl EnergyMeter {
    pub fn new(cfg: MeterConfig) -> Self {
        EnergyMeter {
            cfg,
            energy_wh: 0.0,
            start_wh: None,
            trusted: None,
            suspect: None,
            last_power: None,
            bridge_wh: 0.0,
            bridge_powered: false,
            on_step: false,
            last_at: None,
            max_power_w: None,
            samples: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Picks up a session stored before a restart at `now`. The register reading it last
    /// trusted stays the baseline, so a register counts what was delivered while evsite was
    /// down; the jump check allows for the whole gap.
    pub fn resume(cfg: MeterConfig, r: Resume, now: DateTime<Utc>) -> Self {
        let mut m = EnergyMeter::new(cfg);
        m.energy_wh = r.samples.iter().map(|s| s.energy_wh).sum();
        m.samples = r.samples;
        m.start_wh = r.start_wh;
        m.trusted = r.last_wh.map(|value_wh| RegisterPoint {
            at: r.last_at,
            value_wh,
        });
        m.on_step = cfg.stepped && r.last_wh.is_some() && r.last_wh != r.start_wh;
        if cfg.stepped {
            // Power since the last crossing, as stored: the next crossing bounds it again.
            m.bridge_wh = (r.energy_wh - m.energy_wh).clamp(0.0, cfg.resolution_wh);
            m.bridge_powered = m.bridge_wh > 0.0;
        }
        m.last_at = Some(r.last_at);
        m.max_power_w = r.max_power_w;
        m.notes = r.notes;
        m.notes.push(MeterNote::Resumed {
            at: now,
            last_seen: r.last_at,
        });
        m
    }

    /// When the meter was last fed.
    pub fn last_at(&self) -> Option<DateTime<Utc>> {
        self.last_at
    }

    /// Feeds one observation; either value may be missing (a failed read). Observations
    /// older than the last one are ignored. Returns what the register did, if notable.
    pub fn observe(
        &mut self,
        at: DateTime<Utc>,
        register_wh: Option<f64>,
        power_w: Option<f64>,
    ) -> Option<MeterNote> {
        if self.last_at.is_some_and(|last| at < last) {
            return None;
        }
        self.last_at = Some(at);
        // Import only: a negative or garbage power is no energy delivered.
        let power_w = power_w.filter(|p| p.is_finite()).map(|p| p.max(0.0));
        let register_wh = register_wh.filter(|v| v.is_finite() && *v >= 0.0);

        if let Some(p) = power_w {
            self.max_power_w = Some(self.max_power_w.map_or(p, |m| m.max(p)));
            if let Some((t0, p0)) = self.last_power {
                let wh = (p0 + p) / 2.0 * hours(at - t0);
                if self.trusted.is_none() {
                    // No register baseline yet: power is all there is for this stretch.
                    self.account(t0, at, wh);
                } else {
                    self.bridge_wh += wh;
                    self.bridge_powered = true;
                }
            }
            self.last_power = Some((at, p));
        }

        let note = register_wh.and_then(|v| self.observe_register(at, v));
        if let Some(n) = note {
            self.notes.push(n);
        }
        note
    }

    fn observe_register(&mut self, at: DateTime<Utc>, v: f64) -> Option<MeterNote> {
        let Some(last) = self.trusted else {
            self.start_wh = Some(v);
            self.set_trusted(at, v);
            return None;
        };
        let allowed = self.allowed_wh(at - last.at);
        let delta = v - last.value_wh;

        if self.cfg.stepped && delta.abs() < self.cfg.resolution_wh / 2.0 {
            // No step crossed: the baseline stays at the last crossing, power fills in.
            self.suspect = None;
            return None;
        }
        if delta >= 0.0 {
            if delta <= allowed {
                self.suspect = None;
                let counted = if self.cfg.stepped && !self.on_step && self.bridge_powered {
                    // From plug-in to the first crossing: the register only bounds it.
                    self.bridge_wh
                        .clamp((delta - self.cfg.resolution_wh).max(0.0), delta)
                } else {
                    delta
                };
                self.accept(last.at, at, v, counted);
                self.on_step = self.cfg.stepped;
                return None;
            }
            if let Some(s) = self.suspect {
                let since_suspect = v - s.point.value_wh;
                if since_suspect >= 0.0 && since_suspect <= self.allowed_wh(at - s.point.at) {
                    // Two readings agree: the register moved. Count what power saw up to the
                    // jump and what the register saw after it.
                    self.suspect = None;
                    self.accept(last.at, at, v, s.bridge_wh + since_suspect);
                    return Some(MeterNote::Rebased {
                        at,
                        from_wh: last.value_wh,
                        to_wh: v,
                    });
                }
            }
            self.suspect = Some(Suspect {
                point: RegisterPoint { at, value_wh: v },
                bridge_wh: self.bridge_wh,
            });
            return Some(MeterNote::ImplausibleJump {
                at,
                from_wh: last.value_wh,
                to_wh: v,
                allowed_wh: allowed,
            });
        }

        if -delta <= self.cfg.resolution_wh {
            // Jitter of a float register: keep the higher baseline so nothing is counted twice.
            return None;
        }
        self.suspect = None;
        if self.cfg.scope == EnergyScope::Lifetime {
            if let Some(modulus) = self.cfg.modulus_wh.filter(|m| m.is_finite() && *m > 0.0) {
                let wrapped = v + modulus - last.value_wh;
                if wrapped >= 0.0 && wrapped <= allowed {
                    self.accept(last.at, at, v, wrapped);
                    return Some(MeterNote::Rollover {
                        at,
                        from_wh: last.value_wh,
                        to_wh: v,
                    });
                }
            }
        }
        let counted = match self.cfg.scope {
            // A session register restarts at 0: all it shows now was delivered since.
            EnergyScope::Session if v <= allowed => v.max(self.bridge_wh),
            // A lifetime register: count from the new value, bridging with power.
            _ => self.bridge_wh,
        };
        self.accept(last.at, at, v, counted);
        Some(MeterNote::Reset {
            at,
            from_wh: last.value_wh,
            to_wh: v,
        })
    }

    /// The most a register may rise over `elapsed`, given the charger's rated power.
    fn allowed_wh(&self, elapsed: TimeDelta) -> f64 {
        let max_w = self.cfg.max_power_w;
        if !(max_w.is_finite() && max_w > 0.0) {
            return f64::INFINITY;
        }
        max_w * hours(elapsed).max(0.0) * POWER_SLACK + self.cfg.resolution_wh + FIXED_SLACK_WH
    }

    fn accept(&mut self, from: DateTime<Utc>, at: DateTime<Utc>, v: f64, wh: f64) {
        self.account(from, at, wh);
        self.set_trusted(at, v);
    }

    fn set_trusted(&mut self, at: DateTime<Utc>, v: f64) {
        self.trusted = Some(RegisterPoint { at, value_wh: v });
        self.bridge_wh = 0.0;
        self.bridge_powered = false;
        self.on_step = false;
    }

    /// What a stepped register cannot show yet: power since its last crossing, less than
    /// one step.
    fn tail_wh(&self) -> f64 {
        if self.cfg.stepped && self.bridge_powered && self.suspect.is_none() {
            self.bridge_wh.clamp(0.0, self.cfg.resolution_wh)
        } else {
            0.0
        }
    }

    /// Closes the session's energy at `at`: the tail a stepped register has not shown yet
    /// goes into the samples.
    pub fn finish(&mut self, at: DateTime<Utc>) {
        let tail = self.tail_wh();
        if let Some(from) = self.trusted.map(|p| p.at) {
            self.account(from, at.max(from), tail);
        }
        self.bridge_wh = 0.0;
        self.bridge_powered = false;
    }

    fn account(&mut self, from: DateTime<Utc>, to: DateTime<Utc>, wh: f64) {
        if wh <= 0.0 {
            return;
        }
        self.energy_wh += wh;
        spread(&mut self.samples, from, to, wh);
    }

    /// Energy delivered in the session so far, in Wh.
    pub fn energy_wh(&self) -> f64 {
        self.energy_wh + self.tail_wh()
    }

    /// The first register reading of the session.
    pub fn meter_start_wh(&self) -> Option<f64> {
        self.start_wh
    }

    /// The last trusted register reading.
    pub fn meter_end_wh(&self) -> Option<f64> {
        self.trusted.map(|p| p.value_wh)
    }

    pub fn source(&self) -> EnergySource {
        if self.start_wh.is_some() {
            EnergySource::Register
        } else {
            EnergySource::Integrated
        }
    }

    pub fn max_power_w(&self) -> Option<f64> {
        self.max_power_w
    }

    /// Energy per UTC minute, in time order; minutes with nothing delivered are absent.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    pub fn notes(&self) -> &[MeterNote] {
        &self.notes
    }
}

fn hours(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 3_600_000.0
}

fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp().div_euclid(60) * 60;
    DateTime::from_timestamp(s, 0).unwrap_or(t)
}

/// Attributes `wh` delivered evenly over `[from, to]` to the UTC minutes it covers. The last
/// piece takes the remainder so the pieces add up to `wh` exactly.
fn spread(samples: &mut Vec<Sample>, from: DateTime<Utc>, to: DateTime<Utc>, wh: f64) {
    let total_ms = (to - from).num_milliseconds();
    if total_ms <= 0 {
        add_sample(samples, minute_floor(to), wh);
        return;
    }
    let mut cur = from;
    let mut left = wh;
    while cur < to {
        let minute = minute_floor(cur);
        let next = (minute + TimeDelta::minutes(1)).min(to);
        let piece = if next == to {
            left
        } else {
            wh * (next - cur).num_milliseconds() as f64 / total_ms as f64
        };
        add_sample(samples, minute, piece);
        left -= piece;
        cur = next;
    }
}

fn add_sample(samples: &mut Vec<Sample>, minute_start: DateTime<Utc>, wh: f64) {
    match samples.last_mut() {
        Some(last) if last.minute_start == minute_start => last.energy_wh += wh,
        _ => samples.push(Sample {
            minute_start,
            energy_wh: wh,
        }),
    }
}

#[cfg(test)]
#[path = "energy_tests.rs"]
mod tests;
