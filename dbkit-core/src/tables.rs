//! The table clock: which cached results are still fresh (Contract 1).
//!
//! One process-wide monotonic counter, and per table the counter value of its
//! last committed write plus the number of writes to it in flight. A cached
//! read stamps its result with the counter value taken *before* its query ran;
//! the result stays valid while, for every table it depends on, no write is in
//! flight and the last write is not newer than the stamp. Invalidating a table
//! is therefore one atomic bump, whatever the caches hold: stale entries are
//! refused when met and left for the LRU to evict.
//!
//! Writes that go through [`begin_write`] mark their tables *before* the
//! statement runs, so between the database's commit and the bump no reader can
//! be served the old value (the pre-invalidation of Hibernate's
//! update-timestamps cache).
//!
//! Table identity: names are compared case-insensitively, quotes are ignored,
//! and a schema-qualified name maps to its bare table (`"app"."users"` and
//! `users` share one clock entry). Two schemas with a table of the same name
//! therefore invalidate each other: more misses, never a stale read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde::Serialize;

/// Hears what happens to the table clock, as r2d2's `HandleEvent` hears a
/// pool: the Redis tier shares every mark and bump with the other processes
/// through one. The clock knows it only as this trait, so nothing below
/// reaches back up. Every method defaults to doing nothing.
pub trait ClockListener: Send + Sync {
    /// A write to `tables` is starting (they are marked in flight).
    fn marked(&self, tables: &[&'static TableState]) {
        let _ = tables;
    }

    /// A write to `tables` committed, or they were invalidated explicitly;
    /// `released` when the write's marks are released with it.
    fn committed(&self, tables: &[&'static TableState], released: bool) {
        let _ = (tables, released);
    }

    /// A write to `tables` was rolled back or abandoned: its marks are
    /// released without a bump.
    fn released(&self, tables: &[&'static TableState]) {
        let _ = tables;
    }
}

static LISTENING: AtomicBool = AtomicBool::new(false);
static LISTENER: parking_lot::RwLock<Option<Arc<dyn ClockListener>>> =
    parking_lot::RwLock::new(None);

/// Installs (or with `None` removes) the one listener of the table clock.
pub fn set_listener(listener: Option<Arc<dyn ClockListener>>) {
    let mut slot = LISTENER.write();
    LISTENING.store(listener.is_some(), SeqCst);
    *slot = listener;
}

/// Calls `f` with the listener, if one is installed (one atomic load when
/// none is: the common case costs writes nothing).
#[inline]
fn notify(f: impl FnOnce(&dyn ClockListener)) {
    if !LISTENING.load(Relaxed) {
        return;
    }
    let listener = LISTENER.read().clone();
    if let Some(listener) = listener {
        f(&*listener);
    }
}

/// The process-wide write clock. Starts at 1 so that 0 means "never written".
static CLOCK: AtomicU64 = AtomicU64::new(1);

/// The pseudo-table every entry depends on: bumped by [`invalidate_all`] and by
/// writes whose tables cannot be determined.
static ALL: TableState = TableState::new("*");

/// Freshness state of one table.
#[derive(Debug)]
pub struct TableState {
    name: &'static str,
    last_write: AtomicU64,
    in_flight: AtomicU64,
    invalidations: AtomicU64,
}

impl TableState {
    const fn new(name: &'static str) -> Self {
        TableState {
            name,
            last_write: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        }
    }

    /// The table's normalized name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Records a committed write: every result stamped before now is stale.
    pub fn invalidate(&self) {
        let at = CLOCK.fetch_add(1, SeqCst) + 1;
        self.last_write.fetch_max(at, SeqCst);
        self.invalidations.fetch_add(1, SeqCst);
    }

    /// Whether a result read at `stamp` is still valid for this table.
    #[inline]
    fn allows(&self, stamp: u64) -> bool {
        // in_flight first: a writer bumps last_write before releasing its mark,
        // so seeing the mark released implies seeing the bump.
        self.in_flight.load(SeqCst) == 0 && self.last_write.load(SeqCst) <= stamp
    }

    fn snapshot(&self) -> TableStats {
        TableStats {
            table: self.name.to_owned(),
            invalidations: self.invalidations.load(SeqCst),
            writes_in_flight: self.in_flight.load(SeqCst),
        }
    }
}

/// The current value of the write clock. Take it *before* running the query
/// whose result will be stamped with it.
#[inline]
pub fn now() -> u64 {
    CLOCK.load(SeqCst)
}

/// Whether a result stamped at `stamp` and depending on `tables` is still fresh.
#[inline]
pub fn fresh(tables: &[&'static TableState], stamp: u64) -> bool {
    ALL.allows(stamp) && tables.iter().all(|t| t.allows(stamp))
}

fn registry() -> &'static RwLock<HashMap<Box<str>, &'static TableState, foldhash::fast::RandomState>>
{
    static TABLES: OnceLock<
        RwLock<HashMap<Box<str>, &'static TableState, foldhash::fast::RandomState>>,
    > = OnceLock::new();
    TABLES.get_or_init(Default::default)
}

/// Normalizes a table name: last dotted segment, quotes removed, lowercase.
///
/// ```
/// use dbkit_core::tables::normalize;
/// assert_eq!(normalize("Users"), "users");
/// assert_eq!(normalize(r#""app"."Accounts""#), "accounts");
/// assert_eq!(normalize("`posts`"), "posts");
/// ```
pub fn normalize(name: &str) -> Cow<'_, str> {
    let last = name.trim().rsplit('.').next().unwrap_or("");
    let bare = last.trim_matches(|c| matches!(c, '"' | '`' | '[' | ']'));
    if bare.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(bare.to_ascii_lowercase())
    } else {
        Cow::Borrowed(bare)
    }
}

/// The clock state of table `name`, registered on first use.
///
/// The set of tables a program touches is small and fixed, so states are
/// allocated once and live for the rest of the process.
pub fn table(name: &str) -> &'static TableState {
    let name = normalize(name);
    if let Some(state) = registry().read().get(name.as_ref()) {
        return state;
    }
    let mut tables = registry().write();
    if let Some(state) = tables.get(name.as_ref()) {
        return state;
    }
    let leaked: &'static str = Box::leak(name.clone().into_owned().into_boxed_str());
    let state: &'static TableState = Box::leak(Box::new(TableState::new(leaked)));
    tables.insert(leaked.into(), state);
    state
}

/// The clock state of table `name` if this process has met it; `None`
/// otherwise (no cached result can depend on it yet).
pub fn known_table(name: &str) -> Option<&'static TableState> {
    registry().read().get(normalize(name).as_ref()).copied()
}

