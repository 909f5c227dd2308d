//! Java's transactional methods on the std [`Producer`]: each starts the core's operation
//! and blocks until it ends, up to its timeout (`max.block.ms` for Java's overloads without
//! one). An operation that timed out goes on in the background; calling the same method
//! again resumes it, as in Java.

use std::time::{Duration, Instant};

use super::{Producer, State};
use crate::error::TransactionError;
use kafka_edge_core::ConsumedOffset;

impl Producer {
    /// Java's `initTransactions()`: finds the transaction coordinator of `transactional.id`
    /// and gets the producer id from it, which fences older producers with the same id and
    /// aborts their open transaction. Call it once, before the first transaction; waits up
    /// to `timeout` (Java's default: `max.block.ms`).
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), TransactionError> {
        self.transaction_op(timeout, |st, now| st.core.init_transactions(now))
    }

    /// Java's `beginTransaction()`: records sent from now on belong to the transaction
    /// (sends outside a transaction fail with [`SendError::Transaction`](crate::SendError)).
    pub fn begin_transaction(&self) -> Result<(), TransactionError> {
        let mut st = self.shared.lock();
        if st.closing || st.io_gone {
            return Err(TransactionError::Closed);
        }
        st.core
            .begin_transaction()
            .map_err(TransactionError::from_core)
    }

    /// Java's `commitTransaction()`: flushes, waits for every record of the transaction,
    /// then commits it; the records become visible to `read_committed` consumers together.
    /// Fails with [`TransactionError::Abortable`] when a record of the transaction failed
    /// (abort then), or [`TransactionError::Fenced`] when another producer took over the
    /// `transactional.id` or the coordinator aborted the transaction after
    /// `transaction.timeout.ms`.
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), TransactionError> {
        self.transaction_op(timeout, |st, now| st.core.commit_transaction(now))?;
        // Every record of the transaction has its outcome when this returns, as in Java.
        self.flush();
        Ok(())
    }

    /// Java's `abortTransaction()`: the records not sent yet fail with
    /// [`ProduceError::TransactionAborted`](crate::ProduceError), the others get their
    /// answers, then the transaction is aborted: none of its records is ever visible to
    /// `read_committed` consumers. Allowed after an abortable error; the producer is then
    /// ready for the next transaction.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), TransactionError> {
        self.transaction_op(timeout, |st, now| st.core.abort_transaction(now))?;
        // The records failed by the abort get their outcomes before this returns.
        self.flush();
        Ok(())
    }

    /// Java's `sendOffsetsToTransaction(offsets, groupMetadata)`: the consumed `offsets` of
    /// consumer group `group_id` are committed with the transaction, or not at all if it is
    /// aborted (consume-transform-produce exactly once). Committed without group membership
    /// (generation -1, as Java's deprecated `sendOffsetsToTransaction(offsets, groupId)`).
    /// Waits up to `max.block.ms`.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &[ConsumedOffset<'_>],
        group_id: &str,
    ) -> Result<(), TransactionError> {
        self.transaction_op(self.max_block(), |st, now| {
            st.core.send_offsets_to_transaction(now, offsets, group_id)
        })
    }

    /// `max.block.ms`, Java's timeout of the transactional methods.
    pub fn max_block(&self) -> Duration {
        Duration::from_millis(self.shared.max_block_ms)
    }

    /// Starts a core operation with `start`, then waits for its result up to `timeout`.
    fn transaction_op(
        &self,
        timeout: Duration,
        start: impl FnOnce(&mut State, u64) -> Result<(), kafka_edge_core::TransactionError>,
    ) -> Result<(), TransactionError> {
        let sh = &*self.shared;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        if sh.on_io_thread() {
            // A callback cannot wait for the I/O thread: it is the I/O thread.
            return Err(TransactionError::Timeout { timeout_ms: 0 });
        }
        let deadline = Instant::now() + timeout;
        let mut st = sh.lock();
        if st.closing || st.io_gone {
            return Err(TransactionError::Closed);
        }
        start(&mut st, sh.now_ms()).map_err(TransactionError::from_core)?;
        st.wake(&sh.waker);
        loop {
            if let Some(result) = st.core.poll_transaction() {
                return result.map_err(TransactionError::from_core);
            }
            if st.io_gone {
                return Err(TransactionError::Closed);
            }
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Err(TransactionError::Timeout { timeout_ms });
            };
            st.waiters += 1;
            // The I/O thread signals news; the short cap covers results that end on a timer.
            st = sh
                .progress
                .wait_timeout(st, left.min(Duration::from_millis(20)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            st.waiters -= 1;
        }
    }
}
