//! The retry policy: when a failed send is tried again (capped
//! exponential backoff with jitter) and when it fails for good (a
//! permanent error, or 24 hours after the delivery was queued).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::channel::SendError;

/// The first retry waits this long; each next one doubles, up to [`BACKOFF_CAP`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
pub const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// A delivery still failing this long after it was queued fails for good.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before retry number `attempts` (1 = first retry), with ±20 %
/// jitter so that a recovering server is not hit by every retry at once.
pub fn backoff(attempts: u32, rng: &mut impl Rng) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_CAP);
    let jitter = rng.random_range(0.8..1.2);
    capped.mul_f64(jitter)
}

/// When to retry a failed send, or `None` to fail it for good.
pub(super) fn retry_at(
    e: &SendError,
    attempts: u32,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !e.retryable {
        return None;
    }
    let wait = backoff(attempts, &mut rand::rng());
    let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
    let limit = created + chrono::Duration::from_std(GIVE_UP_AFTER).unwrap_or_default();
    (at <= limit).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_ten_seconds_and_is_capped_at_fifteen_minutes() {
        let mut rng = rand::rng();
        for _ in 0..100 {
            let first = backoff(1, &mut rng);
            assert!(first >= Duration::from_secs(8) && first <= Duration::from_secs(12));
            let second = backoff(2, &mut rng);
            assert!(second >= Duration::from_secs(16) && second <= Duration::from_secs(24));
            let late = backoff(30, &mut rng);
            assert!(late <= BACKOFF_CAP.mul_f64(1.2) && late >= BACKOFF_CAP.mul_f64(0.8));
        }
    }

    #[test]
    fn permanent_failures_and_old_deliveries_are_not_retried() {
        let now = Utc::now();
        let transient = SendError::transient("connection refused");
        let permanent = SendError::permanent("550 no such user");
        assert!(retry_at(&transient, 1, now, now).is_some());
        assert!(retry_at(&permanent, 1, now, now).is_none());
        let old = now - chrono::Duration::hours(24);
        assert!(retry_at(&transient, 40, old, now).is_none());
    }
}
