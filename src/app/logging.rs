//! Logging set-up: a tracing subscriber, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Human-readable log lines on stderr, so stdout stays for a command's own output.
pub fn init_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
