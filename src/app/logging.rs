//! Logging set-up: a tracing subscriber on stderr (so stdout stays for a command's own
//! output), filtered by `RUST_LOG`, else by the command's default level.

use tracing_subscriber::EnvFilter;

/// Log lines on stderr at `default_level` ("info", "warn", …) unless `RUST_LOG` says otherwise.
pub fn init_stderr(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
