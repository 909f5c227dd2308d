//! The JavaScript host this crate runs on: Node's `net` module, the timers, and the clock.
//! Everything the driver asks of the host goes through here, so a browser build (a
//! WebSocket instead of `net.Socket`) replaces only this module's socket half.

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "net")]
extern "C" {
    /// A Node `net.Socket`.
    pub(crate) type Socket;

    /// `net.connect(port, host)`: starts connecting at once; `connect` or `error` + `close`
    /// follow as events.
    #[wasm_bindgen(js_name = connect)]
    pub(crate) fn net_connect(port: u16, host: &str) -> Socket;

    /// Queues `data`; `false` when the socket's buffer is past its high-water mark (`drain`
    /// follows once it emptied).
    #[wasm_bindgen(method)]
    pub(crate) fn write(this: &Socket, data: &Uint8Array) -> bool;

    #[wasm_bindgen(method)]
    pub(crate) fn on(this: &Socket, event: &str, listener: &Function);

    #[wasm_bindgen(method, js_name = removeAllListeners)]
    pub(crate) fn remove_all_listeners(this: &Socket);

    #[wasm_bindgen(method)]
    pub(crate) fn destroy(this: &Socket);

    #[wasm_bindgen(method, js_name = setNoDelay)]
    pub(crate) fn set_no_delay(this: &Socket, no_delay: bool);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);

    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// The monotonic clock the core runs on: milliseconds since the process started.
pub(crate) fn now_ms() -> u64 {
    // `performance.now()` is a non-negative double of milliseconds with a fraction.
    performance_now() as u64
}

/// Wall-clock milliseconds since the Unix epoch, for record timestamps (`CreateTime`).
pub(crate) fn wall_clock_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A pending `setTimeout`, cleared when dropped: a timer left behind would keep Node's
/// event loop (and the process) alive until it fired.
#[derive(Debug)]
pub(crate) struct Timer(JsValue);

impl Timer {
    /// Calls `callback` once `at_ms` (on the [`now_ms`] scale) has passed.
    pub(crate) fn at(callback: &Function, at_ms: u64) -> Self {
        // setTimeout takes at most 2^31 - 1 ms; later wake-ups come back through a turn.
        let delay = at_ms.saturating_sub(now_ms()).min(i32::MAX as u64);
        // +1: the timer fires on a coarser clock than performance.now() and may run a
        // fraction of a millisecond early, which would cost a turn that does nothing.
        Self(set_timeout(callback, (delay + 1) as f64))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.0);
    }
}
