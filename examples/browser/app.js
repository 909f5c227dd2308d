// The browser example: kafka-edge (served at ./pkg/) producing from this tab through a
// WebSocket gateway. Plain ES module, no framework, no bundler.
//
// Query string (each also an editable field): bridge, topic, acks, linger, props (JSON of
// more producer properties), n, size, perCall, inflight, keyed (1), prefix, flushOnHide (1).
//
// What a test can read (ids, data attributes):
//   #status[data-state]          idle | loading | connecting | ready | sending | error
//   #inflight[data-count]        records handed to the producer and not yet acknowledged
//   #last-delivery[data-partition][data-offset][data-latency-ms][data-key][data-value]
//   #stream-state[data-state]    idle | starting | building | running | done | error
//                                (starting as soon as the button's click returns)
//   #stream-count[data-count], #stream-rate[data-rate] (records/s),
//   #stream-total[data-ms][data-records]     (set when done; the page's own timing)
//   #error[data-name][data-code][data-reason][data-message]   (the last error, if any)
//   #hide-log[data-event][data-unacked][data-acknowledged][data-flushed]: the last hide
//                                (visibilitychange, pagehide), or on load the previous page's
//                                pagehide (data-event=previous-pagehide, data-topic)
//
// Stream records (so a reader can check every one): record i (0-based) of a stream has the
// value `${prefix}-${i}-` padded with '.' to `size` bytes (ASCII), and, when keyed, the key
// `key-` + (i % 10000) zero-padded to 12 digits (16 bytes). `prefix` defaults to a fresh
// `s<base36 time>` per stream, shown in #stream-state[data-prefix].

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const KEY_SPACE = 10000;

// ---- fields from the query string -------------------------------------------------------

const defaultBridge = `ws://${location.hostname || '127.0.0.1'}:8080/kafka`;
$('bridge').value = params.get('bridge') ?? defaultBridge;
$('topic').value = params.get('topic') ?? 'browser-events';
for (const [param, id] of [
  ['acks', 'acks'], ['linger', 'linger'], ['props', 'props'], ['n', 'stream-n'],
  ['size', 'stream-size'], ['perCall', 'stream-per-call'], ['inflight', 'stream-inflight'],
]) {
  if (params.has(param)) $(id).value = params.get(param);
}
if (params.has('keyed')) $('stream-keyed').checked = params.get('keyed') === '1';
if (params.has('flushOnHide')) $('flush-on-hide').checked = params.get('flushOnHide') === '1';

// ---- status, errors, the in-flight count -------------------------------------------------

function setStatus(state, text = state) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function showError(e, context) {
  const el = $('error');
  const name = e?.name ?? 'Error';
  const code = e?.code ?? '';
  const reason = e?.reason ?? '';
  const message = e?.message ?? String(e);
  Object.assign(el.dataset, { name, code: code ?? '', reason, message, context });
  el.textContent = `${context}: ${name}${code ? ` [${code}]` : ''}${reason ? ` (reason ${reason}` +
    `${e.retriable ? ', retriable' : ''})` : ''}: ${message}`;
  console.error(context, e);
}

function clearError() {
  const el = $('error');
  el.textContent = '';
  for (const k of Object.keys(el.dataset)) delete el.dataset[k];
}

/** Records given to the producer whose outcome is not known yet: what a closing tab loses. */
let unacked = 0;
/** Records the broker acknowledged since the page loaded. */
let acknowledged = 0;
function track(n) {
  unacked += n;
  $('inflight').dataset.count = String(unacked);
  $('inflight').textContent = String(unacked);
}

// ---- the producer -----------------------------------------------------------------------

let modulePromise = null;
let producer = null; // { key, promise of Producer }

/** The producer for the fields as they are now; a new one (the old one closed) when the
 * connection fields changed. */
async function getProducer() {
  const props = {
    'bridge.url': $('bridge').value.trim(),
    acks: $('acks').value,
    'linger.ms': Number($('linger').value),
  };
  const extra = $('props').value.trim();
  if (extra) {
    let more;
    try {
      more = JSON.parse(extra);
    } catch (e) {
      throw Object.assign(new TypeError(`more properties: not JSON: ${e.message}`), { reason: 'PAGE' });
    }
    Object.assign(props, more);
  }
  const key = JSON.stringify(props);
  if (producer?.key === key) return producer.promise;
  const old = producer;
  producer = {
    key,
    promise: (async () => {
      if (old) old.promise.then((p) => p.close(5000)).catch(() => {});
      setStatus('loading', 'loading the WebAssembly module');
      modulePromise ??= import('./pkg/kafka_edge.js');
      const { Producer } = await modulePromise;
      setStatus('connecting', `connecting to ${props['bridge.url']}`);
      const p = await Producer.connect(props);
      setStatus('ready', `ready (${props['bridge.url']}, acks=${props.acks})`);
      return p;
    })(),
  };
  producer.promise.catch(() => {
    setStatus('error', 'no producer (see the error below)');
    if (producer?.key === key) producer = null;
  });
  return producer.promise;
}

