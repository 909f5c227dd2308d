//! [`DeliveryFuture`] and callbacks: the completion of each accepted record, exactly once,
//! with state per batch rather than per record.
//!
//! The futures of a batch's records share one [`BatchOutcome`] (one `Arc` per batch): a
//! future is that `Arc` plus its record's index and timestamp, and derives its offset from
//! the outcome of the range that holds it (`base_offset + index - first`). Callbacks are
//! stored per batch in runs of consecutive records with the same closure type
//! ([`Callbacks`]): one contiguous `Vec` per run, no box per record, one virtual call per
//! run to complete them in record order. Whatever is dropped without an outcome (only a
//! panicking I/O thread causes that) completes with [`ProduceError::Abandoned`].

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::ProduceError;
use crate::interceptor::ProducerInterceptor;
use crate::record::RecordMetadata;

/// A record's outcome.
pub type DeliveryResult = Result<RecordMetadata, ProduceError>;

/// Where a delivered range of a batch was written.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The offset of the range's first record, or -1 when unknown.
    pub(crate) base_offset: i64,
    /// The broker's append time for `LogAppendTime` topics, else -1.
    pub(crate) log_append_time_ms: i64,
}

/// The outcome of the records `first..first + count` of one batch (a whole batch, or one
/// piece of a split batch).
#[derive(Debug, Clone)]
pub(crate) struct RangeOutcome {
    pub(crate) first: u32,
    pub(crate) count: u32,
    pub(crate) result: Result<Written, ProduceError>,
}

impl RangeOutcome {
    /// Every record not reported otherwise (the first outcome of a record wins).
    pub(crate) fn abandoned() -> Self {
        Self {
            first: 0,
            count: u32::MAX,
            result: Err(ProduceError::Abandoned),
        }
    }

    fn contains(&self, index: u32) -> bool {
        index >= self.first && index - self.first < self.count
    }

    /// The outcome of record `index` (in the range), whose `CreateTime` is `timestamp`.
    pub(crate) fn record(&self, index: u32, timestamp: i64) -> DeliveryResult {
        match &self.result {
            Ok(w) => Ok(RecordMetadata {
                topic: w.topic.clone(),
                partition: w.partition,
                offset: if w.base_offset >= 0 {
                    w.base_offset + i64::from(index.saturating_sub(self.first))
                } else {
                    -1
                },
                timestamp: if w.log_append_time_ms >= 0 {
                    w.log_append_time_ms
                } else {
                    timestamp
                },
            }),
            Err(e) => Err(e.clone()),
        }
    }
}

#[derive(Default)]
struct OutcomeState {
    /// In the order reported; a record's outcome is the first range that holds it.
    ranges: Vec<RangeOutcome>,
    /// The wakers of polled futures, by record index.
    wakers: Vec<(u32, Waker)>,
}

impl OutcomeState {
    fn lookup(&self, index: u32, timestamp: i64) -> Option<DeliveryResult> {
        self.ranges
            .iter()
            .find(|r| r.contains(index))
            .map(|r| r.record(index, timestamp))
    }
}

/// The outcome of one batch, shared by the [`DeliveryFuture`]s of its records.
#[derive(Default)]
pub(crate) struct BatchOutcome {
    state: Mutex<OutcomeState>,
    done: Condvar,
}

impl BatchOutcome {
    fn lock(&self) -> MutexGuard<'_, OutcomeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reports the outcome of a range: its futures complete (already reported records keep
    /// their first outcome).
    pub(crate) fn report(&self, outcome: &RangeOutcome) {
        let mut woken = Vec::new();
        {
            let mut s = self.lock();
            s.ranges.push(outcome.clone());
            woken.extend(
                s.wakers
                    .extract_if(.., |(index, _)| outcome.contains(*index))
                    .map(|(_, w)| w),
            );
        }
        self.done.notify_all();
        woken.into_iter().for_each(Waker::wake);
    }
}

/// The producer's reference to a batch's [`BatchOutcome`]: dropped before the whole batch
/// was reported, it reports the rest as [`ProduceError::Abandoned`].
pub(crate) struct FutureBatch(Option<Arc<BatchOutcome>>);

