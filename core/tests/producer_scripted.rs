//! The producer against a scripted broker at byte level: requests are decoded and responses
//! encoded with the `kafka-protocol` crate (an independent implementation), record batches
//! read with its decoder (which checks the CRC). A virtual clock; no sockets: the harness is
//! a [`Transport`] driven by the core's own drain step ([`Producer::drain`]).

use std::collections::{BTreeMap, HashMap};

use kafka_edge_core::{
    BrokerRef, ConnId, FixedStorage, HeapStorage, Limits, NodeId, PartitionError, PartitionSet,
    Partitioner, ProduceError, Producer, ProducerConfig, ProducerRecord, SendError, Storage,
    TableFull, TableKind, Ticket, TicketRange, Transmit, Transport,
};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

/// The pool of every harness: 32 batches of the default `batch.size` (16 KiB).
const POOL_BYTES: usize = 32 * 16384;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// An event with owned data.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Connect(u16, String, u16),
    Disconnect(u16),
    Delivered(String, i32, TicketRange, i64),
    Failed(String, i32, TicketRange, String, ProduceError),
}

/// A decoded request.
#[derive(Debug)]
struct Req {
    api: kp::ApiKey,
    version: i16,
    correlation_id: i32,
    body: Vec<u8>,
}

impl Req {
    fn decode<T: Decodable>(&self) -> T {
        let mut b = &self.body[..];
        let m = T::decode(&mut b, self.version).unwrap();
        assert!(
            b.is_empty(),
            "{:?} v{} left {} bytes",
            self.api,
            self.version,
            b.len()
        );
        m
    }
}

#[derive(Debug)]
struct Conn {
    host: String,
    connected: bool,
    out: Vec<u8>,
}

/// The scripted network: the harness's [`Transport`]. Connections are opened and written
/// at once; a connection with a write budget takes at most that many bytes (then its
/// "socket buffer" is full until the test reports `handle_writable`).
#[derive(Debug, Default)]
struct Net {
    conns: BTreeMap<u16, Conn>,
    events: Vec<Ev>,
    /// Bytes a connection still takes before its buffer is full (absent: any number).
    budget: BTreeMap<u16, usize>,
    /// Transmits handed to `transmit`, per connection.
    transmits: BTreeMap<u16, usize>,
}

impl Transport for Net {
    fn connect(&mut self, conn: ConnId, broker: BrokerRef, host: &str, port: u16) {
        assert_eq!(port, 9092);
        // The scripted cluster: `boot` is bootstrap.servers[0], broker N is `broker-N`.
        let want = match host.strip_prefix("broker-") {
            Some(id) => BrokerRef::Node(NodeId(id.parse().unwrap())),
            None => BrokerRef::Bootstrap(0),
        };
        assert_eq!(broker, want, "Connect names its broker ({host})");
        let old = self.conns.insert(
            conn.0,
            Conn {
                host: host.into(),
                connected: false,
                out: Vec::new(),
            },
        );
        assert!(old.is_none(), "connect on a connection in use: {old:?}");
        self.events.push(Ev::Connect(conn.0, host.into(), port));
    }

    fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn.0);
        self.budget.remove(&conn.0);
        self.events.push(Ev::Disconnect(conn.0));
    }

    fn delivered(
        &mut self,
        topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        _log_append_time_ms: i64,
    ) {
        self.events
            .push(Ev::Delivered(topic.into(), partition, tickets, base_offset));
    }

    fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: ProduceError) {
        self.events.push(Ev::Failed(
            topic.into(),
            partition,
            tickets,
            error.to_string(),
            error,
        ));
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let conn = tx.conn();
        let bytes: Vec<u8> = tx.chunks().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(bytes.len(), tx.len());
        assert!(!tx.is_empty(), "an empty transmit");
        let mut copied = vec![0u8; tx.len()];
        assert_eq!(tx.copy_to(&mut copied), tx.len());
        assert_eq!(copied, bytes, "copy_to gives the chunks' bytes");
        *self.transmits.entry(conn.0).or_default() += 1;
        let c = self
            .conns
            .get_mut(&conn.0)
            .expect("transmit on an unknown connection");
        assert!(c.connected, "transmit before connected");
        let n = match self.budget.get_mut(&conn.0) {
            Some(0) => panic!("transmit on {conn:?} while its buffer is full (no handle_writable)"),
            Some(budget) => {
                let n = (*budget).min(bytes.len());
                *budget -= n;
                n
            }
            None => bytes.len(),
        };
        c.out.extend_from_slice(&bytes[..n]);
        n
    }
}

struct Harness<St: Storage = HeapStorage> {
    p: Producer<Vec<u8>, St>,
    now: u64,
    net: Net,
    /// Feed responses one byte at a time.
    byte_chunks: bool,
}

fn record<'a>(
    topic: &'a str,
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    value: &'a [u8],
) -> ProducerRecord<'a> {
    ProducerRecord {
        topic,
        partition,
        key,
        value: Some(value),
        headers: &[],
        timestamp: 1_700_000_000_000,
    }
}

fn config(props: &[(&str, &str)]) -> ProducerConfig {
    let mut c = ProducerConfig::new("boot:9092").unwrap();
    for (k, v) in props {
        c.set(k, v).unwrap();
    }
    c
}

impl Harness {
    /// A producer on growable tables without practical limits.
    fn new(props: &[(&str, &str)]) -> Self {
        Self::with_limits(props, Limits::UNBOUNDED)
    }
}

impl<St: Storage> Harness<St> {
    fn with_limits(props: &[(&str, &str)], limits: Limits) -> Self {
        let p = Producer::new(config(props), vec![0u8; POOL_BYTES], limits, 42).unwrap();
        let mut h = Harness {
            p,
            now: 1_000,
            net: Net::default(),
            byte_chunks: false,
        };
        h.p.handle_timeout(h.now);
        h.pump();
        h
    }

    /// The drain step after an input: events and transmits, through the core's `drain`.
    fn pump(&mut self) {
        let timeout = self.p.drain(self.now, &mut self.net);
        assert_eq!(timeout, self.p.poll_timeout());
        assert!(!self.p.has_output(), "drain leaves no output behind");
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.p.handle_timeout(self.now);
        self.pump();
    }

    /// Runs the clock to the producer's next wake-up.
    fn step(&mut self) {
        let t = self.p.poll_timeout().expect("a timer");
        self.now = self.now.max(t);
        self.p.handle_timeout(self.now);
        self.pump();
    }

    fn connect_pending(&mut self) -> Vec<u16> {
        let ids: Vec<u16> = self
            .net
            .conns
            .iter()
            .filter(|(_, c)| !c.connected)
            .map(|(k, _)| *k)
            .collect();
        for &k in &ids {
            self.net.conns.get_mut(&k).unwrap().connected = true;
            self.p.handle_connected(self.now, ConnId(k));
        }
        self.pump();
        ids
    }

    fn conn_to(&self, host: &str) -> u16 {
        *self
            .net
            .conns
            .iter()
            .find(|(_, c)| c.host == host)
            .map(|(k, _)| k)
            .unwrap_or_else(|| panic!("no connection to {host}: {:?}", self.net.conns.keys()))
    }

    /// Answers the metadata request pending on one of `conns` with topic `t` led by
    /// `leaders` (per partition).
    fn answer_metadata_on_one_of(&mut self, conns: &[u16], leaders: &[i32]) {
        let conn = conns
            .iter()
            .copied()
            .find(|c| self.net.conns[c].out.len() >= 4)
            .expect("a metadata request");
        self.metadata(conn, &[("t", leaders)]);
    }

    /// Answers the metadata requests pending on every connection but `conn` with topic `t`
    /// led by `leaders` (per partition).
    fn answer_metadata_elsewhere(&mut self, conn: u16, leaders: &[i32]) {
        let others: Vec<u16> = self
            .net
            .conns
            .keys()
            .copied()
            .filter(|&c| c != conn && self.net.conns[&c].out.len() >= 4)
            .collect();
        for c in others {
            self.metadata(c, &[("t", leaders)]);
        }
    }

