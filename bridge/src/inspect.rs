//! The check every client frame passes before it reaches a broker.
//!
//! [`check_frame`] takes one WebSocket message and says whether it is exactly one Kafka
//! frame (length prefix equal to the message length minus 4, at most the configured size);
//! [`inspect`] decodes the request header and, where topics are named, the body, with the
//! core's own decoders (`kafka_edge_core::protocol`), and says whether the frame may go on
//! unchanged. Nothing here allocates per frame, does I/O or panics: the input is whatever a
//! client sent (the `bridge_inspect` fuzz target holds it to that).
//!
//! Forwarded: `ApiVersions` (any version: its body is a client name and version, and the
//! broker answers unknown versions itself), `Metadata` with an explicit list of topic names
//! all allowed, `Produce` without a transactional id whose topics (by name, or by id from
//! v13 mapped through [`TopicIds`]) are all allowed and whose record batches are whole v2
//! batches, neither transactional nor control, `InitProducerId` without a
//! transactional id, and `SaslHandshake`/`SaslAuthenticate` only when
//! [`Policy::sasl_passthrough`] is set. Everything else is a [`Refusal`].

use std::fmt;

use kafka_edge_core::protocol::{
    ApiKey, DecodeError, InitProducerIdRequest, Message, MetadataRequest, ProduceRequest, Reader,
    RequestHeader, Uuid,
};

use kafka_edge_core::record::{MAGIC_V2, RecordBatchHeader};

use crate::topics::TopicAllowList;

/// Why a client frame was not forwarded. Each one closes the client's connection.
///
/// It borrows from the frame (topic names), so it can be logged without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal<'a> {
    /// A text message where only binary ones carry Kafka frames.
    TextMessage,
    /// The length prefix does not equal the message length minus 4 (a frame split over
    /// messages, two frames in one, or garbage).
    FrameLength {
        /// The length the prefix announced (negative lengths as read).
        prefix: i64,
        /// The bytes the message held after the prefix.
        body: usize,
    },
    /// The length prefix is over the bridge's maximum frame size.
    FrameTooLarge {
        /// The length the prefix announced.
        prefix: i64,
        /// The bridge's maximum.
        max: usize,
    },
    /// The request header could not be decoded.
    MalformedHeader(DecodeError),
    /// An API the bridge does not forward (Fetch, CreateTopics, OffsetCommit, an unknown
    /// key, SASL without pass-through, ...).
    ApiNotAllowed {
        /// The key read from the header.
        api_key: i16,
    },
    /// A version of an inspected API the core cannot decode, so cannot check.
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version read from the header.
        version: i16,
    },
    /// The body could not be decoded (or held bytes after its end).
    MalformedBody {
        /// The API.
        api: ApiKey,
        /// What was wrong.
        error: DecodeError,
    },
    /// A Metadata request for all topics (a null topic list).
    MetadataAllTopics,
    /// A Metadata request naming a topic by id only (the bridge allows names).
    MetadataTopicById,
    /// A topic outside the client's allow-list (or not a valid topic name).
    TopicNotAllowed {
        /// The API that named it.
        api: ApiKey,
        /// The name.
        topic: &'a str,
    },
    /// A Produce v13+ named, by id, a topic outside the client's allow-list.
    TopicIdNotAllowed {
        /// The id.
        topic_id: Uuid,
    },
    /// A Produce v13+ named a topic id the bridge's metadata does not know.
    UnknownTopicId {
        /// The id.
        topic_id: Uuid,
    },
    /// A transactional id in Produce or InitProducerId (the bridge is for idempotent
    /// producers only; transactions would let a client fence others sharing the id).
    Transactional {
        /// The API.
        api: ApiKey,
    },
    /// A Produce record batch marked transactional or control (markers are the
    /// coordinator's to write).
    TransactionalBatch,
}

