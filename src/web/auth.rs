//! Operators of the bureau pages: passwords (argon2id hashes from the
//! configuration, or the password generated at first start), signed
//! session cookies, CSRF tokens, and the login rate limit.
//!
//! The session cookie is `NAME_HEX.EXPIRY.SIG` with SIG an HMAC-SHA256 of
//! the name and expiry under a key generated at first start: nothing is
//! stored server-side, and a cookie cannot be forged or extended. It is
//! HttpOnly, SameSite=Strict, and Secure when `public_url` is https. Every
//! form carries a CSRF token derived from the session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const COOKIE: &str = "vigie_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Failed logins allowed per address (and per name) in [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub struct Sessions {
    key: Vec<u8>,
    pub secure: bool,
}

impl Sessions {
    pub fn new(key: Vec<u8>, secure: bool) -> Self {
        Sessions { key, secure }
    }

    fn mac(&self, msg: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("any key length");
        m.update(msg.as_bytes());
        m
    }

    /// A cookie value for `name`, valid until `now + SESSION_HOURS`.
    pub fn issue(&self, name: &str, now: DateTime<Utc>) -> String {
        let exp = (now + chrono::Duration::hours(SESSION_HOURS)).timestamp();
        let payload = format!("{}.{exp}", hex::encode(name));
        let sig = hex::encode(
            self.mac(&format!("session:{payload}"))
                .finalize()
                .into_bytes(),
        );
        format!("{payload}.{sig}")
    }

    /// The operator name of a genuine, unexpired cookie value.
    pub fn verify(&self, value: &str, now: DateTime<Utc>) -> Option<String> {
        let (payload, sig) = value.rsplit_once('.')?;
        let (name_hex, exp) = payload.split_once('.')?;
        let sig = hex::decode(sig).ok()?;
        self.mac(&format!("session:{payload}"))
            .verify_slice(&sig)
            .ok()?;
        if exp.parse::<i64>().ok()? <= now.timestamp() {
            return None;
        }
        String::from_utf8(hex::decode(name_hex).ok()?).ok()
    }

    /// The CSRF token of a session (bound to the cookie value).
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

/// Failed logins per key ("ip:…", "name:…") in a sliding window.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// `Some(wait)` when `ip` or `name` has too many recent failures.
    pub fn blocked(&self, ip: IpAddr, name: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        [format!("ip:{ip}"), format!("name:{name}")]
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|(n, since)| *n >= MAX_FAILURES && now.duration_since(*since) < WINDOW)
            .map(|(_, since)| WINDOW - now.duration_since(*since))
            .max()
    }

    pub fn failed(&self, ip: IpAddr, name: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Forget old windows so the map does not grow without bound.
        map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        for k in [format!("ip:{ip}"), format!("name:{name}")] {
            let e = map.entry(k).or_insert((0, now));
            e.0 += 1;
        }
    }

    pub fn succeeded(&self, ip: IpAddr, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("ip:{ip}"));
        map.remove(&format!("name:{name}"));
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
    fn session_cookies_cannot_be_forged_or_outlive_their_expiry() {
        let s = Sessions::new(b"k".repeat(32), false);
        let now = Utc::now();
        let c = s.issue("presidente", now);
        assert_eq!(s.verify(&c, now).as_deref(), Some("presidente"));
        let other = Sessions::new(b"x".repeat(32), false);
        assert_eq!(other.verify(&c, now), None);
        let later = now + chrono::Duration::hours(SESSION_HOURS + 1);
        assert_eq!(s.verify(&c, later), None);
        // Another name with the same signature.
        let forged = c.replacen(&hex::encode("presidente"), &hex::encode("tresorier"), 1);
        assert_eq!(s.verify(&forged, now), None);
        assert!(s.csrf_ok(&c, &s.csrf(&c)));
        assert!(!s.csrf_ok(&c, "00"));
    }

    #[test]
    fn five_failures_block_the_address_and_the_name() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(l.blocked(ip, "bureau").is_none());
            l.failed(ip, "bureau");
        }
        assert!(l.blocked(ip, "bureau").is_some());
        assert!(
            l.blocked("10.0.0.9".parse().unwrap(), "bureau").is_some(),
            "by name too"
        );
        assert!(l.blocked("10.0.0.9".parse().unwrap(), "other").is_none());
    }
}
