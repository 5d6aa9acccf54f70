//! The Redis the test suite relies on: `scripts/test` installs
//! `redis-server`, and a test starts its own on a free loopback port with
//! persistence off, can kill and restart it, and removes it afterwards.

mod common;

use common::redis::RedisServer;

#[test]
fn a_private_server_starts_dies_and_restarts_empty() {
    let mut server = RedisServer::start();
    assert!(server.url().starts_with("redis://127.0.0.1:"));
    assert_eq!(server.inline("SET dbkit:probe 1").as_deref(), Some("+OK"));
    assert_eq!(server.inline("GET dbkit:probe").as_deref(), Some("$1"));

    server.halt();
    assert!(!server.answers_ping(), "a halted server does not answer");

    server.resume();
    assert!(server.answers_ping());
    assert_eq!(
        server.inline("GET dbkit:probe").as_deref(),
        Some("$-1"),
        "nothing survived the restart: persistence is off"
    );
}
