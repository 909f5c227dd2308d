//! The kafka-edge producer for microcontrollers and other async hosts: the core's driver
//! contract run over [`embedded_io_async`] connections, with no heap, no std and no
//! executor assumed.
//!
//! The application brings three things:
//!
//! - the core [`Producer`](kafka_edge_core::Producer) (configured, with its pool and its
//!   [`FixedStorage`](kafka_edge_core::FixedStorage) tables), usually in a `static`;
//! - `N` reusable [`Connection`]s (a TCP socket of its network stack each: embassy-net's
//!   `TcpSocket`, a tokio `TcpStream` through `embedded-io-adapters`, ...): the core's
//!   connection `i` runs on connection `i`;
//! - a [`Clock`]: monotonic milliseconds and a way to sleep until an instant.
//!
//! [`Producer::send`] gives a record's delivery outcome; [`Producer::enqueue`] accepts a
//! record and returns at once (its outcome reaches the outcome handler), for many records
//! in flight; [`Producer::poll`], [`Producer::flush`] and [`Producer::close`] drive the I/O.
//! Every method runs on the task that calls it: there is no background task, so a producer
//! only makes progress while one of its methods is awaited.
//!
//! ```text
//! send/enqueue -> core.send ──────────────┐
//! poll/flush/close: one turn after another ▼
//!   handle_timeout (when due) -> core.drain(Transport = this driver's sockets)
//!   -> open the connections the core asked for (bounded by socket.connection.setup.timeout.ms)
//!   -> wait for the first of: bytes read on any connection, bytes written from a
//!      connection's send buffer, the core's next timeout
//!   -> handle_received / handle_writable / handle_closed
//! ```
#![no_std]
// The traits are implemented by single-threaded network stacks: no `Send` bound is wanted
// on their futures.
#![allow(async_fn_in_trait)]

use core::fmt;
use core::future::pending;
use core::pin::{Pin, pin};

use embassy_futures::select::{Either, select, select_slice};
use embedded_io_async::{Error as _, ErrorKind, Read, Write};
use heapless::String;
use kafka_edge_core::record::{Compressor, NoCompression};
use kafka_edge_core::storage::Storage;
use kafka_edge_core::{
    BrokerRef, ConnId, MAX_HOST_LEN, ProduceError, ProducerRecord, SendError, Ticket, TicketRange,
    Transmit, Transport,
};

/// The core producer this driver runs (`S`: pool storage, `St`: table storage, `Z`: the
/// compressor, none by default; with the core's feature `lz4`, its heap-free
/// `record::Lz4`).
pub type CoreProducer<S, St, Z = NoCompression> = kafka_edge_core::Producer<S, St, Z>;

/// Monotonic time, and waiting for an instant, from the application's timer.
pub trait Clock {
    /// Milliseconds since any fixed instant (boot), never going back.
    fn now_ms(&self) -> u64;
    /// Completes at or after `deadline_ms` (on the [`now_ms`](Self::now_ms) scale). Must be
    /// cancel-safe: dropping it before it completes has no effect.
    async fn sleep_until(&self, deadline_ms: u64);
}

/// One reusable TCP connection of the application's network stack.
///
/// The driver opens it with [`connect`](Self::connect) when the core asks for a
/// connection, reads and writes it through [`split`](Self::split) halves at the same
/// time, and [`close`](Self::close)s it when the core or the peer is done with it; then it
/// may be connected again (to another broker).
///
/// Cancel safety: the driver waits on a read of every connection and a write of those
/// with bytes to send at once, and drops the ones that did not finish. A read or write
/// future dropped before it completed must have taken no bytes (embassy-net's TCP halves
/// and tokio's streams behave so).
pub trait Connection {
    /// Why a connection could not be opened.
    type ConnectError: fmt::Debug;
    /// The reading half.
    type Reader<'a>: Read
    where
        Self: 'a;
    /// The writing half.
    type Writer<'a>: Write
    where
        Self: 'a;

    /// Connects to the broker at `host:port` as the cluster advertises it (`broker` names
    /// it by node id, or by its place in `bootstrap.servers`). The application maps the
    /// address to one its stack can reach (firmware usually has no DNS). Called only on a
    /// closed connection (after [`close`](Self::close), or never opened). The driver bounds
    /// it by `socket.connection.setup.timeout.ms` and drops it when that passes: it must
    /// leave the connection closable.
    async fn connect(
        &mut self,
        broker: BrokerRef,
        host: &str,
        port: u16,
    ) -> Result<(), Self::ConnectError>;

