//! `evsite sessions` and `evsite report`: session history and a usage report, read straight
//! from the store when no daemon holds it, and from the daemon's local API when one does.
//!
//! Layout: `source` (which database and time zone, opened without side effects), `daemon`
//! (the same request to the daemon's `/api/sessions` and `/api/report`), `range`
//! (the `--from`/`--to` bounds), `list` (the session list in three formats), `report` (the
//! figures, pure), `demand` (the report's demand section, pure), `render` (the report as a
//! table or CSV), `people` (sums per user, group or charger and a month's statement, pure),
//! `people_render` (those in three formats), `overview` (the status page's history view).

pub mod daemon;
pub mod demand;
pub mod list;
pub mod overview;
pub mod people;
pub mod people_render;
pub mod range;
pub mod render;
pub mod report;
pub mod source;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::config::ConfigErrors;
use crate::store::{OpenExistingError, SessionFilter, Store, StoreError};

pub use people::By;
pub use range::{Bound, Month};
pub use report::Report;
pub use source::Source;

/// sysexits.h EX_TEMPFAIL: the database is busy (the daemon holds it); try again later.
pub const EX_TEMPFAIL: u8 = 75;
/// sysexits.h EX_NOINPUT: there is no database to read.
pub const EX_NOINPUT: u8 = 66;
/// sysexits.h EX_CONFIG.
pub const EX_CONFIG: u8 = 78;
/// sysexits.h EX_USAGE: a malformed argument.
pub const EX_USAGE: u8 = 64;
/// sysexits.h EX_DATAERR: the database holds something unreadable.
pub const EX_DATAERR: u8 = 65;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    Open(#[from] OpenExistingError),
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("{0}")]
    Usage(String),
    #[error("reading the database: {0}")]
    Store(#[from] StoreError),
    #[error("writing {what}: {detail}")]
    Output { what: &'static str, detail: String },
    /// The daemon holds the database and its API could not give the answer either.
    #[error("{held}; and through its local API: {detail}")]
    Daemon {
        held: OpenExistingError,
        detail: String,
        /// The daemon did not answer at all (rather than answering with an error).
        unreachable: bool,
    },
}

impl HistoryError {
    /// The process exit code (sysexits.h) for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            HistoryError::Open(OpenExistingError::InUse { .. }) => EX_TEMPFAIL,
            HistoryError::Open(OpenExistingError::Missing(_)) => EX_NOINPUT,
            HistoryError::Open(OpenExistingError::Store { .. }) | HistoryError::Store(_) => {
                EX_DATAERR
            }
            HistoryError::Config(_) => EX_CONFIG,
            HistoryError::Usage(_) => EX_USAGE,
            HistoryError::Output { .. } => 1,
            HistoryError::Daemon {
                unreachable: true, ..
            } => EX_TEMPFAIL,
            HistoryError::Daemon { .. } => 1,
        }
    }
}

/// Output formats of both commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// RFC 4180, with a header row.
    Csv,
    /// JSON (the contract's field names for sessions).
    Json,
}

/// The arguments `evsite sessions` and `evsite report` share.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Config file, for `[storage] path` and the tariff's time zone [default:
    /// /etc/evsite/evsite.toml unless --db is given].
    #[arg(long, short, env = "EVSITE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The database directory, instead of the config's `[storage] path`.
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// Only this charger's sessions.
    #[arg(long, value_name = "ID")]
    pub charger: Option<String>,
    /// Sessions plugged in at or after this: RFC 3339, or YYYY-MM-DD (the start of that local
    /// day).
    #[arg(long, value_name = "TIME", value_parser = Bound::parse)]
    pub from: Option<Bound>,
    /// Sessions plugged in before this: RFC 3339, or YYYY-MM-DD (inclusive: up to the end of
    /// that local day).
    #[arg(long, value_name = "TIME", value_parser = Bound::parse)]
    pub to: Option<Bound>,
    /// Sessions plugged in during this local month (YYYY-MM), instead of --from/--to.
    #[arg(long, value_name = "YYYY-MM", value_parser = Month::parse, conflicts_with_all = ["from", "to"])]
    pub month: Option<Month>,
    /// Only this user's sessions; `(unknown)`: those with no user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only this group's (cost centre's, tariff group's) sessions; `(unknown)`: those with
    /// no group.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Time zone for dates and days (IANA name) [default: the tariff's, else UTC].
    #[arg(long, value_name = "ZONE", value_parser = source::parse_zone)]
    pub tz: Option<chrono_tz::Tz>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl HistoryArgs {
    /// What the command asks for, as the history code takes it from either door.
    pub fn query(&self) -> HistoryQuery {
        HistoryQuery {
            charger: self.charger.clone(),
            from: self.from,
            to: self.to,
            month: self.month,
            user: self.user.clone(),
            group: self.group.clone(),
            tz: self.tz,
            format: self.format,
            by: None,
            statement: false,
        }
    }
}

