// Browser benchmark: msgs/s of the package in headless Chromium (the example page,
// examples/browser/) through a WebSocket gateway (the bridge, or
// KAFKA_EDGE_GATEWAY=websockify) to the one-node cluster of KAFKA_EDGE_DIR. Not a test:
// the browser figure of issue 9. `scripts/browser-page --bench [...]` runs it.
//
//   node bench.mjs [--records N] [--runs R] [--acks "1 all"] [--keys "keyless keyed"]
//                  [--warmup W] [--partitions P] [--json FILE]
//
// Defaults: N 200,000, R 3, W 20,000, P 6. The load shape of the Node benchmark
// (transport-wasm/bench/bench.mjs): 100-byte values, 16-byte keys out of 10,000 when keyed,
// pre-built arrays of 1,000 messages, 20 sends in flight; producer properties linger.ms 5,
// batch.size 262144, buffer.memory 64 MiB; acks=all keeps the default idempotence, acks=1
// turns it off (Java's rule).
//
// A run: a fresh topic of P partitions, a fresh page (so a fresh producer) loaded with the
// case in its query string; the page streams W records (warm-up: connection, metadata,
// V8's optimising tier), then N records. msgs/s is the page's own figure for the N (N over
// performance.now() from the first send to the last resolved); main thread us/msg is the
// page's main-thread busy time over the same stream (CDP Performance.getMetrics'
// TaskDuration: the wasm, its WebSockets and the page), per record. The broker must then hold
// exactly W + N records, counted by the librdkafka judge (scripts/judge --count-only, every
// record read with check.crcs=true). Runs interleave the cases (run 1 of each, then run 2);
// each case reports the median of its runs.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootstrap, createTopic, uniqueTopic } from '../node/helpers.mjs';
import { launchChromium, root, startServer, startGateway, waitStream } from './harness.mjs';

const VALUE_BYTES = 100;
const PER_CALL = 1000;
const IN_FLIGHT = 20;
const PROPS = { 'batch.size': 262144, 'buffer.memory': 64 << 20 };
const say = (m) => console.error(`[page] ${m}`);

