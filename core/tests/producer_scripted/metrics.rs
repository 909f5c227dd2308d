//! Java's producer metrics (feature `metrics`) against the scripted broker: records,
//! batch bytes, retries, errors and request latency on the virtual clock, globally and per
//! topic.

use super::*;

/// The bytes of the record batches in the Produce request `req`.
fn batch_bytes(req: &Req) -> u64 {
    let (r, _) = produce_batches(req);
    r.topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .map(|p| p.records.as_ref().map_or(0, |b| b.len() as u64))
        .sum()
}

#[test]
fn metrics_count_records_bytes_latency_retries_and_errors() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    let (boot, b1, _, req) = first_produce_on_broker_1(&mut h);
    let first_bytes = batch_bytes(&req);
    let m = *h.p.metrics();
    assert_eq!((m.records_sent, m.batch_bytes_sum), (1, first_bytes));
    assert_eq!(m.batch_bytes_max, first_bytes);
    assert_eq!(
        m.compression_ratio_ppm_sum, 1_000_000,
        "uncompressed: ratio 1"
    );
    assert_eq!(m.request_latency_count, 0);
    assert_eq!(h.p.requests_in_flight(), 1);
    assert!(h.p.buffer_available_bytes() < h.p.config().buffer_memory);

    // NOT_LEADER_OR_FOLLOWER after 25 ms: timed, then retried on broker 1 again.
    h.advance(25);
    h.produce_response(b1, &req, &[("t", 0, 6, -1)]);
    let m = *h.p.metrics();
    assert_eq!(m.request_latency_count, 1);
    assert_eq!(
        (m.request_latency_sum_ms, m.request_latency_max_ms),
        (25, 25)
    );
    assert_eq!(m.records_retried, 1);
    h.answer_metadata_on_one_of(&[boot, b1], &[1]);
    h.wait_request(b1, 5);
    let retry = h.expect(b1, kp::ApiKey::Produce);
    h.advance(7);
    h.produce_response(b1, &retry, &[("t", 0, 0, 0)]);
    assert_eq!(delivered(&h).len(), 1);
    let m = *h.p.metrics();
    assert_eq!(m.records_sent, 2, "the retry is sent again");
    assert_eq!(m.batch_bytes_sum, first_bytes + batch_bytes(&retry));
    assert_eq!(m.request_latency_count, 2);
    assert_eq!(m.request_latency_sum_ms, 25 + 7);
    assert_eq!(m.request_latency_max_ms, 25);
    assert_eq!(m.records_failed, 0);

    // A record the broker refuses (MESSAGE_TOO_LARGE, alone in its batch): an error.
    h.send("t", Some(0), b"too large").unwrap();
    let req = h.expect(b1, kp::ApiKey::Produce);
    h.produce_response(b1, &req, &[("t", 0, 10, -1)]);
    assert_eq!(failed(&h).len(), 1);
    let m = *h.p.metrics();
    assert_eq!(
        (m.records_sent, m.records_retried, m.records_failed),
        (3, 1, 1)
    );
    assert_eq!(h.p.requests_in_flight(), 0);
    assert_eq!(h.p.buffer_available_bytes(), h.p.config().buffer_memory);

    let topics: Vec<_> =
        h.p.topic_metrics()
            .map(|(n, t)| (n.to_string(), *t))
            .collect();
    assert_eq!(topics.len(), 1);
    let (name, t) = &topics[0];
    assert_eq!(name, "t");
    assert_eq!(
        (
            t.records_sent,
            t.records_retried,
            t.records_failed,
            t.batches_sent
        ),
        (3, 1, 1, 3)
    );
    assert_eq!(t.bytes_sent, m.batch_bytes_sum);
    assert_eq!(t.compression_ratio_ppm_sum, 3_000_000);

    // A new window for the maxima; the sums go on.
    h.p.reset_metric_maxima();
    let r = *h.p.metrics();
    assert_eq!((r.batch_bytes_max, r.request_latency_max_ms), (0, 0));
    assert_eq!(r.batch_bytes_sum, m.batch_bytes_sum);
    assert_eq!(r.request_latency_sum_ms, m.request_latency_sum_ms);
}
