// The broker is killed (SIGKILL) while records are in flight and started again: the driver
// reports the lost connections, the core reconnects and retries, and with idempotence every
// record lands exactly once, in order. Kills the first node of the cluster it is given: run
// it on a cluster of its own (scripts/wasm test runs the files one after another).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { Producer, bootstrap, createTopic, dir, judge, root, storedBatches, uniqueTopic } from './helpers.mjs';

// Asynchronous: the producer must keep running on this event loop meanwhile.
const kafka = (...args) => promisify(execFile)(path.join(root, 'scripts/kafka'), [...args, '--dir', dir]);

test('broker killed and restarted mid-run: every record exactly once, in order', async (t) => {
  const topic = uniqueTopic('wasm-restart');
  const partitions = 3;
  createTopic(topic, partitions);
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'linger.ms': 2 });
  const perCall = 100;
  const calls = 30;
  const killAfter = 10; // calls acknowledged before the kill
  let killedAt = null;
  let restart = null;
  const settled = [];
  for (let c = 0; c < calls; c++) {
    const messages = Array.from({ length: perCall }, (_, j) => ({ key: `k${(c * perCall + j) % 97}`, value: String(c * perCall + j) }));
    const pending = producer.send({ topic, messages }).then((meta) => ({ c, at: performance.now(), meta }));
    if (c === killAfter) {
      // This call may still make it; the next ones are sent to a dead broker.
      await kafka('kill', '1');
      killedAt = performance.now();
      restart = kafka('start', '1');
    }
    if (c < killAfter) settled.push(await pending);
    else settled.push(pending);
  }
  const results = await Promise.all(settled);
  await restart;
  await producer.close();

  // The fault was exercised: the first call sent to the dead broker waited for the new one
  // (a JVM start takes seconds; a call to a live broker takes milliseconds).
  const waited = results[killAfter + 1].at - killedAt;
  t.diagnostic(`the first call sent after the kill resolved ${Math.round(waited)} ms after it`);
  assert.ok(waited > 1000, `the first call after the kill resolved after ${waited} ms`);

  const records = judge(topic);
  const n = calls * perCall;
  assert.equal(records.length, n, 'every record once');
  const values = records.map((r) => Number(Buffer.from(r.value, 'hex').toString()));
  assert.equal(new Set(values).size, n);
  for (let p = 0; p < partitions; p++) {
    const order = records.filter((r) => r.partition === p).map((r) => Number(Buffer.from(r.value, 'hex').toString()));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `order in partition ${p}`);
    let next = 0;
    for (const b of storedBatches(topic, p)) {
      assert.equal(b.baseSequence, next, `sequence in partition ${p}`);
      next = b.lastSequence + 1;
    }
    assert.equal(next, order.length);
  }
});
