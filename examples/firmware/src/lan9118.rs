//! A driver for the SMSC LAN9118 Ethernet controller (as QEMU's MPS2 boards model it) behind
//! `embassy_net_driver::Driver`.
//!
//! Programmed I/O over the chip's 32-bit register window: frames go out through the TX data
//! FIFO (command words A and B, then the frame in little-endian words) and come in through
//! the RX status FIFO (one status word per frame: its length including the 4-byte FCS) and
//! the RX data FIFO. Reception is interrupt-driven: the RX status FIFO level interrupt
//! (`RSFL`, level 0: "at least one frame") wakes the network stack from the chip's IRQ line
//! ([`IRQ`]); the handler masks it and the driver unmasks it once the FIFO is empty again,
//! so a level-triggered chip does not storm. The link is reported up at all times (QEMU's
//! user network has no cable).
//!
//! Register layout: SMSC LAN9118 datasheet; QEMU `hw/net/lan9118.c`.

use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use core::task::Context;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

/// The LAN9118's register window on QEMU's mps2-an385/an386 (mps2-an500: `0xA000_0000`).
pub const BASE: usize = 0x4020_0000;

/// The LAN9118's interrupt line on QEMU's mps2-an385/an386 (external interrupt 13).
pub const IRQ: u16 = 13;

/// A locally administered MAC address (QEMU's default for its NICs).
pub const DEFAULT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// The largest frame handed to or taken from the stack: 1500 bytes of IP plus the 14-byte
/// Ethernet header (no FCS).
pub const MTU: usize = 1514;

/// Frame buffers: the largest frame with its FCS, rounded up to whole FIFO words.
const BUF_LEN: usize = 1536;

// Register offsets (bytes from the base).
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const FIFO_INT: usize = 0x68;
const RX_CFG: usize = 0x6c;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_DP_CTRL: usize = 0x78;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

/// `BYTE_TEST` always reads this (it tells the bus's byte order).
const BYTE_TEST_VALUE: u32 = 0x8765_4321;

// IRQ_CFG bits.
const IRQ_CFG_EN: u32 = 1 << 8;
const IRQ_CFG_POL_HIGH: u32 = 1 << 4;
const IRQ_CFG_PUSH_PULL: u32 = 1 << 0;

// INT_STS / INT_EN bits.
const INT_RSFL: u32 = 1 << 3;

// HW_CFG bits.
const HW_CFG_SRST: u32 = 1 << 0;
// PMT_CTRL bits.
const PMT_CTRL_READY: u32 = 1 << 0;
// TX_CFG bits.
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CFG_TXSAO: u32 = 1 << 2;
// RX_DP_CTRL bits.
const RX_DP_CTRL_FFWD: u32 = 1 << 31;

// MAC CSR access.
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MAC_CR: u8 = 1;
const MAC_ADDRH: u8 = 2;
const MAC_ADDRL: u8 = 3;
const MAC_CR_PRMS: u32 = 1 << 18;
const MAC_CR_FDPX: u32 = 1 << 20;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;

// TX command A: first and last segment; command B: packet tag in the high half.
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

// RX status word: frame length (with FCS) in bits 29:16, error summary in bit 15.
const RX_STS_ERROR: u32 = 1 << 15;
// TX status word: error summary in bit 15.
const TX_STS_ERROR: u32 = 1 << 15;

/// The shortest Ethernet frame without FCS; shorter frames are zero-padded before sending.
const MIN_FRAME: usize = 60;

/// Bounded waits on the chip (a real chip needs microseconds; QEMU none).
const SPIN_LIMIT: u32 = 100_000;

/// Woken by [`on_interrupt`] when frames are waiting in the RX FIFOs.
static RX_WAKER: AtomicWaker = AtomicWaker::new();

/// Why the chip could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `BYTE_TEST` did not read `0x87654321`: no LAN9118 at this address.
    NotFound(u32),
    /// The soft reset or a MAC register access did not complete.
    Timeout,
}

