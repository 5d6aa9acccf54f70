//! N+1 detection, as Rails' Bullet does it: inside one session, the same
//! SELECT shape run more than the threshold times is almost always a loop
//! that should have been one query. Each (session, shape) is reported once:
//! a warning when the threshold is crossed, and a finding whose count is
//! brought up to date when the session ends.

use std::collections::{HashMap, VecDeque};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use super::{settings, slow::unix_ms, Shape};

/// The session a connection is checked out for, as its statements see it.
#[derive(Debug, Clone)]
pub struct SessionScope {
    /// The pool's name.
    pub pool: Arc<str>,
    /// The session's id in its pool.
    pub session: u64,
    /// The label given at checkout (`#[with_session]` gives its function).
    pub label: Option<&'static str>,
    /// Where the connection was checked out.
    pub location: &'static Location<'static>,
}

impl SessionScope {
    /// The label, or the call site when the checkout gave none.
    pub fn label(&self) -> String {
        match self.label {
            Some(label) => label.to_owned(),
            None => self.location.to_string(),
        }
    }
}

/// One connection's count of SELECT shapes within its current session.
/// Kept by the connection's instrumentation; `begin` and `end` are called
/// at checkout and return.
#[derive(Debug, Default)]
pub struct SessionQueries {
    scope: Option<SessionScope>,
    /// Runs per shape id, and the finding once the threshold was crossed.
    runs: HashMap<u64, (u32, Option<u64>), foldhash::fast::RandomState>,
}

impl SessionQueries {
    /// A session starts on this connection (ending any previous one).
    pub fn begin(&mut self, scope: SessionScope) {
        self.end();
        self.scope = Some(scope);
    }

    /// The session running now, if any.
    pub fn scope(&self) -> Option<&SessionScope> {
        self.scope.as_ref()
    }

    /// A statement of `shape` ran; only SELECTs inside a session count.
    #[inline]
    pub fn ran(&mut self, shape: &Arc<Shape>) {
        let Some(scope) = &self.scope else {
            return;
        };
        if !shape.is_select() {
            return;
        }
        let threshold = settings::n_plus_one_threshold();
        if threshold == 0 {
            return;
        }
        let (runs, finding) = self.runs.entry(shape.id()).or_insert((0, None));
        *runs = runs.saturating_add(1);
        if *runs == threshold.saturating_add(1) {
            *finding = Some(report(scope, shape, *runs));
        }
    }

    /// The session ended: findings get their final counts.
    pub fn end(&mut self) {
        if self.scope.take().is_none() {
            return;
        }
        for (_, (runs, finding)) in self.runs.drain() {
            if let Some(finding) = finding {
                update(finding, runs);
            }
        }
    }
}

/// A SELECT run many times in one session.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct NPlusOne {
    /// The shape's id, as in [`QueryStats::id`](super::QueryStats::id).
    pub id: String,
    /// The SQL with literals and bind parameters as `?`.
    pub shape: String,
    /// How many times the session ran it (so far, while the session is open).
    pub count: u32,
    /// The session's pool.
    pub pool: String,
    /// The session's id in its pool.
    pub session: u64,
    /// The session's label (its function, or its call site).
    pub label: String,
    /// Where the session's connection was checked out.
    pub location: String,
    /// When the threshold was crossed, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// Findings kept for the report: the most recent ones.
const KEEP: usize = 100;

static FINDINGS: Mutex<VecDeque<(u64, NPlusOne)>> = Mutex::new(VecDeque::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

#[cold]
fn report(scope: &SessionScope, shape: &Shape, runs: u32) -> u64 {
    let finding = NPlusOne {
        id: format!("{:016x}", shape.id()),
        shape: shape.text().to_owned(),
        count: runs,
        pool: scope.pool.to_string(),
        session: scope.session,
        label: scope.label(),
        location: scope.location.to_string(),
        at_unix_ms: unix_ms(),
    };
    tracing::warn!(
        shape = %finding.shape,
        count = runs,
        pool = %finding.pool,
        session = %finding.label,
        location = %finding.location,
        "N+1 queries: `{}` ran the same SELECT more than {} times in one session; load the rows with one query (a join or `WHERE .. IN`)",
        finding.label,
        runs - 1,
    );
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut findings = FINDINGS.lock();
    findings.push_back((key, finding));
    while findings.len() > KEEP {
        findings.pop_front();
    }
    key
}

fn update(key: u64, runs: u32) {
    if let Some((_, finding)) = FINDINGS.lock().iter_mut().find(|(k, _)| *k == key) {
        finding.count = runs;
    }
}

/// N+1 findings so far, including those no longer kept.
pub fn n_plus_one_count() -> u64 {
    NEXT.load(Ordering::Relaxed) - 1
}

/// The most recent N+1 findings, oldest first.
pub fn n_plus_one() -> Vec<NPlusOne> {
    FINDINGS.lock().iter().map(|(_, f)| f.clone()).collect()
}
