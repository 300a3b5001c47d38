//! The login limit (see the parent module's docs for the rules): failed
//! and pending attempts per address and per name in a sliding window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::passwords::{Credential, HashPool};
use super::{HASH_QUEUE, HASH_THREADS, MAX_FAILURES, MAX_NAME_DELAY, WINDOW};

/// Addresses (and names) tracked at most: beyond, the least recently
/// failed entries without a pending attempt are forgotten.
const MAX_TRACKED: usize = 10_000;
/// Failures remembered per entry (enough for the longest name delay).
const MAX_REMEMBERED: usize = 32;

/// The key an address is limited by: an IPv6 host usually holds a whole /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The key a name is slowed down by (bounded length).
fn name_key(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Recent failures and pending attempts of one address or name.
#[derive(Default)]
struct Track {
    failures: VecDeque<Instant>,
    pending: u32,
}

impl Track {
    fn expire(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|f| now.duration_since(*f) >= WINDOW)
        {
            self.failures.pop_front();
        }
    }

    fn fail(&mut self, now: Instant) {
        self.failures.push_back(now);
        if self.failures.len() > MAX_REMEMBERED {
            self.failures.pop_front();
        }
    }

    fn idle(&self) -> bool {
        self.pending == 0 && self.failures.is_empty()
    }
}

/// The entry of `key`, making room first when the map is full: expired
/// entries go, then the least recently failed one without a pending attempt.
fn track<'m, K: std::hash::Hash + Eq + Clone>(
    map: &'m mut HashMap<K, Track>,
    key: &K,
    now: Instant,
) -> &'m mut Track {
    if !map.contains_key(key) && map.len() >= MAX_TRACKED {
        map.retain(|_, t| {
            t.expire(now);
            !t.idle()
        });
        if map.len() >= MAX_TRACKED {
            let oldest = map
                .iter()
                .filter(|(_, t)| t.pending == 0)
                .min_by_key(|(_, t)| t.failures.back().copied())
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
    }
    let t = map.entry(key.clone()).or_default();
    t.expire(now);
    t
}

#[derive(Default)]
struct Tracks {
    addresses: HashMap<IpAddr, Track>,
    names: HashMap<String, Track>,
}

/// Why an attempt is not even checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The address has too many failed or pending attempts: retry after.
    TooMany(Duration),
}

/// Limits login attempts and runs their password checks (see the module
/// docs for the rules).
pub struct LoginLimiter {
    tracks: Mutex<Tracks>,
    pool: HashPool,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new()
    }
}

impl LoginLimiter {
    pub fn new() -> Self {
        LoginLimiter {
            tracks: Mutex::default(),
            pool: HashPool::new(HASH_THREADS, HASH_QUEUE),
        }
    }

    /// Reserves a slot for an attempt from `ip` on `name`, counted as a
    /// failure until [`Attempt::succeeded`] says otherwise.
    pub fn begin(&self, ip: IpAddr, name: &str) -> Result<Attempt<'_>, Refused> {
        let now = Instant::now();
        let mut t = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        let address = address_key(ip);
        let a = track(&mut t.addresses, &address, now);
        if a.failures.len() as u32 + a.pending >= MAX_FAILURES {
            // Pending attempts end within seconds; failures at the end of
            // their window.
            let wait = a
                .failures
                .front()
                .map(|f| WINDOW.saturating_sub(now.duration_since(*f)))
                .unwrap_or(Duration::from_secs(60));
            return Err(Refused::TooMany(wait));
        }
        a.pending += 1;
        let key = name_key(name);
        let n = track(&mut t.names, &key, now);
        let over = (n.failures.len() as u32).saturating_sub(MAX_FAILURES - 1);
        let delay = if over == 0 {
            Duration::ZERO
        } else {
            (Duration::from_millis(500) * 2u32.saturating_pow(over - 1)).min(MAX_NAME_DELAY)
        };
        Ok(Attempt {
            limiter: self,
            address,
            name: key,
            delay,
            settled: false,
        })
    }

    /// Runs a password check on the hashing threads; `None` when too many
    /// wait already.
    pub async fn check(&self, credential: Credential, password: String) -> Option<bool> {
        self.pool
            .run(move |memory| credential.check(&password, memory))
            .await
    }

    fn settle(&self, address: IpAddr, name: &str, outcome: Outcome) -> bool {
        let now = Instant::now();
        let mut t = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
        let mut now_blocked = false;
        if let Some(a) = t.addresses.get_mut(&address) {
            a.pending = a.pending.saturating_sub(1);
            if outcome == Outcome::Failed {
                a.fail(now);
                now_blocked = a.failures.len() as u32 == MAX_FAILURES;
            }
        }
        match outcome {
            Outcome::Failed => track(&mut t.names, &name.to_string(), now).fail(now),
            Outcome::Succeeded => {
                t.names.remove(name);
            }
            Outcome::Abandoned => {}
        }
        now_blocked
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Failed,
    Succeeded,
    Abandoned,
}

