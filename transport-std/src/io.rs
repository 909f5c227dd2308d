//! The I/O thread (Java's `Sender` running in its `KafkaThread`): non-blocking sockets with
//! `mio`, driving the core under the shared lock.
//!
//! One round: wait in `poll` until readiness, a wake-up or the core's next timer; read
//! every readable socket to `WouldBlock` and finish connects (outside the lock); then,
//! under the lock, hand the core what happened (`handle_connected`, `handle_received`,
//! `handle_closed`, `handle_timeout`) and drain its outputs: events (connect, disconnect,
//! outcomes), then transmits, written with vectored writes straight from buffer memory;
//! finally, outside the lock, run callbacks and complete futures.
//!
//! A partial write leaves the socket's buffer full: the connection is marked write-blocked
//! and its transmit (handed out by the core once until `handle_transmitted` reports
//! progress) is left alone until `mio` says the socket is writable again; then
//! `handle_transmitted(conn, 0)` makes the core hand out the rest.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_edge_core::{ConnId, Event, MAX_CONNECTIONS, MAX_REQUEST_BATCHES};
use log::{debug, error, info, trace, warn};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::delivery::{DeliveryResult, Pending};
use crate::error::ProduceError;
use crate::producer::{Shared, State};
use crate::record::RecordMetadata;

/// The token of the waker that `send`, `flush` and `close` use.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Pieces of one transmit: framing slices between the batches of a request.
const MAX_IOV: usize = 2 * MAX_REQUEST_BATCHES + 2;

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// After the close deadline, how long the I/O thread waits for the core to report the last
/// outcomes before it gives up on them ([`ProduceError::Abandoned`]).
const CLOSE_GRACE_MS: u64 = 5_000;

struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    connecting: bool,
    just_connected: bool,
    write_blocked: bool,
    /// Writable again after a block: tell the core (`handle_transmitted(conn, 0)`).
    rearm: bool,
    /// The connection failed or was closed by the peer: tell the core.
    failed: bool,
    /// Bytes read and not yet handed to the core.
    rx: Vec<u8>,
}

pub(crate) struct IoLoop {
    shared: Arc<Shared>,
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    /// Outcomes to complete outside the lock.
    outbox: Vec<(Pending, DeliveryResult)>,
    /// Batches whose outcomes are in `outbox`: `(index, generation)`.
    finished: Vec<(usize, u32)>,
}

impl IoLoop {
    pub(crate) fn new(shared: Arc<Shared>, poll: Poll) -> Self {
        let mut conns = Vec::with_capacity(MAX_CONNECTIONS);
        conns.resize_with(MAX_CONNECTIONS, || None);
        Self {
            shared,
            poll,
            events: Events::with_capacity(64),
            conns,
            outbox: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// The thread's body: runs until the producer is closed and every outcome is out. If
    /// the loop panics, every record still pending completes with `Abandoned`.
    pub(crate) fn run(mut self) {
        let shared = self.shared.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.run_loop()));
        let leftovers: Vec<Pending> = {
            let mut st = shared.lock();
            st.io_gone = true;
            let mut left: Vec<Pending> = std::mem::take(&mut st.orphans);
            for b in &mut st.batches {
                left.extend(b.records.drain(..).flatten());
                b.live = false;
                b.remaining = 0;
            }
            shared.progress.notify_all();
            left
        };
        if result.is_err() {
            error!(
                "[Producer clientId={}] the I/O thread panicked; {} records abandoned",
                shared.client_id,
                leftovers.len()
            );
        } else if !leftovers.is_empty() {
            warn!(
                "[Producer clientId={}] {} records abandoned at close",
                shared.client_id,
                leftovers.len()
            );
        }
        // Dropping a `Pending` completes it with `Abandoned`.
        drop(leftovers);
        debug!("[Producer clientId={}] I/O thread ended", shared.client_id);
    }

