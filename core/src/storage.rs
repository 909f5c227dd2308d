//! Storage: the tables that hold every run-time capacity of the core, and the types of
//! their entries.
//!
//! The core keeps its per-topic, per-partition, per-broker, per-connection and per-batch
//! state in [`Table`]s that the application chooses through a [`Storage`]: a firmware build
//! picks [`FixedStorage`] (small `heapless` arrays inside the producer, no heap), a std
//! build picks a growable table (feature `alloc`: `VecTable` and `HeapStorage`) whose
//! memory is allocated only as entries are used, up to limits far beyond any real cluster.
//!
//! A table never grows past its [`limit`](Table::limit): a full table is a typed error
//! ([`TableFull`]) that names the table and the limit, never a panic and never a silent
//! drop.
//!
//! # Entry types
//!
//! The entry types of the tables ([`Slot`], [`BatchEntry`], [`PartitionQueue`],
//! [`TopicEntry`], [`PartitionEntry`], [`Broker`], [`Connection`], [`ConnBuffers`],
//! [`Piece`], [`BatchExtra`], [`SeqEntry`]) are opaque: they are here for implementing
//! [`Storage`], which names a table type per entry type, and their sizes are what a table
//! costs per entry. The crate root re-exports the storage types themselves ([`Storage`],
//! [`FixedStorage`], `HeapStorage`, [`Limits`], [`Table`], [`TableFull`], ...).

use core::fmt;

use crate::topic::NodeId;

pub use crate::accumulator::{BatchEntry, PartitionQueue};
pub use crate::metadata::{Broker, PartitionEntry, TopicEntry};
pub use crate::pool::Slot;
pub use crate::sender::{BatchExtra, ConnBuffers, Connection, Piece, SeqEntry, TxnPartition};

/// A vector of `T` with a hard limit: the one container the core stores its state in.
///
/// Implemented for `heapless::Vec<T, N>` (limit `N`) and, with feature `alloc`, for
/// `VecTable` (limit chosen at run time, memory allocated as it grows).
pub trait Table<T>: core::ops::Deref<Target = [T]> + core::ops::DerefMut {
    /// An empty table that may hold up to `limit` entries ([`FixedTable`] and
    /// `VecTable`; a bare `heapless::Vec<T, N>` has nowhere to keep it and holds `N`).
    fn with_limit(limit: usize) -> Self
    where
        Self: Sized;
    /// Most entries the table can hold.
    fn limit(&self) -> usize;
    /// Appends `value`, or hands it back when the table is at its limit.
    fn push(&mut self, value: T) -> Result<(), T>;
    /// Keeps the first `len` entries.
    fn truncate(&mut self, len: usize);

    /// Removes every entry.
    fn clear(&mut self) {
        self.truncate(0);
    }
    /// Grows (with copies of `value`) or shrinks the table to `len` entries; `Err` leaves
    /// it unchanged when `len` is past the limit.
    fn resize(&mut self, len: usize, value: T) -> Result<(), TableFull>
    where
        T: Clone,
    {
        if len > self.limit() {
            return Err(TableFull {
                table: TableKind::Other,
                limit: self.limit(),
            });
        }
        self.truncate(len);
        while self.len() < len {
            if self.push(value.clone()).is_err() {
                break;
            }
        }
        Ok(())
    }
    /// Removes entry `index`, moving the later ones down; `None` if there is none.
    fn remove(&mut self, index: usize) -> Option<T>
    where
        T: Clone,
    {
        let len = self.len();
        let value = self.get(index)?.clone();
        if let Some(tail) = self.get_mut(index..) {
            tail.rotate_left(1);
        }
        self.truncate(len - 1);
        Some(value)
    }
    /// Keeps only the entries for which `keep` is true, in order.
    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool)
    where
        T: Clone,
    {
        let mut kept = 0;
        for i in 0..self.len() {
            if self.get(i).is_some_and(&mut keep) {
                self.swap(kept, i);
                kept += 1;
            }
        }
        self.truncate(kept);
    }
}

impl<T, const N: usize> Table<T> for heapless::Vec<T, N> {
    fn with_limit(_limit: usize) -> Self {
        Self::new()
    }
    fn limit(&self) -> usize {
        N
    }
    fn push(&mut self, value: T) -> Result<(), T> {
        heapless::Vec::push(self, value)
    }
    fn truncate(&mut self, len: usize) {
        heapless::Vec::truncate(self, len);
    }
}

