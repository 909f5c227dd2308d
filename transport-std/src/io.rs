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
//! The drain step is the core's own ([`kafka_edge_core::Producer::drain`]); this module
//! only implements its [`Transport`] over `mio` sockets. A partial write leaves the
//! socket's buffer full: the core holds the rest of that transmit back until `mio` says
//! the socket is writable again and the thread reports `handle_writable`.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use kafka_edge_core::security::{AuthFailure, AuthFailureKind};
use kafka_edge_core::{
    BrokerRef, ConnId, ProduceError as CoreError, TicketRange, Transmit, Transport,
};
use log::{debug, error, info, trace, warn};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::delivery::{Finished, RangeOutcome, Written};
use crate::error::{AuthenticationError, ProduceError};
use crate::producer::{Shared, State};

/// The token of the waker that `send`, `flush` and `close` use.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Slices per `writev` call (Linux's `IOV_MAX`); a longer transmit takes several calls.
const MAX_IOV: usize = 1024;

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// After the close deadline, how long the I/O thread waits for the core to report the last
/// outcomes before it gives up on them ([`ProduceError::Abandoned`]).
const CLOSE_GRACE_MS: u64 = 5_000;

struct Conn {
    stream: TcpStream,
    addr: SocketAddr,
    /// `host:port (node N)` or `host:port (bootstrap)`, for TLS errors.
    broker: String,
    /// The host name the core connects to (SNI and certificate check).
    host: String,
    connecting: bool,
    /// TLS: TCP is connected and the handshake runs (`handle_connected` waits for it).
    handshaking: bool,
    /// TLS: the session, between the socket and the core.
    tls: Option<Box<rustls::ClientConnection>>,
    /// TLS: ciphertext waits in rustls for the socket to take it.
    tls_blocked: bool,
    /// A handshake failure that retrying will not fix: reported with
    /// `handle_authentication_failed` instead of `handle_closed`.
    auth_failed: Option<String>,
    just_connected: bool,
    write_blocked: bool,
    /// Writable again after a block: tell the core (`handle_writable`).
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
    /// Outcomes to complete outside the lock, per batch or piece of a batch.
    outbox: Vec<Finished>,
    /// Batches whose outcomes are in `outbox`: `(index, generation)`.
    finished: Vec<(usize, u32)>,
    /// Topic names, shared by every `RecordMetadata` of the topic.
    topics: HashMap<Box<str>, Arc<str>>,
    /// The last full table logged, and brokers dropped from the last metadata.
    table_full_logged: Option<kafka_edge_core::TableFull>,
    brokers_dropped_logged: usize,
    /// Connection errors already logged at warn level.
    conn_errors: ConnErrors,
    /// The core's last authentication failure as the std errors carry it (allocated once
    /// per failure, shared by every record it fails).
    auth_error: Option<(AuthFailure, AuthenticationError)>,
}

/// Connection errors (a name that does not resolve, a connection refused) are warned once
/// per target, as Java's `NetworkClient` warns "Connection to node .. could not be
/// established": an application without debug logs hears why nothing is sent. The same
/// error again (every reconnect backoff) goes to debug until the target connects or fails
/// differently.
#[derive(Default)]
struct ConnErrors {
    /// What failed (`cannot resolve host:port`, `cannot connect to address`) to the kind of
    /// its last logged error.
    logged: HashMap<String, ErrorKind>,
    /// The last failure (`cannot connect to 127.0.0.1:1: Connection refused`), until a
    /// connection succeeds: the cause a metadata timeout reports.
    last: Option<String>,
}

impl ConnErrors {
    const RESOLVE: &'static str = "cannot resolve";
    const CONNECT: &'static str = "cannot connect to";
    const TLS: &'static str = "SSL handshake failed with";

    fn failed(&mut self, client_id: &str, what: &str, target: &str, e: &std::io::Error) {
        let key = format!("{what} {target}");
        self.last = Some(format!("{key}: {e}"));
        if self.logged.get(&key) == Some(&e.kind()) {
            debug!("[Producer clientId={client_id}] {key}: {e}");
        } else {
            warn!("[Producer clientId={client_id}] {key}: {e}");
            self.logged.insert(key, e.kind());
        }
    }

    fn succeeded(&mut self, what: &str, target: &str) {
        self.last = None;
        if !self.logged.is_empty() {
            self.logged.remove(&format!("{what} {target}"));
        }
    }
}

