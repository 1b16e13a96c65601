//! Energy accounting for one session: the charger's energy register turned into delivered
//! watt-hours, with per-minute samples.
//!
//! A register is only trusted for differences: it may count per session (ABB Terra AC) or for
//! life, reset, roll over, or glitch. Each reading is judged against what the charger could
//! physically have delivered since the last trusted one. Where the register cannot tell (a
//! reset, a confirmed jump) the power readings bridge the gap, and a charger with no register
//! at all is integrated from power, which the record then says.
//!
//! Power is integrated beside the register all the time, with checkpoints where the register
//! moved. When a register fault is found on the charger (it froze, or counts a share of what
//! flows), the session's energy is taken from power instead, from the last checkpoint at which
//! the register and the power still agreed: the stretch between the fault's onset and its
//! detection is counted from power too, and the register is not trusted again for the session.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use crate::devices::model::EnergyScope;

/// A register may deliver this much more than the charger's rated power would explain
/// (meter tolerance, power read between peaks).
const POWER_SLACK: f64 = 1.25;
/// Fixed allowance on top of the register's own resolution, for rounding at both ends.
const FIXED_SLACK_WH: f64 = 10.0;
/// The register and the integrated power still agree while the difference between them moves
/// by less than this (Wh): a stepped register is exact where it crosses a step, read within
/// one cycle of it (at most 6 Wh at 22 kW). A power reading slightly off the register only
/// makes the onset found earlier, which costs nothing but that slight error over the stretch.
const AGREE_WH: f64 = 10.0;
/// Checkpoints of register against power are kept at least this far apart (the newest is
/// always the register's last move) ...
const CHECKPOINT_SPACING: TimeDelta = TimeDelta::seconds(10);
/// ... and this many of them: two hours at that spacing, longer than any rule takes.
const MAX_CHECKPOINTS: usize = 720;

/// Where a session's energy figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergySource {
    /// Differences of the charger's energy register.
    Register,
    /// The charger gave no register reading: power integrated over time (trapezoid).
    Integrated,
}

/// A fault of the charger's energy register found by the anomaly rules, after which a
/// session's energy comes from integrated power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterFault {
    /// The register stood still while power flowed (`register_frozen`).
    RegisterFrozen,
    /// The register counted other than the power showed (`meter_drift`).
    MeterDrift,
}

