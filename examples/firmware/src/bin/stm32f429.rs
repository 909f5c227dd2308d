//! The same sensor node on a real board: an STM32F429ZI (Nucleo-144 NUCLEO-F429ZI) with its
//! Ethernet MAC and the board's LAN8742 PHY (RMII) through embassy-stm32, reporting over
//! defmt-rtt. Built with feature `stm32f429` (`--bin kafka-edge-stm32f429`); no board runs
//! it here.
//!
//! This binary is the board only: clocks (168 MHz from the ST-LINK's 8 MHz), embassy-time on
//! a timer (embassy-stm32's time driver), the RNG for the seed, Ethernet and a static IPv4
//! configuration; the application is the library's [`firmware::app`], as on QEMU. Its
//! parameters are constants: the broker's address must be an IPv4 literal, and so must be
//! every address the cluster advertises (`advertised.listeners`): there is no DNS.

#![no_std]
#![no_main]

use core::fmt;

use cortex_m_rt::entry;
use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, Runner, Stack, StaticConfigV4};
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA, RNG};
use embassy_stm32::rcc::{
    AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPDiv, PllPreDiv, PllQDiv, PllSource,
    Sysclk,
};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use embassy_stm32::{Config, bind_interrupts};
use firmware::app::{self, Board, Params};
use firmware::executor::Executor;
use static_cell::{ConstStaticCell, StaticCell};

/// The board's address, netmask and gateway (no DHCP: a static configuration).
const ADDRESS: Ipv4Address = Ipv4Address::new(192, 168, 1, 50);
const PREFIX_LEN: u8 = 24;
const GATEWAY: Ipv4Address = Ipv4Address::new(192, 168, 1, 1);
/// A locally administered MAC address.
const MAC: [u8; 6] = [0x02, 0x00, 0x6b, 0x65, 0x00, 0x01];
/// The run's parameters.
const PARAMS: Params<'static> = Params {
    bootstrap: "192.168.1.10:9092",
    client_id: "kafka-edge-stm32f429",
    topic: "readings",
    count: 100_000,
    sensors: 16,
    rate: 100,
    linger: 5,
    progress: 1000,
};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<RNG>;
});

/// The Ethernet MAC with the LAN8742 (found on the MDIO bus by the generic PHY driver).
type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// The MAC's DMA descriptors and packet buffers: 4 frames each way.
static PACKETS: ConstStaticCell<PacketQueue<4, 4>> = ConstStaticCell::new(PacketQueue::new());

/// The board: advertised brokers are IPv4 literals, lines go to defmt, no wall clock (the
/// records carry no timestamp: the broker's log time stands in).
struct Nucleo;

impl Board for Nucleo {
    fn endpoint(host: &str, port: u16) -> Option<IpEndpoint> {
        app::ipv4_literal(host, port)
    }

    fn report(&self, line: fmt::Arguments<'_>) {
        defmt::info!("{}", defmt::Display2Format(&line));
    }

    fn unix_ms(&self) -> Option<u64> {
        None
    }
}

/// 168 MHz from the 8 MHz the ST-LINK feeds to HSE (bypass); 48 MHz for the RNG.
fn clocks() -> Config {
    let mut config = Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL168,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV7),
        divr: None,
    });
    config.rcc.sys = Sysclk::PLL1_P;
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config
}

#[entry]
fn main() -> ! {
    let p = embassy_stm32::init(clocks());
    let seed = Rng::new(p.RNG, Irqs).next_u64();
    // NUCLEO-F429ZI's RMII: REF_CLK PA1, CRS_DV PA7, RXD0 PC4, RXD1 PC5, TXD0 PG13, TXD1 PB13,
    // TX_EN PG11; MDIO PA2, MDC PC1.
    let device: Device = Ethernet::new(
        PACKETS.take(),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        MAC,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, PREFIX_LEN),
        gateway: Some(GATEWAY),
        dns_servers: heapless::Vec::new(),
    });
    let (stack, runner) = embassy_net::new(device, config, app::stack_resources(), seed);
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR.init(Executor::new()).run(move |spawner| {
        spawn(spawner, net_task(runner));
        spawn(spawner, main_task(stack, seed));
    })
}

/// Spawns a task, or stops here if its pool is taken.
fn spawn<S>(
    spawner: Spawner,
    token: Result<embassy_executor::SpawnToken<S>, embassy_executor::SpawnError>,
) {
    match token {
        Ok(token) => spawner.spawn(token),
        Err(e) => defmt::panic!("spawn: {}", defmt::Debug2Format(&e)),
    }
}

/// Runs the network stack.
#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// Waits for the link, then runs the application once.
#[embassy_executor::task]
async fn main_task(stack: Stack<'static>, seed: u64) {
    stack.wait_link_up().await;
    stack.wait_config_up().await;
    match app::produce(&Nucleo, stack, &PARAMS, seed).await {
        Ok(()) => defmt::info!("every reading delivered"),
        Err(e) => defmt::error!("FAILED: {}", defmt::Display2Format(&e)),
    }
}

/// Reports a panic over defmt and stops at a breakpoint.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    loop {
        cortex_m::asm::bkpt();
    }
}
