//! A `send` call's messages, copied out of JavaScript: KafkaJS's `Message` read through
//! typed getters, or a whole call packed by one JavaScript pass into one buffer of keys and
//! values (the common case: no headers), which records then borrow from.

use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error;

#[wasm_bindgen]
extern "C" {
    /// KafkaJS's `Message`, read through plain property loads (no Reflect, no key strings).
    type JsMessage;
    #[wasm_bindgen(method, getter, structural)]
    fn key(this: &JsMessage) -> JsValue;
    #[wasm_bindgen(method, getter, structural)]
    fn value(this: &JsMessage) -> JsValue;
    #[wasm_bindgen(method, getter, structural)]
    fn headers(this: &JsMessage) -> JsValue;
    #[wasm_bindgen(method, getter, structural)]
    fn partition(this: &JsMessage) -> JsValue;
    #[wasm_bindgen(method, getter, structural)]
    fn timestamp(this: &JsMessage) -> JsValue;
}

#[wasm_bindgen(inline_js = r#"
const enc = new TextEncoder();
// One pass over a send call's messages: keys and values into one buffer, the rest in `meta`
// (4 doubles a record: key length or -1, value length or -1, partition or -1, timestamp).
// null when a message needs the general path (headers, string timestamps, a wrong type).
export function pack_messages(messages, now) {
  const n = messages.length;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    if (m === null || typeof m !== 'object' || m.headers != null) return null;
    const k = m.key, v = m.value;
    if (k != null) size += typeof k === 'string' ? k.length * 3 : k.length;
    if (v != null) size += typeof v === 'string' ? v.length * 3 : v.length;
  }
  const buf = new Uint8Array(size);
  const meta = new Float64Array(n * 4);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    for (let f = 0; f < 2; f++) {
      const b = f === 0 ? m.key : m.value;
      let len = -1;
      if (b == null) len = -1;
      else if (b instanceof Uint8Array) { buf.set(b, at); len = b.length; }
      else if (typeof b === 'string') len = enc.encodeInto(b, buf.subarray(at)).written;
      else return null;
      if (len > 0) at += len;
      meta[i * 4 + f] = len;
    }
    const p = m.partition;
    if (p == null) meta[i * 4 + 2] = -1;
    else if (Number.isInteger(p) && p >= 0 && p <= 2147483647) meta[i * 4 + 2] = p;
    else return null;
    const t = m.timestamp;
    if (t == null) meta[i * 4 + 3] = now;
    else if (Number.isInteger(t)) meta[i * 4 + 3] = t;
    else return null;
  }
  return [buf.subarray(0, at), meta];
}
"#)]
extern "C" {
    fn pack_messages(messages: &Array, now: f64) -> JsValue;
}

/// Bytes of a record: null, owned, or a range of the call's packed buffer.
pub(crate) enum Span {
    Null,
    Own(Vec<u8>),
    At(usize, usize),
}

impl Span {
    fn from_option(b: Option<Vec<u8>>) -> Self {
        b.map_or(Self::Null, Self::Own)
    }

    pub(crate) fn get<'a>(&'a self, buf: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Self::Null => None,
            Self::Own(v) => Some(v),
            Self::At(from, to) => buf.get(*from..*to),
        }
    }
}

/// A record's parts, copied out of JavaScript.
pub(crate) struct OwnedRecord {
    pub(crate) key: Span,
    pub(crate) value: Span,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) partition: Option<i32>,
    /// Wall-clock milliseconds (`CreateTime`).
    pub(crate) timestamp: i64,
}

impl OwnedRecord {
    /// The records of a `send` call's `messages`, with the buffer their packed keys and
    /// values are ranges of: one pass in JavaScript when no message has headers or unusual
    /// types, else each message parsed on its own (which names what is wrong).
    pub(crate) fn parse_all(
        messages: &Array,
        wall_ms: i64,
    ) -> Result<(Vec<u8>, Vec<Self>), JsValue> {
        let packed = pack_messages(messages, wall_ms as f64);
        let Some(packed) = packed.dyn_ref::<Array>() else {
            let records = messages
                .iter()
                .map(|m| Self::parse(&m, wall_ms))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok((Vec::new(), records));
        };
        let buf = Uint8Array::from(packed.get(0)).to_vec();
        let meta = js_sys::Float64Array::from(packed.get(1)).to_vec();
        let mut at = 0usize;
        let mut span = |len: f64| {
            if len < 0.0 {
                Span::Null
            } else {
                let from = at;
                at += len as usize;
                Span::At(from, at)
            }
        };
        let records = meta
            .chunks_exact(4)
            .map(|m| Self {
                key: span(m[0]),
                value: span(m[1]),
                headers: Vec::new(),
                partition: (m[2] >= 0.0).then_some(m[2] as i32),
                timestamp: m[3] as i64,
            })
            .collect();
        Ok((buf, records))
    }

    /// `{ key, value, headers, partition, timestamp }` (KafkaJS's `Message`).
    pub(crate) fn parse(m: &JsValue, wall_ms: i64) -> Result<Self, JsValue> {
        if !m.is_object() {
            return Err(error::type_error("a message must be an object"));
        }
        let m: &JsMessage = m.unchecked_ref();
        let mut headers = Vec::new();
        let h = m.headers();
        if !h.is_null() && !h.is_undefined() {
            let h = h
                .dyn_ref::<Object>()
                .ok_or_else(|| error::type_error("headers must be an object"))?;
            for entry in Object::entries(h).iter() {
                let entry = Array::from(&entry);
                let key = entry.get(0).as_string().unwrap_or_default();
                let value = entry.get(1);
                match value.dyn_ref::<Array>() {
                    Some(values) => {
                        for v in values.iter() {
                            headers.push((key.clone(), bytes(&v, "a header value")?));
                        }
                    }
                    None => headers.push((key, bytes(&value, "a header value")?)),
                }
            }
        }
        let partition = match m.partition() {
            p if p.is_null() || p.is_undefined() => None,
            p => match p.as_f64() {
                Some(n) if n.fract() == 0.0 && n >= 0.0 && n <= f64::from(i32::MAX) => {
                    Some(n as i32)
                }
                _ => {
                    return Err(error::type_error(
                        "partition must be a non-negative integer",
                    ));
                }
            },
        };
        let timestamp = match m.timestamp() {
            t if t.is_null() || t.is_undefined() => wall_ms,
            t => match (t.as_f64(), t.as_string()) {
                (Some(n), _) if n.fract() == 0.0 => n as i64,
                (_, Some(s)) => s
                    .trim()
                    .parse()
                    .map_err(|_| error::type_error("timestamp must be an integer"))?,
                _ => return Err(error::type_error("timestamp must be an integer")),
            },
        };
        Ok(Self {
            key: Span::from_option(bytes(&m.key(), "key")?),
            value: Span::from_option(bytes(&m.value(), "value")?),
            headers,
            partition,
            timestamp,
        })
    }
}

/// A key, value or header value: a string (as UTF-8), a `Uint8Array`, or null.
fn bytes(v: &JsValue, what: &str) -> Result<Option<Vec<u8>>, JsValue> {
    if v.is_null() || v.is_undefined() {
        Ok(None)
    } else if let Some(a) = v.dyn_ref::<Uint8Array>() {
        Ok(Some(a.to_vec()))
    } else if let Some(s) = v.as_string() {
        Ok(Some(s.into_bytes()))
    } else {
        Err(error::type_error(&format!(
            "{what} must be a string, a Uint8Array or null"
        )))
    }
}
