//! The application, the same on every board: a sensor node that produces its readings to
//! Apache Kafka with the kafka-edge producer (idempotent, murmur2-partitioned by sensor) over
//! embassy-net TCP sockets, and reports through its board.
//!
//! The board brings the network stack (built on [`stack_resources`]), a [`Board`] (how an
//! advertised broker address is reached, where report lines go, the wall clock) and the run's
//! [`Params`], then awaits [`produce`].
//!
//! Memory: everything large is in a `static`: the pool, the core producer with its tables,
//! the sockets' buffers and the driver ([`Driver`]: its connection slots and their buffers).
//! The task that awaits [`produce`] holds only references to them, so its future stays small
//! (spawning a task builds its future on the stack first). They are built by functions that
//! are not inlined, so that their frames are gone before the produce loop runs: the deepest
//! is the core's (the `ProducerConfig`, under 3 KB, and the copy of it that the core's
//! constructor takes by value; the core itself is constructed in its static). The whole
//! run's stack high-water mark is about 9 KB.

use core::cell::Cell;
use core::fmt;

use embassy_net::tcp::{ConnectError, TcpReader, TcpSocket, TcpWriter};
use embassy_net::{IpEndpoint, Ipv4Address, Stack, StackResources};
use embassy_time::{Instant, Timer};
use kafka_edge_core::record::Header;
use kafka_edge_core::{
    BrokerRef, ConfigError, FixedStorage, Limits, ProduceError, ProducerConfig, ProducerRecord,
};
use kafka_edge_embedded::{Clock, Connection, CoreProducer, OnOutcome, Outcome, Producer};
use static_cell::{ConstStaticCell, StaticCell};

use crate::readings::{HEADER_SEQ, HEADER_UNIT, Reading};

/// `buffer.memory`: 32 KiB, sixteen batches of `batch.size` 2 KiB: two per partition of a
/// six-partition topic plus spares, so the pool is not exhausted in steady state (an
/// exhausted pool sends every batch at once, as in Java, and batches stay tiny).
pub const POOL_BYTES: usize = 32 * 1024;
/// Broker connections (the core's and the sockets').
pub const CONNECTIONS: usize = 2;
/// The network stack's sockets: the producer's, and one to spare.
pub const SOCKETS: usize = CONNECTIONS + 1;
/// Each socket's receive and send buffers.
const SOCKET_RX: usize = 2048;
const SOCKET_TX: usize = 2048;
/// The driver's per-connection request buffer (drained by the socket's send buffer) and
/// read buffer.
const DRIVER_TX: usize = 512;
const DRIVER_RX: usize = 512;

/// The producer's tables, inline: 2 topics, 16 partitions, 2 brokers, 2 connections, 16
/// batches, 4 KiB responses, 2 KiB request framing.
pub type Tables = FixedStorage<2, 16, 2, CONNECTIONS, 16, 4096, 2048>;
/// The limits matching [`Tables`].
const LIMITS: Limits = Limits {
    topics: 2,
    partitions: 16,
    brokers: 2,
    connections: CONNECTIONS,
    batches: 16,
    response_bytes: 4096,
    request_bytes: 2048,
};
/// The core producer: its pool in [`POOL`], its tables inline.
pub type Core = CoreProducer<&'static mut [u8], Tables>;
/// The async driver over the core, with its connection slots and buffers.
pub type Driver = Producer<
    'static,
    &'static mut [u8],
    Tables,
    BrokerSocket,
    EmbassyClock,
    Tally,
    CONNECTIONS,
    DRIVER_TX,
    DRIVER_RX,
>;

// Zeroed at link time (.bss), or built in place (`init_with`): none passes through the stack.
static POOL: ConstStaticCell<[u8; POOL_BYTES]> = ConstStaticCell::new([0; POOL_BYTES]);
static CORE: StaticCell<Result<Core, ConfigError>> = StaticCell::new();
static SOCKET_BUFFERS: ConstStaticCell<[([u8; SOCKET_RX], [u8; SOCKET_TX]); CONNECTIONS]> =
    ConstStaticCell::new([([0; SOCKET_RX], [0; SOCKET_TX]); CONNECTIONS]);
static RESOURCES: ConstStaticCell<StackResources<SOCKETS>> =
    ConstStaticCell::new(StackResources::new());
static COUNTERS: ConstStaticCell<Counters> = ConstStaticCell::new(Counters::new());
static DRIVER: StaticCell<Driver> = StaticCell::new();

/// The network stack's resources, for `embassy_net::new` (once: a second call panics).
pub fn stack_resources() -> &'static mut StackResources<SOCKETS> {
    RESOURCES.take()
}