impl Refusal<'_> {
    /// A short stable name for logs and the `reason` label of the refusal counter.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::TextMessage => "text_message",
            Self::FrameLength { .. } => "frame_length",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::MalformedHeader(_) => "malformed_header",
            Self::ApiNotAllowed { .. } => "api_not_allowed",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::MalformedBody { .. } => "malformed_body",
            Self::MetadataAllTopics => "metadata_all_topics",
            Self::MetadataTopicById => "metadata_topic_by_id",
            Self::TopicNotAllowed { .. } | Self::TopicIdNotAllowed { .. } => "topic_not_allowed",
            Self::UnknownTopicId { .. } => "unknown_topic_id",
            Self::Transactional { .. } | Self::TransactionalBatch => "transactional",
        }
    }

    /// Every value [`reason`](Self::reason) returns (the metrics list each, even at 0).
    pub const REASONS: [&'static str; 12] = [
        "text_message",
        "frame_length",
        "frame_too_large",
        "malformed_header",
        "api_not_allowed",
        "unsupported_version",
        "malformed_body",
        "metadata_all_topics",
        "metadata_topic_by_id",
        "topic_not_allowed",
        "unknown_topic_id",
        "transactional",
    ];
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TextMessage => f.write_str("text message (Kafka frames travel as binary)"),
            Self::FrameLength { prefix, body } => write!(
                f,
                "length prefix {prefix} does not match the {body} bytes that follow it"
            ),
            Self::FrameTooLarge { prefix, max } => {
                write!(
                    f,
                    "length prefix {prefix} over the maximum frame size {max}"
                )
            }
            Self::MalformedHeader(e) => write!(f, "malformed request header: {e}"),
            Self::ApiNotAllowed { api_key } => write!(f, "API key {api_key} is not forwarded"),
            Self::UnsupportedVersion { api, version } => {
                write!(f, "{api} v{version} cannot be inspected")
            }
            Self::MalformedBody { api, error } => write!(f, "malformed {api} request: {error}"),
            Self::MetadataAllTopics => f.write_str("Metadata for all topics"),
            Self::MetadataTopicById => f.write_str("Metadata for a topic by id"),
            Self::TopicNotAllowed { api, topic } => {
                write!(f, "{api} names topic {topic:?}, outside the allow-list")
            }
            Self::TopicIdNotAllowed { topic_id } => write!(
                f,
                "Produce names topic id {}, outside the allow-list",
                UuidHex(topic_id)
            ),
            Self::UnknownTopicId { topic_id } => {
                write!(f, "Produce names unknown topic id {}", UuidHex(topic_id))
            }
            Self::Transactional { api } => write!(f, "{api} with a transactional id"),
            Self::TransactionalBatch => {
                f.write_str("Produce with a transactional or control record batch")
            }
        }
    }
}

impl std::error::Error for Refusal<'_> {}

/// A topic id as 32 hex digits, for logs.
#[derive(Debug, Clone, Copy)]
pub struct UuidHex(pub Uuid);

impl fmt::Display for UuidHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Topic ids the bridge knows from its own Metadata requests (for Produce v13+).
pub trait TopicIds {
    /// Calls `f` with the name of topic `id` if known, and returns what it returns (`None`
    /// for an unknown id).
    fn with_name<R>(&self, id: Uuid, f: impl FnOnce(&str) -> R) -> Option<R>;
}

impl<S: std::hash::BuildHasher> TopicIds for std::collections::HashMap<Uuid, String, S> {
    fn with_name<R>(&self, id: Uuid, f: impl FnOnce(&str) -> R) -> Option<R> {
        self.get(&id).map(|n| f(n))
    }
}

/// What one client may do.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'p> {
    /// The topics it may name (its token's patterns, or the anonymous list).
    pub topics: &'p TopicAllowList,
    /// Whether SaslHandshake and SaslAuthenticate go to the broker (the client then
    /// authenticates itself; off when the bridge holds the credentials).
    pub sasl_passthrough: bool,
}

/// A request that may be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspected<'a> {
    /// Its header.
    pub header: RequestHeader<'a>,
    /// Its API.
    pub api: ApiKey,
}

/// Checks that `message` (one binary WebSocket message) is exactly one Kafka frame of at
/// most `max_frame_size` bytes after its prefix; returns the frame without the prefix.
pub fn check_frame(message: &[u8], max_frame_size: usize) -> Result<&[u8], Refusal<'static>> {
    let (prefix, body) = match message.split_first_chunk::<4>() {
        Some((p, body)) => (i64::from(i32::from_be_bytes(*p)), body),
        None => {
            return Err(Refusal::FrameLength {
                prefix: -1,
                body: message.len(),
            });
        }
    };
    if usize::try_from(prefix).is_ok_and(|p| p > max_frame_size) {
        return Err(Refusal::FrameTooLarge {
            prefix,
            max: max_frame_size,
        });
    }
    if usize::try_from(prefix).ok() != Some(body.len()) {
        return Err(Refusal::FrameLength {
            prefix,
            body: body.len(),
        });
    }
    Ok(body)
}