/// Counters of the driver's work, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the stack.
    pub rx_frames: u32,
    /// Frames dropped: errors flagged by the chip, or sizes the stack cannot take.
    pub rx_dropped: u32,
    /// Frames written to the TX FIFO.
    pub tx_frames: u32,
    /// TX status words with the error bit set.
    pub tx_errors: u32,
}

/// An external interrupt line as a `cortex_m` interrupt number.
#[derive(Clone, Copy)]
struct IrqLine(u16);

// SAFETY: `number` returns the line given to `Lan9118::new`, whose caller vouches for it
// (an external interrupt of the board).
unsafe impl InterruptNumber for IrqLine {
    fn number(self) -> u16 {
        self.0
    }
}

/// The base of the chip [`Lan9118::new`] brought up, for [`on_interrupt`] (0: none yet).
static ACTIVE_BASE: AtomicUsize = AtomicUsize::new(0);

/// Interrupts [`on_interrupt`] has handled.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// The chip's register window: 32-bit volatile accesses at `base + offset`.
#[derive(Clone, Copy)]
struct Regs {
    /// The window's base address.
    base: usize,
}

impl Regs {
    /// Reads the register at `offset`.
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base` is the LAN9118's MMIO window (given to `Lan9118::new`, which is
        // unsafe for that reason); every offset used is a 32-bit register inside it.
        unsafe { ptr::read_volatile((self.base + offset) as *const u32) }
    }

    /// Writes the register at `offset`.
    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`: a 32-bit register inside the chip's MMIO window.
        unsafe { ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Waits until the MAC CSR interface is idle.
    fn mac_wait(self) -> Result<(), Error> {
        for _ in 0..SPIN_LIMIT {
            if self.read(MAC_CSR_CMD) & MAC_CSR_BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::Timeout)
    }

    /// Reads MAC control/status register `index`.
    fn mac_read(self, index: u8) -> Result<u32, Error> {
        self.mac_wait()?;
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | u32::from(index));
        self.mac_wait()?;
        Ok(self.read(MAC_CSR_DATA))
    }

    /// Writes MAC control/status register `index`.
    fn mac_write(self, index: u8, value: u32) -> Result<(), Error> {
        self.mac_wait()?;
        self.write(MAC_CSR_DATA, value);
        self.write(MAC_CSR_CMD, MAC_CSR_BUSY | u32::from(index));
        self.mac_wait()
    }

    /// Frames waiting in the RX status FIFO.
    fn rx_frames_waiting(self) -> u32 {
        (self.read(RX_FIFO_INF) >> 16) & 0xff
    }
}

/// A LAN9118 brought up for Ethernet frames, with its frame buffers (about 3 KiB).
pub struct Lan9118 {
    /// The chip's registers.
    regs: Regs,
    /// Our MAC address.
    mac: [u8; 6],
    /// The frame lent to the stack by the last `receive`.
    rx_buf: [u8; BUF_LEN],
    /// The frame the stack writes before it goes to the TX FIFO.
    tx_buf: [u8; BUF_LEN],
    /// Counters.
    stats: Stats,
}

