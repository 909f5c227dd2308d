//! Idempotence with several batches of one partition in flight (as Java, up to
//! `max.in.flight.requests.per.connection`): sequences in send order, a failed first batch
//! retried alone before the others, OUT_OF_ORDER_SEQUENCE_NUMBER for the later ones retried
//! without an epoch bump, a batch failed for good closed by an epoch bump, and a reconnect
//! with every batch in flight; outcomes always in send order.

use super::*;

/// Bootstraps (topic `t`, partition 0 led by broker 1, idempotent, `linger.ms=0`), sends
/// a first record, acknowledged at offset 0 (until then a partition has one batch in
/// flight: a broker without state for the producer accepts any sequence), then `n` records
/// to partition 0 one after the other: each goes in a request of its own while the earlier
/// ones wait for their answers. Returns the connections, the `n` tickets and requests.
fn pipeline(h: &mut Harness, n: usize) -> (u16, u16, Vec<Ticket>, Vec<Req>) {
    let boot = h.bootstrap("t", &[1], true);
    let first = h.send("t", Some(0), b"first").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(stamp(&req), (0, 0, 1));
    // Sent before the first is acknowledged: it waits.
    let mut tickets = vec![h.send("t", Some(0), b"v0").unwrap()];
    assert!(
        h.request(b1).is_none(),
        "one batch until the broker has our state"
    );
    h.produce_response(b1, &req, &[("t", 0, 0, 0)]);
    assert!(delivered(h)[0].1.contains(first));
    h.net.events.clear();
    let mut reqs = vec![h.expect(b1, kp::ApiKey::Produce)];
    for i in 1..n {
        tickets.push(h.send("t", Some(0), format!("v{i}").as_bytes()).unwrap());
        reqs.push(h.expect(b1, kp::ApiKey::Produce));
    }
    (boot, b1, tickets, reqs)
}

/// The (producer epoch, base sequence, record count) of the one batch of `req`.
fn stamp(req: &Req) -> (i16, i32, usize) {
    let (_, batches) = produce_batches(req);
    assert_eq!(batches.len(), 1, "one batch per request");
    let records = &batches[0].2;
    (
        records[0].producer_epoch,
        records[0].sequence,
        records.len(),
    )
}

/// Steps the clock until `conn` has a request (at most `n` wake-ups), answering any
/// metadata request on another connection with `t`-0 led by broker 1.
fn next_request(h: &mut Harness, conn: u16, n: usize) -> Req {
    next_request_led_by(h, conn, n, 1)
}

/// [`next_request`] with `t`-0 led by broker `leader` in the metadata answers.
fn next_request_led_by(h: &mut Harness, conn: u16, n: usize, leader: i32) -> Req {
    for _ in 0..n {
        if let Some(r) = h.request(conn) {
            return r;
        }
        h.answer_metadata_elsewhere(conn, &[leader]);
        if h.p.poll_timeout().is_none() {
            break;
        }
        h.step();
    }
    panic!("no request on {conn}")
}

/// The broker's ticket ranges in the order their outcomes came, with their offsets.
fn outcome_order(h: &Harness) -> Vec<(TicketRange, Result<i64, ProduceError>)> {
    h.net
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Delivered(_, _, t, o) => Some((*t, Ok(*o))),
            Ev::Failed(_, _, t, _, err) => Some((*t, Err(*err))),
            _ => None,
        })
        .collect()
}

fn assert_outcomes_in_send_order(h: &Harness, tickets: &[Ticket]) {
    let order = outcome_order(h);
    assert_eq!(order.len(), tickets.len(), "{order:?}");
    for (t, (range, _)) in tickets.iter().zip(&order) {
        assert!(range.contains(*t), "{t:?} out of order: {order:?}");
    }
}

#[test]
fn several_batches_of_a_partition_are_in_flight_with_their_sequences_in_order() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (_, b1, tickets, reqs) = pipeline(&mut h, 5);
    assert_eq!(h.p.requests_in_flight(), 5);
    assert_eq!(h.p.metrics().partition_batches_in_flight_max, 5);
    let stamps: Vec<_> = reqs.iter().map(stamp).collect();
    assert_eq!(
        stamps,
        (1..6).map(|i| (0, i, 1)).collect::<Vec<_>>(),
        "sequences given at drain, in send order"
    );
    // A sixth record waits: the connection has five requests in flight.
    let sixth = h.send("t", Some(0), b"v5").unwrap();
    assert!(h.request(b1).is_none());
    for (i, req) in reqs.iter().enumerate() {
        h.produce_response(b1, req, &[("t", 0, 0, 10 + i as i64)]);
    }
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(stamp(&req), (0, 6, 1));
    h.produce_response(b1, &req, &[("t", 0, 0, 15)]);
    let mut all = tickets;
    all.push(sixth);
    assert_outcomes_in_send_order(&h, &all);
    let offsets: Vec<i64> = delivered(&h).iter().map(|d| d.2).collect();
    assert_eq!(offsets, vec![10, 11, 12, 13, 14, 15]);
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
    assert!(h.p.is_flushed());
}

