//! [`ProducerInterceptor`]: Java's `ProducerInterceptor`, observing records on their way in
//! and their outcomes.

use crate::delivery::DeliveryResult;
use crate::error::SendError;
use crate::record::ProducerRecord;

/// Sees every record handed to the producer and every outcome (Java's
/// `ProducerInterceptor`). Interceptors run in the order they were added; they must be
/// quick and must not block: `on_send` runs on the caller's thread before the record is
/// accepted, `on_acknowledgement` on the I/O thread before the record's callback or future
/// completes.
///
/// Unlike Java's, `on_send` observes the record and cannot replace it.
pub trait ProducerInterceptor: Send + Sync {
    /// A record is about to be sent.
    fn on_send(&self, record: &ProducerRecord<'_>) {
        let _ = record;
    }

    /// `send` refused a record (it never reaches the broker; no outcome follows).
    fn on_send_error(&self, record: &ProducerRecord<'_>, error: &SendError) {
        let _ = (record, error);
    }

    /// An accepted record's outcome.
    fn on_acknowledgement(&self, result: &DeliveryResult) {
        let _ = result;
    }
}

/// An interceptor shared with the application (to read its counters, say).
impl<T: ProducerInterceptor + ?Sized> ProducerInterceptor for std::sync::Arc<T> {
    fn on_send(&self, record: &ProducerRecord<'_>) {
        (**self).on_send(record);
    }

    fn on_send_error(&self, record: &ProducerRecord<'_>, error: &SendError) {
        (**self).on_send_error(record, error);
    }

    fn on_acknowledgement(&self, result: &DeliveryResult) {
        (**self).on_acknowledgement(result);
    }
}
