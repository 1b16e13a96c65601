//! `/`: the status page, one self-contained HTML file built into the binary. It follows
//! `/api/events` and draws the chart from `/api/grid`; nothing is loaded from elsewhere.

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const PAGE: &str = include_str!("page.html");

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}
