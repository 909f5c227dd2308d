//! Authorization as Java reports it, on a broker with KRaft's StandardAuthorizer
//! (`scripts/kafka up --security --acl`, `KAFKA_EDGE_DIR_ACL`): a topic the SASL user may
//! not describe is refused at `send`, at once and naming the topic (Java's
//! `TopicAuthorizationException` from `waitOnMetadata`); a topic it may describe but not
//! write fails each record with `TOPIC_AUTHORIZATION_FAILED`, and the producer goes on; a
//! user who may write nothing cannot be idempotent (`CLUSTER_AUTHORIZATION_FAILED`, fatal,
//! as Java's `ClusterAuthorizationException`). Java's own producer, run through the same
//! cases by the oracle, reports the same classes of error.

mod common;

use std::time::{Duration, Instant};

use common::{init_log, owned};
use kafka_edge_std::{ErrorCode, ProduceError, Producer, ProducerRecord, SendError};
use kafka_edge_tests::{
    SecureBroker, assert_read_back_exactly, judge, keyed_records, oracle, topic_name,
};

const T: Duration = Duration::from_secs(60);

/// The SASL_PLAINTEXT (PLAIN) settings of `user`.
fn sasl(b: &SecureBroker, user: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "SASL_PLAINTEXT".into()),
        ("sasl.mechanism", "PLAIN".into()),
        (
            "sasl.jaas.config",
            format!(
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"{user}\" password=\"{password}\";"
            ),
        ),
        (
            "bootstrap.servers",
            b.var("BOOTSTRAP_SASL_PLAINTEXT").into(),
        ),
    ]
}

fn alice(b: &SecureBroker) -> Vec<(&'static str, String)> {
    sasl(b, b.var("SASL_USER"), b.var("SASL_PASSWORD"))
}

fn mallory(b: &SecureBroker) -> Vec<(&'static str, String)> {
    sasl(b, b.var("ACL_DENIED_USER"), b.var("ACL_DENIED_PASSWORD"))
}

