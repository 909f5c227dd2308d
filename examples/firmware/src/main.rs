//! kafka-edge firmware for an emulated Cortex-M4F (QEMU `mps2-an386`), run by
//! `scripts/firmware`: a sensor node that produces its readings to Apache Kafka with the
//! kafka-edge producer (idempotent, murmur2-partitioned by sensor), over embassy-net on the
//! board's LAN9118 Ethernet, and reports every outcome over semihosting.
//!
//! This binary is the board only: [`lan9118`] (Ethernet for embassy-net), [`time`]
//! (embassy-time on SysTick and a free-running timer), [`semihosting`] (command line, wall
//! clock, output, exit status) and the executor (the library's, sleeping with WFI). The
//! application, the same on every board, is the library's [`firmware::app`]: the core
//! (`kafka-edge-core`, its tables inline in a `static`) driven by `kafka-edge-embedded` over
//! two embassy-net TCP sockets, everything large in statics.
//!
//! Command line (`-append`, words `key=value`):
//! - `port=<P>`: the broker's port (QEMU's `guestfwd` puts the broker at 10.0.2.100:P, or
//!   `broker=<IPv4>` elsewhere: 10.0.2.2 on an open network; every
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

pub mod lan9118;
pub mod semihosting;
pub mod time;

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::{ExceptionFrame, entry, exception};
use embassy_executor::Spawner;
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, Runner, Stack, StaticConfigV4};
use embassy_time::{Instant, Timer};
use firmware::app::{self, Board, Params};
use firmware::executor::Executor;
use static_cell::StaticCell;

use crate::lan9118::Lan9118;
use crate::semihosting::{CommandLine, WallClock};

/// The guest's address on QEMU's user network.
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
/// QEMU's user-network gateway.
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// Where `scripts/firmware`'s `guestfwd` puts the broker.
const BROKER: Ipv4Address = Ipv4Address::new(10, 0, 2, 100);
/// The broker's port when the command line gives none.
const DEFAULT_PORT: u16 = 9092;

/// Why the run failed.
#[derive(Debug)]
enum Failure {
    /// The command line could not be read.
    Cmdline(semihosting::CmdlineError),
    /// A command-line value (or a spawn) was wrong.
    BadArgument(&'static str),
    /// The Ethernet controller did not come up.
    Nic(lan9118::Error),
    /// The application failed.
    App(app::Failure),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cmdline(e) => write!(f, "cannot read the command line: {e:?}"),
            Failure::BadArgument(key) => write!(f, "bad value for {key}= on the command line"),
            Failure::Nic(e) => write!(f, "LAN9118: {e:?}"),
            Failure::App(e) => write!(f, "{e}"),
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
        .run(|spawner| match main_task(spawner) {
            Ok(token) => spawner.spawn(token),
            Err(_) => semihosting::exit(1),
        })
}

/// Runs the application and ends the emulation with its status.
#[embassy_executor::task]
async fn main_task(spawner: Spawner) {
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

/// Where the guest reaches the broker: [`BROKER`] (restricted network, `guestfwd`), or the
/// command line's `broker=` (10.0.2.2, QEMU's alias of the host, on an open network).
static BROKER_IP: AtomicU32 = AtomicU32::new(u32::from_be_bytes(BROKER.octets()));

/// The emulated board: every broker the cluster advertises (127.0.0.1:port on the host) is
/// reached at [`BROKER_IP`]:port; lines go out over semihosting; the wall clock is the host's.
struct Qemu {
    wall: WallClock,
}

impl Board for Qemu {
    fn endpoint(_host: &str, port: u16) -> Option<IpEndpoint> {
        let ip = Ipv4Address::from_bits(BROKER_IP.load(Ordering::Relaxed));
        Some(IpEndpoint::new(ip.into(), port))
    }

    fn report(&self, line: fmt::Arguments<'_>) {
        println!("firmware: {}", line);
    }

    fn unix_ms(&self) -> Option<u64> {
        Some(self.wall.unix_ms())
    }
}

/// The run's parameters, from the command line.
struct Args {
    port: u16,
    broker: Ipv4Address,
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
            broker: match cmdline.get("broker") {
                Some(ip) => ip.parse().map_err(|_| Failure::BadArgument("broker"))?,
                None => BROKER,
            },
            topic,
            count: num("count", 10_000)?,
            sensors: num("sensors", 16)?,
            rate: num("rate", 0)?,
            linger: num("linger", 5)?,
            progress: num("progress", 0)?,
        })
    }
}

/// Brings up the LAN9118 and the network stack on it, and spawns the stack's task. Not
/// inlined: the stack's runner, and the task's future around it (6 KB) that spawning builds,
/// pass through this frame only, not the application task's.
#[inline(never)]
fn start_network(spawner: Spawner, seed: u64) -> Result<Stack<'static>, Failure> {
    // SAFETY: the LAN9118 at 0x4020_0000 is used by this driver only, and DefaultHandler
    // routes its IRQ 13 to `lan9118::on_interrupt`.
    let nic = unsafe { Lan9118::mps2_an386() }.map_err(Failure::Nic)?;
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, 24),
        gateway: Some(GATEWAY),
        dns_servers: heapless::Vec::new(),
    });
    let (stack, runner) = embassy_net::new(nic, config, app::stack_resources(), seed);
    spawner.spawn(net_task(runner).map_err(|_| Failure::BadArgument("spawn"))?);
    Ok(stack)
}

/// Reads the command line, brings the network up and runs the application.
async fn run(spawner: Spawner) -> Result<(), Failure> {
    let wall = WallClock::start();
    let host_start = semihosting::elapsed_ns();
    // The command line (half a KiB) is read and dropped before the first await, so that it
    // is not kept in the task's future.
    let (clockcheck_ms, args) = {
        let cmdline = CommandLine::read().map_err(Failure::Cmdline)?;
        println!("firmware: command line {:?}", cmdline.as_str());
        let ms = cmdline
            .get_u32("clockcheck", 0)
            .map_err(|_| Failure::BadArgument("clockcheck"))?;
        (ms, Args::read(&cmdline)?)
    };
    if clockcheck_ms > 0 {
        clockcheck(clockcheck_ms).await;
        return Ok(());
    }

    let seed = wall.unix_ms() ^ host_start.unwrap_or(0);
    let stack = start_network(spawner, seed)?;
    stack.wait_config_up().await;

    let mut bootstrap: heapless::String<32> = heapless::String::new();
    BROKER_IP.store(args.broker.to_bits(), Ordering::Relaxed);
    fmt::write(
        &mut bootstrap,
        format_args!("{}:{}", args.broker, args.port),
    )
    .map_err(|_| Failure::BadArgument("port"))?;
    let params = Params {
        bootstrap: &bootstrap,
        client_id: "kafka-edge-firmware",
        topic: &args.topic,
        count: args.count,
        sensors: args.sensors,
        rate: args.rate,
        linger: args.linger,
        progress: args.progress,
    };
    app::produce(&Qemu { wall }, stack, &params, seed)
        .await
        .map_err(Failure::App)
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
