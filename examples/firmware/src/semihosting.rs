//! The host side of the emulated board, through ARM semihosting (QEMU's
//! `-semihosting-config enable=on,target=native`): the command line (`-append`), wall-clock
//! time, output lines and the exit status.
//!
//! Every call here traps into the emulator (a `bkpt 0xab`) and stops the guest for its
//! duration: fine for start-up, log lines and the odd timestamp, not for a hot loop.

use core::fmt::{self, Write as _};

use cortex_m_semihosting::{nr, syscall, syscall1};

/// `SYS_ELAPSED`: ticks (of `SYS_TICKFREQ`) since the emulation started.
const SYS_ELAPSED: usize = 0x30;
/// `SYS_EXIT_EXTENDED`: exit with a reason and a sub-code (the exit status) on AArch32 too.
const SYS_EXIT_EXTENDED: usize = 0x20;
/// `ADP_Stopped_ApplicationExit`: a normal exit; the sub-code is the exit status.
const ADP_STOPPED_APPLICATION_EXIT: usize = 0x2_0026;

/// The longest command line [`CommandLine::read`] keeps.
pub const CMDLINE_CAPACITY: usize = 512;

/// Why the command line could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineError {
    /// The host refused `SYS_GET_CMDLINE` (no semihosting, or longer than the buffer).
    Unavailable,
    /// The command line is not UTF-8.
    NotUtf8,
}

/// The command line QEMU hands to the guest: the kernel's path, then `-append`'s text.
///
/// Held in a fixed buffer of [`CMDLINE_CAPACITY`] bytes. Arguments are whitespace-separated
/// `key=value` words; words without `=` (such as the kernel's path) are kept but have no key.
pub struct CommandLine {
    /// The bytes, `len` of them used.
    buf: [u8; CMDLINE_CAPACITY],
    /// How many bytes of `buf` hold the command line.
    len: usize,
}

impl CommandLine {
    /// Reads the command line with `SYS_GET_CMDLINE`.
    pub fn read() -> Result<Self, CmdlineError> {
        let mut line = CommandLine {
            buf: [0; CMDLINE_CAPACITY],
            len: 0,
        };
        // The parameter block: buffer address and its size in; the host writes the length
        // (without the terminating NUL) back into the second word.
        let mut block: [usize; 2] = [line.buf.as_mut_ptr() as usize, CMDLINE_CAPACITY];
        // SAFETY: the block points at a writable buffer of the size it states, which lives
        // across the call; the host writes at most that many bytes and one word of the block.
        let ret = unsafe { syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
        if ret != 0 || block[1] > CMDLINE_CAPACITY {
            return Err(CmdlineError::Unavailable);
        }
        line.len = block[1];
        // Some hosts count the terminating NUL: drop it.
        while line.len > 0 && line.buf[line.len - 1] == 0 {
            line.len -= 1;
        }
        if core::str::from_utf8(&line.buf[..line.len]).is_err() {
            return Err(CmdlineError::NotUtf8);
        }
        Ok(line)
    }

    /// The whole command line.
    pub fn as_str(&self) -> &str {
        // `read` checked that these bytes are UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// The whitespace-separated words of the command line.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.as_str().split_ascii_whitespace()
    }

    /// The value of the last `key=value` word with this key, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.words()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .last()
    }

    /// The value of `key` parsed as a `u16`, `default` when absent; `Err` with the text
    /// when present but not a number.
    pub fn get_u16(&self, key: &str, default: u16) -> Result<u16, &str> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| v),
        }
    }

    /// The value of `key` parsed as a `u32`, `default` when absent; `Err` with the text
    /// when present but not a number.
    pub fn get_u32(&self, key: &str, default: u32) -> Result<u32, &str> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| v),
        }
    }
}

/// Wall-clock time: seconds since the Unix epoch from the host (`SYS_TIME`).
pub fn unix_time_secs() -> u32 {
    // SAFETY: SYS_TIME takes no parameter block (the argument register must be 0).
    unsafe { syscall1(nr::TIME, 0) as u32 }
}

/// Nanoseconds since the emulation started, from the host's monotonic clock (`SYS_ELAPSED`;
/// QEMU's `SYS_TICKFREQ` is 1 GHz), or `None` if the host does not answer.
///
/// This checks the SysTick time base. (`SYS_CLOCK` is no substitute: QEMU answers it with
/// its own process CPU time.)
pub fn elapsed_ns() -> Option<u64> {
    let mut block: [u32; 2] = [0; 2];
    // SAFETY: SYS_ELAPSED writes a 64-bit count as two 32-bit words (low, high) into the
    // block, which is writable and lives across the call.
    let r = unsafe { syscall1(SYS_ELAPSED, block.as_mut_ptr() as usize) };
    (r == 0).then(|| u64::from(block[0]) | u64::from(block[1]) << 32)
}

/// Writes raw bytes to the host's standard output (`SYS_WRITE` on handle 1, no open needed
/// in QEMU: the `:tt` handles are opened once and cached).
pub fn write_bytes(bytes: &[u8]) {
    if let Ok(mut out) = cortex_m_semihosting::hio::hstdout() {
        let _ = out.write_all(bytes);
    }
}

/// A line of at most 256 bytes, formatted on the stack and written with one semihosting call
/// (longer lines are cut).
struct LineBuf {
    /// The line, `len` bytes of it used.
    buf: [u8; 256],
    /// How many bytes of `buf` are used.
    len: usize,
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len; // one byte kept for the newline
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Prints one line (a newline is added) on the host's standard output.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = line.write_fmt(args);
    line.buf[line.len] = b'\n';
    write_bytes(&line.buf[..line.len + 1]);
}

/// `println!`-style output on the host's standard output, one semihosting call per line.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::semihosting::print_line(format_args!($($arg)*))
    };
}

/// Ends the emulation with this exit status (QEMU's own exit status).
pub fn exit(status: u32) -> ! {
    let block: [usize; 2] = [ADP_STOPPED_APPLICATION_EXIT, status as usize];
    loop {
        // SAFETY: SYS_EXIT_EXTENDED reads a two-word block (reason, sub-code) that lives
        // across the call. It does not return under QEMU; if a debugger resumes us, retry.
        unsafe {
            syscall(SYS_EXIT_EXTENDED, &block);
        }
    }
}

/// Unix time in milliseconds for record timestamps: the host's `SYS_TIME` (whole seconds) at
/// a known instant, plus embassy-time's ticks since.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    /// Unix time in milliseconds at `base`.
    base_unix_ms: u64,
    /// The embassy-time instant of `base_unix_ms`.
    base: embassy_time::Instant,
}

impl WallClock {
    /// Reads `SYS_TIME` now: the clock is up to a second behind (the seconds are truncated).
    pub fn start() -> Self {
        WallClock {
            base_unix_ms: u64::from(unix_time_secs()) * 1000,
            base: embassy_time::Instant::now(),
        }
    }

    /// Waits (at most about a second) for `SYS_TIME` to tick over, polling it every
    /// millisecond, so that the clock is right to about a millisecond.
    pub async fn start_aligned() -> Self {
        let first = unix_time_secs();
        let deadline = embassy_time::Instant::now() + embassy_time::Duration::from_millis(1500);
        loop {
            let now = unix_time_secs();
            if now != first || embassy_time::Instant::now() >= deadline {
                return WallClock {
                    base_unix_ms: u64::from(now) * 1000,
                    base: embassy_time::Instant::now(),
                };
            }
            embassy_time::Timer::after_millis(1).await;
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        self.base_unix_ms + self.base.elapsed().as_millis()
    }
}