impl Lan9118 {
    /// Resets the chip at `base`, sets its MAC address, enables TX and RX, and unmasks its
    /// interrupt line `irq` in the NVIC. Route that interrupt to [`on_interrupt`].
    ///
    /// # Safety
    /// `base` must be the register window of a LAN9118 that nothing else accesses, and
    /// [`on_interrupt`] must handle `irq` (an unhandled line goes to the default handler).
    pub unsafe fn new(base: usize, irq: u16, mac: [u8; 6]) -> Result<Self, Error> {
        let regs = Regs { base };
        let test = regs.read(BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(Error::NotFound(test));
        }
        // First of all: an active-high, push-pull IRQ output. After reset it is active-low
        // open-drain, which the emulated NVIC sees as a line stuck high.
        regs.write(IRQ_CFG, IRQ_CFG_POL_HIGH | IRQ_CFG_PUSH_PULL);
        regs.write(HW_CFG, HW_CFG_SRST);
        let mut ready = false;
        for _ in 0..SPIN_LIMIT {
            if regs.read(HW_CFG) & HW_CFG_SRST == 0 && regs.read(PMT_CTRL) & PMT_CTRL_READY != 0 {
                ready = true;
                break;
            }
        }
        if !ready {
            return Err(Error::Timeout);
        }
        regs.write(IRQ_CFG, IRQ_CFG_POL_HIGH | IRQ_CFG_PUSH_PULL);
        regs.write(INT_EN, 0);
        regs.write(INT_STS, u32::MAX);

        regs.mac_write(
            MAC_ADDRL,
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        )?;
        regs.mac_write(MAC_ADDRH, u32::from_le_bytes([mac[4], mac[5], 0, 0]))?;
        // Own address and broadcast only (reset leaves it promiscuous), full duplex.
        let cr = regs.mac_read(MAC_CR)?;
        let cr = (cr & !MAC_CR_PRMS) | MAC_CR_FDPX | MAC_CR_TXEN | MAC_CR_RXEN;
        regs.mac_write(MAC_CR, cr)?;

        // TX on, status FIFO allowed to overrun (we read statuses only for counting).
        regs.write(TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        // RX: 4-byte end alignment, no data offset.
        regs.write(RX_CFG, 0);
        // RX status level 0: RSFL as soon as one frame waits. Keep the TX levels of reset.
        let fifo_int = regs.read(FIFO_INT);
        regs.write(FIFO_INT, fifo_int & !0xff);
        regs.write(INT_EN, INT_RSFL);
        regs.write(IRQ_CFG, IRQ_CFG_EN | IRQ_CFG_POL_HIGH | IRQ_CFG_PUSH_PULL);

        ACTIVE_BASE.store(base, Ordering::Release);
        let irq = IrqLine(irq);
        // SAFETY: the chip's IRQ output is now active-high push-pull with only RSFL enabled,
        // and the caller routes this line to `on_interrupt`, which acknowledges it.
        unsafe { NVIC::unmask(irq) };
        Ok(Lan9118 {
            regs,
            mac,
            rx_buf: [0; BUF_LEN],
            tx_buf: [0; BUF_LEN],
            stats: Stats::default(),
        })
    }

    /// The chip at QEMU mps2-an386's address and line with [`DEFAULT_MAC`].
    ///
    /// # Safety
    /// As for [`Lan9118::new`].
    pub unsafe fn mps2_an386() -> Result<Self, Error> {
        // SAFETY: forwarded to the caller.
        unsafe { Self::new(BASE, IRQ, DEFAULT_MAC) }
    }

    /// The chip's identification and revision (`ID_REV`: `0x0118_0001` on QEMU).
    pub fn id_rev(&self) -> u32 {
        self.regs.read(ID_REV)
    }

    /// The MAC address the chip filters on.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The driver's counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Reads and counts the TX status words (the frames the chip has sent).
    fn drain_tx_status(&mut self) {
        let used = (self.regs.read(TX_FIFO_INF) >> 16) & 0xff;
        for _ in 0..used {
            if self.regs.read(TX_STATUS_FIFO) & TX_STS_ERROR != 0 {
                self.stats.tx_errors += 1;
            }
        }
    }

    /// Drops the current RX frame of `words` FIFO words.
    fn discard(&mut self, words: usize) {
        if words >= 4 {
            self.regs.write(RX_DP_CTRL, RX_DP_CTRL_FFWD);
            for _ in 0..SPIN_LIMIT {
                if self.regs.read(RX_DP_CTRL) & RX_DP_CTRL_FFWD == 0 {
                    break;
                }
            }
        } else {
            for _ in 0..words {
                let _ = self.regs.read(RX_DATA_FIFO);
            }
        }
        self.stats.rx_dropped += 1;
    }

    /// Moves the next good frame (without FCS) into `rx_buf`; its length, or `None` when no
    /// frame waits.
    fn pop_frame(&mut self) -> Option<usize> {
        while self.regs.rx_frames_waiting() > 0 {
            let status = self.regs.read(RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3fff) as usize;
            let words = len.div_ceil(4);
            if status & RX_STS_ERROR != 0 || !(14 + 4..=BUF_LEN).contains(&len) {
                self.discard(words);
                continue;
            }
            for chunk in self.rx_buf[..words * 4].chunks_exact_mut(4) {
                chunk.copy_from_slice(&self.regs.read(RX_DATA_FIFO).to_le_bytes());
            }
            let frame = len - 4;
            if frame > MTU {
                self.stats.rx_dropped += 1;
                continue;
            }
            self.stats.rx_frames += 1;
            return Some(frame);
        }
        None
    }
}

/// Handles the LAN9118's interrupt: masks and acknowledges it, and wakes the receiver.
///
/// Call it from the handler of [`IRQ`] (with cortex-m-rt and no device crate: from
/// `DefaultHandler` when its `irqn` is [`IRQ`]).
pub fn on_interrupt() {
    let base = ACTIVE_BASE.load(Ordering::Acquire);
    if base == 0 {
        return;
    }
    let regs = Regs { base };
    // Mask first: on the real chip RSFL stays asserted while frames wait; the driver unmasks
    // it when it has emptied the FIFO.
    regs.write(INT_EN, 0);
    let pending = regs.read(INT_STS);
    regs.write(INT_STS, pending);
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    RX_WAKER.wake();
}

/// How many LAN9118 interrupts [`on_interrupt`] has handled.
pub fn interrupts() -> u32 {
    INTERRUPTS.load(Ordering::Relaxed)
}

/// A received frame, lent to the stack.
pub struct RxToken<'a> {
    /// The frame, without FCS.
    frame: &'a mut [u8],
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame in the TX FIFO.
pub struct TxToken<'a> {
    /// The chip's registers.
    regs: Regs,
    /// Where the stack writes the frame.
    buf: &'a mut [u8; BUF_LEN],
    /// The driver's counters.
    stats: &'a mut Stats,
}