fn producer(props: &[(&'static str, String)], extra: &[(&str, &str)]) -> Producer {
    let mut b = Producer::builder().set("client.id", "std-acl-test");
    for (k, v) in props {
        b = b.set(*k, v.as_str());
    }
    for (k, v) in extra {
        b = b.set(*k, *v);
    }
    b.build().expect("producer")
}

/// Java's producer through the same listener as the same user: the classes of its first
/// error and of the errors under it (simple names).
fn java_errors(
    b: &SecureBroker,
    props: &[(&'static str, String)],
    extra: &[(&str, &str)],
    topic: &str,
) -> Vec<String> {
    let mut all: Vec<(&str, &str)> = props
        .iter()
        .filter(|(k, _)| *k != "bootstrap.servers")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    all.extend_from_slice(extra);
    let summary = oracle::produce_summary(b.var("BOOTSTRAP_SASL_PLAINTEXT"), topic, 3, &all);
    let class = summary["error_class"]
        .as_str()
        .unwrap_or_else(|| panic!("Java's producer had no error: {summary}"));
    let mut classes = vec![class.rsplit('.').next().unwrap_or(class).to_string()];
    for cause in summary["causes"].as_array().into_iter().flatten() {
        let c = cause.as_str().unwrap_or_default();
        classes.push(c.split(':').next().unwrap_or(c).to_string());
    }
    classes
}

#[test]
fn topic_authorization_refuses_at_send_or_fails_the_records_and_the_producer_goes_on() {
    init_log();
    let b = SecureBroker::get_acl();
    let props = alice(&b);
    let p = producer(&props, &[]);

    // A topic alice may not describe: refused at send, at once, naming the topic.
    let none = topic_name("acl-none-std");
    b.cluster.create_topic(&none, 1, 1, &[]);
    let t0 = Instant::now();
    let e = p
        .send(&ProducerRecord::new(&none).value(b"v"))
        .expect_err("refused");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(10), "refused after {took:?}");
    match &e {
        SendError::TopicRefused { topic, code } => {
            assert_eq!(topic, &none);
            assert_eq!(*code, ErrorCode::TOPIC_AUTHORIZATION_FAILED);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains(&none), "{e}");
    let java = java_errors(&b, &props, &[], &none);
    assert!(
        java.iter().any(|c| c == "TopicAuthorizationException"),
        "{java:?}"
    );

    // A topic alice may describe but not write: each record fails with the broker's error.
    let ro = topic_name("acl-ro-std");
    b.cluster.create_topic(&ro, 1, 1, &[]);
    let futures: Vec<_> = (0..5)
        .map(|i| {
            p.send(&ProducerRecord::new(&ro).value(format!("ro-{i}").as_bytes()))
                .expect("accepted: the topic is described")
        })
        .collect();
    for f in futures {
        match f.wait_timeout(T).expect("an outcome") {
            Err(e @ ProduceError::Broker { .. }) => {
                assert_eq!(
                    e.broker_code(),
                    Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let java = java_errors(&b, &props, &[], &ro);
    assert!(
        java.iter().any(|c| c == "TopicAuthorizationException"),
        "{java:?}"
    );

    // The producer goes on: a topic alice may write reads back exactly.
    let ok = topic_name("acl-ok-std");
    b.cluster.create_topic(&ok, 2, 1, &[]);
    let records = keyed_records(71, 300, 20);
    let owned = owned(&records);
    let futures: Vec<_> = owned
        .iter()
        .map(|r| p.send(&r.record(&ok)).expect("accepted"))
        .collect();
    let mut partition_of = Vec::new();
    for f in futures {
        partition_of.push(
            f.wait_timeout(T)
                .expect("an outcome")
                .expect("delivered")
                .partition,
        );
    }
    assert_read_back_exactly(&records, &judge(&b.cluster, &ok), |i| partition_of[i]);
    assert!(
        judge(&b.cluster, &ro).is_empty(),
        "nothing written where alice may not write"
    );
    p.close(T);
}

#[test]
fn a_user_who_may_write_nothing_cannot_be_idempotent() {
    init_log();
    let b = SecureBroker::get_acl();
    let topic = topic_name("acl-ok-idem");
    b.cluster.create_topic(&topic, 1, 1, &[]);
    let props = mallory(&b);
    let p = producer(&props, &[]);
    let t0 = Instant::now();
    let e = loop {
        // The first send may come before InitProducerId is refused (metadata first).
        match p.send(&ProducerRecord::new(&topic).value(b"v")) {
            Err(e) => break e,
            Ok(f) => {
                if let Err(e) = f.wait_timeout(T).expect("an outcome") {
                    assert_eq!(
                        e.broker_code(),
                        Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED),
                        "{e}"
                    );
                }
            }
        }
        assert!(t0.elapsed() < T, "never refused");
    };
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    match e {
        SendError::Fatal { code } => assert_eq!(code, ErrorCode::CLUSTER_AUTHORIZATION_FAILED),
        other => panic!("{other:?}"),
    }
    // Java: a KafkaException ("in an error state") caused by ClusterAuthorizationException.
    let java = java_errors(&b, &props, &[], &topic);
    assert!(
        java.iter().any(|c| c == "ClusterAuthorizationException"),
        "{java:?}"
    );

    // Without idempotence no producer id is needed: the write itself is refused.
    let p = producer(&props, &[("enable.idempotence", "false"), ("acks", "1")]);
    let f = p
        .send(&ProducerRecord::new(&topic).value(b"w"))
        .expect("accepted: mallory may describe the topic");
    let e = f.wait_timeout(T).expect("an outcome").expect_err("refused");
    assert_eq!(
        e.broker_code(),
        Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        "{e}"
    );
    assert!(judge(&b.cluster, &topic).is_empty());
}