/// `evsite report`'s arguments: the history filters, and how to sum.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Energy, cost and sessions per user, group or charger (sessions with no user or
    /// group count under "(unknown)") instead of the usage report.
    #[arg(long, value_enum, value_name = "KEY", conflicts_with = "statement")]
    pub by: Option<By>,
    /// A month's statement for --user (or --group): each session, the cost lines summed by
    /// kind, the total. The month is --month [default: the current local month].
    #[arg(long)]
    pub statement: bool,
}

impl ReportArgs {
    pub fn query(&self) -> HistoryQuery {
        HistoryQuery {
            by: self.by,
            statement: self.statement,
            ..self.history.query()
        }
    }
}

/// Which sessions, in which zone and format: what `evsite sessions`/`evsite report`
/// ([`HistoryArgs::query`]) and the local API's `/api/sessions` and `/api/report` (from their
/// query parameters) both ask of the history code. Not a command line: where the store is
/// and which config to read are the command's own business.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only this charger's sessions.
    pub charger: Option<String>,
    /// Sessions plugged in at or after this.
    pub from: Option<Bound>,
    /// Sessions plugged in before this (a date: up to the end of that local day).
    pub to: Option<Bound>,
    /// Sessions plugged in during this local month (instead of `from` and `to`).
    pub month: Option<Month>,
    /// Only this user's sessions (`(unknown)`: those with none).
    pub user: Option<String>,
    /// Only this group's sessions (`(unknown)`: those with none).
    pub group: Option<String>,
    /// Time zone for dates and days, over the site's.
    pub tz: Option<chrono_tz::Tz>,
    pub format: Format,
    /// The report summed per user, group or charger.
    pub by: Option<By>,
    /// The report as the month's statement of `user` (or `group`).
    pub statement: bool,
}

/// `evsite sessions`: the matching sessions in the chosen format.
pub fn sessions(args: &HistoryArgs) -> Result<String, HistoryError> {
    let source = Source::resolve(args)?;
    let query = args.query();
    match source.open() {
        Ok(store) => sessions_in(&store, &source, &query),
        Err(HistoryError::Open(held @ OpenExistingError::InUse { .. })) => {
            daemon::fetch(&source, held, "/api/sessions", &query)
        }
        Err(e) => Err(e),
    }
}

/// The session list from an open store (the command's, or the daemon's for the local API).
pub fn sessions_in(
    store: &Store,
    source: &Source,
    args: &HistoryQuery,
) -> Result<String, HistoryError> {
    let filter = filter(args, source)?;
    let records = matching(store, &filter, args)?;
    list::render(&records, source.zone, args.format)
}

/// The stored sessions the filter and the query's user and group admit.
pub fn matching(
    store: &Store,
    filter: &SessionFilter,
    args: &HistoryQuery,
) -> Result<Vec<crate::sessions::machine::SessionRecord>, HistoryError> {
    let mut records = store.sessions(filter)?;
    records.retain(|r| {
        args.user
            .as_deref()
            .is_none_or(|u| people::matches(r.identity.user.as_deref(), u))
            && args
                .group
                .as_deref()
                .is_none_or(|g| people::matches(r.identity.group.as_deref(), g))
    });
    Ok(records)
}

