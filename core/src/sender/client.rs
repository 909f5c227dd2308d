//! The network client (Java's `NetworkClient`): the connection table, opening connections
//! with a reconnect backoff per broker, closing them (their requests fail as network
//! errors), connection and request timeouts, ApiVersions negotiation on every new
//! connection, writing requests and handing them out as transmits, and reading response
//! frames and dispatching each to its handler by correlation id.

use heapless::Vec as HVec;

use crate::backoff::exponential_backoff;
use crate::protocol::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, EncodeError, ErrorCode, MetadataRequestNames,
    Reader, ResponseHeader,
};
use crate::record::Compressor;
use crate::security::AuthFailure;
use crate::storage::{Storage, Table, TableFull, TableKind};

use super::connection::{
    Body, ConnBuffers, ConnId, ConnState, Connection, Fed, InFlight, RequestKind, Target, Versions,
    write_request,
};
use super::output::{Event, Transmit};
use super::{Cause, Io, Sender};

/// Reconnect backoffs remembered at once; past this the oldest is forgotten (that target
/// is then tried again without waiting, which costs a connection attempt, never a record).
pub(super) const MAX_RECONNECTS: usize = 32;

/// A target that failed to connect: how often in a row, and when last.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reconnect {
    target: Target,
    failures: u32,
    last_ms: u64,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    // ---- inputs --------------------------------------------------------------------------

    pub(crate) fn handle_connected(&mut self, now_ms: u64, conn: ConnId, io: &mut Io<St>) {
        if let Some(c) = self.conns.get_mut(conn.index())
            && matches!(c.state, ConnState::Connecting { .. })
            && !c.connect_pending
        {
            c.state = ConnState::Negotiating;
            c.api_versions_version = *ApiKey::ApiVersions.supported_versions().end();
        }
        self.drive(now_ms, io);
    }

    pub(crate) fn handle_authentication_failed(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        failure: AuthFailure,
        io: &mut Io<St>,
    ) {
        let k = conn.index();
        if self.conns.get(k).is_some_and(|c| !c.is_free()) {
            self.authentication_failed(now_ms, k, failure);
        }
        self.drive(now_ms, io);
    }

    pub(crate) fn handle_closed(&mut self, now_ms: u64, conn: ConnId, io: &mut Io<St>) {
        let k = conn.index();
        if self.conns.get(k).is_some_and(|c| !c.is_free()) {
            self.close_connection(now_ms, k, false);
        }
        self.drive(now_ms, io);
    }

    pub(crate) fn handle_transmitted(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        bytes: usize,
        io: &mut Io<St>,
    ) {
        let k = conn.index();
        self.metrics.bytes_sent = self.metrics.bytes_sent.saturating_add(bytes as u64);
        let done = match self.conns.get_mut(k) {
            Some(c) if !c.is_free() => c.transmitted(bytes),
            _ => None,
        };
        if let Some(request) = done
            && !request.expects_response
        {
            // acks=0: delivered once written.
            self.complete_unacknowledged(k, request.correlation_id);
        }
        self.drive(now_ms, io);
    }

    pub(crate) fn handle_writable(&mut self, now_ms: u64, conn: ConnId, io: &mut Io<St>) {
        if let Some(c) = self.conns.get_mut(conn.index()) {
            c.tx_blocked = false;
        }
        self.drive(now_ms, io);
    }

    pub(crate) fn handle_received(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        bytes: &[u8],
        io: &mut Io<St>,
    ) -> usize {
        let k = conn.index();
        let mut input = bytes;
        while !input.is_empty() {
            let Some(c) = self.conns.get_mut(k).filter(|c| !c.is_free()) else {
                break;
            };
            let Some(buffers) = io.get_mut(k) else {
                break;
            };
            match c.feed(&mut buffers.recv, input) {
                Fed::Partial(n) => input = input.get(n..).unwrap_or_default(),
                Fed::Frame(n, len) => {
                    input = input.get(n..).unwrap_or_default();
                    let frame = io
                        .get(k)
                        .and_then(|b| b.recv.get(..len))
                        .unwrap_or_default();
                    self.handle_frame(now_ms, k, frame);
                }
                Fed::TooLarge => {
                    self.table_full = Some(TableFull {
                        table: TableKind::ResponseBytes,
                        limit: self.limits.response_bytes,
                    });
                    self.close_connection(now_ms, k, true);
                    break;
                }
            }
        }
        self.drive(now_ms, io);
        // Bytes for a closed or unknown connection are dropped: all of them count as taken.
        bytes.len()
    }

    pub(crate) fn handle_timeout(&mut self, now_ms: u64, io: &mut Io<St>) {
        self.drive(now_ms, io);
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next connection event: a `Disconnect` before any `Connect`.
    pub(super) fn poll_connection_event(&mut self) -> Option<Event<'_>> {
        let mut connect = None;
        for (k, c) in self.conns.iter_mut().enumerate() {
            if c.disconnect_pending {
                c.disconnect_pending = false;
                return Some(Event::Disconnect {
                    conn: ConnId(u16::try_from(k).unwrap_or(u16::MAX)),
                });
            }
            if connect.is_none() && c.connect_pending {
                connect = Some(k);
            }
        }
        let k = connect?;
        let c = self.conns.get_mut(k)?;
        c.connect_pending = false;
        let c = &*c;
        Some(Event::Connect {
            conn: ConnId(u16::try_from(k).unwrap_or(u16::MAX)),
            broker: c.target,
            host: c.host.as_str(),
            port: c.port,
        })
    }

    pub(crate) fn poll_transmit<'a>(
        &'a mut self,
        now_ms: u64,
        io: &'a mut Io<St>,
    ) -> Option<Transmit<'a>> {
        self.drive(now_ms, io);
        let n = self.conns.len();
        let start = self.transmit_cursor;
        let k = (0..n).map(|i| (start + i) % n).find(|&k| {
            self.conns
                .get(k)
                .is_some_and(|c| c.has_transmit() && !c.tx_handed_out && !c.tx_blocked)
        })?;
        self.transmit_cursor = (k + 1) % n;
        let c = self.conns.get_mut(k)?;
        c.tx_handed_out = true;
        let c = &*c;
        let buffers = io.get(k)?;
        Some(Transmit {
            conn: ConnId(u16::try_from(k).unwrap_or(u16::MAX)),
            pieces: &buffers.pieces,
            scratch: &buffers.scratch,
            batches: &self.acc,
            skip: c.tx_written,
            len: c.tx_len - c.tx_written,
        })
    }

    // ---- reconnect backoff ---------------------------------------------------------------

    fn reconnect_backoff(&self, failures: u32) -> u64 {
        exponential_backoff(
            failures,
            self.config.reconnect_backoff_ms,
            self.config.reconnect_backoff_max_ms,
        )
    }

    /// When each remembered reconnect backoff ends (some may have ended already).
    pub(super) fn reconnect_backoff_ends(&self) -> impl Iterator<Item = u64> + '_ {
        self.reconnects
            .iter()
            .map(|r| r.last_ms.saturating_add(self.reconnect_backoff(r.failures)))
    }

    pub(super) fn backing_off(&self, target: Target, now_ms: u64) -> bool {
        self.reconnects.iter().any(|r| {
            r.target == target
                && now_ms < r.last_ms.saturating_add(self.reconnect_backoff(r.failures))
        })
    }

    fn record_failure(&mut self, target: Target, now_ms: u64, ever_ready: bool) {
        match self.reconnects.iter_mut().find(|r| r.target == target) {
            Some(r) => {
                r.failures = if ever_ready {
                    1
                } else {
                    r.failures.saturating_add(1)
                };
                r.last_ms = now_ms;
            }
            None => {
                let entry = Reconnect {
                    target,
                    failures: 1,
                    last_ms: now_ms,
                };
                if self.reconnects.is_full() {
                    // Forget the oldest failure (see MAX_RECONNECTS).
                    let oldest = self
                        .reconnects
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, r)| r.last_ms)
                        .map(|(i, _)| i);
                    if let Some(i) = oldest {
                        self.reconnects.swap_remove(i);
                    }
                }
                let _ = self.reconnects.push(entry);
            }
        }
    }

    pub(super) fn record_success(&mut self, target: Target) {
        self.reconnects.retain(|r| r.target != target);
    }

    // ---- connections ---------------------------------------------------------------------

    pub(super) fn find_conn(&self, target: Target) -> Option<usize> {
        self.conns
            .iter()
            .position(|c| !c.is_free() && c.target == target)
    }

    /// A ready connection that can take a request now, least loaded first.
    pub(super) fn pick_ready_conn(&self) -> Option<usize> {
        let max = self.config.max_in_flight_requests_per_connection;
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.can_send(max))
            .min_by_key(|(_, c)| c.in_flight.len())
            .map(|(k, _)| k)
    }

    /// Opens a connection to `target` in a free slot, a new one while the table has room,
    /// or one of an idle connection (closed for it).
    pub(super) fn open_connection(&mut self, now_ms: u64, target: Target) -> Option<usize> {
        let (host, port) = match target {
            Target::Bootstrap(i) => {
                let a = self.config.bootstrap_servers.get(usize::from(i))?;
                (a.host, a.port)
            }
            Target::Node(node) => {
                let b = self.metadata.broker(node)?;
                (b.host.clone(), b.port)
            }
        };
        // Java's connection setup timeout: doubled per consecutive failure to the target.
        let failures = self
            .reconnects
            .iter()
            .find(|r| r.target == target)
            .map_or(0, |r| r.failures);
        let setup_timeout_ms = exponential_backoff(
            failures.saturating_add(1),
            self.config.socket_connection_setup_timeout_ms,
            self.config.socket_connection_setup_timeout_max_ms,
        );
        let free = self
            .conns
            .iter()
            .position(|c| c.is_free() && !c.disconnect_pending);
        let k = match free {
            Some(k) => k,
            None if self.conns.len() < self.conns.limit().min(u16::MAX as usize) => {
                self.conns.push(Connection::new()).ok()?;
                self.conns.len() - 1
            }
            None => {
                // Close an idle connection, bootstrap ones first.
                let idle = |bootstrap: bool| {
                    self.conns.iter().position(|c| {
                        c.is_idle() && matches!(c.target, Target::Bootstrap(_)) == bootstrap
                    })
                };
                let Some(k) = idle(true).or_else(|| idle(false)) else {
                    self.table_full = Some(TableFull {
                        table: TableKind::Connections,
                        limit: self.conns.limit(),
                    });
                    return None;
                };
                self.close_connection(now_ms, k, true);
                k
            }
        };
        let c = self.conns.get_mut(k)?;
        c.reset();
        c.state = ConnState::Connecting {
            since_ms: now_ms,
            timeout_ms: setup_timeout_ms,
        };
        c.target = target;
        c.host = host;
        c.port = port;
        c.connect_pending = true;
        self.metrics.connections_opened += 1;
        Some(k)
    }

    /// Makes sure some connection is coming up, for a request any broker can answer
    /// (Java's `leastLoadedNode`), when none can take it now: known brokers first, then the
    /// bootstrap servers, each at most one connection. A connection coming up is waited
    /// for; but when every connection is up and full (Produce requests stalled behind
    /// `acks=all` while a dead follower is still in the ISR, say), a new one is opened to
    /// a broker without one, so that a metadata request is not starved.
    pub(super) fn want_any_connection(&mut self, now_ms: u64) {
        if self.conns.iter().any(|c| !c.is_free() && !c.is_ready()) {
            return;
        }
        let has_room = self
            .conns
            .iter()
            .any(|c| c.is_free() && !c.disconnect_pending)
            || self.conns.len() < self.conns.limit().min(u16::MAX as usize);
        if !has_room {
            return;
        }
        let brokers = self.metadata.brokers().len();
        // metadata.recovery.strategy=none: once metadata named brokers, only they are asked.
        let bootstrap = if self.config.rebootstrap || brokers == 0 {
            self.config.bootstrap_servers.len()
        } else {
            0
        };
        let total = brokers + bootstrap;
        for i in 0..total {
            let j = (self.target_cursor + i) % total.max(1);
            let target = if j < brokers {
                match self.metadata.brokers().get(j) {
                    Some(b) => Target::Node(b.node),
                    None => continue,
                }
            } else {
                Target::Bootstrap(u16::try_from(j - brokers).unwrap_or(0))
            };
            if self.backing_off(target, now_ms) || self.find_conn(target).is_some() {
                continue;
            }
            if self.open_connection(now_ms, target).is_some() {
                self.target_cursor = (j + 1) % total.max(1);
                return;
            }
        }
    }

    /// Closes connection `k`: its requests fail as network errors (batches are retried),
    /// and the transport is told with `Event::Disconnect` when `announce`.
    pub(super) fn close_connection(&mut self, now_ms: u64, k: usize, announce: bool) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.is_free() {
            return;
        }
        let target = c.target;
        let ever_ready = c.versions.is_some();
        let mut requests: HVec<InFlight, { crate::config::MAX_IN_FLIGHT_CAPACITY }> = HVec::new();
        while let Some(r) = c.in_flight.pop_front() {
            let _ = requests.push(r);
        }
        // A slot whose Connect was never polled needs no Disconnect either.
        let announce = announce && !c.connect_pending;
        c.reset();
        c.connect_pending = false;
        c.disconnect_pending = announce;
        self.metrics.disconnects += 1;
        self.record_failure(target, now_ms, ever_ready);
        if matches!(target, Target::Node(_)) {
            self.metadata.request_update();
        }
        for r in &requests {
            match r.kind {
                RequestKind::ApiVersions => {}
                #[cfg(feature = "sasl")]
                RequestKind::SaslHandshake | RequestKind::SaslAuthenticate => {}
                RequestKind::Metadata => self.metadata.attempt_failed(now_ms),
                RequestKind::InitProducerId => self.init_producer_id_failed(now_ms),
                RequestKind::Produce => {
                    self.produce_request_failed(now_ms, k, r.correlation_id, Cause::Network)
                }
                RequestKind::FindCoordinator
                | RequestKind::TxnInitProducerId
                | RequestKind::AddPartitionsToTxn
                | RequestKind::EndTxn
                | RequestKind::AddOffsetsToTxn
                | RequestKind::FindGroupCoordinator
                | RequestKind::TxnOffsetCommit => self.transaction_request_failed(now_ms, r.kind),
            }
        }
    }

    pub(super) fn check_timeouts(&mut self, now_ms: u64) {
        for k in 0..self.conns.len() {
            let Some(c) = self.conns.get(k) else { continue };
            let expired = match c.state {
                ConnState::Free => false,
                ConnState::Connecting {
                    since_ms,
                    timeout_ms,
                } => now_ms >= since_ms.saturating_add(timeout_ms),
                _ => c.in_flight.front().is_some_and(|r| {
                    now_ms >= r.sent_ms.saturating_add(self.config.request_timeout_ms)
                }),
            };
            let idle = self.idle_until(c).is_some_and(|at| now_ms >= at);
            if c.throttled_until_ms.is_some_and(|at| now_ms >= at)
                && let Some(c) = self.conns.get_mut(k)
            {
                c.throttled_until_ms = None;
            }
            if expired {
                self.close_connection(now_ms, k, true);
            } else if idle {
                self.close_idle_connection(k);
            }
        }
    }

    /// Honours a response's `throttle_time_ms` (KIP-219, as Java's `NetworkClient`): no new
    /// request on connection `k` for that long.
    pub(super) fn throttle(&mut self, now_ms: u64, k: usize, throttle_time_ms: i32) {
        let Ok(ms) = u64::try_from(throttle_time_ms) else {
            return;
        };
        if ms == 0 {
            return;
        }
        if let Some(c) = self.conns.get_mut(k) {
            let until = now_ms.saturating_add(ms);
            c.throttled_until_ms = Some(c.throttled_until_ms.map_or(until, |t| t.max(until)));
        }
    }

    /// When connection `c`, up with nothing in flight, passes `connections.max.idle.ms`.
    pub(super) fn idle_until(&self, c: &Connection) -> Option<u64> {
        let idle = self.config.connections_max_idle_ms?;
        c.is_quiet().then(|| c.last_active_ms.saturating_add(idle))
    }

    /// Closes connection `k` for idleness (Java's idle expiry): nothing is in flight, and it
    /// counts neither as a failure (no reconnect backoff) nor as a reason for new metadata.
    fn close_idle_connection(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let announce = !c.connect_pending;
        c.reset();
        c.connect_pending = false;
        c.disconnect_pending = announce;
        self.metrics.disconnects += 1;
    }

    // ---- requests ------------------------------------------------------------------------

    pub(super) fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = if id == i32::MAX { 0 } else { id + 1 };
        id
    }

    /// Connection `k`'s buffers, added to the table when the connection is new.
    pub(super) fn buffers<'i>(
        &self,
        io: &'i mut Io<St>,
        k: usize,
    ) -> Option<&'i mut ConnBuffers<St>> {
        while io.len() <= k {
            let fresh = ConnBuffers::new(self.limits.response_bytes, self.limits.request_bytes);
            if io.push(fresh).is_err() {
                return None;
            }
        }
        io.get_mut(k)
    }

    /// Writes a whole request into connection `k`'s scratch and starts its transmit.
    pub(super) fn send_request(
        &mut self,
        now_ms: u64,
        k: usize,
        kind: RequestKind,
        version: i16,
        body: &impl Body,
        io: &mut Io<St>,
    ) -> bool {
        let correlation_id = self.next_correlation_id();
        let written = self.write_whole(io, k, kind, version, correlation_id, body);
        self.start_whole(now_ms, k, kind, version, correlation_id, written)
    }

    /// Writes a whole request into connection `k`'s scratch (`None`: no buffers for `k`).
    pub(super) fn write_whole(
        &self,
        io: &mut Io<St>,
        k: usize,
        kind: RequestKind,
        version: i16,
        correlation_id: i32,
        body: &impl Body,
    ) -> Option<Result<usize, EncodeError>> {
        let client_id = self.config.client_id.as_str();
        let buffers = self.buffers(io, k)?;
        Some(write_request(
            buffers,
            kind.api(),
            version,
            correlation_id,
            client_id,
            body,
        ))
    }

    /// Starts the transmit of a request [`write_whole`](Self::write_whole) wrote, or notes
    /// that it did not fit the request scratch's limit.
    pub(super) fn start_whole(
        &mut self,
        now_ms: u64,
        k: usize,
        kind: RequestKind,
        version: i16,
        correlation_id: i32,
        written: Option<Result<usize, EncodeError>>,
    ) -> bool {
        match written {
            Some(Ok(len)) => {
                self.start_written_request(now_ms, k, kind, version, correlation_id, len)
            }
            Some(Err(EncodeError::BufferTooSmall { .. })) => {
                self.table_full = Some(TableFull {
                    table: TableKind::RequestBytes,
                    limit: self.limits.request_bytes,
                });
                false
            }
            _ => false,
        }
    }

    /// Starts the transmit of the request whose pieces are in connection `k`'s buffers.
    fn start_written_request(
        &mut self,
        now_ms: u64,
        k: usize,
        kind: RequestKind,
        version: i16,
        correlation_id: i32,
        len: usize,
    ) -> bool {
        let Some(c) = self.conns.get_mut(k) else {
            return false;
        };
        let request = InFlight {
            correlation_id,
            kind,
            version,
            sent_ms: now_ms,
            expects_response: true,
        };
        c.last_active_ms = now_ms;
        if !c.start_transmit(request, len) {
            return false;
        }
        self.metrics.requests_sent += 1;
        true
    }

    pub(super) fn send_api_versions(&mut self, now_ms: u64, k: usize, io: &mut Io<St>) {
        let Some(version) = self.conns.get(k).map(|c| c.api_versions_version) else {
            return;
        };
        let body = ApiVersionsRequest {
            client_software_name: "kafka-edge",
            client_software_version: env!("CARGO_PKG_VERSION"),
        };
        if !self.send_request(now_ms, k, RequestKind::ApiVersions, version, &body, io) {
            self.close_connection(now_ms, k, true);
        }
    }

    pub(super) fn maybe_send_metadata(&mut self, now_ms: u64, io: &mut Io<St>) {
        let in_flight = self
            .conns
            .iter()
            .any(|c| c.in_flight.iter().any(|r| r.kind == RequestKind::Metadata));
        if in_flight {
            return;
        }
        let due = self.metadata.next_update_ms(
            self.config.metadata_max_age_ms,
            self.config.retry_backoff_ms,
            self.config.retry_backoff_max_ms,
        );
        if now_ms < due {
            return;
        }
        let Some(k) = self.pick_ready_conn() else {
            self.want_any_connection(now_ms);
            return;
        };
        let Some(version) = self
            .conns
            .get(k)
            .and_then(|c| c.versions)
            .map(|v| v.metadata)
        else {
            return;
        };
        // Java drops idle topics when it updates the metadata: ask only for the live ones.
        self.evict_idle(now_ms);
        let correlation_id = self.next_correlation_id();
        // The names borrow the metadata: the request ends before the metadata is updated.
        let written = {
            let request = MetadataRequestNames {
                names: self.metadata.topic_names(),
            };
            self.write_whole(
                io,
                k,
                RequestKind::Metadata,
                version,
                correlation_id,
                &request,
            )
        };
        if self.start_whole(
            now_ms,
            k,
            RequestKind::Metadata,
            version,
            correlation_id,
            written,
        ) {
            self.metadata.attempt_started(now_ms);
        } else {
            self.metadata.attempt_failed(now_ms);
        }
    }

    // ---- responses -----------------------------------------------------------------------

    fn handle_frame(&mut self, now_ms: u64, k: usize, frame: &[u8]) {
        let Ok(correlation_id) = ResponseHeader::peek_correlation_id(frame) else {
            self.close_connection(now_ms, k, true);
            return;
        };
        let Some(request) = self.conns.get(k).and_then(|c| c.in_flight.front().copied()) else {
            self.close_connection(now_ms, k, true);
            return;
        };
        if request.correlation_id != correlation_id {
            self.close_connection(now_ms, k, true);
            return;
        }
        if let Some(c) = self.conns.get_mut(k) {
            c.in_flight.pop_front();
            c.last_active_ms = now_ms;
        }
        self.metrics.responses_received += 1;
        let api = request.kind.api();
        let mut r = Reader::new(frame);
        if ResponseHeader::decode(api.response_header_version(request.version), &mut r).is_err() {
            self.put_back_and_close(now_ms, k, request);
            return;
        }
        let body = r.rest();
        // KIP-219: the broker answered at once; the client holds the connection back for the
        // response's throttle time (Produce and ApiVersions apply theirs when decoded).
        if api.client_throttles(request.version)
            && api.throttle_time_first(request.version)
            && let Some(&ms) = body.first_chunk::<4>()
        {
            self.throttle(now_ms, k, i32::from_be_bytes(ms));
        }
        let ok = match request.kind {
            RequestKind::ApiVersions => self.handle_api_versions(now_ms, k, request.version, body),
            RequestKind::Metadata => self.handle_metadata(now_ms, request.version, body),
            RequestKind::InitProducerId => {
                self.handle_init_producer_id(now_ms, request.version, body)
            }
            RequestKind::FindCoordinator
            | RequestKind::TxnInitProducerId
            | RequestKind::AddPartitionsToTxn
            | RequestKind::EndTxn
            | RequestKind::AddOffsetsToTxn
            | RequestKind::FindGroupCoordinator
            | RequestKind::TxnOffsetCommit => {
                self.handle_transaction_response(now_ms, request.kind, request.version, body)
            }
            RequestKind::Produce => {
                self.count_latency(now_ms, request.sent_ms);
                self.handle_produce(now_ms, k, request.correlation_id, request.version, body)
            }
            #[cfg(feature = "sasl")]
            RequestKind::SaslHandshake => {
                self.handle_sasl_handshake(now_ms, k, request.version, body)
            }
            #[cfg(feature = "sasl")]
            RequestKind::SaslAuthenticate => {
                self.handle_sasl_authenticate(now_ms, k, request.version, body)
            }
        };
        if !ok {
            self.put_back_and_close(now_ms, k, request);
        }
    }

    /// An undecodable response: the request counts as failed with the connection.
    fn put_back_and_close(&mut self, now_ms: u64, k: usize, request: InFlight) {
        if let Some(c) = self.conns.get_mut(k) {
            let _ = c.in_flight.push_front(request);
        }
        self.close_connection(now_ms, k, true);
    }

    fn handle_api_versions(&mut self, now_ms: u64, k: usize, version: i16, body: &[u8]) -> bool {
        let Ok((resp, read_as)) = ApiVersionsResponse::decode_with_fallback(version, body) else {
            return false;
        };
        if ApiKey::ApiVersions.client_throttles(read_as) {
            self.throttle(now_ms, k, resp.throttle_time_ms);
        }
        if resp.error_code == ErrorCode::UNSUPPORTED_VERSION {
            // Retry with the highest version the broker lists (Java's NetworkClient).
            let theirs = resp
                .find(ApiKey::ApiVersions.code())
                .map(|v| v.max_version)
                .unwrap_or(0);
            if theirs < version && ApiKey::ApiVersions.supports(theirs) {
                // `drive` sends it again on the idle negotiating connection.
                if let Some(c) = self.conns.get_mut(k) {
                    c.api_versions_version = theirs;
                }
                return true;
            }
            self.close_connection(now_ms, k, true);
            return true;
        }
        if !resp.error_code.is_none() {
            self.close_connection(now_ms, k, true);
            return true;
        }
        let produce = resp.negotiate(ApiKey::Produce);
        let metadata = resp.negotiate(ApiKey::Metadata);
        let init_producer_id = resp.negotiate(ApiKey::InitProducerId);
        let (Some(produce), Some(metadata)) = (produce, metadata) else {
            self.enter_fatal(ErrorCode::UNSUPPORTED_VERSION);
            return true;
        };
        if self.idempotent && init_producer_id.is_none() {
            self.enter_fatal(ErrorCode::UNSUPPORTED_VERSION);
            return true;
        }
        // SaslAuthenticate needs SaslHandshake v1 (v0 sends raw tokens, not offered here).
        let sasl_authenticate = resp
            .find(ApiKey::SaslHandshake.code())
            .filter(|v| v.max_version >= 1)
            .and_then(|_| resp.negotiate(ApiKey::SaslAuthenticate));
        // Whether the cluster speaks transaction version 2 (KIP-890).
        self.txn
            .note_finalized_features(resp.finalized_features_epoch, resp.transaction_version);
        let sasl = self.config.security_protocol.uses_sasl();
        let target = match self.conns.get_mut(k) {
            Some(c) => {
                c.versions = Some(Versions {
                    produce,
                    metadata,
                    init_producer_id,
                    sasl_authenticate,
                    find_coordinator: resp.negotiate(ApiKey::FindCoordinator).filter(|&v| v >= 1),
                    add_partitions_to_txn: resp.negotiate(ApiKey::AddPartitionsToTxn),
                    end_txn: resp.negotiate(ApiKey::EndTxn),
                    add_offsets_to_txn: resp.negotiate(ApiKey::AddOffsetsToTxn),
                    txn_offset_commit: resp.negotiate(ApiKey::TxnOffsetCommit),
                });
                if sasl {
                    c.state = ConnState::Authenticating;
                    #[cfg(feature = "sasl")]
                    {
                        c.sasl = super::connection::SaslPhase::Handshake;
                    }
                    return true;
                }
                c.state = ConnState::Ready;
                c.target
            }
            None => return true,
        };
        // Connected and authenticated (TLS, if any, is the transport's and came first).
        self.auth_failure = None;
        self.record_success(target);
        let _ = now_ms;
        true
    }
}
