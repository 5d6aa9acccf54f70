//! What looks wrong now, in words a person acts on.

use crate::pool::{BreakerState, PoolReport};
use crate::remote::RedisReport;
use crate::stats::CacheStats;

pub(super) fn warnings(
    pools: &[PoolReport],
    caches: &[CacheStats],
    undeclared: &[(String, String)],
    shapes_dropped: u64,
    redis: Option<&RedisReport>,
) -> Vec<String> {
    let mut out = Vec::new();
    for pool in pools {
        if let BreakerState::Open {
            failures,
            last_error,
            ..
        } = &pool.breaker
        {
            out.push(format!(
                "pool `{}`: the circuit breaker is open after {failures} failed connection attempts \
                 (last error: {last_error}); checkouts fail at once until a probe succeeds",
                pool.name
            ));
        }
        let Some(threshold_ms) = pool.leak_threshold_ms else {
            continue;
        };
        for session in pool.sessions.iter().filter(|s| s.held_ms >= threshold_ms) {
            out.push(format!(
                "pool `{}`: {session}, past the leak threshold of {threshold_ms} ms",
                pool.name
            ));
        }
    }
    for cache in caches.iter().filter(|c| c.untracked_connection) {
        out.push(format!(
            "`{}` was called with a connection dbkit does not track: it cannot tell whether that \
             connection is inside a transaction, so what it reads there is never stored; check \
             connections out of a `dbkit::Pool`, call `dbkit::instrument(&mut conn)`, or give \
             your r2d2 pool `dbkit::InstrumentConnections`",
            cache.function
        ));
    }
    for (function, table) in undeclared {
        out.push(format!(
            "`{function}` reads table `{table}` but does not declare it: writes to `{table}` \
             do not invalidate its cached results; add it to `tables`"
        ));
    }
    if shapes_dropped > 0 {
        out.push(format!(
            "query statistics dropped {shapes_dropped} least-called statement shapes to stay \
             within `max_shapes`; raise it to keep them all"
        ));
    }
    if let Some(redis) = redis {
        if !redis.bus_subscribed {
            out.push(format!(
                "Redis `{}`: the invalidation bus is not subscribed; L1 entries are not served \
                 until it is back (writes of other processes could go unseen)",
                redis.url
            ));
        }
        if let BreakerState::Open { last_error, .. } = &redis.breaker {
            out.push(format!(
                "Redis `{}`: the circuit breaker is open (last error: {last_error}); calls use \
                 L1 and the database only",
                redis.url
            ));
        }
        if redis.pending_invalidations > 0 {
            out.push(format!(
                "Redis `{}`: {} table invalidations have not reached Redis yet; other processes \
                 may serve those tables stale from their L2 until it answers",
                redis.url, redis.pending_invalidations
            ));
        }
    }
    out
}
