//! Connection settings of Java's client: `connections.max.idle.ms`,
//! `socket.connection.setup.timeout.max.ms`, `metadata.recovery.strategy`.

use super::*;

/// Delivers one record on partition 0 of `t` (led by broker 1); returns broker 1's
/// connection.
fn deliver_one(h: &mut Harness) -> u16 {
    h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    let req = h.expect(b1, kp::ApiKey::Produce);
    h.produce_response(b1, &req, &[("t", 0, 0, 0)]);
    assert_eq!(delivered(h).len(), 1);
    b1
}

#[test]
fn a_connection_idle_past_connections_max_idle_ms_is_closed_without_backoff() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("connections.max.idle.ms", "60000")]);
    h.bootstrap("t", &[1], true);
    let b1 = deliver_one(&mut h);
    let boot = h.conn_to("boot");
    // The bootstrap connection's last response (metadata) came before broker 1's; each is
    // closed 60 s after its own last activity, and not a moment before.
    h.advance(59_000);
    assert!(h.net.conns.contains_key(&b1) && h.net.conns.contains_key(&boot));
    let closed_at_first_wake = {
        h.step();
        h.net
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Disconnect(_)))
            .count()
    };
    assert!(closed_at_first_wake >= 1, "{:?}", h.net.events);
    while h.net.conns.contains_key(&b1) || h.net.conns.contains_key(&boot) {
        h.step();
    }
    assert!(h.now <= 1_000 + 60_000 + 1, "closed at {}", h.now);
    // Not a failure: the next record reconnects at once, without reconnect backoff.
    h.send("t", Some(0), b"w").unwrap();
    assert!(
        h.net.conns.values().any(|c| c.host == "broker-1"),
        "reconnected at once: {:?}",
        h.net.conns
    );
}

#[test]
fn a_busy_connection_is_never_closed_for_idleness() {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("connections.max.idle.ms", "1000"),
        ("request.timeout.ms", "30000"),
    ]);
    h.bootstrap("t", &[1], true);
    h.send("t", Some(0), b"v").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    let req = h.expect(b1, kp::ApiKey::Produce);
    // A produce request in flight for 20 s: the connection stays, whatever the idle limit.
    h.advance(20_000);
    assert!(h.net.conns.contains_key(&b1));
    h.produce_response(b1, &req, &[("t", 0, 0, 0)]);
    assert_eq!(delivered(&h).len(), 1);
    h.advance(1_000);
    assert!(!h.net.conns.contains_key(&b1), "idle once answered");
}

#[test]
fn negative_connections_max_idle_ms_never_closes() {
    let mut h = Harness::new(&[("linger.ms", "0"), ("connections.max.idle.ms", "-1")]);
    h.bootstrap("t", &[1], true);
    let b1 = deliver_one(&mut h);
    h.advance(3_600_000);
    assert!(h.net.conns.contains_key(&b1));
}

/// The setup timeouts of consecutive attempts to the bootstrap server that never connect.
fn setup_timeouts(props: &[(&str, &str)]) -> Vec<u64> {
    let mut h = Harness::new(props);
    let mut timeouts = Vec::new();
    let mut since = h.now;
    while timeouts.len() < 6 {
        h.step();
        let open = h.net.conns.values().any(|c| c.host == "boot");
        let gone = h
            .net
            .events
            .iter()
            .filter(|e| matches!(e, Ev::Disconnect(_)))
            .count();
        if gone > timeouts.len() {
            timeouts.push(h.now - since);
            // The Transport saw the Disconnect; wait out the reconnect backoff.
            while !h.net.conns.values().any(|c| c.host == "boot") {
                h.step();
            }
            since = h.now;
        } else {
            assert!(open);
        }
    }
    timeouts
}

