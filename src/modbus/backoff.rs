//! Reconnect pacing shared by TCP connections and serial lines: after a failed connect or open,
//! requests fail fast until the next attempt is due, and the wait doubles up to a ceiling so a
//! dead device is not hammered while a briefly unplugged one comes back quickly.

use std::time::Duration;

use tokio::time::Instant;

/// First wait after a failure.
pub const INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between attempts.
pub const MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    delay: Duration,
    next_attempt: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            delay: INITIAL,
            next_attempt: None,
        }
    }
}

impl Backoff {
    /// Whether an attempt may be made at `now`; `Err` holds how long until it may.
    pub(crate) fn ready(&self, now: Instant) -> Result<(), Duration> {
        match self.next_attempt {
            Some(at) if at > now => Err(at - now),
            _ => Ok(()),
        }
    }

    /// An attempt failed at `now`: hold off the next one, and wait longer after that.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.next_attempt = Some(now + self.delay);
        self.delay = (self.delay * 2).min(MAX);
    }

    /// The device answered: the next failure starts from a short wait again.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.ready(t0), Ok(()));

        b.failed(t0);
        assert_eq!(b.ready(t0), Err(INITIAL));
        assert_eq!(b.ready(t0 + INITIAL), Ok(()));

        b.failed(t0);
        assert_eq!(b.ready(t0), Err(INITIAL * 2));

        for _ in 0..20 {
            b.failed(t0);
        }
        assert_eq!(b.ready(t0), Err(MAX));

        b.reset();
        assert_eq!(b.ready(t0), Ok(()));
        b.failed(t0);
        assert_eq!(b.ready(t0), Err(INITIAL));
    }
}
