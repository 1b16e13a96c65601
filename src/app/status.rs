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

/// The width the text is wrapped to: a terminal's default.
const WIDTH: usize = 80;

/// A charger's why in words: `why.text` as the daemon gives it, or its reason's code from a
/// daemon that has no `why` yet.
pub fn why_text(ch: &Value) -> String {
    match ch["why"]["text"].as_str() {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => text(&ch["reason"]).replace('_', " "),
    }
}

/// Under the chargers' table, `why` and one line per charger with why it has its current,
/// the texts aligned after the widest id and wrapped to [`WIDTH`] columns.
fn why_lines(chargers: &[Value]) -> String {
    if chargers.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = chargers.iter().map(|ch| text(&ch["id"])).collect();
    let indent = ids.iter().map(|i| i.chars().count()).max().unwrap_or(0) + 2;
    // A very long id still leaves the text half the line.
    let room = WIDTH.saturating_sub(indent).max(WIDTH / 2);
    let mut out = String::from("\nwhy\n");
    for (id, ch) in ids.iter().zip(chargers) {
        for (i, line) in wrap(&why_text(ch), room).iter().enumerate() {
            let head = if i == 0 { id.as_str() } else { "" };
            let _ = writeln!(out, "{head:<indent$}{line}");
        }
    }
    out
}

/// `s` in lines of at most `width` characters, broken between words (a longer word has a
/// line of its own).
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The state for a terminal: the site line, grid per phase against the limit, the demand
/// window (a site with `[demand]`), one row per charger, then why each charger has its
/// current (`why.text`, one line each), the running sessions and the open alerts.
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
            "reads ok",
        ],
        &rows,
    ));
    out.push_str(&why_lines(
        c["chargers"].as_array().map_or(&[][..], Vec::as_slice),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_wraps_between_words_within_the_width() {
        assert_eq!(wrap("paused: no car", 80), ["paused: no car"]);
        assert_eq!(
            wrap("limited by circuit hall-a on L2 (100 A, installer)", 20),
            ["limited by circuit", "hall-a on L2 (100 A,", "installer)"]
        );
        assert_eq!(wrap("a verylongword b", 5), ["a", "verylongword", "b"]);
        assert_eq!(wrap("", 10), [""]);
    }

    /// Each charger's `why.text` under the table, aligned and within 80 columns however long.
    #[test]
    fn each_charger_has_its_why_within_80_columns() {
        let long = "paused: 4.2 A free, below the 6 A minimum; its turn comes at 17:42 after \
                    the two chargers ahead of it on circuit hall-a have had theirs";
        let st = json!({
            "site": {"id": "s", "phases": 3, "grid_limit_a": 63.0},
            "healthy": true,
            "cycle": {"mode": "normal", "seq": 4, "limit": {"limit_a": 63.0, "source": "installer"},
                "chargers": [
                    {"id": "cp-1", "online": true, "reason": "charging",
                     "why": {"code": "charging", "text": "charging"}},
                    {"id": "charger-twelve", "online": true, "reason": "no_capacity",
                     "why": {"code": "no_capacity", "text": long}},
                    {"id": "old", "online": true, "reason": "waiting_turn"},
                ]},
            "sessions": [], "alerts": [],
        });
        let t = table(&st);
        assert!(t.lines().all(|l| l.chars().count() <= WIDTH), "{t}");
        let why: Vec<&str> = t
            .split("\nwhy\n")
            .nth(1)
            .unwrap_or_else(|| panic!("a why block:\n{t}"))
            .lines()
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(why[0], format!("{:<16}charging", "cp-1"));
        assert!(
            why[1].starts_with("charger-twelve  paused: 4.2 A free"),
            "{t}"
        );
        // The long text continues under itself, and reads back whole.
        let mut joined = why[1][16..].to_string();
        let mut i = 2;
        while why[i].starts_with(&" ".repeat(16)) {
            joined = format!("{joined} {}", why[i].trim_start());
            i += 1;
        }
        assert_eq!(joined, long);
        assert_eq!(
            why[i],
            format!("{:<16}waiting turn", "old"),
            "no why: the reason"
        );
    }
}
