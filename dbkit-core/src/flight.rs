//! Single-flight: concurrent misses of one key run the query once.

use std::thread::{self, ThreadId};

use parking_lot::{Condvar, Mutex};

/// A query being run by one caller (the leader) that others wait for.
#[derive(Debug)]
pub(crate) struct Flight {
    leader: ThreadId,
    done: Mutex<bool>,
    landed: Condvar,
}

impl Flight {
    pub(crate) fn new() -> Self {
        Flight {
            leader: thread::current().id(),
            done: Mutex::new(false),
            landed: Condvar::new(),
        }
    }

    /// Whether the calling thread is the one running the query: waiting on
    /// itself would deadlock (a cached function reached again from its body).
    pub(crate) fn led_by_current_thread(&self) -> bool {
        self.leader == thread::current().id()
    }

    /// Blocks until the leader has stored its result or given up.
    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.landed.wait(&mut done);
        }
    }

    /// Wakes every waiter; called once, whatever the leader's outcome.
    pub(crate) fn land(&self) {
        *self.done.lock() = true;
        self.landed.notify_all();
    }
}
