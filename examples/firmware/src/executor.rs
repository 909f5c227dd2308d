//! A thread-mode executor that sleeps with `WFI`.
//!
//! embassy-executor's own thread executor sleeps with `WFE`, which QEMU's TCG treats as a
//! mere yield: the guest then spins and takes a whole host core while idle (measured: 3.15 s
//! of CPU in a 3.2 s run that mostly slept). `WFI` halts the emulated CPU until an interrupt.
//! The pender (called when a task is woken, from thread mode or an interrupt) raises a flag,
//! and the loop sleeps only when no wake came since its last poll, checked with interrupts
//! masked so that a wake between the check and the `WFI` still ends the sleep.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{Spawner, raw};

/// Set by the pender when a task was woken; cleared by the loop before each poll.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// embassy-executor's pender: a task was woken (its context is unused: one executor).
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WOKEN.store(true, Ordering::Release);
    // Also wakes a WFE, should anything wait that way.
    cortex_m::asm::sev();
}

/// A thread-mode executor for one core: poll, then `WFI` when nothing was woken.
pub struct Executor {
    /// The task list and run queue.
    inner: raw::Executor,
    /// Thread mode only: not `Send`.
    not_send: PhantomData<*mut ()>,
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor {
    /// A new executor (one per program: they share the pender's flag).
    pub fn new() -> Self {
        Executor {
            inner: raw::Executor::new(core::ptr::null_mut()),
            not_send: PhantomData,
        }
    }

    /// Calls `init` with a spawner for the first tasks, then runs the tasks forever.
    pub fn run(&'static mut self, init: impl FnOnce(Spawner)) -> ! {
        init(self.inner.spawner());
        loop {
            WOKEN.store(false, Ordering::Release);
            // SAFETY: `poll` is only ever called from this loop, on the executor's own thread.
            unsafe { self.inner.poll() };
            cortex_m::interrupt::free(|_| {
                if !WOKEN.load(Ordering::Acquire) {
                    // With interrupts masked, a pending interrupt still ends the WFI; its
                    // handler runs as soon as the critical section ends.
                    cortex_m::asm::wfi();
                }
            });
        }
    }
}
