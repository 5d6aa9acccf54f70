//! What the calling thread's open transactions mean for the cache.
//!
//! Inside a transaction a cached call must not store (its reads may see an
//! old snapshot under REPEATABLE READ / SERIALIZABLE, or uncommitted data of
//! its own), and must not be served an entry for a table the transaction
//! itself wrote (it must see its own writes). Calls on a thread with no open
//! transaction, by far the common case, pay one thread-local check.
//!
//! The write tracker of each connection registers a [`TransactionGuard`] on
//! the thread where the transaction begins; dropping the guard, on any thread,
//! ends it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::tables::TableState;

#[derive(Debug, Default)]
struct Shared {
    open: AtomicBool,
    written: Mutex<Vec<&'static TableState>>,
}

thread_local! {
    static OPEN: RefCell<Vec<Arc<Shared>>> = const { RefCell::new(Vec::new()) };
}

/// An open transaction on the current thread, as the cache sees it.
#[derive(Debug)]
#[must_use = "the transaction ends for the cache when the guard is dropped"]
pub struct TransactionGuard {
    shared: Arc<Shared>,
}

impl TransactionGuard {
    /// Registers a transaction that has begun on the current thread.
    pub fn begin() -> Self {
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            written: Mutex::new(Vec::new()),
        });
        OPEN.with(|open| open.borrow_mut().push(Arc::clone(&shared)));
        TransactionGuard { shared }
    }

    /// Records tables the transaction wrote: cached reads of them on this
    /// thread bypass the cache until the transaction ends.
    /// An empty slice means "tables unknown": every cached read bypasses.
    pub fn wrote(&self, tables: &[&'static TableState]) {
        let tables = if tables.is_empty() {
            crate::tables::every_table()
        } else {
            tables
        };
        let mut written = self.shared.written.lock();
        for t in tables {
            if !written.iter().any(|w| std::ptr::eq(*w, *t)) {
                written.push(t);
            }
        }
    }
}

impl Drop for TransactionGuard {
    fn drop(&mut self) {
        self.shared.open.store(false, Ordering::Release);
    }
}

/// How a cached call on this thread may use the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No transaction open: read and store.
    Full,
    /// A transaction is open that did not write these tables: a fresh entry
    /// may be served, a result must not be stored.
    ReadOnly,
    /// The open transaction wrote one of these tables: run the query, touch
    /// nothing.
    Bypass,
}

/// The access a call depending on `deps` has on the current thread.
#[inline]
pub fn access(deps: &[&'static TableState]) -> Access {
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        if open.is_empty() {
            return Access::Full;
        }
        open.retain(|t| t.open.load(Ordering::Acquire));
        if open.is_empty() {
            return Access::Full;
        }
        let writes_dep = open.iter().any(|t| {
            let all = crate::tables::table_all();
            let written = t.written.lock();
            written
                .iter()
                .any(|w| std::ptr::eq(*w, all) || deps.iter().any(|d| std::ptr::eq(*w, *d)))
        });
        if writes_dep {
            Access::Bypass
        } else {
            Access::ReadOnly
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::table;

    #[test]
    fn access_follows_the_threads_transactions() {
        let users = table("tx_users");
        let posts = table("tx_posts");
        assert_eq!(access(&[users]), Access::Full);
        let tx = TransactionGuard::begin();
        assert_eq!(access(&[users]), Access::ReadOnly);
        tx.wrote(&[users]);
        assert_eq!(access(&[users, posts]), Access::Bypass);
        assert_eq!(access(&[posts]), Access::ReadOnly);
        let other_thread = std::thread::spawn(move || access(&[users])).join().unwrap();
        assert_eq!(
            other_thread,
            Access::Full,
            "only the transaction's thread is affected"
        );
        drop(tx);
        assert_eq!(access(&[users]), Access::Full);
    }

    #[test]
    fn guard_dropped_on_another_thread_ends_the_transaction() {
        let users = table("tx_moved");
        let tx = TransactionGuard::begin();
        tx.wrote(&[users]);
        std::thread::spawn(move || drop(tx)).join().unwrap();
        assert_eq!(access(&[users]), Access::Full);
        let tx = TransactionGuard::begin();
        tx.wrote(&[]);
        assert_eq!(
            access(&[table("tx_any")]),
            Access::Bypass,
            "unknown tables cover every read"
        );
        drop(tx);
        assert_eq!(access(&[users]), Access::Full);
    }
}
