// Produces N records over TCP with the kafka-edge npm package and prints where they landed
// and the rate.
//
//   node produce.mjs BOOTSTRAP TOPIC [N]          (N defaults to 10)
//
// With the package installed (`npm install kafka-edge-x.y.z.tgz`, from `npm pack` in
// target/wasm-pkg), it is imported by name. From a checkout, name the built package instead:
//
//   scripts/wasm build && scripts/kafka up --dir /tmp/k && scripts/kafka topic demo --partitions 3 --dir /tmp/k
//   KAFKA_EDGE_PKG=target/wasm-pkg node examples/node/produce.mjs "$(scripts/kafka env --dir /tmp/k | sed -n 's/^BOOTSTRAP=//p')" demo 100000
//
// Up to 20 records it sends them one by one (sendOne) and prints each delivery (partition,
// offset); beyond that it sends calls of 1,000 records, 10 calls in flight, prints the
// progress and rate every second, and at the end the last call's base offset per partition.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [bootstrap, topic, count = '10'] = process.argv.slice(2);
if (!bootstrap || !topic) {
  console.error('usage: node produce.mjs BOOTSTRAP TOPIC [N]');
  process.exit(2);
}
const n = Number(count);
const pkg = process.env.KAFKA_EDGE_PKG
  ? pathToFileURL(path.resolve(process.env.KAFKA_EDGE_PKG, 'kafka_edge.js')).href
  : 'kafka-edge';
const { Producer } = await import(pkg);

const producer = await Producer.connect({ 'bootstrap.servers': bootstrap, 'linger.ms': 5, acks: 'all' });
const t0 = performance.now();
const rate = (records) => Math.round(records / ((performance.now() - t0) / 1000));

if (n <= 20) {
  for (let i = 0; i < n; i++) {
    const { partition, offset } = await producer.sendOne({ topic, key: `key-${i}`, value: `record ${i}` });
    console.log(`record ${i} -> partition ${partition}, offset ${offset}`);
  }
} else {
  const perCall = 1000;
  const inFlight = 10;
  const baseOffsets = new Map(); // partition -> the highest baseOffset a call resolved with
  let next = 0;
  let delivered = 0;
  const progress = setInterval(() => console.log(`${delivered}/${n} delivered, ${rate(delivered)} msgs/s`), 1000);
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const from = next;
        const to = Math.min(n, from + perCall);
        next = to;
        const messages = [];
        for (let i = from; i < to; i++) messages.push({ key: `key-${i % 1000}`, value: `record ${i}` });
        // KafkaJS's RecordMetadata[]: one entry per partition the call wrote to, baseOffset
        // (a string) = the offset of the call's first record there.
        const meta = await producer.send({ topic, messages });
        for (const m of meta) {
          const base = BigInt(m.baseOffset);
          if (!baseOffsets.has(m.partition) || base > baseOffsets.get(m.partition)) baseOffsets.set(m.partition, base);
        }
        delivered += to - from;
      }
    }),
  );
  clearInterval(progress);
  for (const [p, base] of [...baseOffsets].sort((a, b) => a[0] - b[0])) {
    console.log(`partition ${p}: the last call's records start at offset ${base}`);
  }
}
console.log(`${n} records delivered in ${Math.round(performance.now() - t0)} ms, ${rate(n)} msgs/s`);
await producer.close();
