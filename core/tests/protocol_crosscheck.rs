//! Cross-checks our protocol messages against the `kafka-protocol` crate, for every version
//! this crate supports: our requests must decode there with the same fields, its responses
//! must decode here with the same fields, and re-encoding what we decoded must give back its
//! bytes (where we keep every field it wrote).

use kafka_edge_core::protocol::{
    ApiKey, Array, ErrorCode, InitProducerIdRequest, InitProducerIdResponse, Message,
    MetadataRequest, MetadataRequestTopic, MetadataResponse, ProduceRequest, ProduceRequestEncoder,
    ProduceResponse, Reader, RequestHeader, ResponseHeader, Uuid, Writer,
};
use kafka_edge_core::protocol::{ApiVersionsRequest, ApiVersionsResponse, PartitionProduceData};
use kafka_edge_core::protocol::{
    MechanismName, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_edge_core::protocol::{TopicProduceData, write_frame_size};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn versions(api: ApiKey) -> impl Iterator<Item = i16> {
    api.supported_versions()
}

fn kp_encode<T: Encodable>(m: &T, v: i16) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out, v).unwrap();
    assert_eq!(out.len(), m.compute_size(v).unwrap());
    out
}

fn kp_decode<T: Decodable>(bytes: &[u8], v: i16) -> T {
    let mut buf = bytes;
    let m = T::decode(&mut buf, v).unwrap_or_else(|e| panic!("kafka-protocol v{v}: {e}"));
    assert!(
        buf.is_empty(),
        "kafka-protocol left {} bytes (v{v})",
        buf.len()
    );
    m
}

fn ours_encode<'a, M: Message<'a>>(m: &M, v: i16) -> Vec<u8> {
    let mut buf = vec![0u8; m.encoded_len(v)];
    let mut w = Writer::new(&mut buf);
    m.encode(v, &mut w).unwrap();
    assert_eq!(w.position(), buf.len());
    buf
}

fn ours_decode<'a, M: Message<'a>>(bytes: &'a [u8], v: i16) -> M {
    let mut r = Reader::new(bytes);
    let m = M::decode(v, &mut r).unwrap_or_else(|e| panic!("ours v{v}: {e}"));
    assert!(r.is_empty(), "we left {} bytes (v{v})", r.remaining());
    m
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn opt_s(v: &Option<StrBytes>) -> Option<&str> {
    v.as_ref().map(|s| s.as_str())
}

/// A kafka-protocol UUID with these bytes (its type lives in the `uuid` crate).
fn kp_topic_with_id(id: [u8; 16]) -> kp::metadata_request::MetadataRequestTopic {
    let mut bytes = id.to_vec();
    bytes.extend_from_slice(&[0x01, 0x00]); // null compact name, no tags
    kp_decode(&bytes, 12)
}

#[test]
fn request_headers() {
    for api in ApiKey::ALL {
        for v in versions(api) {
            for client_id in [None, Some("edge")] {
                let ours = RequestHeader::new(api, v, 42, client_id);
                let hv = api.request_header_version(v);
                let theirs: kp::RequestHeader = kp_decode(&ours_encode_header(&ours), hv);
                assert_eq!(theirs.request_api_key, api.code());
                assert_eq!(theirs.request_api_version, v);
                assert_eq!(theirs.correlation_id, 42);
                assert_eq!(opt_s(&theirs.client_id), client_id);
            }
            let rhv = api.response_header_version(v);
            let bytes = kp_encode(&kp::ResponseHeader::default().with_correlation_id(7), rhv);
            let mut r = Reader::new(&bytes);
            assert_eq!(
                ResponseHeader::decode(rhv, &mut r),
                Ok(ResponseHeader { correlation_id: 7 })
            );
            assert!(r.is_empty());
        }
    }
    // Header versions agree with kafka-protocol's.
    use kafka_protocol::protocol::HeaderVersion;
    for v in versions(ApiKey::Produce) {
        assert_eq!(
            ApiKey::Produce.request_header_version(v),
            kp::ProduceRequest::header_version(v)
        );
        assert_eq!(
            ApiKey::Produce.response_header_version(v),
            kp::ProduceResponse::header_version(v)
        );
    }
    for v in versions(ApiKey::ApiVersions) {
        assert_eq!(
            ApiKey::ApiVersions.response_header_version(v),
            kp::ApiVersionsResponse::header_version(v)
        );
    }
}

fn ours_encode_header(h: &RequestHeader<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; h.encoded_len()];
    h.encode(&mut Writer::new(&mut buf)).unwrap();
    buf
}

