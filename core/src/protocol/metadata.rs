//! `Metadata` (key 3), versions 1-13 (flexible from 9): brokers, topics, partitions and their
//! leaders.
//!
//! Version notes from `MetadataRequest.json` / `MetadataResponse.json`: v4 adds
//! `allow_auto_topic_creation`; v5 `offline_replicas`; v7 `leader_epoch`; v8 authorized
//! operations; v10 topic ids (names nullable in requests); v11 drops the cluster authorized
//! operations; v12 makes response topic names nullable (topics asked by id); v13 adds a
//! top-level error code.

use super::codec::{
    Array, DecodeError, EncodeError, Message, Reader, Uuid, Writer, empty_tagged_fields_len,
    nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};

const API: ApiKey = ApiKey::Metadata;

mod field {
    use super::FieldVersions;
    pub(super) const ALLOW_AUTO_TOPIC_CREATION: FieldVersions = FieldVersions::since(4);
    pub(super) const INCLUDE_CLUSTER_AUTHORIZED_OPERATIONS: FieldVersions =
        FieldVersions::range(8, 10);
    pub(super) const INCLUDE_TOPIC_AUTHORIZED_OPERATIONS: FieldVersions = FieldVersions::since(8);
    pub(super) const TOPIC_ID: FieldVersions = FieldVersions::since(10);
    pub(super) const REQUEST_NAME_NULLABLE: FieldVersions = FieldVersions::since(10);
    pub(super) const THROTTLE_TIME_MS: FieldVersions = FieldVersions::since(3);
    pub(super) const CLUSTER_ID: FieldVersions = FieldVersions::since(2);
    pub(super) const RESPONSE_NAME_NULLABLE: FieldVersions = FieldVersions::since(12);
    pub(super) const LEADER_EPOCH: FieldVersions = FieldVersions::since(7);
    pub(super) const OFFLINE_REPLICAS: FieldVersions = FieldVersions::since(5);
    pub(super) const TOPIC_AUTHORIZED_OPERATIONS: FieldVersions = FieldVersions::since(8);
    pub(super) const CLUSTER_AUTHORIZED_OPERATIONS: FieldVersions = FieldVersions::range(8, 10);
    pub(super) const ERROR_CODE: FieldVersions = FieldVersions::since(13);
}

/// "Authorized operations were not asked for" (`INT32_MIN`), the default of those fields.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

const fn flexible(version: i16) -> bool {
    API.is_flexible(version)
}

const fn if_has(f: FieldVersions, version: i16, len: usize) -> usize {
    if f.has(version) { len } else { 0 }
}

/// A name that may be null only in some versions.
fn write_name(
    w: &mut Writer<'_>,
    version: i16,
    nullable: FieldVersions,
    name: Option<&str>,
) -> Result<(), EncodeError> {
    if name.is_none() && !nullable.has(version) {
        return Err(EncodeError::UnexpectedNull);
    }
    w.write_nullable_string_in(flexible(version), name)
}

fn read_name<'a>(
    r: &mut Reader<'a>,
    version: i16,
    nullable: FieldVersions,
) -> Result<Option<&'a str>, DecodeError> {
    let name = r.read_nullable_string_in(flexible(version))?;
    if name.is_none() && !nullable.has(version) {
        return Err(DecodeError::UnexpectedNull);
    }
    Ok(name)
}

/// A topic asked for: by name, or by id (v10+; brokers answer ids from v12 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataRequestTopic<'a> {
    /// The topic id (v10+), [`Uuid::ZERO`] when asking by name.
    pub topic_id: Uuid,
    /// The topic name; `None` (v10+) when asking by id.
    pub name: Option<&'a str>,
}

