//! Personal response links: `{public_url}/r/{token}` where the token is
//! `EVENT.N.SIG`: the event id, the recipient's number within the event,
//! and an HMAC-SHA256 (truncated to 128 bits), under a key generated at
//! first start, of both and of the event's own random secret. No name or
//! address is in the link; a forged or altered token fails verification.
//!
//! The event's secret is what makes a link outlive a database restore
//! safely: restored from an older copy, the database hands out the numbers
//! of the events it lost again, but a new event draws a new secret, so a
//! link minted for a lost event does not open the new one with its number
//! (SPEC §7, Identity). Events declared before links carried a secret have
//! an empty one and keep the links they were sent.

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

/// A token split into its parts, not yet checked: checking needs the
/// event's secret, read from the database with the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkClaim {
    pub event_id: i64,
    pub seq: i64,
    sig: Vec<u8>,
}

/// A new event's link secret: 128 random bits, hex.
pub fn new_event_secret() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    hex::encode(b)
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> Self {
        LinkSigner { key }
    }

    fn mac(&self, event_id: i64, seq: i64, event_secret: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        if event_secret.is_empty() {
            mac.update(format!("vigie-response:{event_id}.{seq}").as_bytes());
        } else {
            mac.update(format!("vigie-response:{event_id}.{seq}.{event_secret}").as_bytes());
        }
        mac
    }

    /// The token of recipient `seq` of the event `event_id`, whose secret is
    /// `event_secret`.
    pub fn token(&self, event_id: i64, seq: i64, event_secret: &str) -> String {
        let sig = self
            .mac(event_id, seq, event_secret)
            .finalize()
            .into_bytes();
        format!("{event_id}.{seq}.{}", hex::encode(&sig[..16]))
    }

    /// The parts of a well-formed token (not yet verified).
    pub fn parse(&self, token: &str) -> Option<LinkClaim> {
        let mut parts = token.splitn(3, '.');
        let event_id: i64 = parts.next()?.parse().ok()?;
        let seq: i64 = parts.next()?.parse().ok()?;
        let sig = hex::decode(parts.next()?).ok()?;
        (sig.len() == 16).then_some(LinkClaim { event_id, seq, sig })
    }

    fn personal_mac(&self, professional: &str) -> HmacSha256 {
        self.domain_mac("vigie-personal", professional)
    }

    fn calendar_mac(&self, professional: &str) -> HmacSha256 {
        self.domain_mac("vigie-personal-calendar", professional)
    }

    fn domain_mac(&self, domain: &str, professional: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{domain}:{professional}").as_bytes());
        mac
    }

    /// The token of a professional's read-only calendar `/c/{token}.ics`
    /// (SPEC §15): like [`Self::personal_token`] under another domain
    /// string, so the calendar's address opens no page and takes no shift.
    pub fn calendar_token(&self, professional: &str) -> String {
        let sig = self.calendar_mac(professional).finalize().into_bytes();
        hex::encode(&sig[..16])
    }

    /// Whether `token` is `professional`'s calendar token (constant time).
    pub fn calendar_matches(&self, professional: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(sig) if sig.len() == 16 => self
                .calendar_mac(professional)
                .verify_truncated_left(&sig)
                .is_ok(),
            _ => false,
        }
    }

    /// The token of a professional's personal page `/g/{token}` (SPEC
    /// §15): 128 bits of an HMAC of their id under the link key, in hex;
    /// no name in it. The same for as long as the key and the id last.
    pub fn personal_token(&self, professional: &str) -> String {
        let sig = self.personal_mac(professional).finalize().into_bytes();
        hex::encode(&sig[..16])
    }

    /// Whether `token` is `professional`'s personal token (constant time).
    pub fn personal_matches(&self, professional: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(sig) if sig.len() == 16 => self
                .personal_mac(professional)
                .verify_truncated_left(&sig)
                .is_ok(),
            _ => false,
        }
    }

    /// Whether the claim was signed by this key for the event whose secret
    /// is `event_secret` (constant time).
    pub fn verify(&self, claim: &LinkClaim, event_secret: &str) -> bool {
        self.mac(claim.event_id, claim.seq, event_secret)
            .verify_truncated_left(&claim.sig)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genuine_tokens_verify_and_forged_ones_do_not() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let t = s.token(12, 3, "s1");
        let claim = s.parse(&t).unwrap();
        assert_eq!((claim.event_id, claim.seq), (12, 3));
        assert!(s.verify(&claim, "s1"));
        // Same signature, another recipient: refused.
        let forged = s.parse(&t.replacen("12.3.", "12.4.", 1)).unwrap();
        assert!(!s.verify(&forged, "s1"));
        // Another key: refused.
        let other = LinkSigner::new(b"another key".to_vec());
        assert!(!other.verify(&claim, "s1"));
        assert_eq!(s.parse("12.3"), None);
        assert_eq!(s.parse("12.3.zz"), None);
    }

    #[test]
    fn a_link_does_not_open_another_event_with_the_same_number() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let lost = s.token(7, 1, &new_event_secret());
        let claim = s.parse(&lost).unwrap();
        assert!(!s.verify(&claim, &new_event_secret()));
        assert!(!s.verify(&claim, ""));
    }

    #[test]
    fn personal_tokens_belong_to_one_professional_and_one_key() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let t = s.personal_token("cmartin");
        assert_eq!(t.len(), 32);
        assert!(!t.contains("cmartin"));
        assert!(s.personal_matches("cmartin", &t));
        assert!(!s.personal_matches("pfuchs", &t));
        assert!(!LinkSigner::new(b"k".to_vec()).personal_matches("cmartin", &t));
        assert!(!s.personal_matches("cmartin", "zz"));
        // A response token of the same key is no personal token.
        assert!(!s.personal_matches("cmartin", &s.token(1, 1, "")));
        // The calendar's token is another one, and opens no page.
        let c = s.calendar_token("cmartin");
        assert_ne!(c, t);
        assert!(s.calendar_matches("cmartin", &c));
        assert!(!s.personal_matches("cmartin", &c));
        assert!(!s.calendar_matches("cmartin", &t));
    }

    #[test]
    fn links_of_events_without_a_secret_keep_their_old_form() {
        let s = LinkSigner::new(b"k".to_vec());
        let t = s.token(5, 2, "");
        assert!(s.verify(&s.parse(&t).unwrap(), ""));
        assert!(!s.verify(&s.parse(&t).unwrap(), "x"));
    }
}
