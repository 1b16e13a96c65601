//! Logging set-up. The command line logs to stderr (so stdout stays for a command's own
//! output). The daemon logs natively to the systemd journal when systemd connected its output
//! to the journal (`JOURNAL_STREAM`) — with its structured fields (`CHARGER=`, `SESSION=`,
//! `DEVICE=`, `BUS=`) as journal fields — and plain lines on stdout otherwise: someone who
//! starts `evsite run` by hand sees its log where they started it, even on a systemd machine. Its level comes from `RUST_LOG`, else from the config's `[log] level`,
//! and follows a config reload unless `RUST_LOG` pinned it.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where journald listens for native messages.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Log lines on stderr at `default_level` ("info", "warn", …) unless `RUST_LOG` says otherwise.
pub fn init_stderr(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log level {level:?}: {reason}")]
    Level { level: String, reason: String },
    #[error("the logger is gone: {0}")]
    Gone(String),
}

/// Where the daemon's log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journal,
    Stdout,
}

/// The daemon's logger, kept to change its level on a reload.
pub struct DaemonLog {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    /// Set when `RUST_LOG` chose the level: the config's level is then ignored.
    pinned: bool,
    sink: Sink,
}

impl DaemonLog {
    /// A logger handle that changes nothing: for a daemon embedded where someone else owns
    /// the global logger (tests).
    pub fn detached() -> Self {
        DaemonLog {
            handle: None,
            pinned: false,
            sink: Sink::Stdout,
        }
    }

    /// Apply the config's `[log] level` (a tracing filter) unless `RUST_LOG` is set.
    /// Returns whether the level in force changed.
    pub fn set_level(&self, level: &str) -> Result<bool, LogError> {
        if self.pinned {
            return Ok(false);
        }
        let filter = parse_level(level)?;
        match &self.handle {
            Some(h) => h
                .reload(filter)
                .map(|()| true)
                .map_err(|e| LogError::Gone(e.to_string())),
            None => Ok(false),
        }
    }

    pub fn sink(&self) -> Sink {
        self.sink
    }

    /// True when `RUST_LOG` chose the level.
    pub fn pinned(&self) -> bool {
        self.pinned
    }
}

/// A log filter such as `"info"` or `"evsite=debug"`: the one parse of `log.level`, run at
/// validation and again when the daemon sets up its logging, so the two cannot disagree.
pub fn parse_level(level: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::builder()
        .parse(level)
        .map_err(|e| LogError::Level {
            level: level.to_owned(),
            reason: e.to_string(),
        })
}

/// The sink for a process whose environment says `journal_stream` (`JOURNAL_STREAM`, set by
/// systemd when stdout goes to the journal): the journal when also its `socket` exists.
pub fn choose_sink(journal_stream: bool, socket: &Path) -> Sink {
    if journal_stream && socket.exists() {
        Sink::Journal
    } else {
        Sink::Stdout
    }
}

/// Set up the daemon's logging at the config's `level` (or `RUST_LOG`). An invalid level
/// falls back to "info" with a warning rather than running blind. When a global logger is
/// already installed (tests driving `run` in-process), that one stays and levels are fixed.
pub fn init_daemon(level: &str) -> DaemonLog {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let pinned = from_env.is_some();
    let mut bad_level = None;
    let filter = match from_env.as_deref() {
        Some(env) => parse_level(env),
        None => parse_level(level),
    }
    .unwrap_or_else(|e| {
        bad_level = Some(e);
        EnvFilter::new("info")
    });
    let (filter, handle) = reload::Layer::new(filter);
    let sink = choose_sink(
        std::env::var_os("JOURNAL_STREAM").is_some(),
        Path::new(JOURNAL_SOCKET),
    );
    // A journal that cannot be opened is no reason not to run: log to stdout instead.
    let journal = match sink {
        Sink::Journal => tracing_journald::layer().ok().map(|l| {
            l.with_syslog_identifier("evsite".into())
                .with_field_prefix(None)
        }),
        Sink::Stdout => None,
    };
    let sink = if journal.is_some() {
        Sink::Journal
    } else {
        Sink::Stdout
    };
    let output = match journal {
        Some(j) => j.boxed(),
        None => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            // Colour codes only for a person at a terminal, not in files and pipes.
            .with_ansi(std::io::stdout().is_terminal())
            .boxed(),
    };
    // `try_init` also routes the `log` records of libraries into tracing (LogTracer).
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok();
    if let Some(e) = bad_level {
        tracing::warn!(error = %e, "logging at info instead");
    }
    DaemonLog {
        handle: installed.then_some(handle),
        pinned,
        sink,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_used_when_systemd_connected_us_to_it_and_it_is_there() {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("socket");
        assert_eq!(choose_sink(true, &socket), Sink::Stdout, "no journal here");
        std::fs::write(&socket, b"").expect("socket stand-in");
        assert_eq!(choose_sink(false, &socket), Sink::Stdout, "started by hand");
        assert_eq!(choose_sink(true, &socket), Sink::Journal);
    }

    #[test]
    fn levels_are_tracing_filters_and_nonsense_is_refused() {
        assert!(parse_level("info,evsite::modbus=debug").is_ok());
        let e = parse_level("info,evsite=loud").expect_err("not a level");
        assert!(e.to_string().contains("evsite=loud"), "{e}");
    }

    #[test]
    fn a_pinned_level_ignores_the_config() {
        let log = DaemonLog {
            handle: None,
            pinned: true,
            sink: Sink::Stdout,
        };
        assert!(!log.set_level("not a = level").expect("ignored"));
    }
}