impl<'a> Message<'a> for MetadataRequestTopic<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        if_has(field::TOPIC_ID, version, 16)
            + nullable_string_len(flexible(version), self.name)
            + empty_tagged_fields_len(flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if field::TOPIC_ID.has(version) {
            w.write_uuid(self.topic_id)?;
        }
        write_name(w, version, field::REQUEST_NAME_NULLABLE, self.name)?;
        w.write_empty_tagged_fields_in(flexible(version))
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let topic_id = if field::TOPIC_ID.has(version) {
            r.read_uuid()?
        } else {
            Uuid::ZERO
        };
        let name = read_name(r, version, field::REQUEST_NAME_NULLABLE)?;
        r.skip_tagged_fields_in(flexible(version))?;
        Ok(Self { topic_id, name })
    }
}

/// `MetadataRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataRequest<'a> {
    /// The topics wanted; `None` for all topics, empty for none (brokers only).
    pub topics: Option<Array<'a, MetadataRequestTopic<'a>>>,
    /// Whether the broker may create the topics asked for (v4+; `true` before).
    pub allow_auto_topic_creation: bool,
    /// Whether to include cluster authorized operations (v8-10).
    pub include_cluster_authorized_operations: bool,
    /// Whether to include topic authorized operations (v8+).
    pub include_topic_authorized_operations: bool,
}

impl<'a> MetadataRequest<'a> {
    /// A request for `topics` (`None` = all), with Kafka's defaults for the rest.
    pub const fn new(topics: Option<Array<'a, MetadataRequestTopic<'a>>>) -> Self {
        Self {
            topics,
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        }
    }
}

impl<'a> Message<'a> for MetadataRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        Array::nullable_encoded_len(self.topics.as_ref(), version, flexible)
            + if_has(field::ALLOW_AUTO_TOPIC_CREATION, version, 1)
            + if_has(field::INCLUDE_CLUSTER_AUTHORIZED_OPERATIONS, version, 1)
            + if_has(field::INCLUDE_TOPIC_AUTHORIZED_OPERATIONS, version, 1)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        Array::encode_nullable(self.topics.as_ref(), version, flexible, w)?;
        for (f, v) in [
            (
                field::ALLOW_AUTO_TOPIC_CREATION,
                self.allow_auto_topic_creation,
            ),
            (
                field::INCLUDE_CLUSTER_AUTHORIZED_OPERATIONS,
                self.include_cluster_authorized_operations,
            ),
            (
                field::INCLUDE_TOPIC_AUTHORIZED_OPERATIONS,
                self.include_topic_authorized_operations,
            ),
        ] {
            if f.has(version) {
                w.write_bool(v)?;
            }
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut req = Self::new(Array::decode_nullable(version, flexible, r)?);
        for (f, v) in [
            (
                field::ALLOW_AUTO_TOPIC_CREATION,
                &mut req.allow_auto_topic_creation,
            ),
            (
                field::INCLUDE_CLUSTER_AUTHORIZED_OPERATIONS,
                &mut req.include_cluster_authorized_operations,
            ),
            (
                field::INCLUDE_TOPIC_AUTHORIZED_OPERATIONS,
                &mut req.include_topic_authorized_operations,
            ),
        ] {
            if f.has(version) {
                *v = r.read_bool()?;
            }
        }
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// A Metadata request for the topics named by an iterator, written without an array of
/// its entries in memory (a producer may ask for thousands of topics). Encodes exactly as
/// [`MetadataRequest`] with those topics and Kafka's defaults.
#[derive(Debug, Clone)]
pub struct MetadataRequestNames<I> {
    /// The topic names, in request order.
    pub names: I,
}

impl<'n, I: Iterator<Item = &'n str> + Clone> MetadataRequestNames<I> {
    fn topic(name: &str) -> MetadataRequestTopic<'_> {
        MetadataRequestTopic {
            topic_id: Uuid::ZERO,
            name: Some(name),
        }
    }

    /// Bytes of the encoded body at `version`.
    pub fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        let count = self.names.clone().count();
        super::codec::len_prefix_len(flexible, Some(count))
            + self
                .names
                .clone()
                .map(|n| Self::topic(n).encoded_len(version))
                .sum::<usize>()
            + MetadataRequest::new(Some(Array::EMPTY)).encoded_len(version)
            - super::codec::len_prefix_len(flexible, Some(0))
    }

    /// Writes the body at `version`.
    pub fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_array_len_in(flexible, Some(self.names.clone().count()))?;
        for name in self.names.clone() {
            Self::topic(name).encode(version, w)?;
        }
        let req = MetadataRequest::new(None);
        for (f, v) in [
            (
                field::ALLOW_AUTO_TOPIC_CREATION,
                req.allow_auto_topic_creation,
            ),
            (
                field::INCLUDE_CLUSTER_AUTHORIZED_OPERATIONS,
                req.include_cluster_authorized_operations,
            ),
            (
                field::INCLUDE_TOPIC_AUTHORIZED_OPERATIONS,
                req.include_topic_authorized_operations,
            ),
        ] {
            if f.has(version) {
                w.write_bool(v)?;
            }
        }
        w.write_empty_tagged_fields_in(flexible)
    }
}

