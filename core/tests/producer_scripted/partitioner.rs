//! `partitioner.availability.timeout.ms` (KIP-794): with adaptive partitioning, a partition
//! whose leader has had batches ready that it could not take for longer than the timeout
//! gets no new keyless records.

use super::*;

/// Keyless records to `t` (partition 0 led by broker 1, partition 1 by broker 2, whose
/// connection never completes), one every 10 ms for `ms` milliseconds after a first phase
/// of the same length; broker 1 answers at once. Returns how many of the second phase's
/// records broker 1 got, and how many that phase sent.
fn second_phase_on_broker_1(timeout: &str, ms: u64) -> (usize, usize) {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("batch.size", "100"),
        ("enable.idempotence", "false"),
        ("acks", "1"),
        ("partitioner.availability.timeout.ms", timeout),
    ]);
    h.bootstrap("t", &[1, 2], false);
    let mut b1 = None;
    let mut offset = 0;
    let mut got = Vec::new();
    let mut sent = Vec::new();
    for i in 0..2 * ms / 10 {
        let value = format!("{i:0>120}");
        h.send("t", None, value.as_bytes()).unwrap();
        if i >= ms / 10 {
            sent.push(value);
        }
        if b1.is_none() && h.net.conns.values().any(|c| c.host == "broker-1") {
            // Only broker 1's connection completes.
            let k = h.conn_to("broker-1");
            h.net.conns.get_mut(&k).unwrap().connected = true;
            h.p.handle_connected(h.now, ConnId(k));
            h.pump();
            h.api_versions(k, 11);
            b1 = Some(k);
        }
        if let Some(k) = b1 {
            while let Some(req) = h.request(k) {
                let (_, batches) = produce_batches(&req);
                let mut parts = Vec::new();
                for (_, p, records) in &batches {
                    assert_eq!(*p, 0, "broker 1 leads partition 0 only");
                    for r in records {
                        got.push(String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap());
                    }
                    parts.push(("t", 0, 0i16, offset));
                    offset += records.len() as i64;
                }
                h.produce_response(k, &req, &parts);
            }
        }
        h.advance(10);
    }
    let on_1 = sent.iter().filter(|v| got.contains(v)).count();
    (on_1, sent.len())
}

#[test]
fn a_partition_whose_leader_cannot_take_its_batches_is_left_out_after_the_timeout() {
    // Broker 2 never takes its batches: after 200 ms, partition 1 gets nothing new.
    let (on_1, sent) = second_phase_on_broker_1("200", 300);
    assert_eq!(
        on_1, sent,
        "every record after the timeout goes to the live leader"
    );
    // Without the timeout the adaptive partitioner only weighs partition 1 down.
    let (on_1, sent) = second_phase_on_broker_1("0", 300);
    assert!(on_1 < sent, "{on_1} of {sent}: partition 1 still gets some");
}
