//! kafka-edge firmware for an emulated Cortex-M4F (QEMU `mps2-an386`), run by
//! `scripts/firmware`: a sensor node that produces its readings to Apache Kafka with the
//! kafka-edge producer (idempotent, murmur2-partitioned by sensor), over embassy-net on the
//! board's LAN9118 Ethernet, and reports every outcome over semihosting.
//!
//! Board support: [`lan9118`] (Ethernet for embassy-net), [`time`] (embassy-time on SysTick and
//! a free-running timer), [`executor`] (embassy's executor sleeping with WFI) and
//! [`semihosting`] (command line, wall clock, output, exit status). The producer is the core
//! (`kafka-edge-core`, its tables inline in a `static`) driven by `kafka-edge-embedded` over
//! two embassy-net TCP sockets.
//!
//! Command line (`-append`, words `key=value`):
//! - `port=<P>`: the broker's port (QEMU's `guestfwd` puts the broker at 10.0.2.100:P; every
//!   address the cluster advertises is reached there);
//! - `topic=<T>` (default `readings`), `count=<N>` readings (default 10000) of
//!   `sensors=<S>` sensors (default 16), at `rate=<R>` readings per second (default 0: as
//!   fast as the producer takes them);
//! - `linger=<ms>` (default 5), `progress=<N>` (a progress line every N readings);
//! - `clockcheck=<ms>`: only sleep that long on embassy-time and compare with the host's clock.
//!
//! It exits 0 when every reading was delivered, 1 otherwise.

#![no_std]
#![no_main]

pub mod executor;
pub mod lan9118;
pub mod readings;
pub mod semihosting;
pub mod time;

use core::cell::Cell;
use core::fmt;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use embassy_executor::Spawner;
use embassy_net::tcp::{ConnectError, TcpReader, TcpSocket, TcpWriter};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_time::{Instant, Timer};
use kafka_edge_core::record::Header;
use kafka_edge_core::{
    BrokerRef, ConfigError, FixedStorage, Limits, ProduceError, ProducerConfig, ProducerRecord,
};
use kafka_edge_embedded::{Clock, Connection, CoreProducer, Outcome, Producer};
use static_cell::{ConstStaticCell, StaticCell};

use crate::executor::Executor;
use crate::lan9118::Lan9118;
use crate::readings::{HEADER_SEQ, HEADER_UNIT, Reading};
use crate::semihosting::{CommandLine, WallClock};

/// The guest's address on QEMU's user network.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
/// QEMU's user-network gateway.
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// Where `scripts/firmware`'s `guestfwd` puts the broker.
const BROKER: Ipv4Address = Ipv4Address::new(10, 0, 2, 100);
/// The broker's port when the command line gives none.
const DEFAULT_PORT: u16 = 9092;

/// `buffer.memory`: 32 KiB, eight batches of `batch.size` 4 KiB.
const POOL_BYTES: usize = 32 * 1024;
/// Broker connections (the core's and the sockets').
const CONNECTIONS: usize = 2;
/// Each socket's receive and send buffers.
const SOCKET_RX: usize = 2048;
const SOCKET_TX: usize = 2048;

/// The producer's tables, inline: 2 topics, 16 partitions, 2 brokers, 2 connections, 16
/// batches, 4 KiB responses, 2 KiB request framing.
type Tables = FixedStorage<2, 16, 2, CONNECTIONS, 16, 4096, 2048>;
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
type Core = CoreProducer<&'static mut [u8], Tables>;

// Zeroed at link time (.bss).
static POOL: ConstStaticCell<[u8; POOL_BYTES]> = ConstStaticCell::new([0; POOL_BYTES]);
static CORE: StaticCell<Result<Core, ConfigError>> = StaticCell::new();
static SOCKET_BUFFERS: ConstStaticCell<[([u8; SOCKET_RX], [u8; SOCKET_TX]); CONNECTIONS]> =
    ConstStaticCell::new([([0; SOCKET_RX], [0; SOCKET_TX]); CONNECTIONS]);

