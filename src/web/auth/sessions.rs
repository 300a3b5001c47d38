//! Server-side sessions of the bureau's operators: the cookie's random id,
//! its SHA-256 in the database, the CSRF token bound to it.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{COOKIE, SESSION_HOURS, sha256_hex};
use crate::model::constant_time_eq;
use crate::store::sessions::{self as q, SessionRow};
use crate::store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

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
