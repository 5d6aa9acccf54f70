//! The stale-read guard: while a cached function runs its query, the tables
//! its statements read are compared with the tables it declared. A table read
//! but not declared means writes to it will not invalidate the function's
//! results, which is the bug that serves stale data: it is reported once per
//! function and table with a `tracing` warning naming the fix, or made a
//! panic for test suites with [`panic_on_undeclared_tables`].
//!
//! The statement hook asks [`running`] (one thread-local check) and only then
//! pays for listing the tables a statement reads.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::tables::{normalize, TableState};

/// A cached function whose query is running on this thread.
#[derive(Debug, Clone)]
pub struct RunningQuery {
    /// The function's path.
    pub function: &'static str,
    /// The tables it declared.
    pub declared: Arc<[&'static TableState]>,
}

thread_local! {
    static RUNNING: RefCell<Vec<RunningQuery>> = const { RefCell::new(Vec::new()) };
}

static PANIC: AtomicBool = AtomicBool::new(false);

/// Every (function, table) reported so far.
static REPORTED: OnceLock<Mutex<HashSet<(&'static str, String)>>> = OnceLock::new();

/// The undeclared reads found so far: `(function, table)`, sorted.
pub fn undeclared_reads() -> Vec<(String, String)> {
    let Some(reported) = REPORTED.get() else {
        return Vec::new();
    };
    let mut all: Vec<(String, String)> = reported
        .lock()
        .iter()
        .map(|(f, t)| ((*f).to_owned(), t.clone()))
        .collect();
    all.sort();
    all
}

/// Makes an undeclared table a panic instead of a warning (for test suites).
pub fn panic_on_undeclared_tables(enabled: bool) {
    PANIC.store(enabled, Ordering::Relaxed);
}

/// Marks a cached function's query as running on this thread until dropped.
/// Not `Send`: it pops the stack of the thread that pushed it.
#[cfg(debug_assertions)]
#[derive(Debug)]
pub(crate) struct RunningGuard(std::marker::PhantomData<*const ()>);

#[cfg(debug_assertions)]
impl RunningGuard {
    pub(crate) fn enter(query: RunningQuery) -> Self {
        RUNNING.with(|r| r.borrow_mut().push(query));
        RunningGuard(std::marker::PhantomData)
    }
}

#[cfg(debug_assertions)]
impl Drop for RunningGuard {
    fn drop(&mut self) {
        RUNNING.with(|r| {
            r.borrow_mut().pop();
        });
    }
}

/// Whether a cached function's query is running on this thread.
#[inline]
pub fn running() -> bool {
    RUNNING.with(|r| !r.borrow().is_empty())
}

/// Checks the tables a statement read against the running function's
/// declaration; reports each undeclared one once.
pub fn check_reads(read: &[&str]) {
    let Some(query) = RUNNING.with(|r| r.borrow().last().cloned()) else {
        return;
    };
    for name in read {
        let name = normalize(name);
        if name.is_empty() || query.declared.iter().any(|t| t.name() == name) {
            continue;
        }
        let first = REPORTED
            .get_or_init(Default::default)
            .lock()
            .insert((query.function, name.clone().into_owned()));
        if !first {
            continue;
        }
        let declared: Vec<&str> = query.declared.iter().map(|t| t.name()).collect();
        if PANIC.load(Ordering::Relaxed) {
            panic!(
                "`{}` reads table `{name}` but declares only `tables = \"{}\"`; add `{name}` to its `tables` so writes to it invalidate the cached results",
                query.function,
                declared.join(", ")
            );
        }
        tracing::warn!(
            function = query.function,
            table = %name,
            declared = ?declared,
            "cached function reads a table it does not declare: writes to it will not invalidate its results; add it to `tables`"
        );
    }
}
