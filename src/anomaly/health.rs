//! Station health: each charger against the site's other chargers over a period. Pure: the
//! report feeds it what the store holds over its range (energy, alerts, the hourly Modbus
//! request counts), `/metrics` what the daemon counted since it started. A charger is flagged on a measure when it
//! is above [`PEER_FACTOR`] × the median of its peers' values and above the measure's floor,
//! so two chargers that both failed once are not each other's outlier.

use serde::Serialize;

use super::site_meter::median;

/// Flagged above this many times the peers' median …
pub const PEER_FACTOR: f64 = 2.0;
/// … and only with at least this many peers to compare with.
pub const MIN_PEERS: usize = 2;
/// Floors: a share of the site's energy no charger of a small site is flagged below …
const ENERGY_SHARE_FLOOR: f64 = 0.05;
/// … a share of failed Modbus requests …
const ERROR_RATIO_FLOOR: f64 = 0.01;
/// … and a number of alerts.
const ALERTS_FLOOR: f64 = 3.0;

/// What is known of one charger over the period (None: not measured there).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StationInput {
    pub charger: String,
    pub energy_wh: Option<u64>,
    /// Modbus requests and the ones that failed.
    pub requests: Option<u64>,
    pub failed: Option<u64>,
    /// Alerts raised on it: link and fault alerts, and anomaly alerts.
    pub link_alerts: Option<usize>,
    pub anomaly_alerts: Option<usize>,
}

/// A charger's figures against its peers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StationHealth {
    pub charger: String,
    /// Its share of the site's energy over the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_share_ratio: Option<f64>,
    /// Failed over sent Modbus requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_alerts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly_alerts: Option<usize>,
    /// The measures it stands out on: `energy`, `errors`, `link_alerts`, `anomaly_alerts`.
    pub flags: Vec<&'static str>,
}

/// A measure's name, how to read it off a charger's figures, and its floor.
type Measure = (&'static str, fn(&StationHealth) -> Option<f64>, f64);

/// Every charger of `rows` against the others.
pub fn compare(rows: &[StationInput]) -> Vec<StationHealth> {
    let total_wh: u64 = rows.iter().filter_map(|r| r.energy_wh).sum();
    let mut out: Vec<StationHealth> = rows
        .iter()
        .map(|r| StationHealth {
            charger: r.charger.clone(),
            energy_share_ratio: r
                .energy_wh
                .filter(|_| total_wh > 0)
                .map(|wh| wh as f64 / total_wh as f64),
            error_ratio: match (r.requests, r.failed) {
                (Some(n), Some(f)) if n > 0 => Some(f as f64 / n as f64),
                _ => None,
            },
            link_alerts: r.link_alerts,
            anomaly_alerts: r.anomaly_alerts,
            flags: Vec::new(),
        })
        .collect();
    let measures: [Measure; 4] = [
        ("energy", |h| h.energy_share_ratio, ENERGY_SHARE_FLOOR),
        ("errors", |h| h.error_ratio, ERROR_RATIO_FLOOR),
        (
            "link_alerts",
            |h| h.link_alerts.map(|n| n as f64),
            ALERTS_FLOOR,
        ),
        (
            "anomaly_alerts",
            |h| h.anomaly_alerts.map(|n| n as f64),
            ALERTS_FLOOR,
        ),
    ];
    for (name, value, floor) in measures {
        let values: Vec<Option<f64>> = out.iter().map(value).collect();
        for (i, h) in out.iter_mut().enumerate() {
            let Some(v) = values[i] else {
                continue;
            };
            let mut peers: Vec<f64> = values
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .filter_map(|(_, x)| *x)
                .collect();
            if peers.len() < MIN_PEERS {
                continue;
            }
            peers.sort_by(f64::total_cmp);
            if v >= floor && v > PEER_FACTOR * median(&peers) {
                h.flags.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, wh: u64, requests: u64, failed: u64) -> StationInput {
        StationInput {
            charger: id.into(),
            energy_wh: Some(wh),
            requests: Some(requests),
            failed: Some(failed),
            link_alerts: Some(0),
            anomaly_alerts: Some(0),
        }
    }

    #[test]
    fn a_charger_failing_or_consuming_far_more_than_its_peers_is_flagged() {
        let rows = [
            row("cp-1", 10_000, 1000, 2),
            row("cp-2", 12_000, 1000, 3),
            row("cp-3", 11_000, 1000, 90),
            row("cp-4", 60_000, 1000, 1),
        ];
        let h = compare(&rows);
        assert_eq!(h[2].flags, ["errors"], "{h:?}");
        assert_eq!(h[3].flags, ["energy"], "{h:?}");
        assert!(h[0].flags.is_empty() && h[1].flags.is_empty(), "{h:?}");
        assert!((h[2].error_ratio.unwrap() - 0.09).abs() < 1e-12);
        let shares: f64 = h.iter().filter_map(|x| x.energy_share_ratio).sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }

    #[test]
    fn below_the_floor_or_without_enough_peers_nothing_is_flagged() {
        // 0.5 % of requests failing is five times the peers', but below the 1 % floor.
        let rows = [
            row("cp-1", 10_000, 1000, 1),
            row("cp-2", 10_000, 1000, 1),
            row("cp-3", 10_000, 1000, 5),
        ];
        assert!(compare(&rows).iter().all(|h| h.flags.is_empty()));
        // One peer is no site to compare with.
        let two = [row("cp-1", 10_000, 1000, 1), row("cp-2", 10_000, 1000, 500)];
        assert!(compare(&two).iter().all(|h| h.flags.is_empty()));
    }

    #[test]
    fn what_was_not_measured_is_not_judged() {
        let mut rows = vec![row("cp-1", 0, 0, 0), row("cp-2", 0, 0, 0)];
        rows.push(StationInput {
            charger: "cp-3".into(),
            ..StationInput::default()
        });
        let h = compare(&rows);
        assert_eq!(h[2].energy_share_ratio, None);
        assert_eq!(h[0].error_ratio, None, "no requests yet");
    }
}
