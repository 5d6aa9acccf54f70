//! `rediss://` against a real `redis-server` listening for TLS with a
//! certificate from a CA of the test's own: trusted through
//! `RedisConfig::tls_root_certificate`, the tier works as over plain TCP;
//! not trusted, every connection fails and calls still succeed.

mod common;

use common::people::{name_of, people_db, start_generations};
use common::redis::RedisServer;
use common::stats_of;
use dbkit::RedisConfig;

#[test]
fn rediss_with_a_private_ca_serves_l2_and_an_untrusted_certificate_only_falls_back() {
    let server = RedisServer::start_tls();
    assert!(server.url().starts_with("rediss://127.0.0.1:"));
    let db = people_db();
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());

    let trusted = RedisConfig::new(server.url())
        .prefix("t-tls")
        .tls_root_certificate(server.ca_certificate());
    dbkit::set_redis(trusted).expect("a valid URL");
    server.wait_for_bus();
    start_generations(&mut conn);
    name_of(&mut conn, 1).unwrap();
    name_of(&mut conn, 2).unwrap();
    let (ada, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
    assert_eq!(ada.as_deref(), Some("ada"));
    assert!(!ran, "answered by Redis over TLS");
    assert_eq!(stats_of("::name_of").l2_errors, 0);

    // The system's roots do not know the test CA: the handshake fails.
    dbkit::set_redis(RedisConfig::new(server.url()).prefix("t-tls")).expect("a valid URL");
    for _ in 0..3 {
        let (ada, ran) = statements.reached(|| name_of(&mut conn, 1));
        assert_eq!(ada.unwrap().as_deref(), Some("ada"));
        assert!(ran, "no bus, no L2: the database answers");
    }
    let report = dbkit::report().redis.unwrap();
    assert!(report.failures >= 1 && !report.bus_subscribed, "{report:?}");
    dbkit::remove_redis();
}
