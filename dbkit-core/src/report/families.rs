//! The report as metric families: the one list of names, help texts and
//! labels that both exporters (Prometheus text, the `metrics` facade) read,
//! so they can never disagree.

use crate::pool::BreakerState;

use super::Report;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// One metric: a name, its help, and one sample per label set.
pub(super) struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

pub(super) struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Statement shapes are labels; long ones are cut so a series name stays
/// readable (the `id` label tells shapes apart).
const SHAPE_LABEL_LEN: usize = 160;

pub(super) fn families(report: &Report) -> Vec<Family> {
    let mut out = Vec::new();
    let mut family = |name, help, kind, samples| {
        out.push(Family {
            name,
            help,
            kind,
            samples,
        })
    };
    use Kind::{Counter, Gauge};

    // One sample per cached function (only those using Redis if `l2_only`).
    let functions = |l2_only: bool, value: &dyn Fn(&crate::stats::CacheStats) -> f64| {
        report
            .caches
            .iter()
            .filter(|c| c.redis || !l2_only)
            .map(|c| Sample {
                labels: vec![("function", c.function.clone())],
                value: value(c),
            })
            .collect::<Vec<_>>()
    };
    let cache = |value: &dyn Fn(&crate::stats::CacheStats) -> f64| functions(false, value);
    family(
        "dbkit_cache_hits_total",
        "Cached calls answered from the cache.",
        Counter,
        cache(&|c| c.hits as f64),
    );
    family(
        "dbkit_cache_misses_total",
        "Cached calls that ran their query.",
        Counter,
        cache(&|c| c.misses as f64),
    );
    family(
        "dbkit_cache_stale_rejections_total",
        "Entries refused because a table they depend on was written.",
        Counter,
        cache(&|c| c.stale_rejections as f64),
    );
    family(
        "dbkit_cache_expired_total",
        "Entries refused because their TTL ran out.",
        Counter,
        cache(&|c| c.expired as f64),
    );
    family(
        "dbkit_cache_stores_total",
        "Query results stored.",
        Counter,
        cache(&|c| c.stores as f64),
    );
    family(
        "dbkit_cache_evictions_total",
        "Entries dropped to make room.",
        Counter,
        cache(&|c| c.evictions as f64),
    );
    family(
        "dbkit_cache_bypasses_total",
        "Calls that ran their query without using the cache.",
        Counter,
        cache(&|c| c.bypasses as f64),
    );
    family(
        "dbkit_cache_coalesced_total",
        "Calls that waited for an identical query already running.",
        Counter,
        cache(&|c| c.coalesced as f64),
    );
    let l2 =
        |value: &dyn Fn(&crate::stats::CacheStats) -> u64| functions(true, &|c| value(c) as f64);
    family(
        "dbkit_cache_l2_hits_total",
        "L1 misses answered by Redis.",
        Counter,
        l2(&|c| c.l2_hits),
    );
    family(
        "dbkit_cache_l2_misses_total",
        "L1 misses Redis had no value for.",
        Counter,
        l2(&|c| c.l2_misses),
    );
    family(
        "dbkit_cache_l2_stale_total",
        "Values in Redis refused because a table's generation moved or a write was in flight.",
        Counter,
        l2(&|c| c.l2_stale),
    );
    family(
        "dbkit_cache_l2_corrupt_total",
        "Values in Redis that did not decode, treated as misses.",
        Counter,
        l2(&|c| c.l2_corrupt),
    );
    family(
        "dbkit_cache_l2_errors_total",
        "L2 lookups and stores that fell back because Redis did not answer.",
        Counter,
        l2(&|c| c.l2_errors),
    );
    family(
        "dbkit_cache_l2_stores_total",
        "Results stored in Redis.",
        Counter,
        l2(&|c| c.l2_stores),
    );
    if let Some(redis) = &report.redis {
        let one = |value: f64| {
            vec![Sample {
                labels: vec![("redis", redis.url.clone())],
                value,
            }]
        };
        family(
            "dbkit_redis_bus_subscribed",
            "1 while the invalidation bus is subscribed; L1 is not served while it is 0.",
            Gauge,
            one(f64::from(u8::from(redis.bus_subscribed))),
        );
        family(
            "dbkit_redis_failures_total",
            "Redis commands that failed and fell back.",
            Counter,
            one(redis.failures as f64),
        );
        family(
            "dbkit_redis_short_circuited_total",
            "Redis calls not sent because the breaker was open.",
            Counter,
            one(redis.short_circuited as f64),
        );
        family(
            "dbkit_redis_invalidations_published_total",
            "Invalidation messages published.",
            Counter,
            one(redis.invalidations_published as f64),
        );
        family(
            "dbkit_redis_invalidations_received_total",
            "Invalidation messages from other processes applied.",
            Counter,
            one(redis.invalidations_received as f64),
        );
        family(
            "dbkit_redis_pending_invalidations",
            "Table invalidations that have not reached Redis yet.",
            Gauge,
            one(redis.pending_invalidations as f64),
        );
    }
    family(
        "dbkit_cache_entries",
        "Entries held now.",
        Gauge,
        cache(&|c| c.entries as f64),
    );
    family(
        "dbkit_cache_max_entries",
        "Most entries the function may hold.",
        Gauge,
        cache(&|c| c.max_entries as f64),
    );

    let table = |value: &dyn Fn(&crate::tables::TableStats) -> f64| {
        report
            .tables
            .iter()
            .map(|t| Sample {
                labels: vec![("table", t.table.clone())],
                value: value(t),
            })
            .collect::<Vec<_>>()
    };
    family(
        "dbkit_table_invalidations_total",
        "Committed writes and explicit invalidations of a table (`*`: every table).",
        Counter,
        table(&|t| t.invalidations as f64),
    );
    family(
        "dbkit_table_writes_in_flight",
        "Writes to a table started and not yet completed.",
        Gauge,
        table(&|t| t.writes_in_flight as f64),
    );

    let pool = |value: &dyn Fn(&crate::pool::PoolReport) -> f64| {
        report
            .pools
            .iter()
            .map(|p| Sample {
                labels: vec![("pool", p.name.clone())],
                value: value(p),
            })
            .collect::<Vec<_>>()
    };
    family(
        "dbkit_pool_max_connections",
        "Most connections the pool opens.",
        Gauge,
        pool(&|p| f64::from(p.max_size)),
    );
    let connections = report
        .pools
        .iter()
        .flat_map(|p| {
            [("idle", p.idle), ("in_use", p.in_use)].map(|(state, n)| Sample {
                labels: vec![("pool", p.name.clone()), ("state", state.to_owned())],
                value: f64::from(n),
            })
        })
        .collect();
    family(
        "dbkit_pool_connections",
        "Connections open now, idle or checked out.",
        Gauge,
        connections,
    );
    family(
        "dbkit_pool_peak_in_use",
        "Most connections checked out at once.",
        Gauge,
        pool(&|p| f64::from(p.peak_in_use)),
    );
    family(
        "dbkit_pool_waiters",
        "Checkouts waiting for a connection now.",
        Gauge,
        pool(&|p| f64::from(p.waiters)),
    );
    family(
        "dbkit_pool_checkouts_total",
        "Checkouts.",
        Counter,
        pool(&|p| p.checkouts as f64),
    );
    family(
        "dbkit_pool_waited_checkouts_total",
        "Checkouts that found no idle connection and waited.",
        Counter,
        pool(&|p| p.waited as f64),
    );
    family(
        "dbkit_pool_timeouts_total",
        "Checkouts that timed out.",
        Counter,
        pool(&|p| p.timeouts as f64),
    );
    family(
        "dbkit_pool_refused_total",
        "Checkouts refused by the open circuit breaker.",
        Counter,
        pool(&|p| p.refused_by_breaker as f64),
    );
    family(
        "dbkit_pool_nested_checkouts_total",
        "Checkouts by a thread already holding a connection of the pool.",
        Counter,
        pool(&|p| p.nested_checkouts as f64),
    );
    family(
        "dbkit_pool_leaks_total",
        "Sessions held past the leak threshold.",
        Counter,
        pool(&|p| p.leaks as f64),
    );
    family(
        "dbkit_pool_wait_mean_seconds",
        "Mean wait for a connection.",
        Gauge,
        pool(&|p| p.wait_mean_us as f64 / 1e6),
    );
    family(
        "dbkit_pool_wait_max_seconds",
        "Longest wait for a connection.",
        Gauge,
        pool(&|p| p.wait_max_us as f64 / 1e6),
    );
    family(
        "dbkit_pool_breaker_open",
        "1 while the circuit breaker refuses checkouts.",
        Gauge,
        pool(&|p| f64::from(u8::from(matches!(p.breaker, BreakerState::Open { .. })))),
    );
    family(
        "dbkit_pool_longest_session_seconds",
        "How long the longest open session has held its connection.",
        Gauge,
        pool(&|p| p.sessions.iter().map(|s| s.held_ms).max().unwrap_or(0) as f64 / 1e3),
    );

    let query = |value: &dyn Fn(&crate::queries::QueryStats) -> f64| {
        report
            .queries
            .iter()
            .map(|q| Sample {
                labels: vec![("id", q.id.clone()), ("shape", cut(&q.shape))],
                value: value(q),
            })
            .collect::<Vec<_>>()
    };
    family(
        "dbkit_query_calls_total",
        "Executions of a statement shape.",
        Counter,
        query(&|q| q.calls as f64),
    );
    family(
        "dbkit_query_errors_total",
        "Executions of a statement shape that failed.",
        Counter,
        query(&|q| q.errors as f64),
    );
    family(
        "dbkit_query_seconds_total",
        "Time spent executing a statement shape.",
        Counter,
        query(&|q| q.total_us as f64 / 1e6),
    );
    family(
        "dbkit_query_max_seconds",
        "Longest execution of a statement shape.",
        Gauge,
        query(&|q| q.max_us as f64 / 1e6),
    );
    let single = |value: f64| {
        vec![Sample {
            labels: Vec::new(),
            value,
        }]
    };
    family(
        "dbkit_query_shapes_dropped_total",
        "Statement shapes dropped to stay within the bound.",
        Counter,
        single(report.query_shapes_dropped as f64),
    );
    family(
        "dbkit_slow_queries_total",
        "Statements that took at least the slow threshold.",
        Counter,
        single(report.slow_queries_total as f64),
    );
    family(
        "dbkit_n_plus_one_total",
        "SELECT shapes run more than the N+1 threshold in one session.",
        Counter,
        single(report.n_plus_one_total as f64),
    );
    family(
        "dbkit_warnings",
        "Warnings in the report now.",
        Gauge,
        single(report.warnings.len() as f64),
    );
    out
}

fn cut(shape: &str) -> String {
    if shape.len() <= SHAPE_LABEL_LEN {
        return shape.to_owned();
    }
    let mut end = SHAPE_LABEL_LEN;
    while !shape.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &shape[..end])
}
