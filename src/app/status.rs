//! `evsite status`: the live state from the running daemon's local API (`GET /api/state` on
//! `[api] listen`), as a table for people or the API's JSON for programs. With no daemon
//! there, it says so and exits 69 (EX_UNAVAILABLE).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::api::client::{self, ClientError};
use crate::config::Config;
use crate::control::demand::DemandStatus;

/// sysexits.h EX_UNAVAILABLE: the daemon does not answer.
pub const EX_UNAVAILABLE: u8 = 69;
/// How long the daemon has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StatusFormat {
    #[default]
    Table,
    /// The body of `/api/state`, as served.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("api.token_file: {0}")]
    Token(String),
    #[error("the daemon answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the daemon's answer is not the state: {0}")]
    Body(String),
}

impl StatusError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StatusError::Client(ClientError::Unreachable { .. }) => EX_UNAVAILABLE,
            StatusError::Token(_) => 78,
            _ => 1,
        }
    }
}

/// Asks the daemon of `cfg` for its state.
pub async fn status(cfg: &Config, format: StatusFormat) -> Result<String, StatusError> {
    let token = match &cfg.api.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| StatusError::Token(format!("{}: {e}", p.display())))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let (status, body) =
        client::get(cfg.api.listen, "/api/state", token.as_deref(), TIMEOUT).await?;
    if status != 200 {
        return Err(StatusError::Refused { status, body });
    }
    let state: Value = serde_json::from_str(&body).map_err(|e| StatusError::Body(e.to_string()))?;
    Ok(match format {
        StatusFormat::Json => {
            serde_json::to_string_pretty(&state).map_err(|e| StatusError::Body(e.to_string()))?
                + "\n"
        }
        StatusFormat::Table => table(&state),
    })
}

fn num(v: &Value, unit: &str) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.1}{unit}"))
}

/// The estimated end, with the range around it where there is one.
fn end_with_range(s: &Value) -> String {
    let end = text(&s["estimated_end_at"]);
    match (
        s["estimated_end_earliest"].as_str(),
        s["estimated_end_latest"].as_str(),
    ) {
        (Some(lo), Some(hi)) if lo != hi => format!("{end} ({lo} to {hi})"),
        _ => end,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The state for a terminal: the site line, grid per phase against the limit, the demand
/// window (a site with `[demand]`), one row per charger, the running sessions and the open
/// alerts.
pub fn table(st: &Value) -> String {
    let mut out = String::new();
    let site = &st["site"];
    let c = &st["cycle"];
    let _ = writeln!(
        out,
        "site {}  mode {}  {}  cycle {}",
        text(&site["id"]),
        text(&c["mode"]),
        if st["healthy"].as_bool() == Some(true) {
            "cycling"
        } else {
            "NOT CYCLING"
        },
        text(&c["seq"]),
    );
    let limit = &c["limit"];
    let source = text(&limit["source"]);
    let _ = write!(
        out,
        "limit {} per phase from the {source}",
        num(&limit["limit_a"], " A")
    );
    if source != "installer" {
        if !limit["expires_at"].is_null() {
            let _ = write!(out, " until {}", text(&limit["expires_at"]));
        }
        let _ = write!(out, " (installer {})", num(&site["grid_limit_a"], " A"));
    }
    out.push('\n');
    let phases = site["phases"].as_u64().unwrap_or(3) as usize;
    let grid: Vec<String> = (0..phases)
        .map(|p| format!("L{} {}", p + 1, num(&c["grid"]["current_a"][p], " A")))
        .collect();
    let _ = writeln!(out, "grid  {}", grid.join("  "));
    if let Ok(d) = DemandStatus::deserialize(&c["demand"]) {
        let _ = writeln!(out, "demand  {}", d.summary());
    }
    if let Ok(clock) = crate::clock::ClockView::deserialize(&c["clock"]) {
        let _ = writeln!(out, "clock  {}", clock.summary());
    }
    if let Some(m) = st["mqtt"].as_object() {
        let up = m.get("connected").and_then(Value::as_bool) == Some(true);
        let _ = writeln!(
            out,
            "mqtt  {}",
            if up { "connected" } else { "disconnected" }
        );
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = c["chargers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|ch| {
            let currents: Vec<String> = (0..3).map(|p| num(&ch["current_a"][p], "")).collect();
            let link = &ch["link"];
            vec![
                text(&ch["id"]),
                if ch["online"].as_bool() == Some(true) {
                    "online".into()
                } else {
                    "offline".into()
                },
                text(&ch["state"]),
                currents.join("/"),
                num(&ch["setpoint_a"], " A"),
                text(&ch["reason"]),
                format!(
                    "{}/{}",
                    link["ok"].as_u64().unwrap_or(0),
                    link["requests"].as_u64().unwrap_or(0)
                ),
            ]
        })
        .collect();
    out.push_str(&crate::app::table::render(
        &[
            "charger",
            "link",
            "state",
            "A (L1/L2/L3)",
            "setpoint",
            "why",
            "reads ok",
        ],
        &rows,
    ));
    let sessions: Vec<Vec<String>> = st["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let cost = &s["cost"];
            vec![
                text(&s["charger"]),
                text(&s["state"]),
                format!("{:.2}", s["energy_wh"].as_f64().unwrap_or(0.0) / 1000.0),
                if cost.is_null() {
                    "-".into()
                } else {
                    format!("{} {}", text(&cost["total"]), text(&cost["currency"]))
                },
                end_with_range(s),
            ]
        })
        .collect();
    out.push('\n');
    if sessions.is_empty() {
        out.push_str("no sessions running\n");
    } else {
        out.push_str(&crate::app::table::render(
            &["session on", "state", "kWh", "cost", "estimated end"],
            &sessions,
        ));
    }
    let alerts: Vec<Vec<String>> = st["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(&a["severity"]),
                text(&a["kind"]),
                text(&a["charger"]),
                text(&a["message"]),
            ]
        })
        .collect();
    out.push('\n');
    if alerts.is_empty() {
        out.push_str("no open alerts\n");
    } else {
        out.push_str(&crate::app::table::render(
            &["severity", "alert", "charger", "message"],
            &alerts,
        ));
    }
    out
}
