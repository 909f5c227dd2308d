//! One broker connection as the core sees it (Java's `KafkaChannel` + `InFlightRequests`):
//! its state, its negotiated API versions, the requests in flight in order, the request
//! being written, and the reassembly of response frames.
//!
//! The connection's buffers (receive buffer, request scratch, pieces of the request being
//! written) are a [`ConnBuffers`] in a table of their own, handed in by the caller of each
//! method, so that a frame can be read from them while the rest of the state is updated.

use heapless::{Deque, String as HString};

use crate::accumulator::BatchId;
use crate::config::{MAX_HOST_LEN, MAX_IN_FLIGHT_CAPACITY};
use crate::protocol::{
    ApiKey, EncodeError, Message, RequestHeader, Writer, frame_size_prefix, write_frame_size,
};
use crate::storage::{Storage, Table};
use crate::topic::NodeId;

/// A connection's buffers: its receive buffer (grown to the largest response, up to
/// [`Limits::response_bytes`](crate::Limits::response_bytes)), its request scratch (grown to
/// the largest request framing, up to [`Limits::request_bytes`](crate::Limits::request_bytes))
/// and the pieces of the request being written.
pub struct ConnBuffers<St: Storage + ?Sized> {
    pub(super) recv: St::Recv,
    pub(super) scratch: St::Scratch,
    pub(super) pieces: St::Pieces,
}

impl<St: Storage + ?Sized> ConnBuffers<St> {
    pub(super) fn new(response_bytes: usize, request_bytes: usize) -> Self {
        Self {
            recv: St::Recv::with_limit(response_bytes),
            scratch: St::Scratch::with_limit(request_bytes),
            pieces: St::Pieces::with_limit(usize::MAX),
        }
    }

    /// The scratch, grown to at least `len` bytes if its limit allows.
    pub(super) fn scratch_for(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.scratch.len() < len {
            self.scratch.resize(len, 0).ok()?;
        }
        Some(&mut self.scratch[..])
    }
}

impl<St: Storage + ?Sized> core::fmt::Debug for ConnBuffers<St> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnBuffers")
            .field("recv", &self.recv.len())
            .field("scratch", &self.scratch.len())
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

/// A connection handle: an index into the producer's connection slots. A handle is reused
/// for a new connection only after the old one was closed (by the transport through
/// `handle_closed`, or by the core through `Event::Disconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u16);

impl ConnId {
    /// The handle as an index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Whom a connection is for: a broker named by the cluster, or a bootstrap address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Broker {
    /// `bootstrap.servers[i]` (its node id is not known).
    Bootstrap(u16),
    /// The broker with this node id, from metadata.
    Node(NodeId),
}

pub(super) type Target = Broker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnState {
    Free,
    /// `Event::Connect` issued; waiting for `handle_connected`.
    Connecting {
        since_ms: u64,
        /// `socket.connection.setup.timeout.ms`, doubled per consecutive failure.
        timeout_ms: u64,
    },
    /// Connected; ApiVersions to send or in flight.
    Negotiating,
    /// Versions negotiated; SASL (SaslHandshake, then SaslAuthenticate until done) to send
    /// or in flight, first or again (re-authentication, KIP-368).
    Authenticating,
    /// Versions negotiated (and authenticated); requests may go.
    Ready,
}

/// Where a connection's SASL exchange is (feature `sasl`).
#[cfg(feature = "sasl")]
#[derive(Debug, Clone)]
pub(super) enum SaslPhase {
    /// None going on.
    Idle,
    /// SaslHandshake to send.
    Handshake,
    /// SaslHandshake in flight.
    HandshakeSent,
    /// SaslAuthenticate in flight; the exchange waits for its answer.
    Exchange(crate::sasl::SaslExchange),
}

/// API versions negotiated on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Versions {
    pub(super) produce: i16,
    pub(super) metadata: i16,
    /// `None` when the broker has no common InitProducerId version.
    pub(super) init_producer_id: Option<i16>,
    /// `None` when the broker has no SaslAuthenticate (or SaslHandshake v1).
    pub(super) sasl_authenticate: Option<i16>,
    /// The transactional APIs (`None`: no common version; FindCoordinator needs v1+).
    pub(super) find_coordinator: Option<i16>,
    pub(super) add_partitions_to_txn: Option<i16>,
    pub(super) end_txn: Option<i16>,
    pub(super) add_offsets_to_txn: Option<i16>,
    pub(super) txn_offset_commit: Option<i16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestKind {
    ApiVersions,
    Metadata,
    InitProducerId,
    Produce,
    FindCoordinator,
    /// InitProducerId of a transactional producer, to its coordinator.
    TxnInitProducerId,
    AddPartitionsToTxn,
    EndTxn,
    AddOffsetsToTxn,
    /// FindCoordinator for a consumer group (`send_offsets_to_transaction`).
    FindGroupCoordinator,
    TxnOffsetCommit,
    #[cfg(feature = "sasl")]
    SaslHandshake,
    #[cfg(feature = "sasl")]
    SaslAuthenticate,
}