impl IoLoop {
    pub(crate) fn new(shared: Arc<Shared>, poll: Poll) -> Self {
        Self {
            shared,
            poll,
            events: Events::with_capacity(64),
            conns: Vec::new(),
            outbox: Vec::new(),
            finished: Vec::new(),
            topics: HashMap::new(),
            table_full_logged: None,
            brokers_dropped_logged: 0,
            conn_errors: ConnErrors::default(),
            auth_error: None,
        }
    }

    /// The thread's body: runs until the producer is closed and every outcome is out. If
    /// the loop panics, every record still pending completes with `Abandoned`.
    pub(crate) fn run(mut self) {
        let shared = self.shared.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.run_loop()));
        let (leftovers, records, wakers) = {
            let mut st = shared.lock();
            st.io_gone = true;
            let mut left: Vec<Finished> = std::mem::take(&mut st.orphans);
            let mut records = 0u64;
            for b in &mut st.batches {
                if b.live {
                    records += u64::from(b.remaining);
                }
                left.push(b.take_all());
                b.live = false;
                b.remaining = 0;
            }
            st.completion_bytes = 0;
            shared.progress.notify_all();
            (left, records, st.send_waiters.take_all())
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
        if result.is_err() {
            error!(
                "[Producer clientId={}] the I/O thread panicked; {records} records abandoned",
                shared.client_id,
            );
        } else if records > 0 {
            warn!(
                "[Producer clientId={}] {records} records abandoned at close",
                shared.client_id,
            );
        }
        // What was still in the outbox (a panic) and the leftovers complete with
        // `Abandoned`.
        self.outbox.clear();
        for f in leftovers {
            f.complete(&shared.interceptors);
        }
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
            let now = shared.now_ms_refreshed();
            let mut notify = self.feed(st, now);
            st.last_connection_error.clone_from(&self.conn_errors.last);
            if st.core.poll_timeout().is_some_and(|t| t <= now) {
                st.core.handle_timeout(now);
            }
            notify |= self.drain(st, now);
            st.metrics.roll_if_due(now, &mut st.core);
            st.last_connection_error.clone_from(&self.conn_errors.last);
            self.log_limits(st);
            let exit = st.closing
                && (st.core.is_closed()
                    || now > st.close_deadline_ms.saturating_add(CLOSE_GRACE_MS));
            if notify && st.waiters > 0 {
                shared.progress.notify_all();
            }
            // Async sends try again after news, or give up at their deadline.
            let wakers = st.send_waiters.take_due(notify || exit, now);
            let orphans = std::mem::take(&mut st.orphans);
            // Wake for the core's timer, an async send's deadline and the next metrics
            // sample boundary, whichever comes first.
            let next = [
                st.core.poll_timeout(),
                st.send_waiters.earliest_deadline(),
                Some(st.metrics.next_roll_ms()),
            ]
            .into_iter()
            .flatten()
            .min();
            st.io_sleep_until = next;
            st.io_sleeping = !exit;
            drop(guard);
            wakers.into_iter().for_each(std::task::Waker::wake);
            self.outbox.extend(orphans);
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

    /// Logs a table that filled up (a connection, request or response limit: the core
    /// retries those, and a record's own limits come back from `send`) and brokers the
    /// metadata had that the broker table could not keep: nothing is dropped silently.
    fn log_limits(&mut self, st: &State) {
        let full = st.core.table_full();
        if full.is_some() && full != self.table_full_logged {
            if let Some(full) = full {
                warn!("[Producer clientId={}] {full}", self.shared.client_id);
            }
            self.table_full_logged = full;
        }
        let dropped = st.core.metadata().brokers_dropped();
        if dropped != self.brokers_dropped_logged {
            if dropped > 0 {
                warn!(
                    "[Producer clientId={}] {dropped} brokers of the cluster's metadata were \
                     not kept (broker table full, host name over 255 bytes, or port 0)",
                    self.shared.client_id
                );
            }
            self.brokers_dropped_logged = dropped;
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
                        let target = c.addr.to_string();
                        self.conn_errors
                            .failed(client_id, ConnErrors::CONNECT, &target, &e);
                        c.failed = true;
                        continue;
                    }
                    Ok(None) => {}
                }
                match c.stream.peer_addr() {
                    Ok(_) => {
                        c.connecting = false;
                        if c.tls.is_some() {
                            // The ClientHello goes out below; `handle_connected` waits for
                            // the handshake.
                            c.handshaking = true;
                        } else {
                            c.just_connected = true;
                        }
                        self.conn_errors
                            .succeeded(ConnErrors::CONNECT, &c.addr.to_string());
                        if let Err(e) = c.stream.set_nodelay(true) {
                            debug!("[Producer clientId={client_id}] TCP_NODELAY: {e}");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NotConnected => continue,
                    Err(e) => {
                        let target = c.addr.to_string();
                        self.conn_errors
                            .failed(client_id, ConnErrors::CONNECT, &target, &e);
                        c.failed = true;
                        continue;
                    }
                }
            }
            if c.tls.is_some() {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    read_tls_all(c, client_id, self.shared.tls.as_ref());
                }
                // Handshake messages, alerts, or ciphertext a full socket held back.
                flush_tls(c, client_id);
                if c.failed {
                    if c.handshaking && c.auth_failed.is_none() {
                        self.conn_errors.failed(
                            client_id,
                            ConnErrors::TLS,
                            &c.broker,
                            &std::io::Error::other("connection lost during the handshake"),
                        );
                    }
                    continue;
                }
                if c.handshaking {
                    continue;
                }
                if !c.tls_blocked && c.write_blocked {
                    c.write_blocked = false;
                    c.rearm = true;
                }
                continue;
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
                let auth_failed = c.auth_failed.take();
                *slot = None;
                match auth_failed {
                    Some(message) => {
                        warn!(
                            "[Producer clientId={}] {} with {message}",
                            self.shared.client_id,
                            AuthFailureKind::Tls
                        );
                        self.conn_errors.last =
                            Some(format!("{} with {message}", AuthFailureKind::Tls));
                        st.core.handle_authentication_failed(
                            now,
                            id,
                            AuthFailureKind::Tls,
                            &message,
                        );
                    }
                    None => st.core.handle_closed(now, id),
                }
                news = true;
                continue;
            }
            if c.rearm {
                c.rearm = false;
                st.core.handle_writable(now, id);
            }
        }
        news
    }

    /// Drains the core's outputs until it has nothing more (the core's drain step over this
    /// thread's sockets). Returns whether outcomes freed memory (news for waiters).
    fn drain(&mut self, st: &mut State, now: u64) -> bool {
        let State {
            core,
            batches,
            completion_bytes,
            ..
        } = st;
        // Inputs set the failure, the drain only reports it: one snapshot per step.
        match core.authentication_failure() {
            None => self.auth_error = None,
            Some(f) if self.auth_error.as_ref().is_some_and(|(a, _)| a == f) => {}
            Some(f) => {
                let error = AuthenticationError {
                    kind: f.kind,
                    message: f.message.as_str().into(),
                };
                self.auth_error = Some((f.clone(), error));
            }
        }
        let mut t = SocketTransport {
            auth_error: self.auth_error.as_ref().map(|(_, e)| e),
            shared: &self.shared,
            poll: &self.poll,
            conns: &mut self.conns,
            outbox: &mut self.outbox,
            finished: &mut self.finished,
            topics: &mut self.topics,
            conn_errors: &mut self.conn_errors,
            batches,
            completion_bytes,
            failed: Vec::new(),
            news: false,
        };
        loop {
            core.drain(now, &mut t);
            if t.failed.is_empty() {
                return t.news;
            }
            for id in std::mem::take(&mut t.failed) {
                core.handle_closed(now, id);
            }
            t.news = true;
        }
    }
}

