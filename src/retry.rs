//! How long to wait before trying again: one exponential backoff for every retry loop of
//! the service (the ledger's commit after the desk acted, DynamoDB's unprocessed keys, a
//! busy alarm, a failed SQS receive, a notice not sent), so each loop says only what it
//! retries and when it gives up. The AWS SDK's own calls retry by its standard mode instead.

use std::time::Duration;

/// Pauses that start at `first` and grow by `factor` after each failed try, never beyond
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    factor: u32,
    max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, factor: u32, max: Duration) -> Self {
        Self { first, factor, max }
    }

    /// The pause after the `failures`th failed try in a row (1 for the first failure).
    pub fn after(&self, failures: u32) -> Duration {
        let mut pause = self.first.min(self.max);
        // Stops growing at the most (or with a factor that does not grow), so a count of
        // any size costs a few steps.
        for _ in 1..failures {
            if pause >= self.max || self.factor <= 1 {
                break;
            }
            pause = pause
                .checked_mul(self.factor)
                .map_or(self.max, |p| p.min(self.max));
        }
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_by_their_factor_up_to_the_most() {
        let b = Backoff::new(Duration::from_millis(100), 3, Duration::from_secs(1));
        let pauses: Vec<u128> = (1..=5).map(|n| b.after(n).as_millis()).collect();
        assert_eq!(pauses, [100, 300, 900, 1000, 1000]);
        // Far beyond any loop's attempts: no overflow, the most.
        assert_eq!(b.after(u32::MAX), Duration::from_secs(1));
        assert_eq!(
            b.after(0),
            Duration::from_millis(100),
            "before any failure: the first"
        );
        let huge = Backoff::new(Duration::MAX / 2, 4, Duration::MAX);
        assert_eq!(huge.after(3), Duration::MAX);
        let flat = Backoff::new(Duration::from_millis(5), 1, Duration::from_secs(1));
        assert_eq!(flat.after(u32::MAX), Duration::from_millis(5));
    }
}