impl embassy_net_driver::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let len = len.min(MTU);
        let r = f(&mut self.buf[..len]);
        // Pad runts with zeros (the upper layers' own lengths tell the padding apart).
        let wire = len.max(MIN_FRAME);
        self.buf[len..wire].fill(0);
        let wire_u32 = wire as u32;
        self.regs
            .write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | wire_u32);
        self.regs.write(TX_DATA_FIFO, (wire_u32 << 16) | wire_u32);
        let words = wire.div_ceil(4);
        self.buf[wire..words * 4].fill(0);
        for chunk in self.buf[..words * 4].chunks_exact(4) {
            let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.regs.write(TX_DATA_FIFO, word);
        }
        self.stats.tx_frames += 1;
        r
    }
}

impl embassy_net_driver::Driver for Lan9118 {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_>)> {
        self.drain_tx_status();
        // Register before looking, so a frame arriving after the look still wakes us.
        RX_WAKER.register(cx.waker());
        match self.pop_frame() {
            Some(len) => {
                let Lan9118 {
                    regs,
                    rx_buf,
                    tx_buf,
                    stats,
                    ..
                } = self;
                Some((
                    RxToken {
                        frame: &mut rx_buf[..len],
                    },
                    TxToken {
                        regs: *regs,
                        buf: tx_buf,
                        stats,
                    },
                ))
            }
            None => {
                // Empty: let the next frame interrupt us (a frame that came in meanwhile
                // raises the interrupt as soon as it is unmasked).
                self.regs.write(INT_EN, INT_RSFL);
                None
            }
        }
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_>> {
        self.drain_tx_status();
        // TDFREE: free bytes in the TX data FIFO; a frame needs its words and two commands.
        let free = (self.regs.read(TX_FIFO_INF) & 0xffff) as usize;
        if free < BUF_LEN + 8 {
            // QEMU sends at once; a real chip drains within a frame time: poll again.
            cx.waker().wake_by_ref();
            return None;
        }
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.tx_buf,
            stats: &mut self.stats,
        })
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