/// A broker of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataResponseBroker<'a> {
    /// `node.id`.
    pub node_id: i32,
    /// Host name to connect to.
    pub host: &'a str,
    /// Port to connect to.
    pub port: i32,
    /// `broker.rack`, if any.
    pub rack: Option<&'a str>,
}

impl<'a> Message<'a> for MetadataResponseBroker<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        8 + nullable_string_len(flexible, Some(self.host))
            + nullable_string_len(flexible, self.rack)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = flexible(version);
        w.write_i32(self.node_id)?;
        w.write_string_in(flexible, self.host)?;
        w.write_i32(self.port)?;
        w.write_nullable_string_in(flexible, self.rack)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let b = Self {
            node_id: r.read_i32()?,
            host: r.read_string_in(flexible)?,
            port: r.read_i32()?,
            rack: r.read_nullable_string_in(flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(b)
    }
}

/// A partition of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataResponsePartition<'a> {
    /// Partition error (`LEADER_NOT_AVAILABLE`, ...).
    pub error_code: ErrorCode,
    /// The partition number.
    pub partition_index: i32,
    /// The leader's node id, `-1` if none.
    pub leader_id: i32,
    /// The leader epoch (v7+; `-1` otherwise).
    pub leader_epoch: i32,
    /// All replicas.
    pub replica_nodes: Array<'a, i32>,
    /// In-sync replicas.
    pub isr_nodes: Array<'a, i32>,
    /// Offline replicas (v5+; empty otherwise).
    pub offline_replicas: Array<'a, i32>,
}