#[test]
fn api_versions() {
    for v in versions(ApiKey::ApiVersions) {
        let ours = ApiVersionsRequest {
            client_software_name: "kafka-edge",
            client_software_version: "0.1.0",
        };
        let theirs: kp::ApiVersionsRequest = kp_decode(&ours_encode(&ours, v), v);
        if v >= 3 {
            assert_eq!(theirs.client_software_name.as_str(), "kafka-edge");
            assert_eq!(theirs.client_software_version.as_str(), "0.1.0");
        }

        let mut resp = kp::ApiVersionsResponse::default();
        resp.error_code = 0;
        resp.throttle_time_ms = if v >= 1 { 12 } else { 0 };
        for (key, min, max) in [(0, 3, 12), (3, 0, 13), (18, 0, 4), (22, 0, 5)] {
            let mut k = kp::api_versions_response::ApiVersion::default();
            k.api_key = key;
            k.min_version = min;
            k.max_version = max;
            resp.api_keys.push(k);
        }
        if v >= 3 {
            // Tagged fields we skip.
            let mut f = kp::api_versions_response::SupportedFeatureKey::default();
            f.name = s("metadata.version");
            f.min_version = 1;
            f.max_version = 20;
            resp.supported_features.push(f);
            resp.finalized_features_epoch = 9;
            resp.zk_migration_ready = true;
        }
        let bytes = kp_encode(&resp, v);
        let ours: ApiVersionsResponse<'_> = ours_decode(&bytes, v);
        assert_eq!(ours.error_code, ErrorCode::NONE);
        assert_eq!(ours.throttle_time_ms, resp.throttle_time_ms);
        let keys: Vec<_> = ours
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(keys, [(0, 3, 12), (3, 0, 13), (18, 0, 4), (22, 0, 5)]);
        assert_eq!(ours.negotiate(ApiKey::Produce), Some(12));
        assert_eq!(ours.negotiate(ApiKey::InitProducerId), Some(5));
        // Re-encoding (without the tagged features) decodes there to the same keys.
        let back: kp::ApiVersionsResponse = kp_decode(&ours_encode(&ours, v), v);
        assert_eq!(back.api_keys, resp.api_keys);
    }
    // A broker that does not know our version answers with a v0 body.
    let mut resp = kp::ApiVersionsResponse::default();
    resp.error_code = 35;
    let mut k = kp::api_versions_response::ApiVersion::default();
    k.api_key = 18;
    k.max_version = 2;
    resp.api_keys.push(k);
    let bytes = kp_encode(&resp, 0);
    let (ours, used) = ApiVersionsResponse::decode_with_fallback(4, &bytes).unwrap();
    assert_eq!(used, 0);
    assert_eq!(ours.error_code, ErrorCode::UNSUPPORTED_VERSION);
    assert_eq!(ours.negotiate(ApiKey::ApiVersions), Some(2));
}