#[test]
fn the_connection_setup_timeout_doubles_per_failure_up_to_its_maximum() {
    let t = setup_timeouts(&[
        ("socket.connection.setup.timeout.ms", "1000"),
        ("socket.connection.setup.timeout.max.ms", "5000"),
        ("reconnect.backoff.ms", "10"),
        ("reconnect.backoff.max.ms", "10"),
    ]);
    assert_eq!(t, [1000, 2000, 4000, 5000, 5000, 5000]);
    // A maximum below the base leaves the base, as Java's ExponentialBackoff does.
    let t = setup_timeouts(&[
        ("socket.connection.setup.timeout.ms", "3000"),
        ("socket.connection.setup.timeout.max.ms", "1000"),
        ("reconnect.backoff.ms", "10"),
        ("reconnect.backoff.max.ms", "10"),
    ]);
    assert_eq!(t, [3000; 6]);
}

/// After the first metadata, the known brokers (1 and 2) refuse every connection; which
/// hosts does the producer try for the next metadata?
fn hosts_tried_when_brokers_fail(strategy: &str) -> Vec<String> {
    let mut h = Harness::new(&[
        ("linger.ms", "0"),
        ("metadata.recovery.strategy", strategy),
        ("metadata.max.age.ms", "1000"),
        ("reconnect.backoff.ms", "10"),
        ("reconnect.backoff.max.ms", "10"),
    ]);
    let boot = h.conn_to("boot");
    h.connect_pending();
    h.api_versions(boot, 11);
    h.metadata(boot, &[("t", &[1])]);
    // The bootstrap connection goes away; broker 1 refuses every connection.
    h.net.conns.remove(&boot);
    h.p.handle_closed(h.now, ConnId(boot));
    h.pump();
    h.net.events.clear();
    for _ in 0..40 {
        h.step();
        let refused: Vec<u16> = h
            .net
            .conns
            .iter()
            .filter(|(_, c)| !c.connected)
            .map(|(k, _)| *k)
            .collect();
        for k in refused {
            h.net.conns.remove(&k);
            h.p.handle_closed(h.now, ConnId(k));
            h.pump();
        }
    }
    let mut hosts: Vec<String> = h
        .net
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Connect(_, host, _) => Some(host.clone()),
            _ => None,
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

#[test]
fn metadata_recovery_strategy_none_never_returns_to_the_bootstrap_servers() {
    let known = ["broker-1", "broker-2"];
    assert_eq!(
        hosts_tried_when_brokers_fail("rebootstrap"),
        ["boot", known[0], known[1]]
    );
    assert_eq!(hosts_tried_when_brokers_fail("none"), known);
    assert_eq!(hosts_tried_when_brokers_fail("NONE"), known);
}

#[test]
fn a_throttled_connection_takes_no_new_request_until_the_throttle_passes() {
    let mut h = Harness::new(&[("linger.ms", "0")]);
    h.bootstrap("t", &[1], true);
    h.send("t", Some(0), b"a").unwrap();
    let b1 = h.conn_to("broker-1");
    h.connect_pending();
    h.api_versions(b1, 11);
    let req = h.expect(b1, kp::ApiKey::Produce);
    assert!(req.version >= 6, "KIP-219 applies from Produce v6");
    // The broker answers with throttle_time_ms=500 (a quota).
    let mut resp = kp::ProduceResponse::default();
    let mut tr = kp::produce_response::TopicProduceResponse::default();
    tr.name = kp::TopicName(s("t"));
    let mut pr = kp::produce_response::PartitionProduceResponse::default();
    pr.index = 0;
    pr.base_offset = 0;
    pr.log_append_time_ms = -1;
    tr.partition_responses.push(pr);
    resp.responses.push(tr);
    resp.throttle_time_ms = 500;
    let answered = h.now;
    h.respond(b1, &req, &resp);
    assert_eq!(delivered(&h).len(), 1);
    // The next record waits on the throttled connection...
    h.send("t", Some(0), b"b").unwrap();
    assert!(h.request(b1).is_none(), "sent during the throttle");
    h.advance(499);
    assert!(h.request(b1).is_none(), "sent during the throttle");
    // ...and goes once it has passed, at the timer the producer set for it.
    h.step();
    assert_eq!(h.now, answered + 500, "woken when the throttle ends");
    let req = h.expect(b1, kp::ApiKey::Produce);
    h.produce_response(b1, &req, &[("t", 0, 0, 1)]);
    assert_eq!(delivered(&h).len(), 2);
}
