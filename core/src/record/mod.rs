//! RecordBatch v2: the format in which a producer sends records.
//!
//! - [`BatchBuilder`] writes records straight into a caller's buffer (a pool slot) and fills
//!   in the header and CRC32C when the batch is closed, byte for byte as Kafka's
//!   `MemoryRecordsBuilder`.
//! - [`RecordBatchHeader`] is a checked view of the 61-byte header, with the field ranges in
//!   [`field`].
//! - [`RecordBatchReader`] walks batches and their records, borrowed and lazily, verifying
//!   magic and CRC; it never panics on any input.

mod batch_header;
mod crc;
mod reader;
mod writer;

pub use batch_header::{
    CompressionType, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, RecordBatchHeader,
    TimestampType, field,
};
pub use crc::{crc32c, crc32c_append};
pub use reader::{DecodedRecord, Headers, RecordBatch, RecordBatchReader, Records};
pub use writer::{
    BatchBuilder, BatchMeta, Codec, CodecError, Header, MAX_RECORD_OVERHEAD, Record, WriteError,
    set_producer_state,
};