/// The core's [`Transport`] over this thread's sockets, for one drain step.
struct SocketTransport<'a> {
    /// The core's authentication failure, for records failed with it.
    auth_error: Option<&'a AuthenticationError>,
    shared: &'a Arc<Shared>,
    poll: &'a Poll,
    conns: &'a mut Vec<Option<Conn>>,
    outbox: &'a mut Vec<Finished>,
    finished: &'a mut Vec<(usize, u32)>,
    topics: &'a mut HashMap<Box<str>, Arc<str>>,
    conn_errors: &'a mut ConnErrors,
    batches: &'a mut Vec<crate::producer::BatchSlots>,
    /// See `State::completion_bytes`.
    completion_bytes: &'a mut usize,
    /// Connections that failed during the step: reported to the core after it.
    failed: Vec<ConnId>,
    news: bool,
}

impl SocketTransport<'_> {
    fn topic(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(name) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(name);
        self.topics.insert(Box::from(name), t.clone());
        t
    }

    /// Takes the completions of `tickets` out of their batch's entry into the outbox, and
    /// marks the batch finished.
    fn finish_range(&mut self, tickets: TicketRange, result: Result<Written, ProduceError>) {
        let batch = tickets.batch();
        self.news = true;
        self.finished.push((batch.index(), batch.generation()));
        let outcome = RangeOutcome {
            first: tickets.first_index(),
            count: tickets.count(),
            result,
        };
        match self
            .batches
            .get_mut(batch.index())
            .filter(|e| e.live && e.generation == batch.generation())
        {
            Some(entry) => self
                .outbox
                .push(entry.take_range(outcome, self.completion_bytes)),
            None => warn!("outcome of an unknown batch {batch:?}"),
        }
    }

    fn fail(&mut self, conn: ConnId) {
        if let Some(slot) = self.conns.get_mut(conn.index())
            && let Some(mut c) = slot.take()
        {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        self.failed.push(conn);
    }
}

