//! `/`: the status page, one self-contained HTML file built into the binary, served with the
//! state as it stands filled in (so it shows the site at once, and a headless browser's DOM
//! holds live values) with the hour of grid current for its chart, and, when the site keeps
//! a store, the history view of a local month (`/?month=YYYY-MM`, default the current one:
//! energy per day, peak hours, the month per user and group); it then follows `/api/events`.
//! Nothing is loaded from elsewhere.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiContext, ApiError};
use crate::app::history::{overview, Month, Source};

pub const PAGE: &str = include_str!("page.html");
/// Where the page takes the state it is served with.
const SLOT: &str = "/*INITIAL_STATE*/null";
/// Where it takes the grid history (`/api/grid`'s points).
const GRID_SLOT: &str = "/*INITIAL_GRID*/[]";
/// Where it takes the history view ([`overview::Overview`]); null without a store.
const HISTORY_SLOT: &str = "/*INITIAL_HISTORY*/null";

pub async fn page(
    State(ctx): State<ApiContext>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let month = match query {
        Ok(Query(pairs)) => match month_of(&pairs) {
            Ok(m) => m,
            Err(e) => return e.into_response(),
        },
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let history = match history(&ctx, month).await {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let st = ctx.current();
    let json = serde_json::to_string(&ctx.view(&st)).unwrap_or_else(|_| "null".into());
    let grid = serde_json::to_string(&ctx.observed.grid()).unwrap_or_else(|_| "[]".into());
    let html = PAGE
        .replacen(SLOT, &script_safe(&json), 1)
        .replacen(GRID_SLOT, &script_safe(&grid), 1)
        .replacen(HISTORY_SLOT, &script_safe(&history), 1);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

/// `month=YYYY-MM`, the only parameter the page takes.
fn month_of(pairs: &[(String, String)]) -> Result<Option<Month>, ApiError> {
    let mut month = None;
    for (key, value) in pairs {
        match key.as_str() {
            "month" => {
                month = Some(
                    Month::parse(value)
                        .map_err(|m| ApiError::bad_request(format!("month: {m}")))?,
                )
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?} (expected month)"
                )))
            }
        }
    }
    Ok(month)
}

/// The history view as JSON ("null" without a store).
async fn history(ctx: &ApiContext, month: Option<Month>) -> Result<String, ApiError> {
    let Some(store) = ctx.store.clone() else {
        return Ok("null".into());
    };
    let cfg = ctx.cfg.clone();
    // sled reads block: off the runtime's workers.
    let view = tokio::task::spawn_blocking(move || {
        let source = Source::of_config(&cfg, None);
        let month = month.unwrap_or_else(|| Month::of(chrono::Utc::now(), source.zone));
        overview::overview(&store, &source, month)
    })
    .await
    .map_err(|e| ApiError::internal(format!("history task: {e}")))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    serde_json::to_string(&view).map_err(|e| ApiError::internal(e.to_string()))
}

/// JSON that cannot end the script element it sits in (`</script>` in a charger's alert
/// message, say): every `<` as its JSON escape.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_has_its_slot_and_loads_nothing_from_elsewhere() {
        assert_eq!(super::PAGE.matches(super::SLOT).count(), 1);
        assert_eq!(super::PAGE.matches(super::GRID_SLOT).count(), 1);
        assert_eq!(super::PAGE.matches(super::HISTORY_SLOT).count(), 1);
        assert!(!super::PAGE.contains("http://") && !super::PAGE.contains("https://"));
        assert_eq!(super::script_safe("\"</script>\""), "\"\\u003c/script>\"");
    }

    #[test]
    fn the_page_takes_a_month_and_nothing_else() {
        let p = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        let m = super::month_of(&p("month", "2026-11")).expect("a month");
        assert_eq!(m.map(|m| m.to_string()).as_deref(), Some("2026-11"));
        assert_eq!(super::month_of(&[]).expect("none"), None);
        assert!(super::month_of(&p("month", "november")).is_err());
        assert!(super::month_of(&p("user", "ann")).is_err());
    }
}
