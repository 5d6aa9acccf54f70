//! `Pool::from_env` reads the seed applications' variables. The process
//! environment is shared, so this binary has one test.

mod common;

use std::time::Duration;

use common::TempDb;
use diesel::SqliteConnection;

#[test]
fn pool_from_env_reads_the_variables_and_names_a_bad_one() {
    let db = TempDb::new("CREATE TABLE t (x INTEGER);");
    // SAFETY (edition 2024 wording): no other thread of this binary reads
    // the environment while it changes; this is its only test.
    std::env::set_var("DATABASE_URL", db.url());
    std::env::set_var("DB_POOL_SIZE", "2");
    std::env::set_var("DB_MAX_OVERFLOW", "1");
    std::env::set_var("DB_POOL_TIMEOUT", "0.5");
    std::env::set_var("DB_POOL_RECYCLE", "-1");

    let pool = dbkit::Pool::<SqliteConnection>::from_env().expect("valid settings");
    let report = pool.report();
    assert_eq!((report.min_idle, report.max_size), (2, 3));
    // Another thread holds size + overflow connections (on this thread a
    // fourth checkout would be refused at once as nested).
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
            drop(held);
        })
    };
    held_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let err = pool.get().expect_err("size + overflow are all held");
    assert!(matches!(err, dbkit::Error::PoolTimeout(_)), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "waited DB_POOL_TIMEOUT"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();

    std::env::set_var("DB_MAX_OVERFLOW", "many");
    let err = dbkit::Pool::<SqliteConnection>::from_env().unwrap_err();
    assert!(
        matches!(
            &err,
            dbkit::Error::Config {
                variable: "DB_MAX_OVERFLOW",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("`DB_MAX_OVERFLOW`=\"many\""),
        "{err}"
    );

    std::env::remove_var("DATABASE_URL");
    std::env::set_var("DB_MAX_OVERFLOW", "1");
    let err = dbkit::Pool::<SqliteConnection>::from_env().unwrap_err();
    assert!(err.to_string().contains("`DATABASE_URL`"), "{err}");
}