#[test]
fn first_batch_failing_retriably_goes_again_alone_then_the_others_in_order() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (_, b1, tickets, reqs) = pipeline(&mut h, 5);
    // The first is refused (NOT_ENOUGH_REPLICAS, not written): the broker finds the later
    // ones out of order.
    h.produce_response(b1, &reqs[0], &[("t", 0, 19, -1)]);
    for req in &reqs[1..] {
        h.produce_response(b1, req, &[("t", 0, 45, -1)]);
    }
    assert!(outcome_order(&h).is_empty(), "everything is retried");
    assert_eq!(h.p.metrics().batches_retried, 5);
    for i in 0..5 {
        // Batch `i` goes alone, with its sequence, and no other until it is answered.
        let req = next_request(&mut h, b1, 10);
        assert_eq!(stamp(&req), (0, i + 1, 1), "retry {i}");
        h.advance(1_000);
        assert!(
            h.request(b1).is_none(),
            "batch {i} is retried alone, the next waits for its answer"
        );
        h.produce_response(b1, &req, &[("t", 0, 0, 100 + i64::from(i))]);
    }
    assert_outcomes_in_send_order(&h, &tickets);
    let offsets: Vec<i64> = delivered(&h).iter().map(|d| d.2).collect();
    assert_eq!(offsets, vec![100, 101, 102, 103, 104]);
    // Out of order behind a failed batch is no gap: no epoch bump.
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
    assert!(h.p.is_flushed());
}

#[test]
fn first_batch_failing_for_good_bumps_the_epoch_and_the_others_follow_in_order() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, tickets, reqs) = pipeline(&mut h, 4);
    h.produce_response(b1, &reqs[0], &[("t", 0, 87, -1)]); // INVALID_RECORD
    let order = outcome_order(&h);
    assert_eq!(order.len(), 1);
    assert!(order[0].0.contains(tickets[0]));
    assert_eq!(
        order[0].1,
        Err(ProduceError::Broker {
            code: kafka_edge_core::protocol::ErrorCode::INVALID_RECORD
        })
    );
    // Its sequence is a gap the later batches cannot close: the epoch is bumped once
    // nothing is in flight any more.
    for req in &reqs[1..] {
        assert!(
            h.request(boot).is_none(),
            "no bump while batches are in flight"
        );
        h.produce_response(b1, req, &[("t", 0, 45, -1)]);
    }
    let mut bumped = false;
    for _ in 0..10 {
        for c in [boot, b1] {
            if h.net
                .conns
                .get(&c)
                .is_some_and(|x| x.out.len() >= 4 && !bumped)
            {
                let r = h.init_producer_id(c, 4000, 1);
                assert_eq!((r.producer_id.0, r.producer_epoch), (4000, 0), "KIP-360");
                bumped = true;
            }
        }
        if bumped {
            break;
        }
        h.step();
    }
    assert!(bumped, "the epoch is bumped");
    // The others go again one by one, restamped from sequence 0 under epoch 1.
    for i in 0..3 {
        let req = next_request(&mut h, b1, 10);
        assert_eq!(stamp(&req), (1, i, 1), "retry {i} under the new epoch");
        h.produce_response(b1, &req, &[("t", 0, 0, 50 + i64::from(i))]);
    }
    assert_outcomes_in_send_order(&h, &tickets);
    assert_eq!(delivered(&h).len(), 3);
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 1)));
    assert!(h.p.is_flushed());
}

#[test]
fn reconnect_with_several_batches_in_flight_retries_them_in_order_with_their_sequences() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "60000"),
    ]);
    let (_, b1, tickets, reqs) = pipeline(&mut h, 5);
    // The first two were written, then the connection drops before any answer.
    h.net.conns.remove(&b1);
    h.p.handle_closed(h.now, ConnId(b1));
    h.pump();
    drop(reqs);
    assert!(outcome_order(&h).is_empty());
    let b1 = h.reconnect_to("broker-1", 20);
    h.connect_pending();
    h.api_versions(b1, 11);
    for i in 0..5 {
        let req = next_request(&mut h, b1, 20);
        assert_eq!(stamp(&req), (0, i + 1, 1), "resend {i} keeps its sequence");
        h.advance(200);
        assert!(h.request(b1).is_none(), "resends go one at a time");
        // The broker had the first two: their duplicates count as delivered.
        let (code, offset) = if i < 2 { (46, -1) } else { (0, i64::from(i)) };
        h.produce_response(b1, &req, &[("t", 0, code, offset)]);
    }
    assert_outcomes_in_send_order(&h, &tickets);
    assert_eq!(delivered(&h).len(), 5);
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
    assert!(h.p.is_flushed());
}

