//! When a node renews its certificate. Pure functions over Unix
//! milliseconds so they are testable without a clock.
//!
//! swarmkit renews at a random instant between 50 % and 80 % of the
//! certificate's lifetime, so that the nodes of a cluster joined together do
//! not all hit the CA at once. shoal does the same: the node agent schedules
//! its renewal at [`renewal_at_ms`] with a random draw, and [`renewal_due`]
//! (the 50 % mark) is the earliest point at which a renewal is legitimate —
//! what a node checks after a restart, when the instant it had drawn is lost,
//! and what the CA may check to refuse renewals that come too early.

use std::time::{SystemTime, UNIX_EPOCH};

/// Whether a certificate valid from `not_before_ms` to `not_after_ms`
/// (Unix ms) should be renewed at `now_ms`: true once half of its lifetime
/// has passed, and always for an empty or inverted validity period.
#[must_use]
pub fn renewal_due(not_before_ms: u64, not_after_ms: u64, now_ms: u64) -> bool {
    if not_after_ms <= not_before_ms {
        return true;
    }
    let half = (not_after_ms - not_before_ms) / 2;
    now_ms >= not_before_ms.saturating_add(half)
}

/// The instant (Unix ms) at which to renew a certificate valid from
/// `not_before_ms` to `not_after_ms`: `not_before + lifetime × (0.5 + 0.3 ×
/// random / 2^32)`, i.e. uniformly in [50 %, 80 %) of the lifetime when
/// `random` is a uniform `u32` (e.g. from `getrandom`). `random = 0` gives
/// the 50 % mark, `u32::MAX` just under 80 %. An empty or inverted period
/// gives `not_before_ms`.
#[must_use]
pub fn renewal_at_ms(not_before_ms: u64, not_after_ms: u64, random: u32) -> u64 {
    let lifetime = u128::from(not_after_ms.saturating_sub(not_before_ms));
    let half = lifetime / 2;
    // 30 % of the lifetime, scaled by random / 2^32.
    let jitter = (lifetime * 3 / 10 * u128::from(random)) >> 32;
    let offset = u64::try_from(half + jitter).unwrap_or(u64::MAX);
    not_before_ms.saturating_add(offset)
}

/// The current time, Unix milliseconds (0 if the clock is before 1970,
/// `u64::MAX` past the year 584 million).
#[must_use]
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;

    #[test]
    fn due_at_half_life() {
        let (start, end) = (1_000 * DAY, 1_090 * DAY);
        assert!(!renewal_due(start, end, start));
        assert!(!renewal_due(start, end, start + 45 * DAY - 1));
        assert!(renewal_due(start, end, start + 45 * DAY));
        assert!(renewal_due(start, end, end));
        assert!(renewal_due(start, end, end + DAY));
        assert!(renewal_due(start, start, start - 1));
        assert!(renewal_due(end, start, 0));
    }

    #[test]
    fn jittered_instant_stays_between_50_and_80_percent() {
        let (start, end) = (1_000 * DAY, 1_090 * DAY);
        assert_eq!(renewal_at_ms(start, end, 0), start + 45 * DAY);
        let latest = renewal_at_ms(start, end, u32::MAX);
        assert!(latest < start + 72 * DAY && latest > start + 72 * DAY - 1_000);
        assert_eq!(
            renewal_at_ms(start, end, 1 << 31),
            start + 45 * DAY + 27 * DAY / 2
        );
        for r in [1, 12_345, 1 << 20, u32::MAX / 3, u32::MAX - 1] {
            let at = renewal_at_ms(start, end, r);
            assert!((start + 45 * DAY..start + 72 * DAY).contains(&at));
            assert!(renewal_due(start, end, at));
        }
        assert_eq!(renewal_at_ms(end, start, 7), end);
        assert_eq!(renewal_at_ms(0, u64::MAX, u32::MAX) / (u64::MAX / 10), 7);
    }

    #[test]
    fn clock_reads_after_2020() {
        assert!(now_unix_ms() > 1_577_836_800_000);
    }
}
