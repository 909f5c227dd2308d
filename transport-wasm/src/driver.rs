//! The driver: the core behind `Rc<RefCell<..>>`, run by one task on the JavaScript event
//! loop (`spawn_local`).
//!
//! Socket events and commands never touch the core from their callbacks: events are queued
//! in the [`Inbox`] and wake the task; a turn of the task hands the queued inputs to the
//! core, runs its timers when due, runs the core's drain step ([`Producer::drain`] over
//! [`Sockets`]), settles the promises whose records all have their outcome, and sleeps until
//! the next event or the core's `poll_timeout` (a `setTimeout`). Commands (`send`, `flush`,
//! `close`) call the core directly and then [`Inbox::kick`] the task for the drain step.
//!
//! [`Producer::drain`]: kafka_edge_core::Producer::drain

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use kafka_edge_core::{
    BatchId, BrokerRef, ConnId, HeapStorage, ProduceError, Ticket, TicketRange, Transmit, Transport,
};
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::JsCast;
use wasm_bindgen_futures::JsFuture;

use web_sys::{BinaryType, MessageEvent, WebSocket};

use crate::js::{self, Timer};

/// The core as this transport instantiates it: the pool in a `Vec`, tables that grow.
pub(crate) type CoreProducer = kafka_edge_core::Producer<Vec<u8>, HeapStorage>;

/// A socket event, for the connection `conn` opened as generation `generation` (events of
/// a socket the core already replaced are dropped).
#[derive(Debug)]
enum Input {
    Connected(ConnId, u32),
    Received(ConnId, u32, Vec<u8>),
    Writable(ConnId, u32),
    Closed(ConnId, u32),
}

/// What wakes the driver task.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    inputs: Vec<Input>,
    /// A command ran: drain the core's outputs.
    kicked: bool,
    /// Resolves the promise the task sleeps on.
    wake: Option<Function>,
}

impl Inbox {
    fn push(&mut self, input: Input) {
        self.inputs.push(input);
        self.wake();
    }

    /// Asks for a turn (after a command: the core has outputs to drain).
    pub(crate) fn kick(&mut self) {
        self.kicked = true;
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(resolve) = self.wake.take() {
            // Resolving runs nothing now (promise reactions are microtasks).
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

/// The `send` call and record index of each accepted record of one batch, by ticket index.
#[derive(Debug, Default)]
pub(crate) struct BatchTickets {
    slots: Vec<Option<(u32, usize)>>,
    live: usize,
}

/// Where a delivered record landed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    pub(crate) partition: i32,
    /// -1 when unknown (`acks=0`).
    pub(crate) offset: i64,
    /// The broker's append time with `LogAppendTime` topics, else -1.
    pub(crate) log_append_time_ms: i64,
}

/// One `send` call: an outcome slot per record.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) outcomes: Vec<Option<Result<Placed, ProduceError>>>,
    /// Records accepted whose outcome has not arrived.
    pending: usize,
    /// Set once every record was accepted: resolved when `pending` is 0.
    done: Option<Function>,
}

/// How the producer reaches the brokers.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// TCP straight to the brokers' addresses (Node's `net`).
    Tcp,
    /// A WebSocket per connection to a gateway next to the cluster (`bridge.url`), which
    /// names the broker by node id or bootstrap index, never by address.
    Bridge {
        /// `ws://` or `wss://` URL without a trailing `/`.
        url: String,
        /// Offered as the subprotocol `kafka-edge.bearer.<token>` beside `kafka-edge`.
        token: Option<String>,
    },
}

impl Backend {
    /// The WebSocket URL for `broker`: `{url}/broker/{node id}` or `{url}/bootstrap/{i}`.
    fn url(url: &str, broker: BrokerRef) -> String {
        match broker {
            BrokerRef::Node(id) => format!("{url}/broker/{}", id.0),
            BrokerRef::Bootstrap(i) => format!("{url}/bootstrap/{i}"),
        }
    }
}

/// A WebSocket whose `bufferedAmount` passed this many bytes takes no more until it fell
/// below (a WebSocket has no `drain` event: the driver looks again after
/// [`WS_RETRY_MS`]).
const WS_HIGH_WATER: u32 = 4 << 20;
/// How long a blocked WebSocket waits before the driver looks at it again.
const WS_RETRY_MS: u64 = 5;

/// The socket of a connection.
enum Socket {
    Tcp(js::Socket),
    Ws {
        ws: WebSocket,
        /// Bytes of a frame not yet whole: a WebSocket message carries one whole frame.
        partial: Vec<u8>,
        /// The look at `bufferedAmount` after a block.
        retry: Option<Timer>,
    },
}

