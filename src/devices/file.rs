//! Device models as TOML files: the format an installer writes, read into the same
//! [`ModelSpec`] the driver, the read planner and the simulator use.
//!
//! The built-in models are such files too (`models/*.toml`, embedded in the binary), so a
//! user's model is written exactly like them; `evsite models --show <id>` prints one to start
//! from. docs/devices.md describes the format key by key.
//!
//! Every mistake is reported with the place it was made (`file:line:col: key: reason`):
//! syntax, unknown keys and types, registers out of range or overlapping, a quantity the
//! controller needs but the file lacks. A charger without a fallback of its own is accepted
//! with a warning (safety invariant 3: without one nothing limits the charger when evsite is
//! gone).

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::model::{
    ChargeState, ChargerSpec, CommsTimeout, DeviceKind, Enable, EnergyScope, EvId, Heartbeat,
    ModelSpec, Parity, Readings, SerialDefaults, StateSpec, Transport,
};
use super::regmap::{DataType, NoValue, Register, Table, WordOrder, WriteFn};

/// One finding in a model file, located in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file as the user named it (or `builtin:<id>`).
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// The key path the finding is about (`registers.power.type`), empty for the whole file.
    pub key: String,
    pub reason: String,
    /// A warning does not stop the model from loading.
    pub warning: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if self.warning {
            f.write_str("warning: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.reason)
    }
}

/// A model read from a file, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: ModelSpec,
    pub warnings: Vec<Finding>,
}

