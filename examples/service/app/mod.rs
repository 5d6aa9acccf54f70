//! The service: its data ([`store`]), its routes (here) and the monitoring
//! page ([`page`]). Shared with the tests and the load driver.

mod page;
pub mod store;

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub use store::{open, AnyConnection, AppError};

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    pub pool: dbkit::Pool<AnyConnection>,
    /// The bearer token of the admin routes; `None` locks them.
    pub admin_token: Option<String>,
}

/// The service's routes over `pool`; admin routes need `admin_token`.
pub fn router(pool: dbkit::Pool<AnyConnection>, admin_token: Option<String>) -> Router {
    let admin = Router::new()
        .route("/db-monitor/", get(monitor_page))
        .route("/db-monitor/cache", get(monitor_cache))
        .route("/db-monitor/sessions", get(monitor_sessions))
        .route("/db-monitor/queries", get(monitor_queries))
        .route("/db-monitor/slow-queries", get(monitor_slow_queries))
        .route("/db-monitor/cache/invalidate", post(invalidate))
        .route("/metrics", get(metrics));
    Router::new()
        .route("/users/{id}", get(get_user).put(rename_user))
        .route("/users/{id}/posts", get(get_posts).post(add_post))
        .route("/posts/recent", get(recent_posts))
        .route("/health/db", get(health))
        .merge(admin)
        .with_state(AppState { pool, admin_token })
}

/// Serves the routes on `bind` (`127.0.0.1:0` for a free port) from a
/// thread of its own; returns the address it listens on.
pub fn serve_in_background(
    bind: &str,
    pool: dbkit::Pool<AnyConnection>,
    admin_token: Option<String>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let served = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => axum::serve(listener, router(pool, admin_token)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                eprintln!("service stopped: {e}");
            }
        })
    });
    Ok(addr)
}

/// Runs blocking diesel work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(AppError::Internal(format!("handler panicked: {e}"))))
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            // A full pool or an unreachable database: the client may retry.
            AppError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::AnyConnection(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

async fn get_user(Path(id): Path<i32>) -> Result<Json<store::UserPage>, AppError> {
    blocking(move || store::user_page(id)?.ok_or(AppError::NotFound))
        .await
        .map(Json)
}

#[derive(Deserialize)]
struct Rename {
    name: String,
}

async fn rename_user(
    Path(id): Path<i32>,
    Json(body): Json<Rename>,
) -> Result<Json<store::User>, AppError> {
    blocking(move || store::rename_user(id, &body.name)?.ok_or(AppError::NotFound))
        .await
        .map(Json)
}

async fn get_posts(Path(id): Path<i32>) -> Result<Json<Vec<store::Post>>, AppError> {
    blocking(move || store::posts_page(id)).await.map(Json)
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
    body: String,
}

async fn add_post(
    Path(id): Path<i32>,
    Json(post): Json<NewPost>,
) -> Result<(StatusCode, Json<store::Post>), AppError> {
    blocking(move || store::add_post(id, &post.title, &post.body))
        .await
        .map(|post| (StatusCode::CREATED, Json(post)))
}

async fn recent_posts() -> Result<Json<Vec<store::PostWithAuthor>>, AppError> {
    // Called here, not passed as `fn` pointer: a session's call site is
    // where its function is called.
    blocking(|| store::recent_posts_with_authors())
        .await
        .map(Json)
}

async fn health(State(state): State<AppState>) -> Response {
    let pool = state.pool.clone();
    let health = tokio::task::spawn_blocking(move || pool.health(Duration::from_secs(2))).await;
    match health {
        Ok(health) if health.ok => (StatusCode::OK, Json(health)).into_response(),
        Ok(health) => (StatusCode::SERVICE_UNAVAILABLE, Json(health)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The admin routes' gate: `Authorization: Bearer <token>`, compared in
/// constant time. The HTML page also takes `?token=` so a browser can open
/// it (the token then shows in the address bar and access logs).
fn authorized(state: &AppState, headers: &HeaderMap, query_token: Option<&str>) -> bool {
    let Some(expected) = &state.admin_token else {
        return false;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(query_token);
    presented.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "admin routes need `Authorization: Bearer <DBKIT_ADMIN_TOKEN>`" })),
    )
        .into_response()
}

/// Answers `body()` to an authorized caller, 401 to anyone else.
fn admin<R: IntoResponse>(
    state: &AppState,
    headers: &HeaderMap,
    body: impl FnOnce() -> R,
) -> Response {
    if authorized(state, headers, None) {
        body().into_response()
    } else {
        unauthorized()
    }
}

async fn monitor_cache(State(state): State<AppState>, headers: HeaderMap) -> Response {
    admin(&state, &headers, || {
        let report = dbkit::report();
        let caches: Vec<_> = report
            .caches
            .iter()
            .map(|c| json!({ "hit_rate": c.hit_rate(), "stats": c }))
            .collect();
        Json(json!({ "caching": dbkit::caching(), "caches": caches, "tables": report.tables }))
    })
}

async fn monitor_sessions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    admin(&state, &headers, || {
        let report = dbkit::report();
        Json(json!({
            "pools": report.pools,
            "sessions": report.sessions,
            "advice": report.advice,
            "warnings": report.warnings,
        }))
    })
}

async fn monitor_queries(State(state): State<AppState>, headers: HeaderMap) -> Response {
    admin(&state, &headers, || {
        let report = dbkit::report();
        Json(json!({
            "queries": report.queries,
            "shapes_dropped": report.query_shapes_dropped,
            "n_plus_one": report.n_plus_one,
            "n_plus_one_total": report.n_plus_one_total,
        }))
    })
}

async fn monitor_slow_queries(State(state): State<AppState>, headers: HeaderMap) -> Response {
    admin(&state, &headers, || {
        let report = dbkit::report();
        Json(json!({
            "threshold_ms": dbkit::query_settings().slow_threshold.as_millis() as u64,
            "slow_queries": report.slow_queries,
            "total": report.slow_queries_total,
        }))
    })
}

#[derive(Deserialize)]
struct Invalidate {
    table: Option<String>,
}

async fn invalidate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Invalidate>,
) -> Response {
    admin(&state, &headers, || {
        match body.table.as_deref().map(str::trim) {
            Some(table) if !table.is_empty() => {
                dbkit::invalidate_table(table);
                (StatusCode::OK, Json(json!({ "invalidated": table }))).into_response()
            }
            _ => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "give the table to invalidate: {\"table\": \"users\"}" })),
            )
                .into_response(),
        }
    })
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    admin(&state, &headers, || {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            dbkit::report().to_prometheus(),
        )
    })
}

#[derive(Deserialize)]
struct PageQuery {
    token: Option<String>,
}

async fn monitor_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    if !authorized(&state, &headers, query.token.as_deref()) {
        return unauthorized();
    }
    Html(page::render(&dbkit::report(), dbkit::caching())).into_response()
}
