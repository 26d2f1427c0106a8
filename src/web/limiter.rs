//! An in-memory sliding-window limit per key (an IP address): how sign-ups are rate limited
//! without a third-party service. Bounded: the oldest keys are dropped past a cap.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most; a flood from many addresses cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

pub struct RateLimiter<K = std::net::IpAddr> {
    hits: Mutex<HashMap<K, Vec<Instant>>>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter {
            hits: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Counts one more for `key` and says whether it is within `limit` per `window`.
    pub fn allow(&self, key: &K, limit: u32, window: Duration, now: Instant) -> bool {
        let Ok(mut hits) = self.hits.lock() else {
            return false;
        };
        if hits.len() >= MAX_KEYS && !hits.contains_key(key) {
            hits.retain(|_, v| v.iter().any(|t| now.duration_since(*t) < window));
            if hits.len() >= MAX_KEYS {
                return false;
            }
        }
        let v = hits.entry(key.clone()).or_default();
        v.retain(|t| now.duration_since(*t) < window);
        if v.len() >= limit as usize {
            return false;
        }
        v.push(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_in_a_window_and_more_once_it_has_passed() {
        let l: RateLimiter<u8> = RateLimiter::default();
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        assert!((0..3).all(|_| l.allow(&1, 3, hour, t0)));
        assert!(!l.allow(&1, 3, hour, t0));
        assert!(l.allow(&2, 3, hour, t0), "another key has its own count");
        assert!(l.allow(&1, 3, hour, t0 + hour + Duration::from_secs(1)));
    }
}
