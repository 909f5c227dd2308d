//! Transactions against the scripted broker: the coordinator is found and asked for the
//! producer id, a partition is added to the transaction before its first Produce, commit
//! and abort end with EndTxn, coordinator errors are retried, and an abortable error
//! refuses commit but allows abort. Under transaction version 2 (a cluster that finalized
//! `transaction.version` 2) Produce v12 adds the partitions, TxnOffsetCommit v5 the group,
//! and every EndTxn (v5) returns the bumped epoch the producer continues with.

use super::*;
use kafka_edge_core::{ConsumedOffset, TransactionError, TransactionState};

const TXN_ID: &str = "txn-1";

impl Harness {
    /// ApiVersions with the transactional APIs too.
    fn api_versions_txn(&mut self, conn: u16) {
        self.api_versions_tv(conn, false);
    }

    /// ApiVersions with the transactional APIs, Produce up to v12 and, when `tv2`, the
    /// finalized feature `transaction.version` at level 2 (as a Kafka 4.4 node answers).
    fn api_versions_tv(&mut self, conn: u16, tv2: bool) {
        let req = self.expect(conn, kp::ApiKey::ApiVersions);
        assert!(req.version >= 3, "finalized features need ApiVersions v3+");
        let mut resp = kp::ApiVersionsResponse::default();
        if tv2 {
            resp.finalized_features_epoch = 42;
            let mut f = kp::api_versions_response::FinalizedFeatureKey::default();
            f.name = s("transaction.version");
            f.max_version_level = 2;
            f.min_version_level = 2;
            resp.finalized_features.push(f);
        }
        for (k, min, max) in [
            (0, 3, 12),
            (3, 0, 12),
            (10, 0, 6),
            (18, 0, 3),
            (22, 0, 5),
            (24, 0, 5),
            (25, 0, 4),
            (26, 0, 5),
            (28, 0, 5),
        ] {
            let mut v = kp::api_versions_response::ApiVersion::default();
            v.api_key = k;
            v.min_version = min;
            v.max_version = max;
            resp.api_keys.push(v);
        }
        self.respond(conn, &req, &resp);
    }