#[test]
fn a_later_batch_acknowledged_while_an_earlier_one_waits_for_its_retry_reports_after_it() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("request.timeout.ms", "30000")]);
    let (_, b1, tickets, reqs) = pipeline(&mut h, 3);
    // The first timed out on replication (it may have been appended); the later ones were
    // appended after it and acknowledged.
    h.produce_response(b1, &reqs[0], &[("t", 0, 7, -1)]); // REQUEST_TIMED_OUT
    h.produce_response(b1, &reqs[1], &[("t", 0, 0, 21)]);
    h.produce_response(b1, &reqs[2], &[("t", 0, 0, 22)]);
    assert!(
        outcome_order(&h).is_empty(),
        "the later outcomes wait for the first one's"
    );
    let req = next_request(&mut h, b1, 10);
    assert_eq!(stamp(&req), (0, 1, 1));
    h.produce_response(b1, &req, &[("t", 0, 46, -1)]); // it was written
    assert_outcomes_in_send_order(&h, &tickets);
    let offsets: Vec<i64> = delivered(&h).iter().map(|d| d.2).collect();
    assert_eq!(offsets, vec![-1, 21, 22]);
    assert!(h.p.is_flushed());
}

#[test]
fn max_in_flight_one_mutes_the_partition_even_with_idempotence() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("max.in.flight.requests.per.connection", "1"),
    ]);
    let (_, b1, tickets, reqs) = pipeline(&mut h, 1);
    h.send("t", Some(0), b"v1").unwrap();
    assert!(
        h.request(b1).is_none(),
        "one batch of the partition at a time"
    );
    h.produce_response(b1, &reqs[0], &[("t", 0, 0, 1)]);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert_eq!(stamp(&req), (0, 2, 1));
    h.produce_response(b1, &req, &[("t", 0, 0, 2)]);
    assert_eq!(delivered(&h).len(), 2);
    assert!(delivered(&h)[0].1.contains(tickets[0]));
    assert_eq!(h.p.metrics().partition_batches_in_flight_max, 1);
}

#[test]
fn a_batch_split_while_the_partition_waits_keeps_every_record_in_order() {
    let mut h = Harness::new(&[
        ("linger.ms", "100"),
        ("batch.size", "2048"),
        ("delivery.timeout.ms", "120000"),
    ]);
    h.bootstrap("t", &[1], true);
    let mut sent = Vec::new();
    for i in 0..40 {
        let len = if i == 17 { 1_000 } else { 100 };
        let v = value(i, len);
        sent.push((h.send("t", Some(0), &v).unwrap(), v));
    }
    let b1 = h.connect_when_asked("broker-1", 10);
    let mut log: Vec<Vec<u8>> = Vec::new();
    let mut next_sequence = 0i32;
    for round in 0..3000 {
        if outcomes(&h) == sent.len() {
            break;
        }
        let Some(req) = h.request(b1) else {
            if h.p.poll_timeout().is_none() {
                panic!(
                    "stuck at round {round}: {} outcomes, in flight {}",
                    outcomes(&h),
                    h.p.requests_in_flight()
                );
            }
            h.step();
            continue;
        };
        assert_eq!(req.api, kp::ApiKey::Produce, "{:?}", req.api);
        let r: kp::ProduceRequest = req.decode();
        let mut parts = Vec::new();
        for t in &r.topic_data {
            for p in &t.partition_data {
                let bytes = p.records.clone().unwrap();
                if bytes.len() > 700 {
                    parts.push((t.name.0.to_string(), p.index, 10i16, -1i64));
                    continue;
                }
                let mut b = bytes.clone();
                let set = RecordBatchDecoder::decode(&mut b).unwrap();
                let first = &set.records[0];
                if first.sequence != next_sequence {
                    parts.push((t.name.0.to_string(), p.index, 45, -1));
                    continue;
                }
                next_sequence += set.records.len() as i32;
                let base = log.len() as i64;
                for rec in &set.records {
                    log.push(rec.value.as_deref().unwrap().to_vec());
                }
                parts.push((t.name.0.to_string(), p.index, 0, base));
            }
        }
        let parts: Vec<(&str, i32, i16, i64)> = parts
            .iter()
            .map(|(t, p, e, o)| (t.as_str(), *p, *e, *o))
            .collect();
        h.produce_response(b1, &req, &parts);
    }
    assert_eq!(outcomes(&h), sent.len(), "every record has its outcome");
    // The record too large alone fails; the others are in the log once, in send order,
    // and the sequences after it moved back over its gap: no epoch bump.
    let values: Vec<Vec<u8>> = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 17)
        .map(|(_, (_, v))| v.clone())
        .collect();
    assert_eq!(log, values);
    assert_eq!(failed(&h).len(), 1);
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
    assert!(h.p.metrics().batches_split >= 2);
}

