//! Time zones by their IANA name, parsed once here. A mistyped zone must not pass: the site
//! would run on UTC and every tariff window, demand window and schedule would move by the
//! zone's offset. So the error names the closest known zone, which is almost always the
//! one meant.

use chrono_tz::{Tz, TZ_VARIANTS};

use super::check;
use crate::config::error::KeyPath;
use crate::config::report::Reporter;

/// Below this similarity (0–1) a known name is not offered: it would be a guess.
const SUGGEST_FROM: f64 = 0.7;

/// The zone named `name`, or a located error with the closest known name.
pub(crate) fn zone(name: &str, path: &KeyPath, rep: &mut Reporter<'_>) -> Option<Tz> {
    let tz = name.parse::<Tz>().ok();
    if tz.is_none() {
        let reason = match closest(name) {
            Some(near) => format!("unknown time zone {name:?}; did you mean {near:?}?"),
            None => format!(
                "unknown time zone {name:?}; it must be an IANA time zone such as \"Europe/Brussels\""
            ),
        };
        check(rep, false, path, reason);
    }
    tz
}

/// The known zone name most like `name`, if one is close enough. Compared without case, so
/// `europe/berlin` finds `Europe/Berlin`.
pub(crate) fn closest(name: &str) -> Option<&'static str> {
    let wanted = name.to_lowercase();
    TZ_VARIANTS
        .iter()
        .map(|tz| {
            let known = tz.name();
            let score = strsim::normalized_damerau_levenshtein(&wanted, &known.to_lowercase());
            (score, known)
        })
        .filter(|(score, _)| *score >= SUGGEST_FROM)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_known_name_is_offered() {
        assert_eq!(closest("Europe/Berln"), Some("Europe/Berlin"));
        assert_eq!(closest("europe/brussels"), Some("Europe/Brussels"));
        assert_eq!(closest("America/New York"), Some("America/New_York"));
        assert_eq!(closest("Europe/Amsterdma"), Some("Europe/Amsterdam"));
        assert_eq!(closest("xyz"), None);
    }
}
