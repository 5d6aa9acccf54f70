//! Pool sizing in words, from the figures a pool keeps: too small when
//! checkouts wait or time out, too large when most connections were never
//! used under real traffic.

use serde::Serialize;

use super::PoolReport;

/// What a pool's figures say about its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Checkouts wait for connections, or time out.
    TooSmall,
    /// Connections were opened that the traffic never needed.
    TooLarge,
}

/// One piece of advice about a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Advice {
    /// The pool's name.
    pub pool: String,
    /// Too small or too large.
    pub verdict: Verdict,
    /// What the figures show and what to change, in words.
    pub message: String,
}

/// Checkouts before the figures mean anything: a pool that has served
/// ten requests is neither too small nor too large yet.
const MIN_CHECKOUTS_TO_JUDGE_WAITS: u64 = 100;
const MIN_CHECKOUTS_TO_JUDGE_SIZE: u64 = 1000;

/// The advice the figures of `pool` support; empty when its size looks right.
pub fn advise(pool: &PoolReport) -> Vec<Advice> {
    let mut advice = Vec::new();
    let mut say = |verdict, message: String| {
        advice.push(Advice {
            pool: pool.name.clone(),
            verdict,
            message,
        })
    };
    if pool.timeouts > 0 {
        say(
            Verdict::TooSmall,
            format!(
                "{} checkouts timed out waiting for one of the {} connections: raise `max_size`, \
                 or find what holds connections long (see the sessions and slow queries)",
                pool.timeouts, pool.max_size
            ),
        );
    } else if pool.checkouts >= MIN_CHECKOUTS_TO_JUDGE_WAITS
        && pool.waited.saturating_mul(10) >= pool.checkouts
    {
        say(
            Verdict::TooSmall,
            format!(
                "{:.0}% of {} checkouts found all {} connections busy and waited \
                 (mean wait {:.1} ms, longest {:.1} ms): raise `max_size`",
                pool.waited as f64 * 100.0 / pool.checkouts as f64,
                pool.checkouts,
                pool.max_size,
                pool.wait_mean_us as f64 / 1e3,
                pool.wait_max_us as f64 / 1e3,
            ),
        );
    }
    if pool.checkouts >= MIN_CHECKOUTS_TO_JUDGE_SIZE
        && pool.waited == 0
        && pool.timeouts == 0
        && pool.max_size > 2
        && pool.peak_in_use.saturating_mul(2) <= pool.max_size
    {
        let enough = (pool.peak_in_use + 1).max(2);
        say(
            Verdict::TooLarge,
            format!(
                "at most {} of {} connections were ever in use over {} checkouts: \
                 `max_size = {enough}` would do, and each connection it does not open \
                 saves memory on the database server",
                pool.peak_in_use, pool.max_size, pool.checkouts
            ),
        );
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::BreakerState;

    fn pool(max_size: u32, checkouts: u64, waited: u64, timeouts: u64, peak: u32) -> PoolReport {
        PoolReport {
            name: "app".into(),
            max_size,
            min_idle: max_size,
            connections: max_size,
            idle: max_size,
            in_use: 0,
            peak_in_use: peak,
            waiters: 0,
            checkouts,
            waited,
            timeouts,
            refused_by_breaker: 0,
            nested_checkouts: 0,
            leaks: 0,
            wait_mean_us: 2500,
            wait_max_us: 40_000,
            leak_threshold_ms: None,
            breaker: BreakerState::Closed { failures: 0 },
            sessions: Vec::new(),
        }
    }

    #[test]
    fn timeouts_and_frequent_waits_mean_too_small() {
        let timed_out = advise(&pool(4, 50, 10, 3, 4));
        assert_eq!(timed_out.len(), 1);
        assert_eq!(timed_out[0].verdict, Verdict::TooSmall);
        assert!(timed_out[0].message.contains("3 checkouts timed out"));

        let waits = advise(&pool(4, 1000, 200, 0, 4));
        assert_eq!(waits[0].verdict, Verdict::TooSmall);
        assert!(
            waits[0].message.contains("20% of 1000 checkouts"),
            "{}",
            waits[0].message
        );
    }

    #[test]
    fn unused_connections_under_traffic_mean_too_large() {
        let idle = advise(&pool(20, 5000, 0, 0, 3));
        assert_eq!(idle.len(), 1);
        assert_eq!(idle[0].verdict, Verdict::TooLarge);
        assert!(
            idle[0].message.contains("`max_size = 4`"),
            "{}",
            idle[0].message
        );
    }

    #[test]
    fn a_right_sized_or_barely_used_pool_gets_no_advice() {
        assert!(advise(&pool(10, 5000, 20, 0, 8)).is_empty());
        assert!(
            advise(&pool(20, 50, 0, 0, 1)).is_empty(),
            "too few checkouts to judge"
        );
    }
}