// ---- one message ------------------------------------------------------------------------

const encoder = new TextEncoder();

async function sendOne() {
  clearError();
  const topic = $('topic').value.trim();
  const key = $('key').value;
  const value = $('message').value;
  let p;
  try {
    p = await getProducer();
  } catch (e) {
    showError(e, 'connect');
    return;
  }
  const t0 = performance.now();
  track(1);
  try {
    const pos = await p.sendOne({ topic, key: key === '' ? null : key, value });
    const ms = performance.now() - t0;
    acknowledged += 1;
    const last = $('last-delivery');
    Object.assign(last.dataset, {
      partition: String(pos.partition), offset: pos.offset, latencyMs: ms.toFixed(1), key, value,
    });
    last.textContent = `delivered to ${pos.topic} partition ${pos.partition} at offset ${pos.offset} ` +
      `in ${ms.toFixed(1)} ms`;
    const li = document.createElement('li');
    li.className = 'mono';
    li.textContent = `p${pos.partition} @${pos.offset} ${ms.toFixed(1)} ms  ${key ? `${key}: ` : ''}${value}`;
    $('deliveries').prepend(li);
    // A growing counter so a test (or a person) sees each delivery land.
    $('deliveries').dataset.count = String($('deliveries').children.length);
  } catch (e) {
    showError(e, 'send');
  } finally {
    track(-1);
  }
}

// ---- a stream of N records --------------------------------------------------------------

/** Record i's value bytes: `${prefix}-${i}-` padded with '.' to `size`, written into `out`. */
function writeValue(out, prefix, i, size) {
  const head = encoder.encode(`${prefix}-${i}-`);
  if (head.length > size) throw new RangeError(`value bytes ${size} < ${head.length}`);
  out.set(head);
  out.fill(0x2e, head.length, size);
}

/** The calls of a stream, built before the clock starts, as an application holding its
 * events would have them: arrays of `perCall` messages, values (and keys) as Uint8Arrays
 * over one buffer. */
function buildCalls({ n, size, perCall, keyed, prefix }) {
  const values = new Uint8Array(n * size);
  const keys = keyed
    ? Array.from({ length: Math.min(n, KEY_SPACE) }, (_, k) => encoder.encode(`key-${String(k).padStart(12, '0')}`))
    : null;
  const calls = [];
  for (let start = 0; start < n; start += perCall) {
    const messages = [];
    for (let i = start; i < Math.min(n, start + perCall); i++) {
      const value = values.subarray(i * size, (i + 1) * size);
      writeValue(value, prefix, i, size);
      messages.push(keyed ? { key: keys[i % KEY_SPACE], value } : { value });
    }
    calls.push(messages);
  }
  return calls;
}

let streaming = false;

async function stream() {
  if (streaming) return;
  clearError();
  const n = Math.floor(Number($('stream-n').value));
  const size = Math.floor(Number($('stream-size').value));
  const perCall = Math.max(1, Math.floor(Number($('stream-per-call').value)));
  const lanes = Math.max(1, Math.floor(Number($('stream-inflight').value)));
  const keyed = $('stream-keyed').checked;
  const topic = $('topic').value.trim();
  const prefix = params.get('prefix') ?? `s${Date.now().toString(36)}`;
  const st = $('stream-state');
  const setState = (state, text = state) => {
    st.dataset.state = state;
    st.textContent = text;
  };
  if (!(n > 0)) {
    showError(new RangeError('records must be a positive number'), 'stream');
    return;
  }
  streaming = true;
  $('stream').disabled = true;
  setState('starting', 'connecting');
  st.dataset.prefix = prefix;
  for (const id of ['stream-count', 'stream-rate']) $(id).textContent = '0';
  $('stream-count').dataset.count = '0';
  $('stream-rate').dataset.rate = '0';
  $('stream-total').dataset.ms = '';
  $('stream-total').textContent = '-';
  let done = 0;
  let t0 = 0;
  let ticker = 0;
  const show = () => {
    const s = (performance.now() - t0) / 1000;
    const rate = s > 0 ? Math.round(done / s) : 0;
    $('stream-count').dataset.count = String(done);
    $('stream-count').textContent = `${done} / ${n}`;
    $('stream-rate').dataset.rate = String(rate);
    $('stream-rate').textContent = rate.toLocaleString('en');
  };
  try {
    const p = await getProducer();
    setState('building', `building ${n} records`);
    // Let the page paint the state before the (synchronous) build.
    await new Promise((r) => setTimeout(r, 0));
    const calls = buildCalls({ n, size, perCall, keyed, prefix });
    setState('running', `running (${keyed ? 'keyed' : 'keyless'}, ${lanes} sends of ${perCall} in flight)`);
    let next = 0;
    let failed = null;
    // `lanes` sends in flight: each lane sends its next array once its previous send resolved.
    const lane = async () => {
      while (failed === null && next < calls.length) {
        const messages = calls[next++];
        track(messages.length);
        try {
          await p.send({ topic, messages });
          done += messages.length;
          acknowledged += messages.length;
        } catch (e) {
          failed ??= e;
        } finally {
          track(-messages.length);
        }
      }
    };
    t0 = performance.now();
    ticker = setInterval(show, 200);
    await Promise.all(Array.from({ length: Math.min(lanes, calls.length) }, lane));
    const ms = performance.now() - t0;
    clearInterval(ticker);
    show();
    if (failed) throw failed;
    const rate = Math.round(n / (ms / 1000));
    $('stream-rate').dataset.rate = String(rate);
    $('stream-rate').textContent = rate.toLocaleString('en');
    Object.assign($('stream-total').dataset, { ms: ms.toFixed(1), records: String(n) });
    $('stream-total').textContent = `${(ms / 1000).toFixed(2)} s`;
    setState('done', `done: ${n} records in ${(ms / 1000).toFixed(2)} s`);
  } catch (e) {
    clearInterval(ticker);
    showError(e, 'stream');
    setState('error', `stopped after ${done} records`);
  } finally {
    streaming = false;
    $('stream').disabled = false;
  }
}

