// Records reach a real Apache Kafka exactly once, where Java's producer would put them:
// checked by an independent reader (librdkafka), Java's murmur2 (scripts/oracle) and the
// broker's own view of the batches (DumpLogSegments).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Producer, bootstrap, createTopic, hex, javaPartition, judge, oraclePartitions,
  storedBatches, uniqueTopic,
} from './helpers.mjs';

test('pending counts accepted records until they have their outcome (what a closing page loses)', async () => {
  const topic = uniqueTopic('wasm-pending');
  createTopic(topic, 1);
  // linger.ms holds the records in their batch until flush().
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'linger.ms': 60000 });
  const first = producer.sendOne({ topic, value: 'metadata' });
  // Accepted once the topic's metadata arrived.
  while (producer.pending === 0) await new Promise((r) => setTimeout(r, 10));
  await producer.flush();
  await first;
  assert.equal(producer.pending, 0);
  const call = producer.send({ topic, messages: Array.from({ length: 50 }, (_, i) => ({ value: `v${i}` })) });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(producer.pending, 50, 'accepted, lingering, not acknowledged');
  await producer.flush();
  assert.equal(producer.pending, 0, 'flushed: every record has its outcome');
  assert.equal((await call).length, 1);
  await producer.close();
  assert.equal(judge(topic).length, 51);
});

test('2000 keyed records with headers, acks=all, idempotent: exactly once, in murmur2 partitions', async () => {
  const topic = uniqueTopic('wasm-keyed');
  const partitions = 6;
  createTopic(topic, partitions);
  const n = 2000;
  const key = (i) => `key-${i}`;
  // Values alternate between strings and Uint8Arrays; headers carry both, a null, and a
  // repeated name.
  const value = (i) => (i % 2 ? `value-${i}` : Uint8Array.from(Buffer.from(`bytes-${i}`)));
  const headers = (i) => ({ seq: String(i), bin: Uint8Array.of(i & 0xff, i >> 8), none: null, rep: ['a', 'b'] });

  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'linger.ms': 5, acks: 'all' });
  // 20 concurrent send calls of 100 records.
  const calls = [];
  for (let c = 0; c < 20; c++) {
    const messages = [];
    for (let i = c * 100; i < (c + 1) * 100; i++) messages.push({ key: key(i), value: value(i), headers: headers(i) });
    calls.push(producer.send({ topic, messages }));
  }
  const results = await Promise.all(calls);
  assert.equal(producer.pending, 0, 'nothing pending once every call resolved');
  await producer.close();

  // Java's partition of every key: JavaScript's murmur2 agrees with kafka-clients' own.
  const keyBytes = Array.from({ length: n }, (_, i) => Buffer.from(key(i)));
  const expected = oraclePartitions(keyBytes, partitions);
  assert.equal(expected.length, n);
  keyBytes.forEach((k, i) => assert.equal(javaPartition(k, partitions), expected[i], `murmur2 of ${key(i)}`));

  const records = judge(topic);
  assert.equal(records.length, n, 'every record once');
  const seen = new Map();
  for (const r of records) {
    const i = Number(Buffer.from(r.key, 'hex').toString().slice(4));
    assert.ok(!seen.has(i), `record ${i} duplicated`);
    seen.set(i, r);
    assert.equal(r.partition, expected[i], `partition of ${key(i)}`);
    assert.equal(r.value, hex(value(i)));
    assert.deepEqual(r.headers, [
      ['seq', hex(String(i))], ['bin', hex(Uint8Array.of(i & 0xff, i >> 8))], ['none', null],
      ['rep', hex('a')], ['rep', hex('b')],
    ]);
    assert.equal(r.timestamp_type, 'create');
  }
  assert.equal(seen.size, n);
  // Send order holds in each partition.
  for (let p = 0; p < partitions; p++) {
    const order = records.filter((r) => r.partition === p).map((r) => Number(Buffer.from(r.key, 'hex').toString().slice(4)));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `order in partition ${p}`);
  }

  // KafkaJS's RecordMetadata[]: one entry per partition of the call, baseOffset naming the
  // call's first record there.
  results.forEach((meta, c) => {
    const mine = [];
    for (let i = c * 100; i < (c + 1) * 100; i++) mine.push(i);
    const parts = [...new Set(mine.map((i) => expected[i]))].sort((a, b) => a - b);
    assert.deepEqual(meta.map((m) => m.partition), parts);
    for (const m of meta) {
      assert.equal(m.topicName, topic);
      assert.equal(m.errorCode, 0);
      const first = mine.find((i) => expected[i] === m.partition);
      assert.equal(m.baseOffset, String(seen.get(first).offset), `baseOffset of call ${c} in ${m.partition}`);
    }
  });

  // Idempotence on by default: one producer id, sequences without gaps from 0.
  const ids = new Set();
  for (let p = 0; p < partitions; p++) {
    let next = 0;
    for (const b of storedBatches(topic, p)) {
      assert.ok(b.valid);
      assert.ok(b.producerId >= 0, 'an idempotent producer id');
      ids.add(b.producerId);
      assert.equal(b.baseSequence, next, `sequence in partition ${p}`);
      next = b.lastSequence + 1;
    }
    assert.equal(next, records.filter((r) => r.partition === p).length);
  }
  assert.equal(ids.size, 1);
});

