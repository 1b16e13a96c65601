//! Golden tests: every built-in model read from its file is the Rust reference data, puts the
//! very same requests on the wire and decodes a register dump to the very same values.

use super::codec::{decode, Value};
use super::file::{load, to_toml};
use super::model::ModelSpec;
use super::plan::{plan_reads, snapshot_registers};
use super::regmap::Register;
use super::state::{decode_state, encode_state, state_registers};
use super::write::encode_write;
use super::{registry, BUILTIN_FILES, MODELS};
use crate::modbus::Request;

fn reference(name: &str) -> &'static ModelSpec {
    MODELS
        .iter()
        .copied()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name}: no Rust reference"))
}

/// Writes `models/*.toml` from the Rust reference data, the module's doc as the header.
/// Run by hand (`cargo test --lib write_builtin_files -- --ignored`) after changing the data.
#[test]
#[ignore = "writes the model files; run by hand"]
fn write_builtin_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    for m in MODELS {
        let kind = if m.charger.is_some() {
            "chargers"
        } else {
            "meters"
        };
        let rust = std::fs::read_to_string(format!(
            "{root}/src/devices/{kind}/{}.rs",
            m.name.replace('-', "_")
        ))
        .unwrap();
        let mut text = String::new();
        for line in rust.lines().take_while(|l| l.starts_with("//!")) {
            let line = line.trim_start_matches("//!").trim_start();
            text.push_str(format!("# {line}").trim_end());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&to_toml(m));
        std::fs::write(format!("{root}/models/{}.toml", m.name), text).unwrap();
    }
}

