//! Kafka's error codes, with what a producer does about each.
//!
//! Source: Kafka's `Errors.java` (codes, names) and the exception hierarchy under
//! `org.apache.kafka.common.errors`: a code is retriable when its exception extends
//! `RetriableException`, and calls for a metadata refresh when it extends
//! `InvalidMetadataException`.

use core::fmt;

/// What a producer does with a batch (or the whole producer) after a broker error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// No error.
    None,
    /// Retry after refreshing metadata: the leader moved or the topic is not known yet
    /// (Java's `InvalidMetadataException` subclasses, plus `UNKNOWN_LEADER_EPOCH`).
    RetriableWithMetadataRefresh,
    /// Retry as is after the backoff.
    Retriable,
    /// The batch is too large for the broker: split it and resend (if it holds more than one
    /// record; otherwise it fails).
    MessageTooLarge,
    /// The broker already has this batch: it counts as delivered.
    DuplicateSequence,
    /// The idempotent producer's sequence state is broken: bump the epoch (or reset the
    /// producer id) and resend.
    SequenceError,
    /// This batch fails; the producer carries on.
    FatalForBatch,
    /// The producer cannot carry on (authorization, fencing, unsupported version).
    FatalForProducer,
}

/// A broker error code (`INT16`). Unknown codes stay representable: they are named
/// `"UNKNOWN"` and treated as fatal for the batch, as Java maps them to
/// `UNKNOWN_SERVER_ERROR`.
///
/// ```
/// use kafka_edge_core::protocol::{ErrorClass, ErrorCode};
/// let e = ErrorCode(6);
/// assert_eq!(e, ErrorCode::NOT_LEADER_OR_FOLLOWER);
/// assert_eq!(e.name(), "NOT_LEADER_OR_FOLLOWER");
/// assert!(e.is_retriable());
/// assert_eq!(e.class(), ErrorClass::RetriableWithMetadataRefresh);
/// assert_eq!(ErrorCode(999).name(), "UNKNOWN");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ErrorCode(pub i16);