    /// Answers the FindCoordinator on `conn` with broker `node`.
    fn find_coordinator(&mut self, conn: u16, node: i32, error: i16) {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::FindCoordinator);
        let r: kp::FindCoordinatorRequest = req.decode();
        assert_eq!(r.key_type, 1, "transaction key type");
        assert_eq!(req.version, 6);
        assert_eq!(r.coordinator_keys[0].as_str(), TXN_ID);
        let mut c = kp::find_coordinator_response::Coordinator::default();
        c.key = s(TXN_ID);
        c.node_id = kp::BrokerId(node);
        c.host = s(&format!("broker-{node}"));
        c.port = 9092;
        c.error_code = error;
        let mut resp = kp::FindCoordinatorResponse::default();
        resp.coordinators.push(c);
        self.respond(conn, &req, &resp);
    }

    /// Connects the pending connection to `host`, whose ApiVersions answer finalizes
    /// transaction version 2 or not (`tv2`); the connection.
    fn connect_tv(&mut self, host: &str, tv2: bool) -> u16 {
        let conn = self.conn_to(host);
        self.connect_pending();
        self.api_versions_tv(conn, tv2);
        conn
    }

    /// The FindCoordinator for group `grp` on `conn`, answered with broker 1.
    fn group_coordinator_is_broker_1(&mut self, conn: u16) {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::FindCoordinator);
        let r: kp::FindCoordinatorRequest = req.decode();
        assert_eq!((r.key_type, r.coordinator_keys[0].as_str()), (0, "grp"));
        let mut co = kp::find_coordinator_response::Coordinator::default();
        co.key = s("grp");
        co.node_id = kp::BrokerId(1);
        co.host = s("broker-1");
        co.port = 9092;
        let mut resp = kp::FindCoordinatorResponse::default();
        resp.coordinators.push(co);
        self.respond(conn, &req, &resp);
    }

    fn txn_init_producer_id(&mut self, conn: u16, error: i16, id: i64, epoch: i16) {
        self.answer_init_producer_id(conn, None, error, (id, epoch));
    }

    /// The transactional InitProducerId on `conn` that bumps the epoch of `from` (producer
    /// id, epoch), answered with `to`.
    fn epoch_bump(&mut self, conn: u16, from: (i64, i16), to: (i64, i16)) {
        self.answer_init_producer_id(conn, Some(from), 0, to);
    }

    /// The next InitProducerId on `conn` (for the transactional id, with the producer id and
    /// epoch `from` when given), answered with `error` and producer id and epoch `to`.
    fn answer_init_producer_id(
        &mut self,
        conn: u16,
        from: Option<(i64, i16)>,
        error: i16,
        to: (i64, i16),
    ) {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::InitProducerId);
        let r: kp::InitProducerIdRequest = req.decode();
        assert_eq!(
            r.transactional_id.as_ref().map(|t| t.0.as_str()),
            Some(TXN_ID)
        );
        assert_eq!(r.transaction_timeout_ms, 60_000);
        if let Some(from) = from {
            assert_eq!((r.producer_id.0, r.producer_epoch), from);
        }
        let mut resp = kp::InitProducerIdResponse::default();
        resp.error_code = error;
        resp.producer_id = kp::ProducerId(to.0);
        resp.producer_epoch = to.1;
        self.respond(conn, &req, &resp);
    }

    /// Bootstraps, then `init_transactions` with broker 2 as coordinator, through one
    /// NOT_COORDINATOR; returns (boot, coordinator connection).
    fn init_transactions(&mut self) -> (u16, u16) {
        self.init_transactions_tv(false)
    }

    /// [`init_transactions`](Self::init_transactions) against brokers that finalized
    /// transaction version 2 when `tv2`.
    fn init_transactions_tv(&mut self, tv2: bool) -> (u16, u16) {
        let boot = self.conn_to("boot");
        self.connect_pending();
        self.api_versions_tv(boot, tv2);
        self.metadata(boot, &[]);
        assert!(self.request(boot).is_none(), "no producer id before init");
        assert_eq!(
            self.send("orders", Some(0), b"early"),
            Err(SendError::Transaction(TransactionError::InvalidState(
                TransactionState::Uninitialized
            )))
        );
        self.p.init_transactions(self.now).unwrap();
        self.pump();
        assert_eq!(self.p.transaction_state(), TransactionState::Initializing);
        self.find_coordinator(boot, 2, 0);
        let b2 = self.conn_to("broker-2");
        self.connect_pending();
        self.api_versions_tv(b2, tv2);
        // The coordinator moved: look it up again, then ask again.
        self.txn_init_producer_id(b2, 16, -1, -1);
        assert_eq!(self.p.poll_transaction(), None);
        self.find_coordinator(boot, 2, 0);
        self.txn_init_producer_id(b2, 0, 7, 3);
        assert_eq!(self.p.poll_transaction(), Some(Ok(())));
        assert_eq!(self.p.transaction_state(), TransactionState::Ready);
        assert_eq!(self.p.producer_id_and_epoch(), Some((7, 3)));
        assert_eq!(self.p.transaction_version(), Some(if tv2 { 2 } else { 1 }));
        (boot, b2)
    }

    /// The EndTxn v5 (transaction version 2) on `conn` from `(id, epoch)`, answered with
    /// `error` and the producer id and epoch `next`.
    fn end_txn_v5(
        &mut self,
        conn: u16,
        commit: bool,
        from: (i64, i16),
        error: i16,
        next: (i64, i16),
    ) {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::EndTxn);
        assert_eq!(req.version, 5, "transaction version 2");
        let r: kp::EndTxnRequest = req.decode();
        assert_eq!(r.committed, commit);
        assert_eq!((r.producer_id.0, r.producer_epoch), from);
        let mut resp = kp::EndTxnResponse::default();
        resp.error_code = error;
        resp.producer_id = kp::ProducerId(next.0);
        resp.producer_epoch = next.1;
        self.respond(conn, &req, &resp);
    }

    /// The next Produce on `conn` (v12, transactional): its batches' partition, producer id,
    /// epoch and base sequence.
    fn produce_v12(&mut self, conn: u16) -> (Req, Vec<(i32, i64, i16, i32)>) {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::Produce);
        assert_eq!(req.version, 12, "Produce v12 adds the partition (KIP-890)");
        let (r, batches) = produce_batches(&req);
        assert_eq!(
            r.transactional_id.as_ref().map(|t| t.0.as_str()),
            Some(TXN_ID)
        );
        let seen = batches
            .iter()
            .map(|(_, p, records)| {
                let first = &records[0];
                assert!(first.transactional);
                (*p, first.producer_id, first.producer_epoch, first.sequence)
            })
            .collect();
        (req, seen)
    }

    /// The AddPartitionsToTxn on `conn`: answers every partition with `error`, returns the
    /// partitions asked for.
    fn add_partitions(&mut self, conn: u16, error: i16) -> Vec<(String, i32)> {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::AddPartitionsToTxn);
        assert_eq!(req.version, 3);
        let r: kp::AddPartitionsToTxnRequest = req.decode();
        assert_eq!(r.v3_and_below_transactional_id.0.as_str(), TXN_ID);
        assert_eq!(
            (r.v3_and_below_producer_id.0, r.v3_and_below_producer_epoch),
            (7, 3)
        );
        let mut asked = Vec::new();
        let mut resp = kp::AddPartitionsToTxnResponse::default();
        for t in &r.v3_and_below_topics {
            let mut tr =
                kp::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
            tr.name = t.name.clone();
            for &p in &t.partitions {
                asked.push((t.name.0.to_string(), p));
                let mut pr =
                    kp::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default(
                    );
                pr.partition_index = p;
                pr.partition_error_code = error;
                tr.results_by_partition.push(pr);
            }
            resp.results_by_topic_v3_and_below.push(tr);
        }
        self.respond(conn, &req, &resp);
        asked
    }

    fn end_txn(&mut self, conn: u16, commit: bool, error: i16) {
        self.wait_request(conn, 5);
        let req = self.expect(conn, kp::ApiKey::EndTxn);
        assert_eq!(req.version, 4, "transaction version 1");
        let r: kp::EndTxnRequest = req.decode();
        assert_eq!(r.committed, commit);
        assert_eq!((r.producer_id.0, r.producer_epoch), (7, 3));
        let mut resp = kp::EndTxnResponse::default();
        resp.error_code = error;
        self.respond(conn, &req, &resp);
    }

    /// Sends to `orders` (fetching its metadata first if needed).
    fn send_in_txn(&mut self, boot: u16, partition: i32, value: &[u8]) -> Ticket {
        match self.send("orders", Some(partition), value) {
            Ok(t) => t,
            Err(SendError::MetadataNotReady) => {
                self.metadata(boot, &[("orders", &[1, 1])]);
                self.send("orders", Some(partition), value).unwrap()
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

fn txn_harness() -> Harness {
    Harness::new(&[("linger.ms", "0"), ("transactional.id", TXN_ID)])
}

#[test]
fn partition_is_added_before_its_first_produce_then_commit_ends_with_end_txn() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    assert_eq!(h.p.transaction_state(), TransactionState::InTransaction);
    let t = h.send_in_txn(boot, 0, b"in-txn");
    // Nothing goes to the leader before the partition is in the transaction.
    assert!(
        !h.net.conns.values().any(|c| c.host == "broker-1"),
        "no produce connection yet"
    );
    assert_eq!(h.add_partitions(b2, 0), [("orders".to_string(), 0)]);
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions_txn(b1);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert!(req.version <= 11);
    let (r, batches) = produce_batches(&req);
    assert_eq!(
        r.transactional_id.as_ref().map(|t| t.0.as_str()),
        Some(TXN_ID)
    );
    assert_eq!(batches.len(), 1);
    assert!(batches[0].2[0].transactional, "the batch is transactional");
    assert_eq!(batches[0].2[0].producer_id, 7);
    h.produce_response(b1, &req, &[("orders", 0, 0, 40)]);
    assert!(
        delivered(&h)
            .iter()
            .any(|(_, r, o)| r.contains(t) && *o == 40)
    );
    // A second record to the same partition needs no new AddPartitionsToTxn.
    h.send_in_txn(boot, 0, b"more");
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert!(h.request(b2).is_none());
    h.produce_response(b1, &req, &[("orders", 0, 0, 41)]);
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    assert_eq!(
        h.p.transaction_state(),
        TransactionState::CommittingTransaction
    );
    // CONCURRENT_TRANSACTIONS is retried after a backoff.
    h.end_txn(b2, true, 51);
    assert_eq!(h.p.poll_transaction(), None);
    h.end_txn(b2, true, 0);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.transaction_state(), TransactionState::Ready);
    // The next transaction adds its partitions again.
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 1, b"next");
    assert_eq!(h.add_partitions(b2, 0), [("orders".to_string(), 1)]);
}

