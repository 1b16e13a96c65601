//! `/api/sessions` and `/api/report`: the history commands' own code (`app::history`) over
//! the store the daemon holds, with the commands' filters as query parameters — `charger`,
//! `from`, `to`, `month`, `user`, `group`, `tz`, and on `/api/report` `by` and `statement` —
//! and `format` `json` (default), `csv` or `table`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiContext, ApiError};
use crate::app::history::{self, Bound, Format, HistoryError, HistoryQuery, Source};

type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub async fn sessions(State(ctx): State<ApiContext>, query: RawQuery) -> Response {
    answer(ctx, query, false, |store, source, args| {
        history::sessions_in(store, source, args)
    })
    .await
}

pub async fn report(State(ctx): State<ApiContext>, query: RawQuery) -> Response {
    answer(ctx, query, true, |store, source, args| {
        history::report_in(store, source, args, chrono::Utc::now())
    })
    .await
}

async fn answer(
    ctx: ApiContext,
    query: RawQuery,
    report: bool,
    run: impl FnOnce(&crate::store::Store, &Source, &HistoryQuery) -> Result<String, HistoryError>
        + Send
        + 'static,
) -> Response {
    let args = match query
        .map_err(|e| ApiError::bad_request(e.body_text()))
        .and_then(|Query(pairs)| args(&pairs, report))
    {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Some(store) = ctx.store.clone() else {
        return ApiError::unavailable("this site keeps no history (no store)").into_response();
    };
    let format = args.format;
    let cfg = ctx.cfg.clone();
    // sled reads block: off the runtime's workers.
    let result = tokio::task::spawn_blocking(move || {
        let source = Source::of_config(&cfg, args.tz);
        run(&store, &source, &args)
    })
    .await;
    match result {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, content_type(format))], body).into_response(),
        Ok(Err(e)) => from_history(e).into_response(),
        Err(e) => ApiError::internal(format!("history task: {e}")).into_response(),
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Table => "text/plain; charset=utf-8",
    }
}

fn from_history(e: HistoryError) -> ApiError {
    match e {
        HistoryError::Usage(m) => ApiError::bad_request(m),
        other => ApiError::internal(other.to_string()),
    }
}

/// The query parameters as a history query; anything the commands would not take is a 400
/// (`by` and `statement` are the report's alone).
fn args(pairs: &[(String, String)], report: bool) -> Result<HistoryQuery, ApiError> {
    let mut args = HistoryQuery {
        format: Format::Json,
        ..HistoryQuery::default()
    };
    for (key, value) in pairs {
        let bad = |m: String| ApiError::bad_request(format!("{key}: {m}"));
        match key.as_str() {
            "charger" => args.charger = Some(value.clone()),
            "from" => args.from = Some(Bound::parse(value).map_err(bad)?),
            "to" => args.to = Some(Bound::parse(value).map_err(bad)?),
            "month" => args.month = Some(history::Month::parse(value).map_err(bad)?),
            "user" => args.user = Some(value.clone()),
            "group" => args.group = Some(value.clone()),
            "by" if report => {
                args.by = Some(match value.as_str() {
                    "user" => history::By::User,
                    "group" => history::By::Group,
                    "charger" => history::By::Charger,
                    _ => {
                        return Err(bad(format!(
                            "unknown key {value:?} (expected user, group or charger)"
                        )))
                    }
                })
            }
            "statement" if report => {
                args.statement = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("{value:?} is neither true nor false"))),
                }
            }
            "tz" => args.tz = Some(history::source::parse_zone(value).map_err(bad)?),
            "format" => {
                args.format = match value.as_str() {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    "table" => Format::Table,
                    _ => {
                        return Err(bad(format!(
                            "unknown format {value:?} (expected json, csv or table)"
                        )))
                    }
                }
            }
            other => {
                let expected = if report {
                    "charger, from, to, month, user, group, by, statement, tz or format"
                } else {
                    "charger, from, to, month, user, group, tz or format"
                };
                return Err(ApiError::bad_request(format!(
                    "unknown filter {other:?} (expected {expected})"
                )));
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_parse_as_the_commands_do() {
        let a = args(
            &pairs(&[
                ("charger", "cp-1"),
                ("from", "2026-11-01"),
                ("format", "csv"),
            ]),
            false,
        )
        .expect("valid");
        assert_eq!(a.charger.as_deref(), Some("cp-1"));
        assert!(a.from.is_some());
        assert_eq!(a.format, Format::Csv);
    }

    #[test]
    fn unknown_filters_and_bad_times_are_refused() {
        let e = args(&pairs(&[("site", "x")]), true).expect_err("unknown");
        assert!(
            e.message.contains("unknown filter \"site\""),
            "{}",
            e.message
        );
        let e = args(&pairs(&[("from", "yesterday")]), true).expect_err("bad time");
        assert!(e.message.starts_with("from: "), "{}", e.message);
        assert!(args(&pairs(&[("format", "xml")]), true).is_err());
        assert!(args(&pairs(&[("month", "2026-13")]), true).is_err());
        assert!(args(&pairs(&[("by", "vehicle")]), true).is_err());
        // The report's own keys are no filter of the session list.
        let e = args(&pairs(&[("by", "user")]), false).expect_err("not a sessions key");
        assert!(e.message.contains("unknown filter \"by\""), "{}", e.message);
    }

    #[test]
    fn people_keys_parse_as_the_commands_do() {
        let a = args(
            &pairs(&[
                ("user", "ann"),
                ("group", "(unknown)"),
                ("month", "2026-11"),
                ("by", "group"),
                ("statement", "true"),
            ]),
            true,
        )
        .expect("valid");
        assert_eq!(a.user.as_deref(), Some("ann"));
        assert_eq!(a.group.as_deref(), Some("(unknown)"));
        assert_eq!(a.month.map(|m| m.to_string()).as_deref(), Some("2026-11"));
        assert_eq!(a.by, Some(history::By::Group));
        assert!(a.statement);
    }
}
