//! An HTTP service on dbkit: users and posts behind `#[cached_query]` and
//! `#[with_session]`, plus the monitoring API the applications dbkit
//! replaces used to hand-write.
//!
//! ```text
//! DBKIT_ADMIN_TOKEN=secret cargo run --example service
//! curl localhost:3000/users/7
//! curl -H 'Authorization: Bearer secret' localhost:3000/db-monitor/cache
//! open 'http://localhost:3000/db-monitor/?token=secret'
//! ```
//!
//! Settings (environment): `DATABASE_URL` (default: a SQLite file in the
//! temporary directory; a `postgres://` URL with `--features postgres`),
//! `DB_POOL_SIZE` and the other `dbkit::PoolConfig` variables, `BIND`
//! (default `127.0.0.1:3000`), `DBKIT_ADMIN_TOKEN` (without it the admin
//! routes answer 401), `SEED_USERS` (default 1000). Built with `--features
//! redis`, `DBKIT_REDIS_URL` connects it to the Redis tier: several
//! instances on one database then invalidate each other's caches.

mod app;

use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let seed_users = match std::env::var("SEED_USERS") {
        Ok(n) => n.parse().map_err(|e| format!("SEED_USERS={n}: {e}"))?,
        Err(_) => 1000,
    };
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let token = std::env::var("DBKIT_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    if token.is_none() {
        eprintln!("service: DBKIT_ADMIN_TOKEN is not set, the admin routes answer 401");
    }

    // The environment, with a SQLite file as the default database.
    let config = dbkit::PoolConfig::from_lookup(|name| match std::env::var(name) {
        Ok(value) => Some(value),
        Err(_) if name == "DATABASE_URL" => Some(
            std::env::temp_dir()
                .join("dbkit-service.sqlite")
                .to_string_lossy()
                .into_owned(),
        ),
        Err(_) => None,
    })?;
    #[cfg(feature = "redis")]
    if let Some(redis) = dbkit::RedisConfig::from_env()? {
        eprintln!("service: Redis tier at {}", redis.url_redacted());
        dbkit::set_redis(redis)?;
    }
    let pool = app::open(&config, seed_users)?;
    let addr = app::serve_in_background(&bind, pool, token)?;
    eprintln!("service: listening on http://{addr}");
    loop {
        std::thread::park(); // the server thread serves until the process ends
    }
}
