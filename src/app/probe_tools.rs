//! `evsite probe --read | --scan | --model`: commissioning without a config. Read registers
//! ad hoc and show them raw and decoded; find which unit ids answer on a line or behind a
//! gateway and which known model each looks like; try a draft model file against a live
//! device, quantity by quantity, flagging values no real device reports.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Bus;
use crate::devices::codec::{decode, Value};
use crate::devices::file;
use crate::devices::model::{ModelSpec, Parity};
use crate::devices::registry;
use crate::devices::regmap::{DataType, Register, Table, WordOrder};
use crate::devices::state::{decode_state, state_registers};
use crate::modbus::{DeviceLink, Links, ModbusError, RegisterIo, RtuBus, TcpConnector};

/// The arguments of the commissioning modes (`evsite probe` without them reads the
/// configured devices).
#[derive(Debug, Clone, clap::Args)]
pub struct ToolArgs {
    /// Read `--count` registers from `--register` of `--unit` and show them raw and decoded.
    #[arg(long, group = "mode")]
    pub read: bool,
    /// Find which unit ids answer (`--units`), and which known model each looks like.
    #[arg(long, group = "mode")]
    pub scan: bool,
    /// Try this model file against the device at `--unit`, quantity by quantity.
    #[arg(long, value_name = "FILE", group = "mode")]
    pub model: Option<PathBuf>,
    /// Modbus TCP host (a device or a gateway).
    #[arg(long, conflicts_with = "device")]
    pub host: Option<String>,
    /// Modbus TCP port.
    #[arg(long, default_value_t = 502)]
    pub port: u16,
    /// With --host: the host is a transparent serial converter (RTU frames over TCP).
    #[arg(long)]
    pub rtu_over_tcp: bool,
    /// Serial device of an RS-485 line (e.g. /dev/ttyUSB0).
    #[arg(long, value_name = "PATH")]
    pub device: Option<PathBuf>,
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    #[arg(long, value_enum, default_value_t = ParityArg::None)]
    pub parity: ParityArg,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stop_bits: u8,
    /// Unit id (slave address).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=255))]
    pub unit: Option<u8>,
    /// First register address (0-based, as on the wire; 0x prefix for hex).
    #[arg(long, value_parser = parse_u16)]
    pub register: Option<u16>,
    /// Registers to read (default: the words of one --type value).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=125))]
    pub count: Option<u16>,
    /// Read input registers (FC4) instead of holding registers (FC3).
    #[arg(long)]
    pub input: bool,
    /// Decode as this type of the model format: int16, uint16, int32, uint32, int64, uint64,
    /// float32, float64, string.
    #[arg(long = "type", value_name = "T")]
    pub dtype: Option<String>,
    /// Word order of multi-register values.
    #[arg(long, value_enum, default_value_t = OrderArg::MswFirst)]
    pub order: OrderArg,
    /// Multiply decoded numbers by this.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Unit ids to scan: `1-247`, `5`, or a list `1,2,10-20`.
    #[arg(long, default_value = "1-247")]
    pub units: String,
    /// How long to wait for each answer, in ms (default: 1000, and 150 per unit in a scan).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ParityArg {
    None,
    Even,
    Odd,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OrderArg {
    MswFirst,
    LswFirst,
}

fn parse_u16(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a register address 0–65535"))
}

/// A failure of a commissioning command: what to tell, and the exit code.
#[derive(Debug)]
pub struct ToolError {
    pub message: String,
    /// 64 (usage) for wrong arguments or a bad model file, 69 (unavailable) when the device
    /// did not answer as it must.
    pub code: u8,
}

fn usage(message: impl Into<String>) -> ToolError {
    ToolError {
        message: message.into(),
        code: 64,
    }
}

impl ToolArgs {
    /// Whether a commissioning mode was asked for.
    pub fn any(&self) -> bool {
        self.read || self.scan || self.model.is_some()
    }

    fn timeout(&self, scan: bool) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(if scan { 150 } else { 1000 }))
    }
}

/// Where the device is: opened once, one [`DeviceLink`] per unit id.
enum Line {
    Tcp(crate::modbus::TcpLink),
    Rtu(RtuBus),
}

