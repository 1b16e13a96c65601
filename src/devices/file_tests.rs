//! A test per kind of mistake in a model file: each is refused (or warned about) with the
//! line and column where it was made.

use super::*;
use crate::devices::registry;

/// A complete, valid charger model to break one key at a time.
const CHARGER: &str = r#"id = "acme-wallbox"
title = "Acme Wallbox"
kind = "charger"
phases = 3

[provenance]
confidence = "M (Acme Modbus manual v2)"

[link]
transports = ["tcp"]
unit = 1
port = 502

[registers]
current_l1 = { addr = 100, function = "input", type = "uint16", scale = 0.1 }
current_l2 = { addr = 101, function = "input", type = "uint16", scale = 0.1 }
current_l3 = { addr = 102, function = "input", type = "uint16", scale = 0.1 }
power = { addr = 104, function = "input", type = "uint32" }
setpoint = { addr = 300, function = "holding", type = "uint16", write = "fc6" }
comms_timeout = { addr = 301, function = "holding", type = "uint16", write = "fc6", default_s = 30 }

[state]
kind = "codes"
register = { addr = 110, function = "input", type = "uint16" }
codes = [
    { value = 1, state = "A" },
    { value = 2, state = "B" },
    { value = 3, state = "C" },
]

[charger]
min_current_a = 6.0
setpoint_step_a = 1.0
fallback = "its safe current once the comms timeout has run out"
"#;

fn errors(text: &str) -> Vec<Finding> {
    match load("acme.toml", text) {
        Ok(l) => panic!("accepted: {:?}", l.spec),
        Err(e) => e,
    }
}

/// The one error `text` has, checked to be at the line holding `at` and to mention `says`.
fn one_error(text: &str, at: &str, says: &str) -> Finding {
    let e = errors(text);
    let errs: Vec<&Finding> = e.iter().filter(|f| !f.warning).collect();
    assert_eq!(errs.len(), 1, "{e:#?}");
    let f = errs[0].clone();
    let line = text
        .lines()
        .position(|l| l.contains(at))
        .unwrap_or_else(|| panic!("{at:?} not in the text"))
        + 1;
    assert_eq!(f.line, line, "{f}");
    assert!(f.col >= 1, "{f}");
    assert!(
        f.to_string().starts_with(&format!("acme.toml:{line}:")),
        "{f}"
    );
    assert!(f.reason.contains(says), "{f}");
    f
}

#[test]
fn the_example_loads_without_findings() {
    let l = load("acme.toml", CHARGER).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.spec.name, "acme-wallbox");
    assert_eq!(l.spec.kind, DeviceKind::Charger);
    let c = l.spec.charger.unwrap();
    assert_eq!(c.setpoint.addr, 300);
    assert_eq!(c.comms_timeout.unwrap().default_s, 30);
}

/// Only the two Phoenix chargers, whose fallback is "none known", are warned about: the
/// built-in files pass the same checks as a user's.
#[test]
fn built_in_models_raise_no_findings_but_the_known_ones() {
    let mut warned_about = Vec::new();
    for (name, text) in crate::devices::BUILTIN_FILES {
        let l = load(name, text).unwrap();
        for w in &l.warnings {
            assert!(w.to_string().contains("safety invariant 3"), "{w}");
            assert!(
                l.spec.charger.unwrap().fallback.contains("none known"),
                "{w}"
            );
        }
        if !l.warnings.is_empty() {
            warned_about.push(l.spec.name);
        }
    }
    assert_eq!(warned_about, ["phoenix-charx", "phoenix-ev-eth"]);
    assert_eq!(crate::devices::BUILTIN_FILES.len(), registry::all().len());
}

#[test]
fn a_syntax_error_is_located() {
    let text = CHARGER.replace("unit = 1", "unit = = 1");
    one_error(&text, "unit = = 1", "");
}

#[test]
fn an_unknown_key_is_located() {
    let text = CHARGER.replace("port = 502", "port = 502\nbaudrate = 9600");
    let f = one_error(&text, "baudrate", "unknown field");
    assert_eq!(f.key, "link.baudrate");
}

#[test]
fn an_unknown_type_is_located_at_its_value() {
    let text = CHARGER.replace(
        "power = { addr = 104, function = \"input\", type = \"uint32\" }",
        "power = { addr = 104, function = \"input\", type = \"uint24\" }",
    );
    let f = one_error(&text, "uint24", "unknown type \"uint24\"");
    let line = text.lines().nth(f.line - 1).unwrap();
    assert_eq!(
        line.chars().skip(f.col - 1).collect::<String>(),
        "\"uint24\" }",
        "the column points at the value"
    );
    assert_eq!(f.key, "registers.power.type");
}

#[test]
fn an_unknown_function_is_located() {
    let text = CHARGER.replace(
        "power = { addr = 104, function = \"input\"",
        "power = { addr = 104, function = \"discrete\"",
    );
    one_error(&text, "discrete", "unknown variant");
}