    /// Steps the clock (at most `steps` wake-ups) until the producer opens a connection to
    /// `host`; whether it did.
    fn wait_connection_to(&mut self, host: &str, steps: usize) -> bool {
        for _ in 0..steps {
            if self.net.conns.values().any(|c| c.host == host) {
                return true;
            }
            self.step();
        }
        self.net.conns.values().any(|c| c.host == host)
    }

    /// Waits (at most `steps` wake-ups) for the producer to open a connection to `host`,
    /// connects it and answers its ApiVersions (Produce up to v11); the connection.
    fn connect_when_asked(&mut self, host: &str, steps: usize) -> u16 {
        self.wait_connection_to(host, steps);
        let conn = self.conn_to(host);
        self.connect_pending();
        self.api_versions(conn, 11);
        conn
    }

    /// The connection to `host` not yet connected, if any (a connect in progress).
    fn connecting_to(&self, host: &str) -> Option<u16> {
        self.net
            .conns
            .iter()
            .find(|(_, c)| c.host == host && !c.connected)
            .map(|(&k, _)| k)
    }

    /// Steps the clock (at most `steps` wake-ups) until the producer connects to `host`
    /// again, after its backoff; the new connection.
    fn reconnect_to(&mut self, host: &str, steps: usize) -> u16 {
        for _ in 0..steps {
            if let Some(k) = self.connecting_to(host) {
                return k;
            }
            self.step();
        }
        panic!("no reconnect to {host} after {steps} steps")
    }

    /// The next whole request written on `conn`.
    fn request(&mut self, conn: u16) -> Option<Req> {
        let c = self.net.conns.get_mut(&conn)?;
        if c.out.len() < 4 {
            return None;
        }
        let len = i32::from_be_bytes(c.out[..4].try_into().unwrap()) as usize;
        if c.out.len() < 4 + len {
            return None;
        }
        let frame: Vec<u8> = c.out.drain(..4 + len).skip(4).collect();
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api = kp::ApiKey::try_from(api_key).unwrap();
        let mut b = &frame[..];
        let header =
            kp::RequestHeader::decode(&mut b, api.request_header_version(version)).unwrap();
        assert_eq!(header.client_id.as_deref(), Some("kafka-edge"));
        Some(Req {
            api,
            version,
            correlation_id: header.correlation_id,
            body: b.to_vec(),
        })
    }

    /// Steps the clock until `conn` has a whole request to read (at most `n` wake-ups).
    fn wait_request(&mut self, conn: u16, n: usize) {
        for _ in 0..n {
            if self.net.conns.get(&conn).is_some_and(|c| c.out.len() >= 4) {
                return;
            }
            self.step();
        }
    }

    fn expect(&mut self, conn: u16, api: kp::ApiKey) -> Req {
        let r = self
            .request(conn)
            .unwrap_or_else(|| panic!("no request on {conn}, wanted {api:?}"));
        assert_eq!(r.api, api, "unexpected request");
        r
    }

    fn respond<T: Encodable>(&mut self, conn: u16, req: &Req, body: &T) {
        let mut frame = Vec::new();
        let mut header = kp::ResponseHeader::default();
        header.correlation_id = req.correlation_id;
        header
            .encode(&mut frame, req.api.response_header_version(req.version))
            .unwrap();
        body.encode(&mut frame, req.version).unwrap();
        let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&frame);
        self.feed(conn, &bytes);
    }

    fn feed(&mut self, conn: u16, bytes: &[u8]) {
        if self.byte_chunks {
            for b in bytes {
                assert_eq!(
                    self.p
                        .handle_received(self.now, ConnId(conn), std::slice::from_ref(b)),
                    1
                );
            }
        } else {
            assert_eq!(
                self.p.handle_received(self.now, ConnId(conn), bytes),
                bytes.len()
            );
        }
        self.pump();
    }

    fn api_versions(&mut self, conn: u16, produce_max: i16) {
        let req = self.expect(conn, kp::ApiKey::ApiVersions);
        let _: kp::ApiVersionsRequest = req.decode();
        let mut resp = kp::ApiVersionsResponse::default();
        for (k, min, max) in [(0, 3, produce_max), (3, 0, 12), (18, 0, 3), (22, 0, 5)] {
            let mut v = kp::api_versions_response::ApiVersion::default();
            v.api_key = k;
            v.min_version = min;
            v.max_version = max;
            resp.api_keys.push(v);
        }
        self.respond(conn, &req, &resp);
    }

    /// Answers a Metadata request with brokers 1 and 2 and topic `t` (partitions led as given).
    fn metadata(&mut self, conn: u16, topics: &[(&str, &[i32])]) -> kp::MetadataRequest {
        let req = self.expect(conn, kp::ApiKey::Metadata);
        let m: kp::MetadataRequest = req.decode();
        let mut resp = kp::MetadataResponse::default();
        for id in [1, 2] {
            let mut b = kp::metadata_response::MetadataResponseBroker::default();
            b.node_id = kp::BrokerId(id);
            b.host = s(&format!("broker-{id}"));
            b.port = 9092;
            resp.brokers.push(b);
        }
        for (name, leaders) in topics {
            let mut t = kp::metadata_response::MetadataResponseTopic::default();
            t.name = Some(kp::TopicName(s(name)));
            if leaders.is_empty() {
                t.error_code = 3; // UNKNOWN_TOPIC_OR_PARTITION
            }
            for (i, l) in leaders.iter().enumerate() {
                let mut part = kp::metadata_response::MetadataResponsePartition::default();
                part.partition_index = i as i32;
                part.leader_id = kp::BrokerId(*l);
                part.leader_epoch = 1;
                t.partitions.push(part);
            }
            resp.topics.push(t);
        }
        self.respond(conn, &req, &resp);
        m
    }

    fn init_producer_id(&mut self, conn: u16, id: i64, epoch: i16) -> kp::InitProducerIdRequest {
        let req = self.expect(conn, kp::ApiKey::InitProducerId);
        let r: kp::InitProducerIdRequest = req.decode();
        assert!(r.transactional_id.is_none());
        let mut resp = kp::InitProducerIdResponse::default();
        resp.producer_id = kp::ProducerId(id);
        resp.producer_epoch = epoch;
        self.respond(conn, &req, &resp);
        r
    }

    /// The batches of a Produce request: (topic, partition, records).
    fn produce_response(&mut self, conn: u16, req: &Req, parts: &[(&str, i32, i16, i64)]) {
        let mut resp = kp::ProduceResponse::default();
        for (topic, partition, error, offset) in parts {
            let mut t = resp
                .responses
                .iter()
                .position(|t| t.name.0.as_str() == *topic);
            if t.is_none() {
                let mut tr = kp::produce_response::TopicProduceResponse::default();
                tr.name = kp::TopicName(s(topic));
                resp.responses.push(tr);
                t = Some(resp.responses.len() - 1);
            }
            let mut pr = kp::produce_response::PartitionProduceResponse::default();
            pr.index = *partition;
            pr.error_code = *error;
            pr.base_offset = *offset;
            pr.log_append_time_ms = -1;
            resp.responses[t.unwrap()].partition_responses.push(pr);
        }
        self.respond(conn, req, &resp);
    }

    fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        value: &[u8],
    ) -> Result<Ticket, SendError> {
        self.send_record(&record(topic, partition, None, value))
    }

    fn send_record(&mut self, r: &ProducerRecord<'_>) -> Result<Ticket, SendError> {
        let out = self.p.send(self.now, r);
        self.pump();
        out
    }

    fn send_with(
        &mut self,
        r: &ProducerRecord<'_>,
        partitioner: &mut dyn Partitioner,
    ) -> Result<Ticket, SendError> {
        let out = self.p.send_with(self.now, r, partitioner);
        self.pump();
        out
    }

    /// Bootstraps: connect, ApiVersions, Metadata (topic `t` with the given leaders),
    /// InitProducerId; returns the bootstrap connection.
    fn bootstrap(&mut self, topic: &str, leaders: &[i32], idempotent: bool) -> u16 {
        assert!(
            matches!(self.net.events.first(), Some(Ev::Connect(_, h, 9092)) if h == "boot"),
            "{:?}",
            self.net.events
        );
        let boot = self.conn_to("boot");
        self.connect_pending();
        self.api_versions(boot, 11);
        // Metadata first (no topics yet), then the producer id.
        let m = self.metadata(boot, &[]);
        assert_eq!(m.topics.as_ref().map(Vec::len), Some(0));
        if idempotent {
            self.init_producer_id(boot, 4000, 0);
            assert_eq!(self.p.producer_id_and_epoch(), Some((4000, 0)));
        }
        // A send to an unknown topic registers it and fetches it.
        assert_eq!(
            self.send(topic, None, b"x"),
            Err(SendError::MetadataNotReady)
        );
        let m = self.metadata(boot, &[(topic, leaders)]);
        assert_eq!(
            m.topics.unwrap()[0].name.as_ref().unwrap().0.as_str(),
            topic
        );
        boot
    }
}