#[test]
fn abortable_error_refuses_commit_allows_abort_and_the_producer_goes_on() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    let t = h.send_in_txn(boot, 0, b"bad");
    h.add_partitions(b2, 0);
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions_txn(b1);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    // INVALID_RECORD: the batch fails, the transaction cannot commit.
    h.produce_response(b1, &req, &[("orders", 0, 87, -1)]);
    assert!(failed(&h).iter().any(|(r, _)| r.contains(t)));
    assert_eq!(h.p.transaction_state(), TransactionState::AbortableError);
    let err = h.p.commit_transaction(h.now).unwrap_err();
    assert!(matches!(err, TransactionError::Abortable(_)), "{err:?}");
    assert!(matches!(
        h.send("orders", Some(0), b"refused"),
        Err(SendError::Transaction(TransactionError::Abortable(_)))
    ));
    h.p.abort_transaction(h.now).unwrap();
    h.pump();
    h.end_txn(b2, false, 0);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.transaction_state(), TransactionState::Ready);
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"good");
    h.add_partitions(b2, 0);
}

#[test]
fn abort_fails_batches_not_sent_yet() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    let t = h.send_in_txn(boot, 0, b"never-sent");
    // The AddPartitionsToTxn is in flight; abort before it is answered.
    h.wait_request(b2, 5);
    let req = h.expect(b2, kp::ApiKey::AddPartitionsToTxn);
    h.p.abort_transaction(h.now).unwrap();
    h.pump();
    assert!(
        failed(&h)
            .iter()
            .any(|(r, e)| r.contains(t) && *e == ProduceError::TransactionAborted),
        "{:?}",
        h.net.events
    );
    // The partition was added after all: EndTxn(abort) follows its answer.
    let mut resp = kp::AddPartitionsToTxnResponse::default();
    let mut tr = kp::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
    tr.name = kp::TopicName(s("orders"));
    let mut pr = kp::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
    pr.partition_index = 0;
    tr.results_by_partition.push(pr);
    resp.results_by_topic_v3_and_below.push(tr);
    h.respond(b2, &req, &resp);
    h.end_txn(b2, false, 0);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert!(!h.net.conns.values().any(|c| c.host == "broker-1"));
}

