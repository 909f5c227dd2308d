//! Unit tests of the `metadata` module.

use super::*;

type M<const P: usize> = Metadata<
    heapless::Vec<TopicEntry, 16>,
    heapless::Vec<PartitionEntry, P>,
    heapless::Vec<i32, P>,
    heapless::Vec<Broker, 16>,
>;

struct Topic(TopicId);

impl From<TopicId> for Topic {
    fn from(id: TopicId) -> Self {
        Self(id)
    }
}

/// Entry `i` at generation 0, as the first registrations get.
impl From<u16> for Topic {
    fn from(i: u16) -> Self {
        Self(TopicId::new(i, 0))
    }
}

fn meta<const P: usize>() -> M<P> {
    M::<P>::new(usize::MAX, usize::MAX, usize::MAX)
}

fn tp(t: impl Into<Topic>, p: i32) -> TopicPartition {
    TopicPartition::new(t.into().0, p)
}

#[test]
fn topic_names_as_kafka_validates_them() {
    assert!(is_valid_topic_name("a"));
    assert!(is_valid_topic_name("my.topic_name-1"));
    for bad in ["", ".", "..", "a b", "é", "a/b"] {
        assert!(!is_valid_topic_name(bad), "{bad:?}");
    }
    let long = [b'a'; 250];
    let long = core::str::from_utf8(&long).unwrap();
    assert!(!is_valid_topic_name(long));
    assert!(is_valid_topic_name(&long[..249]));
}

#[test]
fn register_update_and_leaders() {
    let mut m = meta::<8>();
    let a = m.register("a").unwrap();
    let b = m.register("b").unwrap();
    assert_eq!(m.register("a"), Ok(a));
    assert_eq!(m.register(".."), Err(RegisterError::InvalidTopic));
    assert!(m.update_requested());
    assert_eq!(m.partition_count(a), None);

    m.update_brokers([(1, "h1", 9092), (2, "h2", 9092)].into_iter());
    m.update_topic(
        "a",
        ErrorCode::NONE,
        [1; 16],
        [(0, 1, 5), (1, 2, 5)].into_iter(),
    );
    m.update_topic(
        "b",
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        [0; 16],
        [].into_iter(),
    );
    m.update_done(100);
    assert_eq!(m.partition_count(a), Some(2));
    assert_eq!(m.leader(tp(0, 1)), Some(NodeId(2)));
    assert_eq!(m.leader_epoch(tp(0, 1)), 5);
    assert_eq!(m.partition_set(a).available(), &[0, 1]);
    assert_eq!(m.topic_by_uuid(&[1; 16]), Some(a));
    // b is still pending: keep asking (with backoff).
    assert_eq!(m.topic_status(b), Some(TopicStatus::Pending));
    assert!(m.update_requested());
    assert_eq!(m.next_update_ms(300_000, 100, 1000), 200);

    // b appears with 3 partitions, then a grows to 4: a moves after b.
    m.update_topic(
        "b",
        ErrorCode::NONE,
        [2; 16],
        [(2, 1, 0), (0, 1, 0), (1, -1, 0)].into_iter(),
    );
    m.update_topic(
        "a",
        ErrorCode::NONE,
        [1; 16],
        [(0, 1, 4), (1, 1, 6), (2, 1, 6), (3, 2, 6)].into_iter(),
    );
    m.update_done(200);
    assert_eq!(m.partition_count(b), Some(3));
    assert_eq!(m.partition_set(b).available(), &[0, 2]);
    assert_eq!(m.leader(tp(1, 1)), None);
    assert_eq!(m.partition_count(a), Some(4));
    assert_eq!(m.leader(tp(0, 3)), Some(NodeId(2)));
    assert_eq!(m.leader(tp(0, 1)), Some(NodeId(1)));
    // Stale epoch for partition 0 is kept from before the move? The move resets state.
    assert_eq!(m.leader(tp(0, 0)), Some(NodeId(1)));
    // b has a leaderless partition: still wants an update.
    assert!(m.update_requested());

    // A fourth, too large topic does not fit in 8 entries (7 used).
    let c = m.register("c").unwrap();
    m.update_topic(
        "c",
        ErrorCode::NONE,
        [3; 16],
        [(0, 1, 0), (1, 1, 0)].into_iter(),
    );
    assert_eq!(m.topic_status(c), Some(TopicStatus::TooManyPartitions));
    m.update_topic(
        "b",
        ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        [0; 16],
        [].into_iter(),
    );
    assert_eq!(
        m.topic_status(b),
        Some(TopicStatus::Failed(ErrorCode::TOPIC_AUTHORIZATION_FAILED))
    );
    assert_eq!(m.partition_count(b), None);
}

#[test]
fn stale_leader_epochs_are_ignored_and_invalidation_refreshes() {
    let mut m = meta::<4>();
    let a = m.register("a").unwrap();
    m.update_brokers([(1, "h1", 1), (2, "h2", 2)].into_iter());
    m.update_topic("a", ErrorCode::NONE, [0; 16], [(0, 2, 7)].into_iter());
    m.update_done(10);
    assert!(!m.update_requested());
    assert_eq!(m.next_update_ms(1000, 100, 1000), 1010);
    m.update_topic("a", ErrorCode::NONE, [0; 16], [(0, 1, 6)].into_iter());
    assert_eq!(m.leader(tp(a, 0)), Some(NodeId(2)));
    m.invalidate_leader(tp(a, 0));
    assert_eq!(m.leader(tp(a, 0)), None);
    assert!(m.update_requested());
    m.update_topic("a", ErrorCode::NONE, [0; 16], [(0, 1, 8)].into_iter());
    m.update_done(20);
    assert_eq!(m.leader(tp(a, 0)), Some(NodeId(1)));
    assert_eq!(m.broker(NodeId(2)).map(|b| b.port), Some(2));
}

#[test]
fn too_many_topics() {
    let mut m = meta::<4>();
    for i in 0..16 {
        let mut name: HString<8> = HString::new();
        let _ = core::fmt::write(&mut name, format_args!("t{i}"));
        m.register(&name).unwrap();
    }
    assert_eq!(
        m.register("one-more"),
        Err(RegisterError::TooManyTopics { limit: 16 })
    );
}