/// The Produce request `req` and its batches: (topic, partition, records).
fn produce_batches(
    req: &Req,
) -> (
    kp::ProduceRequest,
    Vec<(String, i32, Vec<kafka_protocol::records::Record>)>,
) {
    let r: kp::ProduceRequest = req.decode();
    let mut out = Vec::new();
    for t in &r.topic_data {
        for p in &t.partition_data {
            let mut bytes = p.records.clone().unwrap();
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            out.push((t.name.0.to_string(), p.index, set.records));
        }
    }
    (r, out)
}

fn delivered<St: Storage>(h: &Harness<St>) -> Vec<(i32, TicketRange, i64)> {
    h.net
        .events
        .iter()
        .filter_map(|e| {
            if let Ev::Delivered(_, p, t, o) = e {
                Some((*p, *t, *o))
            } else {
                None
            }
        })
        .collect()
}

fn failed<St: Storage>(h: &Harness<St>) -> Vec<(TicketRange, ProduceError)> {
    h.net
        .events
        .iter()
        .filter_map(|e| {
            if let Ev::Failed(_, _, t, _, err) = e {
                Some((*t, *err))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn bootstrap_metadata_init_producer_id_produce_delivered() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let _boot = h.bootstrap("orders", &[1, 1], true);
    let t1 = h.send("orders", Some(0), b"hello").unwrap();
    let t2 = h.send("orders", Some(1), b"world").unwrap();
    // The leader (broker 1) gets a connection of its own.
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(req.version, 11);
    let (r, batches) = produce_batches(&req);
    assert_eq!(r.acks, -1);
    assert_eq!(batches.len(), 2, "one request carries both partitions");
    for (topic, partition, records) in &batches {
        assert_eq!(topic, "orders");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].producer_id, 4000);
        assert_eq!(records[0].sequence, 0);
        let want: &[u8] = if *partition == 0 { b"hello" } else { b"world" };
        assert_eq!(records[0].value.as_deref(), Some(want));
        assert_eq!(records[0].timestamp, 1_700_000_000_000);
    }
    h.produce_response(b1, &req, &[("orders", 0, 0, 100), ("orders", 1, 0, 7)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 2);
    let of = |t: Ticket| {
        d.iter()
            .find(|(_, r, _)| r.contains(t))
            .map(|(p, _, o)| (*p, *o))
    };
    assert_eq!(of(t1), Some((0, 100)));
    assert_eq!(of(t2), Some((1, 7)));
    assert!(h.p.is_flushed());
    // The next batch of partition 0 continues the sequence.
    h.send("orders", Some(0), b"again").unwrap();
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].sequence, 1);
}

#[test]
fn responses_in_one_byte_chunks() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.byte_chunks = true;
    h.bootstrap("t", &[2], true);
    let t = h.send("t", None, b"v").unwrap();
    let b2 = h.conn_to("broker-2");
    h.connect_pending();
    h.api_versions(b2, 9);
    h.wait_request(b2, 3);
    let req = h.expect(b2, kp::ApiKey::Produce);
    assert_eq!(req.version, 9);
    h.produce_response(b2, &req, &[("t", 0, 0, 55)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].1.contains(t));
    assert_eq!((d[0].0, d[0].2), (0, 55));
}

/// Bootstraps (topic `t`, partition 0 led by broker 1, idempotent), sends one record to
/// partition 0 and returns the bootstrap and broker-1 connections, its ticket and the
/// Produce request that carries it.
fn first_produce_on_broker_1(h: &mut Harness) -> (u16, u16, Ticket, Req) {
    let boot = h.bootstrap("t", &[1], true);
    let t = h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    (boot, b1, t, req)
}

#[test]
fn leader_error_refreshes_metadata_and_retries_on_the_new_leader() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, t, req) = first_produce_on_broker_1(&mut h);
    let (_, batches) = produce_batches(&req);
    let seq = batches[0].2[0].sequence;
    h.produce_response(b1, &req, &[("t", 0, 6, -1)]); // NOT_LEADER_OR_FOLLOWER
    assert!(delivered(&h).is_empty());
    // A metadata refresh goes out; broker 2 now leads.
    h.answer_metadata_on_one_of(&[boot, b1], &[2]);
    // Retry after the backoff, to broker 2, same sequence.
    let b2 = h.connect_when_asked("broker-2", 5);
    for _ in 0..5 {
        if h.net.conns[&b2].out.len() >= 4 {
            break;
        }
        h.step();
    }
    let req = h.expect(b2, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].sequence, seq, "a retry keeps its sequence");
    h.produce_response(b2, &req, &[("t", 0, 0, 9)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].1.contains(t));
    assert_eq!(d[0].2, 9);
    assert_eq!(h.p.metrics().batches_retried, 1);
}

/// KIP-951: NOT_LEADER_OR_FOLLOWER for partition 0 of `t` naming `leader` with `epoch`
/// (and, with `endpoint`, that broker's address as `broker-<leader>:9092`).
fn not_leader_with_hint(h: &mut Harness, conn: u16, req: &Req, leader: i32, epoch: i32) {
    let mut pr = kp::produce_response::PartitionProduceResponse::default();
    pr.index = 0;
    pr.error_code = 6; // NOT_LEADER_OR_FOLLOWER
    pr.base_offset = -1;
    pr.log_append_time_ms = -1;
    pr.current_leader.leader_id = kp::BrokerId(leader);
    pr.current_leader.leader_epoch = epoch;
    let mut tr = kp::produce_response::TopicProduceResponse::default();
    tr.name = kp::TopicName(s("t"));
    tr.partition_responses.push(pr);
    let mut resp = kp::ProduceResponse::default();
    resp.responses.push(tr);
    let mut e = kp::produce_response::NodeEndpoint::default();
    e.node_id = kp::BrokerId(leader);
    e.host = s(&format!("broker-{leader}"));
    e.port = 9092;
    resp.node_endpoints.push(e);
    h.respond(conn, req, &resp);
}

#[test]
fn a_leader_hint_in_the_produce_response_reroutes_without_a_metadata_round_trip() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, t, req) = first_produce_on_broker_1(&mut h);
    let (_, batches) = produce_batches(&req);
    let seq = batches[0].2[0].sequence;
    let updates = h.p.metrics().metadata_updates;
    // Broker 3, unknown to the metadata so far, leads from epoch 2 on (the metadata had 1).
    not_leader_with_hint(&mut h, b1, &req, 3, 2);
    let hinted_at = h.now;
    assert_eq!(h.p.metrics().leader_hints_applied, 1);
    h.wait_connection_to("broker-3", 5);
    // No Metadata request went out: the retry goes straight to the hinted leader.
    assert!(
        [boot, b1].iter().all(|c| h.net.conns[c].out.is_empty()),
        "nothing (no Metadata request) was written to the other brokers"
    );
    let b3 = h.conn_to("broker-3");
    h.connect_pending();
    h.api_versions(b3, 11);
    for _ in 0..5 {
        if h.net.conns[&b3].out.len() >= 4 {
            break;
        }
        h.step();
    }
    let req = h.expect(b3, kp::ApiKey::Produce);
    assert!(
        h.now - hinted_at < 100,
        "a retry to a new leader skips retry.backoff.ms (sent {} ms after the hint)",
        h.now - hinted_at
    );
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].sequence, seq, "a retry keeps its sequence");
    h.produce_response(b3, &req, &[("t", 0, 0, 41)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].1.contains(t));
    assert_eq!(d[0].2, 41);
    assert_eq!(
        h.p.metrics().metadata_updates,
        updates,
        "no metadata update was needed"
    );
}

