//! The sessions of one pool: who holds each connection, where from, since
//! when.
//!
//! A checkout registers a record in a slab behind the pool's own lock (one
//! uncontended lock and no allocation once the slab has grown to the pool's
//! size); the [`SessionToken`] it returns removes the record when it drops,
//! whatever the path out. Each thread also remembers, in a thread-local
//! list, the sessions it holds, so a nested checkout is seen before it waits.

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::Duration;

use serde::Serialize;

use super::PoolTracker;
use crate::time;

/// One open session as the report and error messages show it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Unique within its pool.
    pub id: u64,
    /// The pool's name.
    pub pool: String,
    /// The `#[with_session]` function's path, or the call site of a plain
    /// checkout.
    pub label: String,
    /// Where the connection was checked out (`file:line:column`).
    pub location: String,
    /// The thread that checked it out (its name, or its id).
    pub thread: String,
    /// How long it has been held, in milliseconds.
    pub held_ms: u64,
    /// Where the checkout came from, when the pool captures backtraces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
}

impl SessionInfo {
    /// How long it has been held.
    pub fn held(&self) -> Duration {
        Duration::from_millis(self.held_ms)
    }
}

impl fmt::Display for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session #{} ", self.id)?;
        if self.label != self.location {
            write!(f, "`{}` ", self.label)?;
        }
        write!(
            f,
            "checked out at {} on thread `{}`, held {:.1?}",
            self.location,
            self.thread,
            self.held()
        )
    }
}

/// A session's record while it is open.
pub(crate) struct Record {
    pub(crate) id: u64,
    label: Option<&'static str>,
    location: &'static Location<'static>,
    thread: Thread,
    started_ms: u64,
    pub(crate) leak_reported: bool,
    backtrace: Option<Box<Backtrace>>,
}

impl Record {
    pub(crate) fn held_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started_ms)
    }

    pub(crate) fn info(&self, pool: &str, now_ms: u64) -> SessionInfo {
        let location = self.location.to_string();
        SessionInfo {
            id: self.id,
            pool: pool.to_owned(),
            label: self.label.map_or_else(|| location.clone(), str::to_owned),
            location,
            thread: match self.thread.name() {
                Some(name) => name.to_owned(),
                None => format!("{:?}", self.thread.id()),
            },
            held_ms: self.held_ms(now_ms),
            backtrace: self.backtrace.as_ref().map(|b| b.to_string()),
        }
    }
}

/// Open sessions and the checkout figures, behind the pool's lock.
#[derive(Default)]
pub(crate) struct Slab {
    slots: Vec<Option<Record>>,
    free: Vec<usize>,
    next_id: u64,
    pub(crate) open: usize,
    /// Most sessions open at once.
    pub(crate) peak_open: usize,
    pub(crate) checkouts: u64,
    /// Checkouts that found no idle connection and waited.
    pub(crate) waited: u64,
    pub(crate) wait_total: Duration,
    pub(crate) wait_max: Duration,
    pub(crate) leaks: u64,
}

impl Slab {
    pub(crate) fn records(&self) -> impl Iterator<Item = &Record> {
        self.slots.iter().flatten()
    }

    pub(crate) fn records_mut(&mut self) -> impl Iterator<Item = &mut Record> {
        self.slots.iter_mut().flatten()
    }

    fn insert(&mut self, record: impl FnOnce(u64) -> Record) -> (usize, u64) {
        self.next_id += 1;
        let id = self.next_id;
        let record = Some(record(id));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = record;
                slot
            }
            None => {
                self.slots.push(record);
                self.slots.len() - 1
            }
        };
        self.open += 1;
        self.peak_open = self.peak_open.max(self.open);
        (slot, id)
    }

    fn remove(&mut self, slot: usize, id: u64) -> Option<Record> {
        let entry = self.slots.get_mut(slot)?;
        if entry.as_ref().is_some_and(|r| r.id == id) {
            self.free.push(slot);
            self.open -= 1;
            entry.take()
        } else {
            None
        }
    }

    pub(crate) fn get(&self, slot: usize, id: u64) -> Option<&Record> {
        self.slots.get(slot)?.as_ref().filter(|r| r.id == id)
    }
}