/// Why the run failed.
#[derive(Debug)]
enum Failure {
    /// The command line could not be read.
    Cmdline(semihosting::CmdlineError),
    /// A command-line value (or a spawn) was wrong.
    BadArgument(&'static str),
    /// The producer's configuration was refused.
    Config(ConfigError),
    /// The Ethernet controller did not come up.
    Nic(lan9118::Error),
    /// A reading was refused or not accepted in time.
    Send(u32, kafka_edge_embedded::Error),
    /// Readings were not delivered.
    Undelivered { delivered: u32, count: u32 },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cmdline(e) => write!(f, "cannot read the command line: {e:?}"),
            Failure::BadArgument(key) => write!(f, "bad value for {key}= on the command line"),
            Failure::Config(e) => write!(f, "producer configuration: {e}"),
            Failure::Nic(e) => write!(f, "LAN9118: {e:?}"),
            Failure::Send(seq, e) => write!(f, "reading {seq}: {e}"),
            Failure::Undelivered { delivered, count } => {
                write!(f, "{delivered} of {count} readings delivered")
            }
        }
    }
}

/// Starts the time base and runs the executor with the application task.
#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        semihosting::exit(1)
    };
    // SAFETY: timer 0 of the MPS2 board is used by the time driver only.
    unsafe { time::init(&mut cp.SYST, time::TIMER0_BASE, time::CPU_HZ) };
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR
        .init(Executor::new())
        .run(|spawner| match app(spawner) {
            Ok(token) => spawner.spawn(token),
            Err(_) => semihosting::exit(1),
        })
}

/// Runs the application and ends the emulation with its status.
#[embassy_executor::task]
async fn app(spawner: Spawner) {
    let status = match run(spawner).await {
        Ok(()) => 0,
        Err(e) => {
            println!("firmware: FAILED: {}", e);
            1
        }
    };
    // The run ends here: how deep the stack went (static RAM is in the image, `size -A`).
    let used = stack_used();
    let room = stack_room();
    println!("firmware: stack high-water mark {} of {} bytes", used, room);
    if used >= room {
        println!("firmware: FAILED: the stack overflowed into static RAM");
        semihosting::exit(1)
    }
    semihosting::exit(status)
}

/// Runs the network stack.
#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Lan9118>) -> ! {
    runner.run().await
}

/// Microseconds of the host's clock since `start` (a `SYS_ELAPSED` reading), 0 if unknown.
fn host_us_since(start: Option<u64>) -> u64 {
    match (start, semihosting::elapsed_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a) / 1000,
        _ => 0,
    }
}

/// Compares embassy-time with the host's clock over `ms` milliseconds.
async fn clockcheck(ms: u32) {
    let aligned = WallClock::start_aligned().await;
    println!(
        "clockcheck: wall clock aligned to SYS_TIME: {} ms since the epoch",
        aligned.unix_ms()
    );
    let t0 = Instant::now();
    let h0 = semihosting::elapsed_ns();
    Timer::after_millis(u64::from(ms)).await;
    let measured = t0.elapsed().as_millis();
    let host_us = host_us_since(h0);
    println!(
        "clockcheck: slept {} ms on embassy-time ({} ms measured); the host's clock advanced {}.{:03} ms",
        ms,
        measured,
        host_us / 1000,
        host_us % 1000
    );
}

/// An embassy-net TCP socket as the producer's connection. Every broker the cluster
/// advertises (127.0.0.1:port on the host) is reached at [`BROKER`]:port.
struct BrokerSocket {
    socket: TcpSocket<'static>,
}

impl Connection for BrokerSocket {
    type ConnectError = ConnectError;
    type Reader<'a> = TcpReader<'a>;
    type Writer<'a> = TcpWriter<'a>;

    async fn connect(
        &mut self,
        _broker: BrokerRef,
        _host: &str,
        port: u16,
    ) -> Result<(), ConnectError> {
        self.socket.abort();
        // Requests are whole Kafka frames written at once: send them without waiting for
        // the previous segment's acknowledgement (Java and librdkafka set TCP_NODELAY too).
        self.socket.set_nagle_enabled(false);
        self.socket.connect((BROKER, port)).await
    }

    fn split(&mut self) -> (TcpReader<'_>, TcpWriter<'_>) {
        self.socket.split()
    }

    fn close(&mut self) {
        self.socket.abort();
    }
}

/// embassy-time as the producer's clock.
struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        Instant::now().as_millis()
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        Timer::at(Instant::from_millis(deadline_ms)).await;
    }
}