#[test]
fn overlapping_registers_are_refused() {
    // A u32 at 104–105 and a u16 at 105.
    let text = CHARGER.replace(
        "power = { addr = 104, function = \"input\", type = \"uint32\" }",
        "power = { addr = 104, function = \"input\", type = \"uint32\" }\nenergy = { addr = 105, function = \"input\", type = \"uint16\" }",
    );
    let f = one_error(&text, "energy = ", "overlap registers.power");
    assert_eq!(f.key, "registers.energy.addr");
    // The same registers in another table do not overlap, and one register read as two
    // quantities is allowed.
    let other_table = text.replace(
        "energy = { addr = 105, function = \"input\"",
        "energy = { addr = 105, function = \"holding\"",
    );
    assert!(load("acme.toml", &other_table).is_ok());
}

#[test]
fn out_of_range_registers_are_refused() {
    let text = CHARGER.replace("addr = 104,", "addr = 70000,");
    one_error(&text, "70000", "out of range");
    // A u32 at the last address runs past the end of the table.
    let text = CHARGER.replace("addr = 104,", "addr = 65535,");
    one_error(&text, "65535", "runs past");
}

#[test]
fn a_multi_word_value_written_with_fc6_is_refused() {
    let text = CHARGER.replace(
        "setpoint = { addr = 300, function = \"holding\", type = \"uint16\", write = \"fc6\" }",
        "setpoint = { addr = 300, function = \"holding\", type = \"float32\", write = \"fc6\" }\n",
    )
    .replace("addr = 301,", "addr = 302,");
    one_error(&text, "float32", "fc16");
}

#[test]
fn a_charger_without_a_setpoint_is_refused_unless_monitor_only() {
    let without = CHARGER.replace(
        "setpoint = { addr = 300, function = \"holding\", type = \"uint16\", write = \"fc6\" }\n",
        "",
    );
    let e = errors(&without);
    assert!(
        e.iter()
            .any(|f| f.key == "registers.setpoint" && f.reason.contains("monitor_only")),
        "{e:?}"
    );
    let monitor = without.replace("phases = 3", "phases = 3\nmonitor_only = true");
    let l = load("acme.toml", &monitor).unwrap();
    assert_eq!(
        l.spec.kind,
        DeviceKind::Meter,
        "read as a meter, never written"
    );
    assert!(l.spec.charger.is_none());
}

#[test]
fn a_quantity_the_controller_needs_is_required() {
    let text = CHARGER.replace(
        "current_l2 = { addr = 101, function = \"input\", type = \"uint16\", scale = 0.1 }\n",
        "",
    );
    // A charger may lack a phase current; a meter may not.
    assert!(load("acme.toml", &text).is_ok());
    let meter = "id = \"acme-meter\"\ntitle = \"Acme\"\nkind = \"meter\"\nphases = 3\n\n\
                 [provenance]\nconfidence = \"L\"\n\n[link]\ntransports = [\"tcp\"]\nunit = 1\nport = 502\n\n\
                 [registers]\ncurrent_l1 = { addr = 0, function = \"input\", type = \"float32\" }\n\
                 current_l3 = { addr = 4, function = \"input\", type = \"float32\" }\n";
    let e = errors(meter);
    let keys: Vec<&str> = e.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{e:?}");
    assert!(keys.contains(&"registers.power"), "{e:?}");
    assert!(keys.contains(&"registers.current_l2"), "{e:?}");
    // No state on a charger.
    let no_state = CHARGER.split("[state]").next().unwrap().to_string()
        + "[charger]\nmin_current_a = 6.0\nsetpoint_step_a = 1.0\nfallback = \"x\"\n";
    let e = errors(&no_state);
    assert!(e.iter().any(|f| f.key == "state"), "{e:?}");
}

#[test]
fn a_charger_with_no_fallback_of_its_own_is_accepted_with_a_warning() {
    let text = CHARGER.replace(
        "comms_timeout = { addr = 301, function = \"holding\", type = \"uint16\", write = \"fc6\", default_s = 30 }\n",
        "",
    );
    let l = load("acme.toml", &text).unwrap();
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = l.warnings[0].to_string();
    assert!(w.contains("safety invariant 3"), "{w}");
    let line = text.lines().position(|l| l == "[charger]").unwrap() + 1;
    assert!(w.starts_with(&format!("acme.toml:{line}:")), "{w}");
    assert!(w.contains("warning"), "{w}");
}

#[test]
fn a_state_table_without_a_needed_state_is_refused() {
    let text = CHARGER.replace("    { value = 3, state = \"C\" },\n", "");
    one_error(&text, "codes = [", "state C");
}

#[test]
fn a_bad_id_and_phases_are_refused() {
    let text = CHARGER.replace("id = \"acme-wallbox\"", "id = \"Acme Wallbox\"");
    one_error(&text, "Acme Wallbox\"", "lowercase");
    let text = CHARGER.replace("phases = 3", "phases = 2");
    one_error(&text, "phases = 2", "1 or 3");
}