impl RequestKind {
    pub(super) const fn api(self) -> ApiKey {
        match self {
            Self::ApiVersions => ApiKey::ApiVersions,
            Self::Metadata => ApiKey::Metadata,
            Self::InitProducerId | Self::TxnInitProducerId => ApiKey::InitProducerId,
            Self::Produce => ApiKey::Produce,
            Self::FindCoordinator | Self::FindGroupCoordinator => ApiKey::FindCoordinator,
            Self::AddOffsetsToTxn => ApiKey::AddOffsetsToTxn,
            Self::TxnOffsetCommit => ApiKey::TxnOffsetCommit,
            Self::AddPartitionsToTxn => ApiKey::AddPartitionsToTxn,
            Self::EndTxn => ApiKey::EndTxn,
            #[cfg(feature = "sasl")]
            Self::SaslHandshake => ApiKey::SaslHandshake,
            #[cfg(feature = "sasl")]
            Self::SaslAuthenticate => ApiKey::SaslAuthenticate,
        }
    }
}

/// A request sent (or being written) and not yet answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InFlight {
    pub(super) correlation_id: i32,
    pub(super) kind: RequestKind,
    pub(super) version: i16,
    pub(super) sent_ms: u64,
    /// False for Produce with acks=0: done once written.
    pub(super) expects_response: bool,
}

/// A piece of the request being written (opaque; 12 bytes): framing bytes in the scratch,
/// or a batch in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    #[doc(hidden)]
    /// `scratch[start..end]`.
    Scratch { start: u32, end: u32 },
    #[doc(hidden)]
    Batch(BatchId),
}

/// Response frame reassembly (the size prefix, then the body into the receive buffer).
#[derive(Debug, Clone, Copy, Default)]
struct FrameState {
    prefix: [u8; 4],
    prefix_len: u8,
    size: Option<usize>,
    body_len: usize,
}

/// What feeding received bytes gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fed {
    /// Bytes consumed; no whole frame yet.
    Partial(usize),
    /// Bytes consumed; a whole frame of this length is at the start of the receive buffer.
    Frame(usize, usize),
    /// The frame size is negative or larger than the receive buffer.
    TooLarge,
}

/// One entry of the connection table (opaque; about 400 bytes).
#[derive(Debug, Clone)]
pub struct Connection {
    pub(super) state: ConnState,
    pub(super) target: Target,
    pub(super) host: HString<MAX_HOST_LEN>,
    pub(super) port: u16,
    pub(super) versions: Option<Versions>,
    /// ApiVersions version to send (lowered after UNSUPPORTED_VERSION).
    pub(super) api_versions_version: i16,
    pub(super) in_flight: Deque<InFlight, MAX_IN_FLIGHT_CAPACITY>,
    pub(super) tx_len: usize,
    pub(super) tx_written: usize,
    /// The transmit was handed out and no progress was reported since.
    pub(super) tx_handed_out: bool,
    /// The last write was partial: wait for `handle_writable`.
    pub(super) tx_blocked: bool,
    /// `Event::Connect` (then `Event::Disconnect`) to report for this slot.
    pub(super) connect_pending: bool,
    pub(super) disconnect_pending: bool,
    /// When a request was last started or a response last arrived (`connections.max.idle.ms`).
    pub(super) last_active_ms: u64,
    /// The broker throttled this connection (a quota, KIP-219) until then: no new request
    /// before it.
    pub(super) throttled_until_ms: Option<u64>,
    /// When to authenticate again (KIP-368), from the broker's session lifetime.
    #[cfg(feature = "sasl")]
    pub(super) reauth_at: Option<u64>,
    /// Re-authentication is due: no new requests until the connection is idle.
    pub(super) reauth_due: bool,
    /// The SASL exchange (feature `sasl`).
    #[cfg(feature = "sasl")]
    pub(super) sasl: SaslPhase,
    frame: FrameState,
}

