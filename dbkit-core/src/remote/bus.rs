//! The invalidation bus: one thread per tier, subscribed to `P:invalidate`,
//! bumping the local clock for every table another process wrote.
//!
//! While it is not subscribed, the tier holds every table (no L1 entry is
//! served or stored); once subscribed again it first publishes what this
//! process could not, then lets L1 serve entries stored from then on.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::clock;
use super::tier::Tier;
use crate::tables;

/// How often the thread wakes to check it should stop.
const POLL: Duration = Duration::from_millis(100);
/// How long the subscription may stay silent before a PING checks it.
const PING_AFTER: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);

pub(crate) fn spawn(tier: Arc<Tier>) -> Option<JoinHandle<()>> {
    let thread = std::thread::Builder::new()
        .name("dbkit-redis-bus".into())
        .spawn(move || run(&tier));
    match thread {
        Ok(handle) => Some(handle),
        Err(e) => {
            // No thread, no bus: L1 stays held, L2 still works.
            tracing::error!("cannot start the Redis invalidation bus thread: {e}; L1 entries will not be served");
            None
        }
    }
}

fn run(tier: &Tier) {
    let mut retry = FIRST_RETRY;
    let mut ever = false;
    while !tier.stopping.load(SeqCst) {
        match subscribe(tier, &mut ever) {
            Ok(()) => retry = FIRST_RETRY,
            Err(e) => {
                tier.client.throttle.warn("bus", |suppressed| {
                    tracing::warn!(
                        redis = %tier.client.url,
                        suppressed,
                        "Redis invalidation bus down ({e}); L1 entries are not served until it is back, retrying"
                    );
                });
            }
        }
        let until = Instant::now() + retry;
        while Instant::now() < until && !tier.stopping.load(SeqCst) {
            std::thread::sleep(POLL.min(retry));
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One subscription, from connecting to losing it. `Ok` when it ended
/// because the tier is stopping or after it had been up.
fn subscribe(tier: &Tier, ever: &mut bool) -> redis::RedisResult<()> {
    let mut conn = tier.client.connect()?;
    conn.set_read_timeout(Some(POLL))?;
    let mut bus = conn.as_pubsub();
    bus.subscribe(&tier.channel)?;
    // Writes another process made while we were not listening were missed:
    // everything stored before now is refused once we trust L1 again.
    tier.flush_pending();
    tier.subscribed.store(true, SeqCst);
    tier.trust();
    if *ever {
        tracing::info!(redis = %tier.client.url, "Redis invalidation bus subscribed again; L1 serves again");
    }
    *ever = true;
    let mut quiet_since = Instant::now();
    let ended = loop {
        if tier.stopping.load(SeqCst) {
            break Ok(());
        }
        match bus.get_message() {
            Ok(message) => {
                apply(tier, message.get_payload_bytes());
                quiet_since = Instant::now();
            }
            Err(e) if e.is_timeout() => {
                if quiet_since.elapsed() >= PING_AFTER {
                    if let Err(e) = bus.ping::<redis::Value>() {
                        break Err(e);
                    }
                    quiet_since = Instant::now();
                }
            }
            Err(e) => break Err(e),
        }
    };
    tier.subscribed.store(false, SeqCst);
    if ended.is_err() {
        tier.distrust();
        tier.client.counters.bus_losses.fetch_add(1, Relaxed);
        tier.client.forget_connections();
    }
    ended
}

/// Bumps the local clock for the tables another process invalidated.
fn apply(tier: &Tier, payload: &[u8]) {
    let Some((origin, names)) = clock::parse_message(payload) else {
        tracing::debug!("ignored a message on the invalidation channel that is not dbkit's");
        return;
    };
    if origin == tier.origin {
        return;
    }
    for name in names {
        if name == "*" {
            tables::table_all().invalidate();
        } else if let Some(table) = tables::known_table(name) {
            // A table this process never met has no cached results to
            // refuse: nothing to do, and nothing registered for a name
            // that only arrived on the wire.
            table.invalidate();
        }
    }
    tier.client.counters.received.fetch_add(1, Relaxed);
}
