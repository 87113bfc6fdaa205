//! Owns the retry schedule shared by every reconnect and retry loop: capped exponential
//! backoff with jitter, so that many natsmons do not retry in step.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Capped exponential backoff with full jitter between half and all of the step.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        let seed = crate::time::unix_now_ns() as u64 | 1;
        Backoff {
            next: Duration::from_millis(250),
            max,
            seed,
        }
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(250);
    }

    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: enough randomness to spread many shippers' retries apart.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let step = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        let frac = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        step.mul_f64(frac)
    }
}

/// Sleeps for `d` unless `token` is cancelled first; true when it was.
pub async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = token.cancelled() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut b = Backoff::new(Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(125) && d[0] <= Duration::from_millis(250));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        assert!(d[7] >= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(250));
    }
}
