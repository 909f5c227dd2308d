//! MESSAGE_TOO_LARGE: a broker refusing batches over a size; the producer splits them and
//! delivers every record in order, or fails a record too large alone and delivers the others.

use super::*;

/// A broker (leader of `t`-0 on `conn`) whose log refuses any batch larger than
/// `max_batch_bytes` with MESSAGE_TOO_LARGE. It checks idempotent sequences (no gap, no
/// duplicate) and appends the values of the batches it accepts.
struct TooLargeBroker {
    conn: u16,
    max_batch_bytes: usize,
    idempotent: bool,
    log: Vec<Vec<u8>>,
    next_sequence: i32,
    refused: usize,
}

impl TooLargeBroker {
    /// Answers one request if there is one; false otherwise.
    fn serve_one(&mut self, h: &mut Harness) -> bool {
        let Some(req) = h.request(self.conn) else {
            return false;
        };
        assert_eq!(
            req.api,
            kp::ApiKey::Produce,
            "only Produce goes to the leader"
        );
        let r: kp::ProduceRequest = req.decode();
        let mut parts = Vec::new();
        for t in &r.topic_data {
            for p in &t.partition_data {
                let bytes = p.records.clone().unwrap();
                if bytes.len() > self.max_batch_bytes {
                    self.refused += 1;
                    parts.push((t.name.0.to_string(), p.index, 10i16, -1i64));
                    continue;
                }
                let mut b = bytes.clone();
                let set = RecordBatchDecoder::decode(&mut b).unwrap();
                let first = &set.records[0];
                if self.idempotent {
                    assert_eq!(first.producer_id, 4000);
                    assert_eq!(first.producer_epoch, 0, "no epoch bump is needed");
                    assert_eq!(
                        first.sequence, self.next_sequence,
                        "sequences have no gap and no duplicate"
                    );
                    self.next_sequence += set.records.len() as i32;
                } else {
                    assert_eq!(first.producer_id, -1);
                }
                let base = self.log.len() as i64;
                for (i, rec) in set.records.iter().enumerate() {
                    assert_eq!(rec.offset, first.offset + i as i64, "offset deltas 0..n");
                    self.log.push(rec.value.as_deref().unwrap().to_vec());
                }
                parts.push((t.name.0.to_string(), p.index, 0, base));
            }
        }
        let parts: Vec<(&str, i32, i16, i64)> = parts
            .iter()
            .map(|(t, p, e, o)| (t.as_str(), *p, *e, *o))
            .collect();
        h.produce_response(self.conn, &req, &parts);
        true
    }
}

/// Sends `lens.len()` records to `t`-0 (one batch with a long linger), a second wave once
/// the first batch was refused, and serves them with a broker refusing batches over
/// `max_batch_bytes`. Returns the harness, the broker, and the tickets with their values.
fn run_too_large(
    idempotent: bool,
    lens: &[usize],
    max_batch_bytes: usize,
) -> (Harness, TooLargeBroker, Vec<(Ticket, Vec<u8>)>) {
    let mut props = vec![("linger.ms", "100"), ("delivery.timeout.ms", "120000")];
    if !idempotent {
        // Order across a split needs one batch in flight per partition (muted partitions).
        props.extend([
            ("enable.idempotence", "false"),
            ("max.in.flight.requests.per.connection", "1"),
        ]);
    }
    let mut h = Harness::new(&props);
    h.bootstrap("t", &[1], idempotent);
    let mut sent = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let v = value(i, len);
        sent.push((h.send("t", Some(0), &v).unwrap(), v));
    }
    // The batch is ready after linger.ms: then the leader gets a connection.
    let b1 = h.connect_when_asked("broker-1", 10);
    let mut broker = TooLargeBroker {
        conn: b1,
        max_batch_bytes,
        idempotent,
        log: Vec::new(),
        next_sequence: 0,
        refused: 0,
    };
    let mut second_wave = false;
    for _ in 0..1_000 {
        if second_wave && outcomes(&h) == sent.len() {
            break;
        }
        if broker.serve_one(&mut h) {
            if !second_wave && broker.refused > 0 {
                // Records sent while the split batches wait go after them.
                second_wave = true;
                for i in lens.len()..lens.len() + 5 {
                    let v = value(i, 100);
                    sent.push((h.send("t", Some(0), &v).unwrap(), v));
                }
            }
            continue;
        }
        h.step();
    }
    assert_eq!(outcomes(&h), sent.len(), "every record has its outcome");
    (h, broker, sent)
}