/// A fixed table inline (no heap): at most `N` entries, and at most the run-time limit it
/// was made with, whichever is smaller.
#[derive(Debug, Clone)]
pub struct FixedTable<T, const N: usize> {
    items: heapless::Vec<T, N>,
    limit: usize,
}

impl<T, const N: usize> Default for FixedTable<T, N> {
    fn default() -> Self {
        Self {
            items: heapless::Vec::new(),
            limit: N,
        }
    }
}

impl<T, const N: usize> core::ops::Deref for FixedTable<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T, const N: usize> core::ops::DerefMut for FixedTable<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items
    }
}

impl<T, const N: usize> Table<T> for FixedTable<T, N> {
    fn with_limit(limit: usize) -> Self {
        Self {
            items: heapless::Vec::new(),
            limit: limit.min(N),
        }
    }
    fn limit(&self) -> usize {
        self.limit
    }
    fn push(&mut self, value: T) -> Result<(), T> {
        if self.items.len() >= self.limit {
            return Err(value);
        }
        self.items.push(value)
    }
    fn truncate(&mut self, len: usize) {
        self.items.truncate(len);
    }
}

/// Which table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableKind {
    /// Topics the producer uses ([`Limits::topics`]).
    Topics,
    /// Partitions of those topics, all together ([`Limits::partitions`]).
    Partitions,
    /// Brokers of the cluster ([`Limits::brokers`]).
    Brokers,
    /// Open connections ([`Limits::connections`]).
    Connections,
    /// Batches alive at once ([`Limits::batches`]).
    Batches,
    /// Bytes of one response ([`Limits::response_bytes`]).
    ResponseBytes,
    /// Bytes of one request's framing ([`Limits::request_bytes`]).
    RequestBytes,
    /// Any other table.
    Other,
}

impl TableKind {
    /// The [`Limits`] field (std: property-free limit, firmware: const generic) that raises
    /// this limit.
    pub const fn limit_name(self) -> &'static str {
        match self {
            Self::Topics => "topics",
            Self::Partitions => "partitions",
            Self::Brokers => "brokers",
            Self::Connections => "connections",
            Self::Batches => "batches",
            Self::ResponseBytes => "response_bytes",
            Self::RequestBytes => "request_bytes",
            Self::Other => "other",
        }
    }
}

/// A table reached its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull {
    /// Which table.
    pub table: TableKind,
    /// Its limit, in entries (bytes for the byte buffers).
    pub limit: usize,
}

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} table is full at {} entries (raise Limits::{} or the storage's capacity)",
            self.table.limit_name(),
            self.limit,
            self.table.limit_name()
        )
    }
}

impl core::error::Error for TableFull {}

/// The run-time limits of a producer's tables, in entries (bytes for the two buffers).
///
/// With [`FixedStorage`] a limit is also capped by the storage's const capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Topics in use at once (idle ones are dropped after `metadata.max.idle.ms`).
    pub topics: usize,
    /// Partitions over all topics in use.
    pub partitions: usize,
    /// Brokers kept from metadata.
    pub brokers: usize,
    /// Connections open at once (one per broker sent to, plus one for metadata).
    pub connections: usize,
    /// Batches alive at once (queued, in flight, or with an outcome not yet polled).
    pub batches: usize,
    /// Largest response frame accepted, in bytes (Kafka's default
    /// `socket.request.max.bytes` is 100 MiB).
    pub response_bytes: usize,
    /// Largest request framing (headers, topic and partition fields, whole Metadata and
    /// InitProducerId requests), in bytes.
    pub request_bytes: usize,
}

impl Limits {
    /// Limits beyond any real cluster, for growable storage: entries are only paid for when
    /// used. 65,535 topics, 1,048,576 partitions, 65,535 brokers and connections, 1,048,576
    /// batches, 100 MiB responses, 64 MiB request framing.
    pub const UNBOUNDED: Self = Self {
        topics: u16::MAX as usize,
        partitions: 1 << 20,
        brokers: u16::MAX as usize,
        connections: u16::MAX as usize,
        batches: 1 << 20,
        response_bytes: 100 << 20,
        request_bytes: 64 << 20,
    };
}