/// An open (or opening) socket for one of the core's connections.
struct Conn {
    socket: Socket,
    generation: u32,
    /// `write` returned false (or the WebSocket's buffer is full): hand out nothing more
    /// until the socket can take more.
    blocked: bool,
    listeners: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The listeners die with this value: detach them first, then close.
        match &self.socket {
            Socket::Tcp(socket) => {
                // Keep a no-op `error` listener (an `error` without one is an uncaught
                // exception).
                socket.remove_all_listeners();
                socket.on("error", &Function::new_no_args(""));
                socket.destroy();
            }
            Socket::Ws { ws, .. } => {
                ws.set_onopen(None);
                ws.set_onmessage(None);
                ws.set_onerror(None);
                ws.set_onclose(None);
                let _ = ws.close();
            }
        }
    }
}

/// The driver's state, borrowed by one turn or one command at a time.
pub(crate) struct Driver {
    pub(crate) core: CoreProducer,
    backend: Backend,
    conns: Vec<Option<Conn>>,
    next_generation: u32,
    /// The `send` call and record index of every accepted record without an outcome.
    tickets: BTreeMap<BatchId, BatchTickets>,
    pub(crate) calls: BTreeMap<u32, Call>,
    next_call: u32,
    /// Resolved once every accepted record has its outcome.
    flush_waiters: Vec<Function>,
    /// Resolved when something happened (an event or a timer) that may let a refused record
    /// in (metadata arrived, memory freed).
    progress_waiters: Vec<Function>,
    /// Resolved when `close` finished.
    close_waiters: Vec<Function>,
    closing: bool,
    /// The producer is closed and its task ended.
    pub(crate) done: bool,
}

/// What the JavaScript `Producer` holds: the driver and its inbox.
pub(crate) struct Shared {
    pub(crate) driver: RefCell<Driver>,
    pub(crate) inbox: Rc<RefCell<Inbox>>,
}

impl Shared {
    /// Starts the driver task for `core`.
    pub(crate) fn start(core: CoreProducer, backend: Backend) -> Rc<Self> {
        let shared = Rc::new(Self {
            driver: RefCell::new(Driver {
                core,
                backend,
                conns: Vec::new(),
                next_generation: 0,
                tickets: BTreeMap::new(),
                calls: BTreeMap::new(),
                next_call: 0,
                flush_waiters: Vec::new(),
                progress_waiters: Vec::new(),
                close_waiters: Vec::new(),
                closing: false,
                done: false,
            }),
            inbox: Rc::default(),
        });
        wasm_bindgen_futures::spawn_local(run(Rc::clone(&shared)));
        shared
    }

    /// Opens a call of `records` records; returns its id.
    pub(crate) fn open_call(&self, records: usize) -> u32 {
        let mut d = self.driver.borrow_mut();
        let id = d.next_call;
        d.next_call = d.next_call.wrapping_add(1);
        let call = Call {
            outcomes: vec![None; records],
            pending: 0,
            done: None,
        };
        d.calls.insert(id, call);
        id
    }

    /// Record `index` of `call` was accepted as `ticket`.
    pub(crate) fn accepted(&self, call: u32, index: usize, ticket: Ticket) {
        let mut d = self.driver.borrow_mut();
        if let Some(c) = d.calls.get_mut(&call) {
            c.pending += 1;
            let e = d.tickets.entry(ticket.batch()).or_default();
            let i = ticket.index() as usize;
            if e.slots.len() <= i {
                e.slots.resize(i + 1, None);
            }
            e.slots[i] = Some((call, index));
            e.live += 1;
        }
    }