#[test]
fn a_stale_leader_hint_is_ignored_and_the_metadata_is_refreshed() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, _, req) = first_produce_on_broker_1(&mut h);
    // Epoch 1 is the one the metadata already has: not newer, so not taken (Java's rule).
    not_leader_with_hint(&mut h, b1, &req, 2, 1);
    assert_eq!(h.p.metrics().leader_hints_applied, 0);
    h.answer_metadata_on_one_of(&[boot, b1], &[2]);
    assert!(h.wait_connection_to("broker-2", 5));
}

#[test]
fn request_timeout_reconnects_and_retries_with_the_same_sequence_then_duplicate_is_success() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "60000"),
    ]);
    h.bootstrap("t", &[1], true);
    let t = h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    let seq = batches[0].2[0].sequence;
    // No answer: after request.timeout.ms the connection is closed.
    h.advance(1_000);
    assert!(
        h.net.events.contains(&Ev::Disconnect(b1)),
        "{:?}",
        h.net.events
    );
    // Reconnect (after the backoff) and retry.
    let b1 = h.reconnect_to("broker-1", 20);
    h.connect_pending();
    h.api_versions(b1, 11);
    for _ in 0..20 {
        if h.net.conns[&b1].out.len() >= 4 {
            break;
        }
        // A metadata refresh may be asked for after the disconnect: answer it.
        h.answer_metadata_elsewhere(b1, &[1]);
        h.step();
    }
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].sequence, seq);
    assert_eq!(batches[0].2[0].producer_epoch, 0);
    // The broker had written it: DUPLICATE_SEQUENCE_NUMBER counts as success.
    h.produce_response(b1, &req, &[("t", 0, 46, -1)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].1.contains(t));
    assert_eq!(d[0].2, -1);
}

#[test]
fn acks_zero_is_delivered_once_written() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("acks", "0")]);
    h.bootstrap("t", &[1], false);
    assert_eq!(h.p.producer_id_and_epoch(), None);
    let t = h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (r, batches) = produce_batches(&req);
    assert_eq!(r.acks, 0);
    assert_eq!(batches[0].2[0].producer_id, -1);
    let d = delivered(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].1.contains(t));
    assert_eq!(d[0].2, -1);
}

#[test]
fn unknown_topic_keeps_answering_metadata_not_ready_and_invalid_topic_is_immediate() {
    let mut h = Harness::new(&[]);
    let boot = h.conn_to("boot");
    h.connect_pending();
    h.api_versions(boot, 11);
    h.metadata(boot, &[]);
    h.init_producer_id(boot, 1, 0);
    assert_eq!(h.send("", None, b"v"), Err(SendError::InvalidTopic));
    assert_eq!(h.send("a/b", None, b"v"), Err(SendError::InvalidTopic));
    assert_eq!(h.send("..", None, b"v"), Err(SendError::InvalidTopic));
    assert_eq!(
        h.send(&"x".repeat(250), None, b"v"),
        Err(SendError::InvalidTopic)
    );
    assert_eq!(
        h.send("missing", None, b"v"),
        Err(SendError::MetadataNotReady)
    );
    h.metadata(boot, &[("missing", &[])]);
    assert_eq!(
        h.send("missing", None, b"v"),
        Err(SendError::MetadataNotReady)
    );
    // It keeps being fetched, with a backoff.
    h.step();
    h.metadata(boot, &[("missing", &[1, 2])]);
    assert!(h.send("missing", None, b"v").is_ok());
    assert_eq!(
        h.send("missing", Some(2), b"v"),
        Err(SendError::InvalidPartition {
            partition: 2,
            num_partitions: 2
        })
    );
}

#[test]
fn flush_then_close_with_a_deadline_gives_every_record_an_outcome() {
    let mut h = Harness::new(&[("linger.ms", "10000"), ("delivery.timeout.ms", "100000")]);
    h.bootstrap("t", &[1, 2], true);
    let mut tickets = Vec::new();
    for i in 0..6 {
        tickets.push(
            h.send("t", Some(i % 2), format!("v{i}").as_bytes())
                .unwrap(),
        );
    }
    // Linger is long: flush makes them ready at once.
    h.p.flush(h.now);
    h.pump();
    let b1 = h.conn_to("broker-1");
    let b2 = h.conn_to("broker-2");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.api_versions(b2, 11);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2.len(), 3);
    h.produce_response(b1, &req, &[("t", 0, 0, 0)]);
    assert!(!h.p.is_flushed());
    // Broker 2 never answers; close with a deadline.
    h.p.close(h.now, 500);
    h.pump();
    assert_eq!(h.send("t", None, b"late"), Err(SendError::Closed));
    h.advance(499);
    assert!(!h.p.is_closed());
    h.advance(1);
    assert!(h.p.is_closed());
    let d = delivered(&h);
    let f = failed(&h);
    assert_eq!(d.len(), 1);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].1, ProduceError::Closed);
    let mut count: HashMap<Ticket, usize> = HashMap::new();
    for r in d.iter().map(|d| d.1).chain(f.iter().map(|f| f.0)) {
        for t in r.iter() {
            *count.entry(t).or_default() += 1;
        }
    }
    for t in &tickets {
        assert_eq!(count.get(t), Some(&1), "{t:?}");
    }
    assert!(h.net.events.contains(&Ev::Disconnect(b2)));
}

#[test]
fn delivery_timeout_fails_a_batch_whose_leader_is_unreachable() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("delivery.timeout.ms", "31000")]);
    h.bootstrap("t", &[1], true);
    let t = h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    // The connection to broker 1 keeps failing.
    for _ in 0..200 {
        if !failed(&h).is_empty() {
            break;
        }
        if let Some(k) = h.connecting_to("broker-1") {
            h.net.conns.remove(&k);
            h.p.handle_closed(h.now, ConnId(k));
            h.pump();
        }
        let pending: Vec<u16> = h
            .net
            .conns
            .keys()
            .copied()
            .filter(|&c| h.net.conns[&c].out.len() >= 4)
            .collect();
        for c in pending {
            h.metadata(c, &[("t", &[1])]);
        }
        h.step();
    }
    let _ = b1;
    let f = failed(&h);
    assert_eq!(f.len(), 1);
    assert!(f[0].0.contains(t));
    assert_eq!(f[0].1, ProduceError::DeliveryTimeout);
    assert!(h.p.is_flushed());
}

#[test]
fn unsupported_api_versions_version_is_retried_lower() {
    let mut h = Harness::new(&[]);
    let boot = h.conn_to("boot");
    h.connect_pending();
    let req = h.expect(boot, kp::ApiKey::ApiVersions);
    assert_eq!(req.version, 4);
    // The broker answers v0 with UNSUPPORTED_VERSION and its range (ApiVersions up to 2).
    let mut body = Vec::new();
    body.extend_from_slice(&35i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    for v in [18i16, 0, 2] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    let mut frame = req.correlation_id.to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    h.feed(boot, &bytes);
    let req = h.expect(boot, kp::ApiKey::ApiVersions);
    assert_eq!(req.version, 2);
}

#[test]
fn out_of_order_sequence_bumps_the_epoch_and_retries() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, t, req) = first_produce_on_broker_1(&mut h);
    h.produce_response(b1, &req, &[("t", 0, 59, -1)]); // UNKNOWN_PRODUCER_ID
    // InitProducerId with the current id and epoch (KIP-360), on a ready connection.
    let mut bumped = false;
    for _ in 0..10 {
        for c in [boot, b1] {
            if h.net.conns.get(&c).is_some_and(|x| x.out.len() >= 4) {
                let r = h.init_producer_id(c, 4000, 1);
                assert_eq!((r.producer_id.0, r.producer_epoch), (4000, 0));
                bumped = true;
            }
        }
        if bumped {
            break;
        }
        h.step();
    }
    assert!(bumped);
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 1)));
    for _ in 0..10 {
        if h.net.conns[&b1].out.len() >= 4 {
            break;
        }
        h.step();
    }
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].producer_epoch, 1);
    assert_eq!(batches[0].2[0].sequence, 0);
    h.produce_response(b1, &req, &[("t", 0, 0, 3)]);
    assert!(delivered(&h)[0].1.contains(t));
}