macro_rules! error_codes {
    ($($name:ident = $code:literal, $class:ident, $msg:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($code), "`: ", $msg)]
                pub const $name: Self = Self($code);
            )*

            /// Every code this crate knows, in order.
            pub const KNOWN: &'static [Self] = &[$(Self::$name),*];

            /// `(name, message, class)` of a known code.
            const fn info(self) -> Option<(&'static str, &'static str, ErrorClass)> {
                match self.0 {
                    $($code => Some((stringify!($name), $msg, ErrorClass::$class)),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    UNKNOWN_SERVER_ERROR = -1, FatalForBatch, "The server experienced an unexpected error when processing the request.";
    NONE = 0, None, "No error.";
    OFFSET_OUT_OF_RANGE = 1, FatalForBatch, "The requested offset is not within the range of offsets maintained by the server.";
    CORRUPT_MESSAGE = 2, Retriable, "The message failed its CRC check, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.";
    UNKNOWN_TOPIC_OR_PARTITION = 3, RetriableWithMetadataRefresh, "This server does not host this topic-partition.";
    INVALID_FETCH_SIZE = 4, FatalForBatch, "The requested fetch size is invalid.";
    LEADER_NOT_AVAILABLE = 5, RetriableWithMetadataRefresh, "There is no leader for this topic-partition as a leadership election is in progress.";
    NOT_LEADER_OR_FOLLOWER = 6, RetriableWithMetadataRefresh, "This broker is not the leader (or not a replica) of the topic-partition.";
    REQUEST_TIMED_OUT = 7, Retriable, "The request timed out.";
    BROKER_NOT_AVAILABLE = 8, FatalForBatch, "The broker is not available.";
    REPLICA_NOT_AVAILABLE = 9, RetriableWithMetadataRefresh, "The replica is not available for the requested topic-partition.";
    MESSAGE_TOO_LARGE = 10, MessageTooLarge, "The request included a message larger than the max message size the server will accept.";
    STALE_CONTROLLER_EPOCH = 11, FatalForBatch, "The controller moved to another broker.";
    OFFSET_METADATA_TOO_LARGE = 12, FatalForBatch, "The metadata field of the offset request was too large.";
    NETWORK_EXCEPTION = 13, RetriableWithMetadataRefresh, "The server disconnected before a response was received.";
    COORDINATOR_LOAD_IN_PROGRESS = 14, Retriable, "The coordinator is loading and hence can't process requests.";
    COORDINATOR_NOT_AVAILABLE = 15, Retriable, "The coordinator is not available.";
    NOT_COORDINATOR = 16, Retriable, "This is not the correct coordinator.";
    INVALID_TOPIC_EXCEPTION = 17, FatalForBatch, "The request attempted to perform an operation on an invalid topic.";
    RECORD_LIST_TOO_LARGE = 18, FatalForBatch, "The request included a message batch larger than the configured segment size on the server.";
    NOT_ENOUGH_REPLICAS = 19, Retriable, "Messages are rejected since there are fewer in-sync replicas than required.";
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20, Retriable, "Messages are written to the log, but to fewer in-sync replicas than required.";
    INVALID_REQUIRED_ACKS = 21, FatalForBatch, "Produce request specified an invalid value for required acks.";
    ILLEGAL_GENERATION = 22, FatalForBatch, "Specified group generation id is not valid.";
    INCONSISTENT_GROUP_PROTOCOL = 23, FatalForBatch, "The group member's supported protocols are incompatible with those of existing members.";
    INVALID_GROUP_ID = 24, FatalForBatch, "The configured groupId is invalid.";
    UNKNOWN_MEMBER_ID = 25, FatalForBatch, "The coordinator is not aware of this member.";
    INVALID_SESSION_TIMEOUT = 26, FatalForBatch, "The session timeout is not within the range allowed by the broker.";
    REBALANCE_IN_PROGRESS = 27, FatalForBatch, "The group is rebalancing, so a rejoin is needed.";
    INVALID_COMMIT_OFFSET_SIZE = 28, FatalForBatch, "The committing offset data size is not valid.";
    TOPIC_AUTHORIZATION_FAILED = 29, FatalForBatch, "Topic authorization failed.";
    GROUP_AUTHORIZATION_FAILED = 30, FatalForBatch, "Group authorization failed.";
    CLUSTER_AUTHORIZATION_FAILED = 31, FatalForProducer, "Cluster authorization failed.";
    INVALID_TIMESTAMP = 32, FatalForBatch, "The timestamp of the message is out of acceptable range.";
    UNSUPPORTED_SASL_MECHANISM = 33, FatalForProducer, "The broker does not support the requested SASL mechanism.";
    ILLEGAL_SASL_STATE = 34, FatalForProducer, "Request is not valid given the current SASL state.";
    UNSUPPORTED_VERSION = 35, FatalForProducer, "The version of API is not supported.";
    TOPIC_ALREADY_EXISTS = 36, FatalForBatch, "Topic with this name already exists.";
    INVALID_PARTITIONS = 37, FatalForBatch, "Number of partitions is below 1.";
    INVALID_REPLICATION_FACTOR = 38, FatalForBatch, "Replication factor is below 1 or larger than the number of available brokers.";
    INVALID_REPLICA_ASSIGNMENT = 39, FatalForBatch, "Replica assignment is invalid.";
    INVALID_CONFIG = 40, FatalForBatch, "Configuration is invalid.";
    NOT_CONTROLLER = 41, Retriable, "This is not the correct controller for this cluster.";
    INVALID_REQUEST = 42, FatalForBatch, "The request is malformed or was sent to an incompatible broker.";
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43, FatalForProducer, "The message format version on the broker does not support the request.";
    POLICY_VIOLATION = 44, FatalForBatch, "Request parameters do not satisfy the configured policy.";
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45, SequenceError, "The broker received an out of order sequence number.";
    DUPLICATE_SEQUENCE_NUMBER = 46, DuplicateSequence, "The broker received a duplicate sequence number.";
    INVALID_PRODUCER_EPOCH = 47, SequenceError, "Producer attempted to produce with an old epoch.";
    INVALID_TXN_STATE = 48, FatalForProducer, "The producer attempted a transactional operation in an invalid state.";
    INVALID_PRODUCER_ID_MAPPING = 49, FatalForProducer, "The producer id is not currently assigned to its transactional id.";
    INVALID_TRANSACTION_TIMEOUT = 50, FatalForProducer, "The transaction timeout is larger than the maximum the broker allows.";
    CONCURRENT_TRANSACTIONS = 51, Retriable, "Another operation on the same transaction was ongoing.";
    TRANSACTION_COORDINATOR_FENCED = 52, FatalForProducer, "The transaction coordinator is no longer the current coordinator for the producer.";
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53, FatalForProducer, "Transactional Id authorization failed.";
    SECURITY_DISABLED = 54, FatalForBatch, "Security features are disabled.";
    OPERATION_NOT_ATTEMPTED = 55, FatalForBatch, "The broker did not attempt to execute this operation.";
    KAFKA_STORAGE_ERROR = 56, RetriableWithMetadataRefresh, "Disk error when trying to access log file on the disk.";
    LOG_DIR_NOT_FOUND = 57, FatalForBatch, "The user-specified log directory is not found in the broker config.";
    SASL_AUTHENTICATION_FAILED = 58, FatalForProducer, "SASL Authentication failed.";
    UNKNOWN_PRODUCER_ID = 59, SequenceError, "The broker could not locate the producer metadata associated with the producer id.";
    REASSIGNMENT_IN_PROGRESS = 60, FatalForBatch, "A partition reassignment is in progress.";
    DELEGATION_TOKEN_AUTH_DISABLED = 61, FatalForBatch, "Delegation Token feature is not enabled.";
    DELEGATION_TOKEN_NOT_FOUND = 62, FatalForBatch, "Delegation Token is not found on server.";
    DELEGATION_TOKEN_OWNER_MISMATCH = 63, FatalForBatch, "Specified Principal is not valid Owner/Renewer.";
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64, FatalForBatch, "Delegation Token requests are not allowed on this channel.";
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65, FatalForBatch, "Delegation Token authorization failed.";
    DELEGATION_TOKEN_EXPIRED = 66, FatalForBatch, "Delegation Token is expired.";
    INVALID_PRINCIPAL_TYPE = 67, FatalForBatch, "Supplied principalType is not supported.";
    NON_EMPTY_GROUP = 68, FatalForBatch, "The group is not empty.";
    GROUP_ID_NOT_FOUND = 69, FatalForBatch, "The group id does not exist.";
    FETCH_SESSION_ID_NOT_FOUND = 70, Retriable, "The fetch session ID was not found.";
    INVALID_FETCH_SESSION_EPOCH = 71, Retriable, "The fetch session epoch is invalid.";
    LISTENER_NOT_FOUND = 72, RetriableWithMetadataRefresh, "There is no listener on the leader broker that matches the listener of the metadata request.";
    TOPIC_DELETION_DISABLED = 73, FatalForBatch, "Topic deletion is disabled.";
    FENCED_LEADER_EPOCH = 74, RetriableWithMetadataRefresh, "The leader epoch in the request is older than the epoch on the broker.";
    UNKNOWN_LEADER_EPOCH = 75, RetriableWithMetadataRefresh, "The leader epoch in the request is newer than the epoch on the broker.";
    UNSUPPORTED_COMPRESSION_TYPE = 76, FatalForBatch, "The requesting client does not support the compression type of given partition.";
    STALE_BROKER_EPOCH = 77, FatalForBatch, "Broker epoch has changed.";
    OFFSET_NOT_AVAILABLE = 78, Retriable, "The leader high watermark has not caught up from a recent leader election.";
    MEMBER_ID_REQUIRED = 79, FatalForBatch, "The group member needs to have a valid member id.";
    PREFERRED_LEADER_NOT_AVAILABLE = 80, RetriableWithMetadataRefresh, "The preferred leader was not available.";
    GROUP_MAX_SIZE_REACHED = 81, FatalForBatch, "The consumer group has reached its max size.";
    FENCED_INSTANCE_ID = 82, FatalForBatch, "Another consumer with the same group.instance.id has registered with a different member.id.";
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83, RetriableWithMetadataRefresh, "Eligible topic partition leaders are not available.";
    ELECTION_NOT_NEEDED = 84, RetriableWithMetadataRefresh, "Leader election not needed for topic partition.";
    NO_REASSIGNMENT_IN_PROGRESS = 85, FatalForBatch, "No partition reassignment is in progress.";
    GROUP_SUBSCRIBED_TO_TOPIC = 86, FatalForBatch, "Deleting offsets of a topic is forbidden while the consumer group is subscribed to it.";
    INVALID_RECORD = 87, FatalForBatch, "This record has failed the validation on broker and hence will be rejected.";
    UNSTABLE_OFFSET_COMMIT = 88, Retriable, "There are unstable offsets that need to be cleared.";
    THROTTLING_QUOTA_EXCEEDED = 89, Retriable, "The throttling quota has been exceeded.";
    PRODUCER_FENCED = 90, FatalForProducer, "There is a newer producer with the same transactionalId which fences the current one.";
    RESOURCE_NOT_FOUND = 91, FatalForBatch, "A request illegally referred to a resource that does not exist.";
    DUPLICATE_RESOURCE = 92, FatalForBatch, "A request illegally referred to the same resource twice.";
    UNACCEPTABLE_CREDENTIAL = 93, FatalForBatch, "Requested credential would not meet criteria for acceptability.";
    INCONSISTENT_VOTER_SET = 94, FatalForBatch, "The sender or recipient of a voter-only request is not one of the expected voters.";
    INVALID_UPDATE_VERSION = 95, FatalForBatch, "The given update version was invalid.";
    FEATURE_UPDATE_FAILED = 96, FatalForBatch, "Unable to update finalized features due to an unexpected server error.";
    PRINCIPAL_DESERIALIZATION_FAILURE = 97, FatalForBatch, "Request principal deserialization failed during forwarding.";
    SNAPSHOT_NOT_FOUND = 98, FatalForBatch, "Requested snapshot was not found.";
    POSITION_OUT_OF_RANGE = 99, FatalForBatch, "Requested position is not greater than or equal to zero, and less than the size of the snapshot.";
    UNKNOWN_TOPIC_ID = 100, RetriableWithMetadataRefresh, "This server does not host this topic ID.";
    DUPLICATE_BROKER_REGISTRATION = 101, FatalForBatch, "This broker ID is already in use.";
    BROKER_ID_NOT_REGISTERED = 102, FatalForBatch, "The given broker ID was not registered.";
    INCONSISTENT_TOPIC_ID = 103, RetriableWithMetadataRefresh, "The log's topic ID did not match the topic ID in the request.";
    INCONSISTENT_CLUSTER_ID = 104, FatalForBatch, "The clusterId in the request does not match that found on the server.";
    TRANSACTIONAL_ID_NOT_FOUND = 105, FatalForBatch, "The transactionalId could not be found.";
    FETCH_SESSION_TOPIC_ID_ERROR = 106, Retriable, "The fetch session encountered inconsistent topic ID usage.";
    INELIGIBLE_REPLICA = 107, FatalForBatch, "The new ISR contains at least one ineligible replica.";
    NEW_LEADER_ELECTED = 108, FatalForBatch, "The AlterPartition request updated the partition state but the leader has changed.";
    OFFSET_MOVED_TO_TIERED_STORAGE = 109, FatalForBatch, "The requested offset is moved to tiered storage.";
    FENCED_MEMBER_EPOCH = 110, FatalForBatch, "The member epoch is fenced by the group coordinator.";
    UNRELEASED_INSTANCE_ID = 111, FatalForBatch, "The instance ID is still used by another member in the consumer group.";
    UNSUPPORTED_ASSIGNOR = 112, FatalForBatch, "The assignor or its version range is not supported by the consumer group.";
    STALE_MEMBER_EPOCH = 113, FatalForBatch, "The member epoch is stale.";
    MISMATCHED_ENDPOINT_TYPE = 114, FatalForBatch, "The request was sent to an endpoint of the wrong type.";
    UNSUPPORTED_ENDPOINT_TYPE = 115, FatalForBatch, "This endpoint type is not supported yet.";
    UNKNOWN_CONTROLLER_ID = 116, FatalForBatch, "This controller ID is not known.";
    UNKNOWN_SUBSCRIPTION_ID = 117, FatalForBatch, "Client sent a push telemetry request with an invalid or outdated subscription ID.";
    TELEMETRY_TOO_LARGE = 118, FatalForBatch, "Client sent a push telemetry request larger than the maximum size the broker will accept.";
    INVALID_REGISTRATION = 119, FatalForBatch, "The controller has considered the broker registration to be invalid.";
    TRANSACTION_ABORTABLE = 120, FatalForBatch, "The server encountered an error with the transaction; the client can abort the transaction.";
    INVALID_RECORD_STATE = 121, FatalForBatch, "The record state is invalid.";
    SHARE_SESSION_NOT_FOUND = 122, Retriable, "The share session was not found.";
    INVALID_SHARE_SESSION_EPOCH = 123, Retriable, "The share session epoch is invalid.";
    FENCED_STATE_EPOCH = 124, FatalForBatch, "The share-group state epoch did not match.";
    INVALID_VOTER_KEY = 125, FatalForBatch, "The voter key doesn't match the receiving replica's key.";
    DUPLICATE_VOTER = 126, FatalForBatch, "The voter is already part of the set of voters.";
    VOTER_NOT_FOUND = 127, FatalForBatch, "The voter is not part of the set of voters.";
    INVALID_REGULAR_EXPRESSION = 128, FatalForBatch, "The regular expression is not valid.";
    REBOOTSTRAP_REQUIRED = 129, FatalForBatch, "Client metadata is stale, client should rebootstrap to obtain new metadata.";
    STREAMS_INVALID_TOPOLOGY = 130, FatalForBatch, "The supplied topology is invalid.";
    STREAMS_INVALID_TOPOLOGY_EPOCH = 131, FatalForBatch, "The supplied topology epoch is invalid.";
    STREAMS_TOPOLOGY_FENCED = 132, FatalForBatch, "The supplied topology epoch is outdated.";
    SHARE_SESSION_LIMIT_REACHED = 133, Retriable, "The limit of share sessions has been reached.";
}

impl ErrorCode {
    /// The code on the wire.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// Whether this is [`ErrorCode::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// Whether this crate knows the code.
    pub const fn is_known(self) -> bool {
        self.info().is_some()
    }

    /// Kafka's constant name (`"NOT_LEADER_OR_FOLLOWER"`), or `"UNKNOWN"`.
    pub const fn name(self) -> &'static str {
        match self.info() {
            Some((name, _, _)) => name,
            None => "UNKNOWN",
        }
    }

    /// A short description.
    pub const fn message(self) -> &'static str {
        match self.info() {
            Some((_, msg, _)) => msg,
            None => "An error code this client does not know.",
        }
    }

    /// What a producer does about it.
    pub const fn class(self) -> ErrorClass {
        match self.info() {
            Some((_, _, class)) => class,
            None => ErrorClass::FatalForBatch,
        }
    }

    /// Whether Java's exception for it is a `RetriableException`.
    pub const fn is_retriable(self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Retriable | ErrorClass::RetriableWithMetadataRefresh
        )
    }

    /// `Ok(())` for [`NONE`](Self::NONE), `Err(self)` otherwise.
    pub const fn into_result(self) -> Result<(), Self> {
        if self.is_none() { Ok(()) } else { Err(self) }
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        Self(code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.0, self.message())
    }
}