#[test]
fn metadata_request() {
    for v in versions(ApiKey::Metadata) {
        let topics = [
            MetadataRequestTopic {
                topic_id: Uuid::ZERO,
                name: Some("orders"),
            },
            MetadataRequestTopic {
                topic_id: Uuid::ZERO,
                name: Some("events"),
            },
        ];
        for all in [false, true] {
            let mut ours = MetadataRequest::new((!all).then_some(Array::from_slice(&topics)));
            ours.allow_auto_topic_creation = v < 4;
            ours.include_topic_authorized_operations = v >= 8;
            ours.include_cluster_authorized_operations = (8..=10).contains(&v);
            let theirs: kp::MetadataRequest = kp_decode(&ours_encode(&ours, v), v);
            match &theirs.topics {
                None => assert!(all),
                Some(t) => {
                    let names: Vec<_> = t
                        .iter()
                        .map(|t| t.name.as_ref().unwrap().0.as_str())
                        .collect();
                    assert_eq!(names, ["orders", "events"]);
                }
            }
            if v >= 4 {
                assert!(!theirs.allow_auto_topic_creation);
            }
            assert_eq!(theirs.include_topic_authorized_operations, v >= 8);
            assert_eq!(
                theirs.include_cluster_authorized_operations,
                (8..=10).contains(&v)
            );
            // And back.
            let back = kp_encode(&theirs, v);
            let again: MetadataRequest<'_> = ours_decode(&back, v);
            let bytes = ours_encode(&ours, v);
            assert_eq!(again, ours_decode::<MetadataRequest<'_>>(&bytes, v));
            assert_eq!(back, bytes);
        }
    }
}

fn kp_metadata_response(v: i16) -> kp::MetadataResponse {
    let mut resp = kp::MetadataResponse::default();
    resp.throttle_time_ms = if v >= 3 { 5 } else { 0 };
    for (id, host, rack) in [(1, "b1.local", None), (2, "b2.local", Some("r2"))] {
        let mut b = kp::metadata_response::MetadataResponseBroker::default();
        b.node_id = kp::BrokerId(id);
        b.host = s(host);
        b.port = 9092 + id;
        b.rack = if v >= 1 { rack.map(s) } else { None };
        resp.brokers.push(b);
    }
    resp.cluster_id = if v >= 2 { Some(s("cluster-x")) } else { None };
    resp.controller_id = kp::BrokerId(if v >= 1 { 2 } else { -1 });
    for (t, name, n) in [(0u8, "orders", 3), (1, "events", 2)] {
        let mut topic = kp::metadata_response::MetadataResponseTopic::default();
        topic.error_code = i16::from(t) * 5;
        topic.name = Some(kp::TopicName(s(name)));
        if v >= 10 {
            topic.topic_id = kp_topic_with_id([t + 1; 16]).topic_id;
        }
        topic.is_internal = t == 1;
        topic.topic_authorized_operations = if v >= 8 { 0x0f } else { i32::MIN };
        for p in 0..n {
            let mut part = kp::metadata_response::MetadataResponsePartition::default();
            part.error_code = 0;
            part.partition_index = p;
            part.leader_id = kp::BrokerId(1 + p % 2);
            part.leader_epoch = if v >= 7 { 10 + p } else { -1 };
            part.replica_nodes = vec![kp::BrokerId(1), kp::BrokerId(2)];
            part.isr_nodes = vec![kp::BrokerId(1 + p % 2)];
            part.offline_replicas = if v >= 5 {
                vec![kp::BrokerId(2)]
            } else {
                vec![]
            };
            topic.partitions.push(part);
        }
        resp.topics.push(topic);
    }
    resp.cluster_authorized_operations = if (8..=10).contains(&v) { 7 } else { i32::MIN };
    resp.error_code = 0;
    resp
}

#[test]
fn metadata_response() {
    for v in versions(ApiKey::Metadata) {
        let theirs = kp_metadata_response(v);
        let bytes = kp_encode(&theirs, v);
        let ours: MetadataResponse<'_> = ours_decode(&bytes, v);
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
        assert_eq!(ours.controller_id, theirs.controller_id.0);
        assert_eq!(ours.cluster_id, opt_s(&theirs.cluster_id));
        assert_eq!(
            ours.cluster_authorized_operations,
            theirs.cluster_authorized_operations
        );
        assert_eq!(ours.brokers.len(), 2);
        for (b, tb) in ours.brokers.iter().zip(&theirs.brokers) {
            assert_eq!(b.node_id, tb.node_id.0);
            assert_eq!(b.host, tb.host.as_str());
            assert_eq!(b.port, tb.port);
            assert_eq!(b.rack, opt_s(&tb.rack));
        }
        assert_eq!(ours.topics.len(), 2);
        for (t, tt) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(t.error_code.0, tt.error_code);
            assert_eq!(t.name, tt.name.as_ref().map(|n| n.0.as_str()));
            assert_eq!(&t.topic_id.0, tt.topic_id.as_bytes());
            assert_eq!(t.is_internal, tt.is_internal);
            assert_eq!(
                t.topic_authorized_operations,
                tt.topic_authorized_operations
            );
            assert_eq!(t.partitions.len(), tt.partitions.len());
            for (p, tp) in t.partitions.iter().zip(&tt.partitions) {
                assert_eq!(p.partition_index, tp.partition_index);
                assert_eq!(p.leader_id, tp.leader_id.0);
                assert_eq!(p.leader_epoch, tp.leader_epoch);
                let ids = |a: &Vec<kp::BrokerId>| a.iter().map(|b| b.0).collect::<Vec<_>>();
                assert_eq!(
                    p.replica_nodes.iter().collect::<Vec<_>>(),
                    ids(&tp.replica_nodes)
                );
                assert_eq!(p.isr_nodes.iter().collect::<Vec<_>>(), ids(&tp.isr_nodes));
                assert_eq!(
                    p.offline_replicas.iter().collect::<Vec<_>>(),
                    ids(&tp.offline_replicas)
                );
            }
        }
        assert_eq!(ours_encode(&ours, v), bytes, "re-encode v{v}");
    }
}