    /// Accepted records without an outcome.
    pub(crate) fn pending(&self) -> u32 {
        let live: usize = self.driver.borrow().tickets.values().map(|t| t.live).sum();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// Drops `call` (a record was refused): outcomes of its accepted records are ignored.
    pub(crate) fn abandon(&self, call: u32) -> Option<Call> {
        self.driver.borrow_mut().calls.remove(&call)
    }

    /// Waits until every record of `call` has its outcome; returns them.
    pub(crate) async fn finish(&self, call: u32) -> Option<Call> {
        let promise = Promise::new(&mut |resolve, _| {
            let mut d = self.driver.borrow_mut();
            let done = d.done;
            match d.calls.get_mut(&call) {
                // No turn will come (closed), or no record is waiting: settle now.
                Some(c) if !done && c.pending > 0 => c.done = Some(resolve),
                _ => {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
        });
        self.inbox.borrow_mut().kick();
        let _ = JsFuture::from(promise).await;
        self.abandon(call)
    }

    /// Waits for an event or timer of the driver, or until `deadline_ms`.
    pub(crate) async fn progress(&self, deadline_ms: u64) {
        let mut timer = None;
        let promise = Promise::new(&mut |resolve, _| {
            timer = Some(Timer::at(&resolve, deadline_ms));
            self.driver.borrow_mut().progress_waiters.push(resolve);
        });
        self.inbox.borrow_mut().kick();
        let _ = JsFuture::from(promise).await;
        drop(timer);
    }

    /// Waits until every accepted record has its outcome (after the core's `flush`).
    pub(crate) async fn flushed(&self) {
        let promise = Promise::new(&mut |resolve, _| {
            self.driver.borrow_mut().flush_waiters.push(resolve);
        });
        self.inbox.borrow_mut().kick();
        let _ = JsFuture::from(promise).await;
    }

    /// Closes the producer (the core's `close` with `timeout_ms`, once) and waits until
    /// every record has its outcome and the sockets are closed.
    pub(crate) async fn closed(&self, timeout_ms: u64) {
        let promise = Promise::new(&mut |resolve, _| {
            let mut d = self.driver.borrow_mut();
            if d.done {
                let _ = resolve.call0(&JsValue::UNDEFINED);
                return;
            }
            if !d.closing {
                d.closing = true;
                d.core.close(js::now_ms(), timeout_ms);
            }
            d.close_waiters.push(resolve);
        });
        self.inbox.borrow_mut().kick();
        let _ = JsFuture::from(promise).await;
    }
}

/// The driver task: one turn per wake-up until the producer is closed.
async fn run(shared: Rc<Shared>) {
    loop {
        let inputs = {
            let mut inbox = shared.inbox.borrow_mut();
            inbox.kicked = false;
            std::mem::take(&mut inbox.inputs)
        };
        let wake_at = {
            let mut d = shared.driver.borrow_mut();
            d.turn(&shared.inbox, inputs);
            if d.done {
                return;
            }
            d.core.poll_timeout()
        };
        let mut timer = None;
        let promise = Promise::new(&mut |resolve, _| {
            let mut inbox = shared.inbox.borrow_mut();
            if inbox.kicked || !inbox.inputs.is_empty() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
                return;
            }
            timer = wake_at.map(|t| Timer::at(&resolve, t));
            inbox.wake = Some(resolve);
        });
        let _ = JsFuture::from(promise).await;
        drop(timer);
    }
}

impl Driver {
    /// One turn: inputs, timers, the drain step, then the promises it settles.
    fn turn(&mut self, inbox: &Rc<RefCell<Inbox>>, inputs: Vec<Input>) {
        let now = js::now_ms();
        let mut happened = !inputs.is_empty();
        for input in inputs {
            self.handle(now, input);
        }
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
            happened = true;
        }
        let mut sockets = Sockets {
            backend: &self.backend,
            conns: &mut self.conns,
            next_generation: &mut self.next_generation,
            inbox,
            tickets: &mut self.tickets,
            calls: &mut self.calls,
        };
        self.core.drain(now, &mut sockets);

        for call in self.calls.values_mut() {
            if call.pending == 0
                && let Some(done) = call.done.take()
            {
                let _ = done.call0(&JsValue::UNDEFINED);
            }
        }
        if self.core.is_flushed() {
            resolve_all(&mut self.flush_waiters);
        }
        if happened {
            resolve_all(&mut self.progress_waiters);
        }
        if self.closing && self.core.is_closed() {
            self.conns.clear();
            self.done = true;
            resolve_all(&mut self.close_waiters);
            resolve_all(&mut self.progress_waiters);
        }
    }

    fn handle(&mut self, now: u64, input: Input) {
        let (conn, generation) = match &input {
            Input::Connected(c, g)
            | Input::Received(c, g, _)
            | Input::Writable(c, g)
            | Input::Closed(c, g) => (*c, *g),
        };
        let Some(slot) = self.conns.get_mut(conn.index()) else {
            return;
        };
        if slot.as_ref().is_none_or(|c| c.generation != generation) {
            return; // an event of a socket closed since
        }
        match input {
            Input::Connected(..) => self.core.handle_connected(now, conn),
            Input::Received(_, _, bytes) => {
                self.core.handle_received(now, conn, &bytes);
            }
            Input::Writable(..) => {
                if let Some(c) = slot.as_mut() {
                    c.blocked = false;
                    if let Socket::Ws { retry, .. } = &mut c.socket {
                        *retry = None;
                    }
                }
                self.core.handle_writable(now, conn);
            }
            Input::Closed(..) => {
                *slot = None;
                self.core.handle_closed(now, conn);
            }
        }
    }
}

fn resolve_all(waiters: &mut Vec<Function>) {
    for resolve in waiters.drain(..) {
        let _ = resolve.call0(&JsValue::UNDEFINED);
    }
}

/// The core's [`Transport`] over the host's sockets, for one drain step.
struct Sockets<'a> {
    backend: &'a Backend,
    conns: &'a mut Vec<Option<Conn>>,
    next_generation: &'a mut u32,
    inbox: &'a Rc<RefCell<Inbox>>,
    tickets: &'a mut BTreeMap<BatchId, BatchTickets>,
    calls: &'a mut BTreeMap<u32, Call>,
}