/// Records with an outcome so far.
fn outcomes(h: &Harness) -> usize {
    let d: u32 = delivered(h).iter().map(|d| d.1.count()).sum();
    let f: u32 = failed(h).iter().map(|f| f.0.count()).sum();
    (d + f) as usize
}

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("record-{i:04}-").into_bytes();
    v.resize(len, b'a' + (i % 26) as u8);
    v
}

/// The delivered events with their topic: (topic, partition, tickets, base offset).
fn delivered_to<St: Storage>(h: &Harness<St>) -> Vec<(String, i32, TicketRange, i64)> {
    h.net
        .events
        .iter()
        .filter_map(|e| {
            if let Ev::Delivered(t, p, r, o) = e {
                Some((t.clone(), *p, *r, *o))
            } else {
                None
            }
        })
        .collect()
}

/// Connects the leader (broker 1) after a flush and returns its first Produce request.
#[test]
fn memory_exhausted_in_the_transport_sends_lingering_batches_at_once() {
    let mut h = Harness::new(&[("linger.ms", "10000")]);
    h.bootstrap("t", &[1], true);
    for i in 0..3 {
        h.send("t", Some(0), format!("v{i}").as_bytes()).unwrap();
    }
    h.pump();
    assert!(
        h.net.conns.values().all(|c| c.host != "broker-1"),
        "lingering: nothing to send yet"
    );
    // The transport's own memory for pending records ran out (std's callback budget): a
    // send waits, so what is queued goes now, as when the pool is full.
    h.p.handle_memory_exhausted(h.now);
    h.pump();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].2.len(), 3);
    h.produce_response(b1, &req, &[("t", 0, 0, 0)]);
    assert_eq!(delivered(&h).len(), 1);
    // Released memory ends it: the next record lingers again.
    h.send("t", Some(0), b"after").unwrap();
    h.pump();
    assert!(
        h.request(b1).is_none(),
        "lingers again once memory was freed"
    );
    h.advance(10_000);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(produce_batches(&req).1[0].2.len(), 1);
}

fn flush_to_broker_1<St: Storage>(h: &mut Harness<St>) -> (u16, Req) {
    h.p.flush(h.now);
    h.pump();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    (b1, req)
}

/// A producer whose topic table holds 2 topics: the third topic is refused with a typed
/// error naming the table and its limit; the first two topics still deliver.
fn topic_table_full<St: Storage>(mut h: Harness<St>) {
    let boot = h.bootstrap("a", &[1], true);
    let ta = h.send("a", Some(0), b"to-a").unwrap();
    assert_eq!(h.send("b", None, b"x"), Err(SendError::MetadataNotReady));
    h.wait_request(boot, 3);
    let m = h.metadata(boot, &[("a", &[1]), ("b", &[1])]);
    assert!(
        m.topics
            .unwrap()
            .iter()
            .any(|t| t.name.as_ref().unwrap().0.as_str() == "b")
    );
    let tb = h.send("b", Some(0), b"to-b").unwrap();

    let full = SendError::TableFull(TableFull {
        table: TableKind::Topics,
        limit: 2,
    });
    assert_eq!(h.send("c", None, b"x"), Err(full));
    assert!(!full.is_retriable());
    let msg = full.to_string();
    assert!(msg.contains("topics"), "{msg}");
    assert!(msg.contains('2'), "{msg}");
    assert_eq!(
        h.p.topic_id("c"),
        None,
        "the refused topic is not registered"
    );
    // Asking again gives the same answer.
    assert_eq!(h.send("c", Some(0), b"x"), Err(full));

    let (b1, req) = flush_to_broker_1(&mut h);
    let (_, batches) = produce_batches(&req);
    let mut got: Vec<(String, i32, Vec<u8>)> = batches
        .iter()
        .map(|(t, p, r)| {
            assert_eq!(r.len(), 1);
            (t.clone(), *p, r[0].value.as_deref().unwrap().to_vec())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("a".to_owned(), 0, b"to-a".to_vec()),
            ("b".to_owned(), 0, b"to-b".to_vec())
        ]
    );
    h.produce_response(b1, &req, &[("a", 0, 0, 10), ("b", 0, 0, 20)]);
    let d = delivered_to(&h);
    assert_eq!(d.len(), 2, "{d:?}");
    for (topic, t, offset) in [("a", ta, 10), ("b", tb, 20)] {
        let of: Vec<_> = d.iter().filter(|(_, _, r, _)| r.contains(t)).collect();
        assert_eq!(of.len(), 1, "{topic}: one outcome");
        assert_eq!((of[0].0.as_str(), of[0].1, of[0].3), (topic, 0, offset));
    }
    assert!(failed(&h).is_empty());
    assert!(h.p.is_flushed());
}

#[test]
fn topic_table_full_is_a_typed_error_naming_the_limit() {
    // Growable tables with a run-time limit of 2 topics.
    topic_table_full(Harness::<HeapStorage>::with_limits(
        &[("linger.ms", "10000")],
        Limits {
            topics: 2,
            ..Limits::UNBOUNDED
        },
    ));
    // Firmware-sized inline tables: 2 topics, whatever the limits say.
    topic_table_full(
        Harness::<FixedStorage<2, 16, 4, 4, 32, 4096, 4096>>::with_limits(
            &[("linger.ms", "10000")],
            Limits::UNBOUNDED,
        ),
    );
}

#[test]
fn large_cluster_request_carries_every_ready_batch() {
    const PARTITIONS: u32 = 128;
    // 1 KiB batches: the 512 KiB pool holds a batch for every partition.
    let mut h = Harness::new(&[("linger.ms", "10000"), ("batch.size", "1024")]);
    let leaders = vec![1; PARTITIONS as usize];
    h.bootstrap("big", &leaders, true);
    // One key per partition, as the built-in partitioner (murmur2) places it.
    let n = std::num::NonZeroU32::new(PARTITIONS).unwrap();
    let mut keys: Vec<Option<Vec<u8>>> = vec![None; PARTITIONS as usize];
    let mut i = 0;
    while keys.iter().any(Option::is_none) {
        let key = format!("key-{i}").into_bytes();
        let p = kafka_edge_core::partition_for_key(&key, n) as usize;
        keys[p].get_or_insert(key);
        i += 1;
    }
    let mut sent = Vec::new();
    for (p, key) in keys.iter().enumerate() {
        let key = key.as_deref().unwrap();
        let value = format!("value-{p}");
        let t = h
            .send_record(&record("big", None, Some(key), value.as_bytes()))
            .unwrap();
        sent.push((p as i32, t));
    }
    assert_eq!(h.p.pending_batches(), PARTITIONS as usize);

    let (b1, req) = flush_to_broker_1(&mut h);
    let (_, batches) = produce_batches(&req);
    assert!(batches.len() > 32, "more batches than the old cap of 32");
    assert_eq!(
        batches.len(),
        PARTITIONS as usize,
        "one request carries every ready batch"
    );
    let mut partitions: Vec<i32> = batches.iter().map(|(_, p, _)| *p).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, (0..PARTITIONS as i32).collect::<Vec<_>>());
    for (topic, p, records) in &batches {
        assert_eq!(topic, "big");
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].key.as_deref(),
            keys[*p as usize].as_deref(),
            "partition {p}"
        );
        assert_eq!(
            records[0].value.as_deref(),
            Some(format!("value-{p}").as_bytes())
        );
    }
    assert_eq!(h.p.in_flight_batches(), PARTITIONS as usize);
    assert!(h.request(b1).is_none(), "no second request");

    let parts: Vec<(&str, i32, i16, i64)> = (0..PARTITIONS as i32)
        .map(|p| ("big", p, 0, i64::from(p) * 1000))
        .collect();
    h.produce_response(b1, &req, &parts);
    let d = delivered_to(&h);
    assert_eq!(d.len(), PARTITIONS as usize);
    for (p, t) in &sent {
        let of: Vec<_> = d.iter().filter(|(_, _, r, _)| r.contains(*t)).collect();
        assert_eq!(of.len(), 1, "{t:?} is delivered once");
        assert_eq!(
            (of[0].0.as_str(), of[0].1, of[0].3),
            ("big", *p, i64::from(*p) * 1000)
        );
    }
    assert!(failed(&h).is_empty());
    assert!(h.p.is_flushed());
}