#[test]
fn fenced_end_txn_is_fatal() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"x");
    h.add_partitions(b2, 0);
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions_txn(b1);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    h.produce_response(b1, &req, &[("orders", 0, 0, 1)]);
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    h.end_txn(b2, true, 90); // PRODUCER_FENCED
    let fenced = TransactionError::Fenced(kafka_edge_core::protocol::ErrorCode::PRODUCER_FENCED);
    assert_eq!(h.p.poll_transaction(), Some(Err(fenced)));
    assert_eq!(h.p.transaction_state(), TransactionState::FatalError);
    assert_eq!(h.p.begin_transaction(), Err(fenced));
    assert_eq!(
        h.send("orders", Some(0), b"y"),
        Err(SendError::Transaction(fenced))
    );
}

#[test]
fn transactional_id_requires_idempotence() {
    let mut c = ProducerConfig::new("boot:9092").unwrap();
    c.set("transactional.id", "t").unwrap();
    c.set("enable.idempotence", "false").unwrap();
    assert!(c.validate().is_err());
    let mut c = ProducerConfig::new("boot:9092").unwrap();
    c.set("transactional.id", "t").unwrap();
    c.set("acks", "1").unwrap();
    assert!(c.validate().is_err());
}

#[test]
fn send_offsets_adds_the_group_then_commits_its_offsets_to_the_group_coordinator() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    let offsets = [
        ConsumedOffset {
            topic: "in",
            partition: 0,
            offset: 42,
        },
        ConsumedOffset {
            topic: "in",
            partition: 1,
            offset: 7,
        },
    ];
    h.p.send_offsets_to_transaction(h.now, &offsets, "grp")
        .unwrap();
    h.pump();
    // AddOffsetsToTxn to the transaction coordinator first.
    h.wait_request(b2, 5);
    let req = h.expect(b2, kp::ApiKey::AddOffsetsToTxn);
    let r: kp::AddOffsetsToTxnRequest = req.decode();
    assert_eq!(r.group_id.0.as_str(), "grp");
    h.respond(b2, &req, &kp::AddOffsetsToTxnResponse::default());
    // Then the group's coordinator (key type 0) and TxnOffsetCommit to it.
    h.group_coordinator_is_broker_1(boot);
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions_txn(b1);
    h.wait_request(b1, 5);
    let req = h.expect(b1, kp::ApiKey::TxnOffsetCommit);
    assert_eq!(req.version, 4);
    let r: kp::TxnOffsetCommitRequest = req.decode();
    assert_eq!(r.group_id.0.as_str(), "grp");
    assert_eq!(r.generation_id, -1);
    assert_eq!(r.topics.len(), 1, "one topic entry for both partitions");
    let parts: Vec<(i32, i64)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(parts, [(0, 42), (1, 7)]);
    assert_eq!(h.p.poll_transaction(), None);
    let mut resp = kp::TxnOffsetCommitResponse::default();
    let mut t = kp::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
    t.name = kp::TopicName(s("in"));
    for p in [0, 1] {
        let mut pr = kp::txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
        pr.partition_index = p;
        t.partitions.push(pr);
    }
    resp.topics.push(t);
    h.respond(b1, &req, &resp);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    // Only offsets in the transaction: the commit still ends it with EndTxn.
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    h.end_txn(b2, true, 0);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
}

