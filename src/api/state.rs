//! `/api/state` (the live site), `/api/grid` (an hour of grid current) and `/healthz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::time::Instant;

use super::ApiContext;
use crate::alerts::Alert;
use crate::control::record::CycleRecord;
use crate::sessions::machine::SessionRecord;
use crate::site::SiteState;

/// The site as configured: what the live figures are read against.
#[derive(Debug, Serialize)]
pub struct SiteInfo<'a> {
    pub id: &'a str,
    pub phases: u8,
    /// The installer's hard limit per phase (the limit in force is in `cycle.limit`).
    pub grid_limit_a: f64,
    pub interval_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct MqttView {
    pub connected: bool,
    pub connections: u64,
    pub failed_attempts: u64,
}

/// The body of `/api/state` and of every `/api/events` event (schemas/state.json).
#[derive(Debug, Serialize)]
pub struct StateView<'a> {
    pub site: SiteInfo<'a>,
    /// A cycle came within three control intervals.
    pub healthy: bool,
    /// The cloud link (None without `[mqtt]`).
    pub mqtt: Option<MqttView>,
    pub cycle: Option<&'a CycleRecord>,
    pub sessions: &'a [SessionRecord],
    pub alerts: &'a [Alert],
}

impl ApiContext {
    /// The state as it stands, taken out of the watch channel at once.
    pub fn current(&self) -> Arc<SiteState> {
        self.state.borrow().clone()
    }

    pub fn healthy(&self) -> bool {
        self.observed
            .since_last_cycle(Instant::now())
            .is_some_and(|d| d <= self.stale_after())
    }

    pub fn view<'a>(&'a self, st: &'a SiteState) -> StateView<'a> {
        let mqtt = self.link.as_ref().map(|l| {
            let s = l.borrow();
            MqttView {
                connected: s.connected,
                connections: s.connections,
                failed_attempts: s.failed_attempts,
            }
        });
        StateView {
            site: SiteInfo {
                id: &self.cfg.site.id,
                phases: self.cfg.site.phases,
                grid_limit_a: self.cfg.site.grid_limit_a,
                interval_ms: self.cfg.control.interval.as_millis() as u64,
            },
            healthy: self.healthy(),
            mqtt,
            cycle: st.cycle.as_deref(),
            sessions: &st.sessions,
            alerts: &st.alerts,
        }
    }
}

pub async fn state(State(ctx): State<ApiContext>) -> Response {
    let st = ctx.current();
    Json(ctx.view(&st)).into_response()
}

pub async fn grid(State(ctx): State<ApiContext>) -> Response {
    Json(serde_json::json!({ "points": ctx.observed.grid() })).into_response()
}

pub async fn healthz(State(ctx): State<ApiContext>) -> Response {
    let since = ctx.observed.since_last_cycle(Instant::now());
    let ok = since.is_some_and(|d| d <= ctx.stale_after());
    let body = serde_json::json!({
        "ok": ok,
        "last_cycle_ago_ms": since.map(|d| d.as_millis() as u64),
        "stale_after_ms": ctx.stale_after().as_millis() as u64,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