function parseArgs(argv) {
  const a = { records: 200000, runs: 3, acks: '1 all', keys: 'keyless keyed', warmup: 20000, partitions: 6, json: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--records': a.records = Number(v()); break;
      case '--runs': a.runs = Number(v()); break;
      case '--acks': a.acks = v(); break;
      case '--keys': a.keys = v(); break;
      case '--warmup': a.warmup = Number(v()); break;
      case '--partitions': a.partitions = Number(v()); break;
      case '--json': a.json = path.resolve(v()); break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  for (const n of ['records', 'runs', 'partitions']) {
    if (!(Number.isInteger(a[n]) && a[n] > 0)) throw new Error(`--${n} must be a positive integer`);
  }
  if (!(Number.isInteger(a.warmup) && a.warmup >= 0)) throw new Error('--warmup must be an integer >= 0');
  return a;
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The records of `topic` as the judge counts them (every record read back). */
function judged(topic) {
  const counts = JSON.parse(
    execFileSync(path.join(root, 'scripts/judge'), ['--bootstrap', bootstrap, '--topic', topic, '--count-only'], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20,
    }),
  );
  return Object.values(counts).reduce((s, n) => s + n, 0);
}

/** Seconds the page's main thread has been busy (CDP Performance.getMetrics TaskDuration). */
async function mainThreadSeconds(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return metrics.find((m) => m.name === 'TaskDuration').value;
}

/** One stream on the page: click, wait for done, the page's figures. */
async function streamOn(page, n, timeoutMs) {
  await page.fill('#stream-n', String(n));
  // The click handler marks the stream 'starting' before it returns: no stale 'done'.
  await page.click('#stream');
  const r = await waitStream(page, timeoutMs);
  if (r.state !== 'done') throw new Error(`the page's stream failed: ${r.error.text}`);
  if (r.count !== n) throw new Error(`the page counted ${r.count} of ${n}`);
  return r;
}

const a = parseArgs(process.argv.slice(2));
const acksList = a.acks.split(/[\s,]+/).filter(Boolean);
const keysList = a.keys.split(/[\s,]+/).filter(Boolean);
for (const k of keysList) if (!['keyless', 'keyed'].includes(k)) throw new Error(`--keys: keyless or keyed, not ${k}`);
const cases = acksList.flatMap((acks) => keysList.map((keys) => ({ acks, keys })));

const gateway = await startGateway(bootstrap);
const server = await startServer();
const browser = await launchChromium();
const chromiumVersion = browser.version();
const runs = [];
try {
  say(`bench: Chromium ${browser.version()} through ${gateway.kind} to ${bootstrap}; ${cases.length} cases x ${a.runs} runs of ` +
    `${a.records} records (+${a.warmup} warm-up), ${VALUE_BYTES}-byte values, ${PER_CALL} per send, ${IN_FLIGHT} in flight`);
  const total = cases.length * a.runs;
  let done = 0;
  for (let run = 1; run <= a.runs; run++) {
    for (const c of cases) {
      const topic = uniqueTopic(`page-bench-${c.acks}-${c.keys}`);
      createTopic(topic, a.partitions);
      const context = await browser.newContext();
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Performance.enable');
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      try {
        await page.goto(`${server.url}?${new URLSearchParams({
          bridge: gateway.url, topic, acks: c.acks, linger: '5', props: JSON.stringify(PROPS),
          size: String(VALUE_BYTES), perCall: String(PER_CALL), inflight: String(IN_FLIGHT),
          keyed: c.keys === 'keyed' ? '1' : '0',
        })}`);
        // Generous: a shared 2-core machine; 10k records/s would be slow already.
        const timeout = 60000 + (a.records + a.warmup) / 10;
        if (a.warmup > 0) await streamOn(page, a.warmup, timeout);
        const busy0 = await mainThreadSeconds(cdp);
        const r = await streamOn(page, a.records, timeout);
        // The page's main thread (where the wasm and its WebSockets run) over the timed
        // stream, Chromium's own account; the polling of this script adds a little.
        const mainUsPerMsg = ((await mainThreadSeconds(cdp)) - busy0) * 1e6 / a.records;
        const stored = judged(topic);
        const expected = a.records + a.warmup;
        const msgsPerSec = a.records / (r.ms / 1000);
        // The machine is shared: the 1-minute load average says how shared it was.
        const load = os.loadavg()[0];
        runs.push({ ...c, run, msgsPerSec, mainUsPerMsg, ms: r.ms, stored, expected, load });
        done++;
        say(`${done}/${total} acks=${c.acks} ${c.keys} run ${run}: ${Math.round(msgsPerSec)} msgs/s ` +
          `(${a.records} in ${(r.ms / 1000).toFixed(2)} s, main thread ${mainUsPerMsg.toFixed(2)} us/msg), the judge read ${stored}/${expected}, ` +
          `load average ${load.toFixed(1)} on ${os.cpus().length} cores`);
        if (stored !== expected) throw new Error(`topic ${topic}: the broker holds ${stored} records, ${expected} were sent`);
        if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
      } finally {
        await context.close();
      }
    }
  }
} finally {
  await browser.close().catch(() => {});
  server.stop();
  gateway.stop();
}

const summary = cases.map((c) => {
  const rs = runs.filter((r) => r.acks === c.acks && r.keys === c.keys);
  return {
    client: 'edge-chromium', transport: gateway.kind, acks: c.acks, keys: c.keys, runs: rs.length,
    records: a.records, warmup: a.warmup, partitions: a.partitions, valueBytes: VALUE_BYTES,
    perCall: PER_CALL, inFlight: IN_FLIGHT, msgsPerSec: Math.round(median(rs.map((r) => r.msgsPerSec))),
    msgsPerSecRuns: rs.map((r) => Math.round(r.msgsPerSec)),
    mainThreadUsPerMsg: Number(median(rs.map((r) => r.mainUsPerMsg)).toFixed(2)),
    loadAvgRuns: rs.map((r) => Number(r.load.toFixed(2))), cores: os.cpus().length, chromium: chromiumVersion,
  };
});
console.log('| acks | keys | msgs/s (median) | main thread us/msg | runs | load average |');
console.log('|---|---|---:|---:|---|---|');
for (const s of summary) {
  console.log(`| ${s.acks} | ${s.keys} | ${s.msgsPerSec.toLocaleString('en')} | ${s.mainThreadUsPerMsg} | ` +
    `${s.msgsPerSecRuns.join(', ')} | ` +
    `${s.loadAvgRuns.join(', ')} |`);
}
if (a.json) {
  writeFileSync(a.json, summary.map((s) => JSON.stringify(s)).join('\n') + '\n');
  say(`wrote ${summary.length} cases to ${a.json}`);
}