/// Decides whether `frame` (a request without its length prefix, from [`check_frame`]) may
/// be forwarded under `policy`.
///
/// Topic names are checked as the client wrote them; `topic_ids` maps Produce v13 topic ids
/// to names (an unknown id is [`Refusal::UnknownTopicId`]: the caller may refresh its
/// metadata and ask again). `on_metadata_topic` is called with each topic name of an allowed
/// Metadata request (the bridge keeps those in its own metadata view).
pub fn inspect<'a>(
    frame: &'a [u8],
    policy: Policy<'_>,
    topic_ids: &impl TopicIds,
    mut on_metadata_topic: impl FnMut(&'a str),
) -> Result<Inspected<'a>, Refusal<'a>> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r).map_err(Refusal::MalformedHeader)?;
    let refuse_api = Refusal::ApiNotAllowed {
        api_key: header.api_key,
    };
    let api = ApiKey::from_code(header.api_key).ok_or(refuse_api)?;
    let version = header.api_version;
    let checked = |api: ApiKey| {
        if api.supports(version) {
            Ok(())
        } else {
            Err(Refusal::UnsupportedVersion { api, version })
        }
    };
    let body = |error| Refusal::MalformedBody { api, error };
    match api {
        ApiKey::ApiVersions => {
            if version < 0 {
                return Err(Refusal::UnsupportedVersion { api, version });
            }
        }
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
            if !policy.sasl_passthrough {
                return Err(refuse_api);
            }
            checked(api)?;
        }
        ApiKey::InitProducerId => {
            checked(api)?;
            let req = InitProducerIdRequest::decode(version, &mut r).map_err(body)?;
            ensure_consumed(&r).map_err(body)?;
            if req.transactional_id.is_some() {
                return Err(Refusal::Transactional { api });
            }
        }
        ApiKey::Metadata => {
            checked(api)?;
            let req = MetadataRequest::decode(version, &mut r).map_err(body)?;
            ensure_consumed(&r).map_err(body)?;
            let topics = req.topics.ok_or(Refusal::MetadataAllTopics)?;
            for t in topics.iter() {
                let name = t.name.ok_or(Refusal::MetadataTopicById)?;
                if !policy.topics.allows(name) {
                    return Err(Refusal::TopicNotAllowed { api, topic: name });
                }
            }
            topics
                .iter()
                .filter_map(|t| t.name)
                .for_each(&mut on_metadata_topic);
        }
        ApiKey::Produce => {
            checked(api)?;
            let req = ProduceRequest::decode(version, &mut r).map_err(body)?;
            ensure_consumed(&r).map_err(body)?;
            if req.transactional_id.is_some() {
                return Err(Refusal::Transactional { api });
            }
            for t in req.topic_data.iter() {
                for p in t.partition_data.iter() {
                    check_batches(p.records.unwrap_or_default())?;
                }
                if version >= 13 {
                    let allowed = topic_ids
                        .with_name(t.topic_id, |name| policy.topics.allows(name))
                        .ok_or(Refusal::UnknownTopicId {
                            topic_id: t.topic_id,
                        })?;
                    if !allowed {
                        return Err(Refusal::TopicIdNotAllowed {
                            topic_id: t.topic_id,
                        });
                    }
                } else if !policy.topics.allows(t.name) {
                    return Err(Refusal::TopicNotAllowed { api, topic: t.name });
                }
            }
        }
        // `ApiKey` is non-exhaustive: a key the core learns later is refused until the
        // bridge knows how to check it.
        _ => return Err(refuse_api),
    }
    Ok(Inspected { header, api })
}

/// Walks the record batches of one partition: each must be a whole v2 batch, neither
/// transactional nor control. (Their CRC and content are the broker's to check.)
fn check_batches(mut records: &[u8]) -> Result<(), Refusal<'static>> {
    let body = |error| Refusal::MalformedBody {
        api: ApiKey::Produce,
        error,
    };
    while !records.is_empty() {
        let h = RecordBatchHeader::new_checked(records).map_err(body)?;
        if h.magic() != MAGIC_V2 {
            return Err(body(DecodeError::UnsupportedMagic { magic: h.magic() }));
        }
        if h.is_transactional() || h.is_control() {
            return Err(Refusal::TransactionalBatch);
        }
        let len = h.total_len().map_err(body)?;
        records = records.get(len..).unwrap_or_default();
    }
    Ok(())
}

