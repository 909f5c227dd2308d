//! RecordBatch v2: the format in which a producer sends records.
//!
//! - [`Record`] (with its [`Header`]s) is a record to append, with the sizes Kafka's
//!   `DefaultRecord` computes: exact at a position in a batch, and the upper bound
//!   ([`Record::size_upper_bound`]) that sizes batches and checks `max.request.size`.
//! - [`BatchBuilder`] writes records straight into a caller's buffer (a pool slot) and fills
//!   in the header and CRC32C when the batch is closed, byte for byte as Kafka's
//!   `MemoryRecordsBuilder`.
//! - [`Compressor`] is the codec a transport plugs in to compress a batch's records section
//!   (its documentation says what Kafka writes per codec and where compressed bytes live).
//! - [`RecordBatchHeader`] is a checked view of the 61-byte header, with the field ranges in
//!   [`field`].
//! - [`RecordBatchReader`] walks batches and their records, borrowed and lazily, verifying
//!   magic and CRC; it never panics on any input.

mod batch_header;
mod builder;
mod compression;
mod crc;
#[cfg(feature = "lz4")]
mod lz4;
mod reader;
mod size;

pub use batch_header::{
    CompressionType, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, RecordBatchHeader,
    TimestampType, field,
};
pub use builder::{BatchBuilder, BatchMeta, CodecError, WriteError, set_producer_state};
pub(crate) use builder::{decrement_sequence, increment_sequence};
pub use compression::{CompressionRatio, Compressor, NoCompression};
pub use crc::{crc32c, crc32c_append};
#[cfg(feature = "lz4")]
pub use lz4::{LZ4_BLOCK, LZ4_FRAME_HEADER, Lz4};
pub use reader::{DecodedRecord, Headers, RecordBatch, RecordBatchReader, Records};
pub use size::{Header, MAX_RECORD_OVERHEAD, Record};
