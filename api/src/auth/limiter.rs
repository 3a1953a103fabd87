//! A limit on failed authentications per client address: past `limit` failures within a minute,
//! the address is answered 429 (with `Retry-After`) until the minute is over, without its token
//! being looked at — guessing tokens gets slow. Each api process counts its own (soft state that
//! can be lost at no cost; behind several replicas the limit applies per replica).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many addresses, windows that ended are dropped before a new one is added.
const PRUNE_ABOVE: usize = 10_000;

pub struct FailureLimiter {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    failures: u32,
}

impl FailureLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `address` may try again, when it has used up its failures.
    pub fn blocked_for(&self, address: IpAddr) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get(&address)?;
        let left = WINDOW.checked_sub(window.started.elapsed())?;
        (window.failures >= self.limit).then(|| left.as_secs().max(1))
    }

    /// Counts a failed authentication of `address`.
    pub fn record(&self, address: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, w| w.started.elapsed() < WINDOW);
        }
        let window = windows.entry(address).or_insert(Window {
            started: Instant::now(),
            failures: 0,
        });
        if window.started.elapsed() >= WINDOW {
            *window = Window {
                started: Instant::now(),
                failures: 0,
            };
        }
        window.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let limiter = FailureLimiter::new(3);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for _ in 0..2 {
            limiter.record(a);
        }
        assert_eq!(limiter.blocked_for(a), None);
        limiter.record(a);
        let wait = limiter.blocked_for(a).expect("blocked after 3 failures");
        assert!((1..=60).contains(&wait));
        assert_eq!(limiter.blocked_for(b), None);
    }
}