#[test]
fn invalid_producer_epoch_on_produce_is_abortable_and_the_abort_bumps_the_epoch() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    let t = h.send_in_txn(boot, 0, b"x");
    h.add_partitions(b2, 0);
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions_txn(b1);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    // KIP-588: INVALID_PRODUCER_EPOCH on Produce makes the transaction abortable.
    h.produce_response(b1, &req, &[("orders", 0, 47, -1)]);
    assert_eq!(h.p.transaction_state(), TransactionState::AbortableError);
    assert!(
        failed(&h)
            .iter()
            .any(|(r, e)| r.contains(t) && *e == ProduceError::TransactionAborted),
        "{:?}",
        h.net.events
    );
    assert!(h.p.commit_transaction(h.now).is_err());
    // The abort bumps the epoch with InitProducerId (which aborts the transaction on the
    // coordinator) instead of EndTxn.
    h.p.abort_transaction(h.now).unwrap();
    h.pump();
    h.epoch_bump(b2, (7, 3), (7, 4));
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.transaction_state(), TransactionState::Ready);
    assert_eq!(h.p.producer_id_and_epoch(), Some((7, 4)));
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"y");
    h.wait_request(b2, 5);
    let req = h.expect(b2, kp::ApiKey::AddPartitionsToTxn);
    let r: kp::AddPartitionsToTxnRequest = req.decode();
    assert_eq!(r.v3_and_below_producer_epoch, 4, "the new epoch");
}