impl Transport for SocketTransport<'_> {
    fn connect(&mut self, conn: ConnId, broker: BrokerRef, host: &str, port: u16) {
        debug!(
            "[Producer clientId={}] opening conn {} to {broker:?} at {host}:{port}",
            self.shared.client_id,
            conn.index()
        );
        if !open(
            self.shared,
            self.poll,
            self.conns,
            self.conn_errors,
            conn,
            Target { broker, host, port },
        ) {
            self.failed.push(conn);
        }
    }

    fn disconnect(&mut self, conn: ConnId) {
        if let Some(slot) = self.conns.get_mut(conn.index())
            && let Some(mut c) = slot.take()
        {
            debug!(
                "[Producer clientId={}] disconnecting from {} (conn {})",
                self.shared.client_id,
                c.addr,
                conn.index()
            );
            if let Some(tls) = c.tls.as_mut() {
                // Best effort, as Java's close: the broker sees a clean end of the session.
                tls.send_close_notify();
                let _ = tls.write_tls(&mut c.stream);
            }
            let _ = self.poll.registry().deregister(&mut c.stream);
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
        let written = Written {
            topic: self.topic(topic),
            partition,
            base_offset,
            log_append_time_ms,
        };
        self.finish_range(tickets, Ok(written));
    }

    fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: CoreError) {
        debug!(
            "[Producer clientId={}] {} records to {topic}-{partition} failed: {error}",
            self.shared.client_id,
            tickets.count(),
        );
        let error = ProduceError::from_core(error, self.auth_error);
        self.finish_range(tickets, Err(error));
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let id = tx.conn();
        let Some(c) = self.conns.get_mut(id.index()).and_then(Option::as_mut) else {
            // The core writes to a connection the transport does not have.
            self.failed.push(id);
            return 0;
        };
        if c.connecting || c.handshaking {
            // Not writable yet: the core waits for `handle_writable`.
            c.write_blocked = true;
            return 0;
        }
        if c.tls.is_some() {
            let written = transmit_tls(c, tx, &self.shared.client_id);
            if c.failed {
                self.fail(id);
            }
            return written;
        }
        let len = tx.len();
        let mut written = 0usize;
        let mut slices: Vec<IoSlice<'_>> = Vec::new();
        // Up to MAX_IOV slices per call, starting where the last call stopped.
        'calls: loop {
            next_slices(tx, written, &mut slices);
            if slices.is_empty() {
                break;
            }
            let call_len: usize = slices.iter().map(|s| s.len()).sum();
            match c.stream.write_vectored(&slices) {
                Ok(0) => {
                    c.failed = true;
                    break 'calls;
                }
                Ok(w) => {
                    written += w;
                    if w < call_len {
                        trace!(
                            "[Producer clientId={}] write to {} blocked after {written} of {len} bytes",
                            self.shared.client_id, c.addr
                        );
                        c.write_blocked = true;
                        break 'calls;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.write_blocked = true;
                    break 'calls;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    info!(
                        "[Producer clientId={}] write to {} failed: {e}",
                        self.shared.client_id, c.addr
                    );
                    c.failed = true;
                    break 'calls;
                }
            }
        }
        if c.failed {
            self.fail(id);
        }
        written
    }
}

/// What the core asked to connect to.
struct Target<'a> {
    broker: BrokerRef,
    host: &'a str,
    port: u16,
}

