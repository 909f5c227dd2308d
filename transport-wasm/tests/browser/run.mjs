// The browser test of the package (`scripts/wasm browser --dir D` runs this with
// KAFKA_EDGE_DIR, KAFKA_EDGE_PKG, KAFKA_EDGE_ROOT, WEBSOCKIFY, WASM_BINDGEN_TEST_RUNNER and
// CHROMEDRIVER set):
// 1. a topic of 6 partitions, and Java's partition for each key (scripts/oracle);
// 2. a WebSocket gateway in front of the one-node cluster D (websockify: byte-transparent,
//    one fixed target, so /bootstrap/0 and /broker/1 both reach the one broker);
// 3. tests/browser.rs in headless Chromium (wasm-bindgen-test-runner + chromedriver), built
//    with the gateway's URL, the topic and the partitions in its environment;
// 4. every record read back by the librdkafka judge and compared exactly: keys, values,
//    headers, and Java's partitions.
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { bootstrap, createTopic, hex, judge, oraclePartitions, root, uniqueTopic } from '../node/helpers.mjs';

const RECORDS = Number(process.env.KAFKA_EDGE_BROWSER_RECORDS ?? 400);
const PARTITIONS = 6;
const say = (m) => console.error(`[browser] ${m}`);

function fail(message) {
  console.error(`browser test FAILED: ${message}`);
  process.exit(1);
}

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Resolves once something accepts connections on `port`. */
async function listening(port, ms = 15000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

const topic = uniqueTopic('browser');
createTopic(topic, PARTITIONS);
const keys = Array.from({ length: RECORDS }, (_, i) => Buffer.from(`key-${i}`));
const javaPartitions = oraclePartitions(keys, PARTITIONS);
say(`topic ${topic}: ${RECORDS} keyed records; Java's partitions from scripts/oracle`);

const port = await freePort();
const target = bootstrap.split(',')[0];
const gateway = spawn(process.env.WEBSOCKIFY, ['--verbose', `127.0.0.1:${port}`, target], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
let gatewayLog = '';
gateway.stderr.on('data', (d) => { gatewayLog += d; });
try {
  await listening(port);
  say(`websockify 127.0.0.1:${port} -> ${target}`);

  const url = `ws://127.0.0.1:${port}/kafka`;
  const t0 = Date.now();
  const test = spawnSync(
    'cargo',
    ['test', '--locked', '-p', 'kafka-edge-wasm', '--target', 'wasm32-unknown-unknown', '--test', 'browser'],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER: process.env.WASM_BINDGEN_TEST_RUNNER,
        WASM_BINDGEN_TEST_TIMEOUT: '120',
        KAFKA_EDGE_BROWSER_URL: url,
        KAFKA_EDGE_BROWSER_TOPIC: topic,
        KAFKA_EDGE_BROWSER_PARTITIONS: javaPartitions.join(','),
      },
    },
  );
  if (test.status !== 0) {
    console.error(gatewayLog.split('\n').slice(-30).join('\n'));
    fail(`the test in Chromium failed (exit ${test.status})`);
  }
  say(`test in Chromium passed in ${((Date.now() - t0) / 1000).toFixed(1)} s (build included)`);

  // Every record, exactly once, as the browser sent it, in Java's partition.
  const got = judge(topic);
  if (got.length !== RECORDS) fail(`the judge read ${got.length} records, ${RECORDS} were sent`);
  const seen = new Set();
  for (const r of got) {
    const key = Buffer.from(r.key, 'hex').toString();
    const i = Number(key.slice('key-'.length));
    if (!key.startsWith('key-') || !(i >= 0 && i < RECORDS)) fail(`unexpected key ${key}`);
    if (seen.has(i)) fail(`${key} read twice`);
    seen.add(i);
    if (r.value !== hex(`value-${i}`)) fail(`${key}: value ${r.value}`);
    if (r.partition !== javaPartitions[i]) fail(`${key}: partition ${r.partition}, Java's ${javaPartitions[i]}`);
    const seq = Buffer.alloc(4);
    seq.writeUInt32BE(i);
    const want = JSON.stringify([['trace', hex(`t-${i}`)], ['seq', seq.toString('hex')]]);
    if (JSON.stringify(r.headers) !== want) fail(`${key}: headers ${JSON.stringify(r.headers)}`);
  }
  say(`the judge read all ${RECORDS} records exactly (keys, values, headers, Java's partitions)`);
} finally {
  gateway.kill();
}
