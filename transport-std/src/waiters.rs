//! [`SendWaiters`]: the async sends waiting for buffer memory or metadata, woken by the
//! I/O thread (one waker each, not a thread; no polling).

use std::task::Waker;

/// The wakers of async sends waiting for buffer memory or metadata, each with the core
/// time at which its `max.block.ms` runs out. The I/O thread wakes them all when outcomes
/// freed memory or responses came (they try again), and each at its deadline.
#[derive(Default)]
pub(crate) struct SendWaiters {
    next_id: u64,
    entries: Vec<(u64, Waker, u64)>,
}

impl SendWaiters {
    /// Registers (or updates, given its id) a waiting task; returns its id.
    pub(crate) fn register(&mut self, id: Option<u64>, waker: &Waker, deadline_ms: u64) -> u64 {
        if let Some(id) = id
            && let Some(entry) = self.entries.iter_mut().find(|e| e.0 == id)
        {
            if !entry.1.will_wake(waker) {
                entry.1.clone_from(waker);
            }
            entry.2 = deadline_ms;
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push((id, waker.clone(), deadline_ms));
        id
    }

    pub(crate) fn remove(&mut self, id: u64) {
        if let Some(i) = self.entries.iter().position(|e| e.0 == id) {
            self.entries.swap_remove(i);
        }
    }

    /// The earliest deadline, for the I/O thread's sleep.
    pub(crate) fn earliest_deadline(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.2).min()
    }

    /// The wakers to wake now: all of them after news (`all`), else those whose deadline
    /// passed. Woken tasks register again if they still wait.
    pub(crate) fn take_due(&mut self, all: bool, now_ms: u64) -> Vec<Waker> {
        if all {
            return self.take_all();
        }
        let mut due = Vec::new();
        self.entries.retain(|e| {
            let keep = e.2 > now_ms;
            if !keep {
                due.push(e.1.clone());
            }
            keep
        });
        due
    }

    /// Every waker (the producer closes or its I/O thread ended).
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.entries.drain(..).map(|e| e.1).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn deadlines_wake_only_the_tasks_due_and_news_wakes_all() {
        let mut w = SendWaiters::default();
        let (a_count, a) = waker();
        let (b_count, b) = waker();
        let ia = w.register(None, &a, 100);
        let ib = w.register(None, &b, 50);
        assert_ne!(ia, ib);
        assert_eq!(w.earliest_deadline(), Some(50));
        // A task polled again updates its entry instead of adding one.
        assert_eq!(w.register(Some(ib), &b, 60), ib);
        assert_eq!(w.earliest_deadline(), Some(60));
        assert!(w.take_due(false, 59).is_empty());
        w.take_due(false, 60).into_iter().for_each(Waker::wake);
        assert_eq!(
            (
                a_count.0.load(Ordering::SeqCst),
                b_count.0.load(Ordering::SeqCst)
            ),
            (0, 1)
        );
        assert_eq!(w.earliest_deadline(), Some(100));
        w.take_due(true, 0).into_iter().for_each(Waker::wake);
        assert_eq!(a_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(w.earliest_deadline(), None);
    }

    #[test]
    fn a_dropped_send_leaves_the_registry() {
        let mut w = SendWaiters::default();
        let (count, a) = waker();
        let id = w.register(None, &a, 10);
        w.remove(id);
        assert_eq!(w.earliest_deadline(), None);
        assert!(w.take_all().is_empty());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }
}