/// Opens a non-blocking connection for `conn` in `conns`; false if it failed at once.
fn open(
    shared: &Shared,
    poll: &Poll,
    conns: &mut Vec<Option<Conn>>,
    conn_errors: &mut ConnErrors,
    conn: ConnId,
    target: Target<'_>,
) -> bool {
    let Target { broker, host, port } = target;
    let client_id = &shared.client_id;
    let broker = match broker {
        BrokerRef::Node(node) => format!("broker {host}:{port} (node {})", node.0),
        BrokerRef::Bootstrap(_) => format!("broker {host}:{port} (bootstrap)"),
    };
    let tls = match &shared.tls {
        None => None,
        Some(settings) => {
            // An IP literal becomes `ServerName::IpAddress`: no SNI, checked against the
            // certificate's IP addresses.
            let session = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| rustls::Error::General(e.to_string()))
                .and_then(|name| rustls::ClientConnection::new(settings.config.clone(), name));
            match session {
                Ok(s) => Some(Box::new(s)),
                Err(e) => {
                    let e = std::io::Error::other(e);
                    conn_errors.failed(client_id, ConnErrors::TLS, &broker, &e);
                    return false;
                }
            }
        }
    };
    let resolved = match &shared.resolver {
        Some(resolve) => resolve(host, port),
        None => (host, port).to_socket_addrs().map(Iterator::collect),
    };
    let target = format!("{host}:{port}");
    let addr = match resolved {
        Ok(addrs) => {
            conn_errors.succeeded(ConnErrors::RESOLVE, &target);
            addrs.into_iter().next()
        }
        Err(e) => {
            conn_errors.failed(client_id, ConnErrors::RESOLVE, &target, &e);
            None
        }
    };
    let Some(addr) = addr else {
        return false;
    };
    let mut stream = match crate::socket::connect(addr, shared.socket) {
        Ok(s) => s,
        Err(e) => {
            conn_errors.failed(client_id, ConnErrors::CONNECT, &addr.to_string(), &e);
            return false;
        }
    };
    if let Err(e) = poll.registry().register(
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
    if conns.len() <= conn.index() {
        conns.resize_with(conn.index() + 1, || None);
    }
    if let Some(slot) = conns.get_mut(conn.index()) {
        if let Some(mut old) = slot.take() {
            let _ = poll.registry().deregister(&mut old.stream);
        }
        *slot = Some(Conn {
            stream,
            addr,
            broker,
            host: host.to_string(),
            connecting: true,
            handshaking: false,
            tls,
            tls_blocked: false,
            auth_failed: None,
            just_connected: false,
            write_blocked: false,
            rearm: false,
            failed: false,
            rx: Vec::new(),
        });
    }
    true
}