/// Writes a Produce request frame as the sender would: header and request pieces from the
/// streaming encoder, batches spliced in at the split points.
/// A topic to produce to: name, id, and (partition, batch bytes) pairs.
type TopicBatches<'a> = (&'a str, [u8; 16], &'a [(i32, &'a [u8])]);

fn streamed_produce(v: i16, topics: &[TopicBatches<'_>]) -> Vec<u8> {
    let enc = ProduceRequestEncoder::new(v).unwrap();
    let header = RequestHeader::new(ApiKey::Produce, v, 9, Some("edge"));
    let mut size = header.encoded_len() + enc.begin_len(Some("tx-1"), topics.len()) + enc.end_len();
    for (name, _, parts) in topics {
        size += enc.topic_len(name, parts.len()) + enc.end_topic_len();
        for (_, batch) in *parts {
            size += enc.partition_len(batch.len());
        }
    }
    let mut buf = [0u8; 256];
    let mut w = Writer::new(&mut buf);
    let mut splits = Vec::new();
    write_frame_size(&mut w, size).unwrap();
    header.encode(&mut w).unwrap();
    enc.begin(&mut w, Some("tx-1"), -1, 30_000, topics.len())
        .unwrap();
    for (name, id, parts) in topics {
        enc.topic(&mut w, name, Uuid(*id), parts.len()).unwrap();
        for (index, batch) in *parts {
            enc.partition_records_prefix(&mut w, *index, batch.len())
                .unwrap();
            splits.push((w.position(), *batch));
            enc.end_partition(&mut w).unwrap();
        }
        enc.end_topic(&mut w).unwrap();
    }
    enc.end(&mut w).unwrap();
    let out = w.written();
    let mut frame = Vec::new();
    let mut at = 0;
    for (split, batch) in splits {
        frame.extend_from_slice(&out[at..split]);
        frame.extend_from_slice(batch);
        at = split;
    }
    frame.extend_from_slice(&out[at..]);
    assert_eq!(frame.len(), 4 + size);
    frame
}

#[test]
fn produce_request() {
    let b1: &[u8] = &[1; 61];
    let b2: &[u8] = &[2; 100];
    let b3: &[u8] = &[3; 7];
    let topics: [TopicBatches<'_>; 2] = [
        ("orders", [0xa1; 16], &[(0, b1), (2, b2)]),
        ("events", [0xb2; 16], &[(5, b3)]),
    ];
    for v in versions(ApiKey::Produce) {
        let frame = streamed_produce(v, &topics);
        let body_len = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(body_len, frame.len() - 4);
        let mut buf = &frame[4..];
        let header =
            kp::RequestHeader::decode(&mut buf, ApiKey::Produce.request_header_version(v)).unwrap();
        assert_eq!(header.request_api_key, 0);
        assert_eq!(header.request_api_version, v);
        assert_eq!(opt_s(&header.client_id), Some("edge"));
        let theirs: kp::ProduceRequest = kp_decode(buf, v);
        assert_eq!(
            theirs.transactional_id.as_ref().map(|t| t.0.as_str()),
            Some("tx-1")
        );
        assert_eq!(theirs.acks, -1);
        assert_eq!(theirs.timeout_ms, 30_000);
        assert_eq!(theirs.topic_data.len(), 2);
        for (tt, (name, id, parts)) in theirs.topic_data.iter().zip(&topics) {
            if v <= 12 {
                assert_eq!(tt.name.0.as_str(), *name);
            } else {
                assert_eq!(tt.topic_id.as_bytes(), id);
            }
            assert_eq!(tt.partition_data.len(), parts.len());
            for (tp, (index, batch)) in tt.partition_data.iter().zip(*parts) {
                assert_eq!(tp.index, *index);
                assert_eq!(tp.records.as_deref(), Some(*batch));
            }
        }
        // The whole-request encoder writes the same body, and decodes it back.
        let body =
            &frame[4 + RequestHeader::new(ApiKey::Produce, v, 9, Some("edge")).encoded_len()..];
        let ours: ProduceRequest<'_> = ours_decode(body, v);
        assert_eq!(ours_encode(&ours, v), body);
        let pd: Vec<Vec<PartitionProduceData<'_>>> = topics
            .iter()
            .map(|(_, _, ps)| {
                ps.iter()
                    .map(|(i, b)| PartitionProduceData {
                        index: *i,
                        records: Some(b),
                    })
                    .collect()
            })
            .collect();
        let td: Vec<_> = topics
            .iter()
            .zip(&pd)
            .map(|((n, id, _), p)| TopicProduceData {
                name: if v <= 12 { n } else { "" },
                topic_id: if v >= 13 { Uuid(*id) } else { Uuid::ZERO },
                partition_data: Array::from_slice(p),
            })
            .collect();
        let whole = ProduceRequest {
            transactional_id: Some("tx-1"),
            acks: -1,
            timeout_ms: 30_000,
            topic_data: Array::from_slice(&td),
        };
        assert_eq!(ours_encode(&whole, v), body);
        assert_eq!(ours, whole);
    }
}

fn kp_produce_response(v: i16) -> kp::ProduceResponse {
    let mut resp = kp::ProduceResponse::default();
    for (t, name, n) in [(0u8, "orders", 2), (1, "events", 3)] {
        let mut topic = kp::produce_response::TopicProduceResponse::default();
        if v <= 12 {
            topic.name = kp::TopicName(s(name));
        } else {
            topic.topic_id = kp_topic_with_id([t + 7; 16]).topic_id;
        }
        for p in 0..n {
            let mut part = kp::produce_response::PartitionProduceResponse::default();
            part.index = p;
            part.error_code = if p == 1 { 6 } else { 0 };
            part.base_offset = 1000 * i64::from(p);
            part.log_append_time_ms = if p == 2 { 1_700_000_000_000 } else { -1 };
            part.log_start_offset = if v >= 5 { 3 } else { -1 };
            if v >= 8 && p == 2 {
                let mut e = kp::produce_response::BatchIndexAndErrorMessage::default();
                e.batch_index = 4;
                e.batch_index_error_message = Some(s("bad record"));
                part.record_errors.push(e);
                part.error_message = Some(s("batch dropped"));
            }
            if v >= 10 && p == 1 {
                part.current_leader.leader_id = kp::BrokerId(3);
                part.current_leader.leader_epoch = 12;
            }
            topic.partition_responses.push(part);
        }
        resp.responses.push(topic);
    }
    resp.throttle_time_ms = 25;
    if v >= 10 {
        for (id, rack) in [(3, Some("r3")), (4, None)] {
            let mut n = kp::produce_response::NodeEndpoint::default();
            n.node_id = kp::BrokerId(id);
            n.host = s("broker.local");
            n.port = 9000 + id;
            n.rack = rack.map(s);
            resp.node_endpoints.push(n);
        }
    }
    resp
}

#[test]
fn produce_response() {
    for v in versions(ApiKey::Produce) {
        let theirs = kp_produce_response(v);
        let bytes = kp_encode(&theirs, v);
        let ours: ProduceResponse<'_> = ours_decode(&bytes, v);
        assert_eq!(ours.throttle_time_ms, 25);
        assert_eq!(ours.responses.len(), 2);
        for (t, tt) in ours.responses.iter().zip(&theirs.responses) {
            assert_eq!(t.name, tt.name.0.as_str());
            assert_eq!(&t.topic_id.0, tt.topic_id.as_bytes());
            assert_eq!(t.partition_responses.len(), tt.partition_responses.len());
            for (p, tp) in t.partition_responses.iter().zip(&tt.partition_responses) {
                assert_eq!(p.index, tp.index);
                assert_eq!(p.error_code.0, tp.error_code);
                assert_eq!(p.base_offset, tp.base_offset);
                assert_eq!(p.log_append_time_ms, tp.log_append_time_ms);
                assert_eq!(p.log_start_offset, tp.log_start_offset);
                assert_eq!(p.error_message, opt_s(&tp.error_message));
                let errs: Vec<_> = p
                    .record_errors
                    .iter()
                    .map(|e| (e.batch_index, e.batch_index_error_message))
                    .collect();
                let terrs: Vec<_> = tp
                    .record_errors
                    .iter()
                    .map(|e| (e.batch_index, opt_s(&e.batch_index_error_message)))
                    .collect();
                assert_eq!(errs, terrs);
                assert_eq!(p.current_leader.leader_id, tp.current_leader.leader_id.0);
                assert_eq!(
                    p.current_leader.leader_epoch,
                    tp.current_leader.leader_epoch
                );
            }
        }
        let nodes: Vec<_> = ours
            .node_endpoints
            .iter()
            .map(|n| (n.node_id, n.host, n.port, n.rack))
            .collect();
        let tnodes: Vec<_> = theirs
            .node_endpoints
            .iter()
            .map(|n| (n.node_id.0, n.host.as_str(), n.port, opt_s(&n.rack)))
            .collect();
        assert_eq!(nodes, tnodes);
        if v >= 10 {
            assert_eq!(nodes.len(), 2);
            let p1 = ours
                .responses
                .iter()
                .next()
                .unwrap()
                .partition_responses
                .iter()
                .nth(1)
                .unwrap();
            assert_eq!(p1.error_code, ErrorCode::NOT_LEADER_OR_FOLLOWER);
            assert_eq!(p1.current_leader.leader_id, 3);
        }
        assert_eq!(ours_encode(&ours, v), bytes, "re-encode v{v}");
    }
}

#[test]
fn init_producer_id() {
    for v in versions(ApiKey::InitProducerId) {
        for ours in [
            InitProducerIdRequest::IDEMPOTENT,
            InitProducerIdRequest {
                transactional_id: Some("tx"),
                transaction_timeout_ms: 60_000,
                producer_id: if v >= 3 { 77 } else { -1 },
                producer_epoch: if v >= 3 { 3 } else { -1 },
            },
        ] {
            let bytes = ours_encode(&ours, v);
            let theirs: kp::InitProducerIdRequest = kp_decode(&bytes, v);
            assert_eq!(
                theirs.transactional_id.as_ref().map(|t| t.0.as_str()),
                ours.transactional_id
            );
            assert_eq!(theirs.transaction_timeout_ms, ours.transaction_timeout_ms);
            assert_eq!(theirs.producer_id.0, ours.producer_id);
            assert_eq!(theirs.producer_epoch, ours.producer_epoch);
            assert_eq!(kp_encode(&theirs, v), bytes);
        }

        let mut theirs = kp::InitProducerIdResponse::default();
        theirs.throttle_time_ms = 3;
        theirs.error_code = 0;
        theirs.producer_id = kp::ProducerId(123_456_789_012);
        theirs.producer_epoch = 4;
        let bytes = kp_encode(&theirs, v);
        let ours: InitProducerIdResponse = ours_decode(&bytes, v);
        assert_eq!(
            ours,
            InitProducerIdResponse {
                throttle_time_ms: 3,
                error_code: ErrorCode::NONE,
                producer_id: 123_456_789_012,
                producer_epoch: 4,
            }
        );
        assert_eq!(ours_encode(&ours, v), bytes);
    }
}

#[test]
fn sasl_handshake() {
    use kafka_protocol::protocol::HeaderVersion;
    for v in versions(ApiKey::SaslHandshake) {
        assert_eq!(
            ApiKey::SaslHandshake.request_header_version(v),
            kp::SaslHandshakeRequest::header_version(v)
        );
        assert_eq!(
            ApiKey::SaslHandshake.response_header_version(v),
            kp::SaslHandshakeResponse::header_version(v)
        );
        let ours = SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-512",
        };
        let bytes = ours_encode(&ours, v);
        let theirs: kp::SaslHandshakeRequest = kp_decode(&bytes, v);
        assert_eq!(theirs.mechanism.as_str(), "SCRAM-SHA-512");
        assert_eq!(kp_encode(&theirs, v), bytes);

        for (error_code, names) in [
            (
                0,
                &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"][..],
            ),
            (33, &["GSSAPI"]),
            (0, &[]),
        ] {
            let mut theirs = kp::SaslHandshakeResponse::default();
            theirs.error_code = error_code;
            theirs.mechanisms = names.iter().map(|n| s(n)).collect();
            let bytes = kp_encode(&theirs, v);
            let ours: SaslHandshakeResponse<'_> = ours_decode(&bytes, v);
            assert_eq!(ours.error_code, ErrorCode(error_code));
            assert_eq!(
                ours.mechanisms.iter().map(|m| m.0).collect::<Vec<_>>(),
                names
            );
            assert_eq!(ours_encode(&ours, v), bytes);
            // And what we encode from our own items decodes there.
            let items: Vec<MechanismName<'_>> = names.iter().map(|n| MechanismName(n)).collect();
            let fresh = SaslHandshakeResponse {
                error_code: ErrorCode(error_code),
                mechanisms: Array::from_slice(&items),
            };
            let again: kp::SaslHandshakeResponse = kp_decode(&ours_encode(&fresh, v), v);
            assert_eq!(again, theirs);
        }
    }
}

