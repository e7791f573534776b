//! Failed log-ins, limited: each client address and each user name may fail
//! `MAX_FAILURES` times in `WINDOW`; past that, log-ins from that address or for that
//! name are refused without checking the password until the oldest failure ages out.
//! In memory: a restart forgives, which costs an attacker a restart they cannot cause.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, as everywhere in the collector: a test can pause and advance it.
use tokio::time::Instant;

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Keys remembered at most (a flood of names cannot grow the map without bound).
const MAX_KEYS: usize = 10_000;

/// Recent failures per key (`ip:…`, `user:…`).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// `Some(wait)` if any of `keys` is over its limit at `now`.
    pub fn blocked(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|k| {
                let q = map.get_mut(k)?;
                while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    q.pop_front();
                }
                (q.len() >= MAX_FAILURES).then(|| WINDOW.saturating_sub(now.duration_since(q[0])))
            })
            .max()
    }

    pub fn failed(&self, keys: &[String], now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for k in keys {
            let q = map.entry(k.clone()).or_default();
            q.push_back(now);
            if q.len() > MAX_FAILURES {
                q.pop_front();
            }
        }
    }

    /// A success forgets the user's failures (not the address's).
    pub fn succeeded(&self, user_key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(user_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_for_the_window() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let keys = ["ip:127.0.0.1".to_owned(), "user:ann".to_owned()];
        for i in 0..MAX_FAILURES {
            assert_eq!(l.blocked(&keys, t0), None, "failure {i}");
            l.failed(&keys, t0);
        }
        assert!(l.blocked(&keys, t0).is_some());
        // Another user from another address is not blocked.
        assert_eq!(
            l.blocked(&["ip:10.0.0.1".into(), "user:bob".into()], t0),
            None
        );
        // Either key blocks: the same user from elsewhere.
        assert!(l
            .blocked(&["ip:10.0.0.1".into(), "user:ann".into()], t0)
            .is_some());
        assert_eq!(l.blocked(&keys, t0 + WINDOW), None);
    }
}