impl IoLoop {
    /// Runs interceptors and completes futures and callbacks, outside the lock; then marks
    /// their batches finished (for `flush`).
    fn complete(&mut self) {
        if self.outbox.is_empty() && self.finished.is_empty() {
            return;
        }
        let mut freed = 0;
        for finished in self.outbox.drain(..) {
            freed += finished.bytes;
            // A panicking callback or interceptor is caught and logged per record.
            finished.complete(&self.shared.interceptors);
        }
        if self.finished.is_empty() && freed == 0 {
            return;
        }
        let wakers = {
            let mut st = self.shared.lock();
            st.completion_bytes = st.completion_bytes.saturating_sub(freed);
            for &(i, generation) in &self.finished {
                if let Some(b) = st.batches.get_mut(i)
                    && b.generation == generation
                    && b.remaining == 0
                {
                    b.live = false;
                }
            }
            self.finished.clear();
            if st.waiters > 0 {
                self.shared.progress.notify_all();
            }
            // Async sends waiting for the callbacks' memory try again.
            if freed > 0 {
                st.send_waiters.take_all()
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(std::task::Waker::wake);
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

/// TLS: reads and decrypts until `WouldBlock`, appending the plaintext to `c.rx`; ends the
/// handshake (`just_connected`) or fails the connection (`auth_failed` when retrying will
/// not help).
fn read_tls_all(c: &mut Conn, client_id: &str, settings: Option<&crate::tls::TlsSettings>) {
    let Conn {
        stream, tls, rx, ..
    } = c;
    let Some(tls) = tls.as_mut() else { return };
    let mut eof = false;
    let mut error = None;
    loop {
        match tls.read_tls(stream) {
            Ok(0) => eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                info!(
                    "[Producer clientId={client_id}] read from {} failed: {e}",
                    c.addr
                );
                c.failed = true;
                return;
            }
        }
        // Also after the end of the stream: a last alert may be in the bytes read.
        match tls.process_new_packets() {
            Ok(state) => {
                let n = state.plaintext_bytes_to_read();
                if n > 0 {
                    let old = rx.len();
                    rx.resize(old + n, 0);
                    if let Err(e) = tls
                        .reader()
                        .read_exact(rx.get_mut(old..).unwrap_or_default())
                    {
                        rx.truncate(old);
                        debug!("[Producer clientId={client_id}] TLS read: {e}");
                    }
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        if eof {
            break;
        }
    }
    if let Some(e) = error {
        // Send our alert, if any, before closing.
        let _ = tls.write_tls(stream);
        let client_certificate = settings.is_some_and(|s| s.client_certificate);
        match crate::tls::authentication_failure(&e, &c.host, client_certificate) {
            Some(reason) => c.auth_failed = Some(format!("{}: {reason}", c.broker)),
            None => info!(
                "[Producer clientId={client_id}] TLS with {} failed: {e}",
                c.broker
            ),
        }
        c.failed = true;
        return;
    }
    if c.handshaking && !tls.is_handshaking() {
        c.handshaking = false;
        c.just_connected = true;
        debug!(
            "[Producer clientId={client_id}] TLS handshake with {} done ({:?}, {:?})",
            c.broker,
            tls.protocol_version(),
            tls.negotiated_cipher_suite().map(|s| s.suite())
        );
    }
    if eof {
        debug!(
            "[Producer clientId={client_id}] connection to {} closed by the peer",
            c.addr
        );
        c.failed = true;
    }
}

/// TLS: writes the ciphertext rustls holds until it has none or the socket is full
/// (`tls_blocked`: `mio` says when it is writable again).
fn flush_tls(c: &mut Conn, client_id: &str) {
    let Conn {
        stream,
        tls,
        tls_blocked,
        failed,
        addr,
        ..
    } = c;
    let Some(tls) = tls.as_mut() else { return };
    *tls_blocked = false;
    while tls.wants_write() {
        // `write_tls` hands rustls' queued records to the socket with `write_vectored`.
        match tls.write_tls(stream) {
            Ok(0) => {
                *failed = true;
                return;
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                *tls_blocked = true;
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                info!("[Producer clientId={client_id}] write to {addr} failed: {e}");
                *failed = true;
                return;
            }
        }
    }
}

/// TLS: hands `tx` to rustls (encrypted from the slices, up to rustls' buffer limit) and
/// the ciphertext to the socket; returns how many plaintext bytes rustls took. When it
/// takes nothing more because the socket is full, `write_blocked` makes the core wait.
fn transmit_tls(c: &mut Conn, tx: &Transmit<'_>, client_id: &str) -> usize {
    let len = tx.len();
    let mut written = 0usize;
    let mut slices: Vec<IoSlice<'_>> = Vec::new();
    loop {
        // Room in rustls' buffer first.
        flush_tls(c, client_id);
        if c.failed || written >= len {
            break;
        }
        next_slices(tx, written, &mut slices);
        if slices.is_empty() {
            break;
        }
        let Some(tls) = c.tls.as_mut() else { break };
        match tls.writer().write_vectored(&slices) {
            Ok(0) => {
                // rustls' buffer is at its limit and the socket is full.
                trace!(
                    "[Producer clientId={client_id}] TLS write to {} blocked after {written} of \
                     {len} bytes",
                    c.addr
                );
                c.write_blocked = true;
                break;
            }
            Ok(w) => written += w,
            Err(e) => {
                info!(
                    "[Producer clientId={client_id}] TLS write to {} failed: {e}",
                    c.addr
                );
                c.failed = true;
                break;
            }
        }
    }
    if c.tls_blocked && written < len {
        c.write_blocked = true;
    }
    written
}

/// Fills `slices` with up to [`MAX_IOV`] chunks of `tx` from byte `written` on.
fn next_slices<'a>(tx: &Transmit<'a>, written: usize, slices: &mut Vec<IoSlice<'a>>) {
    slices.clear();
    let mut skip = written;
    for chunk in tx.chunks() {
        if skip >= chunk.len() {
            skip -= chunk.len();
            continue;
        }
        slices.push(IoSlice::new(chunk.get(skip..).unwrap_or_default()));
        skip = 0;
        if slices.len() == MAX_IOV {
            break;
        }
    }
}
