//! `/`: the status page, one self-contained HTML file built into the binary, served with the
//! state as it stands filled in (so it shows the site at once, and a headless browser's DOM
//! holds live values) with the hour of grid current for its chart; it then follows
//! `/api/events`.
//! Nothing is loaded from elsewhere.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiContext;

pub const PAGE: &str = include_str!("page.html");
/// Where the page takes the state it is served with.
const SLOT: &str = "/*INITIAL_STATE*/null";
/// Where it takes the grid history (`/api/grid`'s points).
const GRID_SLOT: &str = "/*INITIAL_GRID*/[]";

pub async fn page(State(ctx): State<ApiContext>) -> Response {
    let st = ctx.current();
    let json = serde_json::to_string(&ctx.view(&st)).unwrap_or_else(|_| "null".into());
    let grid = serde_json::to_string(&ctx.observed.grid()).unwrap_or_else(|_| "[]".into());
    let html =
        PAGE.replacen(SLOT, &script_safe(&json), 1)
            .replacen(GRID_SLOT, &script_safe(&grid), 1);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
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
        assert!(!super::PAGE.contains("http://") && !super::PAGE.contains("https://"));
        assert_eq!(super::script_safe("\"</script>\""), "\"\\u003c/script>\"");
    }
}