/// A session a thread holds: `(pool id, slot, session id)`.
type Held = (u64, usize, u64);

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// An open session; dropping it ends the session.
#[must_use = "the session ends when the token is dropped"]
pub struct SessionToken {
    tracker: Arc<PoolTracker>,
    slot: usize,
    id: u64,
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionToken")
            .field("pool", &self.tracker.name)
            .field("id", &self.id)
            .finish()
    }
}

impl SessionToken {
    /// Registers a session checked out at `location` on the current thread.
    /// `wait` is how long the checkout waited for its connection.
    pub(crate) fn open(
        tracker: &Arc<PoolTracker>,
        label: Option<&'static str>,
        location: &'static Location<'static>,
        wait: Duration,
        waited: bool,
    ) -> SessionToken {
        let backtrace = tracker
            .capture_backtraces
            .then(|| Box::new(Backtrace::force_capture()));
        let thread = thread::current();
        let started_ms = time::monotonic_ms();
        let (slot, id) = {
            let mut slab = tracker.sessions.lock();
            slab.checkouts += 1;
            slab.waited += u64::from(waited);
            slab.wait_total += wait;
            slab.wait_max = slab.wait_max.max(wait);
            slab.insert(|id| Record {
                id,
                label,
                location,
                thread,
                started_ms,
                leak_reported: false,
                backtrace,
            })
        };
        let _ = HELD.try_with(|held| held.borrow_mut().push((tracker.id, slot, id)));
        SessionToken {
            tracker: Arc::clone(tracker),
            slot,
            id,
        }
    }

    /// The session's id, unique within its pool.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The session as the report shows it.
    pub fn info(&self) -> Option<SessionInfo> {
        let slab = self.tracker.sessions.lock();
        let record = slab.get(self.slot, self.id)?;
        Some(record.info(&self.tracker.name, time::monotonic_ms()))
    }
}

impl Drop for SessionToken {
    fn drop(&mut self) {
        let record = self.tracker.sessions.lock().remove(self.slot, self.id);
        let _ = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            let me = (self.tracker.id, self.slot, self.id);
            if let Some(at) = held.iter().rposition(|h| *h == me) {
                held.swap_remove(at);
            }
        });
        if let Some(record) = record.filter(|r| r.leak_reported) {
            let info = record.info(&self.tracker.name, time::monotonic_ms());
            tracing::info!(
                pool = %info.pool,
                session = info.id,
                label = %info.label,
                location = %info.location,
                held_ms = info.held_ms,
                "connection reported as leaked came back: `{}` held it for {:.1?}",
                info.label,
                info.held(),
            );
        }
    }
}

/// The session of `tracker`'s pool the current thread already holds, if any.
pub(crate) fn held_by_current_thread(tracker: &PoolTracker) -> Option<SessionInfo> {
    let candidates: Vec<Held> = HELD
        .try_with(|held| {
            held.borrow()
                .iter()
                .filter(|h| h.0 == tracker.id)
                .copied()
                .collect()
        })
        .ok()?;
    if candidates.is_empty() {
        return None;
    }
    let now = time::monotonic_ms();
    let slab = tracker.sessions.lock();
    let mut found = None;
    let mut stale = Vec::new();
    // The latest session first: the one the nested call is inside of.
    for (pool, slot, id) in candidates.into_iter().rev() {
        // A token moved to another thread and dropped there leaves its
        // entry behind here: only a record still open counts.
        match slab.get(slot, id) {
            Some(record) if found.is_none() => found = Some(record.info(&tracker.name, now)),
            Some(_) => {}
            None => stale.push((pool, slot, id)),
        }
    }
    drop(slab);
    if !stale.is_empty() {
        let _ = HELD.try_with(|held| held.borrow_mut().retain(|h| !stale.contains(h)));
    }
    found
}
