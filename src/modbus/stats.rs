//! Per-device request counters, and the "log once per episode" bookkeeping.
//!
//! A device that stops answering is polled every control cycle; logging every failure would
//! drown the journal. So the first failure of each kind in an episode is logged, the rest are
//! only counted, and the end of the episode is logged with how many requests failed in it.
//!
//! A Modbus exception is counted but does not start or end an episode: the device did answer,
//! so the link is healthy, and whether an exception matters (an optional register probed, a
//! setpoint refused) is for the driver above to judge. An exception therefore is logged at
//! debug level only; it does end a timeout/link episode, since the device is answering again.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use super::error::{ErrorKind, ModbusError};

/// Counters of one device; shared by every clone of its `DeviceLink`.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    ok: AtomicU64,
    exceptions: AtomicU64,
    timeouts: AtomicU64,
    bad_frames: AtomicU64,
    link_errors: AtomicU64,
    reconnects: AtomicU64,
    /// Failed requests in the current episode (0: the device is healthy).
    episode_failures: AtomicU64,
    /// Kinds already logged in the current episode, one bit per `ErrorKind`.
    episode_logged: AtomicU8,
}

/// A copy of a device's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub ok: u64,
    pub exceptions: u64,
    pub timeouts: u64,
    pub bad_frames: u64,
    pub link_errors: u64,
    pub reconnects: u64,
}

fn kind_bit(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Exception => 1,
        ErrorKind::Timeout => 2,
        ErrorKind::BadFrame => 4,
        ErrorKind::Link => 8,
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Exception => "exception",
        ErrorKind::Timeout => "timeout",
        ErrorKind::BadFrame => "bad_frame",
        ErrorKind::Link => "link",
    }
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: get(&self.requests),
            ok: get(&self.ok),
            exceptions: get(&self.exceptions),
            timeouts: get(&self.timeouts),
            bad_frames: get(&self.bad_frames),
            link_errors: get(&self.link_errors),
            reconnects: get(&self.reconnects),
        }
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one finished request and log it if it opens or closes an episode.
    pub(crate) fn record<T>(&self, device: &str, result: &Result<T, ModbusError>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let err = match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.end_episode(device);
                return;
            }
            Err(err) => err,
        };
        let counter = match err.kind() {
            ErrorKind::Exception => &self.exceptions,
            ErrorKind::Timeout => &self.timeouts,
            ErrorKind::BadFrame => &self.bad_frames,
            ErrorKind::Link => &self.link_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);

        if err.kind() == ErrorKind::Exception {
            tracing::debug!(device, kind = "exception", error = %err, "modbus request refused");
            self.end_episode(device);
            return;
        }
        self.episode_failures.fetch_add(1, Ordering::Relaxed);
        let bit = kind_bit(err.kind());
        if self.episode_logged.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            tracing::warn!(device, kind = kind_name(err.kind()), error = %err, "modbus request failed");
        }
    }

    fn end_episode(&self, device: &str) {
        let failures = self.episode_failures.swap(0, Ordering::Relaxed);
        self.episode_logged.store(0, Ordering::Relaxed);
        if failures > 0 {
            tracing::info!(
                device,
                failures,
                "modbus device recovered after {failures} failures"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_each_kind() {
        let s = Stats::default();
        s.record::<()>("d", &Ok(()));
        s.record::<()>("d", &Err(ModbusError::Exception { code: 2 }));
        s.record::<()>("d", &Err(ModbusError::Timeout(Duration::from_millis(1))));
        s.record::<()>("d", &Err(ModbusError::BadFrame("crc".into())));
        s.record::<()>("d", &Err(ModbusError::Link("reset".into())));
        s.reconnected();
        assert_eq!(
            s.snapshot(),
            StatsSnapshot {
                requests: 5,
                ok: 1,
                exceptions: 1,
                timeouts: 1,
                bad_frames: 1,
                link_errors: 1,
                reconnects: 1,
            }
        );
    }

    #[test]
    fn an_episode_logs_each_kind_once_and_ends_on_an_answer() {
        let s = Stats::default();
        let timeout = Err::<(), _>(ModbusError::Timeout(Duration::from_millis(1)));
        s.record("d", &timeout);
        s.record("d", &timeout);
        s.record("d", &Err::<(), _>(ModbusError::Link("reset".into())));
        assert_eq!(s.episode_failures.load(Ordering::Relaxed), 3);
        assert_eq!(s.episode_logged.load(Ordering::Relaxed), 2 | 8);

        s.record("d", &Err::<(), _>(ModbusError::Exception { code: 2 }));
        assert_eq!(s.episode_failures.load(Ordering::Relaxed), 0);
        assert_eq!(s.episode_logged.load(Ordering::Relaxed), 0);
    }
}