// ---------------------------------------------------------------------------------------
// The file's schema, as serde reads it. Numbers are wide so that a wrong one reaches the
// checks below and gets a reason, not a bare "invalid value".

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    id: Spanned<String>,
    title: String,
    kind: Spanned<DeviceKind>,
    /// A charger read but never controlled (no setpoint needed); it is used as a meter.
    #[serde(default)]
    monitor_only: bool,
    phases: Spanned<i64>,
    /// The manufacturer's document numbers registers in hex; listings follow it.
    #[serde(default)]
    hex_addresses: bool,
    link: LinkFile,
    provenance: ProvenanceFile,
    #[serde(default)]
    registers: RegistersFile,
    state: Option<Spanned<StateFile>>,
    charger: Option<Spanned<ChargerFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    transports: Spanned<Vec<Transport>>,
    unit: Spanned<i64>,
    port: Spanned<i64>,
    serial: Option<Spanned<SerialFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SerialFile {
    baud: Spanned<i64>,
    parity: Parity,
    stop_bits: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceFile {
    /// How sure the register map is, and from where (H/M/L and the document).
    confidence: Spanned<String>,
    /// Free notes on single facts (for the reader; not used by evsite).
    #[serde(default)]
    #[allow(dead_code)]
    notes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistersFile {
    voltage_l1: Option<Spanned<RegFile>>,
    voltage_l2: Option<Spanned<RegFile>>,
    voltage_l3: Option<Spanned<RegFile>>,
    current_l1: Option<Spanned<RegFile>>,
    current_l2: Option<Spanned<RegFile>>,
    current_l3: Option<Spanned<RegFile>>,
    power: Option<Spanned<RegFile>>,
    energy: Option<Spanned<RegFile>>,
    setpoint: Option<Spanned<RegFile>>,
    applied_current: Option<Spanned<RegFile>>,
    safe_current: Option<Spanned<RegFile>>,
    enable: Option<Spanned<RegFile>>,
    heartbeat: Option<Spanned<RegFile>>,
    comms_timeout: Option<Spanned<RegFile>>,
    id_tag: Option<Spanned<RegFile>>,
    ev_id: Option<Spanned<RegFile>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FunctionFile {
    Holding,
    Input,
    Coil,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OrderFile {
    #[default]
    MswFirst,
    LswFirst,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum NoValueFile {
    #[default]
    None,
    AllOnes,
    AllOnesOrSignedMax,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WriteFile {
    Fc6,
    Fc16,
    Fc5,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegFile {
    addr: Spanned<i64>,
    function: FunctionFile,
    #[serde(rename = "type")]
    dtype: Spanned<String>,
    /// Registers of a `string`.
    words: Option<Spanned<i64>>,
    #[serde(default)]
    order: OrderFile,
    scale: Option<Spanned<f64>>,
    #[serde(default)]
    no_value: NoValueFile,
    write: Option<Spanned<WriteFile>>,
    /// `enable` only: the values for on and off.
    on: Option<Spanned<i64>>,
    off: Option<Spanned<i64>>,
    /// `heartbeat` only: the value written, and the longest safe period between writes.
    value: Option<Spanned<i64>>,
    period_s: Option<Spanned<i64>>,
    /// `comms_timeout` only: the timeout evsite writes at start-up, in seconds.
    default_s: Option<Spanned<i64>>,
    /// `ev_id` only: the register (same table, one word) that says whether the id is valid,
    /// and the value it holds then.
    valid_addr: Option<Spanned<i64>>,
    valid_value: Option<Spanned<i64>>,
    /// Where this fact comes from (for the reader; not used by evsite).
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StateKindFile {
    Ascii,
    Codes,
    CableAndCharging,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    kind: StateKindFile,
    register: Option<Spanned<RegFile>>,
    shift: Option<Spanned<i64>>,
    mask: Option<Spanned<i64>>,
    codes: Option<Spanned<Vec<CodeFile>>>,
    cable: Option<Spanned<RegFile>>,
    connected_from: Option<Spanned<i64>>,
    charging: Option<Spanned<RegFile>>,
    charging_value: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeFile {
    value: Spanned<i64>,
    state: ChargeState,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargerFile {
    min_current_a: Spanned<f64>,
    setpoint_step_a: Spanned<f64>,
    setpoint_validity_s: Option<Spanned<i64>>,
    idle_close_s: Option<Spanned<i64>>,
    #[serde(default = "lifetime")]
    energy_scope: EnergyScope,
    /// What the charger does on its own when evsite stops talking to it.
    fallback: String,
}

fn lifetime() -> EnergyScope {
    EnergyScope::Lifetime
}

// ---------------------------------------------------------------------------------------
// Checking and building.

/// The type names a register may have, as errors list them.
pub const TYPE_NAMES: &str =
    "int16, uint16, int32, uint32, int64, uint64, float32, float64, string, ascii-high, ascii-low";

/// The type of a fixed length named `name` (all but `string`, whose length is given apart).
pub fn fixed_type(name: &str) -> Option<DataType> {
    Some(match name {
        "uint16" => DataType::U16,
        "int16" => DataType::I16,
        "uint32" => DataType::U32,
        "int32" => DataType::I32,
        "uint64" => DataType::U64,
        "int64" => DataType::I64,
        "float32" => DataType::F32,
        "float64" => DataType::F64,
        "ascii-high" => DataType::AsciiHigh,
        "ascii-low" => DataType::AsciiLow,
        _ => return None,
    })
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    findings: Vec<Finding>,
    /// Every register seen: (table, first word, end, key, span), for the overlap check.
    seen: Vec<(Table, u32, u32, String, Range<usize>)>,
}

impl Checker<'_> {
    fn push(&mut self, span: Range<usize>, key: &str, reason: String, warning: bool) {
        let (line, col) = crate::config::locate::line_col(self.text, span.start);
        self.findings.push(Finding {
            file: self.file.to_string(),
            line,
            col,
            key: key.to_string(),
            reason,
            warning,
        });
    }

    fn error(&mut self, span: Range<usize>, key: &str, reason: impl Into<String>) {
        self.push(span, key, reason.into(), false);
    }

    fn warn(&mut self, span: Range<usize>, key: &str, reason: impl Into<String>) {
        self.push(span, key, reason.into(), true);
    }

    fn int<T: TryFrom<i64>>(
        &mut self,
        v: &Spanned<i64>,
        key: &str,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> Option<T> {
        let n = *v.get_ref();
        if n < lo || n > hi {
            self.error(
                v.span(),
                key,
                format!("{n} is out of range: {what} is {lo}–{hi}"),
            );
            return None;
        }
        T::try_from(n).ok()
    }

    fn dtype(&mut self, r: &RegFile, key: &str) -> Option<DataType> {
        let name = r.dtype.get_ref().as_str();
        let t = match name {
            "string" => {
                let Some(words) = &r.words else {
                    self.error(
                        r.dtype.span(),
                        &format!("{key}.words"),
                        "a string needs `words`, its length in registers",
                    );
                    return None;
                };
                let n =
                    self.int::<u8>(words, &format!("{key}.words"), 1, 123, "a string's length")?;
                return Some(DataType::Ascii(n));
            }
            other => {
                if let Some(t) = fixed_type(other) {
                    t
                } else {
                    self.error(
                        r.dtype.span(),
                        &format!("{key}.type"),
                        format!("unknown type {other:?}; known: {TYPE_NAMES}"),
                    );
                    return None;
                }
            }
        };
        if let Some(w) = &r.words {
            self.error(
                w.span(),
                &format!("{key}.words"),
                "only a `string` has `words`",
            );
        }
        Some(t)
    }

    /// The register at `key`; `extras` names the quantity-specific keys it may carry.
    fn register(&mut self, r: &Spanned<RegFile>, key: &str, extras: &[&str]) -> Option<Register> {
        let span = r.span();
        let r = r.get_ref();
        for (name, present) in [
            ("on", r.on.as_ref().map(Spanned::span)),
            ("off", r.off.as_ref().map(Spanned::span)),
            ("value", r.value.as_ref().map(Spanned::span)),
            ("period_s", r.period_s.as_ref().map(Spanned::span)),
            ("default_s", r.default_s.as_ref().map(Spanned::span)),
            ("valid_addr", r.valid_addr.as_ref().map(Spanned::span)),
            ("valid_value", r.valid_value.as_ref().map(Spanned::span)),
        ] {
            if let Some(at) = present {
                if !extras.contains(&name) {
                    self.error(
                        at,
                        &format!("{key}.{name}"),
                        format!("`{name}` does not belong to {key}"),
                    );
                }
            }
        }
        let dtype = self.dtype(r, key);
        let addr = self.int::<u16>(&r.addr, &format!("{key}.addr"), 0, 65535, "an address");
        let scale = r.scale.as_ref().map_or(1.0, |s| *s.get_ref());
        if let Some(s) = &r.scale {
            if !scale.is_finite() || scale == 0.0 {
                self.error(
                    s.span(),
                    &format!("{key}.scale"),
                    format!("{scale} is not a usable scale (finite, not 0)"),
                );
            }
        }
        let table = match r.function {
            FunctionFile::Holding => Table::Holding,
            FunctionFile::Input => Table::Input,
            FunctionFile::Coil => Table::Coil,
        };
        let write = r.write.as_ref().map(|w| (*w.get_ref(), w.span()));
        let (addr, dtype) = (addr?, dtype?);
        let reg = Register {
            addr,
            table,
            dtype,
            order: match r.order {
                OrderFile::MswFirst => WordOrder::MswFirst,
                OrderFile::LswFirst => WordOrder::LswFirst,
            },
            scale,
            no_value: match r.no_value {
                NoValueFile::None => NoValue::None,
                NoValueFile::AllOnes => NoValue::AllOnes,
                NoValueFile::AllOnesOrSignedMax => NoValue::AllOnesOrSignedMax,
            },
            write: write.as_ref().map(|(w, _)| match w {
                WriteFile::Fc6 => WriteFn::Single,
                WriteFile::Fc16 => WriteFn::Multiple,
                WriteFile::Fc5 => WriteFn::Coil,
            }),
        };
        let end = u32::from(addr) + u32::from(reg.words());
        if end > 0x1_0000 {
            self.error(
                r.addr.span(),
                &format!("{key}.addr"),
                format!(
                    "{addr} + {} registers runs past the last address 65535",
                    reg.words()
                ),
            );
        }
        match (table, write) {
            (Table::Input, Some((_, at))) => self.error(
                at,
                &format!("{key}.write"),
                "an input register cannot be written",
            ),
            (Table::Coil, Some((w, at))) if !matches!(w, WriteFile::Fc5) => {
                self.error(at, &format!("{key}.write"), "a coil is written with fc5")
            }
            (Table::Holding, Some((WriteFile::Fc5, at))) => self.error(
                at,
                &format!("{key}.write"),
                "fc5 writes coils; a holding register takes fc6 or fc16",
            ),
            (Table::Holding, Some((WriteFile::Fc6, at))) if reg.words() > 1 => self.error(
                at,
                &format!("{key}.write"),
                format!(
                    "fc6 writes one register; this value has {} (fc16 writes it in one request)",
                    reg.words()
                ),
            ),
            _ => {}
        }
        // Overlap: two quantities may share one register exactly, never part of one.
        let start = u32::from(addr);
        let clash = self
            .seen
            .iter()
            .find(|(t, s, e, _, _)| {
                *t == table && start < *e && *s < end && (*s, *e) != (start, end)
            })
            .map(|(_, s, e, k, _)| (k.clone(), *s, *e));
        if let Some((other, s, e)) = clash {
            self.error(
                r.addr.span(),
                &format!("{key}.addr"),
                format!(
                    "registers {start}–{} overlap {other} ({s}–{})",
                    end - 1,
                    e - 1
                ),
            );
        }
        self.seen.push((table, start, end, key.to_string(), span));
        Some(reg)
    }

    fn writable(&mut self, r: &Spanned<RegFile>, key: &str) {
        if r.get_ref().write.is_none() {
            self.error(
                r.span(),
                key,
                "must be writable: give `write` (fc6, fc16 or fc5)",
            );
        }
    }

    fn opt(&mut self, r: &Option<Spanned<RegFile>>, key: &str) -> Option<Register> {
        r.as_ref().and_then(|r| self.register(r, key, &[]))
    }

    /// An id register (`id_tag`, `ev_id`): a `string` read, never written.
    fn id(&mut self, r: &Spanned<RegFile>, key: &str, extras: &[&str]) -> Option<Register> {
        let reg = self.register(r, key, extras)?;
        let v = r.get_ref();
        if !matches!(reg.dtype, DataType::Ascii(_)) {
            self.error(
                v.dtype.span(),
                &format!("{key}.type"),
                "an id is text: type = \"string\" with `words`, its length in registers",
            );
            return None;
        }
        if let Some(w) = &v.write {
            self.error(
                w.span(),
                &format!("{key}.write"),
                "an id is read, never written",
            );
        }
        if reg.table == Table::Coil {
            self.error(
                r.span(),
                &format!("{key}.function"),
                "an id is in holding or input registers",
            );
            return None;
        }
        Some(reg)
    }

    /// `ev_id`, with its optional validity flag (`valid_addr`, `valid_value`).
    fn ev_id(&mut self, r: &Spanned<RegFile>) -> Option<EvId> {
        let key = "registers.ev_id";
        let reg = self.id(r, key, &["valid_addr", "valid_value"]);
        let v = r.get_ref();
        let valid_when = match (&v.valid_addr, &v.valid_value) {
            (None, None) => None,
            (Some(a), Some(val)) => {
                let addr = self.int::<u16>(a, &format!("{key}.valid_addr"), 0, 65535, "an address");
                let value = self.int::<u16>(
                    val,
                    &format!("{key}.valid_value"),
                    0,
                    65535,
                    "a register value",
                );
                let flag_table = reg.map(|x| x.table).unwrap_or(Table::Holding);
                if let Some(addr) = addr {
                    let start = u32::from(addr);
                    let clash = self
                        .seen
                        .iter()
                        .find(|(t, s, e, _, _)| {
                            *t == flag_table
                                && start < *e
                                && *s < start + 1
                                && (*s, *e) != (start, start + 1)
                        })
                        .map(|(_, s, e, k, _)| (k.clone(), *s, *e));
                    if let Some((other, s, e)) = clash {
                        self.error(
                            a.span(),
                            &format!("{key}.valid_addr"),
                            format!("register {start} overlaps {other} ({s}–{})", e - 1),
                        );
                    }
                    self.seen.push((
                        flag_table,
                        start,
                        start + 1,
                        format!("{key}.valid_addr"),
                        a.span(),
                    ));
                }
                let mut flag = Register::holding(addr?, DataType::U16);
                flag.table = flag_table;
                Some((flag, value?))
            }
            (Some(a), None) => {
                self.error(
                    a.span(),
                    key,
                    "`valid_addr` needs `valid_value`, the value that makes the id valid",
                );
                return None;
            }
            (None, Some(val)) => {
                self.error(
                    val.span(),
                    key,
                    "`valid_value` needs `valid_addr`, the register that holds it",
                );
                return None;
            }
        };
        Some(EvId {
            reg: reg?,
            valid_when,
        })
    }

    fn seconds(&mut self, v: &Option<Spanned<i64>>, key: &str) -> Option<u32> {
        v.as_ref()
            .and_then(|v| self.int::<u32>(v, key, 1, 86_400, "a duration in seconds"))
    }

    fn state(&mut self, s: &Spanned<StateFile>) -> Option<StateSpec> {
        let at = s.span();
        let s = s.get_ref();
        let need = |c: &mut Self, r: &Option<Spanned<RegFile>>, key: &str| -> Option<Register> {
            match r {
                Some(r) => c.register(r, key, &[]),
                None => {
                    c.error(
                        at.clone(),
                        key,
                        format!(
                            "this kind of state needs `{}`",
                            key.trim_start_matches("state.")
                        ),
                    );
                    None
                }
            }
        };
        match s.kind {
            StateKindFile::Ascii => {
                let reg = need(self, &s.register, "state.register")?;
                if !matches!(
                    reg.dtype,
                    DataType::Ascii(_) | DataType::AsciiHigh | DataType::AsciiLow
                ) {
                    self.error(
                        at,
                        "state.register",
                        "an ascii state is a string, ascii-high or ascii-low",
                    );
                    return None;
                }
                Some(StateSpec::Ascii(reg))
            }
            StateKindFile::Codes => {
                let reg = need(self, &s.register, "state.register");
                let shift = match &s.shift {
                    Some(v) => self.int::<u8>(v, "state.shift", 0, 63, "a shift"),
                    None => Some(0),
                };
                let mask = match &s.mask {
                    Some(v) => self.int::<u32>(v, "state.mask", 1, i64::from(u32::MAX), "a mask"),
                    None => Some(u32::MAX),
                };
                let mut map = Vec::new();
                match &s.codes {
                    Some(codes) if !codes.get_ref().is_empty() => {
                        for (i, c) in codes.get_ref().iter().enumerate() {
                            if let Some(v) = self.int::<u32>(
                                &c.value,
                                &format!("state.codes[{i}].value"),
                                0,
                                i64::from(u32::MAX),
                                "a code",
                            ) {
                                if map.iter().any(|(x, _)| *x == v) {
                                    self.error(
                                        c.value.span(),
                                        &format!("state.codes[{i}].value"),
                                        format!("code {v} is listed twice"),
                                    );
                                }
                                map.push((v, c.state));
                            }
                        }
                    }
                    other => {
                        let span = other.as_ref().map_or(at, Spanned::span);
                        self.error(span, "state.codes", "a codes state needs its table: codes = [{ value = 0, state = \"A\" }, …]");
                    }
                }
                for needed in [ChargeState::A, ChargeState::B, ChargeState::C] {
                    if !map.is_empty() && !map.iter().any(|(_, s)| *s == needed) {
                        let span = s.codes.as_ref().map_or(0..0, Spanned::span);
                        self.error(
                            span,
                            "state.codes",
                            format!("no code means state {needed:?}"),
                        );
                    }
                }
                Some(StateSpec::Codes {
                    reg: reg?,
                    shift: shift?,
                    mask: mask?,
                    map: Box::leak(map.into_boxed_slice()),
                })
            }
            StateKindFile::CableAndCharging => {
                let cable = need(self, &s.cable, "state.cable");
                let charging = need(self, &s.charging, "state.charging");
                let num = |c: &mut Self, v: &Option<Spanned<i64>>, key: &str| match v {
                    Some(v) => c.int::<u32>(v, key, 0, 65535, "a register value"),
                    None => {
                        c.error(
                            at.clone(),
                            key,
                            format!(
                                "this kind of state needs `{}`",
                                key.trim_start_matches("state.")
                            ),
                        );
                        None
                    }
                };
                let connected_from = num(self, &s.connected_from, "state.connected_from");
                let charging_value = num(self, &s.charging_value, "state.charging_value");
                Some(StateSpec::CableAndCharging {
                    cable: cable?,
                    connected_from: connected_from?,
                    charging: charging?,
                    charging_value: charging_value?,
                })
            }
        }
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// Reads a model from the TOML `text` of the file `file` (a name for messages only).
/// `Err` holds every error found (and the warnings), in file order.
pub fn load(file: &str, text: &str) -> Result<Loaded, Vec<Finding>> {
    let mut c = Checker {
        file,
        text,
        findings: Vec::new(),
        seen: Vec::new(),
    };
    let m: ModelFile = match toml::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let key = crate::config::locate::Located::parse(text)
                .map(|l| l.path_at(span.start).to_string())
                .unwrap_or_default();
            let reason = match e.message().trim() {
                // The parser gives no message for some bytes (a control character).
                "" => "not valid TOML here".to_string(),
                m => m.to_string(),
            };
            c.error(span, &key, reason);
            return Err(c.findings);
        }
    };
    let spec = build(&mut c, &m);
    let mut findings = c.findings;
    findings.sort_by_key(|f| (f.line, f.col));
    match spec {
        Some(spec) if !findings.iter().any(|f| !f.warning) => Ok(Loaded {
            spec,
            warnings: findings,
        }),
        _ => Err(findings),
    }
}

fn build(c: &mut Checker<'_>, m: &ModelFile) -> Option<ModelSpec> {
    let id = m.id.get_ref();
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        c.error(
            m.id.span(),
            "id",
            format!("{id:?}: an id is lowercase letters, digits and -"),
        );
    }
    let phases = c.int::<u8>(&m.phases, "phases", 1, 3, "phases");
    if let Some(p) = phases {
        if p == 2 {
            c.error(m.phases.span(), "phases", "a device measures 1 or 3 phases");
        }
    }
    let kind = *m.kind.get_ref();
    let l = &m.link;
    let transports = l.transports.get_ref().clone();
    if transports.is_empty() {
        c.error(
            l.transports.span(),
            "link.transports",
            "name at least one: \"tcp\", \"rtu\"",
        );
    }
    let unit = c.int::<u8>(&l.unit, "link.unit", 1, 255, "a unit id");
    let port = c.int::<u16>(&l.port, "link.port", 1, 65535, "a TCP port");
    let serial = match &l.serial {
        Some(s) => {
            let at = s.span();
            let s = s.get_ref();
            let baud = c.int::<u32>(&s.baud, "link.serial.baud", 300, 1_000_000, "a baud rate");
            let stop = c.int::<u8>(&s.stop_bits, "link.serial.stop_bits", 1, 2, "stop bits");
            if !transports.contains(&Transport::Rtu) {
                c.error(
                    at,
                    "link.serial",
                    "serial settings without the \"rtu\" transport",
                );
            }
            Some(SerialDefaults {
                baud: baud?,
                parity: s.parity,
                stop_bits: stop?,
            })
        }
        None => {
            if transports.contains(&Transport::Rtu) {
                c.error(
                    l.transports.span(),
                    "link.serial",
                    "an \"rtu\" model needs [link.serial]: baud, parity, stop_bits",
                );
            }
            None
        }
    };
    if m.provenance.confidence.get_ref().trim().is_empty() {
        c.error(
            m.provenance.confidence.span(),
            "provenance.confidence",
            "say how sure the map is and from where",
        );
    }

    let r = &m.registers;
    let readings = Readings {
        voltage: [
            c.opt(&r.voltage_l1, "registers.voltage_l1"),
            c.opt(&r.voltage_l2, "registers.voltage_l2"),
            c.opt(&r.voltage_l3, "registers.voltage_l3"),
        ],
        current: [
            c.opt(&r.current_l1, "registers.current_l1"),
            c.opt(&r.current_l2, "registers.current_l2"),
            c.opt(&r.current_l3, "registers.current_l3"),
        ],
        power: c.opt(&r.power, "registers.power"),
        energy: c.opt(&r.energy, "registers.energy"),
    };
    // What the controller cannot do without: a meter's power (the site's import) and the
    // current of each phase it measures (the fuse limits are per phase).
    let as_meter = kind == DeviceKind::Meter || m.monitor_only;
    if as_meter {
        if r.power.is_none() {
            c.error(
                0..0,
                "registers.power",
                "a meter needs `power`: the controller limits the site by it",
            );
        }
        let currents = [&r.current_l1, &r.current_l2, &r.current_l3];
        for (i, cur) in currents
            .iter()
            .enumerate()
            .take(usize::from(phases.unwrap_or(1)))
        {
            if cur.is_none() {
                c.error(
                    0..0,
                    &format!("registers.current_l{}", i + 1),
                    "a meter needs the current of each phase it measures",
                );
            }
        }
    }

    let charger_only = [
        ("setpoint", &r.setpoint),
        ("applied_current", &r.applied_current),
        ("safe_current", &r.safe_current),
        ("enable", &r.enable),
        ("heartbeat", &r.heartbeat),
        ("comms_timeout", &r.comms_timeout),
        ("id_tag", &r.id_tag),
        ("ev_id", &r.ev_id),
    ];
    let charger = if kind == DeviceKind::Meter {
        for (name, reg) in charger_only {
            if let Some(reg) = reg {
                c.error(
                    reg.span(),
                    &format!("registers.{name}"),
                    "a meter has no charger registers",
                );
            }
        }
        if let Some(s) = &m.state {
            c.error(s.span(), "state", "a meter has no charge state");
        }
        if let Some(ch) = &m.charger {
            c.error(ch.span(), "charger", "a meter has no [charger] section");
        }
        if m.monitor_only {
            c.error(0..0, "monitor_only", "only a charger can be monitor-only");
        }
        None
    } else {
        charger(c, m)
    };
    if kind == DeviceKind::Charger && !m.monitor_only && charger.is_none() {
        return None;
    }
    let spec = ModelSpec {
        name: leak(id),
        title: leak(&m.title),
        kind: if m.monitor_only {
            DeviceKind::Meter
        } else {
            kind
        },
        transports: Box::leak(transports.into_boxed_slice()),
        default_unit: unit?,
        default_port: port?,
        serial,
        phases: phases?,
        readings,
        charger: if m.monitor_only { None } else { charger },
        hex_addresses: m.hex_addresses,
        confidence: leak(m.provenance.confidence.get_ref()),
    };
    Some(spec)
}

fn charger(c: &mut Checker<'_>, m: &ModelFile) -> Option<ChargerSpec> {
    let r = &m.registers;
    let state = match &m.state {
        Some(s) => c.state(s),
        None => {
            c.error(0..0, "state", "a charger needs [state]: how it reports A–F");
            None
        }
    };
    let setpoint = match &r.setpoint {
        Some(sp) => {
            c.writable(sp, "registers.setpoint");
            c.register(sp, "registers.setpoint", &[])
        }
        None if m.monitor_only => None,
        None => {
            c.error(
                0..0,
                "registers.setpoint",
                "a charger needs `setpoint` (its current limit) unless monitor_only = true",
            );
            None
        }
    };
    let applied_current = c.opt(&r.applied_current, "registers.applied_current");
    let safe_current = c.opt(&r.safe_current, "registers.safe_current");
    let enable = r.enable.as_ref().and_then(|e| {
        c.writable(e, "registers.enable");
        let reg = c.register(e, "registers.enable", &["on", "off"])?;
        let v = e.get_ref();
        let on =
            v.on.as_ref()
                .and_then(|x| c.int::<u16>(x, "registers.enable.on", 0, 65535, "a register value"));
        let off = v
            .off
            .as_ref()
            .and_then(|x| c.int::<u16>(x, "registers.enable.off", 0, 65535, "a register value"));
        if v.on.is_none() || v.off.is_none() {
            c.error(
                e.span(),
                "registers.enable",
                "an enable needs `on` and `off`",
            );
        }
        Some(Enable {
            reg,
            on: on?,
            off: off?,
        })
    });
    let heartbeat = r.heartbeat.as_ref().and_then(|h| {
        c.writable(h, "registers.heartbeat");
        let reg = c.register(h, "registers.heartbeat", &["value", "period_s"])?;
        let v = h.get_ref();
        let value = v.value.as_ref().and_then(|x| {
            c.int::<u16>(x, "registers.heartbeat.value", 0, 65535, "a register value")
        });
        let period = c.seconds(&v.period_s, "registers.heartbeat.period_s");
        if v.value.is_none() || v.period_s.is_none() {
            c.error(
                h.span(),
                "registers.heartbeat",
                "a heartbeat needs `value` and `period_s`",
            );
        }
        Some(Heartbeat {
            reg,
            value: value?,
            period_s: period?,
        })
    });
    let comms_timeout = r.comms_timeout.as_ref().and_then(|t| {
        c.writable(t, "registers.comms_timeout");
        let reg = c.register(t, "registers.comms_timeout", &["default_s"])?;
        let v = t.get_ref();
        let default_s = c.seconds(&v.default_s, "registers.comms_timeout.default_s");
        if v.default_s.is_none() {
            c.error(
                t.span(),
                "registers.comms_timeout",
                "a comms timeout needs `default_s`, the seconds evsite writes",
            );
        }
        Some(CommsTimeout {
            reg,
            default_s: default_s?,
        })
    });
    let id_tag = r
        .id_tag
        .as_ref()
        .and_then(|t| c.id(t, "registers.id_tag", &[]));
    let ev_id = r.ev_id.as_ref().and_then(|e| c.ev_id(e));
    let Some(ch) = &m.charger else {
        c.error(
            0..0,
            "charger",
            "a charger needs [charger]: min_current_a, setpoint_step_a, fallback",
        );
        return None;
    };
    let at = ch.span();
    let ch = ch.get_ref();
    let min = *ch.min_current_a.get_ref();
    if !(0.0..=80.0).contains(&min) || min.is_nan() {
        c.error(
            ch.min_current_a.span(),
            "charger.min_current_a",
            format!("{min} A is out of range 0–80"),
        );
    }
    let step = *ch.setpoint_step_a.get_ref();
    if !(step > 0.0 && step <= 1.0) {
        c.error(
            ch.setpoint_step_a.span(),
            "charger.setpoint_step_a",
            format!("{step} A: a step is above 0 and at most 1 A"),
        );
    }
    if let (Some(sp), Some(spf)) = (&setpoint, &r.setpoint) {
        // Every step the loop allocates must reach the charger unchanged.
        let raw_step = step / sp.scale;
        if sp.dtype != DataType::F32
            && sp.dtype != DataType::F64
            && (raw_step - raw_step.round()).abs() > 1e-9
        {
            c.error(
                spf.span(),
                "registers.setpoint.scale",
                format!(
                    "a {step} A step is not a whole number of this register's {} A units",
                    sp.scale
                ),
            );
        }
    }
    let validity = c.seconds(&ch.setpoint_validity_s, "charger.setpoint_validity_s");
    let idle = c.seconds(&ch.idle_close_s, "charger.idle_close_s");
    if heartbeat.is_none() && comms_timeout.is_none() && safe_current.is_none() && !m.monitor_only {
        c.warn(
            at,
            "charger",
            "no fallback of its own (no comms_timeout, heartbeat or safe_current): if evsite stops, \
             nothing bounds this charger's current (safety invariant 3 of the contract)",
        );
    }
    Some(ChargerSpec {
        state: state?,
        setpoint: setpoint?,
        min_current_a: min,
        setpoint_step_a: step,
        applied_current,
        setpoint_validity_s: validity,
        enable,
        heartbeat,
        comms_timeout,
        safe_current,
        energy_scope: ch.energy_scope,
        idle_close_s: idle,
        fallback: leak(&ch.fallback),
        id_tag,
        ev_id,
    })
}

// ---------------------------------------------------------------------------------------
// Writing: a model as a file (how the built-in files were made, and how the tests prove
// every built-in survives the round trip).

fn addr_text(addr: u16, hex: bool) -> String {
    if hex {
        format!("0x{addr:04X}")
    } else {
        addr.to_string()
    }
}

fn f64_text(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// The inline table of one register, with `extra` keys appended.
pub fn register_text(reg: &Register, hex: bool, extra: &str) -> String {
    let mut s = format!("{{ addr = {}", addr_text(reg.addr, hex));
    s.push_str(match reg.table {
        Table::Holding => ", function = \"holding\"",
        Table::Input => ", function = \"input\"",
        Table::Coil => ", function = \"coil\"",
    });
    let t = match reg.dtype {
        DataType::U16 => "uint16",
        DataType::I16 => "int16",
        DataType::U32 => "uint32",
        DataType::I32 => "int32",
        DataType::U64 => "uint64",
        DataType::I64 => "int64",
        DataType::F32 => "float32",
        DataType::F64 => "float64",
        DataType::AsciiHigh => "ascii-high",
        DataType::AsciiLow => "ascii-low",
        DataType::Ascii(_) => "string",
    };
    s.push_str(&format!(", type = \"{t}\""));
    if let DataType::Ascii(n) = reg.dtype {
        s.push_str(&format!(", words = {n}"));
    }
    if reg.order == WordOrder::LswFirst {
        s.push_str(", order = \"lsw-first\"");
    }
    if reg.scale != 1.0 {
        s.push_str(&format!(", scale = {}", f64_text(reg.scale)));
    }
    match reg.no_value {
        NoValue::None => {}
        NoValue::AllOnes => s.push_str(", no_value = \"all-ones\""),
        NoValue::AllOnesOrSignedMax => s.push_str(", no_value = \"all-ones-or-signed-max\""),
    }
    match reg.write {
        None => {}
        Some(WriteFn::Single) => s.push_str(", write = \"fc6\""),
        Some(WriteFn::Multiple) => s.push_str(", write = \"fc16\""),
        Some(WriteFn::Coil) => s.push_str(", write = \"fc5\""),
    }
    s.push_str(extra);
    s.push_str(" }");
    s
}

fn quote(s: &str) -> String {
    // A TOML basic string: Rust's escapes for `"` and `\` are TOML's too.
    format!("{s:?}")
}

/// `spec` as a model file that [`load`] reads back to an equal spec.
pub fn to_toml(spec: &ModelSpec) -> String {
    let hex = spec.hex_addresses;
    let mut s = String::new();
    let kind = match spec.kind {
        DeviceKind::Meter => "meter",
        DeviceKind::Charger => "charger",
    };
    s.push_str(&format!(
        "id = {}\ntitle = {}\nkind = \"{kind}\"\nphases = {}\n",
        quote(spec.name),
        quote(spec.title),
        spec.phases
    ));
    if hex {
        s.push_str("hex_addresses = true\n");
    }
    s.push_str("\n[provenance]\n");
    s.push_str(&format!("confidence = {}\n", quote(spec.confidence)));
    s.push_str("\n[link]\n");
    let transports: Vec<&str> = spec
        .transports
        .iter()
        .map(|t| match t {
            Transport::Tcp => "\"tcp\"",
            Transport::Rtu => "\"rtu\"",
        })
        .collect();
    s.push_str(&format!(
        "transports = [{}]\nunit = {}\nport = {}\n",
        transports.join(", "),
        spec.default_unit,
        spec.default_port
    ));
    if let Some(ser) = spec.serial {
        let parity = match ser.parity {
            Parity::None => "none",
            Parity::Even => "even",
            Parity::Odd => "odd",
        };
        s.push_str(&format!(
            "serial = {{ baud = {}, parity = \"{parity}\", stop_bits = {} }}\n",
            ser.baud, ser.stop_bits
        ));
    }
    s.push_str("\n[registers]\n");
    let r = &spec.readings;
    let mut line = |name: &str, reg: Option<Register>, extra: &str| {
        if let Some(reg) = reg {
            s.push_str(&format!("{name} = {}\n", register_text(&reg, hex, extra)));
        }
    };
    for (i, v) in r.voltage.iter().enumerate() {
        line(&format!("voltage_l{}", i + 1), *v, "");
    }
    for (i, v) in r.current.iter().enumerate() {
        line(&format!("current_l{}", i + 1), *v, "");
    }
    line("power", r.power, "");
    line("energy", r.energy, "");
    if let Some(c) = &spec.charger {
        line("setpoint", Some(c.setpoint), "");
        line("applied_current", c.applied_current, "");
        line("safe_current", c.safe_current, "");
        if let Some(e) = c.enable {
            line(
                "enable",
                Some(e.reg),
                &format!(", on = {}, off = {}", e.on, e.off),
            );
        }
        if let Some(h) = c.heartbeat {
            line(
                "heartbeat",
                Some(h.reg),
                &format!(", value = {}, period_s = {}", h.value, h.period_s),
            );
        }
        if let Some(t) = c.comms_timeout {
            line(
                "comms_timeout",
                Some(t.reg),
                &format!(", default_s = {}", t.default_s),
            );
        }
        line("id_tag", c.id_tag, "");
        if let Some(e) = c.ev_id {
            let extra = e.valid_when.map_or(String::new(), |(flag, v)| {
                format!(
                    ", valid_addr = {}, valid_value = {v}",
                    addr_text(flag.addr, hex)
                )
            });
            line("ev_id", Some(e.reg), &extra);
        }
        s.push_str("\n[state]\n");
        match c.state {
            StateSpec::Ascii(reg) => {
                s.push_str(&format!(
                    "kind = \"ascii\"\nregister = {}\n",
                    register_text(&reg, hex, "")
                ));
            }
            StateSpec::Codes {
                reg,
                shift,
                mask,
                map,
            } => {
                s.push_str(&format!(
                    "kind = \"codes\"\nregister = {}\n",
                    register_text(&reg, hex, "")
                ));
                if shift != 0 {
                    s.push_str(&format!("shift = {shift}\n"));
                }
                if mask != u32::MAX {
                    s.push_str(&format!("mask = 0x{mask:X}\n"));
                }
                s.push_str("# The first code listed for a state is the one the simulator reports.\ncodes = [\n");
                for (code, st) in map {
                    s.push_str(&format!(
                        "    {{ value = {code}, state = \"{}\" }},\n",
                        st.letter()
                    ));
                }
                s.push_str("]\n");
            }
            StateSpec::CableAndCharging {
                cable,
                connected_from,
                charging,
                charging_value,
            } => {
                s.push_str(&format!(
                    "kind = \"cable-and-charging\"\ncable = {}\nconnected_from = {connected_from}\ncharging = {}\ncharging_value = {charging_value}\n",
                    register_text(&cable, hex, ""),
                    register_text(&charging, hex, "")
                ));
            }
        }
        s.push_str("\n[charger]\n");
        s.push_str(&format!(
            "min_current_a = {}\nsetpoint_step_a = {}\n",
            f64_text(c.min_current_a),
            f64_text(c.setpoint_step_a)
        ));
        if let Some(v) = c.setpoint_validity_s {
            s.push_str(&format!("setpoint_validity_s = {v}\n"));
        }
        if let Some(v) = c.idle_close_s {
            s.push_str(&format!("idle_close_s = {v}\n"));
        }
        s.push_str(match c.energy_scope {
            EnergyScope::Lifetime => "energy_scope = \"lifetime\"\n",
            EnergyScope::Session => "energy_scope = \"session\"\n",
        });
        s.push_str(&format!("fallback = {}\n", quote(c.fallback)));
    }
    s
}

// ---------------------------------------------------------------------------------------
// An installer's files, read outside a config: by the simulator serving them and by
// `evsite probe --model`.

/// The models read from an installer's files, and the warnings they raised.
#[derive(Debug, Default)]
pub struct UserModels {
    pub models: Vec<&'static ModelSpec>,
    pub warnings: Vec<Finding>,
}

impl UserModels {
    /// The model called `name`: one of these, else a built-in one.
    pub fn find(&self, name: &str) -> Option<&'static ModelSpec> {
        self.models
            .iter()
            .copied()
            .find(|m| m.name == name)
            .or_else(|| super::registry::find(name))
    }
}

/// Reads the model file `path`, or every `*.toml` in the directory `path` (in file-name order),
/// as the daemon reads `[devices] models_dir`. `Err` holds one line per mistake
/// (`file:line:col: key: reason`, or why the path cannot be read); a model named like a
/// built-in one or like another file's is a mistake too.
pub fn load_path(path: &std::path::Path) -> Result<UserModels, Vec<String>> {
    let files = if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| {
            vec![format!(
                "{}: cannot read this directory: {e}",
                path.display()
            )]
        })?;
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("toml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = UserModels::default();
    let mut errors = Vec::new();
    for p in files {
        let origin = p.display().to_string();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{origin}: cannot read this model file: {e}"));
                continue;
            }
        };
        match load(&origin, &text) {
            Ok(loaded) => {
                let name = loaded.spec.name;
                if super::registry::find(name).is_some()
                    || out.models.iter().any(|m| m.name == name)
                {
                    errors.push(format!(
                        "{origin}:1:1: id: another model is already called {name:?}; give this \
                         one an id of its own"
                    ));
                    continue;
                }
                out.warnings.extend(loaded.warnings);
                // Leaked: read once, used as long as the program runs.
                out.models.push(Box::leak(Box::new(loaded.spec)));
            }
            Err(findings) => {
                for f in findings {
                    if f.warning {
                        out.warnings.push(f);
                    } else {
                        errors.push(f.to_string());
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