#[test]
fn sasl_authenticate() {
    use kafka_protocol::protocol::HeaderVersion;
    for v in versions(ApiKey::SaslAuthenticate) {
        assert_eq!(
            ApiKey::SaslAuthenticate.request_header_version(v),
            kp::SaslAuthenticateRequest::header_version(v)
        );
        assert_eq!(
            ApiKey::SaslAuthenticate.response_header_version(v),
            kp::SaslAuthenticateResponse::header_version(v)
        );
        for auth in [&b""[..], b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &[0u8; 300]] {
            let ours = SaslAuthenticateRequest { auth_bytes: auth };
            let bytes = ours_encode(&ours, v);
            let theirs: kp::SaslAuthenticateRequest = kp_decode(&bytes, v);
            assert_eq!(&theirs.auth_bytes[..], auth);
            assert_eq!(kp_encode(&theirs, v), bytes);
        }

        for (error_code, message, auth, lifetime) in [
            (
                0,
                None,
                &b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="[..],
                3_600_000,
            ),
            (58, Some("Authentication failed"), b"", 0),
        ] {
            let mut theirs = kp::SaslAuthenticateResponse::default();
            theirs.error_code = error_code;
            theirs.error_message = message.map(s);
            theirs.auth_bytes = auth.to_vec().into();
            theirs.session_lifetime_ms = if v >= 1 { lifetime } else { 0 };
            let bytes = kp_encode(&theirs, v);
            let ours: SaslAuthenticateResponse<'_> = ours_decode(&bytes, v);
            assert_eq!(
                ours,
                SaslAuthenticateResponse {
                    error_code: ErrorCode(error_code),
                    error_message: message,
                    auth_bytes: auth,
                    session_lifetime_ms: theirs.session_lifetime_ms,
                }
            );
            assert_eq!(ours_encode(&ours, v), bytes);
            let again: kp::SaslAuthenticateResponse = kp_decode(&ours_encode(&ours, v), v);
            assert_eq!(again, theirs);
        }
    }
}