// ---- hidden tabs and closing tabs -------------------------------------------------------
//
// A hidden tab's timers are throttled (linger.ms and timeouts stretch), and a closed tab
// loses every record not yet acknowledged. With "flush on hide" the page asks the producer
// to send at once what it holds when the tab is hidden or left; either way it says how
// many records were still unacknowledged, here and in sessionStorage for the next load.

const HIDE_KEY = 'kafka-edge-example:last-hide';

function onHide(event) {
  const flush = $('flush-on-hide').checked;
  const log = $('hide-log');
  const at = unacked;
  const line = `${event.type}${event.type === 'visibilitychange' ? ' (hidden)' : ''}: ${at} records ` +
    `unacknowledged (${acknowledged} acknowledged); ${flush ? 'flush() started' : 'flush on hide is off'}`;
  Object.assign(log.dataset, { event: event.type, unacked: String(at), acknowledged: String(acknowledged), flushed: 'no' });
  log.textContent = line;
  console.warn(`[kafka-edge example] ${line}`);
  // Leaving the page fires pagehide, then visibilitychange (hidden): the pagehide record is the
  // one the next load shows.
  if (event.type === 'pagehide') {
    try {
      sessionStorage.setItem(HIDE_KEY, JSON.stringify({
        at: new Date().toISOString(), event: event.type, unacked: at, acknowledged, flush, topic: $('topic').value,
      }));
    } catch {
      // storage may be off: the log line above is all there is
    }
  }
  if (!flush || !producer) return;
  const t0 = performance.now();
  producer.promise
    .then((p) => p.flush())
    .then(() => {
      const ms = (performance.now() - t0).toFixed(1);
      log.dataset.flushed = 'yes';
      log.textContent = `${line}; flush() resolved in ${ms} ms, ${unacked} unacknowledged now`;
    })
    .catch((e) => showError(e, `flush on ${event.type}`));
}

document.addEventListener('visibilitychange', (e) => {
  if (document.visibilityState === 'hidden') onHide(e);
});
window.addEventListener('pagehide', onHide);

try {
  const last = JSON.parse(sessionStorage.getItem(HIDE_KEY) ?? 'null');
  sessionStorage.removeItem(HIDE_KEY);
  if (last && last.event === 'pagehide') {
    const log = $('hide-log');
    Object.assign(log.dataset, {
      event: 'previous-pagehide', unacked: String(last.unacked), acknowledged: String(last.acknowledged),
      topic: last.topic,
    });
    log.textContent = `when this tab last left the page (${last.at}), ${last.acknowledged} records were ` +
      `acknowledged and ${last.unacked} were not${last.unacked === 0 ? '' : last.flush
        ? ' (flush() was started; they may or may not have reached the broker)'
        : ' (flush on hide was off: lost unless the broker already had them)'}`;
  }
} catch {
  // no storage
}

// ---- wiring -----------------------------------------------------------------------------

$('send').addEventListener('click', sendOne);
$('message').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') sendOne();
});
$('stream').addEventListener('click', stream);
// Load the module at once, so the first click does not wait for it.
modulePromise = import('./pkg/kafka_edge.js');
modulePromise.catch((e) => {
  setStatus('error', 'the package did not load');
  showError(e, 'import ./pkg/kafka_edge.js');
});
document.body.dataset.ready = '1';