#[test]
fn every_file_is_its_rust_reference() {
    assert_eq!(BUILTIN_FILES.len(), MODELS.len());
    for (name, text) in BUILTIN_FILES {
        let loaded = load(name, text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let id = loaded.spec.name;
        assert_eq!(format!("{id}.toml"), *name, "a file is named after its id");
        assert_eq!(&loaded.spec, reference(id), "{name}");
        assert_eq!(registry::find(id), Some(reference(id)), "{name}");
    }
}

#[test]
fn writing_and_reading_a_model_gives_it_back() {
    for m in MODELS {
        let text = to_toml(m);
        let back = load(m.name, &text).unwrap_or_else(|e| panic!("{}: {e:?}\n{text}", m.name));
        assert_eq!(&back.spec, *m);
    }
}

/// A register dump: every address holds a word derived from it, so each register decodes to
/// a value of its own.
fn dump(reg: &Register) -> Vec<u16> {
    (0..reg.words())
        .map(|i| reg.addr.wrapping_mul(31).wrapping_add(i * 7 + 1))
        .collect()
}

fn decoded(spec: &ModelSpec) -> Vec<String> {
    let mut out: Vec<String> = snapshot_registers(spec)
        .iter()
        .map(|r| match decode(r, &dump(r)) {
            Ok(Some(Value::Number(v))) => format!("{}={:016x}", r.addr, v.to_bits()),
            other => format!("{}={other:?}", r.addr),
        })
        .collect();
    if let Some(c) = &spec.charger {
        let regs = state_registers(&c.state);
        let words: Vec<Vec<u16>> = regs.iter().map(dump).collect();
        let slices: Vec<&[u16]> = words.iter().map(Vec::as_slice).collect();
        out.push(format!("state={:?}", decode_state(&c.state, &slices)));
    }
    out
}

fn writes(spec: &ModelSpec) -> Vec<Request> {
    let Some(c) = &spec.charger else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for amps in [0.0, c.min_current_a, 16.0, 32.0] {
        out.extend(encode_write(&c.setpoint, amps).ok());
    }
    if let Some(e) = c.enable {
        out.extend(encode_write(&e.reg, f64::from(e.on)).ok());
        out.extend(encode_write(&e.reg, f64::from(e.off)).ok());
    }
    if let Some(h) = c.heartbeat {
        out.extend(encode_write(&h.reg, f64::from(h.value)).ok());
    }
    if let Some(t) = c.comms_timeout {
        out.extend(encode_write(&t.reg, f64::from(t.default_s)).ok());
    }
    if let Some(s) = c.safe_current {
        out.extend(encode_write(&s, 6.0).ok());
    }
    for state in [
        super::model::ChargeState::A,
        super::model::ChargeState::B,
        super::model::ChargeState::C,
    ] {
        for (reg, words) in encode_state(&c.state, state) {
            out.push(Request::WriteMultiple {
                addr: reg.addr,
                values: words,
            });
        }
    }
    out
}

#[test]
fn every_file_puts_the_same_bytes_on_the_wire_and_reads_the_same_values() {
    for m in registry::all() {
        let r = reference(m.name);
        let reads = plan_reads(m);
        assert!(!reads.is_empty(), "{}", m.name);
        assert_eq!(reads, plan_reads(r), "{}: reads", m.name);
        let w = writes(m);
        assert_eq!(w, writes(r), "{}: writes", m.name);
        if m.charger.is_some() {
            assert!(!w.is_empty(), "{}", m.name);
        }
        let d = decoded(m);
        assert_eq!(d, decoded(r), "{}: decoded dump", m.name);
        assert!(!d.is_empty(), "{}", m.name);
    }
}

/// The worked example of docs/devices.md: the SDM120's four values in two reads.
#[test]
fn the_documented_sdm120_plan_holds() {
    use super::regmap::Table;
    let m = registry::find("eastron-sdm120").unwrap();
    assert_eq!(
        plan_reads(m),
        vec![
            Request::Read {
                table: Table::Input,
                addr: 0x0000,
                count: 0x0E
            },
            Request::Read {
                table: Table::Input,
                addr: 0x0048,
                count: 2
            },
        ]
    );
}

/// `head` (raw words as the device answers them), then `fill` up to `n` words.
fn padded(head: &[u16], n: u16, fill: u16) -> Vec<u16> {
    let mut w = head.to_vec();
    w.resize(usize::from(n), fill);
    w
}

/// Each model's id registers decoded from register dumps: a real-looking id padded with
/// NULs and with blanks, all zeros, all 0xFFFF, and bytes no id has.
#[test]
fn id_registers_decode_from_register_dumps() {
    use super::codec::{decode_id, IdText};
    // "04A1B2C3D4E5F6", a 7-byte MIFARE UID as hex, as an OCPP idTag usually is.
    const UID: [u16; 7] = [0x3034, 0x4131, 0x4232, 0x4333, 0x4434, 0x4535, 0x4636];
    // "0A1B2C3D4E5F", an EVCCID (the vehicle's MAC) as 12 hex digits: exactly 6 registers.
    const EVCCID: [u16; 6] = [0x3041, 0x3142, 0x3243, 0x3344, 0x3445, 0x3546];
    let id = |s: &str| IdText::Id(s.to_string());
    let expect = [
        ("phoenix-charx", (1275, 10), Some((1265, 10))),
        ("webasto-next", (1600, 10), None),
        ("bender-cc613", (720, 10), Some((741, 6))),
        ("vestel-evc04", (1516, 15), None),
    ];
    for (name, (tag_addr, tag_words), ev) in expect {
        let c = reference(name).charger.unwrap();
        let tag = c.id_tag.unwrap();
        assert_eq!((tag.addr, tag.words()), (tag_addr, tag_words), "{name}");
        assert_eq!(c.ev_id.map(|e| (e.reg.addr, e.reg.words())), ev, "{name}");
        let mut regs = vec![(tag, &UID[..], "04A1B2C3D4E5F6")];
        if let Some(e) = c.ev_id {
            regs.push((e.reg, &EVCCID[..], "0A1B2C3D4E5F"));
        }
        for (reg, head, text) in regs {
            let n = reg.words();
            assert_eq!(decode_id(&padded(head, n, 0)), id(text), "{name} NULs");
            assert_eq!(
                decode_id(&padded(head, n, 0x2020)),
                id(text),
                "{name} blanks"
            );
            // An odd length: the last byte of a word is the NUL or blank.
            let mut odd = padded(head, n, 0);
            odd[usize::from(n) - 1] = 0;
            odd[head.len() - 1] = 0x4600;
            let want = format!("{}F", &text[..text.len() - 2]);
            if usize::from(n) > head.len() {
                assert_eq!(decode_id(&odd), id(&want), "{name} odd");
            }
            assert_eq!(decode_id(&padded(&[], n, 0)), IdText::None, "{name} zeros");
            assert_eq!(
                decode_id(&padded(&[], n, 0xFFFF)),
                IdText::None,
                "{name} 0xFFFF"
            );
            assert_eq!(
                decode_id(&padded(&[], n, 0x2020)),
                IdText::None,
                "{name} blanks"
            );
            let mut bad = padded(head, n, 0);
            bad[1] = 0x41FE;
            assert_eq!(decode_id(&bad), IdText::Unprintable, "{name} 0xFE");
            bad[1] = 0x0A41;
            assert_eq!(decode_id(&bad), IdText::Unprintable, "{name} newline");
            // What the simulator serves decodes back to the token.
            let served = super::codec::encode_text(&reg, text);
            assert_eq!(decode_id(&served), id(text), "{name} served");
        }
    }
    // Every other charger reports no id.
    for m in MODELS.iter().filter(|m| m.charger.is_some()) {
        let c = m.charger.unwrap();
        let listed = expect.iter().any(|(n, _, _)| *n == m.name);
        assert_eq!(c.id_tag.is_some(), listed, "{}", m.name);
    }
}