mod transactions {
    use super::*;
    use kafka_edge_core::protocol::{
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
        AddPartitionsToTxnResponse, AddPartitionsToTxnTopic, CoordinatorKey, EndTxnRequest,
        EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, TxnOffsetCommitRequest,
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic, TxnOffsetCommitResponse,
    };

    #[test]
    fn find_coordinator() {
        let key = CoordinatorKey("tx-1");
        let ours = FindCoordinatorRequest::new(FindCoordinatorRequest::KEY_TYPE_TRANSACTION, &key);
        for v in 1..=*ApiKey::FindCoordinator.supported_versions().end() {
            let bytes = ours_encode(&ours, v);
            let theirs: kp::FindCoordinatorRequest = kp_decode(&bytes, v);
            assert_eq!(theirs.key_type, 1);
            if v < 4 {
                assert_eq!(theirs.key.as_str(), "tx-1");
            } else {
                assert_eq!(theirs.coordinator_keys.len(), 1);
                assert_eq!(theirs.coordinator_keys[0].as_str(), "tx-1");
            }
            assert_eq!(kp_encode(&theirs, v), bytes);

            let mut theirs = kp::FindCoordinatorResponse::default();
            theirs.throttle_time_ms = if v >= 1 { 2 } else { 0 };
            if v < 4 {
                theirs.node_id = kp::BrokerId(3);
                theirs.host = s("127.0.0.1");
                theirs.port = 9092;
            } else {
                let mut c = kp::find_coordinator_response::Coordinator::default();
                c.key = s("tx-1");
                c.node_id = kp::BrokerId(3);
                c.host = s("127.0.0.1");
                c.port = 9092;
                theirs.coordinators = vec![c];
            }
            let bytes = kp_encode(&theirs, v);
            let ours: FindCoordinatorResponse<'_> = ours_decode(&bytes, v);
            let c = ours.coordinator_for(v, "tx-1").unwrap();
            assert_eq!((c.node_id, c.host, c.port), (3, "127.0.0.1", 9092));
            assert_eq!(c.error_code, ErrorCode::NONE);
            assert_eq!(ours_encode(&ours, v), bytes);
        }
    }