/// The table types of a producer: one per kind of state, chosen by the application.
///
/// The entry types are opaque; their sizes are what a table costs per entry.
pub trait Storage {
    /// Buffer pool slots (one per `batch.size` of `buffer.memory`).
    type Slots: Table<Slot>;
    /// Batches alive at once.
    type Batches: Table<BatchEntry>;
    /// Partition queues of the accumulator (one per partition appended to).
    type Queues: Table<PartitionQueue>;
    /// Topics in use.
    type Topics: Table<TopicEntry>;
    /// Partitions of the topics in use.
    type Partitions: Table<PartitionEntry>;
    /// The partitions with a leader, per topic (one `i32` per partition).
    type Available: Table<i32>;
    /// Brokers from metadata.
    type Brokers: Table<Broker>;
    /// Brokers with batches ready to send (one per broker).
    type Nodes: Table<NodeId>;
    /// Connections.
    type Connections: Table<Connection>;
    /// Connection buffers (one per connection).
    type Buffers: Table<ConnBuffers<Self>>;
    /// Pieces of one request (framing slices between its batches).
    type Pieces: Table<Piece>;
    /// A connection's receive buffer (grows to the largest response frame).
    type Recv: Table<u8>;
    /// A connection's request scratch (grows to the largest request framing).
    type Scratch: Table<u8>;
    /// The sender's state per batch.
    type Extras: Table<BatchExtra>;
    /// Idempotent sequence numbers per partition.
    type Sequences: Table<SeqEntry>;
    /// The partitions of the ongoing transaction (transactional producers).
    type TxnPartitions: Table<TxnPartition>;
    /// The consumed offsets of one `send_offsets_to_transaction` call (each takes its
    /// topic's length plus 16 bytes), at most `Limits::request_bytes`.
    type TxnOffsets: Table<u8>;
}

/// Bytes of [`FixedStorage`]'s table of consumed offsets (`send_offsets_to_transaction`):
/// about ten offsets of a 10-byte topic name.
pub const FIXED_TXN_OFFSETS_BYTES: usize = 256;

/// The transaction's partition table of [`FixedStorage`]: empty without the `transactions`
/// feature.
#[cfg(feature = "transactions")]
type FixedTxnPartitions<const PARTITIONS: usize> = FixedTable<TxnPartition, PARTITIONS>;
#[cfg(not(feature = "transactions"))]
type FixedTxnPartitions<const PARTITIONS: usize> = FixedTable<TxnPartition, 0>;
#[cfg(feature = "transactions")]
type FixedTxnOffsets = FixedTable<u8, FIXED_TXN_OFFSETS_BYTES>;
#[cfg(not(feature = "transactions"))]
type FixedTxnOffsets = FixedTable<u8, 0>;

/// Storage of fixed capacity inside the producer, without heap (firmware): at most
/// `TOPICS` topics, `PARTITIONS` partitions (all topics together), `BROKERS` brokers,
/// `CONNECTIONS` connections, `BATCHES` batches (and `BATCHES` pool slots), requests of at
/// most `BATCHES` batches, `RESPONSE` bytes per response and `REQUEST` bytes of request
/// framing per connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedStorage<
    const TOPICS: usize,
    const PARTITIONS: usize,
    const BROKERS: usize,
    const CONNECTIONS: usize,
    const BATCHES: usize,
    const RESPONSE: usize,
    const REQUEST: usize,
>;

impl<
    const TOPICS: usize,
    const PARTITIONS: usize,
    const BROKERS: usize,
    const CONNECTIONS: usize,
    const BATCHES: usize,
    const RESPONSE: usize,
    const REQUEST: usize,
> Storage for FixedStorage<TOPICS, PARTITIONS, BROKERS, CONNECTIONS, BATCHES, RESPONSE, REQUEST>
{
    type Slots = FixedTable<Slot, BATCHES>;
    type Batches = FixedTable<BatchEntry, BATCHES>;
    type Queues = FixedTable<PartitionQueue, PARTITIONS>;
    type Topics = FixedTable<TopicEntry, TOPICS>;
    type Partitions = FixedTable<PartitionEntry, PARTITIONS>;
    type Available = FixedTable<i32, PARTITIONS>;
    type Brokers = FixedTable<Broker, BROKERS>;
    type Nodes = FixedTable<NodeId, BROKERS>;
    type Connections = FixedTable<Connection, CONNECTIONS>;
    type Buffers = FixedTable<ConnBuffers<Self>, CONNECTIONS>;
    type Pieces = FixedTable<Piece, BATCHES>;
    type Recv = FixedTable<u8, RESPONSE>;
    type Scratch = FixedTable<u8, REQUEST>;
    type Extras = FixedTable<BatchExtra, BATCHES>;
    type Sequences = FixedTable<SeqEntry, PARTITIONS>;
    type TxnPartitions = FixedTxnPartitions<PARTITIONS>;
    /// [`FIXED_TXN_OFFSETS_BYTES`]: a few offsets, not a request-sized buffer that every
    /// producer would carry.
    type TxnOffsets = FixedTxnOffsets;
}