impl Connection {
    pub(super) const fn new() -> Self {
        Self {
            state: ConnState::Free,
            target: Target::Bootstrap(0),
            host: HString::new(),
            port: 0,
            versions: None,
            api_versions_version: 0,
            in_flight: Deque::new(),
            tx_len: 0,
            tx_written: 0,
            tx_handed_out: false,
            tx_blocked: false,
            connect_pending: false,
            disconnect_pending: false,
            last_active_ms: 0,
            throttled_until_ms: None,
            #[cfg(feature = "sasl")]
            reauth_at: None,
            reauth_due: false,
            #[cfg(feature = "sasl")]
            sasl: SaslPhase::Idle,
            frame: FrameState {
                prefix: [0; 4],
                prefix_len: 0,
                size: None,
                body_len: 0,
            },
        }
    }

    /// Resets to a free slot (the in-flight requests must have been dealt with); a
    /// `Disconnect` not yet reported stays pending.
    pub(super) fn reset(&mut self) {
        let disconnect_pending = self.disconnect_pending;
        *self = Self::new();
        self.disconnect_pending = disconnect_pending;
    }

    pub(super) fn is_free(&self) -> bool {
        self.state == ConnState::Free
    }

    pub(super) fn is_ready(&self) -> bool {
        self.state == ConnState::Ready
    }

    /// Whether a request is being written.
    pub(super) fn has_transmit(&self) -> bool {
        self.tx_len > 0
    }

    /// Whether the connection is up with nothing in flight or being written.
    pub(super) fn is_quiet(&self) -> bool {
        self.is_ready() && self.in_flight.is_empty() && !self.has_transmit()
    }

    /// Whether a new request may be queued now, under `max_in_flight`.
    pub(super) fn can_send(&self, max_in_flight: usize) -> bool {
        self.is_ready()
            && self.throttled_until_ms.is_none()
            && !self.reauth_due
            && !self.has_transmit()
            && self.in_flight.len() < max_in_flight
    }

    /// Whether nothing is going on (a candidate to be closed for another connection).
    pub(super) fn is_idle(&self) -> bool {
        self.is_ready() && !self.has_transmit() && self.in_flight.is_empty()
    }

    /// Starts a transmit of `pieces` (`len` bytes in all) for `request`.
    pub(super) fn start_transmit(&mut self, request: InFlight, len: usize) -> bool {
        if self.in_flight.push_back(request).is_err() {
            return false;
        }
        self.tx_len = len;
        self.tx_written = 0;
        self.tx_handed_out = false;
        true
    }

    /// Records `n` more bytes written of the transmit handed out; returns the finished
    /// request if the transmit is complete. A write short of the transmit means the
    /// transport's buffer is full: the rest waits for `handle_writable`.
    pub(super) fn transmitted(&mut self, n: usize) -> Option<InFlight> {
        if self.tx_len == 0 {
            return None;
        }
        let offered = self.tx_len - self.tx_written;
        if self.tx_handed_out && n < offered {
            self.tx_blocked = true;
        }
        self.tx_handed_out = false;
        self.tx_written = self.tx_written.saturating_add(n).min(self.tx_len);
        if self.tx_written < self.tx_len {
            return None;
        }
        self.tx_len = 0;
        self.tx_written = 0;
        self.tx_blocked = false;
        let last = self.in_flight.back().copied()?;
        if !last.expects_response {
            self.in_flight.pop_back();
        }
        Some(last)
    }

    /// Feeds received bytes into `recv` (this connection's receive buffer, grown to the
    /// frame's size up to its limit).
    pub(super) fn feed<T: Table<u8>>(&mut self, recv: &mut T, input: &[u8]) -> Fed {
        let f = &mut self.frame;
        let mut consumed = 0;
        let size = match f.size {
            Some(size) => size,
            None => {
                let have = usize::from(f.prefix_len);
                let take = (4 - have).min(input.len());
                if let (Some(dst), Some(src)) =
                    (f.prefix.get_mut(have..have + take), input.get(..take))
                {
                    dst.copy_from_slice(src);
                }
                consumed = take;
                f.prefix_len += take as u8;
                if f.prefix_len < 4 {
                    return Fed::Partial(consumed);
                }
                let size = i32::from_be_bytes(f.prefix);
                match usize::try_from(size) {
                    Ok(size) if size <= recv.len() || recv.resize(size, 0).is_ok() => {
                        f.size = Some(size);
                        f.body_len = 0;
                        size
                    }
                    _ => return Fed::TooLarge,
                }
            }
        };
        let rest = input.get(consumed..).unwrap_or_default();
        let take = size.saturating_sub(f.body_len).min(rest.len());
        if let (Some(dst), Some(src)) = (
            recv.get_mut(f.body_len..f.body_len + take),
            rest.get(..take),
        ) {
            dst.copy_from_slice(src);
        }
        f.body_len += take;
        consumed += take;
        if f.body_len < size {
            return Fed::Partial(consumed);
        }
        *f = FrameState::default();
        Fed::Frame(consumed, size)
    }
}