impl Line {
    fn open(a: &ToolArgs, timeout: Duration) -> Result<Line, ToolError> {
        let links = Links::new(Arc::new(TcpConnector));
        match (&a.host, &a.device) {
            (Some(host), None) if a.rtu_over_tcp => Ok(Line::Rtu(links.rtu_over_tcp(
                host,
                a.port,
                timeout,
                frame_gap(a.baud),
            ))),
            (Some(host), None) => Ok(Line::Tcp(links.tcp(host, a.port, timeout))),
            (None, Some(device)) => {
                let bus = Bus {
                    name: device.display().to_string(),
                    device: device.clone(),
                    baud: a.baud,
                    parity: match a.parity {
                        ParityArg::None => Parity::None,
                        ParityArg::Even => Parity::Even,
                        ParityArg::Odd => Parity::Odd,
                    },
                    stop_bits: a.stop_bits,
                    timeout,
                    frame_gap: frame_gap(a.baud),
                };
                Ok(Line::Rtu(RtuBus::open(&bus)))
            }
            _ => Err(usage(
                "name the device: --host H [--port P] (Modbus TCP) or --device PATH --baud B \
                 (RS-485)",
            )),
        }
    }

    fn unit(&self, unit: u8) -> DeviceLink {
        match self {
            Line::Tcp(l) => DeviceLink::tcp(l.clone(), unit),
            Line::Rtu(b) => DeviceLink::rtu(b.clone(), unit),
        }
    }
}

/// Modbus RTU's silence between frames: 3.5 characters of 11 bits, at least 2 ms (as the
/// config's default for a bus).
fn frame_gap(baud: u32) -> Duration {
    Duration::from_micros((38_500_000 / u64::from(baud.max(1))).max(2_000))
}

/// A decoded number without the float noise of its scale (2300 × 0.1 shows as 230).
fn num(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    if r.is_finite() && r.abs() < 1e12 {
        format!("{r}")
    } else {
        format!("{v}")
    }
}

fn parse_type(name: &str, count: Option<u16>) -> Result<DataType, ToolError> {
    if name == "string" {
        return Ok(DataType::Ascii(count.unwrap_or(1).min(123) as u8));
    }
    file::fixed_type(name).ok_or_else(|| {
        usage(format!(
            "unknown --type {name:?}; one of {}",
            file::TYPE_NAMES
        ))
    })
}

fn need<T: Copy>(v: Option<T>, what: &str) -> Result<T, ToolError> {
    v.ok_or_else(|| usage(format!("{what} is needed here")))
}

fn table_name(t: Table) -> &'static str {
    match t {
        Table::Holding => "holding registers (FC3)",
        Table::Input => "input registers (FC4)",
        Table::Coil => "coils (FC1)",
    }
}

fn modbus_failure(what: &str, e: &ModbusError) -> ToolError {
    let hint = match e {
        ModbusError::Exception { code: 0x02 } => {
            ": the device has no such register (check the address, and --input)"
        }
        ModbusError::Exception { code: 0x01 } => ": the device does not know this function",
        ModbusError::Exception { code: 0x0A | 0x0B } => ": the gateway reaches no such unit",
        ModbusError::Timeout(_) => ": check the unit id, the wiring and the serial settings",
        _ => "",
    };
    ToolError {
        message: format!("{what}: {e}{hint}"),
        code: 69,
    }
}

/// `evsite probe --read`.
pub async fn read(a: &ToolArgs) -> Result<String, ToolError> {
    let unit = need(a.unit, "--unit")?;
    let addr = need(a.register, "--register")?;
    let dtype = a
        .dtype
        .as_deref()
        .map(|t| parse_type(t, a.count))
        .transpose()?;
    let count = a.count.unwrap_or_else(|| dtype.map_or(1, DataType::words));
    if u32::from(addr) + u32::from(count) > 65536 {
        return Err(usage(format!(
            "{count} registers from {addr} run past the last address 65535"
        )));
    }
    let table = if a.input {
        Table::Input
    } else {
        Table::Holding
    };
    let line = Line::open(a, a.timeout(false))?;
    let dev = line.unit(unit);
    let what = format!("{}: {count} {} from {addr}", dev.label(), table_name(table));
    let words = dev
        .read(table, addr, count)
        .await
        .map_err(|e| modbus_failure(&what, &e))?;
    Ok(render_read(&what, addr, &words, dtype, a))
}

