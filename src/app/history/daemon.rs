//! When the daemon holds the database, the history commands ask it instead: the same filters
//! as query parameters of `/api/sessions` and `/api/report` on the config's `[api] listen`
//! (with its token, as `evsite status` does). The daemon runs the commands' own code over
//! the same store, so the output is what the command would have printed.

use std::time::Duration;

use super::range::Bound;
use super::{Format, HistoryError, HistoryQuery, Source};
use crate::api::client::{self, ClientError};
use crate::store::OpenExistingError;

/// How long the daemon has to answer (a report over a long history takes a while).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The query for `args`: every filter the command has, the zone it resolved, the format.
pub fn query(args: &HistoryQuery, source: &Source) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(c) = &args.charger {
        pairs.push(("charger", c.clone()));
    }
    let bound = |b: &Bound| match b {
        Bound::Instant(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Bound::Date(d) => d.format("%Y-%m-%d").to_string(),
    };
    if let Some(b) = &args.from {
        pairs.push(("from", bound(b)));
    }
    if let Some(b) = &args.to {
        pairs.push(("to", bound(b)));
    }
    if let Some(m) = &args.month {
        pairs.push(("month", m.to_string()));
    }
    if let Some(u) = &args.user {
        pairs.push(("user", u.clone()));
    }
    if let Some(g) = &args.group {
        pairs.push(("group", g.clone()));
    }
    if let Some(by) = args.by {
        pairs.push(("by", by.name().to_owned()));
    }
    if args.statement {
        pairs.push(("statement", "true".to_owned()));
    }
    // The zone as this command resolved it (--tz, else its config's tariff), so a daemon
    // with another tariff zone cannot count other days.
    pairs.push(("tz", source.zone.name().to_owned()));
    let format = match args.format {
        Format::Table => "table",
        Format::Csv => "csv",
        Format::Json => "json",
    };
    pairs.push(("format", format.to_owned()));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET path?query` on the daemon of `source`'s config; `held` is why the store was not read.
pub fn fetch(
    source: &Source,
    held: OpenExistingError,
    path: &str,
    args: &HistoryQuery,
) -> Result<String, HistoryError> {
    let fail = |held, detail: String, unreachable| HistoryError::Daemon {
        held,
        detail,
        unreachable,
    };
    let Some(api) = &source.api else {
        return Err(fail(
            held,
            "no config names it (pass --config with the daemon's config)".into(),
            true,
        ));
    };
    let token = match &api.token_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t.trim().to_owned()),
            Err(e) => {
                return Err(fail(
                    held,
                    format!("api.token_file {}: {e}", p.display()),
                    false,
                ))
            }
        },
        None => None,
    };
    let url = format!("{path}?{}", query(args, source));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HistoryError::Output {
            what: "a runtime for the API request",
            detail: e.to_string(),
        })?;
    let answer = runtime.block_on(client::get(api.listen, &url, token.as_deref(), TIMEOUT));
    match answer {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(fail(
            held,
            format!("{} answered {status}: {}", api.listen, body.trim()),
            false,
        )),
        Err(e @ ClientError::Unreachable { .. }) => Err(fail(held, e.to_string(), true)),
        Err(e) => Err(fail(held, e.to_string(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> HistoryQuery {
        HistoryQuery {
            charger: Some("cp 1".into()),
            from: Some(Bound::parse("2026-11-01").expect("date")),
            to: Some(Bound::parse("2026-11-21T18:00:00+01:00").expect("instant")),
            tz: None,
            format: Format::Csv,
            ..HistoryQuery::default()
        }
    }

    #[test]
    fn the_query_carries_every_filter_and_reads_back_as_the_same_bounds() {
        let source = Source {
            db: "/nowhere".into(),
            zone: chrono_tz::Europe::Berlin,
            chargers: Vec::new(),
            api: None,
            demand_limit_kw: None,
        };
        let q = query(&args(), &source);
        assert_eq!(
            q,
            "charger=cp%201&from=2026-11-01&to=2026-11-21T17%3A00%3A00Z&tz=Europe%2FBerlin&format=csv"
        );
        let people = HistoryQuery {
            user: Some("Zoë K".into()),
            group: Some("staff".into()),
            month: Some(super::super::Month::parse("2026-11").expect("month")),
            statement: true,
            from: None,
            to: None,
            ..args()
        };
        assert_eq!(
            query(&people, &source),
            "charger=cp%201&month=2026-11&user=Zo%C3%AB%20K&group=staff&statement=true&tz=Europe%2FBerlin&format=csv"
        );
        // The instant is the same one the command parsed.
        let to = Bound::parse("2026-11-21T17:00:00Z").expect("instant");
        assert_eq!(Some(to), args().to);
    }
}
