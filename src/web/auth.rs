//! Operators of the bureau pages: passwords (argon2id hashes from the
//! configuration, or the password generated at first start), server-side
//! sessions, CSRF tokens, the client address behind a reverse proxy, and
//! the login rate limit with its bounded password hashing.
//!
//! **Sessions.** The cookie carries a random 256-bit id (hex); the database
//! keeps only its SHA-256 with the operator's name and a fingerprint of the
//! credential used to log in ([`credential_of`]): logging out deletes the
//! row, and a session whose operator was removed or whose password changed
//! in the configuration in force is refused at its next request (and its
//! row deleted; a reload deletes them all at once). A session lasts
//! [`SESSION_HOURS`] from the login, whatever happens. The cookie is
//! HttpOnly, SameSite=Strict, and Secure when `public_url` is https. Every
//! form carries a CSRF token, an HMAC of the session id under a key
//! generated at first start.
//!
//! **Login limit** ([`LoginLimiter`]). Decisions where SPEC only says
//! "rate-limited":
//! - per client address (an IPv6 address counts as its /64): an attempt
//!   reserves a slot *before* the password is hashed and counts as failed
//!   until proven right; [`MAX_FAILURES`] failed or pending attempts in a
//!   sliding [`WINDOW`] and the address gets 429 without any hashing. A
//!   success gives its slot back.
//! - per login name: never refused (an attacker must not lock a legitimate
//!   operator out), but slowed: from the [`MAX_FAILURES`]th failure on that
//!   name in the window, every attempt on it waits 0.5 s, doubling with each
//!   failure, at most [`MAX_NAME_DELAY`]. A success on the name ends this.
//! - password checks run on [`HASH_THREADS`] threads of their own with at
//!   most [`HASH_QUEUE`] waiting; beyond, 503 at once. argon2id takes 19 MiB
//!   per check: 200 parallel checks on the blocking pool held 400 MB, and
//!   glibc keeps freed memory in each thread's arena, so a few long-lived
//!   threads (not a semaphore over the blocking pool's many) keep the
//!   memory flat.
//! - an unknown name is checked against a dummy hash made with the same
//!   parameters as `vigie hash-password`'s, so it takes as long as a known
//!   one.
//!
//! **Client address** ([`client_ip`]): the peer, unless the peer is in
//! `[http] trusted_proxies`; then the rightmost `X-Forwarded-For` entry that
//! is not a trusted proxy.
//!
//! **Logs** never hold a password, nor a login name that is not an
//! operator's (it may be a password typed in the wrong field): only its
//! length. Operators' names are logged escaped and truncated ([`log_safe`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::ConfigSet;
use crate::store::sessions::{self as q, SessionRow};
use crate::store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

pub const COOKIE: &str = "vigie_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Failed (or pending) logins allowed per address in [`WINDOW`]; also the
/// number of failures on a name after which its attempts are slowed down.
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest an attempt on a name under attack waits before its check.
pub const MAX_NAME_DELAY: Duration = Duration::from_secs(8);
/// Threads that check passwords (each check holds 19 MiB while it runs).
pub const HASH_THREADS: usize = 2;
/// Password checks that may wait for a thread; beyond, 503.
pub const HASH_QUEUE: usize = 16;
/// Addresses (and names) tracked at most: beyond, the least recently
/// failed entries without a pending attempt are forgotten.
const MAX_TRACKED: usize = 10_000;
/// Failures remembered per entry (enough for the longest name delay).
const MAX_REMEMBERED: usize = 32;

/// An argon2id hash of a password nobody has, with the parameters of
/// [`hash_password`]: an unknown name is checked against it.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$sO6xCE/MJweQ8M953RXnLw$4Fz0ObyZs+eWAnrkKcVW4UBDIcRJ3Bk06abBh/KcMAg";