/// A login attempt holding its slot. Dropped unsettled (the client went
/// away mid-check), it counts as failed.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    address: IpAddr,
    name: String,
    /// How long to wait before checking (the name is under attack).
    pub delay: Duration,
    settled: bool,
}

impl Attempt<'_> {
    /// The password was wrong. Returns true when this failure made the
    /// address reach the limit.
    pub fn failed(mut self) -> bool {
        self.settled = true;
        self.limiter
            .settle(self.address, &self.name, Outcome::Failed)
    }

    /// The password was right: the slot is given back, the name's failures
    /// forgotten.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.limiter
            .settle(self.address, &self.name, Outcome::Succeeded);
    }

    /// Not checked (the daemon was too busy): the slot is given back.
    pub fn abandoned(mut self) {
        self.settled = true;
        self.limiter
            .settle(self.address, &self.name, Outcome::Abandoned);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter
                .settle(self.address, &self.name, Outcome::Failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failed_or_pending_attempts_block_the_address_not_the_name() {
        let l = LoginLimiter::new();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let pending: Vec<_> = (0..MAX_FAILURES)
            .map(|_| l.begin(ip, "bureau").unwrap())
            .collect();
        assert!(matches!(l.begin(ip, "bureau"), Err(Refused::TooMany(_))));
        for a in pending {
            a.failed();
        }
        assert!(matches!(l.begin(ip, "other"), Err(Refused::TooMany(_))));
        // Another address may still try the name, after a delay.
        let other = l.begin("10.0.0.9".parse().unwrap(), "bureau").unwrap();
        assert_eq!(other.delay, Duration::from_millis(500));
        other.succeeded();
        let again = l.begin("10.0.0.9".parse().unwrap(), "bureau").unwrap();
        assert_eq!(again.delay, Duration::ZERO, "a success ends the slowdown");
        again.abandoned();
    }

    #[test]
    fn a_success_gives_its_slot_back_and_a_dropped_attempt_counts_as_failed() {
        let l = LoginLimiter::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            l.begin(ip, "bureau").unwrap().succeeded();
        }
        for _ in 0..MAX_FAILURES {
            drop(l.begin(ip, "x").unwrap());
        }
        assert!(l.begin(ip, "bureau").is_err());
    }

    #[test]
    fn an_ipv6_host_is_limited_by_its_64() {
        let l = LoginLimiter::new();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            l.begin(ip, "bureau").unwrap().failed();
        }
        assert!(l.begin("2001:db8:1:2::ffff".parse().unwrap(), "x").is_err());
        assert!(l.begin("2001:db8:1:3::1".parse().unwrap(), "x").is_ok());
    }

    #[test]
    fn the_name_delay_grows_to_its_cap() {
        let l = LoginLimiter::new();
        let mut delays = Vec::new();
        for i in 0..12u32 {
            let ip = IpAddr::from([192, 0, 2, i as u8]);
            let a = l.begin(ip, "bureau").unwrap();
            delays.push(a.delay.as_millis());
            a.failed();
        }
        assert_eq!(
            delays,
            [0, 0, 0, 0, 0, 500, 1000, 2000, 4000, 8000, 8000, 8000]
        );
    }
}
