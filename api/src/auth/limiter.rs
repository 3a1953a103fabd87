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
    /// A refusal of this window was answered 429 already (and recorded as an event).
    refused: bool,
}

/// An address that used up its failures.
#[derive(Debug, PartialEq, Eq)]
pub struct Blocked {
    /// Seconds until it may try again.
    pub retry_after: u64,
    /// The window's first 429: the one refusal of the window worth an audit event (a client
    /// hammering on does not turn into a database write per request).
    pub first: bool,
}

impl FailureLimiter {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// When `address` has used up its failures: how long it waits, and whether this is the
    /// window's first refusal.
    pub fn blocked(&self, address: IpAddr) -> Option<Blocked> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get_mut(&address)?;
        let left = WINDOW.checked_sub(window.started.elapsed())?;
        if window.failures < self.limit {
            return None;
        }
        let first = !std::mem::replace(&mut window.refused, true);
        Some(Blocked {
            retry_after: left.as_secs().max(1),
            first,
        })
    }

    /// Counts a failed authentication of `address`.
    pub fn record(&self, address: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, w| w.started.elapsed() < WINDOW);
        }
        let fresh = || Window {
            started: Instant::now(),
            failures: 0,
            refused: false,
        };
        let window = windows.entry(address).or_insert_with(fresh);
        if window.started.elapsed() >= WINDOW {
            *window = fresh();
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
        assert_eq!(limiter.blocked(a), None);
        limiter.record(a);
        let blocked = limiter.blocked(a).expect("blocked after 3 failures");
        assert!((1..=60).contains(&blocked.retry_after));
        assert!(blocked.first);
        assert!(!limiter.blocked(a).expect("still blocked").first);
        assert_eq!(limiter.blocked(b), None);
    }
}
