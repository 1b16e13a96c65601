//! Reconnect delays: exponential from `initial` to `max`, with jitter so a fleet of sites
//! that lost the broker together does not come back in one wave; reset once a connection
//! has lasted. Pure: the random draw comes in as a number.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A connection that lasted this long starts the next episode from `initial` again.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// Where in an episode of failed attempts the link is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffState {
    policy: Backoff,
    attempt: u32,
}

impl BackoffState {
    pub fn new(policy: Backoff) -> Self {
        BackoffState { policy, attempt: 0 }
    }

    /// Failed attempts since the last lasting connection.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay: `initial × 2^attempt`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial
            .checked_mul(factor)
            .unwrap_or(self.policy.max)
            .min(self.policy.max)
    }

    /// The delay before the next attempt, with `jitter` in [0, 1) spreading it over the
    /// upper half of the ceiling (never less than half, so the growth stays visible).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let ceiling = self.ceiling();
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.attempt = self.attempt.saturating_add(1);
        ceiling / 2 + ceiling.mul_f64(jitter / 2.0)
    }

    /// A connection ended after `lasted`: a lasting one resets the episode.
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= self.policy.reset_after {
            self.attempt = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn grows_doubling_up_to_the_cap() {
        let mut b = BackoffState::new(policy());
        let ceilings: Vec<u64> = (0..9)
            .map(|_| {
                let c = b.ceiling().as_secs();
                b.next_delay(0.999);
                c
            })
            .collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        for _ in 0..100 {
            b.next_delay(0.5);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let mut b = BackoffState::new(policy());
        for _ in 0..4 {
            b.next_delay(0.0);
        }
        let ceiling = b.ceiling();
        let low = b.clone().next_delay(0.0);
        let high = b.clone().next_delay(0.999_999);
        assert_eq!(low, ceiling / 2);
        assert!(high < ceiling && high > ceiling.mul_f64(0.99), "{high:?}");
        assert_eq!(b.clone().next_delay(f64::NAN), ceiling / 2);
    }

    #[test]
    fn only_a_lasting_connection_resets() {
        let mut b = BackoffState::new(policy());
        b.next_delay(0.0);
        b.next_delay(0.0);
        b.connection_ended(Duration::from_secs(5));
        assert_eq!(b.attempt(), 2);
        b.connection_ended(Duration::from_secs(30));
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }
}