for (const acks of [0, 1]) {
  test(`acks=${acks}: every record delivered`, async () => {
    const topic = uniqueTopic(`wasm-acks${acks}`);
    createTopic(topic, 3);
    const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, acks });
    const n = 300;
    const messages = Array.from({ length: n - 1 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
    const meta = await producer.send({ topic, messages });
    const one = await producer.sendOne({ topic, key: 'last', value: 'one', partition: 2 });
    await producer.flush();
    await producer.close();

    assert.equal(one.topic, topic);
    assert.equal(one.partition, 2);
    assert.match(one.timestamp, /^\d+$/);
    const records = judge(topic);
    assert.equal(records.length, n);
    const values = new Set(records.map((r) => Buffer.from(r.value, 'hex').toString()));
    assert.equal(values.size, n, 'every record once');
    const last = records.find((r) => r.key === hex('last'));
    assert.equal(last.partition, 2);
    if (acks === 0) {
      // No answer from the broker: offsets unknown.
      assert.equal(one.offset, '-1');
      for (const m of meta) assert.equal(m.baseOffset, '-1');
    } else {
      assert.equal(one.offset, String(last.offset));
      for (const m of meta) assert.equal(m.baseOffset, '0');
    }
    // acks other than all turn idempotence off (it was not set explicitly), as in Java.
    const batches = [0, 1, 2].flatMap((p) => storedBatches(topic, p));
    assert.ok(batches.length > 0);
    for (const b of batches) assert.equal(b.producerId, -1);
  });
}

test('calls without headers (one pass over the messages): null and empty keys, UTF-8, partitions, timestamps exact', async () => {
  const topic = uniqueTopic('wasm-packed');
  createTopic(topic, 3);
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'linger.ms': 5 });
  const before = Date.now();
  const messages = [
    { key: null, value: 'null key' },
    { key: '', value: '' },
    { value: null },
    { key: 'ключ-😀', value: 'значение ✓ 😀', partition: 2 },
    { key: Buffer.from([0, 255, 1]), value: Uint8Array.of(9, 8, 7), timestamp: 1700000000123 },
    { key: 'k', value: 'x'.repeat(70000), partition: 1, timestamp: 42 },
  ];
  const meta = await producer.send({ topic, messages });
  assert.ok(meta.length >= 2);
  // A wrong type in the same shape of call is still a typed error, not a silent drop.
  await assert.rejects(producer.send({ topic, messages: [{ value: 'ok' }, { value: 7 }] }), { name: 'TypeError' });
  await producer.close();

  const byValue = new Map(judge(topic).map((r) => [r.value, r]));
  assert.equal(byValue.size, messages.length, 'every record once (the refused call sent nothing)');
  const at = (v) => byValue.get(v === null ? null : hex(v));
  assert.equal(at('null key').key, null);
  assert.equal(at('').key, '', 'an empty key stays empty, not null');
  assert.equal(at(null).key, null);
  assert.equal(at('значение ✓ 😀').key, hex('ключ-😀'));
  assert.equal(at('значение ✓ 😀').partition, 2);
  const bin = at(Uint8Array.of(9, 8, 7));
  assert.equal(bin.key, '00ff01');
  assert.equal(bin.timestamp, 1700000000123);
  const big = at('x'.repeat(70000));
  assert.equal(big.partition, 1);
  assert.equal(big.timestamp, 42);
  assert.ok(at('null key').timestamp >= before && at('null key').timestamp <= Date.now());
});
