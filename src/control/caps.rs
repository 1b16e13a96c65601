//! How caps compose: every source (cloud command, profile, schedule, demand budget, plan,
//! idle watch) can only lower a limit, never raise it — invariant 1, whatever the source
//! computes (a NaN, a negative, an infinity). Pure; the loop composes every cap through here.

use super::record::{LimitSource, SiteLimit};

/// `limit` lowered to `cap` when the cap is lower, with `source` as where it comes from.
/// A NaN never compares lower; a negative cap is 0.
pub fn lower(limit: SiteLimit, cap: Option<f64>, source: LimitSource) -> SiteLimit {
    match cap.filter(|&c| c < limit.limit_a) {
        Some(c) => SiteLimit {
            limit_a: c.max(0.0),
            source,
            expires_at: None,
        },
        None => limit,
    }
}

/// The lowest of a charger's caps (None: none applies). A NaN cap is 0: a cap that makes
/// no sense pauses rather than lifts.
pub fn lowest(caps: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    caps.into_iter()
        .flatten()
        .map(|a| if a.is_nan() { 0.0 } else { a.max(0.0) })
        .reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_cap() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            Just(Some(f64::NAN)),
            Just(Some(f64::INFINITY)),
            Just(Some(f64::NEG_INFINITY)),
            (-100.0f64..1000.0).prop_map(Some),
        ]
    }

    proptest! {
        /// Invariant 1: schedules, the demand budget and plans stacked in any order never
        /// take the site limit above the installer's grid limit, nor a charger's cap above
        /// any one of its caps.
        #[test]
        fn no_cap_can_raise_a_limit(
            grid in 1.0f64..4000.0,
            caps in proptest::collection::vec(any_cap(), 0..6),
        ) {
            let mut limit = SiteLimit { limit_a: grid, source: LimitSource::Installer, expires_at: None };
            let sources = [LimitSource::Command, LimitSource::Profile, LimitSource::Schedule, LimitSource::Demand];
            for (i, c) in caps.iter().enumerate() {
                let before = limit.limit_a;
                limit = lower(limit, *c, sources[i % sources.len()]);
                prop_assert!(limit.limit_a <= before);
                prop_assert!(limit.limit_a >= 0.0 && !limit.limit_a.is_nan());
            }
            prop_assert!(limit.limit_a <= grid);
            if let Some(low) = lowest(caps.iter().copied()) {
                prop_assert!(low >= 0.0 && !low.is_nan());
                for c in caps.iter().flatten().filter(|c| !c.is_nan()) {
                    prop_assert!(low <= c.max(0.0));
                }
            }
        }
    }
}