/// The run's parameters, from the command line.
struct Args {
    port: u16,
    topic: heapless::String<64>,
    count: u32,
    sensors: u32,
    rate: u32,
    linger: u32,
    progress: u32,
}

impl Args {
    fn read(cmdline: &CommandLine) -> Result<Self, Failure> {
        let mut topic = heapless::String::new();
        topic
            .push_str(cmdline.get("topic").unwrap_or("readings"))
            .map_err(|_| Failure::BadArgument("topic"))?;
        let num = |key: &'static str, default: u32| {
            cmdline
                .get_u32(key, default)
                .map_err(|_| Failure::BadArgument(key))
        };
        Ok(Self {
            port: cmdline
                .get_u16("port", DEFAULT_PORT)
                .map_err(|_| Failure::BadArgument("port"))?,
            topic,
            count: num("count", 10_000)?,
            sensors: num("sensors", 16)?,
            rate: num("rate", 0)?,
            linger: num("linger", 5)?,
            progress: num("progress", 0)?,
        })
    }
}

/// Brings the network up and produces the readings.
async fn run(spawner: Spawner) -> Result<(), Failure> {
    let wall = WallClock::start();
    let host_start = semihosting::elapsed_ns();
    let cmdline = CommandLine::read().map_err(Failure::Cmdline)?;
    println!("firmware: command line {:?}", cmdline.as_str());
    let ms = cmdline
        .get_u32("clockcheck", 0)
        .map_err(|_| Failure::BadArgument("clockcheck"))?;
    if ms > 0 {
        clockcheck(ms).await;
        return Ok(());
    }
    let args = Args::read(&cmdline)?;

    // SAFETY: the LAN9118 at 0x4020_0000 is used by this driver only, and DefaultHandler
    // routes its IRQ 13 to `lan9118::on_interrupt`.
    let nic = unsafe { Lan9118::mps2_an386() }.map_err(Failure::Nic)?;
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, 24),
        gateway: Some(GATEWAY),
        dns_servers: heapless::Vec::new(),
    });
    static RESOURCES: StaticCell<StackResources<{ CONNECTIONS + 1 }>> = StaticCell::new();
    let seed = wall.unix_ms() ^ host_start.unwrap_or(0);
    let (stack, runner) =
        embassy_net::new(nic, config, RESOURCES.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).map_err(|_| Failure::BadArgument("spawn"))?);
    stack.wait_config_up().await;
    produce(stack, &args, &wall, seed).await
}

