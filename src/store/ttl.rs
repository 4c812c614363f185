//! How long stored state lives: the TTL bounds every key is given and
//! the TTLs of a session, from its idle timeout and its absolute end,
//! read off the system clock.
//!
//! Owns: [`MAX_TTL`] and [`clamp_ttl`] (no TTL is zero or overflows a
//! deadline), [`ttl_ms`] for Redis, [`unix_now_ms`], and the session TTLs
//! both backends set ([`new_session_ttls`], [`refreshed_session_ttl`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::SessionRecord;

/// Longest TTL the store will set (ten years); larger requests are capped so
/// that deadline arithmetic cannot overflow.
pub(super) const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `d` capped to [`MAX_TTL`] and at least one millisecond (a zero TTL would
/// be rejected by Redis, and would make a key that never existed).
pub(super) fn clamp_ttl(d: Duration) -> Duration {
    d.clamp(Duration::from_millis(1), MAX_TTL)
}

/// [`clamp_ttl`] in whole milliseconds, for Redis `PX`/`PEXPIRE`.
pub(super) fn ttl_ms(d: Duration) -> u64 {
    u64::try_from(clamp_ttl(d).as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is
/// before 1970).
pub(super) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// TTLs for storing a new session at `now_ms`: `(session_ttl, lifetime)`,
/// where `session_ttl = min(idle, lifetime)` and `lifetime` is the time left
/// until `expires_at` (what the per-address index must cover). `None` if the
/// session has already ended.
pub(super) fn new_session_ttls(
    record: &SessionRecord,
    idle: Duration,
    now_ms: u64,
) -> Option<(Duration, Duration)> {
    let end_ms = record.expires_at.saturating_mul(1000);
    let left_ms = end_ms.checked_sub(now_ms).filter(|left| *left > 0)?;
    let lifetime = Duration::from_millis(left_ms);
    Some((clamp_ttl(idle.min(lifetime)), clamp_ttl(lifetime)))
}

/// The refreshed TTL of a session read at `now` (unix seconds), or `None` if
/// the session has reached its absolute end.
pub(super) fn refreshed_session_ttl(
    record: &SessionRecord,
    idle: Duration,
    now: u64,
) -> Option<Duration> {
    let left = record
        .expires_at
        .checked_sub(now)
        .filter(|left| *left > 0)?;
    Some(clamp_ttl(idle.min(Duration::from_secs(left))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: u64) -> SessionRecord {
        SessionRecord {
            email: "a@example.com".to_owned(),
            created_at: 0,
            expires_at,
            amr: None,
        }
    }

    #[test]
    fn new_session_ttl_is_idle_capped_by_lifetime() {
        let now_ms = 1_000_000;
        assert_eq!(
            new_session_ttls(&record(1_100), Duration::from_secs(30), now_ms),
            Some((Duration::from_secs(30), Duration::from_secs(100)))
        );
        assert_eq!(
            new_session_ttls(&record(1_010), Duration::from_secs(30), now_ms),
            Some((Duration::from_secs(10), Duration::from_secs(10)))
        );
        assert_eq!(
            new_session_ttls(&record(1_000), Duration::from_secs(30), now_ms),
            None
        );
        assert_eq!(
            new_session_ttls(&record(10), Duration::from_secs(30), now_ms),
            None
        );
    }

    #[test]
    fn refreshed_ttl_stops_at_absolute_end() {
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 50),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 90),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 100),
            None
        );
        assert_eq!(
            refreshed_session_ttl(&record(100), Duration::from_secs(30), 200),
            None
        );
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_ms(Duration::MAX), ttl_ms(MAX_TTL));
    }
}
