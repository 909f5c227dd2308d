//! The JavaScript host this crate runs on: the sockets (Node's `net` module, or a browser's
//! `WebSocket`), the timers, and the clock. Everything the driver asks of the host goes
//! through here.
//!
//! Node's `net` is reached through `process.getBuiltinModule` (Node 20.16 and later), not
//! an `import`, so the one ES module of the package loads in browsers too, where only the
//! WebSocket half is ever used.

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A Node `net.Socket`.
    pub(crate) type Socket;

    /// Node's `net` module.
    type NetModule;

    /// `process.getBuiltinModule(name)`; throws where there is no `process` (browsers).
    #[wasm_bindgen(catch, js_namespace = process, js_name = getBuiltinModule)]
    fn get_builtin_module(name: &str) -> Result<JsValue, JsValue>;

    /// `net.connect(port, host)`: starts connecting at once; `connect` or `error` + `close`
    /// follow as events.
    #[wasm_bindgen(method, js_name = connect)]
    fn connect(this: &NetModule, port: u16, host: &str) -> Socket;

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

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);

    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Node's `net` module, or `None` where there is none (a browser, or a Node older than
/// 20.16 without `process.getBuiltinModule`).
fn net() -> Option<NetModule> {
    get_builtin_module("node:net")
        .ok()
        .filter(JsValue::is_object)
        .map(JsCast::unchecked_into)
}

/// Whether this host can open TCP connections (Node).
pub(crate) fn has_tcp() -> bool {
    net().is_some()
}

/// Whether this host has a `WebSocket` constructor (browsers, Node 22 and later).
pub(crate) fn has_websocket() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("WebSocket")).unwrap_or(false)
}

/// `net.connect(port, host)`, or `None` without Node's `net`.
pub(crate) fn net_connect(port: u16, host: &str) -> Option<Socket> {
    net().map(|net| net.connect(port, host))
}

/// The monotonic clock the core runs on: milliseconds since the page or process started.
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