#[test]
fn partial_write_waits_for_handle_writable() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.bootstrap("t", &[1], true);
    let t = h.send("t", Some(0), b"written in three parts").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    // From now on broker 1's socket takes 10 bytes, then its buffer is full.
    h.net.budget.insert(b1, 10);
    h.api_versions(b1, 11);
    for _ in 0..3 {
        if !h.net.conns[&b1].out.is_empty() {
            break;
        }
        h.step();
    }
    assert_eq!(h.net.conns[&b1].out.len(), 10, "a partial write");
    let offered = h.net.transmits[&b1];

    // The socket would take everything now, but nobody said it is writable: the rest is
    // not offered, through timers and the old re-arm trick alike.
    h.net.budget.remove(&b1);
    assert!(!h.p.has_output());
    assert!(h.p.poll_transmit(h.now).is_none());
    h.advance(100);
    h.p.handle_transmitted(h.now, ConnId(b1), 0);
    h.pump();
    assert!(h.p.poll_transmit(h.now).is_none());
    assert_eq!(h.net.conns[&b1].out.len(), 10);
    assert_eq!(h.net.transmits[&b1], offered, "not offered again");
    assert!(delivered(&h).is_empty());

    // Writable: the rest is offered; the socket takes 25 more bytes and is full again.
    h.net.budget.insert(b1, 25);
    h.p.handle_writable(h.now, ConnId(b1));
    h.pump();
    assert_eq!(h.net.conns[&b1].out.len(), 35);
    assert_eq!(h.net.transmits[&b1], offered + 1);
    assert!(h.p.poll_transmit(h.now).is_none());
    assert!(h.request(b1).is_none(), "the request is not whole yet");

    // Writable again with room for everything: the request completes.
    h.net.budget.remove(&b1);
    h.p.handle_writable(h.now, ConnId(b1));
    h.pump();
    assert_eq!(h.net.transmits[&b1], offered + 2);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches.len(), 1);
    assert_eq!(
        batches[0].2[0].value.as_deref(),
        Some(&b"written in three parts"[..])
    );
    assert!(h.request(b1).is_none());
    h.produce_response(b1, &req, &[("t", 0, 0, 5)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].1.contains(t));
    assert_eq!((d[0].0, d[0].2), (0, 5));
    assert!(h.p.is_flushed());
}

/// A partitioner that records what it is told and picks the last partition (or `answer`).
#[derive(Default)]
struct LastPartition {
    seen: Vec<(String, u32, Option<Vec<u8>>)>,
    appended: Vec<(String, i32)>,
    answer: Option<i32>,
}

impl Partitioner for LastPartition {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        partitions: &PartitionSet<'_>,
    ) -> Result<i32, PartitionError> {
        let n = partitions.num_partitions();
        self.seen.push((topic.into(), n, key.map(<[u8]>::to_vec)));
        Ok(self.answer.unwrap_or(n as i32 - 1))
    }

    fn on_append(
        &mut self,
        topic: &str,
        partition: i32,
        appended_bytes: usize,
        _all_batches_full: bool,
    ) {
        assert!(appended_bytes > 0);
        self.appended.push((topic.into(), partition));
    }
}

#[test]
fn custom_partitioner_sees_topic_name_and_count() {
    let mut h = Harness::new(&[("linger.ms", "10000")]);
    h.bootstrap("orders", &[1, 1, 1, 1], true);
    let mut part = LastPartition::default();
    let t1 = h
        .send_with(&record("orders", None, Some(b"k1"), b"v1"), &mut part)
        .unwrap();
    let t2 = h
        .send_with(&record("orders", None, None, b"v2"), &mut part)
        .unwrap();
    let orders = |n: u32, key: Option<&[u8]>| ("orders".to_owned(), n, key.map(<[u8]>::to_vec));
    assert_eq!(part.seen, [orders(4, Some(b"k1")), orders(4, None)]);
    assert_eq!(part.appended, vec![("orders".to_owned(), 3); 2]);
    // An explicit partition wins: the partitioner is not asked.
    let t3 = h
        .send_with(&record("orders", Some(0), Some(b"k3"), b"v3"), &mut part)
        .unwrap();
    assert_eq!(part.seen.len(), 2);
    assert_eq!(part.appended.last(), Some(&("orders".to_owned(), 0)));
    // An answer out of range is refused, and nothing is appended.
    let pending = h.p.pending_batches();
    for bad in [4, -1] {
        part.answer = Some(bad);
        assert_eq!(
            h.send_with(&record("orders", None, None, b"bad"), &mut part),
            Err(SendError::InvalidPartition {
                partition: bad,
                num_partitions: 4
            })
        );
    }
    assert_eq!(part.seen.len(), 4);
    assert_eq!(part.appended.len(), 3);
    assert_eq!(h.p.pending_batches(), pending);

    let (b1, req) = flush_to_broker_1(&mut h);
    let (_, batches) = produce_batches(&req);
    let mut got: Vec<(i32, Vec<Vec<u8>>)> = batches
        .iter()
        .map(|(t, p, r)| {
            assert_eq!(t, "orders");
            let values = r.iter().map(|r| r.value.as_deref().unwrap().to_vec());
            (*p, values.collect())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (0, vec![b"v3".to_vec()]),
            (3, vec![b"v1".to_vec(), b"v2".to_vec()])
        ]
    );
    h.produce_response(b1, &req, &[("orders", 3, 0, 70), ("orders", 0, 0, 40)]);
    let d = delivered_to(&h);
    assert_eq!(d.len(), 2);
    for (t, p, offset) in [(t1, 3, 70), (t2, 3, 71), (t3, 0, 40)] {
        let of: Vec<_> = d.iter().filter(|(_, _, r, _)| r.contains(t)).collect();
        assert_eq!(of.len(), 1, "{t:?}: one outcome");
        let (topic, partition, r, base) = of[0];
        assert_eq!((topic.as_str(), *partition), ("orders", p));
        assert_eq!(base + i64::from(t.index() - r.first_index()), offset);
    }
    assert!(h.p.is_flushed());
}

/// Topics `a` and `b` of 10 partitions each in a partition table of 16: `b` is refused
/// with the table's real limit (the storage's capacity when that is the smaller).
fn partition_table_full<St: Storage>(mut h: Harness<St>) {
    let boot = h.bootstrap("a", &[1; 10], true);
    let ta = h.send("a", Some(9), b"to-a").unwrap();
    assert_eq!(h.send("b", None, b"x"), Err(SendError::MetadataNotReady));
    h.wait_request(boot, 3);
    h.metadata(boot, &[("a", &[1; 10]), ("b", &[1; 10])]);
    let full = SendError::TableFull(TableFull {
        table: TableKind::Partitions,
        limit: 16,
    });
    assert_eq!(h.send("b", Some(0), b"x"), Err(full));
    let msg = full.to_string();
    assert!(msg.contains("partitions") && msg.contains("16"), "{msg}");
    let (b1, req) = flush_to_broker_1(&mut h);
    h.produce_response(b1, &req, &[("a", 9, 0, 3)]);
    let d = delivered_to(&h);
    assert_eq!(d.len(), 1);
    assert!(d[0].2.contains(ta));
    assert_eq!((d[0].0.as_str(), d[0].1, d[0].3), ("a", 9, 3));
    assert!(h.p.is_flushed());
}

#[test]
fn partition_table_full_names_the_tables_real_limit() {
    partition_table_full(Harness::<HeapStorage>::with_limits(
        &[("linger.ms", "10000")],
        Limits {
            partitions: 16,
            ..Limits::UNBOUNDED
        },
    ));
    // FixedStorage's 16 partitions, though the limits say more.
    partition_table_full(
        Harness::<FixedStorage<4, 16, 4, 4, 32, 4096, 4096>>::with_limits(
            &[("linger.ms", "10000")],
            Limits::UNBOUNDED,
        ),
    );
}