fn ensure_consumed(r: &Reader<'_>) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use kafka_edge_core::protocol::{
        Array, MetadataRequestTopic, PartitionProduceData, TopicProduceData, Writer,
    };

    use super::*;

    fn frame<'m>(api: ApiKey, version: i16, body: &impl Message<'m>) -> Vec<u8> {
        let h = RequestHeader::new(api, version, 42, Some("test"));
        let len = h.encoded_len() + body.encoded_len(version);
        let mut buf = vec![0u8; 4 + len];
        buf[..4].copy_from_slice(&(len as i32).to_be_bytes());
        let mut w = Writer::new(&mut buf[4..]);
        h.encode(&mut w).unwrap();
        body.encode(version, &mut w).unwrap();
        buf
    }

    fn allow() -> TopicAllowList {
        TopicAllowList::parse(["ok-*"]).unwrap()
    }

    fn run<'a>(
        msg: &'a [u8],
        list: &TopicAllowList,
        ids: &HashMap<Uuid, String>,
    ) -> Result<ApiKey, Refusal<'a>> {
        let body = check_frame(msg, 1 << 20)?;
        let policy = Policy {
            topics: list,
            sasl_passthrough: false,
        };
        inspect(body, policy, ids, |_| {}).map(|i| i.api)
    }

    fn metadata(names: &[Option<&str>]) -> Vec<MetadataRequestTopic<'static>> {
        names
            .iter()
            .map(|n| MetadataRequestTopic {
                topic_id: Uuid::ZERO,
                name: n.map(|s| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) }),
            })
            .collect()
    }

    #[test]
    fn frame_length_must_match_message() {
        assert_eq!(check_frame(&[0, 0, 0, 1, 9], 10), Ok(&[9u8][..]));
        assert!(matches!(
            check_frame(&[0, 0, 0, 2, 9], 10),
            Err(Refusal::FrameLength { prefix: 2, body: 1 })
        ));
        assert!(matches!(
            check_frame(&[0x7f, 0xff, 0xff, 0xff], 10),
            Err(Refusal::FrameTooLarge { .. })
        ));
        assert!(matches!(
            check_frame(&[0xff, 0xff, 0xff, 0xff], 10),
            Err(Refusal::FrameLength { prefix: -1, .. })
        ));
        assert!(matches!(
            check_frame(&[0, 0], 10),
            Err(Refusal::FrameLength { .. })
        ));
    }

    #[test]
    fn metadata_checked_per_topic() {
        let ids = HashMap::new();
        let topics = metadata(&[Some("ok-1"), Some("ok-2")]);
        let f = frame(
            ApiKey::Metadata,
            12,
            &MetadataRequest::new(Some(Array::from_slice(&topics))),
        );
        assert_eq!(run(&f, &allow(), &ids), Ok(ApiKey::Metadata));

        let topics = metadata(&[Some("ok-1"), Some("secret")]);
        let f = frame(
            ApiKey::Metadata,
            12,
            &MetadataRequest::new(Some(Array::from_slice(&topics))),
        );
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::TopicNotAllowed {
                topic: "secret",
                ..
            })
        ));

        let f = frame(ApiKey::Metadata, 12, &MetadataRequest::new(None));
        assert_eq!(run(&f, &allow(), &ids), Err(Refusal::MetadataAllTopics));

        let topics = metadata(&[None]);
        let f = frame(
            ApiKey::Metadata,
            12,
            &MetadataRequest::new(Some(Array::from_slice(&topics))),
        );
        assert_eq!(run(&f, &allow(), &ids), Err(Refusal::MetadataTopicById));
    }

    #[test]
    fn produce_by_name_and_by_id() {
        let id = Uuid([7; 16]);
        let other = Uuid([8; 16]);
        let ids: HashMap<Uuid, String> =
            [(id, "ok-a".to_owned()), (other, "secret".to_owned())].into();
        static PARTS: [PartitionProduceData<'static>; 1] = [PartitionProduceData {
            index: 0,
            records: Some(&[]),
        }];
        let produce = |name: &'static str, topic_id: Uuid, txn: Option<&'static str>| {
            let topics = vec![TopicProduceData {
                name,
                topic_id,
                partition_data: Array::from_slice(&PARTS),
            }];
            let topics: &'static [TopicProduceData<'static>] = Box::leak(topics.into_boxed_slice());
            ProduceRequest {
                transactional_id: txn,
                acks: -1,
                timeout_ms: 30_000,
                topic_data: Array::from_slice(topics),
            }
        };
        let f = frame(ApiKey::Produce, 12, &produce("ok-a", Uuid::ZERO, None));
        assert_eq!(run(&f, &allow(), &ids), Ok(ApiKey::Produce));
        let f = frame(ApiKey::Produce, 12, &produce("secret", Uuid::ZERO, None));
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::TopicNotAllowed {
                topic: "secret",
                ..
            })
        ));
        let f = frame(ApiKey::Produce, 12, &produce("ok-a", Uuid::ZERO, Some("t")));
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::Transactional { .. })
        ));
        let f = frame(ApiKey::Produce, 13, &produce("", id, None));
        assert_eq!(run(&f, &allow(), &ids), Ok(ApiKey::Produce));
        let f = frame(ApiKey::Produce, 13, &produce("", other, None));
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::TopicIdNotAllowed { .. })
        ));
        let f = frame(ApiKey::Produce, 13, &produce("", Uuid([9; 16]), None));
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::UnknownTopicId { .. })
        ));
    }

    #[test]
    fn produce_batches_must_be_plain_v2() {
        use kafka_edge_core::record::{BatchBuilder, BatchMeta, Record};
        let ids = HashMap::new();
        let batch = |meta: BatchMeta| {
            let mut buf = vec![0u8; 256];
            let mut b = BatchBuilder::start(&buf).unwrap();
            let r = Record {
                timestamp: 1,
                key: None,
                value: Some(b"v"),
                headers: &[],
            };
            b.append(&mut buf, &r).unwrap();
            let n = b.close(&mut buf, &meta).unwrap();
            buf.truncate(n);
            buf
        };
        let run_with = |records: Vec<u8>| {
            let records: &'static [u8] = Box::leak(records.into_boxed_slice());
            let parts: &'static [PartitionProduceData<'static>] =
                Box::leak(Box::new([PartitionProduceData {
                    index: 0,
                    records: Some(records),
                }]));
            let topics: &'static [TopicProduceData<'static>] =
                Box::leak(Box::new([TopicProduceData {
                    name: "ok-a",
                    topic_id: Uuid::ZERO,
                    partition_data: Array::from_slice(parts),
                }]));
            let req = ProduceRequest {
                transactional_id: None,
                acks: -1,
                timeout_ms: 1,
                topic_data: Array::from_slice(topics),
            };
            let f: &'static [u8] = Box::leak(frame(ApiKey::Produce, 12, &req).into_boxed_slice());
            run(f, &allow(), &ids)
        };
        let mut two = batch(BatchMeta::NON_IDEMPOTENT);
        two.extend(batch(BatchMeta::NON_IDEMPOTENT));
        assert_eq!(run_with(two), Ok(ApiKey::Produce));
        let txn = BatchMeta {
            is_transactional: true,
            ..BatchMeta::NON_IDEMPOTENT
        };
        assert_eq!(run_with(batch(txn)), Err(Refusal::TransactionalBatch));
        let control = BatchMeta {
            is_control: true,
            ..BatchMeta::NON_IDEMPOTENT
        };
        assert_eq!(run_with(batch(control)), Err(Refusal::TransactionalBatch));
        let mut cut = batch(BatchMeta::NON_IDEMPOTENT);
        cut.pop();
        assert!(matches!(run_with(cut), Err(Refusal::MalformedBody { .. })));
    }

    #[test]
    fn init_producer_id_idempotent_only() {
        let ids = HashMap::new();
        let f = frame(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::IDEMPOTENT,
        );
        assert_eq!(run(&f, &allow(), &ids), Ok(ApiKey::InitProducerId));
        let txn = InitProducerIdRequest {
            transactional_id: Some("txn"),
            ..InitProducerIdRequest::IDEMPOTENT
        };
        let f = frame(ApiKey::InitProducerId, 4, &txn);
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::Transactional { .. })
        ));
    }

    #[test]
    fn other_apis_refused() {
        let ids = HashMap::new();
        // Fetch v12, CreateTopics v7, DeleteTopics v6, OffsetCommit v8, key 999, SASL.
        for key in [1i16, 19, 20, 8, 999, -1, 17, 36] {
            let mut f = vec![0, 0, 0, 0];
            f.extend_from_slice(&key.to_be_bytes());
            f.extend_from_slice(&[0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0]);
            let len = (f.len() - 4) as i32;
            f[..4].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                run(&f, &allow(), &ids),
                Err(Refusal::ApiNotAllowed { api_key: key }),
                "key {key}"
            );
        }
    }

    #[test]
    fn trailing_bytes_refused() {
        let ids = HashMap::new();
        let mut f = frame(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::IDEMPOTENT,
        );
        f.push(0);
        let len = (f.len() - 4) as i32;
        f[..4].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            run(&f, &allow(), &ids),
            Err(Refusal::MalformedBody { .. })
        ));
    }
}