    #[test]
    fn add_partitions_to_txn() {
        let parts = [0, 5];
        let topics = [AddPartitionsToTxnTopic {
            name: "t",
            partitions: Array::from_slice(&parts),
        }];
        let ours = AddPartitionsToTxnRequest {
            transactional_id: "tx-1",
            producer_id: 77,
            producer_epoch: 2,
            topics: Array::from_slice(&topics),
        };
        for v in versions(ApiKey::AddPartitionsToTxn) {
            let bytes = ours_encode(&ours, v);
            let theirs: kp::AddPartitionsToTxnRequest = kp_decode(&bytes, v);
            assert_eq!(theirs.v3_and_below_transactional_id.0.as_str(), "tx-1");
            assert_eq!(theirs.v3_and_below_producer_id.0, 77);
            assert_eq!(theirs.v3_and_below_producer_epoch, 2);
            assert_eq!(theirs.v3_and_below_topics[0].partitions, vec![0, 5]);
            assert_eq!(kp_encode(&theirs, v), bytes);

            let mut p =
                kp::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
            p.partition_index = 5;
            p.partition_error_code = 51;
            let mut t =
                kp::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
            t.name = kp::TopicName(s("t"));
            t.results_by_partition = vec![p];
            let mut theirs = kp::AddPartitionsToTxnResponse::default();
            theirs.results_by_topic_v3_and_below = vec![t];
            let bytes = kp_encode(&theirs, v);
            let ours: AddPartitionsToTxnResponse<'_> = ours_decode(&bytes, v);
            let t = ours.results_by_topic.iter().next().unwrap();
            let p = t.results_by_partition.iter().next().unwrap();
            assert_eq!(
                (t.name, p.partition_index, p.partition_error_code),
                ("t", 5, ErrorCode::CONCURRENT_TRANSACTIONS)
            );
            assert_eq!(ours_encode(&ours, v), bytes);
        }
    }

