//! TTL expiry, driven by the clock instead of sleeping. Its own test binary:
//! moving the clock affects every cache in the process.

use std::time::Duration;

use dbkit_core::cache::{Access, CacheSpec, QueryCache};
use dbkit_core::time;

#[test]
fn entry_expires_after_its_ttl_and_not_before() {
    let c: QueryCache<u64, u64> = QueryCache::new(&CacheSpec::new(
        "tests::ttl",
        &["ttl_t"],
        Duration::from_secs(300),
    ));
    let call = |id: u64, v: u64| match c.get_or_begin(Access::Full, &id, |k| *k == id, || id) {
        Ok(v) => Some(v),
        Err(t) => {
            t.store(v);
            None
        }
    };
    assert_eq!(call(1, 10), None);
    time::advance(Duration::from_secs(290));
    assert_eq!(call(1, 11), Some(10), "still within its ttl");
    time::advance(Duration::from_secs(20));
    assert_eq!(call(1, 12), None, "expired after 300 s");
    assert_eq!(call(1, 13), Some(12));
    assert_eq!(c.stats().expired, 1);
}
