//! Comparing secrets (API tokens' hashes, CSRF tokens, the generated
//! operator password, password hashes' outputs): the one comparison the
//! crate uses for them, in constant time.

use subtle::ConstantTimeEq;

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only, never on where they differ. (`subtle` keeps the optimiser from
/// turning the comparison back into an early exit, which a hand-written
/// fold does not guarantee.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_same_length_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
    }
}