/// Makes every cached result that depends on table `name` stale. O(1).
///
/// Writes through an instrumented diesel connection do this by themselves;
/// call it for changes dbkit cannot see (another program, a raw driver).
/// With the Redis tier installed it also bumps the table's shared
/// generation and tells the other processes.
///
/// ```
/// dbkit_core::tables::invalidate_table("users");
/// ```
pub fn invalidate_table(name: &str) {
    let t = table(name);
    t.invalidate();
    notify(|l| l.committed(&[t], false));
}

/// The pseudo-table standing for "every table" (a placeholder where a table
/// reference is needed before the real one is known).
pub fn table_all() -> &'static TableState {
    &ALL
}

/// [`table_all`] as a list: what a write with unknown tables marks.
pub fn every_table() -> &'static [&'static TableState] {
    static EVERY: [&TableState; 1] = [&ALL];
    &EVERY
}

/// Makes every cached result of the process stale (and, with the Redis
/// tier, of every process sharing it). O(1).
pub fn invalidate_all() {
    bump_written(&ALL);
    notify(|l| l.committed(every_table(), false));
}

/// Refuses every cached result until [`release_every_table`]: the Redis
/// tier's invalidation bus is down, so writes of other processes may go
/// unseen. Nothing is served from or stored in L1 meanwhile. Costs the hit
/// path nothing: it is a write in flight on the table every entry depends on.
#[cfg(feature = "redis")]
pub(crate) fn hold_every_table() {
    ALL.in_flight.fetch_add(1, SeqCst);
}

/// Ends a [`hold_every_table`]. Entries stored before the hold are refused
/// too: invalidations may have been missed while it lasted.
#[cfg(feature = "redis")]
pub(crate) fn release_every_table() {
    ALL.invalidate();
    ALL.in_flight.fetch_sub(1, SeqCst);
}

/// A write that has started and not yet completed: its tables refuse every
/// cached result until it is committed or dropped.
///
/// Dropping the mark without [`commit`](WriteMark::commit) (rollback, failed
/// statement, panic, broken connection) releases it without a bump.
#[derive(Debug)]
#[must_use = "a write mark blocks its tables until it is committed or dropped"]
pub struct WriteMark {
    tables: MarkedTables,
}

