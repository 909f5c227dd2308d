// Shared by the *.test.mjs files: the package under test, the cluster of scripts/kafka, and
// the independent checks (the librdkafka judge, Java's murmur2 through scripts/oracle,
// Kafka's own DumpLogSegments).
//
// Environment (set by `scripts/wasm test --dir D`): KAFKA_EDGE_DIR (the cluster's directory,
// with its env file), KAFKA_EDGE_PKG (the built package), KAFKA_EDGE_ROOT (the repository).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = process.env.KAFKA_EDGE_ROOT ?? path.resolve(here, '../../..');
export const dir = process.env.KAFKA_EDGE_DIR ?? '/tmp/kafka-edge';
const pkg = process.env.KAFKA_EDGE_PKG ?? path.join(root, 'target/wasm-pkg');
export const { Producer } = await import(pathToFileURL(path.join(pkg, "kafka_edge.js")).href);

/** The cluster's env file (shell `KEY=value` lines) as an object. */
export const env = Object.fromEntries(
  readFileSync(path.join(dir, 'env'), 'utf8')
    .split('\n')
    .map((l) => l.match(/^([A-Z0-9_]+)=(.*)$/))
    .filter(Boolean)
    .map((m) => [m[1], m[2].replace(/^"(.*)"$/, '$1')]),
);
export const bootstrap = env.BOOTSTRAP;

const run = (script, args, input) =>
  execFileSync(path.join(root, 'scripts', script), args, {
    input,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['pipe', 'pipe', 'pipe'],
  });

/** A topic name no other run uses. */
export const uniqueTopic = (prefix) =>
  `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;

/** Creates `name` with `partitions` partitions (scripts/kafka waits for the leaders). */
export function createTopic(name, partitions) {
  run('kafka', ['topic', name, '--partitions', String(partitions), '--dir', dir]);
}

/** Every record of `topic` as the librdkafka judge reads it (check.crcs=true): objects with
 * partition, offset, key/value (hex or null), headers ([name, hex|null] pairs), timestamp. */
export function judge(topic) {
  return run('judge', ['--dir', dir, '--topic', topic])
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** Java's partitions for `keys` (Uint8Arrays) over `n` partitions, from scripts/oracle
 * (`Utils.toPositive(Utils.murmur2(key)) % n` in kafka-clients). */
export function oraclePartitions(keys, n) {
  const input = keys.map((k) => Buffer.from(k).toString('hex')).join('\n') + '\n';
  return run('oracle', ['murmur2', String(n)], input)
    .trim()
    .split('\n')
    .map((l) => Number(l.trim().split(/\s+/).pop()));
}

/** Java's `Utils.murmur2` (a signed 32-bit hash), written again in JavaScript. */
export function murmur2(data) {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ data.length) | 0;
  const n4 = data.length & ~3;
  for (let i = 0; i < n4; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  switch (data.length & 3) {
    case 3: h ^= data[n4 + 2] << 16; // falls through
    case 2: h ^= data[n4 + 1] << 8; // falls through
    case 1: h ^= data[n4]; h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Java's default partitioner picks for a keyed record. */
export const javaPartition = (key, n) => (murmur2(key) & 0x7fffffff) % n;

/** The batches of `topic`'s partition `p` as the broker stored them (Kafka's
 * DumpLogSegments on the first node's log files): producerId, producerEpoch, baseSequence,
 * lastSequence, baseOffset, lastOffset, count. */
export function storedBatches(topic, p) {
  if (env.ENGINE !== 'kafka') throw new Error('storedBatches needs the Apache Kafka engine');
  const logDir = path.join(path.dirname(env.NODE1_LOG), 'data', `${topic}-${p}`);
  const files = readdirSync(logDir).filter((f) => f.endsWith('.log')).map((f) => path.join(logDir, f));
  const cache = process.env.KAFKA_EDGE_CACHE ?? path.join(process.env.HOME, '.cache/kafka-edge');
  // The cluster's own Kafka (its env file names the version; the cache may hold several).
  const libs = env.KAFKA_VERSION
    ? `kafka-${env.KAFKA_VERSION}`
    : readdirSync(cache).filter((d) => /^kafka-\d/.test(d)).sort().pop();
  const out = execFileSync(
    'java',
    ['-cp', path.join(cache, libs, 'libs/*'), 'org.apache.kafka.tools.DumpLogSegments', '--files', files.join(',')],
    { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return out
    .split('\n')
    .filter((l) => l.startsWith('baseOffset:'))
    .map((l) => {
      const f = (name) => Number(l.match(new RegExp(`\\b${name}: (-?\\d+)`))[1]);
      return {
        baseOffset: f('baseOffset'), lastOffset: f('lastOffset'), count: f('count'),
        producerId: f('producerId'), producerEpoch: f('producerEpoch'),
        baseSequence: f('baseSequence'), lastSequence: f('lastSequence'),
        valid: /isvalid: true/.test(l),
      };
    });
}

export const hex = (s) => Buffer.from(s).toString('hex');