/// The next request on any of `conns`, stepping the clock (at most `n` wake-ups).
fn next_request_on<St: Storage>(h: &mut Harness<St>, conns: &[u16], n: usize) -> (u16, Req) {
    for _ in 0..n {
        for &c in conns {
            if let Some(r) = h.request(c) {
                return (c, r);
            }
        }
        h.step();
    }
    panic!("no request on {conns:?}");
}

/// `metadata.max.idle.ms`: with a topic table of one entry, a second topic is refused while
/// the first was used recently; once the first has been idle (and has nothing queued or in
/// flight) for the idle time, it is dropped, its entry goes to the new topic, its old
/// handle names nothing, and the producer bumps its epoch (the dropped partition had
/// sequences), so that a partition at a reused entry starts at sequence 0 under the new
/// epoch, which a broker holding the old sequences accepts.
#[test]
fn idle_topic_frees_its_slot_and_the_epoch_is_bumped() {
    let mut h = Harness::<HeapStorage>::with_limits(
        &[("linger.ms", "0"), ("metadata.max.idle.ms", "5000")],
        Limits {
            topics: 1,
            ..Limits::UNBOUNDED
        },
    );
    let boot = h.bootstrap("a", &[1], true);
    let a_id = h.p.topic_id("a").unwrap();
    let ta = h.send("a", Some(0), b"a-1").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(
        (batches[0].2[0].sequence, batches[0].2[0].producer_epoch),
        (0, 0)
    );
    h.produce_response(b1, &req, &[("a", 0, 0, 0)]);
    assert!(delivered(&h)[0].1.contains(ta));

    // "a" was used just now: no room for "b".
    let full = SendError::TableFull(TableFull {
        table: TableKind::Topics,
        limit: 1,
    });
    assert_eq!(h.send("b", Some(0), b"b-1"), Err(full));
    h.advance(4_000);
    assert_eq!(h.send("b", Some(0), b"b-1"), Err(full), "idle 4 s < 5 s");
    h.advance(1_500);

    // Idle for 5.5 s with nothing pending: "a" is dropped and "b" takes its entry.
    assert_eq!(
        h.send("b", Some(0), b"b-1"),
        Err(SendError::MetadataNotReady)
    );
    assert_eq!(h.p.metrics().topics_evicted, 1);
    assert_eq!(h.p.topic_id("a"), None);
    assert_eq!(h.p.topic_name(a_id), None, "the old handle is stale");
    let b_id = h.p.topic_id("b").unwrap();
    assert_eq!(b_id.index(), a_id.index(), "the entry is reused");
    assert_ne!(b_id, a_id);

    // The Metadata request asks for "b" only; the epoch is bumped (KIP-360).
    let mut saw_metadata = false;
    let mut saw_bump = false;
    while !(saw_metadata && saw_bump) {
        let (c, req) = next_request_on(&mut h, &[boot, b1], 10);
        match req.api {
            kp::ApiKey::Metadata => {
                let m: kp::MetadataRequest = req.decode();
                let names: Vec<_> = m
                    .topics
                    .unwrap()
                    .iter()
                    .map(|t| t.name.as_ref().unwrap().0.to_string())
                    .collect();
                assert_eq!(names, ["b"]);
                let mut resp = kp::MetadataResponse::default();
                for id in [1, 2] {
                    let mut br = kp::metadata_response::MetadataResponseBroker::default();
                    br.node_id = kp::BrokerId(id);
                    br.host = s(&format!("broker-{id}"));
                    br.port = 9092;
                    resp.brokers.push(br);
                }
                let mut t = kp::metadata_response::MetadataResponseTopic::default();
                t.name = Some(kp::TopicName(s("b")));
                let mut part = kp::metadata_response::MetadataResponsePartition::default();
                part.leader_id = kp::BrokerId(1);
                t.partitions.push(part);
                resp.topics.push(t);
                h.respond(c, &req, &resp);
                saw_metadata = true;
            }
            kp::ApiKey::InitProducerId => {
                let r: kp::InitProducerIdRequest = req.decode();
                assert_eq!((r.producer_id.0, r.producer_epoch), (4000, 0));
                let mut resp = kp::InitProducerIdResponse::default();
                resp.producer_id = kp::ProducerId(4000);
                resp.producer_epoch = 1;
                h.respond(c, &req, &resp);
                saw_bump = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 1)));
    let tb = h.send("b", Some(0), b"b-1").unwrap();
    let (_, req) = next_request_on(&mut h, &[b1], 10);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].0, "b");
    assert_eq!(
        (batches[0].2[0].sequence, batches[0].2[0].producer_epoch),
        (0, 1)
    );
    h.produce_response(b1, &req, &[("b", 0, 0, 0)]);
    assert!(delivered(&h).iter().any(|(_, r, _)| r.contains(tb)));
    assert!(failed(&h).is_empty());
    assert!(h.p.is_flushed());
}

/// A Metadata response with brokers `1..=brokers` (`broker-N`) and `topics` of
/// `partitions` partitions each, partition `p` of topic `t` led by broker
/// `(t * partitions + p) % brokers + 1`: leaders spread over every broker.
fn spread_metadata(
    req: &Req,
    brokers: i32,
    names: &[String],
    partitions: i32,
) -> kp::MetadataResponse {
    let m: kp::MetadataRequest = req.decode();
    let mut resp = kp::MetadataResponse::default();
    for id in 1..=brokers {
        let mut b = kp::metadata_response::MetadataResponseBroker::default();
        b.node_id = kp::BrokerId(id);
        b.host = s(&format!("broker-{id}"));
        b.port = 9092;
        resp.brokers.push(b);
    }
    for t in m.topics.unwrap_or_default() {
        let name = t.name.unwrap().0.to_string();
        let ti = names.iter().position(|n| *n == name).unwrap() as i32;
        let mut tr = kp::metadata_response::MetadataResponseTopic::default();
        tr.name = Some(kp::TopicName(s(&name)));
        for p in 0..partitions {
            let mut part = kp::metadata_response::MetadataResponsePartition::default();
            part.partition_index = p;
            part.leader_id = kp::BrokerId((ti * partitions + p) % brokers + 1);
            part.leader_epoch = 1;
            tr.partitions.push(part);
        }
        resp.topics.push(tr);
    }
    resp
}