impl core::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn test_known_codes_are_contiguous_and_named() {
        // Errors.java numbers its codes -1, 0, 1, ... without gaps.
        for (i, e) in ErrorCode::KNOWN.iter().enumerate() {
            assert_eq!(i64::from(e.0), i as i64 - 1);
            assert!(e.is_known());
            assert_ne!(e.name(), "UNKNOWN");
        }
        assert!(ErrorCode::KNOWN.len() >= 122);
    }

    #[test]
    fn test_classes_follow_java() {
        use ErrorClass::*;
        for (e, class, retriable) in [
            (ErrorCode::NONE, None, false),
            (
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                RetriableWithMetadataRefresh,
                true,
            ),
            (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                RetriableWithMetadataRefresh,
                true,
            ),
            (
                ErrorCode::KAFKA_STORAGE_ERROR,
                RetriableWithMetadataRefresh,
                true,
            ),
            (
                ErrorCode::NETWORK_EXCEPTION,
                RetriableWithMetadataRefresh,
                true,
            ),
            (
                ErrorCode::UNKNOWN_TOPIC_ID,
                RetriableWithMetadataRefresh,
                true,
            ),
            (ErrorCode::REQUEST_TIMED_OUT, Retriable, true),
            (ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, Retriable, true),
            (ErrorCode::CORRUPT_MESSAGE, Retriable, true),
            (ErrorCode::MESSAGE_TOO_LARGE, MessageTooLarge, false),
            (
                ErrorCode::DUPLICATE_SEQUENCE_NUMBER,
                DuplicateSequence,
                false,
            ),
            (
                ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                SequenceError,
                false,
            ),
            (ErrorCode::UNKNOWN_PRODUCER_ID, SequenceError, false),
            (ErrorCode::INVALID_PRODUCER_EPOCH, SequenceError, false),
            (ErrorCode::INVALID_RECORD, FatalForBatch, false),
            (ErrorCode::RECORD_LIST_TOO_LARGE, FatalForBatch, false),
            (ErrorCode::TOPIC_AUTHORIZATION_FAILED, FatalForBatch, false),
            (
                ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
                FatalForProducer,
                false,
            ),
            (ErrorCode::PRODUCER_FENCED, FatalForProducer, false),
            (ErrorCode::UNSUPPORTED_VERSION, FatalForProducer, false),
            (ErrorCode(-2), FatalForBatch, false),
            (ErrorCode(i16::MAX), FatalForBatch, false),
        ] {
            assert_eq!(e.class(), class, "{e}");
            assert_eq!(e.is_retriable(), retriable, "{e}");
        }
    }

    #[test]
    fn test_display() {
        assert_eq!(
            ErrorCode::UNSUPPORTED_VERSION.to_string(),
            "UNSUPPORTED_VERSION (35): The version of API is not supported."
        );
        assert_eq!(ErrorCode::TRANSACTION_ABORTABLE.0, 120);
        assert_eq!(ErrorCode::NONE.into_result(), Ok(()));
        assert_eq!(
            ErrorCode(3).into_result(),
            Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
    }
}
