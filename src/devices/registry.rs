//! Every built-in model, read from its embedded file (`models/*.toml`), looked up by its
//! config name.

use std::sync::OnceLock;

use super::file;
use super::model::{DeviceKind, ModelSpec};

struct Builtin {
    models: Vec<&'static ModelSpec>,
    /// The file each model was read from: (id, text).
    texts: Vec<(&'static str, &'static str)>,
}

fn builtin() -> &'static Builtin {
    static BUILTIN: OnceLock<Builtin> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let mut loaded: Vec<(&'static ModelSpec, &'static str)> = super::BUILTIN_FILES
            .iter()
            .map(|&(name, text)| {
                let origin = format!("models/{name}");
                match file::load(&origin, text) {
                    // Leaked once: the registry lives as long as the program.
                    Ok(l) => (&*Box::leak(Box::new(l.spec)), text),
                    // The tests load every built-in file, so this is a build that skipped them.
                    Err(e) => panic!("built-in model {origin} is broken: {e:?}"),
                }
            })
            .collect();
        // Meters first; each group stays in file-name order.
        loaded.sort_by_key(|(m, _)| m.kind != DeviceKind::Meter);
        Builtin {
            models: loaded.iter().map(|(m, _)| *m).collect(),
            texts: loaded.iter().map(|(m, t)| (m.name, *t)).collect(),
        }
    })
}

/// All models, meters first, each group in file-name order (the `evsite models` listing).
/// Every file in `models/` is one (see build.rs).
pub fn all() -> &'static [&'static ModelSpec] {
    &builtin().models
}

/// The model with this config name (`"eastron-sdm630"`), if supported.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    all().iter().copied().find(|m| m.name == name)
}

/// The file the built-in model `name` is read from, as shipped (`evsite models --show`).
pub fn source(name: &str) -> Option<&'static str> {
    builtin()
        .texts
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::model::DeviceKind;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_found() {
        let names: HashSet<_> = all().iter().map(|m| m.name).collect();
        assert_eq!(names.len(), all().len());
        for m in all() {
            assert_eq!(find(m.name).map(|f| f.name), Some(m.name));
        }
        assert!(find("wallbox-pulsar").is_none());
    }

    #[test]
    fn chargers_have_charger_specs_and_meters_not() {
        for m in all() {
            assert_eq!(
                m.charger.is_some(),
                m.kind == DeviceKind::Charger,
                "{}",
                m.name
            );
            assert!(m.phases == 1 || m.phases == 3, "{}", m.name);
            assert!(!m.transports.is_empty(), "{}", m.name);
            assert!(!m.confidence.is_empty(), "{}", m.name);
        }
    }

    #[test]
    fn rtu_models_have_serial_defaults() {
        use crate::devices::model::Transport;
        for m in all() {
            assert_eq!(
                m.serial.is_some(),
                m.transports.contains(&Transport::Rtu),
                "{}",
                m.name
            );
        }
    }

    /// Each model file is the model of its name, and the registry lists them in the order of
    /// the Rust reference data.
    #[test]
    fn every_model_file_is_the_model_it_is_named_after() {
        for (name, _) in crate::devices::BUILTIN_FILES {
            let id = name.strip_suffix(".toml").unwrap();
            assert!(find(id).is_some(), "{name}: no model named after it");
            assert!(source(id).is_some_and(|t| !t.is_empty()), "{name}");
        }
        assert_eq!(crate::devices::BUILTIN_FILES.len(), all().len());
        let order: Vec<&str> = all().iter().map(|m| m.name).collect();
        let reference: Vec<&str> = crate::devices::MODELS.iter().map(|m| m.name).collect();
        assert_eq!(order, reference);
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/devices");
        let mut files = 0;
        for (dir, kind) in [
            ("meters", DeviceKind::Meter),
            ("chargers", DeviceKind::Charger),
        ] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let path = entry.unwrap().path();
                let stem = path.file_stem().unwrap().to_str().unwrap();
                let m = find(&stem.replace('_', "-"))
                    .unwrap_or_else(|| panic!("{}: no model named after it", path.display()));
                assert_eq!(m.kind, kind, "{}", m.name);
                files += 1;
            }
        }
        assert_eq!(files, all().len());
        let first_charger = all().iter().position(|m| m.kind == DeviceKind::Charger);
        assert!(all()[first_charger.unwrap_or(0)..]
            .iter()
            .all(|m| m.kind == DeviceKind::Charger));
    }

    /// The loop allocates in the model's steps; each must reach the charger unchanged (a
    /// 0.1 A step on a whole-amp register would be rounded away).
    #[test]
    fn setpoint_steps_survive_the_setpoint_register() {
        use crate::devices::codec::decode_number;
        use crate::devices::write::encode_write;
        use crate::modbus::Request;
        for m in all() {
            let Some(c) = m.charger else { continue };
            assert!(
                c.setpoint_step_a > 0.0 && c.setpoint_step_a <= 1.0,
                "{}",
                m.name
            );
            for k in 0..20 {
                let amps = c.min_current_a + f64::from(k) * c.setpoint_step_a;
                let words = match encode_write(&c.setpoint, amps).unwrap() {
                    Request::WriteSingle { value, .. } => vec![value],
                    Request::WriteMultiple { values, .. } => values,
                    other => panic!("{}: the setpoint is written as {other:?}", m.name),
                };
                let back = decode_number(&c.setpoint, &words).unwrap().unwrap();
                assert!(
                    (back - amps).abs() < 1e-6,
                    "{}: {amps} A came back {back}",
                    m.name
                );
            }
        }
    }
}
