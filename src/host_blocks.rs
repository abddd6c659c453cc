//! Login throttling: after `max_auth_errors_until_block` failed logins from one address, the
//! address is refused (with the server's 1129) until `auth_block_time` has passed since its last
//! failure. One table for the whole process, so that neither a reload nor another service of
//! the proxy gives a guesser a fresh count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most: past it, expired entries go first, then the oldest, so that a
/// flood of addresses cannot grow the table without bound.
const MAX_TRACKED: usize = 65536;

/// The failure counts of the addresses that failed to log in recently.
#[derive(Debug)]
pub struct HostBlocks {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Failures that block an address; 0 turns throttling off.
    limit: u32,
    block_time: Duration,
    hosts: HashMap<IpAddr, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// A tracked address, for the admin API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostView {
    pub address: IpAddr,
    pub failures: u32,
    pub blocked: bool,
    /// Seconds until the address is forgotten (and, if blocked, unblocked).
    pub expires_in_seconds: f64,
}

impl HostBlocks {
    pub fn new(limit: u32, block_time: Duration) -> Self {
        HostBlocks {
            inner: Mutex::new(Inner {
                limit,
                block_time,
                hosts: HashMap::new(),
            }),
        }
    }

    /// Takes the settings of a reloaded config; the counts so far stay.
    pub fn configure(&self, limit: u32, block_time: Duration) {
        let mut inner = self.lock();
        inner.limit = limit;
        inner.block_time = block_time;
    }

    /// True if logins from `ip` are refused now.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        self.is_blocked_at(ip, Instant::now())
    }

    /// Counts a failed login from `ip`; true if this failure blocks it.
    pub fn failed(&self, ip: IpAddr) -> bool {
        self.failed_at(ip, Instant::now())
    }

    /// Forgets `ip` (`None`: every address); the number of addresses that were blocked.
    pub fn clear(&self, ip: Option<IpAddr>) -> usize {
        let now = Instant::now();
        let mut inner = self.lock();
        let blocked = |i: &Inner, f: &Failures| i.is_blocking(f, now);
        match ip {
            Some(ip) => {
                let was = inner.hosts.get(&ip).is_some_and(|f| blocked(&inner, f));
                inner.hosts.remove(&ip);
                usize::from(was)
            }
            None => {
                let n = inner.hosts.values().filter(|f| blocked(&inner, f)).count();
                inner.hosts.clear();
                n
            }
        }
    }

    /// The addresses with recent failures, blocked ones first.
    pub fn list(&self) -> Vec<HostView> {
        let now = Instant::now();
        let inner = self.lock();
        let mut hosts: Vec<HostView> = inner
            .hosts
            .iter()
            .filter(|(_, f)| !inner.expired(f, now))
            .map(|(ip, f)| HostView {
                address: *ip,
                failures: f.count,
                blocked: inner.is_blocking(f, now),
                expires_in_seconds: inner.block_time.saturating_sub(now - f.last).as_secs_f64(),
            })
            .collect();
        hosts.sort_by(|a, b| b.blocked.cmp(&a.blocked).then(a.address.cmp(&b.address)));
        hosts
    }

    /// The number of addresses blocked now.
    pub fn blocked_count(&self) -> usize {
        let now = Instant::now();
        let inner = self.lock();
        inner
            .hosts
            .values()
            .filter(|f| inner.is_blocking(f, now))
            .count()
    }

    fn is_blocked_at(&self, ip: IpAddr, now: Instant) -> bool {
        let inner = self.lock();
        inner
            .hosts
            .get(&ip)
            .is_some_and(|f| inner.is_blocking(f, now))
    }

    fn failed_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut inner = self.lock();
        if inner.limit == 0 {
            return false;
        }
        if !inner.hosts.contains_key(&ip) && inner.hosts.len() >= MAX_TRACKED {
            inner.make_room(now);
        }
        let block_time = inner.block_time;
        let f = inner.hosts.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(f.last) >= block_time {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let f = *f;
        inner.is_blocking(&f, now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The table holds counts only: one left half-updated by a panic is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn expired(&self, f: &Failures, now: Instant) -> bool {
        now.duration_since(f.last) >= self.block_time
    }

    fn is_blocking(&self, f: &Failures, now: Instant) -> bool {
        self.limit > 0 && f.count >= self.limit && !self.expired(f, now)
    }

    fn make_room(&mut self, now: Instant) {
        let block_time = self.block_time;
        self.hosts
            .retain(|_, f| now.duration_since(f.last) < block_time);
        if self.hosts.len() >= MAX_TRACKED {
            if let Some(oldest) = self
                .hosts
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(ip, _)| *ip)
            {
                self.hosts.remove(&oldest);
            }
        }
    }
}

/// What a blocked address is told, in the server's words (ER_HOST_IS_BLOCKED), with the
/// proxy's way to lift the block.
pub fn blocked_message(ip: IpAddr) -> String {
    format!(
        "Host '{ip}' is blocked because of many connection errors; unblock with \
         'switchyard ctl unblock {ip}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_at_the_limit_until_the_time_passes() {
        let b = HostBlocks::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert!(!b.failed_at(a, t0));
        assert!(!b.failed_at(a, t0));
        assert!(!b.is_blocked_at(a, t0));
        assert!(b.failed_at(a, t0));
        assert!(b.is_blocked_at(a, t0 + Duration::from_secs(59)));
        assert!(!b.is_blocked_at(ip("10.0.0.2"), t0));
        assert!(!b.is_blocked_at(a, t0 + Duration::from_secs(60)));
        // The count starts afresh once the time has passed.
        assert!(!b.failed_at(a, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_block() {
        let b = HostBlocks::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        let a = ip("::1");
        for i in 0..5 {
            assert!(!b.failed_at(a, t0 + Duration::from_secs(11 * i)));
        }
    }

    #[test]
    fn zero_turns_throttling_off() {
        let b = HostBlocks::new(0, Duration::from_secs(60));
        let a = ip("10.0.0.1");
        for _ in 0..100 {
            assert!(!b.failed(a));
        }
        assert!(!b.is_blocked(a));
        assert!(b.list().is_empty());
    }

    #[test]
    fn clear_lifts_blocks() {
        let b = HostBlocks::new(1, Duration::from_secs(60));
        b.failed(ip("10.0.0.1"));
        b.failed(ip("10.0.0.2"));
        assert_eq!(b.blocked_count(), 2);
        assert_eq!(b.clear(Some(ip("10.0.0.1"))), 1);
        assert!(!b.is_blocked(ip("10.0.0.1")));
        assert_eq!(b.list().len(), 1);
        assert_eq!(b.clear(None), 1);
        assert_eq!(b.blocked_count(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let b = HostBlocks::new(5, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            b.failed_at(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_micros(i.into()),
            );
        }
        assert_eq!(b.lock().hosts.len(), MAX_TRACKED);
    }
}
