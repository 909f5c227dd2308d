//! An `embassy-time` driver at 1 kHz (the `tick-hz-1_000` feature) with
//! `embassy-time-queue-utils`' timer queue: the SysTick interrupts every millisecond to run the
//! queue, and the time itself is read from a free-running 32-bit counter.
//!
//! Why two timers: QEMU (7.2) restarts the SysTick's period only when it handles the expiry,
//! about 1.4 µs late each time, so counting SysTick interrupts ran 0.14% slow (measured:
//! 10 000 ticks took 10 014 ms of host time; with a 100 Hz SysTick the loss fell to 0.002%).
//! A counter that never reloads has no such loss: the time is the CMSDK APB timer 0 of the
//! MPS2 boards (`0x4000_0000`, counting down at the 25 MHz peripheral clock, wrapping every
//! 171 s), extended to 64 bits in software (the SysTick handler reads it every millisecond, far
//! more often than it wraps). The SysTick's own jitter only delays a wake-up by under a tick.
//!
//! The queue is integrated with the executor's tasks (no fixed number of wake-up slots).
//! QEMU's time follows the host's clock (no `-icount`).

use core::cell::RefCell;
use core::ptr;
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// The core clock of QEMU's MPS2 boards (AN385/AN386/AN500): `SYSCLK` 25 MHz; the APB
/// timers count at the same rate.
pub const CPU_HZ: u32 = 25_000_000;

/// The CMSDK APB timer 0 of the MPS2 AN385/AN386 boards.
pub const TIMER0_BASE: usize = 0x4000_0000;

// CMSDK APB timer registers and bits.
const TIMER_CTRL: usize = 0x0;
const TIMER_VALUE: usize = 0x4;
const TIMER_RELOAD: usize = 0x8;
const TIMER_CTRL_ENABLE: u32 = 1 << 0;

/// The tick rate; must match the `tick-hz-*` feature of `embassy-time`.
pub const TICK_HZ: u32 = 1_000;

const _: () = assert!(embassy_time_driver::TICK_HZ == TICK_HZ as u64);

/// The driver's state, shared by thread mode and the SysTick exception.
struct State {
    /// The free-running counter's base address (0 before [`init`]).
    timer: usize,
    /// Counter cycles per tick.
    cycles_per_tick: u32,
    /// The counter's last reading, as cycles counted up since start (it counts down).
    last: u32,
    /// Cycles since [`init`], extended to 64 bits.
    cycles: u64,
    /// The tick at which the queue's earliest timer expires (`u64::MAX`: none).
    alarm: u64,
    /// The timers, in the tasks themselves (integrated queue).
    queue: Queue,
}

impl State {
    /// Reads the counter and returns the ticks since [`init`].
    fn now(&mut self) -> u64 {
        if self.timer == 0 {
            return 0;
        }
        // SAFETY: `timer` is the CMSDK APB timer given to `init`; VALUE is a 32-bit register.
        let value = unsafe { ptr::read_volatile((self.timer + TIMER_VALUE) as *const u32) };
        let up = !value;
        self.cycles += u64::from(up.wrapping_sub(self.last));
        self.last = up;
        self.cycles / u64::from(self.cycles_per_tick)
    }
}

/// The SysTick time driver (registered with `embassy_time_driver::time_driver_impl!`).
struct SysTickDriver {
    /// Everything, behind a critical section.
    state: Mutex<CriticalSectionRawMutex, RefCell<State>>,
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        self.state.lock(|s| s.borrow_mut().now())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        self.state.lock(|s| {
            let mut s = s.borrow_mut();
            let s = &mut *s;
            if s.queue.schedule_wake(at, waker) {
                // Wakes whatever is already due and gives the next deadline.
                let now = s.now();
                s.alarm = s.queue.next_expiration(now);
            }
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    state: Mutex::new(RefCell::new(State {
        timer: 0,
        cycles_per_tick: 1,
        last: 0,
        cycles: 0,
        alarm: u64::MAX,
        queue: Queue::new(),
    })),
});

/// Starts the time base: the CMSDK APB timer at `timer_base` free-running from its `cpu_hz`
/// clock, and the SysTick interrupting at [`TICK_HZ`] from the same processor clock. Call once,
/// before the executor runs (under QEMU's MPS2 boards: `init(&mut cp.SYST, TIMER0_BASE, CPU_HZ)`).
///
/// # Safety
/// `timer_base` must be a CMSDK APB timer that nothing else uses.
pub unsafe fn init(syst: &mut SYST, timer_base: usize, cpu_hz: u32) {
    // SAFETY: the caller gives us this timer's registers (32-bit, in its MMIO window).
    unsafe {
        ptr::write_volatile((timer_base + TIMER_CTRL) as *mut u32, 0);
        ptr::write_volatile((timer_base + TIMER_RELOAD) as *mut u32, u32::MAX);
        ptr::write_volatile((timer_base + TIMER_VALUE) as *mut u32, u32::MAX);
        ptr::write_volatile((timer_base + TIMER_CTRL) as *mut u32, TIMER_CTRL_ENABLE);
    }
    DRIVER.state.lock(|s| {
        let mut s = s.borrow_mut();
        s.timer = timer_base;
        s.cycles_per_tick = cpu_hz / TICK_HZ;
        s.last = 0;
        s.cycles = 0;
    });
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(cpu_hz / TICK_HZ - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Every tick: reads the time and wakes the timers that are due.
#[exception]
fn SysTick() {
    DRIVER.state.lock(|s| {
        let mut s = s.borrow_mut();
        let s = &mut *s;
        let now = s.now();
        if now >= s.alarm {
            s.alarm = s.queue.next_expiration(now);
        }
    });
}