#[test]
fn tv2_produce_adds_the_partition_and_every_end_txn_bumps_the_epoch() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions_tv(true);
    h.p.begin_transaction().unwrap();
    let t = h.send_in_txn(boot, 0, b"a");
    // No AddPartitionsToTxn: the Produce goes straight to the leader.
    let b1 = h.connect_tv("broker-1", true);
    let (req, seen) = h.produce_v12(b1);
    assert_eq!(seen, [(0, 7, 3, 0)]);
    assert!(h.request(b2).is_none(), "nothing to the coordinator");
    h.produce_response(b1, &req, &[("orders", 0, 0, 10)]);
    assert!(
        delivered(&h)
            .iter()
            .any(|(_, r, o)| r.contains(t) && *o == 10)
    );
    h.send_in_txn(boot, 0, b"b");
    let (req, seen) = h.produce_v12(b1);
    assert_eq!(seen, [(0, 7, 3, 1)]);
    h.produce_response(b1, &req, &[("orders", 0, 0, 11)]);
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    // CONCURRENT_TRANSACTIONS is retried; the answer carries no producer id then.
    h.end_txn_v5(b2, true, (7, 3), 51, (-1, -1));
    assert_eq!(h.p.poll_transaction(), None);
    h.end_txn_v5(b2, true, (7, 3), 0, (7, 4));
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.transaction_state(), TransactionState::Ready);
    assert_eq!(
        h.p.producer_id_and_epoch(),
        Some((7, 4)),
        "the bumped epoch"
    );
    // The next transaction: the new epoch, sequences from 0 again.
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"c");
    let (req, seen) = h.produce_v12(b1);
    assert_eq!(seen, [(0, 7, 4, 0)]);
    // The brokers may hold no state for the new epoch: one batch of the partition at a
    // time until one is acknowledged (a later one could be written before a refused one).
    h.send_in_txn(boot, 0, b"c2");
    h.advance(100);
    assert!(
        h.request(b1).is_none(),
        "one batch until the new epoch is acknowledged"
    );
    h.produce_response(b1, &req, &[("orders", 0, 0, 13)]);
    let (req, seen) = h.produce_v12(b1);
    assert_eq!(seen, [(0, 7, 4, 1)]);
    h.produce_response(b1, &req, &[("orders", 0, 0, 14)]);
    h.p.abort_transaction(h.now).unwrap();
    h.pump();
    // The epoch ran out: the coordinator hands out a new producer id with epoch 0.
    h.end_txn_v5(b2, false, (7, 4), 0, (8, 0));
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.producer_id_and_epoch(), Some((8, 0)));
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 1, b"d");
    let (req, seen) = h.produce_v12(b1);
    assert_eq!(seen, [(1, 8, 0, 0)]);
    h.produce_response(b1, &req, &[("orders", 1, 0, 0)]);
    assert_eq!(h.p.metrics().add_partitions_requests, 0);
}

