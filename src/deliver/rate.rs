//! A channel's rate limit (GCRA with a small burst).

use std::time::{Duration, Instant};

/// A channel's rate limit: `per_second` sends per second on average, in
/// bursts of at most `per_second / 100` (10 ms worth; 1 below 200 per
/// second). Spacing every send exactly would put a sub-millisecond wait
/// before each one, which tokio's millisecond timer rounds up: with 8
/// slots and 10 000 per second, sends came at 4 000 per second.
pub struct RateLimit {
    /// 1 / per_second.
    spacing: Duration,
    /// How far ahead of the average rate a send may go.
    tolerance: Duration,
    /// The theoretical instant of the next send (GCRA).
    next: std::sync::Mutex<Instant>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Option<RateLimit> {
        if per_second == 0 {
            return None;
        }
        let spacing = Duration::from_secs_f64(1.0 / f64::from(per_second));
        let burst = (per_second / 100).max(1);
        Some(RateLimit {
            spacing,
            tolerance: spacing * (burst - 1),
            next: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Takes the place of one send at `now`: `None` to send at once, else
    /// the instant to wait for.
    pub fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = (*next).max(now);
        *next = at + self.spacing;
        let ready = at.checked_sub(self.tolerance).unwrap_or(at);
        (ready > now).then_some(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_allows_short_bursts_and_keeps_the_average() {
        // 50 per second: no burst, one send every 20 ms.
        let r = RateLimit::new(50).unwrap();
        let t0 = Instant::now();
        assert_eq!(r.reserve(t0), None);
        assert_eq!(r.reserve(t0), Some(t0 + Duration::from_millis(20)));
        assert_eq!(r.reserve(t0), Some(t0 + Duration::from_millis(40)));
        // 10 000 per second: 100 at once, then at the average rate.
        let r = RateLimit::new(10_000).unwrap();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(r.reserve(t0), None);
        }
        let wait = r.reserve(t0).expect("the 101st waits");
        assert!(wait - t0 >= Duration::from_micros(99) && wait - t0 <= Duration::from_micros(101));
        // Over one second, 10 000 sends plus the burst at most.
        let r = RateLimit::new(10_000).unwrap();
        let t0 = Instant::now();
        let mut within = 0;
        while r
            .reserve(t0)
            .is_none_or(|at| at <= t0 + Duration::from_secs(1))
        {
            within += 1;
        }
        assert!((10_000..=10_101).contains(&within), "{within}");
        assert!(RateLimit::new(0).is_none());
    }
}