    /// The two halves of an open connection.
    fn split(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>);

    /// Closes the connection at once (bytes not yet sent may be dropped).
    fn close(&mut self);
}

/// Where a delivered batch's records landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Offset of the first record of the range (-1 when unknown: `acks=0`).
    pub base_offset: i64,
    /// The broker's append time with `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
}

/// The outcome of a range of records (one batch, or part of a split batch): every accepted
/// record is in exactly one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The records: compare a [`Ticket`] from [`Producer::enqueue`] with
    /// [`TicketRange::contains`].
    pub tickets: TicketRange,
    /// Delivered, or why not.
    pub result: Result<Delivered, ProduceError>,
}

impl Outcome<'_> {
    /// The offset of `ticket`'s record when it is in this outcome and was delivered with a
    /// known offset.
    pub fn offset_of(&self, ticket: Ticket) -> Option<i64> {
        let d = self.result.ok()?;
        (self.tickets.contains(ticket) && d.base_offset >= 0)
            .then(|| d.base_offset + i64::from(ticket.index() - self.tickets.first_index()))
    }
}

/// Receives every [`Outcome`]: any `FnMut(&Outcome)` closure, or a named type (which a
/// `static` can hold, where a closure's type cannot be named).
pub trait OnOutcome {
    /// One outcome, as the core reports it.
    fn on_outcome(&mut self, outcome: &Outcome<'_>);
}

impl<F: FnMut(&Outcome<'_>)> OnOutcome for F {
    fn on_outcome(&mut self, outcome: &Outcome<'_>) {
        self(outcome);
    }
}

/// Where [`Producer::send`]'s record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset (-1 when unknown: `acks=0`).
    pub offset: i64,
    /// The broker's append time with `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
}