#[test]
fn leader_change_with_several_batches_in_flight_resends_them_in_order_to_the_new_leader() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, tickets, reqs) = pipeline(&mut h, 3);
    for req in &reqs {
        h.produce_response(b1, req, &[("t", 0, 6, -1)]); // NOT_LEADER_OR_FOLLOWER
    }
    // A metadata refresh names broker 2; the batches follow it, one at a time, in order,
    // with their sequences (the new leader has the partition's producer state).
    h.answer_metadata_on_one_of(&[boot, b1], &[2]);
    let b2 = h.connect_when_asked("broker-2", 5);
    for i in 0..3 {
        let req = next_request_led_by(&mut h, b2, 10, 2);
        assert_eq!(stamp(&req), (0, i + 1, 1), "resend {i} to the new leader");
        h.advance(200);
        assert!(h.request(b2).is_none(), "resends go one at a time");
        h.produce_response(b2, &req, &[("t", 0, 0, 30 + i64::from(i))]);
    }
    // Pipelining resumes on the new leader.
    let more: Vec<Ticket> = (0..3)
        .map(|i| h.send("t", Some(0), format!("w{i}").as_bytes()).unwrap())
        .collect();
    let reqs: Vec<Req> = (0..3).map(|_| h.expect(b2, kp::ApiKey::Produce)).collect();
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(stamp(req), (0, 4 + i as i32, 1));
        h.produce_response(b2, req, &[("t", 0, 0, 33 + i as i64)]);
    }
    let mut all = tickets;
    all.extend(more);
    assert_outcomes_in_send_order(&h, &all);
    assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
    assert!(h.p.is_flushed());
}

#[test]
fn a_new_batch_waits_while_the_oldest_unanswered_one_would_leave_the_brokers_window() {
    // The broker answers a resend from the producer's last five batches of a partition.
    // Batch 1 may have been written (REQUEST_TIMED_OUT) and the four after it were: a new
    // batch now would be the sixth since batch 1, which the broker could no longer tell
    // from a lost one. It waits until batch 1 has its answer, however many resends that
    // takes.
    let mut h = Harness::new(&[("linger.ms", "0"), ("request.timeout.ms", "30000")]);
    let (_, b1, mut tickets, reqs) = pipeline(&mut h, 5);
    h.produce_response(b1, &reqs[0], &[("t", 0, 7, -1)]); // REQUEST_TIMED_OUT
    for (i, req) in reqs[1..].iter().enumerate() {
        h.produce_response(b1, req, &[("t", 0, 0, 21 + i as i64)]);
    }
    tickets.push(h.send("t", Some(0), b"late").unwrap());
    for attempt in 0..3 {
        let req = next_request(&mut h, b1, 10);
        assert_eq!(stamp(&req), (0, 1, 1), "resend {attempt} of batch 1");
        h.advance(1_000);
        assert!(
            h.request(b1).is_none(),
            "the new batch waits for batch 1's answer (attempt {attempt})"
        );
        if attempt < 2 {
            h.produce_response(b1, &req, &[("t", 0, 7, -1)]);
        } else {
            h.produce_response(b1, &req, &[("t", 0, 0, 20)]);
        }
    }
    let req = next_request(&mut h, b1, 10);
    assert_eq!(
        stamp(&req),
        (0, 6, 1),
        "the new batch, after batch 1's answer"
    );
    h.produce_response(b1, &req, &[("t", 0, 0, 25)]);
    assert_outcomes_in_send_order(&h, &tickets);
    let offsets: Vec<i64> = delivered(&h).iter().map(|d| d.2).collect();
    assert_eq!(offsets, vec![20, 21, 22, 23, 24, 25]);
    assert_eq!(
        h.p.producer_id_and_epoch(),
        Some((4000, 0)),
        "no epoch bump"
    );
    assert!(h.p.is_flushed());
}