/// Produces `args.count` readings and waits for every outcome.
async fn produce(
    stack: Stack<'static>,
    args: &Args,
    wall: &WallClock,
    seed: u64,
) -> Result<(), Failure> {
    let mut bootstrap: heapless::String<32> = heapless::String::new();
    fmt::write(&mut bootstrap, format_args!("{}:{}", BROKER, args.port))
        .map_err(|_| Failure::BadArgument("port"))?;
    let mut config = ProducerConfig::new(&bootstrap).map_err(Failure::Config)?;
    let mut linger: heapless::String<10> = heapless::String::new();
    fmt::write(&mut linger, format_args!("{}", args.linger))
        .map_err(|_| Failure::BadArgument("linger"))?;
    for (key, value) in [
        ("client.id", "kafka-edge-firmware"),
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("batch.size", "4096"),
        ("linger.ms", linger.as_str()),
    ] {
        config.set(key, value).map_err(Failure::Config)?;
    }
    let pool: &'static mut [u8] = POOL.take();
    // Built in its static (`init_with`): the producer never passes through the stack whole.
    let core: &'static mut Core = match CORE.init_with(|| Core::new(config, pool, LIMITS, seed)) {
        Ok(core) => core,
        Err(e) => return Err(Failure::Config(*e)),
    };
    println!(
        "firmware: producer {} bytes (tables inline), pool {} bytes",
        core::mem::size_of::<Core>(),
        POOL_BYTES
    );
    let sockets = SOCKET_BUFFERS
        .take()
        .each_mut()
        .map(|(rx, tx)| BrokerSocket {
            socket: TcpSocket::new(stack, rx, tx),
        });

    let delivered = Cell::new(0u32);
    let failed = Cell::new(0u32);
    let first_error: Cell<Option<ProduceError>> = Cell::new(None);
    let on_outcome = |o: &Outcome<'_>| match o.result {
        Ok(_) => delivered.set(delivered.get() + o.tickets.count()),
        Err(e) => {
            failed.set(failed.get() + o.tickets.count());
            if first_error.get().is_none() {
                first_error.set(Some(e));
            }
        }
    };
    // The driver copies requests into 512-byte buffers that the sockets' own send buffers
    // drain, and reads 512 bytes per wake: small, since they live in this task's future.
    let mut p: Producer<'_, _, _, _, _, _, CONNECTIONS, 512, 512> =
        Producer::new(core, sockets, EmbassyClock, on_outcome);

    println!(
        "firmware: producing {} readings of {} sensors to {} at {} (rate {}/s, linger.ms {})",
        args.count, args.sensors, args.topic, bootstrap, args.rate, args.linger
    );
    let start = p.now_ms();
    for seq in 0..args.count {
        if args.rate > 0 {
            let due = start + u64::from(seq) * 1000 / u64::from(args.rate);
            while p.now_ms() < due {
                p.poll(Some(due)).await;
            }
        }
        let reading = Reading::new(seq, args.sensors);
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
        let record = ProducerRecord {
            topic: &args.topic,
            partition: None,
            key: Some(reading.key()),
            value: Some(reading.value()),
            headers: &headers,
            timestamp: i64::try_from(wall.unix_ms()).unwrap_or(-1),
        };
        p.enqueue(&record)
            .await
            .map_err(|e| Failure::Send(seq, e))?;
        if args.progress > 0 && (seq + 1) % args.progress == 0 {
            println!(
                "firmware: progress: {} accepted, {} delivered, {} failed",
                seq + 1,
                delivered.get(),
                failed.get()
            );
        }
    }
    p.flush().await;
    let elapsed = p.now_ms().saturating_sub(start).max(1);
    p.close(5_000).await;
    let stats = *p.stats();
    let metrics = *p.core().metrics();
    let pid = p.core().producer_id_and_epoch();
    drop(p);
    println!(
        "firmware: done: {} readings, {} delivered, {} failed in {} ms ({} readings/s)",
        args.count,
        delivered.get(),
        failed.get(),
        elapsed,
        u64::from(args.count) * 1000 / elapsed
    );
    println!(
        "firmware: producer id {:?}; batches sent {}, retried {}; connections {} opened, {} failed to open, {} lost; first error {:?}",
        pid,
        metrics.batches_sent,
        metrics.batches_retried,
        stats.connects,
        stats.connect_failures,
        stats.connections_lost,
        first_error.get()
    );
    if delivered.get() != args.count || failed.get() != 0 {
        return Err(Failure::Undelivered {
            delivered: delivered.get(),
            count: args.count,
        });
    }
    Ok(())
}

unsafe extern "C" {
    /// The stack's top (cortex-m-rt: the end of RAM).
    static _stack_start: u32;
    /// The lowest address the stack may reach (cortex-m-rt: the end of static RAM).
    static _stack_end: u32;
}

/// The bytes between the end of static RAM and the top of RAM.
fn stack_room() -> usize {
    (&raw const _stack_start as usize).saturating_sub(&raw const _stack_end as usize)
}

/// The deepest the stack went (cortex-m-rt's `paint-stack` filled it with 0xCCCC_CCCC).
fn stack_used() -> usize {
    let top = &raw const _stack_start as usize;
    let mut at = &raw const _stack_end as usize;
    while at < top {
        // SAFETY: between `_stack_end` and `_stack_start` is RAM the stack owns, aligned to 4.
        let word = unsafe { core::ptr::read_volatile(at as *const u32) };
        if word != 0xCCCC_CCCC {
            break;
        }
        at += 4;
    }
    top - at
}

/// Device interrupts (no device crate): the LAN9118's line goes to its driver, any other ends
/// the run.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == lan9118::IRQ as i16 {
        lan9118::on_interrupt();
    } else {
        println!("firmware: unexpected exception or interrupt {}", irqn);
        semihosting::exit(1);
    }
}

/// Reports a hard fault and ends the run with status 1.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!("firmware: hard fault at pc {:#010x}", frame.pc());
    semihosting::exit(1)
}

/// Reports a panic and ends the run with status 1.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("firmware: panic: {}", info);
    semihosting::exit(1)
}
