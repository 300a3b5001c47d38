//! Personal response links: `{public_url}/r/{token}` where the token is
//! `EVENT.N.SIG`: the event id, the recipient's number within the event,
//! and an HMAC-SHA256 (truncated to 128 bits) of both under a key generated
//! at first start. No name or address is in the link; a forged or altered
//! token fails verification.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(<secret>)")
    }
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> Self {
        LinkSigner { key }
    }

    fn mac(&self, event_id: i64, seq: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("vigie-response:{event_id}.{seq}").as_bytes());
        mac
    }

    pub fn token(&self, event_id: i64, seq: i64) -> String {
        let sig = self.mac(event_id, seq).finalize().into_bytes();
        format!("{event_id}.{seq}.{}", hex::encode(&sig[..16]))
    }

    /// (event id, recipient number) of a genuine token.
    pub fn verify(&self, token: &str) -> Option<(i64, i64)> {
        let mut parts = token.splitn(3, '.');
        let event_id: i64 = parts.next()?.parse().ok()?;
        let seq: i64 = parts.next()?.parse().ok()?;
        let sig = hex::decode(parts.next()?).ok()?;
        if sig.len() != 16 {
            return None;
        }
        self.mac(event_id, seq)
            .verify_truncated_left(&sig)
            .ok()
            .map(|_| (event_id, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genuine_tokens_verify_and_forged_ones_do_not() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let t = s.token(12, 3);
        assert_eq!(s.verify(&t), Some((12, 3)));
        // Same signature, another recipient: refused.
        let forged = t.replacen("12.3.", "12.4.", 1);
        assert_eq!(s.verify(&forged), None);
        // Another key: refused.
        let other = LinkSigner::new(b"another key".to_vec());
        assert_eq!(other.verify(&t), None);
        assert_eq!(s.verify("12.3"), None);
        assert_eq!(s.verify("12.3.zz"), None);
    }
}
