// On the 3-node cluster: the leader of some partitions is killed (SIGKILL) while a steady
// stream of keyed records goes out with acks=all and idempotence (the default), and started
// again later. Leadership moves to the other replicas (replication 3, min.insync.replicas 2,
// so the two survivors still take acks=all writes); every send resolves, and the librdkafka
// judge reads back every record exactly once, each in Java's murmur2 partition for its key,
// in sequence order within its partition.
//
//   scripts/kafka up --brokers 3 --dir D
//   KAFKA_EDGE_DIR=D KAFKA_EDGE_PKG=target/wasm-pkg KAFKA_EDGE_ROOT=. node --test transport-wasm/tests/cluster/
//
// It kills and restarts a broker of D: run it alone on that cluster.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { Producer, bootstrap, dir, env, javaPartition, judge, root, uniqueTopic } from '../node/helpers.mjs';

const exec = promisify(execFile);
// Asynchronous, so that the producer keeps running on this event loop meanwhile.
const kafka = (...args) => exec(path.join(root, 'scripts/kafka'), [...args, '--dir', dir]);
const cache = process.env.KAFKA_EDGE_CACHE ?? path.join(process.env.HOME, '.cache/kafka-edge');

/** The leader's node id of each partition of `topic`, from a broker that is up (librdkafka's
 * Metadata through the venv of scripts/kafka). */
async function leaders(topic) {
  const py = `
import json, sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(sys.argv[2], timeout=20)
print(json.dumps({p.id: p.leader for p in md.topics[sys.argv[2]].partitions.values()}))`;
  const { stdout } = await exec(path.join(cache, 'venv/bin/python'), ['-c', py, bootstrap, topic]);
  return Object.fromEntries(Object.entries(JSON.parse(stdout)).map(([p, l]) => [Number(p), l]));
}

const PARTITIONS = 6;
const PER_CALL = 50;
const MAX_IN_FLIGHT = 8; // calls
const RATE = 2000; // records per second, the steady stream (the judge reads them all back)
const KEYS = 101;

test('leader killed and restarted on 3 nodes, acks=all: every record exactly once, in order', async (t) => {
  assert.equal(env.BROKERS, '3', `${dir} must be a 3-node cluster (scripts/kafka up --brokers 3)`);
  const topic = uniqueTopic('wasm-restart3');
  await kafka('topic', topic, '--partitions', String(PARTITIONS), '--replication', '3', '--config', 'min.insync.replicas=2');
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, acks: 'all', 'linger.ms': 5 });

  // The stream: calls of PER_CALL records at RATE records/s, at most MAX_IN_FLIGHT calls
  // pending; value = the record's sequence number, key = k<seq mod KEYS>. Any rejection
  // fails the test (the `calls` promise of Promise.all).
  let seq = 0;
  let acked = 0;
  let stop = false;
  const latencies = []; // [sent at, resolved at] per call
  const pending = new Set();
  const failures = [];
  const t0 = performance.now();
  const stream = (async () => {
    while (!stop) {
      const due = t0 + (seq / RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (pending.size >= MAX_IN_FLIGHT) {
        await Promise.race(pending);
        continue;
      }
      const messages = Array.from({ length: PER_CALL }, () => {
        const s = seq++;
        return { key: `k${s % KEYS}`, value: String(s) };
      });
      const sentAt = performance.now();
      const call = producer.send({ topic, messages }).then(
        () => {
          acked += PER_CALL;
          latencies.push([sentAt, performance.now()]);
        },
        (e) => failures.push(e),
      );
      pending.add(call);
      call.finally(() => pending.delete(call));
    }
    await Promise.all(pending);
  })();
  const until = async (n, what) => {
    const limit = performance.now() + 45000;
    while (acked < n) {
      assert.deepEqual(failures, [], `a send rejected while waiting for ${what}`);
      assert.ok(performance.now() < limit, `${acked} records acknowledged, waiting for ${n} (${what})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  // On a failure below, stop the stream and the producer, or they keep the test running.
  t.after(async () => {
    stop = true;
    await producer.close(5000);
  });

  // Kill the leader of partition 0 after 5,000 acknowledged records.
  await until(5000, 'the kill');
  const before = await leaders(topic);
  const victim = before[0];
  const led = Object.keys(before).map(Number).filter((p) => before[p] === victim);
  await kafka('kill', String(victim));
  const killedAt = performance.now();
  const seqAtKill = seq;
  const ackedAtKill = acked;
  t.diagnostic(`killed broker ${victim}, leader of partitions ${led.join(',')}, after ${ackedAtKill} acknowledged records`);

  // The survivors take over: 5,000 more acknowledged with the broker down, then restart it
  // while the stream goes on, then 5,000 more.
  await until(ackedAtKill + 5000, 'records acknowledged with a broker down');
  const during = await leaders(topic);
  const restartAt = performance.now();
  await kafka('start', String(victim));
  const restartedAt = performance.now();
  t.diagnostic(`broker ${victim} back after ${Math.round(restartedAt - restartAt)} ms (started ${Math.round(restartAt - killedAt)} ms after the kill)`);
  const ackedAtRestart = acked;
  await until(ackedAtRestart + 5000, 'records acknowledged after the restart');
  stop = true;
  await stream;
  await producer.close();
  assert.deepEqual(failures, [], 'every send resolves');
  const n = seq;
  assert.equal(acked, n);

  // The fault was exercised: the killed broker's partitions got new leaders, and a call
  // in flight at the kill waited for them.
  for (const p of led) assert.notEqual(during[p], victim, `partition ${p} still led by the killed broker ${victim}`);
  const spanning = latencies.filter(([s, r]) => s <= killedAt && r >= killedAt).map(([s, r]) => r - s);
  const slowest = Math.max(0, ...latencies.map(([s, r]) => r - s));
  t.diagnostic(`${n} records in ${Math.round(performance.now() - t0)} ms; the slowest call took ${Math.round(slowest)} ms; ${spanning.length} calls spanned the kill`);
  // Every call spreads its 50 consecutive keys over the partitions, so the calls sent after
  // the kill held records for the killed broker's partitions and waited until the controller
  // moved leadership (the broker session timeout, 9 s by default): a stream that never waited
  // did not meet the fault.
  assert.ok(slowest > 1000, `the slowest call took ${slowest} ms: the kill was not felt`);

  // Read back: each record once, in its key's murmur2 partition, in sequence order there,
  // and the killed broker's partitions got records after the kill (from their new leaders).
  const records = judge(topic);
  assert.equal(records.length, n, 'as many records as sent');
  const seen = new Uint8Array(n);
  const lastInPartition = new Map();
  const afterKill = new Set();
  for (const r of records) {
    const s = Number(Buffer.from(r.value, 'hex').toString());
    assert.ok(Number.isInteger(s) && s >= 0 && s < n, `a record of value ${r.value}`);
    assert.equal(seen[s], 0, `record ${s} twice`);
    seen[s] = 1;
    assert.equal(Buffer.from(r.key, 'hex').toString(), `k${s % KEYS}`);
    assert.equal(r.partition, javaPartition(Buffer.from(r.key, 'hex'), PARTITIONS), `partition of record ${s}`);
    const last = lastInPartition.get(r.partition) ?? -1;
    assert.ok(s > last, `partition ${r.partition}: record ${s} after record ${last}`);
    lastInPartition.set(r.partition, s);
    if (s >= seqAtKill) afterKill.add(r.partition);
  }
  for (const p of led) assert.ok(afterKill.has(p), `partition ${p} got no record after its leader was killed`);
});
