//! The one clock every TTL is measured on.
//!
//! A cache hit reads it, so it must cost next to nothing: on Linux it is
//! `CLOCK_MONOTONIC_COARSE`, answered by the vDSO from a value the kernel
//! already keeps (a few nanoseconds, resolution one scheduler tick, 1–4 ms).
//! TTLs are seconds long, so a tick of slack is irrelevant.
//!
//! Tests move time forward with [`advance`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Skew added by [`advance`]; zero in production, read with one relaxed load.
static SKEW_MS: AtomicU64 = AtomicU64::new(0);

/// Milliseconds on the monotonic clock TTLs are measured on.
#[inline]
pub fn now_ms() -> u64 {
    monotonic_ms().wrapping_add(SKEW_MS.load(Ordering::Relaxed))
}

/// Moves the TTL clock of the whole process forward by `by`.
///
/// Meant for tests that check expiry without sleeping. It affects every cache
/// in the process, so keep such tests in a test binary of their own.
///
/// ```
/// let before = dbkit_core::time::now_ms();
/// dbkit_core::time::advance(std::time::Duration::from_secs(301));
/// assert!(dbkit_core::time::now_ms() >= before + 301_000);
/// ```
pub fn advance(by: Duration) {
    let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX / 2);
    SKEW_MS.fetch_add(ms, Ordering::Relaxed);
}

/// Milliseconds on the monotonic clock, without the test skew: for
/// durations that are not TTLs (how long a session has been held).
/// Milliseconds since the Unix epoch, moved by [`advance`] like
/// [`now_ms`]: the clock expiry times shared between processes (in Redis)
/// are written in.
pub fn wall_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis())
        .unwrap_or(u64::MAX / 2)
        .wrapping_add(SKEW_MS.load(Ordering::Relaxed))
}

#[cfg(target_os = "linux")]
#[inline]
pub(crate) fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists
    // on every Linux since 2.6.32 and clock_gettime writes only through `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return portable_ms();
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000)
}

#[cfg(not(target_os = "linux"))]
#[inline]
pub(crate) fn monotonic_ms() -> u64 {
    portable_ms()
}

#[cfg_attr(target_os = "linux", cold)]
fn portable_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    // Offset by a day so this clock never reads below a coarse reading taken
    // earlier in the same process (clock_gettime failing is theoretical).
    let elapsed = START.get_or_init(Instant::now).elapsed();
    86_400_000 + u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_advances_with_skew() {
        let a = now_ms();
        let b = now_ms();
        assert!(b >= a);
        advance(Duration::from_secs(10));
        assert!(now_ms() >= a + 10_000);
    }
}
