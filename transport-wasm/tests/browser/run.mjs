// The browser test of the package (`scripts/wasm browser --dir D` runs this with
// KAFKA_EDGE_DIR, KAFKA_EDGE_PKG, KAFKA_EDGE_ROOT, the gateway's KAFKA_EDGE_BRIDGE (or
// KAFKA_EDGE_GATEWAY=websockify and WEBSOCKIFY), WASM_BINDGEN_TEST_RUNNER and CHROMEDRIVER set):
// 1. a topic of 6 partitions, and Java's partition for each key (scripts/oracle);
// 2. a WebSocket gateway in front of the cluster D (../gateway.mjs: the kafka-edge bridge,
//    with a client token allowed the topics browser-*; or websockify);
// 3. tests/browser.rs in headless Chromium (wasm-bindgen-test-runner + chromedriver), built
//    with the gateway's URL and token, the topic and the partitions in its environment;
// 4. every record read back by the librdkafka judge and compared exactly: keys, values,
//    headers, and Java's partitions.
import { spawnSync } from 'node:child_process';
import { startGateway } from '../gateway.mjs';
import { bootstrap, createTopic, hex, judge, oraclePartitions, root, uniqueTopic } from '../node/helpers.mjs';

const RECORDS = Number(process.env.KAFKA_EDGE_BROWSER_RECORDS ?? 400);
const PARTITIONS = 6;
const say = (m) => console.error(`[browser] ${m}`);

function fail(message) {
  console.error(`browser test FAILED: ${message}`);
  process.exit(1);
}

const topic = uniqueTopic('browser');
createTopic(topic, PARTITIONS);
const keys = Array.from({ length: RECORDS }, (_, i) => Buffer.from(`key-${i}`));
const javaPartitions = oraclePartitions(keys, PARTITIONS);
say(`topic ${topic}: ${RECORDS} keyed records; Java's partitions from scripts/oracle`);

const gateway = await startGateway(bootstrap, { token: 'browser-test-token.1', topics: ['browser-*'] });
try {
  say(`${gateway.kind} ${gateway.url} -> ${bootstrap}${gateway.token ? ' (client token, topics browser-*)' : ''}`);

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
        KAFKA_EDGE_BROWSER_URL: gateway.url,
        KAFKA_EDGE_BROWSER_TOKEN: gateway.token ?? '',
        KAFKA_EDGE_BROWSER_TOPIC: topic,
        KAFKA_EDGE_BROWSER_PARTITIONS: javaPartitions.join(','),
      },
    },
  );
  if (test.status !== 0) {
    console.error(gateway.log().split('\n').slice(-30).join('\n'));
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
  gateway.stop();
}