/// Why a record was not accepted or not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The core refused the record at once (invalid topic or partition, too large,
    /// closed, ...); it is still the caller's.
    Send(SendError),
    /// The record was not accepted within `max.block.ms`: the topic's metadata did not
    /// arrive, or the pool stayed full.
    Timeout {
        /// The `max.block.ms` that passed.
        max_block_ms: u64,
        /// What was still missing.
        cause: SendError,
    },
    /// The record was accepted and failed.
    Produce(ProduceError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(e) => write!(f, "record refused: {e}"),
            Self::Timeout {
                max_block_ms,
                cause,
            } => write!(f, "not accepted after {max_block_ms} ms: {cause}"),
            Self::Produce(e) => write!(f, "record failed: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// Counts of what happened on the connections, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections opened.
    pub connects: u64,
    /// Connections that failed to open (refused, timed out, no address).
    pub connect_failures: u64,
    /// Open connections lost (read or write error, end of stream).
    pub connections_lost: u64,
    /// The error kind of the last lost connection or failed read/write.
    pub last_io_error: Option<ErrorKind>,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes read.
    pub bytes_read: u64,
}

#[derive(Debug)]
enum State {
    Closed,
    /// The core asked for a connection that is not open yet.
    Connecting {
        broker: BrokerRef,
        port: u16,
    },
    Open,
}

/// A connection and its buffers: `TX` bytes of requests waiting for the socket, `RX`
/// bytes read per wake.
struct Slot<C, const TX: usize, const RX: usize> {
    conn: C,
    state: State,
    /// The host to connect to while `Connecting`.
    host: String<MAX_HOST_LEN>,
    tx: [u8; TX],
    tx_len: usize,
    /// The core wrote less than it wanted (`tx` was full): tell it when there is room.
    want_writable: bool,
    rx: [u8; RX],
}

/// What woke a slot.
enum Io {
    Read(Result<usize, ErrorKind>),
    Wrote(Result<usize, ErrorKind>),
}

impl<C: Connection, const TX: usize, const RX: usize> Slot<C, TX, RX> {
    fn new(conn: C) -> Self {
        Self {
            conn,
            state: State::Closed,
            host: String::new(),
            tx: [0; TX],
            tx_len: 0,
            want_writable: false,
            rx: [0; RX],
        }
    }

    /// Waits for bytes to read, or for the socket to take bytes of `tx`; never completes
    /// while the connection is not open.
    async fn io(&mut self) -> Io {
        if !matches!(self.state, State::Open) {
            return pending().await;
        }
        let (mut reader, mut writer) = self.conn.split();
        let read = reader.read(&mut self.rx);
        let Some(out) = self.tx.get(..self.tx_len).filter(|b| !b.is_empty()) else {
            return Io::Read(read.await.map_err(|e| e.kind()));
        };
        match select(read, writer.write(out)).await {
            Either::First(r) => Io::Read(r.map_err(|e| e.kind())),
            Either::Second(w) => Io::Wrote(w.map_err(|e| e.kind())),
        }
    }

    fn reset(&mut self) {
        self.conn.close();
        self.state = State::Closed;
        self.tx_len = 0;
        self.want_writable = false;
    }
}

/// The record [`Producer::send`] waits for, and its outcome once known.
#[derive(Debug, Clone, Copy)]
struct Awaited {
    ticket: Ticket,
    outcome: Option<Result<RecordMetadata, ProduceError>>,
}

/// The async producer: the core [`CoreProducer`] (borrowed, so it can live in a `static`),
/// `N` connections with `TX`/`RX`-byte buffers each, a clock, and the handler that
/// receives every [`Outcome`].
pub struct Producer<
    'p,
    S,
    St,
    C,
    K,
    H,
    const N: usize,
    const TX: usize = 2048,
    const RX: usize = 1024,
    Z = NoCompression,
> where
    St: Storage,
{
    core: &'p mut CoreProducer<S, St, Z>,
    slots: [Slot<C, TX, RX>; N],
    clock: K,
    on_outcome: H,
    awaited: Option<Awaited>,
    stats: Stats,
}

impl<S, St, C, K, H, const N: usize, const TX: usize, const RX: usize, Z> fmt::Debug
    for Producer<'_, S, St, C, K, H, N, TX, RX, Z>
where
    St: Storage,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("core", &self.core)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'p, S, St, C, K, H, const N: usize, const TX: usize, const RX: usize, Z>
    Producer<'p, S, St, C, K, H, N, TX, RX, Z>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    St: Storage,
    Z: Compressor,
    C: Connection,
    K: Clock,
    H: OnOutcome,
{
    /// Drives `core` over `connections` (the core's connection `i` on `connections[i]`;
    /// give at least the core's connection limit) with `clock`; every outcome goes to
    /// `on_outcome`.
    pub fn new(
        core: &'p mut CoreProducer<S, St, Z>,
        connections: [C; N],
        clock: K,
        on_outcome: H,
    ) -> Self {
        Self {
            core,
            slots: connections.map(Slot::new),
            clock,
            on_outcome,
            awaited: None,
            stats: Stats::default(),
        }
    }

    /// The core producer (its metrics, metadata, `is_flushed`, ...).
    pub fn core(&self) -> &CoreProducer<S, St, Z> {
        self.core
    }

    /// What happened on the connections so far.
    pub const fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The clock's time now.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Accepts `record` now or refuses it, without waiting (the core's `send`): its
    /// outcome reaches the outcome handler later, while the producer is driven.
    pub fn try_enqueue(&mut self, record: &ProducerRecord<'_>) -> Result<Ticket, SendError> {
        let now = self.clock.now_ms();
        self.core.send(now, record)
    }

    /// Accepts `record`, driving the producer while the topic's metadata is fetched or the
    /// pool is full, up to `max.block.ms` (as Java's `send` blocks); returns its ticket.
    /// The outcome reaches the outcome handler.
    ///
    /// Cancel safety: cancel-safe. Dropped before it returned, the record was not
    /// accepted; the producer's progress is kept.
    pub async fn enqueue(&mut self, record: &ProducerRecord<'_>) -> Result<Ticket, Error> {
        let start = self.clock.now_ms();
        let max_block_ms = self.core.config().max_block_ms;
        let deadline = start.saturating_add(max_block_ms);
        loop {
            let now = self.clock.now_ms();
            match self.core.send(now, record) {
                Ok(ticket) => return Ok(ticket),
                Err(cause) if cause.is_retriable() => {
                    if now >= deadline {
                        return Err(Error::Timeout {
                            max_block_ms,
                            cause,
                        });
                    }
                    self.turn(Some(deadline)).await;
                }
                Err(e) => return Err(Error::Send(e)),
            }
        }
    }

    /// Sends `record` and waits for its outcome (as `send(record).get()` in Java): other
    /// records' outcomes reach the outcome handler meanwhile, and this one too.
    ///
    /// Cancel safety: not cancel-safe once the record was accepted: dropped then, the
    /// record is still sent and its outcome reaches only the outcome handler.
    pub async fn send(&mut self, record: &ProducerRecord<'_>) -> Result<RecordMetadata, Error> {
        let ticket = self.enqueue(record).await?;
        self.awaited = Some(Awaited {
            ticket,
            outcome: None,
        });
        // A lone record waits for `linger.ms` (as in Java); the caller waits for it, so
        // send it now.
        let now = self.clock.now_ms();
        self.core.flush(now);
        loop {
            if let Some(outcome) = self.awaited.and_then(|a| a.outcome) {
                self.awaited = None;
                return outcome.map_err(Error::Produce);
            }
            self.turn(None).await;
        }
    }

    /// Drives the producer once: opens, reads and writes connections and runs timers until
    /// one thing happened (or nothing was due and `deadline_ms` passed).
    ///
    /// Cancel safety: cancel-safe (given [`Connection`]'s own).
    pub async fn poll(&mut self, deadline_ms: Option<u64>) {
        self.turn(deadline_ms).await;
    }

    /// Sends every record accepted so far without waiting for `linger.ms`, and waits until
    /// each has its outcome.
    ///
    /// Cancel safety: cancel-safe; the records stay flushed.
    pub async fn flush(&mut self) {
        let now = self.clock.now_ms();
        self.core.flush(now);
        while !self.core.is_flushed() {
            self.turn(None).await;
        }
    }

    /// Refuses new records, delivers what it can within `timeout_ms` (the rest fails with
    /// [`ProduceError::Closed`]), then closes every connection.
    ///
    /// Cancel safety: cancel-safe; the producer stays closed and another `close` finishes.
    pub async fn close(&mut self, timeout_ms: u64) {
        if !self.core.is_closed() {
            let now = self.clock.now_ms();
            self.core.close(now, timeout_ms);
        }
        while !self.core.is_closed() {
            self.turn(None).await;
        }
        // The core's last outputs (outcomes, disconnects).
        let now = self.clock.now_ms();
        self.drain(now);
        for slot in &mut self.slots {
            slot.reset();
        }
    }

    /// One turn of the loop in the crate's documentation.
    async fn turn(&mut self, deadline_ms: Option<u64>) {
        let now = self.clock.now_ms();
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        let wake = self.drain(now);
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| matches!(s.state, State::Connecting { .. }))
        {
            self.open(i).await;
            let now = self.clock.now_ms();
            self.settle(now);
            return;
        }
        let wake = match (wake, deadline_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let clock = &self.clock;
        let woke = {
            let ios: Pin<&mut [_]> = pin!(self.slots.each_mut().map(Slot::io));
            let sleep = async {
                match wake {
                    Some(t) => clock.sleep_until(t).await,
                    None => pending().await,
                }
            };
            match select(select_slice(ios), sleep).await {
                Either::First((io, i)) => Some((io, i)),
                Either::Second(()) => None,
            }
        };
        let now = self.clock.now_ms();
        if let Some((io, i)) = woke {
            self.on_io(now, i, io);
        }
        self.settle(now);
    }

    /// After an input: runs the core's timers when due and drains its outputs, so that
    /// outcomes reach the handler and requests reach the send buffers within the turn.
    fn settle(&mut self, now: u64) {
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        self.drain(now);
    }

    /// Opens connection `i` for the core, bounded by `socket.connection.setup.timeout.ms`.
    async fn open(&mut self, i: usize) {
        let now = self.clock.now_ms();
        let timeout = self.core.config().socket_connection_setup_timeout_ms;
        let clock = &self.clock;
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let opened = match &slot.state {
            State::Connecting { broker, port } => {
                match select(
                    slot.conn.connect(*broker, &slot.host, *port),
                    clock.sleep_until(now.saturating_add(timeout)),
                )
                .await
                {
                    Either::First(r) => r.is_ok(),
                    Either::Second(()) => false,
                }
            }
            _ => return,
        };
        let now = self.clock.now_ms();
        let conn = conn_id(i);
        if opened {
            slot.state = State::Open;
            slot.tx_len = 0;
            slot.want_writable = false;
            self.stats.connects += 1;
            self.core.handle_connected(now, conn);
        } else {
            slot.reset();
            self.stats.connect_failures += 1;
            self.core.handle_closed(now, conn);
        }
    }

    /// Hands the core what a connection did.
    fn on_io(&mut self, now: u64, i: usize, io: Io) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let conn = conn_id(i);
        let lost = match io {
            Io::Read(Ok(n)) if n > 0 => {
                self.stats.bytes_read += n as u64;
                let bytes = slot.rx.get(..n).unwrap_or_default();
                self.core.handle_received(now, conn, bytes);
                None
            }
            Io::Wrote(Ok(n)) if n > 0 => {
                self.stats.bytes_written += n as u64;
                let n = n.min(slot.tx_len);
                slot.tx.copy_within(n..slot.tx_len, 0);
                slot.tx_len -= n;
                if slot.want_writable {
                    slot.want_writable = false;
                    self.core.handle_writable(now, conn);
                }
                None
            }
            // End of stream, or a write that took nothing: the peer is gone.
            Io::Read(Ok(_)) | Io::Wrote(Ok(_)) => Some(ErrorKind::ConnectionReset),
            Io::Read(Err(e)) | Io::Wrote(Err(e)) => Some(e),
        };
        if let Some(kind) = lost {
            slot.reset();
            self.stats.connections_lost += 1;
            self.stats.last_io_error = Some(kind);
            self.core.handle_closed(now, conn);
        }
    }

    /// The core's drain step over this driver's connections; returns the core's next
    /// timeout.
    fn drain(&mut self, now: u64) -> Option<u64> {
        let mut t = Sockets {
            slots: &mut self.slots,
            on_outcome: &mut self.on_outcome,
            awaited: &mut self.awaited,
            refused: None,
        };
        let mut wake = self.core.drain(now, &mut t);
        // A connection the driver cannot hold (an index past `N`, a host name too long):
        // report it closed, as a refused connection; the core backs off and retries.
        while let Some(conn) = t.refused.take() {
            self.core.handle_closed(now, conn);
            wake = self.core.drain(now, &mut t);
        }
        wake
    }
}

