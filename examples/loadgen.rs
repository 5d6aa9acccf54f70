//! Load driver for the example service: a read-heavy mix (95% `GET
//! /users/{id}` with Zipf-distributed ids, 5% writes: renames and new
//! posts) from several client threads over kept-alive connections, run once
//! with dbkit's cache on and once with it off, and printed side by side:
//! throughput, latency percentiles, and statements sent to the database per
//! request.
//!
//! ```text
//! cargo run --release --example loadgen -- --seconds 10 --clients 4
//! cargo run --release --example loadgen --features postgres -- \
//!     --database-url postgres://localhost/loadgen
//! ```
//!
//! On PostgreSQL, give it an empty database: it creates and seeds the
//! tables.
//!
//! The service runs in this process on a fresh SQLite file (both share the
//! machine's cores, as a service and its load balancer's health checks
//! would not: compare the two runs, not the absolute figures with another
//! machine's).

#[path = "service/app/mod.rs"]
#[allow(dead_code)]
mod app;
#[path = "service/client.rs"]
#[allow(dead_code)]
mod client;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Settings {
    database_url: Option<String>,
    seconds: f64,
    clients: usize,
    users: i32,
    zipf: f64,
    reads: f64,
}

fn parse_args() -> Result<Settings, String> {
    let mut settings = Settings {
        database_url: None,
        seconds: 5.0,
        clients: 4,
        users: 10_000,
        zipf: 1.0,
        reads: 0.95,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--database-url" => settings.database_url = Some(value),
            "--seconds" => settings.seconds = value.parse().map_err(|e| bad(&e))?,
            "--clients" => settings.clients = value.parse().map_err(|e| bad(&e))?,
            "--users" => settings.users = value.parse().map_err(|e| bad(&e))?,
            "--zipf" => settings.zipf = value.parse().map_err(|e| bad(&e))?,
            "--reads" => settings.reads = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag} (--database-url, --seconds, --clients, --users, --zipf, --reads)")),
        }
    }
    if settings.clients == 0 || settings.users < 1 || !(0.0..=1.0).contains(&settings.reads) {
        return Err("--clients ≥ 1, --users ≥ 1, --reads in 0..=1".into());
    }
    Ok(settings)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = parse_args()?;
    let dir = std::env::temp_dir().join(format!("dbkit-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = match &settings.database_url {
        Some(url) => url.clone(),
        None => dir.join("db.sqlite").to_string_lossy().into_owned(),
    };
    let mut config = dbkit::PoolConfig::new(url);
    config.size = 4;
    config.max_overflow = 4;
    eprintln!("loadgen: seeding {} users...", settings.users);
    let pool = app::open(&config, settings.users)?;
    let addr = app::serve_in_background("127.0.0.1:0", pool, None)?;

    let zipf = Zipf::new(settings.users as usize, settings.zipf);
    let mut rows = Vec::new();
    for (caching, label) in [(false, "cache off"), (true, "cache on")] {
        dbkit::set_caching(caching);
        dbkit::clear_all();
        // Half a second to warm up (connections, the cache), not counted.
        drive(addr, &settings, &zipf, Duration::from_millis(500))?;
        let before = statements();
        let run = drive(
            addr,
            &settings,
            &zipf,
            Duration::from_secs_f64(settings.seconds),
        )?;
        let sent = statements() - before;
        rows.push((label, run, sent));
    }
    dbkit::set_caching(true);

    println!(
        "\n{} clients, {:.0} s each, {} users, Zipf s = {}, {:.0}% reads\n",
        settings.clients,
        settings.seconds,
        settings.users,
        settings.zipf,
        settings.reads * 100.0
    );
    println!(
        "| mode | requests | req/s | p50 | p90 | p99 | p99.9 | max | statements/request | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, run, sent) in &rows {
        let p = |q: f64| format!("{:.0} µs", run.percentile(q));
        println!(
            "| {label} | {} | {:.0} | {} | {} | {} | {} | {} | {:.2} | {} |",
            run.latencies_us.len(),
            run.throughput(),
            p(0.50),
            p(0.90),
            p(0.99),
            p(0.999),
            p(1.0),
            *sent as f64 / run.latencies_us.len().max(1) as f64,
            run.errors
        );
    }
    let (off, on) = (&rows[0].1, &rows[1].1);
    println!(
        "\ncache on vs off: throughput {:.2}×, p50 {:.2}×, p99 {:.2}×",
        on.throughput() / off.throughput(),
        on.percentile(0.5) / off.percentile(0.5),
        on.percentile(0.99) / off.percentile(0.99)
    );
    for cache in dbkit::cache_stats() {
        println!(
            "{}: hit rate {:.1}% ({} hits, {} misses, {} stale rejections)",
            cache.function,
            cache.hit_rate() * 100.0,
            cache.hits,
            cache.misses,
            cache.stale_rejections
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Statements the database has run so far.
fn statements() -> u64 {
    dbkit::report().queries.iter().map(|q| q.calls).sum()
}

struct Run {
    latencies_us: Vec<u32>,
    errors: u64,
    elapsed: Duration,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// `q` in 0..=1 over the sorted latencies.
    fn percentile(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let at = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[at])
    }
}

/// Runs every client for `time` and gathers their latencies, sorted.
fn drive(
    addr: SocketAddr,
    settings: &Settings,
    zipf: &Zipf,
    time: Duration,
) -> std::io::Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..settings.clients)
            .map(|n| {
                let stop = Arc::clone(&stop);
                scope.spawn(move || client_loop(addr, settings, zipf, n as u64, &stop))
            })
            .collect();
        std::thread::sleep(time);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("client panicked")))
            })
            .collect::<Vec<_>>()
    });
    let elapsed = started.elapsed();
    let mut run = Run {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed,
    };
    for result in results {
        let (latencies, errors) = result?;
        run.latencies_us.extend(latencies);
        run.errors += errors;
    }
    run.latencies_us.sort_unstable();
    Ok(run)
}

fn client_loop(
    addr: SocketAddr,
    settings: &Settings,
    zipf: &Zipf,
    seed: u64,
    stop: &AtomicBool,
) -> std::io::Result<(Vec<u32>, u64)> {
    let mut client = client::Client::connect(addr)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let mut latencies = Vec::with_capacity(100_000);
    let mut errors = 0;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = zipf.sample(&mut rng) as i32 + 1;
        let started = Instant::now();
        let response = if rng.unit() < settings.reads {
            client.send("GET", &format!("/users/{id}"), &[], None)?
        } else if rng.unit() < 0.5 {
            n += 1;
            let body = format!(r#"{{"name":"renamed {seed}-{n}"}}"#);
            client.send("PUT", &format!("/users/{id}"), &[], Some(&body))?
        } else {
            let body = r#"{"title":"load","body":"written by the load driver"}"#;
            client.send("POST", &format!("/users/{id}/posts"), &[], Some(body))?
        };
        latencies.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if response.status >= 400 {
            if errors == 0 {
                eprintln!(
                    "loadgen: first error of client {seed}: {} {}",
                    response.status, response.body
                );
            }
            errors += 1;
        }
    }
    Ok((latencies, errors))
}

/// Zipf over `0..n`: rank k drawn with probability ∝ 1 / (k + 1)^s, by
/// binary search in the cumulative distribution.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// xorshift64*: fast, and plenty for choosing ids.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}