impl FutureBatch {
    pub(crate) fn new() -> Self {
        Self(Some(Arc::default()))
    }

    /// The outcome, for a new future or for reporting a range.
    pub(crate) fn outcome(&self) -> Option<&Arc<BatchOutcome>> {
        self.0.as_ref()
    }

    /// The outcome, once every range of the batch is on its way to be reported.
    pub(crate) fn into_outcome(mut self) -> Option<Arc<BatchOutcome>> {
        self.0.take()
    }
}

impl Drop for FutureBatch {
    fn drop(&mut self) {
        if let Some(o) = self.0.take() {
            o.report(&RangeOutcome::abandoned());
        }
    }
}

/// The outcome of one record, to come: wait for it ([`wait`](Self::wait),
/// [`wait_timeout`](Self::wait_timeout)) or `.await` it (no runtime needed: the I/O thread
/// wakes the task's `Waker`). Java's `Future<RecordMetadata>`.
///
/// Dropping it does not cancel the record.
#[derive(Clone)]
#[must_use = "the record is sent anyway; wait on the future to learn its outcome"]
pub struct DeliveryFuture {
    batch: Arc<BatchOutcome>,
    /// The record's index in its batch.
    index: u32,
    /// The record's `CreateTime`.
    timestamp: i64,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("index", &self.index)
            .field("result", &self.try_result())
            .finish()
    }
}

impl DeliveryFuture {
    pub(crate) fn new(batch: Arc<BatchOutcome>, index: u32, timestamp: i64) -> Self {
        Self {
            batch,
            index,
            timestamp,
        }
    }

    /// Blocks until the outcome is known.
    pub fn wait(self) -> DeliveryResult {
        let mut s = self.batch.lock();
        loop {
            if let Some(r) = s.lookup(self.index, self.timestamp) {
                return r;
            }
            s = self.batch.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Blocks until the outcome is known or `timeout` passes (then `None`; the record is
    /// still on its way).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<DeliveryResult> {
        let deadline = Instant::now() + timeout;
        let mut s = self.batch.lock();
        loop {
            if let Some(r) = s.lookup(self.index, self.timestamp) {
                return Some(r);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            s = self
                .batch
                .done
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The outcome, if known already.
    pub fn try_result(&self) -> Option<DeliveryResult> {
        self.batch.lock().lookup(self.index, self.timestamp)
    }

    /// Whether the outcome is known.
    pub fn is_done(&self) -> bool {
        let s = self.batch.lock();
        s.ranges.iter().any(|r| r.contains(self.index))
    }
}

impl Future for DeliveryFuture {
    type Output = DeliveryResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        let mut s = self.batch.lock();
        if let Some(r) = s.lookup(self.index, self.timestamp) {
            return Poll::Ready(r);
        }
        match s.wakers.iter_mut().find(|(i, _)| *i == self.index) {
            Some((_, w)) if w.will_wake(cx.waker()) => {}
            Some((_, w)) => w.clone_from(cx.waker()),
            None => s.wakers.push((self.index, cx.waker().clone())),
        }
        Poll::Pending
    }
}

/// The interceptors, which see every record's outcome before its callback runs.
pub(crate) type Interceptors = [Box<dyn ProducerInterceptor>];

/// A run of consecutive records of one batch, `first()..end()`, with callbacks of one
/// closure type ([`Callbacks`]), behind one box per run.
pub(crate) trait CallbackRun: Send {
    /// For appending to a run of the same closure type.
    fn as_any(&mut self) -> &mut dyn Any;
    /// The index of the run's first record.
    fn first(&self) -> u32;
    /// One past the index of the run's last record.
    fn end(&self) -> u32;
    /// Heap bytes the run holds (its box and its vector's capacity).
    fn heap_bytes(&self) -> usize;
    /// Moves the records from index `at` on into a new run.
    fn split_off(&mut self, at: u32) -> Box<dyn CallbackRun>;
    /// Runs the interceptors and callbacks of the run's records, in order; every record
    /// must be in `outcome`. A panicking callback or interceptor is logged (as Java logs a
    /// callback's exception) and the others still run.
    fn complete(self: Box<Self>, outcome: &RangeOutcome, interceptors: &Interceptors);
}

/// The callbacks of a run of records, with each record's `CreateTime` (for its
/// [`RecordMetadata`]).
pub(crate) struct Callbacks<F: FnOnce(DeliveryResult) + Send + 'static> {
    first: u32,
    entries: Vec<(F, i64)>,
}

impl<F> Callbacks<F>
where
    F: FnOnce(DeliveryResult) + Send + 'static,
{
    /// A run starting at record `first`, with room for `capacity` records.
    pub(crate) fn new(first: u32, capacity: usize) -> Self {
        Self {
            first,
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Appends the next record's callback; returns the heap bytes added.
    pub(crate) fn push(&mut self, callback: F, timestamp: i64) -> usize {
        let before = self.entries.capacity();
        self.entries.push((callback, timestamp));
        (self.entries.capacity() - before) * size_of::<(F, i64)>()
    }
}

impl<F> CallbackRun for Callbacks<F>
where
    F: FnOnce(DeliveryResult) + Send + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn first(&self) -> u32 {
        self.first
    }

    fn end(&self) -> u32 {
        self.first
            .saturating_add(u32::try_from(self.entries.len()).unwrap_or(u32::MAX))
    }

    fn heap_bytes(&self) -> usize {
        size_of::<Self>() + self.entries.capacity() * size_of::<(F, i64)>()
    }

    fn split_off(&mut self, at: u32) -> Box<dyn CallbackRun> {
        let k = (at.saturating_sub(self.first) as usize).min(self.entries.len());
        Box::new(Self {
            first: at.max(self.first),
            entries: self.entries.split_off(k),
        })
    }

    fn complete(mut self: Box<Self>, outcome: &RangeOutcome, interceptors: &Interceptors) {
        let first = self.first;
        let mut entries = (first..).zip(self.entries.drain(..));
        // One unwinding guard for the run: a callback that panics is logged and the loop
        // goes on with the next record.
        loop {
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                for (index, (callback, timestamp)) in &mut entries {
                    let result = outcome.record(index, timestamp);
                    if !interceptors.is_empty() {
                        run_interceptors(interceptors, &result);
                    }
                    callback(result);
                }
            }));
            match run {
                Ok(()) => break,
                Err(_) => log::error!("a callback panicked"),
            }
        }
    }
}

impl<F: FnOnce(DeliveryResult) + Send + 'static> Drop for Callbacks<F> {
    fn drop(&mut self) {
        // Only records never completed are left: a panicking I/O thread.
        for (callback, _) in self.entries.drain(..) {
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                callback(Err(ProduceError::Abandoned));
            }));
            if run.is_err() {
                log::error!("a callback panicked");
            }
        }
    }
}