/// What the application needs of its board.
pub trait Board {
    /// Where the broker that the cluster advertises as `host:port` is reached; `None` when
    /// it cannot be (the connection then fails with `NoRoute`). There is no DNS: a board
    /// maps every address to its one route, or reads IPv4 literals ([`ipv4_literal`]).
    fn endpoint(host: &str, port: u16) -> Option<IpEndpoint>;

    /// Reports one line (no trailing newline).
    fn report(&self, line: fmt::Arguments<'_>);

    /// Milliseconds since the Unix epoch, if the board knows the time (the records'
    /// `CreateTime`; without it they carry none, -1).
    fn unix_ms(&self) -> Option<u64>;
}

/// The endpoint of an advertised `host:port` whose host is an IPv4 literal.
pub fn ipv4_literal(host: &str, port: u16) -> Option<IpEndpoint> {
    let address: Ipv4Address = host.parse().ok()?;
    Some(IpEndpoint::new(address.into(), port))
}

/// The run's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// `bootstrap.servers`.
    pub bootstrap: &'a str,
    /// `client.id`.
    pub client_id: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// How many readings.
    pub count: u32,
    /// Of how many sensors (taken in turn).
    pub sensors: u32,
    /// Readings per second (0: as fast as the producer takes them).
    pub rate: u32,
    /// `linger.ms`.
    pub linger: u32,
    /// A progress line every that many readings (0: none).
    pub progress: u32,
}

/// Why the run failed.
#[derive(Debug)]
pub enum Failure {
    /// The producer's configuration was refused.
    Config(ConfigError),
    /// A parameter does not fit.
    BadArgument(&'static str),
    /// A reading was refused or not accepted in time.
    Send(u32, kafka_edge_embedded::Error),
    /// Readings were not delivered.
    Undelivered { delivered: u32, count: u32 },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Config(e) => write!(f, "producer configuration: {e}"),
            Failure::BadArgument(key) => write!(f, "bad value for {key}"),
            Failure::Send(seq, e) => write!(f, "reading {seq}: {e}"),
            Failure::Undelivered { delivered, count } => {
                write!(f, "{delivered} of {count} readings delivered")
            }
        }
    }
}

/// An embassy-net TCP socket as the producer's connection; its board maps each advertised
/// broker address to an endpoint.
pub struct BrokerSocket {
    socket: TcpSocket<'static>,
    endpoint: fn(&str, u16) -> Option<IpEndpoint>,
}

impl Connection for BrokerSocket {
    type ConnectError = ConnectError;
    type Reader<'a> = TcpReader<'a>;
    type Writer<'a> = TcpWriter<'a>;

    async fn connect(
        &mut self,
        _broker: BrokerRef,
        host: &str,
        port: u16,
    ) -> Result<(), ConnectError> {
        self.socket.abort();
        let endpoint = (self.endpoint)(host, port).ok_or(ConnectError::NoRoute)?;
        // Requests are whole Kafka frames written at once: send them without waiting for
        // the previous segment's acknowledgement (Java and librdkafka set TCP_NODELAY too).
        self.socket.set_nagle_enabled(false);
        self.socket.connect(endpoint).await
    }

    fn split(&mut self) -> (TcpReader<'_>, TcpWriter<'_>) {
        self.socket.split()
    }

    fn close(&mut self) {
        self.socket.abort();
    }
}

/// embassy-time as the producer's clock.
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        Timer::at(Instant::from_millis(deadline_ms)).await;
    }
}

/// The outcomes so far.
pub struct Counters {
    delivered: Cell<u32>,
    failed: Cell<u32>,
    first_error: Cell<Option<ProduceError>>,
}

impl Counters {
    const fn new() -> Self {
        Self {
            delivered: Cell::new(0),
            failed: Cell::new(0),
            first_error: Cell::new(None),
        }
    }
}