    #[test]
    fn end_txn_and_add_offsets_to_txn() {
        for v in versions(ApiKey::EndTxn) {
            let ours = EndTxnRequest {
                transactional_id: "tx-1",
                producer_id: 77,
                producer_epoch: 2,
                committed: true,
            };
            let bytes = ours_encode(&ours, v);
            let theirs: kp::EndTxnRequest = kp_decode(&bytes, v);
            assert!(theirs.committed);
            assert_eq!(theirs.producer_id.0, 77);
            assert_eq!(kp_encode(&theirs, v), bytes);
            let mut theirs = kp::EndTxnResponse::default();
            theirs.error_code = 48;
            let bytes = kp_encode(&theirs, v);
            let ours: EndTxnResponse = ours_decode(&bytes, v);
            assert_eq!(ours.error_code, ErrorCode(48));
            assert_eq!(ours_encode(&ours, v), bytes);
        }
        for v in versions(ApiKey::AddOffsetsToTxn) {
            let ours = AddOffsetsToTxnRequest {
                transactional_id: "tx-1",
                producer_id: 77,
                producer_epoch: 2,
                group_id: "g",
            };
            let bytes = ours_encode(&ours, v);
            let theirs: kp::AddOffsetsToTxnRequest = kp_decode(&bytes, v);
            assert_eq!(theirs.group_id.0.as_str(), "g");
            assert_eq!(kp_encode(&theirs, v), bytes);
            let mut theirs = kp::AddOffsetsToTxnResponse::default();
            theirs.error_code = 51;
            let bytes = kp_encode(&theirs, v);
            let ours: AddOffsetsToTxnResponse = ours_decode(&bytes, v);
            assert_eq!(ours.error_code, ErrorCode::CONCURRENT_TRANSACTIONS);
            assert_eq!(ours_encode(&ours, v), bytes);
        }
    }

    #[test]
    fn txn_offset_commit() {
        let parts = [TxnOffsetCommitRequestPartition {
            partition_index: 1,
            committed_offset: 42,
            committed_leader_epoch: -1,
            committed_metadata: Some("m"),
        }];
        let topics = [TxnOffsetCommitRequestTopic {
            name: "t",
            partitions: Array::from_slice(&parts),
        }];
        let ours = TxnOffsetCommitRequest {
            transactional_id: "tx-1",
            group_id: "g",
            producer_id: 77,
            producer_epoch: 2,
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
            topics: Array::from_slice(&topics),
        };
        for v in versions(ApiKey::TxnOffsetCommit) {
            let bytes = ours_encode(&ours, v);
            let theirs: kp::TxnOffsetCommitRequest = kp_decode(&bytes, v);
            assert_eq!(theirs.topics[0].partitions[0].committed_offset, 42);
            assert_eq!(kp_encode(&theirs, v), bytes);

            let mut p = kp::txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
            p.partition_index = 1;
            p.error_code = 0;
            let mut t = kp::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
            t.name = kp::TopicName(s("t"));
            t.partitions = vec![p];
            let mut theirs = kp::TxnOffsetCommitResponse::default();
            theirs.topics = vec![t];
            let bytes = kp_encode(&theirs, v);
            let ours: TxnOffsetCommitResponse<'_> = ours_decode(&bytes, v);
            let t = ours.topics.iter().next().unwrap();
            assert_eq!(t.name, "t");
            assert_eq!(t.partitions.iter().next().unwrap().partition_index, 1);
            assert_eq!(ours_encode(&ours, v), bytes);
        }
    }
}