/// Runs `interceptors` on `result`, catching a panic (the record's callback still runs).
fn run_interceptors(interceptors: &Interceptors, result: &DeliveryResult) {
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        for i in interceptors {
            i.on_acknowledgement(result);
        }
    }));
    if run.is_err() {
        log::error!("an interceptor panicked");
    }
}

/// The completion state of a range of a batch, taken out of the producer's tables under
/// its lock to complete outside it. Dropped unreported, it reports
/// [`ProduceError::Abandoned`].
pub(crate) struct Finished {
    pub(crate) outcome: RangeOutcome,
    /// The range's futures (their shared outcome).
    pub(crate) futures: Option<Arc<BatchOutcome>>,
    /// The range's callbacks, in record order.
    pub(crate) runs: Vec<Box<dyn CallbackRun>>,
    /// Heap bytes of `runs`, counted against the completion budget until completed.
    pub(crate) bytes: usize,
}

impl Finished {
    /// Completes the futures, then runs the callbacks in record order (Java completes a
    /// batch's futures, then calls its callbacks).
    pub(crate) fn complete(mut self, interceptors: &Interceptors) {
        if let Some(f) = self.futures.take() {
            f.report(&self.outcome);
        }
        for run in std::mem::take(&mut self.runs) {
            run.complete(&self.outcome, interceptors);
        }
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(f) = self.futures.take() {
            f.report(&RangeOutcome::abandoned());
        }
        // The runs' own drop abandons their records.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    fn written(base_offset: i64) -> Result<Written, ProduceError> {
        Ok(Written {
            topic: Arc::from("t"),
            partition: 1,
            base_offset,
            log_append_time_ms: -1,
        })
    }