#[cfg(feature = "alloc")]
mod heap {
    extern crate alloc;
    use alloc::vec::Vec;

    use super::{
        BatchEntry, BatchExtra, Broker, ConnBuffers, Connection, NodeId, PartitionEntry,
        PartitionQueue, Piece, SeqEntry, Slot, Storage, Table, TopicEntry, TxnPartition,
    };

    /// A growable table on the heap with a run-time limit: memory is allocated as entries
    /// are pushed (amortised doubling), never up front.
    #[derive(Debug, Clone, Default)]
    pub struct VecTable<T> {
        items: Vec<T>,
        limit: usize,
    }

    impl<T> core::ops::Deref for VecTable<T> {
        type Target = [T];
        fn deref(&self) -> &[T] {
            &self.items
        }
    }

    impl<T> core::ops::DerefMut for VecTable<T> {
        fn deref_mut(&mut self) -> &mut [T] {
            &mut self.items
        }
    }

    impl<T> Table<T> for VecTable<T> {
        fn with_limit(limit: usize) -> Self {
            Self {
                items: Vec::new(),
                limit,
            }
        }
        fn limit(&self) -> usize {
            self.limit
        }
        fn push(&mut self, value: T) -> Result<(), T> {
            if self.items.len() >= self.limit {
                return Err(value);
            }
            self.items.push(value);
            Ok(())
        }
        fn truncate(&mut self, len: usize) {
            self.items.truncate(len);
        }
        fn resize(&mut self, len: usize, value: T) -> Result<(), super::TableFull>
        where
            T: Clone,
        {
            if len > self.limit {
                return Err(super::TableFull {
                    table: super::TableKind::Other,
                    limit: self.limit,
                });
            }
            self.items.resize(len, value);
            Ok(())
        }
        fn remove(&mut self, index: usize) -> Option<T>
        where
            T: Clone,
        {
            (index < self.items.len()).then(|| self.items.remove(index))
        }
    }

    /// Growable heap storage for hosts (std, wasm): every table is a [`VecTable`].
    #[derive(Debug, Clone, Copy, Default)]
    pub struct HeapStorage;

    impl Storage for HeapStorage {
        type Slots = VecTable<Slot>;
        type Batches = VecTable<BatchEntry>;
        type Queues = VecTable<PartitionQueue>;
        type Topics = VecTable<TopicEntry>;
        type Partitions = VecTable<PartitionEntry>;
        type Available = VecTable<i32>;
        type Brokers = VecTable<Broker>;
        type Nodes = VecTable<NodeId>;
        type Connections = VecTable<Connection>;
        type Buffers = VecTable<ConnBuffers<Self>>;
        type Pieces = VecTable<Piece>;
        type Recv = VecTable<u8>;
        type Scratch = VecTable<u8>;
        type Extras = VecTable<BatchExtra>;
        type Sequences = VecTable<SeqEntry>;
        type TxnPartitions = VecTable<TxnPartition>;
        type TxnOffsets = VecTable<u8>;
    }
}

#[cfg(feature = "alloc")]
pub use heap::{HeapStorage, VecTable};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_table_keeps_the_smaller_of_its_capacity_and_limit() {
        let mut t = FixedTable::<u8, 4>::with_limit(2);
        assert_eq!(t.limit(), 2);
        assert_eq!(t.push(1), Ok(()));
        assert_eq!(t.push(2), Ok(()));
        assert_eq!(t.push(3), Err(3));
        let mut t = FixedTable::<u8, 2>::with_limit(usize::MAX);
        assert_eq!(t.limit(), 2);
        assert!(t.resize(2, 0).is_ok());
        assert!(t.resize(3, 0).is_err());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn remove_and_retain_keep_order() {
        let mut t = FixedTable::<u8, 8>::with_limit(8);
        for i in 0..6 {
            t.push(i).unwrap();
        }
        assert_eq!(Table::remove(&mut t, 1), Some(1));
        assert_eq!(&t[..], &[0, 2, 3, 4, 5]);
        t.retain(|&x| x % 2 == 0);
        assert_eq!(&t[..], &[0, 2, 4]);
        assert_eq!(Table::remove(&mut t, 9), None);
    }
}