impl RegisterFault {
    /// As a person reads it.
    pub fn describe(self) -> &'static str {
        match self {
            RegisterFault::RegisterFrozen => "register frozen",
            RegisterFault::MeterDrift => "register drifting from the power",
        }
    }
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
    /// A register fault was found at `at`: from `since`, the last point where the register and
    /// the integrated power still agreed, to the end of the session the energy is power
    /// integrated over time (the charger's power, or its currents × voltage where it reports
    /// none), and that is what is billed.
    IntegratedPower {
        at: DateTime<Utc>,
        since: DateTime<Utc>,
        reason: RegisterFault,
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
            MeterNote::IntegratedPower { at, since, .. } => {
                *at += shift;
                *since += shift;
            }
        }
        self
    }

    /// The note as a person reads it.
    pub fn describe(&self) -> String {
        let hms = |t: &DateTime<Utc>| t.format("%H:%M:%S UTC");
        match self {
            MeterNote::Reset { at, from_wh, to_wh } => format!(
                "register reset at {}: {from_wh:.0} Wh to {to_wh:.0} Wh, bridged from power",
                hms(at)
            ),
            MeterNote::Rollover { at, .. } => format!("register rolled over at {}", hms(at)),
            MeterNote::ImplausibleJump {
                at, from_wh, to_wh, ..
            } => format!(
                "register jump at {} ({from_wh:.0} Wh to {to_wh:.0} Wh) not counted",
                hms(at)
            ),
            MeterNote::Rebased { at, .. } => {
                format!("register counted from its new value since {}", hms(at))
            }
            MeterNote::Resumed { last_seen, .. } => {
                format!("picked up after a restart, last seen {}", hms(last_seen))
            }
            MeterNote::IntegratedPower { since, reason, .. } => format!(
                "energy from integrated power since {}: {}",
                hms(since),
                reason.describe()
            ),
        }
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

/// Power integrated over the session, beside the register.
#[derive(Debug, Clone, Default, PartialEq)]
struct PowerTrack {
    last: Option<(DateTime<Utc>, f64)>,
    wh: f64,
    /// Whether any stretch was integrated.
    powered: bool,
    samples: Vec<Sample>,
}

impl PowerTrack {
    /// Integrates up to `at` (trapezoid); returns the energy of the stretch and its start.
    fn observe(&mut self, at: DateTime<Utc>, power_w: f64) -> Option<(DateTime<Utc>, f64)> {
        let stretch = self.last.map(|(t0, p0)| {
            let wh = (p0 + power_w) / 2.0 * hours(at - t0);
            (t0, wh)
        });
        if let Some((t0, wh)) = stretch {
            self.wh += wh;
            self.powered = true;
            if wh > 0.0 {
                spread(&mut self.samples, t0, at, wh);
            }
        }
        self.last = Some((at, power_w));
        stretch
    }

    /// The last sample as it stands: how many there are, and the last one's energy.
    fn mark(&self) -> (usize, f64) {
        (
            self.samples.len(),
            self.samples.last().map_or(0.0, |s| s.energy_wh),
        )
    }
}

/// Where the register moved, against the integrated power then.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Checkpoint {
    at: DateTime<Utc>,
    register_wh: f64,
    /// Session energy counted by then.
    energy_wh: f64,
    /// Power (`power`) and currents × voltage (`derived`) integrated by then.
    power_wh: f64,
    derived_wh: f64,
    /// The session's samples as they stood, and the power track's.
    samples: (usize, f64),
    power_samples: (usize, f64),
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
    /// Power (the charger's, or currents × voltage where it reports none) and currents ×
    /// voltage alone, integrated all along.
    power: PowerTrack,
    derived: PowerTrack,
    checkpoints: VecDeque<Checkpoint>,
    /// A register fault was found: energy comes from `power` from then on.
    integrating: bool,
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
            power: PowerTrack::default(),
            derived: PowerTrack::default(),
            checkpoints: VecDeque::new(),
            integrating: false,
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
        // A session already on integrated power stays on it: its register is not trusted.
        m.integrating = r
            .notes
            .iter()
            .any(|n| matches!(n, MeterNote::IntegratedPower { .. }));
        if m.integrating {
            m.bridge_wh = 0.0;
            m.bridge_powered = false;
        }
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
        self.observe_with(at, register_wh, power_w, None)
    }

    /// As [`EnergyMeter::observe`], with the power the phase currents × voltage give
    /// (`derived_w`), which stands in for a missing power reading once the register is not
    /// trusted, and tells which of register and power is off when they disagree.
    pub fn observe_with(
        &mut self,
        at: DateTime<Utc>,
        register_wh: Option<f64>,
        power_w: Option<f64>,
        derived_w: Option<f64>,
    ) -> Option<MeterNote> {
        if self.last_at.is_some_and(|last| at < last) {
            return None;
        }
        self.last_at = Some(at);
        // Import only: a negative or garbage power is no energy delivered.
        let clean = |p: Option<f64>| p.filter(|p| p.is_finite()).map(|p| p.max(0.0));
        let power_w = clean(power_w);
        let derived_w = clean(derived_w);
        let register_wh = register_wh.filter(|v| v.is_finite() && *v >= 0.0);

        if let Some(p) = derived_w {
            self.derived.observe(at, p);
        }
        if let Some(p) = power_w.or(derived_w) {
            let stretch = self.power.observe(at, p);
            if self.integrating {
                self.max_power_w = Some(self.max_power_w.map_or(p, |m| m.max(p)));
                if let Some((t0, wh)) = stretch {
                    self.account(t0, at, wh);
                }
            }
        }
        if self.integrating {
            // The register is only shown, no longer counted.
            if let Some(v) = register_wh {
                self.trusted = Some(RegisterPoint { at, value_wh: v });
            }
            return None;
        }

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
            self.checkpoint(at, v);
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
        let moved = self.trusted.is_none_or(|p| p.value_wh != v);
        self.account(from, at, wh);
        self.set_trusted(at, v);
        if moved {
            self.checkpoint(at, v);
        }
    }

    /// The register moved to `v` at `at` and was counted: a point to come back to.
    fn checkpoint(&mut self, at: DateTime<Utc>, v: f64) {
        let cp = Checkpoint {
            at,
            register_wh: v,
            energy_wh: self.energy_wh,
            power_wh: self.power.wh,
            derived_wh: self.derived.wh,
            samples: (
                self.samples.len(),
                self.samples.last().map_or(0.0, |s| s.energy_wh),
            ),
            power_samples: self.power.mark(),
        };
        let n = self.checkpoints.len();
        if n >= 2 && self.checkpoints[n - 1].at - self.checkpoints[n - 2].at < CHECKPOINT_SPACING {
            self.checkpoints.pop_back();
        }
        if self.checkpoints.len() == MAX_CHECKPOINTS {
            self.checkpoints.pop_front();
        }
        self.checkpoints.push_back(cp);
    }

    /// A register fault was found on the charger at `at`. From the last checkpoint where the
    /// register and the integrated power still agreed, the session's energy (and its samples)
    /// is taken from power, and stays so. Nothing changes, and false is returned, when the
    /// session already is on power, when there is no power to integrate, or when it is the
    /// power reading that is off (the register agrees with currents × voltage better).
    pub fn register_fault(&mut self, at: DateTime<Utc>, reason: RegisterFault) -> bool {
        if self.integrating || !self.power.powered || self.start_wh.is_none() {
            return false;
        }
        let Some(cp) = self.agreed() else {
            return false;
        };
        if let Some(v) = self.trusted.map(|p| p.value_wh) {
            let reg = v - cp.register_wh;
            let pow = self.power.wh - cp.power_wh;
            let der = self.derived.wh - cp.derived_wh;
            if self.derived.powered && der > 0.0 && (reg - der).abs() < (pow - der).abs() {
                return false;
            }
        }
        // The samples back to the checkpoint, then what power saw since.
        self.samples.truncate(cp.samples.0);
        if let Some(last) = self.samples.last_mut() {
            last.energy_wh = cp.samples.1;
        }
        let (n, before) = cp.power_samples;
        let from = n.saturating_sub(1);
        for (i, s) in self.power.samples.iter().enumerate().skip(from) {
            let wh = if i + 1 == n {
                s.energy_wh - before
            } else {
                s.energy_wh
            };
            if wh > 0.0 {
                add_sample(&mut self.samples, s.minute_start, wh);
            }
        }
        self.energy_wh = cp.energy_wh + (self.power.wh - cp.power_wh).max(0.0);
        self.integrating = true;
        self.suspect = None;
        self.bridge_wh = 0.0;
        self.bridge_powered = false;
        let note = MeterNote::IntegratedPower {
            at,
            since: cp.at,
            reason,
        };
        self.notes.push(note);
        true
    }

    /// The last checkpoint at which the register still agreed with the integrated power:
    /// of those before the first that departs from the oldest kept by more than
    /// [`AGREE_WH`], the one before the last (the register may already have been drifting
    /// within the tolerance at the last; power from one checkpoint earlier costs nothing).
    /// When none departs (a register that froze has not moved since), the last one.
    fn agreed(&self) -> Option<Checkpoint> {
        let base = self.checkpoints.front()?;
        let d0 = base.energy_wh - base.power_wh;
        let departs = self
            .checkpoints
            .iter()
            .position(|cp| (cp.energy_wh - cp.power_wh - d0).abs() > AGREE_WH);
        match departs {
            Some(k) => self.checkpoints.get(k.saturating_sub(2)).copied(),
            None => self.checkpoints.back().copied(),
        }
    }

    /// Whether the session's energy comes from integrated power after a register fault.
    pub fn integrating(&self) -> bool {
        self.integrating
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
        if self.cfg.stepped && self.bridge_powered && self.suspect.is_none() && !self.integrating {
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
