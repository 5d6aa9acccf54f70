//! What looks wrong now, in words a person acts on.

use crate::pool::{BreakerState, PoolReport};

pub(super) fn warnings(
    pools: &[PoolReport],
    undeclared: &[(String, String)],
    shapes_dropped: u64,
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
    out
}
