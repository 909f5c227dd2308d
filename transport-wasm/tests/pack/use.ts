// The published package from TypeScript (strict): installed from the `npm pack` tarball,
// compiled by tsc against the package's own .d.ts, then run (`scripts/wasm pack`).
import { Producer, type RecordPosition, type KafkaEdgeError } from 'kafka-edge';

const bootstrap: string = process.env.BOOTSTRAP ?? '';
const topic: string = process.env.TOPIC ?? '';
const producer: Producer = await Producer.connect({ 'bootstrap.servers': bootstrap, acks: 'all', 'linger.ms': 1 });
for (let i = 0; i < 10; i++) {
  const at: RecordPosition = await producer.sendOne({ topic, key: `ts-${i}`, value: new TextEncoder().encode(`from TypeScript ${i}`) });
  console.log(`ts ${at.partition} ${at.offset}`);
}
try {
  await producer.sendOne({ topic: '', value: 'no topic' });
  throw new Error('an empty topic name was accepted');
} catch (e) {
  const err = e as KafkaEdgeError;
  if (err.name !== 'KafkaEdgeSendError') throw e;
  console.log(`typed error ${err.name} ${err.reason}`);
}
await producer.close();