impl<'a> Message<'a> for MetadataResponsePartition<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        10 + if_has(field::LEADER_EPOCH, version, 4)
            + self.replica_nodes.encoded_len(version, flexible)
            + self.isr_nodes.encoded_len(version, flexible)
            + if_has(
                field::OFFLINE_REPLICAS,
                version,
                self.offline_replicas.encoded_len(version, flexible),
            )
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = flexible(version);
        w.write_i16(self.error_code.0)?;
        w.write_i32(self.partition_index)?;
        w.write_i32(self.leader_id)?;
        if field::LEADER_EPOCH.has(version) {
            w.write_i32(self.leader_epoch)?;
        }
        self.replica_nodes.encode(version, flexible, w)?;
        self.isr_nodes.encode(version, flexible, w)?;
        if field::OFFLINE_REPLICAS.has(version) {
            self.offline_replicas.encode(version, flexible, w)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let error_code = ErrorCode(r.read_i16()?);
        let partition_index = r.read_i32()?;
        let leader_id = r.read_i32()?;
        let leader_epoch = if field::LEADER_EPOCH.has(version) {
            r.read_i32()?
        } else {
            -1
        };
        let replica_nodes = Array::decode(version, flexible, r)?;
        let isr_nodes = Array::decode(version, flexible, r)?;
        let offline_replicas = if field::OFFLINE_REPLICAS.has(version) {
            Array::decode(version, flexible, r)?
        } else {
            Array::EMPTY
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(Self {
            error_code,
            partition_index,
            leader_id,
            leader_epoch,
            replica_nodes,
            isr_nodes,
            offline_replicas,
        })
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataResponseTopic<'a> {
    /// Topic error (`UNKNOWN_TOPIC_OR_PARTITION`, `LEADER_NOT_AVAILABLE`, ...).
    pub error_code: ErrorCode,
    /// The name; `None` only from v12 on, for an unknown topic asked by id.
    pub name: Option<&'a str>,
    /// The topic id (v10+; [`Uuid::ZERO`] otherwise).
    pub topic_id: Uuid,
    /// Whether the topic is internal (v1+).
    pub is_internal: bool,
    /// The partitions.
    pub partitions: Array<'a, MetadataResponsePartition<'a>>,
    /// Authorized operations bit field (v8+; [`AUTHORIZED_OPERATIONS_OMITTED`] otherwise).
    pub topic_authorized_operations: i32,
}

impl<'a> Message<'a> for MetadataResponseTopic<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        2 + nullable_string_len(flexible, self.name)
            + if_has(field::TOPIC_ID, version, 16)
            + 1
            + self.partitions.encoded_len(version, flexible)
            + if_has(field::TOPIC_AUTHORIZED_OPERATIONS, version, 4)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = flexible(version);
        w.write_i16(self.error_code.0)?;
        write_name(w, version, field::RESPONSE_NAME_NULLABLE, self.name)?;
        if field::TOPIC_ID.has(version) {
            w.write_uuid(self.topic_id)?;
        }
        w.write_bool(self.is_internal)?;
        self.partitions.encode(version, flexible, w)?;
        if field::TOPIC_AUTHORIZED_OPERATIONS.has(version) {
            w.write_i32(self.topic_authorized_operations)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let error_code = ErrorCode(r.read_i16()?);
        let name = read_name(r, version, field::RESPONSE_NAME_NULLABLE)?;
        let topic_id = if field::TOPIC_ID.has(version) {
            r.read_uuid()?
        } else {
            Uuid::ZERO
        };
        let is_internal = r.read_bool()?;
        let partitions = Array::decode(version, flexible, r)?;
        let topic_authorized_operations = if field::TOPIC_AUTHORIZED_OPERATIONS.has(version) {
            r.read_i32()?
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(Self {
            error_code,
            name,
            topic_id,
            is_internal,
            partitions,
            topic_authorized_operations,
        })
    }
}

/// `MetadataResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataResponse<'a> {
    /// Throttle time (v3+; 0 otherwise).
    pub throttle_time_ms: i32,
    /// The brokers of the cluster.
    pub brokers: Array<'a, MetadataResponseBroker<'a>>,
    /// The cluster id (v2+).
    pub cluster_id: Option<&'a str>,
    /// The controller's node id, `-1` if unknown.
    pub controller_id: i32,
    /// The topics.
    pub topics: Array<'a, MetadataResponseTopic<'a>>,
    /// Cluster authorized operations (v8-10; [`AUTHORIZED_OPERATIONS_OMITTED`] otherwise).
    pub cluster_authorized_operations: i32,
    /// Top-level error (v13+; `NONE` otherwise), e.g. `REBOOTSTRAP_REQUIRED`.
    pub error_code: ErrorCode,
}

impl<'a> MetadataResponse<'a> {
    /// The broker with `node_id`, if listed.
    pub fn broker(&self, node_id: i32) -> Option<MetadataResponseBroker<'a>> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    /// The topic named `name`, if listed.
    pub fn topic(&self, name: &str) -> Option<MetadataResponseTopic<'a>> {
        self.topics.iter().find(|t| t.name == Some(name))
    }
}

