//! The example service (`examples/service`), running: every route over real
//! HTTP on loopback, against its bundled SQLite database, including the 401
//! of the admin routes without the token.

#[path = "../examples/service/app/mod.rs"]
#[allow(dead_code)]
mod app;
#[path = "../examples/service/client.rs"]
mod client;
mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use client::{Client, Response};
use common::TempDb;

const TOKEN: &str = "test-token-7f3a";

/// One service per test binary, on a free port, with 50 seeded users.
fn service() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let db = Box::leak(Box::new(TempDb::new("")));
        let mut config = dbkit::PoolConfig::new(db.url());
        config.size = 2;
        config.max_overflow = 2;
        let pool = app::open(&config, 50).expect("open the service's database");
        app::serve_in_background("127.0.0.1:0", pool, Some(TOKEN.into()))
            .expect("serve on loopback")
    })
}

fn get(path: &str) -> Response {
    Client::connect(service())
        .unwrap()
        .send("GET", path, &[], None)
        .unwrap()
}

fn admin(method: &str, path: &str, body: Option<&str>) -> Response {
    let bearer = format!("Bearer {TOKEN}");
    Client::connect(service())
        .unwrap()
        .send(method, path, &[("authorization", &bearer)], body)
        .unwrap()
}

const ADMIN_ROUTES: [(&str, &str); 7] = [
    ("GET", "/db-monitor/"),
    ("GET", "/db-monitor/cache"),
    ("GET", "/db-monitor/sessions"),
    ("GET", "/db-monitor/queries"),
    ("GET", "/db-monitor/slow-queries"),
    ("POST", "/db-monitor/cache/invalidate"),
    ("GET", "/metrics"),
];

#[test]
fn admin_routes_answer_401_without_the_right_token() {
    for (method, path) in ADMIN_ROUTES {
        let body = (method == "POST").then_some(r#"{"table":"users"}"#);
        let mut client = Client::connect(service()).unwrap();
        let none = client.send(method, path, &[], body).unwrap();
        assert_eq!(none.status, 401, "{method} {path} without a token");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        let wrong = client
            .send(method, path, &[("authorization", "Bearer nope")], body)
            .unwrap();
        assert_eq!(wrong.status, 401, "{method} {path} with a wrong token");
        let right = admin(method, path, body);
        assert_eq!(right.status, 200, "{method} {path}: {}", right.body);
    }
    assert_eq!(get("/db-monitor/?token=nope").status, 401);
    assert_eq!(get(&format!("/db-monitor/?token={TOKEN}")).status, 200);
}

#[test]
fn users_are_served_from_the_cache_and_fresh_after_a_write() {
    let mut client = Client::connect(service()).unwrap();
    let first = client.send("GET", "/users/7", &[], None).unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    let page = first.json();
    assert_eq!(page["user"]["email"], "user7@example.com");
    assert_eq!(page["latest_posts"].as_array().unwrap().len(), 3);

    let cache = || admin("GET", "/db-monitor/cache", None).json();
    let hits_of = |cache: &serde_json::Value, suffix: &str| {
        cache["caches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["stats"]["function"].as_str().unwrap().ends_with(suffix))
            .map(|c| c["stats"]["hits"].as_u64().unwrap())
            .unwrap_or(0)
    };
    let before = hits_of(&cache(), "::user_by_id");
    client.send("GET", "/users/7", &[], None).unwrap();
    assert!(
        hits_of(&cache(), "::user_by_id") > before,
        "the second read is a hit"
    );

    let renamed = client
        .send("PUT", "/users/7", &[], Some(r#"{"name":"Ada Lovelace"}"#))
        .unwrap();
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.json()["name"], "Ada Lovelace");
    let after = client.send("GET", "/users/7", &[], None).unwrap().json();
    assert_eq!(
        after["user"]["name"], "Ada Lovelace",
        "the commit invalidated the cached user"
    );

    let posted = client
        .send(
            "POST",
            "/users/7/posts",
            &[],
            Some(r#"{"title":"Notes","body":"On the engine"}"#),
        )
        .unwrap();
    assert_eq!(posted.status, 201, "{}", posted.body);
    let posts = client.send("GET", "/users/7/posts", &[], None).unwrap();
    assert_eq!(
        posts.json()[0]["title"],
        "Notes",
        "the new post is first, not a cached list"
    );
}

#[test]
fn errors_have_their_status_codes() {
    assert_eq!(get("/users/999999").status, 404);
    assert_eq!(get("/users/999999/posts").status, 404);
    let mut client = Client::connect(service()).unwrap();
    let empty = client
        .send("PUT", "/users/3", &[], Some(r#"{"name":"  "}"#))
        .unwrap();
    assert_eq!(empty.status, 400);
    assert!(empty.json()["error"].as_str().unwrap().contains("empty"));
    let bad = admin("POST", "/db-monitor/cache/invalidate", Some("{}"));
    assert_eq!(bad.status, 400);
}

#[test]
fn health_reports_the_pool() {
    let health = get("/health/db");
    assert_eq!(health.status, 200, "{}", health.body);
    let health = health.json();
    assert_eq!(health["ok"], true);
    assert_eq!(health["max_size"], 4);
}

#[test]
fn the_monitoring_api_shows_real_figures() {
    // An N+1 on purpose, some cached reads, a manual invalidation.
    assert_eq!(get("/posts/recent").status, 200);
    for id in [1, 2, 1, 2] {
        assert_eq!(get(&format!("/users/{id}")).status, 200);
    }
    let invalidated = admin(
        "POST",
        "/db-monitor/cache/invalidate",
        Some(r#"{"table":"posts"}"#),
    );
    assert_eq!(invalidated.json()["invalidated"], "posts");

    let cache = admin("GET", "/db-monitor/cache", None).json();
    let posts = cache["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "posts")
        .unwrap();
    assert!(posts["invalidations"].as_u64().unwrap() >= 1);
    assert!(cache["caches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["hit_rate"].as_f64().unwrap() > 0.0));

    let queries = admin("GET", "/db-monitor/queries", None).json();
    assert!(queries["queries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["calls"].as_u64().unwrap() > 1));
    let n_plus_one = queries["n_plus_one"].as_array().unwrap();
    assert!(
        n_plus_one.iter().any(|f| f["label"]
            .as_str()
            .unwrap()
            .ends_with("recent_posts_with_authors")
            && f["count"].as_u64().unwrap() == 20),
        "{n_plus_one:?}"
    );

    let sessions = admin("GET", "/db-monitor/sessions", None).json();
    let pool = &sessions["pools"].as_array().unwrap()[0];
    assert_eq!(pool["name"], "service");
    assert!(pool["checkouts"].as_u64().unwrap() >= 6);
    assert!(sessions["advice"].is_array() && sessions["warnings"].is_array());

    let slow = admin("GET", "/db-monitor/slow-queries", None).json();
    assert_eq!(slow["threshold_ms"], 1000);
    assert!(slow["slow_queries"].is_array());

    let metrics = admin("GET", "/metrics", None);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let scrape =
        prometheus_parse::Scrape::parse(metrics.body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(scrape.samples.iter().any(
        |s| s.metric == "dbkit_pool_checkouts_total" && s.labels.get("pool") == Some("service")
    ));

    let page = admin("GET", "/db-monitor/", None);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    for figure in [
        "Cache hit rate",
        "user_by_id",
        "N+1 findings",
        "recent_posts_with_authors",
        "connections in use",
    ] {
        assert!(page.body.contains(figure), "the page lacks {figure}");
    }
    assert!(
        page.body.contains("`users`"),
        "statements are shown (escaped, with their quotes)"
    );
}
