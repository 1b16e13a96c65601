//! `/metrics`: the Prometheus text exposition (0.0.4), formatted by hand from the live state.
//! Names carry their base unit (`_amperes`, `_watts`, `_joules`, `_seconds`); counters end in
//! `_total`. Energy registers are exposed in joules (Wh × 3600), as Prometheus expects.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::observe::{Histogram, CYCLE_BUCKETS_S};
use super::ApiContext;
use crate::alerts::AlertKind;
use crate::control::safety::Mode;
use crate::modbus::StatsSnapshot;
use crate::site::SiteState;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const PHASES: [&str; 3] = ["L1", "L2", "L3"];

pub async fn metrics(State(ctx): State<ApiContext>) -> Response {
    let st = ctx.current();
    let outbox = ctx.store.as_ref().map(|s| s.outbox_len());
    let mqtt = ctx.link.as_ref().map(|l| l.borrow().connected);
    let text = render(&st, &ctx.observed.histogram(), outbox, mqtt, ctx.healthy());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Startup => "startup",
        Mode::Normal => "normal",
        Mode::Holding => "holding",
        Mode::Failsafe => "failsafe",
    }
}

fn kind_name(k: AlertKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The Modbus counters of one device, by kind of failure.
fn modbus(out: &mut Vec<(String, StatsSnapshot)>, device: &str, s: StatsSnapshot) {
    out.push((device.to_owned(), s));
}

/// Station health since start: each charger against the site's others.
fn stations(o: &mut Out, st: &SiteState) {
    o.family(
        "evsite_charger_energy_share_ratio",
        "gauge",
        "The charger's share of the energy the site's chargers delivered since start.",
    );
    for h in &st.stations {
        if let Some(r) = h.energy_share_ratio {
            o.sample(
                "evsite_charger_energy_share_ratio",
                &[("charger", &h.charger)],
                r,
            );
        }
    }
    o.family(
        "evsite_charger_error_ratio",
        "gauge",
        "Failed over sent Modbus requests to the charger since start.",
    );
    for h in &st.stations {
        if let Some(r) = h.error_ratio {
            o.sample("evsite_charger_error_ratio", &[("charger", &h.charger)], r);
        }
    }
    o.family(
        "evsite_charger_health_outlier",
        "gauge",
        "1 when the charger stands out from the site's others on a measure (above twice their median).",
    );
    for h in &st.stations {
        for m in ["energy", "errors", "link_alerts", "anomaly_alerts"] {
            let v = f64::from(u8::from(h.flags.contains(&m)));
            o.sample(
                "evsite_charger_health_outlier",
                &[("charger", &h.charger), ("measure", m)],
                v,
            );
        }
    }
}

pub fn render(
    st: &SiteState,
    cycles: &Histogram,
    outbox: Option<usize>,
    mqtt_connected: Option<bool>,
    healthy: bool,
) -> String {
    let mut o = Out(String::with_capacity(4096));
    o.family("evsite_up", "gauge", "1 while the control loop is cycling.");
    o.sample("evsite_up", &[], f64::from(u8::from(healthy)));
    if let Some(c) = st.cycle.as_deref() {
        o.family(
            "evsite_control_cycles_total",
            "counter",
            "Control cycles run.",
        );
        o.sample("evsite_control_cycles_total", &[], c.seq as f64);
        o.family(
            "evsite_control_mode",
            "gauge",
            "1 for the control mode in force.",
        );
        for m in [Mode::Startup, Mode::Normal, Mode::Holding, Mode::Failsafe] {
            let v = f64::from(u8::from(m == c.mode));
            o.sample("evsite_control_mode", &[("mode", mode_name(m))], v);
        }
        o.family(
            "evsite_grid_current_amperes",
            "gauge",
            "Grid current per phase, from the main meter.",
        );
        if let Some(g) = &c.grid {
            for (p, a) in PHASES.iter().zip(g.current_a) {
                if let Some(a) = a {
                    o.sample("evsite_grid_current_amperes", &[("phase", p)], a);
                }
            }
        }
        if let Some(w) = c.grid.and_then(|g| g.power_w) {
            o.family(
                "evsite_grid_power_watts",
                "gauge",
                "Grid power, from the main meter.",
            );
            o.sample("evsite_grid_power_watts", &[], w);
        }
        o.family(
            "evsite_clock_trusted",
            "gauge",
            "1 when the wall time is trusted (synchronised, or vouched for by the installer).",
        );
        o.sample(
            "evsite_clock_trusted",
            &[],
            f64::from(u8::from(c.clock.trusted)),
        );
        o.family(
            "evsite_clock_steps_total",
            "counter",
            "Steps of the system clock seen since start.",
        );
        o.sample("evsite_clock_steps_total", &[], c.clock.steps as f64);
        o.family(
            "evsite_site_limit_amperes",
            "gauge",
            "The per-phase site limit in force, by where it comes from.",
        );
        let source = c.limit.source.name();
        o.sample(
            "evsite_site_limit_amperes",
            &[("source", source)],
            c.limit.limit_a,
        );
        if let Some(d) = &c.demand {
            let elapsed_s = (c.at - d.window_start).num_milliseconds() as f64 / 1000.0;
            let so_far_kw = if elapsed_s > 0.0 {
                d.energy_wh * 3.6 / elapsed_s
            } else {
                0.0
            };
            for (name, help, v) in [
                (
                    "evsite_demand_window_kw",
                    "The demand window's average import so far.",
                    so_far_kw,
                ),
                (
                    "evsite_demand_projected_kw",
                    "The window's average if the rest of it goes on at today's power.",
                    d.projected_kw,
                ),
                (
                    "evsite_demand_limit_kw",
                    "The demand target in force.",
                    d.limit_kw,
                ),
                (
                    "evsite_demand_month_peak_kw",
                    "The highest finished window of this month.",
                    d.month_peak_kw,
                ),
            ] {
                o.family(name, "gauge", help);
                o.sample(name, &[], v);
            }
        }
        o.family(
            "evsite_charger_online",
            "gauge",
            "1 when the charger answered this cycle.",
        );
        for ch in &c.chargers {
            o.sample(
                "evsite_charger_online",
                &[("charger", &ch.id)],
                f64::from(u8::from(ch.online)),
            );
        }
        o.family(
            "evsite_charger_current_amperes",
            "gauge",
            "Charger current per charger phase, as read.",
        );
        for ch in &c.chargers {
            for (p, a) in PHASES.iter().zip(ch.current_a) {
                if let Some(a) = a {
                    o.sample(
                        "evsite_charger_current_amperes",
                        &[("charger", &ch.id), ("phase", p)],
                        a,
                    );
                }
            }
        }
        o.family(
            "evsite_charger_setpoint_amperes",
            "gauge",
            "The last setpoint written to the charger.",
        );
        for ch in &c.chargers {
            if let Some(a) = ch.setpoint_a {
                o.sample("evsite_charger_setpoint_amperes", &[("charger", &ch.id)], a);
            }
        }
        o.family(
            "evsite_charger_power_watts",
            "gauge",
            "Charger power, as read.",
        );
        for ch in &c.chargers {
            if let Some(w) = ch.power_w {
                o.sample("evsite_charger_power_watts", &[("charger", &ch.id)], w);
            }
        }
        o.family(
            "evsite_charger_energy_joules_total",
            "counter",
            "The charger's energy register (Wh × 3600).",
        );
        for ch in &c.chargers {
            if let Some(wh) = ch.energy_wh {
                o.sample(
                    "evsite_charger_energy_joules_total",
                    &[("charger", &ch.id)],
                    wh * 3600.0,
                );
            }
        }
        stations(&mut o, st);
        let mut devices = Vec::with_capacity(c.chargers.len() + 1);
        modbus(&mut devices, "meter", c.meter_link);
        for ch in &c.chargers {
            modbus(&mut devices, &ch.id, ch.link);
        }
        o.family(
            "evsite_modbus_requests_total",
            "counter",
            "Modbus requests sent, per device.",
        );
        for (d, s) in &devices {
            o.sample(
                "evsite_modbus_requests_total",
                &[("device", d)],
                s.requests as f64,
            );
        }
        o.family(
            "evsite_modbus_errors_total",
            "counter",
            "Modbus requests that failed, per device and kind.",
        );
        for (d, s) in &devices {
            for (kind, n) in [
                ("exception", s.exceptions),
                ("timeout", s.timeouts),
                ("bad_frame", s.bad_frames),
                ("link", s.link_errors),
            ] {
                o.sample(
                    "evsite_modbus_errors_total",
                    &[("device", d), ("kind", kind)],
                    n as f64,
                );
            }
        }
        o.family(
            "evsite_modbus_reconnects_total",
            "counter",
            "Modbus link reconnects, per device.",
        );
        for (d, s) in &devices {
            o.sample(
                "evsite_modbus_reconnects_total",
                &[("device", d)],
                s.reconnects as f64,
            );
        }
    }
    o.family(
        "evsite_control_cycle_duration_seconds",
        "histogram",
        "Wall time of a control cycle.",
    );
    let mut cumulative = 0;
    for (bound, n) in CYCLE_BUCKETS_S.iter().zip(cycles.counts) {
        cumulative += n;
        o.sample(
            "evsite_control_cycle_duration_seconds_bucket",
            &[("le", &bound.to_string())],
            cumulative as f64,
        );
    }
    o.sample(
        "evsite_control_cycle_duration_seconds_bucket",
        &[("le", "+Inf")],
        cycles.count as f64,
    );
    o.sample(
        "evsite_control_cycle_duration_seconds_sum",
        &[],
        cycles.sum_s,
    );
    o.sample(
        "evsite_control_cycle_duration_seconds_count",
        &[],
        cycles.count as f64,
    );
    o.family(
        "evsite_sessions_active",
        "gauge",
        "Charging sessions running.",
    );
    o.sample("evsite_sessions_active", &[], st.sessions.len() as f64);
    o.family(
        "evsite_alerts_open",
        "gauge",
        "Alerts raised and not cleared, by kind.",
    );
    for kind in AlertKind::ALL {
        let n = st.alerts.iter().filter(|a| a.kind == kind).count();
        o.sample(
            "evsite_alerts_open",
            &[("kind", &kind_name(kind))],
            n as f64,
        );
    }
    if let Some(n) = outbox {
        o.family(
            "evsite_outbox_messages",
            "gauge",
            "Messages in the durable outbox, not yet acknowledged by the broker.",
        );
        o.sample("evsite_outbox_messages", &[], n as f64);
    }
    if let Some(up) = mqtt_connected {
        o.family(
            "evsite_mqtt_connected",
            "gauge",
            "1 while connected to the MQTT broker.",
        );
        o.sample("evsite_mqtt_connected", &[], f64::from(u8::from(up)));
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::record::{ChargerCycle, CycleRecord, GridReading};

    #[test]
    fn exposition_names_units_and_labels() {
        let mut c = CycleRecord::blank(chrono::DateTime::UNIX_EPOCH, 32.0);
        c.seq = 7;
        c.grid = Some(GridReading {
            current_a: [Some(10.5), Some(3.0), None],
            voltage_v: [None; 3],
            power_w: None,
        });
        let mut ch = ChargerCycle::unread("cp-\"1\"");
        ch.setpoint_a = Some(16.0);
        ch.energy_wh = Some(2.0);
        c.chargers.push(ch);
        let mut st = SiteState::of_cycle(std::sync::Arc::new(c));
        st.stations = crate::anomaly::health::compare(&[("a", 1), ("b", 1), ("c", 50)].map(
            |(id, failed)| crate::anomaly::health::StationInput {
                charger: id.into(),
                energy_wh: Some(1000),
                requests: Some(100),
                failed: Some(failed),
                link_alerts: None,
                anomaly_alerts: None,
            },
        ));
        let mut h = Histogram::default();
        h.observe(0.003);
        let text = render(&st, &h, Some(4), Some(true), true);
        assert!(
            text.contains("evsite_grid_current_amperes{phase=\"L1\"} 10.5\n"),
            "{text}"
        );
        assert!(
            !text.contains("phase=\"L3\"}"),
            "an unread phase has no sample"
        );
        assert!(text.contains("evsite_site_limit_amperes{source=\"installer\"} 32\n"));
        assert!(text.contains("evsite_charger_setpoint_amperes{charger=\"cp-\\\"1\\\"\"} 16\n"));
        assert!(
            text.contains("evsite_charger_energy_joules_total{charger=\"cp-\\\"1\\\"\"} 7200\n")
        );
        assert!(text.contains("evsite_control_cycle_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("evsite_control_cycle_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("evsite_outbox_messages 4\n"));
        assert!(text.contains("evsite_mqtt_connected 1\n"));
        assert!(text.contains("evsite_alerts_open{kind=\"meter_offline\"} 0\n"));
        assert!(text.contains("evsite_modbus_errors_total{device=\"meter\",kind=\"timeout\"} 0\n"));
        assert!(text.contains("evsite_charger_error_ratio{charger=\"c\"} 0.5\n"));
        assert!(text.contains("evsite_charger_energy_share_ratio{charger=\"a\"} 0.3333"));
        assert!(
            text.contains("evsite_charger_health_outlier{charger=\"c\",measure=\"errors\"} 1\n")
        );
        assert!(
            text.contains("evsite_charger_health_outlier{charger=\"a\",measure=\"errors\"} 0\n")
        );
        // Every sample line belongs to a family declared before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap_or("").to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{line} has no TYPE");
            }
        }
    }
}