/// The driver's outcome handler: counts into the [`Counters`] the run reads.
pub struct Tally(&'static Counters);

impl OnOutcome for Tally {
    fn on_outcome(&mut self, o: &Outcome<'_>) {
        let c = self.0;
        match o.result {
            Ok(_) => c.delivered.set(c.delivered.get() + o.tickets.count()),
            Err(e) => {
                c.failed.set(c.failed.get() + o.tickets.count());
                if c.first_error.get().is_none() {
                    c.first_error.set(Some(e));
                }
            }
        }
    }
}

/// Builds the core producer in its static, on the pool (once: a second call panics). Not
/// inlined: its frame (the configuration, which the core's constructor takes by value) is
/// gone before the produce loop runs; the core is constructed in place.
#[inline(never)]
fn core(params: &Params<'_>, seed: u64) -> Result<&'static mut Core, Failure> {
    let mut config = ProducerConfig::default();
    let mut linger: heapless::String<10> = heapless::String::new();
    fmt::write(&mut linger, format_args!("{}", params.linger))
        .map_err(|_| Failure::BadArgument("linger"))?;
    for (key, value) in [
        ("bootstrap.servers", params.bootstrap),
        ("client.id", params.client_id),
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("batch.size", "2048"),
        ("linger.ms", linger.as_str()),
    ] {
        config.set(key, value).map_err(Failure::Config)?;
    }
    let pool: &'static mut [u8] = POOL.take();
    match CORE.uninit().write(Core::new(config, pool, LIMITS, seed)) {
        Ok(core) => Ok(core),
        Err(e) => Err(Failure::Config(*e)),
    }
}

/// Builds the driver in its static over the core and the sockets (once: a second call
/// panics).
#[inline(never)]
fn driver<B: Board>(
    stack: Stack<'static>,
    core: &'static mut Core,
    counters: &'static Counters,
) -> &'static mut Driver {
    let sockets = SOCKET_BUFFERS
        .take()
        .each_mut()
        .map(|(rx, tx)| BrokerSocket {
            socket: TcpSocket::new(stack, rx, tx),
            endpoint: B::endpoint,
        });
    DRIVER.init_with(|| Producer::new(core, sockets, EmbassyClock, Tally(counters)))
}

/// Produces `params.count` readings over `stack` (configured and up) and waits for every
/// outcome; `seed` seeds the producer's randomness. Runs once per boot (the producer lives
/// in statics).
pub async fn produce<B: Board>(
    board: &B,
    stack: Stack<'static>,
    params: &Params<'_>,
    seed: u64,
) -> Result<(), Failure> {
    // Each step in a function of its own: their frames are gone before the loop runs.
    let core = core(params, seed)?;
    let counters: &'static Counters = COUNTERS.take();
    let p = driver::<B>(stack, core, counters);
    board.report(format_args!(
        "producer {} bytes (tables inline), pool {} bytes, driver {} bytes",
        core::mem::size_of::<Core>(),
        POOL_BYTES,
        core::mem::size_of::<Driver>()
    ));
    board.report(format_args!(
        "producing {} readings of {} sensors to {} at {} (rate {}/s, linger.ms {})",
        params.count, params.sensors, params.topic, params.bootstrap, params.rate, params.linger
    ));
    let start = p.now_ms();
    for seq in 0..params.count {
        if params.rate > 0 {
            let due = start + u64::from(seq) * 1000 / u64::from(params.rate);
            while p.now_ms() < due {
                p.poll(Some(due)).await;
            }
        }
        let reading = Reading::new(seq, params.sensors);
        let headers = [
            Header {
                key: HEADER_UNIT.0,
                value: Some(HEADER_UNIT.1),
            },
            Header {
                key: HEADER_SEQ,
                value: Some(reading.seq()),
            },
        ];
        let timestamp = board
            .unix_ms()
            .and_then(|ms| i64::try_from(ms).ok())
            .unwrap_or(-1);
        let record = ProducerRecord {
            topic: params.topic,
            partition: None,
            key: Some(reading.key()),
            value: Some(reading.value()),
            headers: &headers,
            timestamp,
        };
        p.enqueue(&record)
            .await
            .map_err(|e| Failure::Send(seq, e))?;
        if params.progress > 0 && (seq + 1) % params.progress == 0 {
            board.report(format_args!(
                "progress: {} accepted, {} delivered, {} failed",
                seq + 1,
                counters.delivered.get(),
                counters.failed.get()
            ));
        }
    }
    p.flush().await;
    let elapsed = p.now_ms().saturating_sub(start).max(1);
    p.close(5_000).await;
    let delivered = counters.delivered.get();
    let failed = counters.failed.get();
    board.report(format_args!(
        "done: {} readings, {} delivered, {} failed in {} ms ({} readings/s)",
        params.count,
        delivered,
        failed,
        elapsed,
        u64::from(params.count) * 1000 / elapsed
    ));
    let stats = p.stats();
    let metrics = p.core().metrics();
    board.report(format_args!(
        "producer id {:?}; batches sent {}, retried {}; connections {} opened, {} failed to open, {} lost; first error {:?}",
        p.core().producer_id_and_epoch(),
        metrics.batches_sent,
        metrics.batches_retried,
        stats.connects,
        stats.connect_failures,
        stats.connections_lost,
        counters.first_error.get()
    ));
    if delivered != params.count || failed != 0 {
        return Err(Failure::Undelivered {
            delivered,
            count: params.count,
        });
    }
    Ok(())
}