/// `evsite report`: the usage report over the matching sessions, as of `now`.
pub fn report(args: &ReportArgs, now: DateTime<Utc>) -> Result<String, HistoryError> {
    let source = Source::resolve(&args.history)?;
    let query = args.query();
    match source.open() {
        Ok(store) => report_in(&store, &source, &query, now),
        // The daemon's report is as of its own clock, which is this machine's.
        Err(HistoryError::Open(held @ OpenExistingError::InUse { .. })) => {
            daemon::fetch(&source, held, "/api/report", &query)
        }
        Err(e) => Err(e),
    }
}

/// The usage report from an open store.
pub fn report_in(
    store: &Store,
    source: &Source,
    args: &HistoryQuery,
    now: DateTime<Utc>,
) -> Result<String, HistoryError> {
    if args.statement {
        return statement_in(store, source, args, now);
    }
    let filter = filter(args, source)?;
    let records = matching(store, &filter, args)?;
    if let Some(by) = args.by {
        let mut chargers = source.chargers.clone();
        if let Some(only) = &args.charger {
            chargers.retain(|c| c == only);
        }
        // Idle chargers belong in a report of everyone's sessions only.
        if args.user.is_some() || args.group.is_some() {
            chargers.clear();
        }
        let span = people::span(&records, filter.from, filter.to, now, source.zone);
        let grouped = people::group(&records, by, source.zone, span, &chargers);
        return people_render::grouped(&grouped, args.format);
    }
    let mut sessions = Vec::with_capacity(records.len());
    for record in records {
        let samples = store.samples(&record.session_id)?;
        sessions.push(report::SessionData { record, samples });
    }
    let mut chargers = source.chargers.clone();
    if let Some(only) = &args.charger {
        chargers.retain(|c| c == only);
    }
    let input = report::Input {
        zone: source.zone,
        from: filter.from,
        to: filter.to,
        now,
        chargers,
        alerts: store.alerts()?,
        links: store.link_hours(filter.from, filter.to)?,
        demand_windows: store.demand_windows(
            filter.from.map_or(DateTime::UNIX_EPOCH, |t| {
                demand::month_start(t, source.zone)
            }),
            demand::next_month_start(filter.to.unwrap_or(now), source.zone),
        )?,
        demand_limit_kw: source.demand_limit_kw,
    };
    let report = report::build(&input, &sessions);
    render::render(&report, args.format)
}

/// A month's statement for the query's user or group (the month: the query's, else the
/// one `now` is in).
fn statement_in(
    store: &Store,
    source: &Source,
    args: &HistoryQuery,
    now: DateTime<Utc>,
) -> Result<String, HistoryError> {
    if args.user.is_none() && args.group.is_none() {
        return Err(HistoryError::Usage(
            "a statement is a user's or a group's: give --user or --group".into(),
        ));
    }
    if args.from.is_some() || args.to.is_some() {
        return Err(HistoryError::Usage(
            "a statement covers a month: give --month, not --from/--to".into(),
        ));
    }
    let month = args.month.unwrap_or_else(|| Month::of(now, source.zone));
    let filter = filter(
        &HistoryQuery {
            month: Some(month),
            ..args.clone()
        },
        source,
    )?;
    let records = matching(store, &filter, args)?;
    let span = month.bounds(source.zone)?;
    let holder = people::Holder {
        user: args.user.clone(),
        group: args.group.clone(),
    };
    let s = people::statement(&records, holder, month, source.zone, span);
    people_render::statement(&s, args.format)
}

fn filter(args: &HistoryQuery, source: &Source) -> Result<SessionFilter, HistoryError> {
    if let Some(month) = args.month {
        if args.from.is_some() || args.to.is_some() {
            return Err(HistoryError::Usage(
                "give either a month or --from/--to, not both".into(),
            ));
        }
        let (from, to) = month.bounds(source.zone)?;
        return Ok(SessionFilter {
            charger: args.charger.clone(),
            from: Some(from),
            to: Some(to),
        });
    }
    let from = args
        .from
        .as_ref()
        .map(|b| b.start(source.zone))
        .transpose()?;
    let to = args.to.as_ref().map(|b| b.end(source.zone)).transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(HistoryError::Usage(format!(
                "--from ({}) must be before --to ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
    }
    Ok(SessionFilter {
        charger: args.charger.clone(),
        from,
        to,
    })
}