impl Sockets<'_> {
    fn outcome(
        &mut self,
        tickets: TicketRange,
        result: impl Fn(Ticket) -> Result<Placed, ProduceError>,
    ) {
        let Some(e) = self.tickets.get_mut(&tickets.batch()) else {
            return;
        };
        for ticket in tickets.iter() {
            let Some((call, index)) = e
                .slots
                .get_mut(ticket.index() as usize)
                .and_then(Option::take)
            else {
                continue;
            };
            e.live -= 1;
            if let Some(c) = self.calls.get_mut(&call)
                && let Some(slot) = c.outcomes.get_mut(index)
            {
                *slot = Some(result(ticket));
                c.pending = c.pending.saturating_sub(1);
            }
        }
        if e.live == 0 {
            self.tickets.remove(&tickets.batch());
        }
    }
}

/// A listener that queues the input `make` builds from the event's argument.
fn listener(
    inbox: &Rc<RefCell<Inbox>>,
    make: impl Fn(JsValue) -> Option<Input> + 'static,
) -> Closure<dyn FnMut(JsValue)> {
    let inbox = Rc::clone(inbox);
    Closure::new(move |arg: JsValue| {
        if let Some(input) = make(arg) {
            inbox.borrow_mut().push(input);
        }
    })
}

impl Transport for Sockets<'_> {
    fn connect(&mut self, conn: ConnId, broker: BrokerRef, host: &str, port: u16) {
        let generation = *self.next_generation;
        *self.next_generation = generation.wrapping_add(1);
        let opened = match self.backend {
            Backend::Tcp => tcp_connect(self.inbox, conn, generation, host, port),
            Backend::Bridge { url, token } => ws_connect(
                self.inbox,
                conn,
                generation,
                &Backend::url(url, broker),
                token.as_deref(),
            ),
        };
        let Some((socket, listeners)) = opened else {
            // The host could not even start the connection: report it lost.
            self.inbox
                .borrow_mut()
                .push(Input::Closed(conn, generation));
            return;
        };
        let i = conn.index();
        if self.conns.len() <= i {
            self.conns.resize_with(i + 1, || None);
        }
        if let Some(slot) = self.conns.get_mut(i) {
            *slot = Some(Conn {
                socket,
                generation,
                blocked: false,
                listeners,
            });
        }
    }

    fn disconnect(&mut self, conn: ConnId) {
        if let Some(slot) = self.conns.get_mut(conn.index()) {
            *slot = None;
        }
    }

    fn delivered(
        &mut self,
        _topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        log_append_time_ms: i64,
    ) {
        let first = tickets.first_index();
        self.outcome(tickets, |t| {
            Ok(Placed {
                partition,
                offset: if base_offset >= 0 {
                    base_offset + i64::from(t.index() - first)
                } else {
                    -1
                },
                log_append_time_ms,
            })
        });
    }

    fn failed(&mut self, _topic: &str, _partition: i32, tickets: TicketRange, error: ProduceError) {
        self.outcome(tickets, |_| Err(error));
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let Some(Some(c)) = self.conns.get_mut(tx.conn().index()) else {
            return 0;
        };
        if c.blocked {
            return 0;
        }
        let len = tx.len();
        match &mut c.socket {
            Socket::Tcp(socket) => {
                // One copy into a JS buffer (Node's `writev` path would copy as well).
                let buf = Uint8Array::new_with_length(len as u32);
                let mut at = 0u32;
                for chunk in tx.chunks() {
                    let end = at + chunk.len() as u32;
                    buf.subarray(at, end).copy_from(chunk);
                    at = end;
                }
                // Node takes every byte; `false` asks us to wait for `drain` before the next.
                if !socket.write(&buf) {
                    c.blocked = true;
                }
                len
            }
            Socket::Ws { ws, partial, retry } => {
                if ws.buffered_amount() > WS_HIGH_WATER {
                    c.blocked = true;
                    let (conn, generation) = (tx.conn(), c.generation);
                    let wake =
                        listener(self.inbox, move |_| Some(Input::Writable(conn, generation)));
                    *retry = Some(Timer::at(
                        wake.as_ref().unchecked_ref(),
                        js::now_ms() + WS_RETRY_MS,
                    ));
                    c.listeners.push(wake);
                    return 0;
                }
                partial.reserve(len);
                for chunk in tx.chunks() {
                    partial.extend_from_slice(chunk);
                }
                // Each whole frame (length prefix included) as one binary message. A
                // message sent on a closing socket is dropped by the browser; its `close`
                // event reports the loss.
                let mut sent = 0;
                while let Some(frame) = whole_frame(partial.get(sent..).unwrap_or_default()) {
                    let _ = ws.send_with_u8_array(frame);
                    sent += frame.len();
                }
                partial.drain(..sent);
                len
            }
        }
    }
}