    fn meta(offset: i64, timestamp: i64) -> RecordMetadata {
        RecordMetadata {
            topic: Arc::from("t"),
            partition: 1,
            offset,
            timestamp,
        }
    }

    #[test]
    fn futures_of_a_batch_share_its_outcome_and_wait_across_threads() {
        let batch = FutureBatch::new();
        let outcome = batch.outcome().unwrap().clone();
        let f0 = DeliveryFuture::new(outcome.clone(), 0, 10);
        let f2 = DeliveryFuture::new(outcome.clone(), 2, 12);
        assert_eq!(f2.wait_timeout(Duration::from_millis(10)), None);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let all = RangeOutcome {
                first: 0,
                count: 3,
                result: written(40),
            };
            outcome.report(&all);
            drop(batch.into_outcome());
        });
        assert_eq!(f2.clone().wait(), Ok(meta(42, 12)));
        assert_eq!(f0.wait(), Ok(meta(40, 10)));
        assert!(f2.is_done());
        t.join().unwrap();
    }

    #[test]
    fn a_split_batch_reports_each_piece_with_its_own_base_offset() {
        let batch = FutureBatch::new();
        let o = batch.outcome().unwrap().clone();
        let f1 = DeliveryFuture::new(o.clone(), 1, 0);
        let f3 = DeliveryFuture::new(o.clone(), 3, 0);
        o.report(&RangeOutcome {
            first: 2,
            count: 2,
            result: written(100),
        });
        assert_eq!(f1.try_result(), None);
        assert_eq!(f3.try_result(), Some(Ok(meta(101, 0))));
        drop(batch);
        assert_eq!(f1.try_result(), Some(Err(ProduceError::Abandoned)));
        assert_eq!(
            f3.try_result(),
            Some(Ok(meta(101, 0))),
            "the first outcome wins"
        );
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
        let batch = FutureBatch::new();
        let mut f = DeliveryFuture::new(batch.outcome().unwrap().clone(), 0, 0);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        drop(batch);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            Pin::new(&mut f).poll(&mut cx),
            Poll::Ready(Err(ProduceError::Abandoned))
        );
    }

    #[test]
    fn a_panicking_callback_or_interceptor_leaves_the_others_their_outcome() {
        struct Panics;
        impl ProducerInterceptor for Panics {
            fn on_acknowledgement(&self, _: &DeliveryResult) {
                panic!("interceptor");
            }
        }
        let seen = Arc::new(AtomicUsize::new(0));
        let mut run = Callbacks::new(0, 4);
        for i in 0..4 {
            let seen = seen.clone();
            run.push(
                move |r: DeliveryResult| {
                    assert!(r.is_ok());
                    seen.fetch_add(1, Ordering::SeqCst);
                    assert_ne!(i, 1, "callback 1 panics");
                },
                0,
            );
        }
        let interceptors: Vec<Box<dyn ProducerInterceptor>> = vec![Box::new(Panics)];
        Box::new(run).complete(
            &RangeOutcome {
                first: 0,
                count: 4,
                result: written(0),
            },
            &interceptors,
        );
        assert_eq!(seen.load(Ordering::SeqCst), 4, "every callback ran once");
    }

    #[test]
    fn callbacks_run_in_order_once_and_are_abandoned_when_dropped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut run = Callbacks::new(0, 2);
        for i in 0..4 {
            let seen = seen.clone();
            run.push(
                move |r: DeliveryResult| seen.lock().unwrap().push((i, r)),
                i64::from(i),
            );
        }
        assert_eq!(run.end(), 4);
        let mut run: Box<dyn CallbackRun> = Box::new(run);
        let tail = run.split_off(2);
        assert_eq!((run.end(), tail.first(), tail.end()), (2, 2, 4));
        tail.complete(
            &RangeOutcome {
                first: 2,
                count: 2,
                result: written(7),
            },
            &[],
        );
        drop(run);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (2, Ok(meta(7, 2))),
                (3, Ok(meta(8, 3))),
                (0, Err(ProduceError::Abandoned)),
                (1, Err(ProduceError::Abandoned)),
            ]
        );
    }
}
