//! Exponential backoff without jitter (Java's `ExponentialBackoff` with jitter 0): one
//! formula for every wait after a failure, `retry.backoff.ms` up to `retry.backoff.max.ms`
//! for batches, metadata and producer ids, `reconnect.backoff.ms` up to
//! `reconnect.backoff.max.ms` for connections.
//!
//! A leaf: it depends on nothing else in the crate.

/// The wait after `attempts` failed attempts: none before the first failure, then
/// `base_ms * 2^(attempts - 1)`, saturating, capped at `max_ms` (at `base_ms` when `max_ms`
/// is smaller: the backoff never shrinks below its base).
#[inline]
pub(crate) const fn exponential_backoff(attempts: u32, base_ms: u64, max_ms: u64) -> u64 {
    if attempts == 0 {
        return 0;
    }
    // 2^62 times any base of at least 2 already saturates.
    let shift = if attempts - 1 > 62 { 62 } else { attempts - 1 };
    let wait = base_ms.saturating_mul(1u64 << shift);
    let cap = if max_ms > base_ms { max_ms } else { base_ms };
    if wait < cap { wait } else { cap }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_max() {
        assert_eq!(exponential_backoff(0, 100, 1000), 0);
        assert_eq!(exponential_backoff(1, 100, 1000), 100);
        assert_eq!(exponential_backoff(2, 100, 1000), 200);
        assert_eq!(exponential_backoff(4, 100, 1000), 800);
        assert_eq!(exponential_backoff(5, 100, 1000), 1000);
        assert_eq!(exponential_backoff(u32::MAX, 100, 1000), 1000);
        // A maximum below the base is the base.
        assert_eq!(exponential_backoff(3, 100, 10), 100);
    }

    /// The two formulas this one replaced, verbatim: `metadata::exponential_backoff` (also
    /// the sender's reconnect and producer-id backoff) and `ProducerBatch::retry_backoff`
    /// (which waits `base` for `attempts <= 1`).
    fn old_exponential_backoff(attempts: u32, base: u64, max: u64) -> u64 {
        if attempts == 0 {
            return 0;
        }
        let shift = (attempts - 1).min(62);
        base.saturating_mul(1u64 << shift).min(max.max(base))
    }

    const fn old_retry_backoff(attempts: u32, base: u64, max: u64) -> u64 {
        if attempts <= 1 {
            return base;
        }
        let shift = if attempts - 1 > 62 { 62 } else { attempts - 1 };
        let b = base.saturating_mul(1u64 << shift);
        let cap = if max > base { max } else { base };
        if b < cap { b } else { cap }
    }

    #[test]
    fn same_results_as_the_formulas_it_replaced() {
        let values = [
            0,
            1,
            2,
            3,
            50,
            100,
            250,
            1_000,
            32_000,
            1 << 40,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ];
        let attempts = (0..=70).chain([100, 1_000, u32::MAX - 1, u32::MAX]);
        for n in attempts {
            for base in values {
                for max in values {
                    assert_eq!(
                        exponential_backoff(n, base, max),
                        old_exponential_backoff(n, base, max),
                        "exponential_backoff({n}, {base}, {max})"
                    );
                    // The batch's caller maps `attempts == 0` to 1.
                    let batch_attempts = if n == 0 { 1 } else { n };
                    assert_eq!(
                        exponential_backoff(batch_attempts, base, max),
                        old_retry_backoff(n, base, max),
                        "retry_backoff({n}, {base}, {max})"
                    );
                }
            }
        }
    }
}