#[test]
fn tv2_send_offsets_commits_them_without_add_offsets() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions_tv(true);
    h.p.begin_transaction().unwrap();
    let offsets = [ConsumedOffset {
        topic: "in",
        partition: 0,
        offset: 5,
    }];
    h.p.send_offsets_to_transaction(h.now, &offsets, "grp")
        .unwrap();
    h.pump();
    // Straight to the group's coordinator: no AddOffsetsToTxn.
    h.group_coordinator_is_broker_1(boot);
    assert!(h.request(b2).is_none(), "no AddOffsetsToTxn");
    let b1 = h.connect_tv("broker-1", true);
    h.wait_request(b1, 5);
    let req = h.expect(b1, kp::ApiKey::TxnOffsetCommit);
    assert_eq!(
        req.version, 5,
        "TxnOffsetCommit v5 adds the group (KIP-890)"
    );
    let r: kp::TxnOffsetCommitRequest = req.decode();
    assert_eq!((r.producer_id.0, r.producer_epoch), (7, 3));
    let mut resp = kp::TxnOffsetCommitResponse::default();
    let mut t = kp::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
    t.name = kp::TopicName(s("in"));
    let mut pr = kp::txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
    pr.partition_index = 0;
    t.partitions.push(pr);
    resp.topics.push(t);
    h.respond(b1, &req, &resp);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    // The offsets alone began the transaction: the commit ends it with EndTxn.
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    h.end_txn_v5(b2, true, (7, 3), 0, (7, 4));
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.producer_id_and_epoch(), Some((7, 4)));
}

#[test]
fn tv2_produce_errors_of_the_implicit_add_are_abortable_and_the_abort_bumps_with_end_txn() {
    for code in [48, 120, 47] {
        // INVALID_TXN_STATE, TRANSACTION_ABORTABLE, INVALID_PRODUCER_EPOCH.
        let mut h = txn_harness();
        let (boot, b2) = h.init_transactions_tv(true);
        h.p.begin_transaction().unwrap();
        let t = h.send_in_txn(boot, 0, b"x");
        let b1 = h.connect_tv("broker-1", true);
        let (req, _) = h.produce_v12(b1);
        h.produce_response(b1, &req, &[("orders", 0, code, -1)]);
        assert!(failed(&h).iter().any(|(r, _)| r.contains(t)), "{code}");
        assert_eq!(
            h.p.transaction_state(),
            TransactionState::AbortableError,
            "{code}"
        );
        assert_eq!(h.p.fatal_error(), None, "{code}");
        assert!(h.p.commit_transaction(h.now).is_err());
        h.p.abort_transaction(h.now).unwrap();
        h.pump();
        // EndTxn(abort), never an InitProducerId: the coordinator bumps the epoch.
        h.end_txn_v5(b2, false, (7, 3), 0, (7, 4));
        assert_eq!(h.p.poll_transaction(), Some(Ok(())), "{code}");
        assert_eq!(h.p.producer_id_and_epoch(), Some((7, 4)));
        h.p.begin_transaction().unwrap();
        h.send_in_txn(boot, 0, b"y");
        let (req, seen) = h.produce_v12(b1);
        assert_eq!(seen, [(0, 7, 4, 0)], "{code}");
        h.produce_response(b1, &req, &[("orders", 0, 0, 1)]);
    }
}

#[test]
fn tv1_is_kept_when_the_cluster_did_not_finalize_transaction_version_2() {
    // The brokers list EndTxn v5, TxnOffsetCommit v5 and Produce v12, but no feature.
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions_tv(false);
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"x");
    assert_eq!(h.add_partitions(b2, 0), [("orders".to_string(), 0)]);
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions_tv(b1, false);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(
        req.version, 11,
        "transactional batches stop at v11 without TV2"
    );
    h.produce_response(b1, &req, &[("orders", 0, 0, 1)]);
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    h.end_txn(b2, true, 0);
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.producer_id_and_epoch(), Some((7, 3)), "no bump");
    assert_eq!(h.p.metrics().add_partitions_requests, 1);
}