impl<'a> Message<'a> for MetadataResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        if_has(field::THROTTLE_TIME_MS, version, 4)
            + self.brokers.encoded_len(version, flexible)
            + if_has(
                field::CLUSTER_ID,
                version,
                nullable_string_len(flexible, self.cluster_id),
            )
            + 4
            + self.topics.encoded_len(version, flexible)
            + if_has(field::CLUSTER_AUTHORIZED_OPERATIONS, version, 4)
            + if_has(field::ERROR_CODE, version, 2)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        if field::THROTTLE_TIME_MS.has(version) {
            w.write_i32(self.throttle_time_ms)?;
        }
        self.brokers.encode(version, flexible, w)?;
        if field::CLUSTER_ID.has(version) {
            w.write_nullable_string_in(flexible, self.cluster_id)?;
        }
        w.write_i32(self.controller_id)?;
        self.topics.encode(version, flexible, w)?;
        if field::CLUSTER_AUTHORIZED_OPERATIONS.has(version) {
            w.write_i32(self.cluster_authorized_operations)?;
        }
        if field::ERROR_CODE.has(version) {
            w.write_i16(self.error_code.0)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let throttle_time_ms = if field::THROTTLE_TIME_MS.has(version) {
            r.read_i32()?
        } else {
            0
        };
        let brokers = Array::decode(version, flexible, r)?;
        let cluster_id = if field::CLUSTER_ID.has(version) {
            r.read_nullable_string_in(flexible)?
        } else {
            None
        };
        let controller_id = r.read_i32()?;
        let topics = Array::decode(version, flexible, r)?;
        let cluster_authorized_operations = if field::CLUSTER_AUTHORIZED_OPERATIONS.has(version) {
            r.read_i32()?
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        let error_code = if field::ERROR_CODE.has(version) {
            ErrorCode(r.read_i16()?)
        } else {
            ErrorCode::NONE
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(Self {
            throttle_time_ms,
            brokers,
            cluster_id,
            controller_id,
            topics,
            cluster_authorized_operations,
            error_code,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    use crate::protocol::testing::encode;

    const TOPICS: [MetadataRequestTopic<'static>; 1] = [MetadataRequestTopic {
        topic_id: Uuid::ZERO,
        name: Some("t"),
    }];

    const REQ_V4: &[u8] = &[
        0, 0, 0, 1, // topics: 1
        0, 1, b't', // name
        1,    // allow_auto_topic_creation
    ];

    const REQ_V12: &[u8] = &[
        2, // topics: 1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // topic_id
        2, b't', // name
        0,    // topic tagged fields
        0,    // allow_auto_topic_creation
        1,    // include_topic_authorized_operations
        0,    // tagged fields
    ];

    #[test]
    fn test_request_both_ways() {
        let mut req = MetadataRequest::new(Some(Array::from_slice(&TOPICS)));
        assert_eq!(encode(&req, 4), REQ_V4);
        assert_eq!(
            MetadataRequest::decode(4, &mut Reader::new(REQ_V4)),
            Ok(req)
        );
        req.allow_auto_topic_creation = false;
        req.include_topic_authorized_operations = true;
        assert_eq!(encode(&req, 12), REQ_V12);
        assert_eq!(
            MetadataRequest::decode(12, &mut Reader::new(REQ_V12)),
            Ok(req)
        );
        // All topics: a null array.
        assert_eq!(
            encode(&MetadataRequest::new(None), 1),
            &[0xff, 0xff, 0xff, 0xff]
        );
        // A null name cannot be written before v10.
        let by_id = [MetadataRequestTopic {
            topic_id: Uuid([1; 16]),
            name: None,
        }];
        let req = MetadataRequest::new(Some(Array::from_slice(&by_id)));
        let mut buf = [0u8; 64];
        assert_eq!(
            req.encode(9, &mut Writer::new(&mut buf)),
            Err(EncodeError::UnexpectedNull)
        );
        assert!(req.encode(12, &mut Writer::new(&mut buf)).is_ok());
    }

    const REPLICAS: [i32; 2] = [1, 2];
    const ISR: [i32; 1] = [1];

    fn partitions() -> [MetadataResponsePartition<'static>; 1] {
        [MetadataResponsePartition {
            error_code: ErrorCode::NONE,
            partition_index: 0,
            leader_id: 1,
            leader_epoch: 5,
            replica_nodes: Array::from_slice(&REPLICAS),
            isr_nodes: Array::from_slice(&ISR),
            offline_replicas: Array::EMPTY,
        }]
    }

    const BROKERS: [MetadataResponseBroker<'static>; 1] = [MetadataResponseBroker {
        node_id: 1,
        host: "h",
        port: 9092,
        rack: None,
    }];

    const RESP_V7: &[u8] = &[
        0, 0, 0, 0, // throttle_time_ms
        0, 0, 0, 1, // brokers: 1
        0, 0, 0, 1, 0, 1, b'h', 0, 0, 0x23, 0x84, 0xff, 0xff, // 1 h:9092 rack null
        0, 1, b'c', // cluster_id "c"
        0, 0, 0, 1, // controller_id
        0, 0, 0, 1, // topics: 1
        0, 0, 0, 1, b't', 0, // NONE "t" not internal
        0, 0, 0, 1, // partitions: 1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, // NONE p0 leader 1 epoch 5
        0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, // replicas [1, 2]
        0, 0, 0, 1, 0, 0, 0, 1, // isr [1]
        0, 0, 0, 0, // offline []
    ];

    const RESP_V13: &[u8] = &[
        0, 0, 0, 0, // throttle_time_ms
        2, // brokers: 1
        0, 0, 0, 1, 2, b'h', 0, 0, 0x23, 0x84, 0, 0, // 1 h:9092 rack null, tags
        2, b'c', // cluster_id "c"
        0, 0, 0, 1, // controller_id
        2, // topics: 1
        0, 0, 2, b't', // NONE "t"
        7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // topic_id
        0, // not internal
        2, // partitions: 1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, // NONE p0 leader 1 epoch 5
        3, 0, 0, 0, 1, 0, 0, 0, 2, // replicas [1, 2]
        2, 0, 0, 0, 1, // isr [1]
        1, // offline []
        0, // partition tags
        0x80, 0, 0, 0, // topic_authorized_operations
        0, // topic tags
        0, 0, // error_code
        0, // tags
    ];

    #[test]
    fn test_response_both_ways() {
        let parts = partitions();
        let topics = |topic_id| {
            [MetadataResponseTopic {
                error_code: ErrorCode::NONE,
                name: Some("t"),
                topic_id,
                is_internal: false,
                partitions: Array::from_slice(&parts),
                topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            }]
        };
        for (v, bytes, topics) in [
            (7, RESP_V7, topics(Uuid::ZERO)),
            (13, RESP_V13, topics(Uuid([7; 16]))),
        ] {
            let resp = MetadataResponse {
                throttle_time_ms: 0,
                brokers: Array::from_slice(&BROKERS),
                cluster_id: Some("c"),
                controller_id: 1,
                topics: Array::from_slice(&topics),
                cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                error_code: ErrorCode::NONE,
            };
            assert_eq!(encode(&resp, v), bytes, "v{v}");
            let mut r = Reader::new(bytes);
            let got = MetadataResponse::decode(v, &mut r).unwrap();
            assert!(r.is_empty());
            assert_eq!(got, resp);
            let t = got.topic("t").unwrap();
            let p = t.partitions.iter().next().unwrap();
            assert_eq!(p.replica_nodes.iter().collect::<Vec<_>>(), [1, 2]);
            assert_eq!(got.broker(1).map(|b| b.port), Some(9092));
        }
    }

    fn arb_partition() -> impl Strategy<Value = (i16, i32, i32, i32, Vec<i32>, Vec<i32>, Vec<i32>)>
    {
        (
            any::<i16>(),
            any::<i32>(),
            any::<i32>(),
            any::<i32>(),
            proptest::collection::vec(any::<i32>(), 0..4),
            proptest::collection::vec(any::<i32>(), 0..4),
            proptest::collection::vec(any::<i32>(), 0..4),
        )
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128), v in 0i16..15) {
            if let Ok(resp) = MetadataResponse::decode(v, &mut Reader::new(&bytes)) {
                for t in resp.topics.iter() {
                    for p in t.partitions.iter() {
                        let _ = p.replica_nodes.iter().count() + p.isr_nodes.iter().count();
                    }
                }
                prop_assert_eq!(resp.brokers.iter().count(), resp.brokers.len());
            }
            if let Ok(MetadataRequest { topics: Some(t), .. }) = MetadataRequest::decode(v, &mut Reader::new(&bytes)) {
                let _ = t.iter().count();
            }
        }

        #[test]
        fn prop_response_round_trip(
            v in 1i16..=13,
            parts in proptest::collection::vec(arb_partition(), 0..4),
            host in "[a-z]{0,8}",
            rack in proptest::option::of("[a-z]{0,4}"),
            name in "[a-z]{1,8}",
            id in any::<[u8; 16]>(),
        ) {
            let parts: Vec<_> = parts.iter().map(|(e, i, l, ep, rep, isr, off)| MetadataResponsePartition {
                error_code: ErrorCode(*e),
                partition_index: *i,
                leader_id: *l,
                leader_epoch: if v >= 7 { *ep } else { -1 },
                replica_nodes: Array::from_slice(rep),
                isr_nodes: Array::from_slice(isr),
                offline_replicas: if v >= 5 { Array::from_slice(off) } else { Array::EMPTY },
            }).collect();
            let topics = [MetadataResponseTopic {
                error_code: ErrorCode::NONE,
                name: Some(&name),
                topic_id: if v >= 10 { Uuid(id) } else { Uuid::ZERO },
                is_internal: true,
                partitions: Array::from_slice(&parts),
                topic_authorized_operations: if v >= 8 { 7 } else { AUTHORIZED_OPERATIONS_OMITTED },
            }];
            let brokers = [MetadataResponseBroker { node_id: 3, host: &host, port: 1, rack: rack.as_deref() }];
            let resp = MetadataResponse {
                throttle_time_ms: if v >= 3 { 9 } else { 0 },
                brokers: Array::from_slice(&brokers),
                cluster_id: if v >= 2 { Some("x") } else { None },
                controller_id: 2,
                topics: Array::from_slice(&topics),
                cluster_authorized_operations: if (8..=10).contains(&v) { 1 } else { AUTHORIZED_OPERATIONS_OMITTED },
                error_code: if v >= 13 { ErrorCode(5) } else { ErrorCode::NONE },
            };
            let bytes = encode(&resp, v);
            let mut r = Reader::new(&bytes);
            let got = MetadataResponse::decode(v, &mut r).unwrap();
            prop_assert!(r.is_empty());
            prop_assert_eq!(got, resp);
            // A decoded message re-encodes to the same bytes.
            prop_assert_eq!(encode(&got, v), bytes);
        }

        #[test]
        fn prop_request_round_trip(v in 1i16..=13, names in proptest::collection::vec("[a-z]{1,8}", 0..4), all in any::<bool>(), flags in any::<[bool; 3]>()) {
            let topics: Vec<_> = names.iter().map(|n| MetadataRequestTopic { topic_id: Uuid::ZERO, name: Some(n) }).collect();
            let req = MetadataRequest {
                topics: if all { None } else { Some(Array::from_slice(&topics)) },
                allow_auto_topic_creation: flags[0] || v < 4,
                include_cluster_authorized_operations: flags[1] && (8..=10).contains(&v),
                include_topic_authorized_operations: flags[2] && v >= 8,
            };
            let bytes = encode(&req, v);
            prop_assert_eq!(MetadataRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
        }
    }
}