/// `ConnId` of slot `i` (slots are at most `u16::MAX`: the core's connection ids).
fn conn_id(i: usize) -> ConnId {
    ConnId(u16::try_from(i).unwrap_or(u16::MAX))
}

/// The core's [`Transport`] over the slots, for one drain step.
struct Sockets<'a, C, H, const TX: usize, const RX: usize> {
    slots: &'a mut [Slot<C, TX, RX>],
    on_outcome: &'a mut H,
    awaited: &'a mut Option<Awaited>,
    refused: Option<ConnId>,
}

impl<C, H, const TX: usize, const RX: usize> Sockets<'_, C, H, TX, RX>
where
    C: Connection,
    H: OnOutcome,
{
    fn outcome(&mut self, outcome: &Outcome<'_>) {
        if let Some(a) = self.awaited.as_mut()
            && a.outcome.is_none()
            && outcome.tickets.contains(a.ticket)
        {
            a.outcome = Some(outcome.result.map(|d| RecordMetadata {
                partition: outcome.partition,
                offset: outcome.offset_of(a.ticket).unwrap_or(-1),
                log_append_time_ms: d.log_append_time_ms,
            }));
        }
        self.on_outcome.on_outcome(outcome);
    }
}

impl<C, H, const TX: usize, const RX: usize> Transport for Sockets<'_, C, H, TX, RX>
where
    C: Connection,
    H: OnOutcome,
{
    fn connect(&mut self, conn: ConnId, broker: BrokerRef, host: &str, port: u16) {
        let Some(slot) = self.slots.get_mut(conn.index()) else {
            self.refused = Some(conn);
            return;
        };
        slot.reset();
        slot.host.clear();
        if slot.host.push_str(host).is_err() {
            self.refused = Some(conn);
            return;
        }
        slot.state = State::Connecting { broker, port };
    }

    fn disconnect(&mut self, conn: ConnId) {
        if let Some(slot) = self.slots.get_mut(conn.index()) {
            slot.reset();
        }
    }

    fn delivered(
        &mut self,
        topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        log_append_time_ms: i64,
    ) {
        self.outcome(&Outcome {
            topic,
            partition,
            tickets,
            result: Ok(Delivered {
                base_offset,
                log_append_time_ms,
            }),
        });
    }

    fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: ProduceError) {
        self.outcome(&Outcome {
            topic,
            partition,
            tickets,
            result: Err(error),
        });
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let Some(slot) = self.slots.get_mut(tx.conn().index()) else {
            return 0;
        };
        let n = match slot.tx.get_mut(slot.tx_len..) {
            Some(room) if matches!(slot.state, State::Open) => tx.copy_to(room),
            _ => 0,
        };
        slot.tx_len += n;
        if n < tx.len() {
            slot.want_writable = true;
        }
        n
    }
}