/// The argon2id hash of a password, as `vigie hash-password` prints it.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// [`verify_password`] with argon2's working memory given by the caller,
/// grown to the hash's size if needed and kept for the next check. (The
/// argon2 crate allocates 19 MiB per check otherwise, and glibc does not
/// reuse it well: sequential checks on two threads reached 107 MiB of
/// resident memory after six logins.)
fn verify_with_memory(password: &str, phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
        .is_ok()
        && constant_time_eq(out, expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// What a login name is checked against, taken from the configuration in
/// force when the attempt arrives.
pub enum Credential {
    /// A configured operator's argon2id hash.
    Hash(String),
    /// The password generated at first start (used while no operator is
    /// configured), compared in constant time.
    Generated(String),
    /// Not an operator: checked against a dummy all the same, and refused.
    Unknown { generated: bool },
}

impl Credential {
    /// The operators' credentials in force: the configured ones, else the
    /// generated one.
    pub fn of(set: &ConfigSet, generated: Option<&(String, String)>, name: &str) -> Credential {
        let operators = &set.daemon.auth.operators;
        if operators.is_empty() {
            match generated {
                Some((n, pw)) if n == name => Credential::Generated(pw.clone()),
                _ => Credential::Unknown { generated: true },
            }
        } else {
            match operators.iter().find(|o| o.name == name) {
                Some(o) => Credential::Hash(o.password_hash.clone()),
                None => Credential::Unknown { generated: false },
            }
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Credential::Unknown { .. })
    }

    /// Whether `password` is right. Slow (argon2id) for configured
    /// operators and unknown names alike: run it on the hashing threads,
    /// whose `memory` it uses.
    fn check(&self, password: &str, memory: &mut Vec<argon2::Block>) -> bool {
        match self {
            Credential::Hash(h) => verify_with_memory(password, h, memory),
            Credential::Generated(pw) => constant_time_eq(pw.as_bytes(), password.as_bytes()),
            Credential::Unknown { generated: false } => {
                let _ = verify_with_memory(password, DUMMY_HASH, memory);
                false
            }
            Credential::Unknown { generated: true } => {
                let _ = constant_time_eq(DUMMY_HASH.as_bytes(), password.as_bytes());
                false
            }
        }
    }

    /// The fingerprint kept with a session: it changes when the password
    /// (hash) changes in the configuration.
    fn fingerprint(&self) -> Option<String> {
        match self {
            Credential::Hash(h) => Some(sha256_hex(h)),
            Credential::Generated(pw) => Some(sha256_hex(&format!("generated:{pw}"))),
            Credential::Unknown { .. } => None,
        }
    }
}

/// The credential fingerprint of `name` in the configuration in force, or
/// `None` when it is not an operator (any more).
pub fn credential_of(
    set: &ConfigSet,
    generated: Option<&(String, String)>,
    name: &str,
) -> Option<String> {
    Credential::of(set, generated, name).fingerprint()
}

/// (name, credential fingerprint) of every operator in force.
pub fn operator_credentials(
    set: &ConfigSet,
    generated: Option<&(String, String)>,
) -> Vec<(String, String)> {
    let names: Vec<String> = if set.daemon.auth.operators.is_empty() {
        generated.iter().map(|(n, _)| n.clone()).collect()
    } else {
        set.daemon
            .auth
            .operators
            .iter()
            .map(|o| o.name.clone())
            .collect()
    };
    names
        .into_iter()
        .filter_map(|n| credential_of(set, generated, &n).map(|c| (n, c)))
        .collect()
}

/// Server-side sessions and their cookies.
pub struct Sessions {
    /// Key of the CSRF tokens (generated at first start).
    key: Vec<u8>,
    /// Cookies get `Secure` (public_url is https).
    pub secure: bool,
    store: Store,
}

impl Sessions {
    pub fn new(key: Vec<u8>, secure: bool, store: Store) -> Self {
        Sessions { key, secure, store }
    }

    /// Opens a session for `operator` logged in with `credential` (its
    /// fingerprint); returns the cookie value, a new random id.
    pub async fn open(
        &self,
        operator: &str,
        credential: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let mut id = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        let cookie = hex::encode(id);
        let (sha, operator, credential) = (
            sha256_hex(&cookie),
            operator.to_string(),
            credential.to_string(),
        );
        let expires = now + chrono::Duration::hours(SESSION_HOURS);
        self.store
            .call(move |c| q::insert(c, &sha, &operator, &credential, now, expires))
            .await?;
        Ok(cookie)
    }

    /// The stored session of a cookie value, unless expired or unknown.
    /// Values that cannot be ours are refused without a database call.
    pub async fn find(
        &self,
        cookie: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>, StoreError> {
        if cookie.len() != 64 || !cookie.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let sha = sha256_hex(cookie);
        self.store.call(move |c| q::get(c, &sha, now)).await
    }

    /// Ends a session (logout, or found stale).
    pub async fn close(&self, cookie: &str) -> Result<bool, StoreError> {
        let sha = sha256_hex(cookie);
        self.store.call(move |c| q::delete(c, &sha)).await
    }

    /// Ends every session whose operator is not in `valid` with the same
    /// credential (after a reload). Returns how many ended.
    pub async fn forget_stale(&self, valid: Vec<(String, String)>) -> Result<usize, StoreError> {
        self.store.call(move |c| q::forget_stale(c, &valid)).await
    }

    fn mac(&self, msg: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("any key length");
        m.update(msg.as_bytes());
        m
    }

    /// The CSRF token of a session (bound to its id).
    pub fn csrf(&self, cookie: &str) -> String {
        hex::encode(&self.mac(&format!("csrf:{cookie}")).finalize().into_bytes()[..16])
    }

    pub fn csrf_ok(&self, cookie: &str, token: &str) -> bool {
        constant_time_eq(self.csrf(cookie).as_bytes(), token.as_bytes())
    }

    pub fn set_cookie(&self, value: &str) -> String {
        format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SESSION_HOURS * 3600,
            if self.secure { "; Secure" } else { "" }
        )
    }

    pub fn clear_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// The value of our cookie in a `Cookie:` header.
pub fn cookie_value(header: Option<&str>) -> Option<String> {
    header?
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")))
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// The client's address: the peer, unless it is a trusted proxy; then the
/// rightmost `X-Forwarded-For` entry that is not a trusted proxy (entries
/// further left were written by the client and prove nothing). An entry
/// that is not an address stops the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut last = peer.to_canonical();
    if !is_trusted(&last) {
        return last;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let ip = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()));
        let Ok(ip) = ip.map(|ip| ip.to_canonical()) else {
            return last;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// A name fit for a log line: control characters and quotes escaped, at
/// most 64 characters.
pub fn log_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

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

/// A password check, given its thread's argon2 working memory.
type HashJob = Box<dyn FnOnce(&mut Vec<argon2::Block>) + Send>;

/// A few long-lived threads for password checks, with a bounded queue.
/// Each keeps its argon2 working memory from one check to the next: the
/// daemon's memory for password checks is that, whatever the attempts.
struct HashPool {
    /// `None` when no thread could be started: checks then go to tokio's
    /// blocking pool (unbounded, but working).
    jobs: Option<std::sync::mpsc::SyncSender<HashJob>>,
}

impl HashPool {
    fn new(threads: usize, queue: usize) -> HashPool {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vigie-password-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => break, // the daemon is gone
                        }
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a password-checking thread"),
            }
        }
        HashPool {
            jobs: (started > 0).then_some(tx),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Option<T> {
        if self.jobs.is_none() {
            return tokio::task::spawn_blocking(move || f(&mut Vec::new()))
                .await
                .ok();
        }
        self.submit(f)?.await.ok()
    }

    /// Queues `f` for a thread at once; `None` when the queue is full.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> T + Send + 'static,
    ) -> Option<tokio::sync::oneshot::Receiver<T>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move |memory| {
            let _ = tx.send(f(memory));
        });
        self.jobs.as_ref()?.try_send(job).ok()?;
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn checks_with_reused_memory_agree_with_the_argon2_crate() {
        let h = hash_password("correct horse").unwrap();
        // Memory left dirty by a previous check, and too small at first.
        let mut memory = vec![argon2::Block::default(); 8];
        for (password, hash) in [
            ("correct horse", h.as_str()),
            ("wrong", h.as_str()),
            ("correct horse", DUMMY_HASH),
            ("x", "not a hash"),
            ("x", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"),
            // Other parameters and algorithm, as an older Vigie may have made.
            (
                "pw",
                "$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHRzYWx0$eq4tRSRYu8uPvcv4bAXb3Q",
            ),
        ] {
            assert_eq!(
                verify_with_memory(password, hash, &mut memory),
                verify_password(password, hash),
                "{password} {hash}"
            );
        }
        assert!(verify_with_memory("correct horse", &h, &mut memory));
        assert!(!verify_with_memory("correct horsf", &h, &mut memory));
        let other = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(4096, 3, 2, Some(24)).unwrap(),
        );
        let salt = SaltString::encode_b64(b"saltsaltsalt").unwrap();
        let h2 = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_with_memory("pw", &h2, &mut memory), "{h2}");
        assert!(!verify_with_memory("pv", &h2, &mut memory));
        assert!(verify_with_memory("correct horse", &h, &mut memory));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_hash = hash_password("x").unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(
            argon2::Params::try_from(&dummy).unwrap(),
            argon2::Params::try_from(&real).unwrap()
        );
    }

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

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.2.3.4, 198.51.100.7".parse().unwrap());
        h.append("x-forwarded-for", "10.1.1.1".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("192.0.2.9"), &h, &trusted), ip("192.0.2.9"));
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        let mut bad = HeaderMap::new();
        bad.insert(
            "x-forwarded-for",
            "10.2.2.2, garbage, 10.3.3.3".parse().unwrap(),
        );
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &bad, &trusted),
            ip("10.3.3.3")
        );
    }

    #[test]
    fn names_are_logged_escaped_and_truncated() {
        assert_eq!(log_safe("bureau\nINFO faux"), "bureau\\nINFO faux");
        assert_eq!(log_safe(&"a".repeat(100)).chars().count(), 65);
    }

    #[tokio::test]
    async fn the_hashing_queue_refuses_beyond_its_length() {
        let pool = HashPool::new(1, 1);
        let (started, running) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = pool
            .submit(move |_| {
                started.send(()).unwrap();
                released.recv().is_ok()
            })
            .unwrap();
        running.recv_timeout(Duration::from_secs(30)).unwrap();
        let queued = pool.submit(|_| 2).expect("one place in the queue");
        assert!(pool.submit(|_| 3).is_none(), "the queue is full");
        release.send(()).unwrap();
        assert!(busy.await.unwrap());
        assert_eq!(queued.await.unwrap(), 2);
        assert_eq!(pool.run(|_| 4).await, Some(4));
    }
}