    fn run_loop(&mut self) {
        let mut timeout = Some(Duration::ZERO);
        loop {
            if let Err(e) = self.poll.poll(&mut self.events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                error!("[Producer clientId={}] poll: {e}", self.shared.client_id);
                std::thread::sleep(Duration::from_millis(10));
            }
            self.gather();
            let shared = self.shared.clone();
            let mut guard = shared.lock();
            let st = &mut *guard;
            st.io_sleeping = false;
            st.wake_pending = false;
            let now = shared.now_ms();
            let mut notify = self.feed(st, now);
            if st.core.poll_timeout().is_some_and(|t| t <= now) {
                st.core.handle_timeout(now);
            }
            notify |= self.drain(st, now);
            let exit = st.closing
                && (st.core.is_closed()
                    || now > st.close_deadline_ms.saturating_add(CLOSE_GRACE_MS));
            if notify && st.waiters > 0 {
                shared.progress.notify_all();
            }
            let orphans = std::mem::take(&mut st.orphans);
            let next = st.core.poll_timeout();
            st.io_sleep_until = next;
            st.io_sleeping = !exit;
            drop(guard);
            for p in orphans {
                self.outbox.push((p, Err(ProduceError::Abandoned)));
            }
            self.complete();
            if exit {
                info!(
                    "[Producer clientId={}] closed: I/O thread exiting",
                    shared.client_id
                );
                return;
            }
            timeout = next.map(|t| {
                shared
                    .instant_of(t)
                    .saturating_duration_since(Instant::now())
            });
        }
    }

