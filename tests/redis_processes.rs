//! Two OS processes sharing one Redis and one SQLite file: what process A
//! commits, process B never serves stale once the invalidation message has
//! reached it, and B's next read after that is fresh. B is this same test
//! binary started again with `DBKIT_PEER_*` set (`harness = false`: `main`
//! picks the role). Prints the delay from A's write to B's first fresh read
//! (p50, p99): the bus's propagation plus one read.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::people::{name_of, people_db, rename, start_generations};
use common::redis::RedisServer;
use common::Statements;
use dbkit::RedisConfig;
use diesel::{Connection, SqliteConnection};

const PREFIX: &str = "t-peers";
const WRITES: usize = 200;

fn main() {
    match (
        std::env::var("DBKIT_PEER_DB"),
        std::env::var("DBKIT_PEER_REDIS"),
    ) {
        (Ok(db), Ok(redis)) => peer(&db, &redis),
        _ => {
            print!("test a_commit_in_one_process_is_never_served_stale_by_another ... ");
            a_commit_in_one_process_is_never_served_stale_by_another();
            println!("ok");
            // The line `cargo test` prints for harnessed tests, which
            // `scripts/test` sums.
            println!(
                "\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
            );
        }
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos()
}

fn wait_for_bus() {
    common::wait_until("the Redis invalidation bus is subscribed", || {
        dbkit::report().redis.is_some_and(|r| r.bus_subscribed)
    });
}

fn received() -> u64 {
    dbkit::report()
        .redis
        .map_or(0, |r| r.invalidations_received)
}

/// Process B: answers commands on stdin, one line each.
fn peer(db: &str, redis: &str) {
    dbkit::set_redis(RedisConfig::new(redis).prefix(PREFIX)).expect("a valid URL");
    wait_for_bus();
    let mut conn = SqliteConnection::establish(db).expect("open the shared SQLite file");
    let statements = Statements::default();
    dbkit::Instrument::new()
        .wrapping(statements.instrumentation())
        .install(&mut conn);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("a command");
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["read", id] => {
                let id: i32 = id.parse().unwrap();
                let (name, ran) = statements.reached(|| name_of(&mut conn, id).unwrap());
                let l2_hits = dbkit::cache_stats()[0].l2_hits;
                writeln!(out, "value {} ran={ran} l2_hits={l2_hits}", name.unwrap()).unwrap();
            }
            ["watch", id, expected] => {
                // Hold the old value in L1 first: what is measured is L1
                // refusing it once the message arrives.
                let id: i32 = id.parse().unwrap();
                name_of(&mut conn, id).unwrap();
                let base = received();
                writeln!(out, "watching").unwrap();
                out.flush().unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                let (mut reads, mut violations) = (0u64, 0u64);
                let fresh_at = loop {
                    let arrived = received() > base;
                    let name = name_of(&mut conn, id).unwrap().unwrap();
                    reads += 1;
                    if name == *expected {
                        break Some(now_ns());
                    }
                    if arrived {
                        violations += 1;
                    }
                    if Instant::now() > deadline {
                        break None;
                    }
                };
                match fresh_at {
                    Some(at) => writeln!(out, "fresh {at} {violations} {reads}").unwrap(),
                    None => writeln!(out, "timeout {violations} {reads}").unwrap(),
                }
            }
            ["quit"] => break,
            _ => panic!("unknown command {line:?}"),
        }
        out.flush().unwrap();
    }
    dbkit::remove_redis();
}

/// Process B as seen from A; killed if A fails.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(db: &str, redis: &str) -> Peer {
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .env("DBKIT_PEER_DB", db)
            .env("DBKIT_PEER_REDIS", redis)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start process B");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Peer {
            child,
            stdin,
            stdout,
        };
        assert_eq!(peer.line(), "ready");
        peer
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to process B");
        self.stdin.flush().unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from process B");
        assert!(!line.is_empty(), "process B ended early");
        line.trim_end().to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn a_commit_in_one_process_is_never_served_stale_by_another() {
    let server = RedisServer::start();
    let db = people_db();
    dbkit::set_redis(RedisConfig::new(server.url()).prefix(PREFIX)).expect("a valid URL");
    wait_for_bus();
    let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new());
    start_generations(&mut conn);
    assert_eq!(name_of(&mut conn, 1).unwrap().as_deref(), Some("ada")); // stored in Redis

    let mut peer = Peer::start(&db.url(), &server.url());
    peer.send("read 1");
    assert_eq!(
        peer.line(),
        "value ada ran=false l2_hits=1",
        "a fresh process is answered by Redis, not its database"
    );

    let mut delays_us = Vec::with_capacity(WRITES);
    let mut after_return_us = Vec::with_capacity(WRITES);
    let mut violations = 0;
    let mut reads = 0;
    for k in 0..WRITES {
        let name = format!("name-{k}");
        peer.send(&format!("watch 1 {name}"));
        assert_eq!(peer.line(), "watching");
        let started = now_ns();
        rename(&mut conn, 1, &name);
        let returned = now_ns();
        let reply = peer.line();
        let words: Vec<&str> = reply.split(' ').collect();
        match words.as_slice() {
            ["fresh", at, v, r] => {
                let at: u128 = at.parse().unwrap();
                delays_us.push(at.saturating_sub(started) as f64 / 1_000.0);
                after_return_us.push((at as f64 - returned as f64) / 1_000.0);
                violations += v.parse::<u64>().unwrap();
                reads += r.parse::<u64>().unwrap();
            }
            _ => panic!("write {k}: process B never saw it: {reply}"),
        }
        // B's next read after the propagation is fresh.
        peer.send("read 1");
        assert!(
            peer.line().starts_with(&format!("value {name} ")),
            "write {k}"
        );
    }
    peer.send("quit");

    let quantiles = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        format!(
            "p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            at(0.5),
            at(0.99),
            at(1.0)
        )
    };
    eprintln!(
        "two processes: {WRITES} writes, {reads} reads in B while waiting; first fresh read in B \
         after A's write started: {}; after it returned (commit and publish done): {}",
        quantiles(delays_us),
        quantiles(after_return_us),
    );
    assert_eq!(
        violations, 0,
        "B served a stale value after the invalidation message reached it"
    );
    dbkit::remove_redis();
}