/// The first whole Kafka frame (4-byte big-endian length prefix and that many bytes) at
/// the start of `bytes`, if it is all there.
fn whole_frame(bytes: &[u8]) -> Option<&[u8]> {
    let prefix: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let size = usize::try_from(i32::from_be_bytes(prefix)).ok()?;
    bytes.get(..4 + size)
}

/// Listeners of one socket, kept alive as long as the socket.
type Listeners = Vec<Closure<dyn FnMut(JsValue)>>;

/// A Node TCP socket to `host:port` with its listeners, or `None` without Node's `net`.
fn tcp_connect(
    inbox: &Rc<RefCell<Inbox>>,
    conn: ConnId,
    generation: u32,
    host: &str,
    port: u16,
) -> Option<(Socket, Listeners)> {
    let socket = js::net_connect(port, host)?;
    socket.set_no_delay(true);
    let listeners = vec![
        listener(inbox, move |_| Some(Input::Connected(conn, generation))),
        listener(inbox, move |data| {
            let bytes = data.dyn_into::<Uint8Array>().ok()?.to_vec();
            Some(Input::Received(conn, generation, bytes))
        }),
        listener(inbox, move |_| Some(Input::Writable(conn, generation))),
        // `error` is always followed by `close`, which reports the loss.
        listener(inbox, |_| None),
        listener(inbox, move |_| Some(Input::Closed(conn, generation))),
    ];
    for (event, f) in ["connect", "data", "drain", "error", "close"]
        .iter()
        .zip(&listeners)
    {
        socket.on(event, f.as_ref().unchecked_ref());
    }
    Some((Socket::Tcp(socket), listeners))
}

/// A WebSocket to `url` with its listeners, or `None` when the host refuses to open it (a
/// malformed URL, no `WebSocket`).
fn ws_connect(
    inbox: &Rc<RefCell<Inbox>>,
    conn: ConnId,
    generation: u32,
    url: &str,
    token: Option<&str>,
) -> Option<(Socket, Listeners)> {
    let ws = match token {
        // No subprotocol without a token: a byte-transparent proxy (websockify) accepts
        // the connection as well.
        None => WebSocket::new(url),
        Some(token) => {
            let protocols = js_sys::Array::of2(
                &JsValue::from_str("kafka-edge"),
                &JsValue::from_str(&format!("kafka-edge.bearer.{token}")),
            );
            WebSocket::new_with_str_sequence(url, &protocols)
        }
    }
    .ok()?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let listeners = vec![
        listener(inbox, move |_| Some(Input::Connected(conn, generation))),
        listener(inbox, move |event| {
            let data = event.dyn_into::<MessageEvent>().ok()?.data();
            match data.dyn_into::<js_sys::ArrayBuffer>() {
                Ok(buffer) => Some(Input::Received(
                    conn,
                    generation,
                    Uint8Array::new(&buffer).to_vec(),
                )),
                // A text message is not Kafka: drop the connection.
                Err(_) => Some(Input::Closed(conn, generation)),
            }
        }),
        // `error` is always followed by `close`, which reports the loss.
        listener(inbox, |_| None),
        listener(inbox, move |_| Some(Input::Closed(conn, generation))),
    ];
    let [open, message, error, close] = listeners.as_slice() else {
        return None;
    };
    ws.set_onopen(Some(open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
    ws.set_onerror(Some(error.as_ref().unchecked_ref()));
    ws.set_onclose(Some(close.as_ref().unchecked_ref()));
    Some((
        Socket::Ws {
            ws,
            partial: Vec::new(),
            retry: None,
        },
        listeners,
    ))
}
