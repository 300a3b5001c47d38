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
//!
//! Layout: [`passwords`] (hashes, credentials, the hashing threads),
//! [`sessions`] (sessions, cookies, CSRF), [`limiter`] (the login limit);
//! this module keeps the constants, the cookie parsing, the client address
//! and [`log_safe`].

mod limiter;
mod passwords;
mod sessions;

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

pub use limiter::{Attempt, LoginLimiter, Refused};
pub use passwords::{
    Credential, credential_of, hash_password, operator_credentials, verify_password,
};
pub use sessions::Sessions;

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

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
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
/// SHA-256 (hex) of an API token, as written in `[auth] tokens`.
pub fn token_sha256(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