    /// Reads, connect completions and writability, outside the lock.
    fn gather(&mut self) {
        let client_id = &self.shared.client_id;
        for event in self.events.iter() {
            if event.token() == WAKER_TOKEN {
                continue;
            }
            let Some(Some(c)) = self.conns.get_mut(event.token().0) else {
                continue;
            };
            if c.connecting {
                if !(event.is_writable()
                    || event.is_error()
                    || event.is_read_closed()
                    || event.is_write_closed())
                {
                    continue;
                }
                match c.stream.take_error() {
                    Ok(Some(e)) | Err(e) => {
                        info!(
                            "[Producer clientId={client_id}] connection to {} failed: {e}",
                            c.addr
                        );
                        c.failed = true;
                        continue;
                    }
                    Ok(None) => {}
                }
                match c.stream.peer_addr() {
                    Ok(_) => {
                        c.connecting = false;
                        c.just_connected = true;
                        if let Err(e) = c.stream.set_nodelay(true) {
                            debug!("[Producer clientId={client_id}] TCP_NODELAY: {e}");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NotConnected => continue,
                    Err(e) => {
                        info!(
                            "[Producer clientId={client_id}] connection to {} failed: {e}",
                            c.addr
                        );
                        c.failed = true;
                        continue;
                    }
                }
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                read_all(c, client_id);
            }
            if event.is_writable() && c.write_blocked {
                c.write_blocked = false;
                c.rearm = true;
            }
        }
    }

    /// Hands the core what the sockets did. Returns whether waiters may have news.
    fn feed(&mut self, st: &mut State, now: u64) -> bool {
        let mut news = false;
        for (k, slot) in self.conns.iter_mut().enumerate() {
            let Some(c) = slot else { continue };
            let id = ConnId(k as u16);
            if c.just_connected {
                c.just_connected = false;
                debug!(
                    "[Producer clientId={}] connected to {} (conn {k})",
                    self.shared.client_id, c.addr
                );
                st.core.handle_connected(now, id);
            }
            if !c.rx.is_empty() {
                st.core.handle_received(now, id, &c.rx);
                c.rx.clear();
                news = true;
            }
            if c.failed {
                if let Err(e) = self.poll.registry().deregister(&mut c.stream) {
                    debug!("deregister: {e}");
                }
                *slot = None;
                st.core.handle_closed(now, id);
                news = true;
                continue;
            }
            if c.rearm {
                c.rearm = false;
                st.core.handle_transmitted(now, id, 0);
            }
        }
        news
    }

    /// Drains the core's outputs until it has nothing more. Returns whether outcomes freed
    /// memory (news for waiters).
    fn drain(&mut self, st: &mut State, now: u64) -> bool {
        let mut news = false;
        loop {
            let mut progressed = false;
            while let Some(event) = st.core.poll_event() {
                progressed = true;
                match event {
                    Event::Connect { conn, host, port } => {
                        let host = host.to_string();
                        if !self.connect(conn, &host, port) {
                            st.core.handle_closed(now, conn);
                        }
                    }
                    Event::Disconnect { conn } => {
                        if let Some(slot) = self.conns.get_mut(conn.index())
                            && let Some(mut c) = slot.take()
                        {
                            debug!(
                                "[Producer clientId={}] disconnecting from {} (conn {})",
                                self.shared.client_id,
                                c.addr,
                                conn.index()
                            );
                            let _ = self.poll.registry().deregister(&mut c.stream);
                        }
                    }
                    Event::Delivered {
                        topic,
                        partition,
                        tickets,
                        base_offset,
                        log_append_time_ms,
                    } => {
                        news = true;
                        let name = st.topic_name(topic);
                        let batch = tickets.batch();
                        let Some(entry) = st
                            .batches
                            .get_mut(batch.index())
                            .filter(|e| e.live && e.generation == batch.generation())
                        else {
                            warn!("outcome of an unknown batch {batch:?}");
                            continue;
                        };
                        for (i, t) in tickets.iter().enumerate() {
                            let Some(p) = entry
                                .records
                                .get_mut(t.index() as usize)
                                .and_then(Option::take)
                            else {
                                continue;
                            };
                            entry.remaining = entry.remaining.saturating_sub(1);
                            let metadata = RecordMetadata {
                                topic: name.clone(),
                                partition,
                                offset: if base_offset >= 0 {
                                    base_offset + i as i64
                                } else {
                                    -1
                                },
                                timestamp: if log_append_time_ms >= 0 {
                                    log_append_time_ms
                                } else {
                                    p.timestamp
                                },
                            };
                            self.outbox.push((p, Ok(metadata)));
                        }
                        self.finished.push((batch.index(), batch.generation()));
                    }
                    Event::Failed {
                        topic,
                        partition,
                        tickets,
                        error,
                    } => {
                        news = true;
                        let batch = tickets.batch();
                        debug!(
                            "[Producer clientId={}] {} records to {}-{partition} failed: {error}",
                            self.shared.client_id,
                            tickets.count(),
                            st.topic_name(topic)
                        );
                        let Some(entry) = st
                            .batches
                            .get_mut(batch.index())
                            .filter(|e| e.live && e.generation == batch.generation())
                        else {
                            warn!("outcome of an unknown batch {batch:?}");
                            continue;
                        };
                        for t in tickets.iter() {
                            if let Some(p) = entry
                                .records
                                .get_mut(t.index() as usize)
                                .and_then(Option::take)
                            {
                                entry.remaining = entry.remaining.saturating_sub(1);
                                self.outbox.push((p, Err(ProduceError::Kafka(error))));
                            }
                        }
                        self.finished.push((batch.index(), batch.generation()));
                    }
                    _ => {}
                }
            }
            while let Some(tx) = st.core.poll_transmit(now) {
                let id = tx.conn();
                let Some(c) = self.conns.get_mut(id.index()).and_then(Option::as_mut) else {
                    // The core writes to a connection the transport does not have.
                    st.core.handle_closed(now, id);
                    progressed = true;
                    continue;
                };
                if c.connecting || c.write_blocked {
                    // Handed out and left: `rearm` asks for it again once writable.
                    continue;
                }
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                for (slot, chunk) in slices.iter_mut().zip(tx.chunks()) {
                    *slot = IoSlice::new(chunk);
                    n += 1;
                }
                let len = tx.len();
                match c.stream.write_vectored(&slices[..n]) {
                    Ok(0) => {
                        c.failed = true;
                    }
                    Ok(w) => {
                        if w < len {
                            trace!(
                                "[Producer clientId={}] write to {} blocked after {w} of {len} \
                                 bytes",
                                self.shared.client_id, c.addr
                            );
                            c.write_blocked = true;
                        }
                        st.core.handle_transmitted(now, id, w);
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => c.write_blocked = true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {
                        st.core.handle_transmitted(now, id, 0);
                    }
                    Err(e) => {
                        info!(
                            "[Producer clientId={}] write to {} failed: {e}",
                            self.shared.client_id, c.addr
                        );
                        c.failed = true;
                    }
                }
                if c.failed {
                    let _ = self.poll.registry().deregister(&mut c.stream);
                    if let Some(slot) = self.conns.get_mut(id.index()) {
                        *slot = None;
                    }
                    st.core.handle_closed(now, id);
                    progressed = true;
                }
            }
            if !progressed {
                return news;
            }
        }
    }

    /// Opens a non-blocking connection for `conn`; false if it failed at once.
    fn connect(&mut self, conn: ConnId, host: &str, port: u16) -> bool {
        let client_id = &self.shared.client_id;
        let resolved = match &self.shared.resolver {
            Some(resolve) => resolve(host, port),
            None => (host, port).to_socket_addrs().map(Iterator::collect),
        };
        let addr = match resolved {
            Ok(addrs) => addrs.into_iter().next(),
            Err(e) => {
                warn!("[Producer clientId={client_id}] cannot resolve {host}:{port}: {e}");
                None
            }
        };
        let Some(addr) = addr else {
            return false;
        };
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                info!("[Producer clientId={client_id}] cannot connect to {addr}: {e}");
                return false;
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(conn.index()),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("[Producer clientId={client_id}] cannot register a socket: {e}");
            return false;
        }
        debug!(
            "[Producer clientId={client_id}] connecting to {host}:{port} ({addr}, conn {})",
            conn.index()
        );
        if self.conns.len() <= conn.index() {
            self.conns.resize_with(conn.index() + 1, || None);
        }
        if let Some(slot) = self.conns.get_mut(conn.index()) {
            if let Some(mut old) = slot.take() {
                let _ = self.poll.registry().deregister(&mut old.stream);
            }
            *slot = Some(Conn {
                stream,
                addr,
                connecting: true,
                just_connected: false,
                write_blocked: false,
                rearm: false,
                failed: false,
                rx: Vec::new(),
            });
        }
        true
    }

    /// Runs interceptors and completes futures and callbacks, outside the lock; then marks
    /// their batches finished (for `flush`).
    fn complete(&mut self) {
        if self.outbox.is_empty() && self.finished.is_empty() {
            return;
        }
        for (pending, result) in self.outbox.drain(..) {
            // A panicking callback or interceptor is logged, as Java logs a callback's
            // exception: it must not take the I/O thread (and every other record) down.
            let shared = &self.shared;
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                for i in &shared.interceptors {
                    i.on_acknowledgement(&result);
                }
                if let Some(c) = pending.take() {
                    c.complete(result);
                }
            }));
            if run.is_err() {
                error!(
                    "[Producer clientId={}] a callback or interceptor panicked",
                    shared.client_id
                );
            }
        }
        if self.finished.is_empty() {
            return;
        }
        let mut st = self.shared.lock();
        for &(i, generation) in &self.finished {
            if let Some(b) = st.batches.get_mut(i)
                && b.generation == generation
                && b.remaining == 0
            {
                b.live = false;
                b.records.clear();
            }
        }
        self.finished.clear();
        if st.waiters > 0 {
            self.shared.progress.notify_all();
        }
    }
}

/// Reads until `WouldBlock` (edge-triggered readiness), appending to `c.rx`.
fn read_all(c: &mut Conn, client_id: &str) {
    loop {
        let old = c.rx.len();
        c.rx.resize(old + READ_CHUNK, 0);
        let r = c.stream.read(c.rx.get_mut(old..).unwrap_or_default());
        match r {
            Ok(0) => {
                c.rx.truncate(old);
                debug!(
                    "[Producer clientId={client_id}] connection to {} closed by the peer",
                    c.addr
                );
                c.failed = true;
                return;
            }
            Ok(n) => c.rx.truncate(old + n),
            Err(e) => {
                c.rx.truncate(old);
                match e.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::Interrupted => {}
                    _ => {
                        info!(
                            "[Producer clientId={client_id}] read from {} failed: {e}",
                            c.addr
                        );
                        c.failed = true;
                        return;
                    }
                }
            }
        }
    }
}
