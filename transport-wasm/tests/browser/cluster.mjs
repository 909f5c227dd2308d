// The browser stream across a broker's death (`scripts/wasm browser-cluster --dir D` runs
// this; D a three-node cluster; environment as for run.mjs):
// 1. a topic of 6 partitions, replication 3, min.insync.replicas 2;
// 2. the kafka-edge bridge in front of all three brokers (../gateway.mjs);
// 3. tests/browser_cluster.rs in headless Chromium: a send of 25 keyed records every 50 ms;
//    meanwhile broker 2 is SIGKILLed and, some seconds later, started again;
// 4. the librdkafka judge reads every record back: each exactly once, in send order within
//    its partition.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { startGateway } from '../gateway.mjs';
import { bootstrap, dir, judge, root, uniqueTopic } from '../node/helpers.mjs';

const CALLS = Number(process.env.KAFKA_EDGE_BROWSER_CALLS ?? 400); // 20 s at one per 50 ms
const PER_CALL = 25;
const RECORDS = CALLS * PER_CALL;
const KILL_AFTER_MS = 5000;
const DOWN_MS = 6000;
const say = (m) => console.error(`[browser-cluster] ${m}`);
const kafka = (...args) =>
  spawnSync(path.join(root, 'scripts/kafka'), [...args, '--dir', dir], { stdio: ['ignore', 'ignore', 'inherit'] });

function fail(message) {
  console.error(`browser cluster test FAILED: ${message}`);
  process.exit(1);
}

const topic = uniqueTopic('browser-cluster');
if (kafka('topic', topic, '--partitions', '6', '--replication', '3', '--config', 'min.insync.replicas=2').status !== 0) {
  fail('could not create the topic');
}
const gateway = await startGateway(bootstrap, { token: 'browser-test-token.1', topics: ['browser-*'] });
say(`${gateway.kind} ${gateway.url} -> ${bootstrap}; topic ${topic}; ${RECORDS} records in ${CALLS} calls`);
const cargo = ['test', '--locked', '-p', 'kafka-edge-wasm', '--target', 'wasm32-unknown-unknown', '--test', 'browser_cluster'];
const env = {
  ...process.env,
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER: process.env.WASM_BINDGEN_TEST_RUNNER,
  WASM_BINDGEN_TEST_TIMEOUT: '240',
  KAFKA_EDGE_BROWSER_URL: gateway.url,
  KAFKA_EDGE_BROWSER_TOKEN: gateway.token ?? '',
  KAFKA_EDGE_BROWSER_TOPIC: topic,
  KAFKA_EDGE_BROWSER_CALLS: String(CALLS),
};
try {
  // Built first, so the kill lands while the browser streams, not while rustc runs.
  if (spawnSync('cargo', [...cargo, '--no-run'], { cwd: root, env, stdio: 'inherit' }).status !== 0) {
    fail('the browser test did not build');
  }
  const t0 = Date.now();
  const test = spawn('cargo', cargo, { cwd: root, env, stdio: 'inherit' });
  const exited = new Promise((resolve) => test.on('exit', resolve));
  await new Promise((r) => setTimeout(r, KILL_AFTER_MS));
  say(`SIGKILL broker 2 at ${Date.now() - t0} ms`);
  kafka('kill', '2');
  await new Promise((r) => setTimeout(r, DOWN_MS));
  say(`starting broker 2 at ${Date.now() - t0} ms`);
  kafka('start', '2');
  say(`broker 2 back at ${Date.now() - t0} ms`);
  const code = await exited;
  if (code !== 0) {
    console.error(gateway.log().split('\n').slice(-30).join('\n'));
    fail(`the test in Chromium failed (exit ${code})`);
  }
  say(`the stream ended after ${((Date.now() - t0) / 1000).toFixed(1)} s, every call resolved`);

  const got = judge(topic);
  const seen = new Set();
  const last = new Map();
  for (const r of got) {
    const key = Buffer.from(r.key, 'hex').toString();
    const i = Number(key.slice('key-'.length));
    if (!(i >= 0 && i < RECORDS)) fail(`unexpected key ${key}`);
    if (seen.has(i)) fail(`${key} read twice`);
    seen.add(i);
    if (Buffer.from(r.value, 'hex').toString() !== `value-${i}`) fail(`${key}: value ${r.value}`);
    if ((last.get(r.partition) ?? -1) > i) fail(`partition ${r.partition}: ${key} after a later record`);
    last.set(r.partition, i);
  }
  if (seen.size !== RECORDS) fail(`the judge read ${seen.size} distinct records, ${RECORDS} were sent`);
  say(`the judge read all ${RECORDS} records exactly once, in order in each partition`);
} finally {
  gateway.stop();
}