/// Each ticket has exactly one outcome; returns the offset of each delivered ticket and
/// the error of each failed one.
fn outcome_of(h: &Harness, sent: &[(Ticket, Vec<u8>)]) -> Vec<Result<i64, ProduceError>> {
    let d = delivered(h);
    let f = failed(h);
    sent.iter()
        .map(|(t, _)| {
            let ds: Vec<i64> = d
                .iter()
                .filter(|(_, r, _)| r.contains(*t))
                .map(|(_, r, base)| base + i64::from(t.index() - r.first_index()))
                .collect();
            let fs: Vec<ProduceError> = f
                .iter()
                .filter(|(r, _)| r.contains(*t))
                .map(|(_, e)| *e)
                .collect();
            assert_eq!(ds.len() + fs.len(), 1, "{t:?}: one outcome");
            match (ds.first(), fs.first()) {
                (Some(o), None) => Ok(*o),
                (None, Some(e)) => Err(*e),
                _ => unreachable!(),
            }
        })
        .collect()
}

fn split_delivers_every_record_in_order(idempotent: bool) {
    // 20 records of ~110 bytes: one batch of ~2.3 KB; the broker takes at most 700 bytes.
    let (h, broker, sent) = run_too_large(idempotent, &[100; 20], 700);
    assert!(broker.refused >= 2, "split twice: {}", broker.refused);
    assert!(h.p.metrics().batches_split >= 2);
    let results = outcome_of(&h, &sent);
    for ((t, v), r) in sent.iter().zip(&results) {
        let offset = r.expect("delivered");
        assert_eq!(
            &broker.log[offset as usize], v,
            "{t:?} points at its record"
        );
    }
    // The log holds every record once, in send order (the second wave after the split).
    let values: Vec<Vec<u8>> = sent.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(broker.log, values);
    // Tickets are those handed out by `send`: the split batches name the original batch.
    let original = sent[0].0.batch();
    assert!(sent[..20].iter().all(|(t, _)| t.batch() == original));
    assert!(delivered(&h).len() >= 4);
    if idempotent {
        assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
        assert_eq!(broker.next_sequence, 25);
    }
    assert!(h.p.is_flushed());
}

#[test]
fn message_too_large_splits_and_delivers_every_record_idempotent() {
    split_delivers_every_record_in_order(true);
}

#[test]
fn message_too_large_splits_and_delivers_every_record_without_idempotence() {
    split_delivers_every_record_in_order(false);
}

fn record_too_large_alone_fails_and_the_others_are_delivered(idempotent: bool) {
    // A record of 1000 bytes among records of 100: it alone is over the broker's 700.
    let mut lens = vec![100; 9];
    lens.insert(4, 1_000);
    let (h, broker, sent) = run_too_large(idempotent, &lens, 700);
    let results = outcome_of(&h, &sent);
    for (i, ((_, v), r)) in sent.iter().zip(&results).enumerate() {
        if i == 4 {
            assert_eq!(
                *r,
                Err(ProduceError::Broker {
                    code: kafka_edge_core::protocol::ErrorCode::MESSAGE_TOO_LARGE
                })
            );
        } else {
            let offset = r.expect("delivered");
            assert_eq!(&broker.log[offset as usize], v);
        }
    }
    let values: Vec<Vec<u8>> = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, (_, v))| v.clone())
        .collect();
    assert_eq!(broker.log, values, "the others in order, without a gap");
    if idempotent {
        // The refused record's sequence was given back: no gap, no epoch bump.
        assert_eq!(h.p.producer_id_and_epoch(), Some((4000, 0)));
        assert_eq!(broker.next_sequence, 14);
    }
    assert!(h.p.is_flushed());
}

#[test]
fn record_too_large_alone_fails_and_the_others_are_delivered_idempotent() {
    record_too_large_alone_fails_and_the_others_are_delivered(true);
}

#[test]
fn record_too_large_alone_fails_and_the_others_are_delivered_without_idempotence() {
    record_too_large_alone_fails_and_the_others_are_delivered(false);
}
