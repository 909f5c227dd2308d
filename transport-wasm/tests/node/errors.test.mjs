// Rejections carry typed Error objects: name, reason, code (Kafka's error name or null),
// retriable, message.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Producer, bootstrap, createTopic, uniqueTopic } from './helpers.mjs';

test('an unknown topic rejects after max.block.ms with a typed error', async () => {
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'max.block.ms': 2000 });
  const topic = uniqueTopic('wasm-missing');
  const start = performance.now();
  const err = await producer.sendOne({ topic, value: 'x' }).then(
    () => assert.fail('sent to a missing topic'),
    (e) => e,
  );
  const elapsed = performance.now() - start;
  await producer.close();
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'KafkaEdgeSendError');
  assert.equal(err.reason, 'TIMEOUT');
  assert.equal(err.code, null);
  assert.equal(err.retriable, true);
  assert.equal(err.message, `Topic ${topic} not present in metadata after 2000 ms.`);
  assert.ok(elapsed >= 1990 && elapsed < 4000, `rejected after ${elapsed} ms`);
});

test('a record over max.request.size rejects with a typed error', async () => {
  const topic = uniqueTopic('wasm-large');
  createTopic(topic, 1);
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'max.request.size': 10000 });
  const err = await producer
    .send({ topic, messages: [{ value: new Uint8Array(20000) }] })
    .then(() => assert.fail('sent a record over max.request.size'), (e) => e);
  // The producer still works after the refusal.
  const ok = await producer.sendOne({ topic, value: new Uint8Array(100) });
  await producer.close();
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'KafkaEdgeSendError');
  assert.equal(err.reason, 'RECORD_TOO_LARGE');
  assert.equal(err.code, 'MESSAGE_TOO_LARGE');
  assert.equal(err.retriable, false);
  assert.match(err.message, /larger than 10000/);
  assert.equal(ok.offset, '0');
});

test('a property the producer cannot use rejects Producer.connect', async () => {
  for (const [props, reason] of [
    [{ 'bootstrap.servers': bootstrap, 'no.such.property': 1 }, 'UNKNOWN_KEY'],
    [{ 'bootstrap.servers': bootstrap, acks: 'some' }, 'INVALID_VALUE'],
    [{ 'linger.ms': 5 }, 'INVALID_BOOTSTRAP'],
    [{ 'bootstrap.servers': bootstrap, acks: 1, 'enable.idempotence': true }, 'CONFLICT'],
  ]) {
    const err = await Producer.connect(props).then(() => assert.fail(JSON.stringify(props)), (e) => e);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'KafkaEdgeConfigError', JSON.stringify(props));
    assert.equal(err.reason, reason, JSON.stringify(props));
    assert.equal(err.retriable, false);
  }
});

test('a value of the wrong type rejects with a TypeError, a closed producer with CLOSED', async () => {
  const topic = uniqueTopic('wasm-types');
  createTopic(topic, 1);
  const producer = await Producer.connect({ 'bootstrap.servers': bootstrap });
  const err = await producer.sendOne({ topic, value: 42 }).then(() => assert.fail('sent a number'), (e) => e);
  assert.ok(err instanceof TypeError);
  assert.equal(err.reason, 'ARGUMENT');
  await producer.close();
  const closed = await producer.sendOne({ topic, value: 'late' }).then(() => assert.fail('sent after close'), (e) => e);
  assert.equal(closed.name, 'KafkaEdgeSendError');
  assert.equal(closed.reason, 'CLOSED');
});