fn render_read(
    what: &str,
    addr: u16,
    words: &[u16],
    dtype: Option<DataType>,
    a: &ToolArgs,
) -> String {
    let mut out = format!("{what}\n");
    let rows: Vec<Vec<String>> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let r = addr.wrapping_add(i as u16);
            let ascii: String = [(w >> 8) as u8, (w & 0xFF) as u8]
                .iter()
                .map(|b| {
                    if b.is_ascii_graphic() || *b == b' ' {
                        char::from(*b)
                    } else {
                        '.'
                    }
                })
                .collect();
            vec![
                r.to_string(),
                format!("0x{r:04X}"),
                format!("0x{w:04X}"),
                w.to_string(),
                (*w as i16).to_string(),
                ascii,
            ]
        })
        .collect();
    out.push_str(&crate::app::table::render(
        &["register", "hex", "raw", "uint16", "int16", "ascii"],
        &rows,
    ));
    if let Some(t) = dtype {
        let order = match a.order {
            OrderArg::MswFirst => WordOrder::MswFirst,
            OrderArg::LswFirst => WordOrder::LswFirst,
        };
        let n = usize::from(t.words().max(1));
        let _ = writeln!(
            out,
            "decoded as {} ({}, scale {}):",
            a.dtype.as_deref().unwrap_or(""),
            match order {
                WordOrder::MswFirst => "msw-first",
                WordOrder::LswFirst => "lsw-first",
            },
            a.scale
        );
        for (k, chunk) in words.chunks(n).enumerate() {
            let at = addr.wrapping_add((k * n) as u16);
            let mut reg = Register::holding(at, t).scale(a.scale);
            reg.order = order;
            let shown = match decode(&reg, chunk) {
                Ok(Some(Value::Number(v))) => num(v),
                Ok(Some(Value::Text(s))) => format!("{s:?}"),
                Ok(None) => "no value (NaN or infinite)".into(),
                Err(_) => format!("{} of {n} registers: incomplete", chunk.len()),
            };
            let _ = writeln!(out, "  {at}: {shown}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Plausibility: what no real device reports, judged by physics and the model's own tables.

/// The quantities a model file names, each with the register(s) to read.
struct Quantity {
    name: &'static str,
    regs: Vec<Register>,
    kind: Check,
}

#[derive(Clone, Copy, PartialEq)]
enum Check {
    Voltage,
    Current,
    Power,
    Energy,
    State,
    /// A current limit the controller writes or the charger falls back to.
    Limit,
    /// Any value (heartbeat, enable, comms timeout).
    Any,
}

fn quantities(spec: &ModelSpec) -> Vec<Quantity> {
    let r = &spec.readings;
    let mut q = Vec::new();
    let mut one = |name, reg: Option<Register>, kind| {
        if let Some(reg) = reg {
            q.push(Quantity {
                name,
                regs: vec![reg],
                kind,
            });
        }
    };
    for (name, reg) in ["voltage_l1", "voltage_l2", "voltage_l3"]
        .into_iter()
        .zip(r.voltage)
    {
        one(name, reg, Check::Voltage);
    }
    for (name, reg) in ["current_l1", "current_l2", "current_l3"]
        .into_iter()
        .zip(r.current)
    {
        one(name, reg, Check::Current);
    }
    one("power", r.power, Check::Power);
    one("energy", r.energy, Check::Energy);
    if let Some(c) = &spec.charger {
        one("setpoint", Some(c.setpoint), Check::Limit);
        one("applied_current", c.applied_current, Check::Limit);
        one("safe_current", c.safe_current, Check::Limit);
        one("enable", c.enable.map(|e| e.reg), Check::Any);
        one("heartbeat", c.heartbeat.map(|h| h.reg), Check::Any);
        one("comms_timeout", c.comms_timeout.map(|t| t.reg), Check::Any);
        q.push(Quantity {
            name: "state",
            regs: state_registers(&c.state),
            kind: Check::State,
        });
    }
    q
}

/// Largest plausible current of one phase of a building's connection or a charger, in A.
const MAX_CURRENT_A: f64 = 1000.0;
/// Largest plausible total power, in W (3 × 1000 A × 400 V, rounded up).
const MAX_POWER_W: f64 = 1.5e6;
/// A voltage at or above this is a 16-bit all-ones pattern at 0.1 V, not a grid.
const MAX_VOLTAGE_V: f64 = 6553.5;

/// Why a decoded value cannot be real, or `None` when it can.
fn implausible(kind: Check, v: f64) -> Option<String> {
    let s = num(v);
    match kind {
        Check::Voltage if v == 0.0 => Some("0 V: no phase voltage, or the wrong register".into()),
        Check::Voltage if v >= MAX_VOLTAGE_V => Some(format!(
            "{s} V: at or above 6553.5 V, an all-ones word, not a grid voltage"
        )),
        Check::Voltage if !(0.0..=1000.0).contains(&v) => {
            Some(format!("{s} V: outside 0–1000 V of a low-voltage grid"))
        }
        Check::Current if v.abs() > MAX_CURRENT_A => Some(format!(
            "{s} A: beyond ±{MAX_CURRENT_A} A, check the type and scale"
        )),
        Check::Power if v.abs() > MAX_POWER_W => Some(format!(
            "{s} W: beyond ±{MAX_POWER_W} W, check the type and scale"
        )),
        Check::Energy if v < 0.0 => Some(format!("{s} Wh: an energy counter below 0")),
        Check::Energy if v > 1.0e12 => Some(format!(
            "{s} Wh: beyond 1 TWh, check the type, the word order and the scale"
        )),
        Check::Limit if !(0.0..=80.0).contains(&v) => {
            Some(format!("{s} A: a charger's current limit is within 0–80 A"))
        }
        _ => None,
    }
}

/// One quantity read: its words per register, or why not.
async fn read_regs(dev: &DeviceLink, regs: &[Register]) -> Result<Vec<Vec<u16>>, ModbusError> {
    let mut out = Vec::new();
    for r in regs {
        out.push(dev.read(r.table, r.addr, r.words()).await?);
    }
    Ok(out)
}

/// A quantity's decoded value, shown, and whether it is plausible.
fn judge(q: &Quantity, spec: &ModelSpec, words: &[Vec<u16>]) -> (String, Option<String>) {
    if q.kind == Check::State {
        let Some(c) = &spec.charger else {
            return ("-".into(), None);
        };
        let slices: Vec<&[u16]> = words.iter().map(Vec::as_slice).collect();
        return match decode_state(&c.state, &slices) {
            Ok(s) => (s.letter().to_string(), None),
            Err(e) => ("-".into(), Some(format!("{e}: not in the state table"))),
        };
    }
    let (Some(reg), Some(w)) = (q.regs.first(), words.first()) else {
        return ("-".into(), None);
    };
    match decode(reg, w) {
        Ok(Some(Value::Number(v))) => (num(v), implausible(q.kind, v)),
        Ok(Some(Value::Text(s))) => (format!("{s:?}"), None),
        Ok(None) => (
            "no value".into(),
            Some("the device reports no value".into()),
        ),
        Err(e) => ("-".into(), Some(e.to_string())),
    }
}

fn hex_words(words: &[Vec<u16>]) -> String {
    words
        .iter()
        .map(|w| {
            w.iter()
                .map(|x| format!("{x:04X}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn reg_label(regs: &[Register]) -> String {
    regs.iter()
        .map(|r| {
            let t = match r.table {
                Table::Holding => "h",
                Table::Input => "i",
                Table::Coil => "c",
            };
            format!("{t}{}", r.addr)
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// Seconds between the two reads of an energy register in `--model`.
const ENERGY_GAP: Duration = Duration::from_secs(1);

/// `evsite probe --model FILE`: the report, and whether every quantity looked real.
pub async fn try_model(a: &ToolArgs) -> Result<(String, bool), ToolError> {
    let path = a.model.clone().ok_or_else(|| usage("--model FILE"))?;
    let loaded = file::load_path(&path).map_err(|errors| usage(errors.join("\n")))?;
    let spec = match loaded.models.as_slice() {
        [one] => *one,
        _ => {
            return Err(usage(format!(
                "{}: --model takes one model file",
                path.display()
            )))
        }
    };
    let mut out = String::new();
    for w in &loaded.warnings {
        let _ = writeln!(out, "{w}");
    }
    let unit = a.unit.unwrap_or(spec.default_unit);
    let line = Line::open(a, a.timeout(false))?;
    let dev = line.unit(unit);
    let _ = writeln!(
        out,
        "model {} ({}) on {}",
        spec.name,
        spec.title,
        dev.label()
    );
    let mut rows = Vec::new();
    let mut all_ok = true;
    let mut energy_first = None;
    for q in quantities(spec) {
        let (raw, value, verdict) = match read_regs(&dev, &q.regs).await {
            Ok(words) => {
                let (value, bad) = judge(&q, spec, &words);
                if q.kind == Check::Energy {
                    energy_first = value.parse::<f64>().ok();
                }
                (hex_words(&words), value, bad)
            }
            Err(e) => ("-".into(), "-".into(), Some(e.to_string())),
        };
        all_ok &= verdict.is_none();
        rows.push(vec![
            q.name.to_string(),
            reg_label(&q.regs),
            raw,
            value,
            verdict.map_or("ok".into(), |v| format!("IMPLAUSIBLE: {v}")),
        ]);
    }
    // An energy counter only ever rises: read it again a moment later.
    if let (Some(first), Some(reg)) = (energy_first, spec.readings.energy) {
        tokio::time::sleep(ENERGY_GAP).await;
        let again = dev
            .read(reg.table, reg.addr, reg.words())
            .await
            .ok()
            .and_then(|w| match decode(&reg, &w) {
                Ok(Some(Value::Number(v))) => Some(v),
                _ => None,
            });
        let (value, verdict) = match again {
            Some(v) if v < first => (
                num(v),
                format!("IMPLAUSIBLE: went backwards from {first} in {ENERGY_GAP:?}"),
            ),
            Some(v) => (num(v), "ok".to_string()),
            None => (
                "-".into(),
                "IMPLAUSIBLE: no value on the second read".into(),
            ),
        };
        all_ok &= verdict == "ok";
        rows.push(vec![
            "energy (again)".into(),
            reg_label(&[reg]),
            "-".into(),
            value,
            verdict,
        ]);
    }
    out.push_str(&crate::app::table::render(
        &["quantity", "register", "raw", "value", "check"],
        &rows,
    ));
    if !all_ok {
        out.push_str(
            "some quantities look wrong: check their address, type, word order and scale\n",
        );
    }
    Ok((out, all_ok))
}

// ---------------------------------------------------------------------------------------
// Scanning.

fn parse_units(s: &str) -> Result<Vec<u8>, ToolError> {
    let bad = || {
        usage(format!(
            "--units {s:?}: give ids 1–247 as `1-247`, `5` or `1,2,10-20`"
        ))
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let lo: u8 = lo.parse().map_err(|_| bad())?;
        let hi: u8 = hi.parse().map_err(|_| bad())?;
        if lo == 0 || hi > 247 || lo > hi {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// How much a unit's registers look like `spec`'s: the share of its signature quantities
/// (voltages, currents, power, energy, state) that read and decode to plausible values.
async fn likeness(dev: &DeviceLink, spec: &ModelSpec) -> f64 {
    let sig: Vec<Quantity> = quantities(spec)
        .into_iter()
        .filter(|q| {
            matches!(
                q.kind,
                Check::Voltage | Check::Current | Check::Power | Check::Energy | Check::State
            )
        })
        .collect();
    if sig.is_empty() {
        return 0.0;
    }
    let mut good = 0.0;
    for q in &sig {
        if let Ok(words) = read_regs(dev, &q.regs).await {
            let (value, bad) = judge(q, spec, &words);
            // A voltage must be a grid's, not merely not absurd: 0 V on every phase is what
            // a register of zeros gives any model.
            let grid = q.kind != Check::Voltage
                || value
                    .parse::<f64>()
                    .is_ok_and(|v| (80.0..=500.0).contains(&v));
            if bad.is_none() && value != "no value" && grid {
                good += 1.0;
            }
        }
    }
    good / sig.len() as f64
}

/// `evsite probe --scan`: one line per answering unit with its likeliest models.
pub async fn scan(a: &ToolArgs) -> Result<String, ToolError> {
    let units = parse_units(&a.units)?;
    let timeout = a.timeout(true);
    let line = Line::open(a, timeout)?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for &unit in &units {
        let dev = line.unit(unit);
        // Any answer, even an exception, proves a unit is there; a gateway's own exceptions
        // (0x0A, 0x0B) say it is not.
        let answer = dev.read(Table::Holding, 0, 1).await;
        let how = match &answer {
            Ok(_) => "answers".to_string(),
            Err(ModbusError::Exception { code: 0x0A | 0x0B }) => continue,
            Err(ModbusError::Exception { code }) => format!("answers (exception {code:#04x})"),
            Err(ModbusError::Timeout(_)) => continue,
            Err(e) => {
                return Err(ToolError {
                    message: format!("{}: {e}", dev.label()),
                    code: 69,
                })
            }
        };
        let mut cands = Vec::new();
        for spec in registry::all() {
            let c = likeness(&dev, spec).await;
            if c >= 0.5 {
                cands.push((c, spec.name));
            }
        }
        cands.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
        let looks = if cands.is_empty() {
            "no known model".to_string()
        } else {
            cands
                .iter()
                .take(3)
                .map(|(c, n)| format!("{n} {:.0}%", c * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(vec![unit.to_string(), how, looks]);
    }
    let mut out = format!(
        "{} ids on {} scanned in {:.1} s ({} ms per silent id)\n",
        units.len(),
        match &line {
            Line::Tcp(l) => format!("tcp {}:{}", l.host(), l.port()),
            Line::Rtu(b) => format!("rtu {}", b.name()),
        },
        started.elapsed().as_secs_f64(),
        timeout.as_millis()
    );
    if rows.is_empty() {
        out.push_str("no unit answered\n");
    } else {
        out.push_str(&crate::app::table::render(
            &["unit", "reply", "looks like (confidence)"],
            &rows,
        ));
    }
    Ok(out)
}

/// Runs the mode `a` asks for: the text to print and the exit code.
pub async fn run(a: &ToolArgs) -> Result<(String, u8), ToolError> {
    if a.read {
        read(a).await.map(|t| (t, 0))
    } else if a.scan {
        scan(a).await.map(|t| (t, 0))
    } else {
        try_model(a)
            .await
            .map(|(t, ok)| (t, if ok { 0 } else { 69 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_as_ranges_and_lists() {
        assert_eq!(parse_units("1-3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_units("5, 2,4-5").unwrap(), vec![2, 4, 5]);
        assert_eq!(parse_units("1-247").unwrap().len(), 247);
        for bad in ["0-3", "1-248", "5-1", "x", ""] {
            assert!(parse_units(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn implausible_values_are_named() {
        assert!(implausible(Check::Voltage, 0.0).is_some());
        assert!(implausible(Check::Voltage, 6553.5).is_some());
        assert!(implausible(Check::Voltage, 230.1).is_none());
        assert!(implausible(Check::Current, 16.0).is_none());
        assert!(implausible(Check::Current, 65535.0).is_some());
        assert!(implausible(Check::Energy, -1.0).is_some());
        assert!(implausible(Check::Limit, 32.0).is_none());
        assert!(implausible(Check::Limit, 655.35).is_some());
    }

    #[test]
    fn read_output_shows_raw_words_and_decoded_values() {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: ToolArgs,
        }
        let p = P::parse_from(["x", "--read", "--type", "float32", "--order", "lsw-first"]);
        // 230.5 as float32 is 0x4366_8000; low word first on the wire.
        let text = render_read("t", 100, &[0x8000, 0x4366], Some(DataType::F32), &p.a);
        assert!(text.contains("0x8000"), "{text}");
        assert!(text.contains("100: 230.5"), "{text}");
    }
}