/// The loader never panics, whatever the bytes: every built-in file, truncated, with bytes
/// replaced or lines dropped, either loads or is refused with findings placed inside the text.
#[test]
fn mutated_model_files_never_panic_and_are_refused_in_place() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let cases = std::env::var("EVSITE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let files = crate::devices::BUILTIN_FILES;
    let strategy = (
        0..files.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    );
    let refused = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(i, flips, cut, drop)| {
            let mut bytes = files[i].1.as_bytes().to_vec();
            for (at, b) in flips {
                let at = at.index(bytes.len());
                bytes[at] = b;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut lines: Vec<&str> = text.lines().collect();
            lines.remove(drop.index(lines.len()));
            let text = lines.join("\n");
            let mut end = cut.index(text.len() + 1);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let text = &text[..end];
            if let Err(findings) = load("fuzz.toml", text) {
                prop_assert!(findings.iter().any(|f| !f.warning));
                let last_line = text.lines().count().max(1) + 1;
                for f in &findings {
                    prop_assert!(f.line >= 1 && f.line <= last_line, "{f}");
                    prop_assert!(f.col >= 1 && !f.reason.is_empty(), "{f:?} in {text:?}");
                }
                refused.set(refused.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    let refused = refused.get();
    println!("{cases} mutated model files, {refused} refused");
    assert!(refused > 0, "the mutations reached the checks");
}

/// The example with `lines` added to its registers.
fn with_registers(lines: &str) -> String {
    CHARGER.replace(
        "comms_timeout = { addr = 301",
        &format!("{lines}\ncomms_timeout = {{ addr = 301"),
    )
}

#[test]
fn id_registers_load_and_survive_the_round_trip() {
    let text = with_registers(
        "id_tag = { addr = 400, function = \"holding\", type = \"string\", words = 10 }\n\
         ev_id = { addr = 421, function = \"holding\", type = \"string\", words = 6, valid_addr = 420, valid_value = 1 }",
    );
    let l = load("acme.toml", &text).unwrap();
    let c = l.spec.charger.unwrap();
    let tag = c.id_tag.unwrap();
    assert_eq!(
        (tag.addr, tag.words(), tag.table),
        (400, 10, Table::Holding)
    );
    let ev = c.ev_id.unwrap();
    assert_eq!((ev.reg.addr, ev.reg.words()), (421, 6));
    let (flag, v) = ev.valid_when.unwrap();
    assert_eq!((flag.addr, flag.table, v), (420, Table::Holding, 1));
    let back = load("acme.toml", &to_toml(&l.spec)).unwrap();
    assert_eq!(back.spec, l.spec);
}

#[test]
fn an_id_that_is_not_a_string_is_located() {
    let text = with_registers("id_tag = { addr = 400, function = \"holding\", type = \"uint32\" }");
    let f = one_error(&text, "id_tag", "an id is text");
    assert_eq!(f.key, "registers.id_tag.type");
    let text =
        with_registers("ev_id = { addr = 400, function = \"holding\", type = \"ascii-high\" }");
    let f = one_error(&text, "ev_id", "an id is text");
    assert_eq!(f.key, "registers.ev_id.type");
}

#[test]
fn an_id_overlapping_another_register_is_located() {
    // 295–304 runs over the setpoint at 300.
    let text = with_registers(
        "id_tag = { addr = 295, function = \"holding\", type = \"string\", words = 10 }",
    );
    let f = one_error(&text, "id_tag", "overlap");
    assert_eq!(f.key, "registers.id_tag.addr");
    // The ev id's validity flag inside the user id.
    let text = with_registers(
        "id_tag = { addr = 400, function = \"holding\", type = \"string\", words = 10 }\n\
         ev_id = { addr = 421, function = \"holding\", type = \"string\", words = 6, valid_addr = 405, valid_value = 1 }",
    );
    let f = one_error(&text, "ev_id", "overlaps registers.id_tag");
    assert_eq!(f.key, "registers.ev_id.valid_addr");
}

#[test]
fn an_id_written_or_half_a_condition_is_located() {
    let text = with_registers(
        "id_tag = { addr = 400, function = \"holding\", type = \"string\", words = 10, write = \"fc16\" }",
    );
    let f = one_error(&text, "id_tag", "never written");
    assert_eq!(f.key, "registers.id_tag.write");
    let text = with_registers(
        "ev_id = { addr = 421, function = \"holding\", type = \"string\", words = 6, valid_addr = 420 }",
    );
    one_error(&text, "ev_id", "needs `valid_value`");
    let text = with_registers(
        "id_tag = { addr = 400, function = \"holding\", type = \"string\", words = 10, valid_value = 1 }",
    );
    let f = one_error(&text, "id_tag", "does not belong to registers.id_tag");
    assert_eq!(f.key, "registers.id_tag.valid_value");
}

#[test]
fn a_meter_with_an_id_is_located() {
    let meter = load(
        "m.toml",
        &crate::devices::file::to_toml(registry::find("eastron-sdm630").unwrap()),
    )
    .unwrap();
    let text = to_toml(&meter.spec).replace(
        "[registers]\n",
        "[registers]\nid_tag = { addr = 1000, function = \"input\", type = \"string\", words = 10 }\n",
    );
    let f = one_error(&text, "id_tag", "no charger registers");
    assert_eq!(f.key, "registers.id_tag");
}