/// A cluster of 40 brokers and 2,000 partitions over 200 topics, leaders spread over all
/// brokers: one keyed record per partition, then a flush. The producer opens a connection
/// to every broker and sends each one request with exactly the 50 batches it leads; every
/// ticket is delivered once, at its offset.
#[test]
fn forty_brokers_two_thousand_partitions_one_request_per_broker() {
    const BROKERS: i32 = 40;
    const TOPICS: usize = 200;
    const PARTITIONS: i32 = 10;
    // 256-byte batches: the 512 KiB pool holds one for each of the 2,000 partitions.
    let mut h = Harness::new(&[("linger.ms", "60000"), ("batch.size", "256")]);
    let names: Vec<String> = (0..TOPICS).map(|t| format!("topic-{t:03}")).collect();
    let boot = h.conn_to("boot");
    h.connect_pending();
    h.api_versions(boot, 11);
    let req = h.expect(boot, kp::ApiKey::Metadata);
    let resp = spread_metadata(&req, BROKERS, &names, PARTITIONS);
    h.respond(boot, &req, &resp);
    h.init_producer_id(boot, 4000, 0);

    // Every topic is registered, then its metadata arrives (several requests may be
    // needed while more topics register).
    for name in &names {
        assert_eq!(h.send(name, None, b"x"), Err(SendError::MetadataNotReady));
    }
    for _ in 0..20 {
        if names.iter().all(|n| {
            h.p.topic_id(n)
                .is_some_and(|id| h.p.metadata().partition_count(id).is_some())
        }) {
            break;
        }
        h.wait_request(boot, 3);
        let req = h.expect(boot, kp::ApiKey::Metadata);
        let resp = spread_metadata(&req, BROKERS, &names, PARTITIONS);
        h.respond(boot, &req, &resp);
    }
    assert_eq!(h.p.metadata().brokers().len(), BROKERS as usize);

    let n = std::num::NonZeroU32::new(PARTITIONS as u32).unwrap();
    let mut key_of: Vec<Option<Vec<u8>>> = vec![None; PARTITIONS as usize];
    let mut i = 0;
    while key_of.iter().any(Option::is_none) {
        let key = format!("key-{i}").into_bytes();
        let p = kafka_edge_core::partition_for_key(&key, n) as usize;
        key_of[p].get_or_insert(key);
        i += 1;
    }
    let mut sent = HashMap::new();
    for (ti, name) in names.iter().enumerate() {
        for (p, key) in key_of.iter().enumerate() {
            let value = format!("{name}/{p}");
            let t = h
                .send_record(&record(name, None, key.as_deref(), value.as_bytes()))
                .unwrap();
            sent.insert(
                (name.clone(), p as i32),
                (t, (ti as i32 * PARTITIONS + p as i32) % BROKERS + 1),
            );
        }
    }
    assert_eq!(h.p.pending_batches(), TOPICS * PARTITIONS as usize);

    h.p.flush(h.now);
    h.pump();
    let opened = h.connect_pending();
    assert_eq!(
        opened.len(),
        BROKERS as usize,
        "a connection to every broker"
    );
    let mut produced = 0;
    for id in 1..=BROKERS {
        let c = h.conn_to(&format!("broker-{id}"));
        h.api_versions(c, 11);
        h.wait_request(c, 3);
        let req = h.expect(c, kp::ApiKey::Produce);
        let (_, batches) = produce_batches(&req);
        assert_eq!(
            batches.len(),
            50,
            "broker {id}: one request with its 50 batches"
        );
        let mut parts = Vec::new();
        for (topic, p, records) in &batches {
            let (_, leader) = sent[&(topic.clone(), *p)];
            assert_eq!(leader, id, "{topic}-{p} goes to its leader");
            assert_eq!(records.len(), 1);
            assert_eq!(
                records[0].value.as_deref(),
                Some(format!("{topic}/{p}").as_bytes())
            );
            parts.push((topic.clone(), *p));
        }
        assert!(h.request(c).is_none(), "broker {id}: no second request");
        let resp: Vec<(&str, i32, i16, i64)> = parts
            .iter()
            .map(|(t, p)| (t.as_str(), *p, 0, i64::from(*p) * 7))
            .collect();
        h.produce_response(c, &req, &resp);
        produced += batches.len();
    }
    assert_eq!(produced, TOPICS * PARTITIONS as usize);
    let d = delivered_to(&h);
    assert_eq!(d.len(), sent.len());
    let mut seen = std::collections::HashSet::new();
    for (topic, p, range, offset) in &d {
        let (t, _) = sent[&(topic.clone(), *p)];
        assert!(range.contains(t), "{topic}-{p}: its own record");
        assert_eq!(*offset, i64::from(*p) * 7);
        assert!(
            seen.insert((topic.clone(), *p)),
            "{topic}-{p} delivered once"
        );
    }
    assert!(failed(&h).is_empty());
    assert!(h.p.is_flushed());
}

/// Java's `batch.size=0`: "a batch size of zero will disable batching entirely": each
/// batch holds one record and is sent without waiting for `linger.ms`.
#[test]
fn batch_size_zero_sends_one_record_per_batch_without_lingering() {
    let mut h = Harness::new(&[("batch.size", "0"), ("linger.ms", "10000")]);
    assert_eq!(h.p.config().batch_size, 0);
    h.bootstrap("t", &[1], true);
    let start = h.now;
    let tickets: Vec<Ticket> = (0..3)
        .map(|i| h.send("t", Some(0), format!("v{i}").as_bytes()).unwrap())
        .collect();
    assert_eq!(h.p.pending_batches(), 3, "one batch per record");
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    for (i, t) in tickets.iter().enumerate() {
        // Idempotent: one batch of the partition in flight at a time.
        h.wait_request(b1, 3);
        let req = h.expect(b1, kp::ApiKey::Produce);
        let (_, batches) = produce_batches(&req);
        assert_eq!(batches.len(), 1);
        let (_, partition, records) = &batches[0];
        assert_eq!(*partition, 0);
        assert_eq!(records.len(), 1, "batch {i} holds one record");
        assert_eq!(records[0].sequence, i as i32);
        let want = format!("v{i}");
        assert_eq!(records[0].value.as_deref(), Some(want.as_bytes()));
        h.produce_response(b1, &req, &[("t", 0, 0, 10 + i as i64)]);
        assert!(
            delivered(&h)
                .iter()
                .any(|(_, r, o)| r.contains(*t) && *o == 10 + i as i64)
        );
    }
    assert!(h.now < start + 10_000, "sent before linger.ms elapsed");
    assert!(h.p.is_flushed());
}

/// Java's `configureDeliveryTimeout`: a default `delivery.timeout.ms` below
/// `linger.ms + request.timeout.ms` is raised to that sum, and batches expire by it.
#[test]
fn default_delivery_timeout_raised_to_cover_linger_and_request_timeout() {
    let h = Harness::new(&[("linger.ms", "100000")]);
    assert!(h.p.config().delivery_timeout_raised());
    assert_eq!(h.p.config().delivery_timeout_ms, 130_000);
    let explicit = Producer::<Vec<u8>, HeapStorage>::new(
        config(&[("linger.ms", "100000"), ("delivery.timeout.ms", "120000")]),
        vec![0u8; POOL_BYTES],
        Limits::UNBOUNDED,
        42,
    );
    assert!(matches!(
        explicit,
        Err(kafka_edge_core::ConfigError::Conflict(_))
    ));
}

/// A Produce request to broker 1 answered with `bad` (the bytes of one frame, size prefix
/// included, built from the request): the connection closes, the batch is retried on a new
/// connection with the same sequence, and delivered once.
fn bad_produce_answer_is_retried(bad: impl Fn(&Req) -> Vec<u8>) {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.bootstrap("t", &[1], true);
    let t = h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    let sequence = batches[0].2[0].sequence;
    h.feed(b1, &bad(&req));
    assert!(
        h.net.events.contains(&Ev::Disconnect(b1)),
        "{:?}",
        h.net.events
    );
    assert!(failed(&h).is_empty(), "retried, not failed");
    // A new connection to broker 1 after the reconnect backoff carries the same batch.
    for _ in 0..20 {
        if h.net.conns.values().any(|c| c.host == "broker-1") {
            break;
        }
        h.advance(100);
    }
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    for _ in 0..20 {
        if h.net.conns.get(&b1).is_some_and(|c| c.out.len() >= 4) {
            break;
        }
        h.advance(100);
    }
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].sequence, sequence, "the same sequence");
    h.produce_response(b1, &req, &[("t", 0, 0, 41)]);
    let d = delivered(&h);
    assert_eq!(d.len(), 1, "delivered once");
    assert!(d[0].1.contains(t));
    assert_eq!(d[0].2, 41);
}

#[test]
fn a_response_with_an_unknown_correlation_id_closes_the_connection_and_the_batch_is_retried() {
    bad_produce_answer_is_retried(|req| {
        let mut frame = (req.correlation_id + 1000).to_be_bytes().to_vec();
        frame.extend_from_slice(&[0; 16]);
        let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&frame);
        bytes
    });
}

#[test]
fn garbage_in_place_of_a_produce_response_closes_the_connection_and_the_batch_is_retried() {
    bad_produce_answer_is_retried(|req| {
        let mut frame = req.correlation_id.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xff; 11]);
        let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&frame);
        bytes
    });
}

// ---- SASL (feature `sasl`) -------------------------------------------------------------------

#[path = "producer_scripted/partitioner.rs"]
mod partitioner;

// ---- MESSAGE_TOO_LARGE: batches split, a record too large alone -------------------------------

#[path = "producer_scripted/too_large.rs"]
mod too_large;

#[cfg(feature = "sasl")]
#[path = "producer_scripted/sasl.rs"]
mod sasl;

#[cfg(feature = "metrics")]
#[path = "producer_scripted/metrics.rs"]
mod metrics;

#[path = "producer_scripted/connections.rs"]
mod connections;

// ---- several batches of a partition in flight (idempotence) -----------------------------------

#[path = "producer_scripted/in_flight.rs"]
mod in_flight;

#[cfg(feature = "transactions")]
#[path = "producer_scripted/transactions.rs"]
mod transactions;
