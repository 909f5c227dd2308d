//! [`DeliveryFuture`] and the completion of each accepted record, exactly once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::ProduceError;
use crate::record::RecordMetadata;

/// A record's outcome.
pub type DeliveryResult = Result<RecordMetadata, ProduceError>;

/// A callback for [`Producer::send_with_callback`](crate::Producer::send_with_callback),
/// called once on the I/O thread with the record's outcome.
pub(crate) type Callback = Box<dyn FnOnce(DeliveryResult) + Send + 'static>;

#[derive(Debug, Default)]
struct SlotState {
    result: Option<DeliveryResult>,
    waker: Option<Waker>,
}

/// The completion slot a [`DeliveryFuture`] shares with the I/O thread.
#[derive(Debug, Default)]
pub(crate) struct DeliverySlot {
    state: Mutex<SlotState>,
    done: Condvar,
}

impl DeliverySlot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn complete(&self, result: DeliveryResult) {
        let waker = {
            let mut s = self.lock();
            if s.result.is_some() {
                return;
            }
            s.result = Some(result);
            s.waker.take()
        };
        self.done.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The outcome of one record, to come: wait for it ([`wait`](Self::wait),
/// [`wait_timeout`](Self::wait_timeout)) or `.await` it (no runtime needed: the I/O thread
/// wakes the task's `Waker`). Java's `Future<RecordMetadata>`.
///
/// Dropping it does not cancel the record.
#[derive(Debug, Clone)]
#[must_use = "the record is sent anyway; wait on the future to learn its outcome"]
pub struct DeliveryFuture {
    slot: Arc<DeliverySlot>,
}

impl DeliveryFuture {
    pub(crate) fn new() -> (Self, Arc<DeliverySlot>) {
        let slot = Arc::new(DeliverySlot::default());
        (Self { slot: slot.clone() }, slot)
    }

    /// Blocks until the outcome is known.
    pub fn wait(self) -> DeliveryResult {
        let mut s = self.slot.lock();
        loop {
            if let Some(r) = &s.result {
                return r.clone();
            }
            s = self.slot.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until the outcome is known or `timeout` passes (then `None`; the record is
    /// still on its way).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<DeliveryResult> {
        let deadline = Instant::now() + timeout;
        let mut s = self.slot.lock();
        loop {
            if let Some(r) = &s.result {
                return Some(r.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            s = self
                .slot
                .done
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The outcome, if known already.
    pub fn try_result(&self) -> Option<DeliveryResult> {
        self.slot.lock().result.clone()
    }

    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        self.slot.lock().result.is_some()
    }
}

impl Future for DeliveryFuture {
    type Output = DeliveryResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        let mut s = self.slot.lock();
        if let Some(r) = &s.result {
            return Poll::Ready(r.clone());
        }
        match &mut s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// How an accepted record's outcome is handed over.
pub(crate) enum Completion {
    /// To a [`DeliveryFuture`].
    Future(Arc<DeliverySlot>),
    /// To a callback.
    Callback(Callback),
}

impl Completion {
    pub(crate) fn complete(self, result: DeliveryResult) {
        match self {
            Self::Future(slot) => slot.complete(result),
            Self::Callback(cb) => cb(result),
        }
    }
}

/// An accepted record waiting for its outcome. If it is dropped without one (which only a
/// panicking I/O thread causes) it completes with [`ProduceError::Abandoned`], so that every
/// future and callback completes exactly once.
pub(crate) struct Pending {
    completion: Option<Completion>,
    /// The record's `CreateTime`, for its [`RecordMetadata`].
    pub(crate) timestamp: i64,
}

impl Pending {
    pub(crate) fn new(completion: Completion, timestamp: i64) -> Self {
        Self {
            completion: Some(completion),
            timestamp,
        }
    }

    /// Takes the completion out (then dropping `self` does nothing).
    pub(crate) fn take(mut self) -> Option<Completion> {
        self.completion.take()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(c) = self.completion.take() {
            c.complete(Err(ProduceError::Abandoned));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    fn meta() -> RecordMetadata {
        RecordMetadata {
            topic: Arc::from("t"),
            partition: 1,
            offset: 7,
            timestamp: 9,
        }
    }

    #[test]
    fn wait_sees_the_outcome_from_another_thread() {
        let (f, slot) = DeliveryFuture::new();
        assert_eq!(f.wait_timeout(Duration::from_millis(10)), None);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            Completion::Future(slot).complete(Ok(meta()));
        });
        assert_eq!(f.clone().wait(), Ok(meta()));
        assert!(f.is_done());
        t.join().unwrap();
    }

    #[test]
    fn the_waker_is_woken_once_completed() {
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (mut f, slot) = DeliveryFuture::new();
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        Completion::Future(slot).complete(Err(ProduceError::Abandoned));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            Pin::new(&mut f).poll(&mut cx),
            Poll::Ready(Err(ProduceError::Abandoned))
        );
    }

    #[test]
    fn a_pending_record_dropped_without_outcome_is_abandoned() {
        let (f, slot) = DeliveryFuture::new();
        drop(Pending::new(Completion::Future(slot), 0));
        assert_eq!(f.try_result(), Some(Err(ProduceError::Abandoned)));
        let called = Arc::new(AtomicUsize::new(0));
        let c = called.clone();
        let p = Pending::new(
            Completion::Callback(Box::new(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })),
            0,
        );
        let completion = p.take().unwrap();
        assert_eq!(called.load(Ordering::SeqCst), 0, "take does not complete");
        completion.complete(Ok(meta()));
        assert_eq!(called.load(Ordering::SeqCst), 1);
    }
}
