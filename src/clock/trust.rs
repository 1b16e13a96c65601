//! Whether the wall time can be trusted: a controller without a real-time clock boots on the
//! time saved at its last shutdown until NTP sets it. Trusted means one of:
//!
//! - the kernel says the clock is synchronised (`adjtimex` without `STA_UNSYNC`). This crate
//!   has no unsafe code, and no maintained crate reads that flag safely, so it is asked of
//!   systemd (`timedatectl show --property=NTPSynchronized`), which reports exactly that
//!   flag; on a system without systemd this source stays silent;
//! - systemd-timesyncd's flag file (`/run/systemd/timesync/synchronized`) exists;
//! - the installer says so (`[clock] trusted = true`: a real-time clock and no NTP).
//!
//! Once trusted, the time stays trusted until the daemon stops: a synchronised clock does not
//! lose days, and a later step is still seen and corrected for ([`super::StepWatch`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Clock;

/// How often the sources are asked while the time is untrusted.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// How long `timedatectl` may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// `[clock]`: where trust in the wall time comes from (read at start).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSettings {
    /// The installer vouches for the time: a real-time clock and no NTP.
    pub trusted: bool,
    /// A file whose existence says the time is synchronised (systemd-timesyncd's by default).
    pub sync_file: PathBuf,
    /// Ask the kernel (through systemd) whether the clock is synchronised.
    pub kernel: bool,
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            trusted: false,
            sync_file: PathBuf::from("/run/systemd/timesync/synchronized"),
            kernel: true,
        }
    }
}

/// What vouched for the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustSource {
    /// `[clock] trusted = true`.
    Installer,
    /// The kernel's clock is synchronised.
    Kernel,
    /// The sync flag file exists.
    SyncFile,
}

impl TrustSource {
    /// The snake_case name, as `/api/state` shows it.
    pub fn name(self) -> &'static str {
        match self {
            TrustSource::Installer => "installer",
            TrustSource::Kernel => "kernel",
            TrustSource::SyncFile => "sync_file",
        }
    }
}

/// Asks the sources once, cheapest first.
pub async fn check(settings: &TrustSettings) -> Option<TrustSource> {
    if settings.trusted {
        return Some(TrustSource::Installer);
    }
    if file_exists(&settings.sync_file).await {
        return Some(TrustSource::SyncFile);
    }
    if settings.kernel && kernel_synchronised().await {
        return Some(TrustSource::Kernel);
    }
    None
}

async fn file_exists(path: &Path) -> bool {
    tokio::fs::try_exists(path).await.unwrap_or(false)
}

/// `timedatectl` answers `yes` when the kernel's clock is synchronised.
async fn kernel_synchronised() -> bool {
    let ask = tokio::process::Command::new("timedatectl")
        .args(["show", "--property=NTPSynchronized", "--value"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(ASK_TIMEOUT, ask).await {
        Ok(Ok(out)) => out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "yes",
        _ => false,
    }
}

/// Asks the sources until one vouches for the time, then marks `clock` trusted. Returns at
/// once for a clock that is not live (simulated time is always trusted).
pub async fn watch(clock: Clock, settings: TrustSettings) {
    if !clock.is_live() || clock.trusted() {
        return;
    }
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut said = false;
    loop {
        tick.tick().await;
        if let Some(source) = check(&settings).await {
            clock.set_trusted(source);
            tracing::info!(by = ?source, now = %clock.now(), "the wall time is trusted");
            return;
        }
        if !said {
            said = true;
            tracing::warn!(
                now = %clock.now(),
                "the wall time is not synchronised yet: times are provisional until it is"
            );
        }
    }
}