/// The tables of a mark: inline for a statement's few tables (no allocation
/// on the per-statement path), spilling to the heap for a transaction that
/// writes many.
#[derive(Debug)]
enum MarkedTables {
    Inline([&'static TableState; INLINE], usize),
    Heap(Vec<&'static TableState>),
}

const INLINE: usize = 4;

impl MarkedTables {
    fn as_slice(&self) -> &[&'static TableState] {
        match self {
            MarkedTables::Inline(tables, len) => &tables[..*len],
            MarkedTables::Heap(tables) => tables,
        }
    }

    fn push(&mut self, table: &'static TableState) {
        match self {
            MarkedTables::Inline(tables, len) if *len < INLINE => {
                tables[*len] = table;
                *len += 1;
            }
            MarkedTables::Inline(tables, len) => {
                let mut heap = tables[..*len].to_vec();
                heap.push(table);
                *self = MarkedTables::Heap(heap);
            }
            MarkedTables::Heap(tables) => tables.push(table),
        }
    }
}

/// Marks `tables` as being written. An empty slice means "tables unknown":
/// the mark then covers every table.
pub fn begin_write(tables: &[&'static TableState]) -> WriteMark {
    let mut mark = WriteMark {
        tables: MarkedTables::Inline([&ALL; INLINE], 0),
    };
    mark.extend(tables);
    mark
}

impl WriteMark {
    /// The tables this mark covers.
    pub fn tables(&self) -> &[&'static TableState] {
        self.tables.as_slice()
    }

    /// Adds tables to a mark still open (a transaction writing more tables);
    /// an empty slice means "tables unknown", as in [`begin_write`].
    pub fn extend(&mut self, more: &[&'static TableState]) {
        let more = if more.is_empty() { every_table() } else { more };
        let had = self.tables.as_slice().len();
        for t in more {
            if !self
                .tables
                .as_slice()
                .iter()
                .any(|have| std::ptr::eq(*have, *t))
            {
                t.in_flight.fetch_add(1, SeqCst);
                self.tables.push(t);
            }
        }
        let added = &self.tables.as_slice()[had..];
        if !added.is_empty() {
            notify(|l| l.marked(added));
        }
    }

    /// The write may have committed while it goes on (an outcome not
    /// known yet): bump its tables now and keep them marked.
    pub fn invalidate(&self) {
        let tables = self.tables.as_slice();
        for t in tables {
            bump_written(t);
        }
        if !tables.is_empty() {
            notify(|l| l.committed(tables, false));
        }
    }

    /// The write committed: bump its tables, then release the marks (in
    /// Redis too, with the tier: generations bumped, marks released and the
    /// tables published, in one round trip).
    pub fn commit(mut self) {
        let tables = self.tables.as_slice();
        for t in tables {
            bump_written(t);
        }
        if !tables.is_empty() {
            notify(|l| l.committed(tables, true));
        }
        self.release();
    }

    fn release(&mut self) {
        for t in self.tables.as_slice() {
            t.in_flight.fetch_sub(1, SeqCst);
        }
        self.tables = MarkedTables::Inline([&ALL; INLINE], 0);
    }
}

impl Drop for WriteMark {
    fn drop(&mut self) {
        let tables = self.tables.as_slice();
        if !tables.is_empty() {
            // Not committed: rolled back, failed or abandoned.
            notify(|l| l.released(tables));
        }
        self.release();
    }
}

/// Invalidation figures of one table, as shown in the report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TableStats {
    /// Normalized table name (`*` stands for "every table").
    pub table: String,
    /// Committed writes and explicit invalidations so far.
    pub invalidations: u64,
    /// Writes started and not yet completed.
    pub writes_in_flight: u64,
}

/// Every table this process has seen written (committed or invalidated),
/// `*` among them if it was: what a Redis tier installed now must tell the
/// other processes of, since their values in Redis may predate it.
pub fn written_tables() -> Vec<&'static TableState> {
    let mut written: Vec<&'static TableState> = registry()
        .read()
        .values()
        .copied()
        .filter(|t| t.last_write.load(SeqCst) > 0)
        .collect();
    if ALL_WRITTEN.load(SeqCst) {
        written.push(&ALL);
    }
    written
}

/// Whether a write of unknown tables (or `invalidate_all`) bumped `*`; the
/// Redis tier's own holds bump it too, and are not writes.
static ALL_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Bumps `table`, remembering a bump of `*` that stands for data written.
fn bump_written(table: &TableState) {
    if std::ptr::eq(table, &ALL) {
        ALL_WRITTEN.store(true, SeqCst);
    }
    table.invalidate();
}

/// Figures of every table the process has seen, `*` first.
pub fn table_stats() -> Vec<TableStats> {
    let mut all: Vec<TableStats> = registry().read().values().map(|t| t.snapshot()).collect();
    all.sort_by(|a, b| a.table.cmp(&b.table));
    all.insert(0, ALL.snapshot());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_table_whatever_the_spelling() {
        assert!(std::ptr::eq(
            table("t_spelling"),
            table("\"public\".\"T_Spelling\"")
        ));
        assert!(std::ptr::eq(table("t_spelling"), table("`t_spelling`")));
    }

    #[test]
    fn invalidation_refuses_older_stamps_only() {
        let t = table("t_invalidate");
        let before = now();
        assert!(fresh(&[t], before));
        invalidate_table("t_invalidate");
        assert!(!fresh(&[t], before));
        assert!(fresh(&[t], now()));
    }

    #[test]
    fn unrelated_table_keeps_entries_fresh() {
        let t = table("t_kept");
        let stamp = now();
        invalidate_table("t_other");
        assert!(fresh(&[t], stamp));
    }

    #[test]
    fn write_in_flight_refuses_even_fresh_stamps_until_committed() {
        let t = table("t_in_flight");
        let mark = begin_write(&[t]);
        assert!(!fresh(&[t], now()), "pre-invalidation must refuse reads");
        let during = now();
        mark.commit();
        assert!(
            !fresh(&[t], during),
            "a read stamped before the commit is stale"
        );
        assert!(fresh(&[t], now()));
    }

    #[test]
    fn dropped_mark_releases_without_bump() {
        let t = table("t_rollback");
        let stamp = now();
        let mut mark = begin_write(&[t]);
        mark.extend(&[t, table("t_rollback_2")]);
        assert_eq!(mark.tables().len(), 2);
        drop(mark);
        assert!(fresh(&[t, table("t_rollback_2")], stamp));
    }
}
