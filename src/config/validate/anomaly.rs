//! `[anomaly]`: every threshold finite and in a range that keeps its rule meaningful (the
//! ranges are listed with the settings, in `crate::anomaly::settings`).

use super::{check, num};
use crate::anomaly::settings::{COUNT_KEYS, REAL_KEYS};
use crate::anomaly::Settings;
use crate::config::error::KeyPath;
use crate::config::report::Reporter;

pub(super) fn anomaly(raw: &Settings, rep: &mut Reporter<'_>) -> Option<Settings> {
    let p = KeyPath::root("anomaly");
    let before = rep.count();
    for (key, value, lo, hi, unit) in REAL_KEYS {
        let v = value(raw);
        check(
            rep,
            v.is_finite() && (*lo..=*hi).contains(&v),
            &p.key(key),
            format!("must be {}–{}{unit}, got {}", num(*lo), num(*hi), num(v)),
        );
    }
    for (key, value, lo, hi) in COUNT_KEYS {
        let v = value(raw);
        check(
            rep,
            (*lo..=*hi).contains(&v),
            &p.key(key),
            format!("must be {lo}–{hi}, got {v}"),
        );
    }
    check(
        rep,
        raw.outlier_min_sessions <= raw.outlier_sessions,
        &p.key("outlier_min_sessions"),
        format!(
            "must not exceed outlier_sessions ({}), got {}",
            raw.outlier_sessions, raw.outlier_min_sessions
        ),
    );
    (rep.count() == before).then(|| raw.clone())
}
