//! [`SendFuture`]: [`Producer::send_async`], a send that waits for buffer memory and
//! metadata without blocking its executor.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::delivery::DeliveryFuture;
use crate::error::SendError;
use crate::producer::{Completion, NoCallback, Producer, State};
use crate::record::ProducerRecord;

/// The future of [`Producer::send_async`]: resolves once the record is accepted (to its
/// [`DeliveryFuture`]) or refused. See [`Producer::send_async`] for its cancel safety.
#[must_use = "the record is sent only when the future is polled"]
pub struct SendFuture<'p, 'r> {
    pub(crate) producer: &'p Producer,
    pub(crate) record: &'r ProducerRecord<'r>,
    pub(crate) max_block_ms: u64,
    /// Core time of the first wait, set then (the common path reads no clock for it).
    pub(crate) started: Option<u64>,
    /// The registration of this future's waker, while it waits.
    pub(crate) waiter: Option<u64>,
    /// Core time since when it waits for buffer memory (`bufferpool-wait-time`).
    pub(crate) memory_wait_since: Option<u64>,
    pub(crate) done: bool,
}

impl SendFuture<'_, '_> {
    /// Waits up to `max_block` (in place of `max.block.ms`) for buffer memory and metadata
    /// (rdkafka's `queue_timeout`); zero gives up at once as
    /// [`try_send`](Producer::try_send) does, but with the timeout errors.
    pub fn max_block(mut self, max_block: Duration) -> Self {
        self.max_block_ms = u64::try_from(max_block.as_millis()).unwrap_or(u64::MAX);
        self
    }

    fn finish(
        &mut self,
        st: &mut State,
        result: Result<DeliveryFuture, SendError>,
    ) -> Poll<Result<DeliveryFuture, SendError>> {
        if let Some(id) = self.waiter.take() {
            st.send_waiters.remove(id);
        }
        self.done = true;
        if let Err(e) = &result {
            for i in &self.producer.shared.interceptors {
                i.on_send_error(self.record, e);
            }
        }
        Poll::Ready(result)
    }
}

impl std::fmt::Debug for SendFuture<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFuture")
            .field("topic", &self.record.topic)
            .field("max_block_ms", &self.max_block_ms)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

impl Future for SendFuture<'_, '_> {
    type Output = Result<DeliveryFuture, SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "SendFuture polled after it resolved");
        let producer = this.producer;
        let sh = &*producer.shared;
        if this.started.is_none() && this.waiter.is_none() {
            for i in &sh.interceptors {
                i.on_send(this.record);
            }
        }
        let prepared = match producer.prepare(this.record) {
            Ok(p) => p,
            Err(e) => return this.finish(&mut sh.lock(), Err(e)),
        };
        let mut completion = Some(Completion::<NoCallback>::Future);
        let mut guard = sh.lock();
        let st = &mut *guard;
        if let Some(since) = this.memory_wait_since.take() {
            let waited = sh.now_ms().saturating_sub(since);
            st.metrics.add_buffer_wait(Duration::from_millis(waited));
        }
        let waited_for = match producer.attempt(st, this.record, &prepared, &mut completion) {
            Ok(future) => {
                let result = future.ok_or(SendError::IoThreadGone);
                return this.finish(st, result);
            }
            Err(e @ (SendError::BufferFull | SendError::MetadataNotReady { .. })) => e,
            Err(e) => return this.finish(st, Err(e)),
        };
        let now = sh.now_ms();
        if matches!(waited_for, SendError::BufferFull) {
            this.memory_wait_since = Some(now);
        }
        let deadline = this
            .started
            .get_or_insert(now)
            .saturating_add(this.max_block_ms);
        if now >= deadline {
            let e = Producer::timed_out(st, &waited_for, this.record.topic, this.max_block_ms);
            return this.finish(st, Err(e));
        }
        // Registered under the lock that the I/O thread frees memory under: no wake-up
        // between the failed try and the registration is lost.
        this.waiter = Some(st.send_waiters.register(this.waiter, cx.waker(), deadline));
        if st.io_sleep_until.is_none_or(|until| deadline < until) {
            // The I/O thread sleeps past this deadline: let it sleep less.
            st.wake(&sh.waker);
        }
        Poll::Pending
    }
}

impl Drop for SendFuture<'_, '_> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter.take() {
            self.producer.shared.lock().send_waiters.remove(id);
        }
    }
}
