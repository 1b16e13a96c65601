//! Every supported model, looked up by its config name.

use super::chargers;
use super::meters;
use super::model::ModelSpec;

static ALL: [&ModelSpec; 15] = [
    &meters::eastron_sdm630::SPEC,
    &meters::eastron_sdm72d::SPEC,
    &meters::eastron_sdm120::SPEC,
    &meters::carlo_gavazzi_em24::SPEC,
    &meters::carlo_gavazzi_em340::SPEC,
    &meters::abb_b23::SPEC,
    &chargers::alfen_eve::SPEC,
    &chargers::abb_terra_ac::SPEC,
    &chargers::phoenix_ev_eth::SPEC,
    &chargers::phoenix_charx::SPEC,
    &chargers::bender_cc613::SPEC,
    &chargers::mennekes_amtron_compact::SPEC,
    &chargers::schneider_evlink_pro::SPEC,
    &chargers::vestel_evc04::SPEC,
    &chargers::webasto_next::SPEC,
];

/// All models, meters first, in a stable order (the `evsite models` listing).
pub fn all() -> &'static [&'static ModelSpec] {
    &ALL
}

/// The model with this config name (`"eastron-sdm630"`), if supported.
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    ALL.iter().copied().find(|m| m.name == name)
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
}
