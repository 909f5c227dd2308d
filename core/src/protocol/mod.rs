//! Kafka wire protocol: primitive codec, headers, frames and the messages a producer needs.
//!
//! This module is a leaf: it depends on nothing else in the crate.
//!
//! Messages are structs that borrow from the buffer they were decoded from, with
//! `encoded_len(version)`, `encode(version, writer)` and `decode(version, reader)` (the
//! [`Message`] trait); the API version is a parameter, not a type per version. Arrays decode
//! as lazy [`Array`]s over the borrowed bytes: the decoder validates the whole structure up
//! front, so iterating cannot fail. Fields absent from a version decode as Kafka's default
//! and are not written when encoding that version. Source of truth: Kafka's message JSON
//! schemas (`clients/src/main/resources/common/message/*.json`).
//!
//! # The no-panic promise
//!
//! Every decoder in this module (and in the modules built on it) takes arbitrary bytes
//! from the network and **never panics**: it never indexes out of bounds (all access goes
//! through [`slice::get`] and checked splits), never overflows arithmetic on a length read
//! from the wire (checked operations), and reports malformed input as a typed
//! [`DecodeError`]. Decoders borrow from the input (`&'a str`, `&'a [u8]`) and never copy.
//!
//! Every encoder **never panics** either: when the output buffer holds `encoded_len()` bytes
//! it succeeds (unless a value cannot be expressed in the version, which is a typed
//! [`EncodeError`]); when the output buffer is too small it returns
//! [`EncodeError::BufferTooSmall`] naming the number of bytes the write needed, and leaves
//! the bytes already written in place (the caller discards the partial message).
//!
//! Both promises are exercised by property tests and by the fuzz targets in `fuzz/`.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod api_versions;
mod codec;
mod end_txn;
mod error;
mod find_coordinator;
mod frame;
mod header;
mod init_producer_id;
mod metadata;
mod produce;
mod sasl_authenticate;
mod sasl_handshake;
mod txn_offset_commit;
mod varint;

pub use add_offsets_to_txn::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
pub use add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopic, AddPartitionsToTxnTopicResult,
};
pub use api_versions::{
    ApiVersion, ApiVersionsRequest, ApiVersionsResponse, TRANSACTION_VERSION_FEATURE, negotiate,
};
pub use codec::{
    Array, ArrayIter, DecodeError, EncodeError, Message, Reader, TaggedField, TaggedFields, Uuid,
    Writer, empty_tagged_fields_len, len_prefix_len, nullable_bytes_len, nullable_string_len,
};
pub use end_txn::{EndTxnRequest, EndTxnResponse};
pub use error::{ErrorClass, ErrorCode};
pub use find_coordinator::{
    Coordinator, CoordinatorKey, FindCoordinatorRequest, FindCoordinatorResponse,
};
pub use frame::{Feed, FrameDecoder, FrameError, frame_size_prefix, write_frame_size};
pub use header::{ApiKey, RequestHeader, ResponseHeader};
pub use init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
pub use metadata::{
    AUTHORIZED_OPERATIONS_OMITTED, MetadataRequest, MetadataRequestNames, MetadataRequestTopic,
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
pub use produce::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceData,
    PartitionProduceResponse, ProduceRequest, ProduceRequestEncoder, ProduceResponse,
    TopicProduceData, TopicProduceResponse,
};
pub use sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
pub use sasl_handshake::{MechanismName, SaslHandshakeRequest, SaslHandshakeResponse};
pub use txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
pub(crate) use varint::{put_uvarint_exact, unsigned_varlong_len, zigzag32, zigzag64};
pub use varint::{unsigned_varint_len, varint_len, varlong_len};

/// Helpers shared by the message tests.
#[cfg(test)]
pub(crate) mod testing {
    extern crate std;
    use super::{Message, Writer};
    use std::vec::Vec;

    /// Encodes `m` at `version` and checks that `encoded_len` agrees with what was written.
    pub(crate) fn encode<'a, M: Message<'a>>(m: &M, version: i16) -> Vec<u8> {
        let mut buf = std::vec![0u8; 1 << 16];
        let mut w = Writer::new(&mut buf);
        m.encode(version, &mut w).unwrap();
        assert_eq!(
            w.position(),
            m.encoded_len(version),
            "encoded_len v{version}"
        );
        w.written().to_vec()
    }
}
