//! `/api/events`: Server-Sent Events, one `state` event (the body of `/api/state`) per
//! control cycle, or with `?every_ms=N` the latest state every N ms. Each client has its own
//! receiver of the watch channel: a slow client skips states, it never holds up the loop or
//! another client.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};

use super::{ApiContext, ApiError};

/// Bounds of `every_ms`.
pub const EVERY_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// When a stream sends its next state.
enum Pace {
    EveryCycle,
    Every(tokio::time::Interval),
}

pub async fn events(
    State(ctx): State<ApiContext>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match pace(query) {
        Ok(pace) => Sse::new(stream_states(ctx, pace))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn pace(
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Pace, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut pace = Pace::EveryCycle;
    for (key, value) in pairs {
        match key.as_str() {
            "every_ms" => {
                let ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| EVERY_MS.contains(ms))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "every_ms must be a whole number of milliseconds from {} to {}, got {value:?}",
                            EVERY_MS.start(),
                            EVERY_MS.end()
                        ))
                    })?;
                let mut every = tokio::time::interval(Duration::from_millis(ms));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                pace = Pace::Every(every);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?} (expected every_ms)"
                )))
            }
        }
    }
    Ok(pace)
}

fn stream_states(ctx: ApiContext, pace: Pace) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = ctx.state.clone();
    // The first event is the state as it stands; after that, per the pace.
    stream::unfold(
        (ctx, rx, pace, true),
        |(ctx, mut rx, mut pace, first)| async move {
            if !first {
                match &mut pace {
                    Pace::EveryCycle => rx.changed().await.ok()?,
                    Pace::Every(every) => {
                        every.tick().await;
                    }
                }
            } else if let Pace::Every(every) = &mut pace {
                // An interval's first tick is at once: that is this first event.
                every.tick().await;
            }
            let st = rx.borrow_and_update().clone();
            let event = match serde_json::to_string(&ctx.view(&st)) {
                Ok(json) => Event::default().event("state").data(json),
                Err(e) => Event::default().event("error").data(e.to_string()),
            };
            Some((Ok(event), (ctx, rx, pace, false)))
        },
    )
}
