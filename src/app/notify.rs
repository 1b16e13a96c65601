//! Talking to systemd (`Type=notify`): READY=1 once the controller runs, RELOADING=1/READY=1
//! around a reload, STOPPING=1 on the way out, STATUS= lines for `systemctl status`, and the
//! watchdog. All of it does nothing when systemd did not start us (no `NOTIFY_SOCKET`).
//!
//! The watchdog is fed from the control loop's own output: a ping goes out only while cycles
//! keep completing, so a hung loop stops the pings and systemd restarts the service (and until
//! it does, the chargers' own fallbacks hold the site safe).

use std::sync::Arc;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::time::{Duration, Instant, MissedTickBehavior};

use crate::site::SiteState;

/// A handle to systemd's notification socket.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Enabled when systemd passed a notification socket.
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
        }
    }

    /// One that never sends (tests, foreground runs).
    pub fn disabled() -> Self {
        Notifier { enabled: false }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        // A lost notification is systemd's to notice (start timeout, watchdog); it must
        // never stop the controller.
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::debug!(error = %e, "systemd notification not sent");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        // MONOTONIC_USEC is what `Type=notify-reload` expects; plain `notify` ignores it.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading"),
            ]),
            Err(_) => self.send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
        }
    }

    pub fn stopping(&self) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: chargers to safe current"),
        ]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// How often to ping, if systemd watches us: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// sd_watchdog_enabled(3): the watchdog is ours when `WATCHDOG_USEC` is a positive number and
/// `WATCHDOG_PID`, if set, names this process.
pub fn watchdog_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(me) {
            return None;
        }
    }
    Some(Duration::from_micros(usec) / 2)
}

/// When the loop counts as alive: a cycle finished within the last ping period, or within two
/// control intervals when the loop runs slower than it pings.
pub fn stale_after(ping_every: Duration, control_interval: Duration) -> Duration {
    ping_every.max(control_interval * 2)
}

/// READY=1 once the controller has completed its first cycle, then feed the watchdog if
/// systemd asked for one. Ends when the controller is gone.
pub async fn supervise(
    mut views: watch::Receiver<Arc<SiteState>>,
    notifier: Notifier,
    control_interval: Duration,
) {
    if views.changed().await.is_err() {
        return;
    }
    let chargers = views
        .borrow_and_update()
        .cycle
        .as_ref()
        .map_or(0, |c| c.chargers.len());
    notifier.ready(&format!("running: controlling {chargers} chargers"));
    if let Some(every) = watchdog_interval() {
        tracing::debug!(
            every_ms = every.as_millis() as u64,
            "feeding the systemd watchdog"
        );
        feed_watchdog(
            views,
            every,
            stale_after(every, control_interval),
            move || notifier.watchdog(),
        )
        .await;
    }
}

/// Feed the watchdog every `ping_every` while the controller keeps publishing views; `ping`
/// is called for each WATCHDOG=1. Ends when the controller is gone.
pub async fn feed_watchdog(
    mut views: watch::Receiver<Arc<SiteState>>,
    ping_every: Duration,
    stale_after: Duration,
    mut ping: impl FnMut(),
) {
    let mut tick = tokio::time::interval(ping_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_cycle: Option<Instant> = None;
    let mut warned = false;
    loop {
        tokio::select! {
            changed = views.changed() => {
                if changed.is_err() {
                    return;
                }
                views.borrow_and_update();
                last_cycle = Some(Instant::now());
            }
            _ = tick.tick() => {
                let alive = last_cycle.is_some_and(|at| at.elapsed() <= stale_after);
                if alive {
                    warned = false;
                    ping();
                } else if last_cycle.is_some() && !warned {
                    warned = true;
                    tracing::error!(
                        stale_s = stale_after.as_secs_f64(),
                        "control loop has not completed a cycle: watchdog not fed"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_watchdog_is_ours_only_when_systemd_meant_this_process() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_from(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_from(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_from(None, Some("7"), 7), None);
    }

    #[test]
    fn a_slow_loop_is_given_two_intervals() {
        let s = Duration::from_secs;
        assert_eq!(stale_after(s(15), s(1)), s(15));
        assert_eq!(stale_after(s(15), s(60)), s(120));
    }

    #[tokio::test(start_paused = true)]
    async fn pings_follow_completed_cycles_and_stop_when_the_loop_hangs() {
        let (tx, rx) = watch::channel(Arc::new(SiteState::default()));
        let pings = Arc::new(AtomicUsize::new(0));
        let counter = pings.clone();
        let task = tokio::spawn(feed_watchdog(
            rx,
            Duration::from_secs(5),
            Duration::from_secs(5),
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
        ));
        // No cycle yet: nothing to vouch for.
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 0);

        // A cycle every second for 30 s: about one ping per period.
        for _ in 0..30 {
            tx.send_replace(Arc::new(SiteState::default()));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let fed = pings.load(Ordering::SeqCst);
        assert!((5..=7).contains(&fed), "{fed} pings in 30 s");

        // The loop hangs: at most the ping already due goes out, then none.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let after = pings.load(Ordering::SeqCst);
        assert!(after <= fed + 1, "{after} pings after {fed}");

        // It recovers: pings resume.
        tx.send_replace(Arc::new(SiteState::default()));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(pings.load(Ordering::SeqCst) > after);

        drop(tx);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("ends with the controller")
            .expect("no panic");
    }
}