/// The body of a request written whole into the scratch.
pub(super) trait Body {
    fn body_len(&self, version: i16) -> usize;
    fn encode_body(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError>;
}

impl<'a, M: Message<'a>> Body for M {
    fn body_len(&self, version: i16) -> usize {
        self.encoded_len(version)
    }
    fn encode_body(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.encode(version, w)
    }
}

impl<'n, I: Iterator<Item = &'n str> + Clone> Body for crate::protocol::MetadataRequestNames<I> {
    fn body_len(&self, version: i16) -> usize {
        self.encoded_len(version)
    }
    fn encode_body(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.encode(version, w)
    }
}

/// Writes a whole request (size, header, body) at the start of the connection's scratch
/// (grown to fit, up to its limit) as its only piece; returns its length.
pub(super) fn write_request<St: Storage + ?Sized>(
    buffers: &mut ConnBuffers<St>,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &impl Body,
) -> Result<usize, EncodeError> {
    let header = RequestHeader::new(api, version, correlation_id, Some(client_id));
    let size = header
        .encoded_len()
        .checked_add(body.body_len(version))
        .ok_or(EncodeError::LengthOverflow)?;
    let total = size.checked_add(4).ok_or(EncodeError::LengthOverflow)?;
    let available = buffers.scratch.limit();
    let scratch = buffers
        .scratch_for(total)
        .ok_or(EncodeError::BufferTooSmall {
            needed: total,
            available,
        })?;
    let mut w = Writer::new(scratch);
    write_frame_size(&mut w, size)?;
    header.encode(&mut w)?;
    body.encode_body(version, &mut w)?;
    let len = w.position();
    buffers.pieces.clear();
    buffers
        .pieces
        .push(Piece::Scratch {
            start: 0,
            end: u32::try_from(len).map_err(|_| EncodeError::LengthOverflow)?,
        })
        .map_err(|_| EncodeError::LengthOverflow)?;
    Ok(len)
}

/// The size prefix of a frame of `size` bytes, for requests written in pieces.
pub(super) fn size_prefix(size: usize) -> Result<[u8; 4], EncodeError> {
    frame_size_prefix(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_reassemble_from_any_chunking() {
        let stream = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        for chunk in 1..=stream.len() {
            let mut c = Connection::new();
            let mut recv = heapless::Vec::<u8, 8>::new();
            let mut frames = heapless::Vec::<heapless::Vec<u8, 8>, 4>::new();
            for mut input in stream.chunks(chunk) {
                while !input.is_empty() {
                    match c.feed(&mut recv, input) {
                        Fed::Partial(n) => input = &input[n..],
                        Fed::Frame(n, len) => {
                            input = &input[n..];
                            frames
                                .push(heapless::Vec::from_slice(&recv[..len]).unwrap())
                                .unwrap();
                        }
                        Fed::TooLarge => panic!("too large"),
                    }
                }
            }
            assert_eq!(frames.len(), 3, "chunk {chunk}");
            assert_eq!(&frames[0][..], &[1, 2, 3]);
            assert!(frames[1].is_empty());
            assert_eq!(&frames[2][..], &[9]);
        }
    }

    #[test]
    fn oversized_and_negative_frames_are_refused() {
        let mut c = Connection::new();
        let mut recv = heapless::Vec::<u8, 4>::new();
        assert_eq!(c.feed(&mut recv, &[0, 0, 0, 5]), Fed::TooLarge);
        let mut c = Connection::new();
        assert_eq!(c.feed(&mut recv, &[0xff, 0, 0, 0]), Fed::TooLarge);
    }

    #[test]
    fn transmit_completes_and_acks0_leaves_no_request() {
        let mut c = Connection::new();
        c.state = ConnState::Ready;
        let req = InFlight {
            correlation_id: 1,
            kind: RequestKind::Produce,
            version: 9,
            sent_ms: 0,
            expects_response: false,
        };
        assert!(c.can_send(5));
        assert!(c.start_transmit(req, 10));
        assert!(!c.can_send(5));
        assert_eq!(c.transmitted(4), None);
        assert_eq!(c.transmitted(6), Some(req));
        assert!(c.in_flight.is_empty());
        assert!(c.is_idle());
    }
}