#[test]
fn every_throttled_response_holds_its_connection_back() {
    // KIP-219 beyond Produce: an AddPartitionsToTxn (v1+) and an ApiVersions (v2+) answered
    // with a throttle time keep their connection from the next request for that long.
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions();
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"a");
    h.wait_request(b2, 5);
    let req = h.expect(b2, kp::ApiKey::AddPartitionsToTxn);
    let mut resp = kp::AddPartitionsToTxnResponse::default();
    resp.throttle_time_ms = 400;
    let mut tr = kp::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
    tr.name = kp::TopicName(s("orders"));
    let mut pr = kp::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
    pr.partition_index = 0;
    tr.results_by_partition.push(pr);
    resp.results_by_topic_v3_and_below.push(tr);
    let added = h.now;
    h.respond(b2, &req, &resp);
    // The leader's connection answers ApiVersions with a throttle time of its own.
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    let req = h.expect(b1, kp::ApiKey::ApiVersions);
    let mut resp = kp::ApiVersionsResponse::default();
    resp.throttle_time_ms = 200;
    for (k, max) in [
        (0, 11),
        (3, 12),
        (10, 6),
        (18, 3),
        (22, 5),
        (24, 3),
        (26, 4),
    ] {
        let mut v = kp::api_versions_response::ApiVersion::default();
        v.api_key = k;
        v.max_version = max;
        resp.api_keys.push(v);
    }
    let negotiated = h.now;
    h.respond(b1, &req, &resp);
    assert!(
        h.request(b1).is_none(),
        "Produce during the ApiVersions throttle"
    );
    // A second partition: its AddPartitionsToTxn waits for the coordinator's throttle.
    h.send_in_txn(boot, 1, b"b");
    assert!(
        h.request(b2).is_none(),
        "AddPartitionsToTxn during the throttle"
    );
    h.step();
    assert_eq!(
        h.now,
        negotiated + 200,
        "woken when the first throttle ends"
    );
    let req = h.expect(b1, kp::ApiKey::Produce);
    h.produce_response(b1, &req, &[("orders", 0, 0, 5)]);
    assert!(
        h.request(b2).is_none(),
        "AddPartitionsToTxn during the throttle"
    );
    while h.request(b2).is_none() {
        h.step();
        assert!(h.now <= added + 400, "not sent when the throttle ended");
    }
    assert_eq!(h.now, added + 400);
}

#[test]
fn an_upgrade_to_tv2_bumps_the_epoch_after_the_transaction_then_speaks_tv2() {
    let mut h = txn_harness();
    let (boot, b2) = h.init_transactions_tv(false);
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 0, b"a");
    h.add_partitions(b2, 0);
    // The leader's connection reports the feature finalized meanwhile (a newer epoch).
    let b1 = h.connect_tv("broker-1", true);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(req.version, 11, "this transaction stays on version 1");
    h.produce_response(b1, &req, &[("orders", 0, 0, 1)]);
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    h.end_txn(b2, true, 0);
    // Then, as Java, an InitProducerId bumps the epoch before the first TV2 transaction;
    // the commit ends with it.
    assert_eq!(h.p.poll_transaction(), None);
    assert_eq!(h.p.transaction_state(), TransactionState::Initializing);
    h.p.commit_transaction(h.now).unwrap(); // resumes (a retry after a timeout)
    h.epoch_bump(b2, (7, 3), (7, 4));
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
    assert_eq!(h.p.transaction_state(), TransactionState::Ready);
    assert_eq!(h.p.transaction_version(), Some(2));
    // Version 2 now: no AddPartitionsToTxn, Produce v12 with the bumped epoch.
    h.p.begin_transaction().unwrap();
    h.send_in_txn(boot, 1, b"b");
    let (req, seen) = h.produce_v12(b1);
    assert_eq!(seen, [(1, 7, 4, 0)]);
    h.produce_response(b1, &req, &[("orders", 1, 0, 0)]);
    assert_eq!(h.p.metrics().add_partitions_requests, 1);
    h.p.commit_transaction(h.now).unwrap();
    h.pump();
    h.end_txn_v5(b2, true, (7, 4), 0, (7, 5));
    assert_eq!(h.p.poll_transaction(), Some(Ok(())));
}
