// The published types accept the documented API (`scripts/wasm typecheck` compiles this).
import { Producer, RecordMetadata, RecordPosition, KafkaEdgeError } from 'kafka-edge';
async function main(): Promise<void> {
  const p = await Producer.connect({ 'bootstrap.servers': '127.0.0.1:9092', 'linger.ms': 5, acks: 'all', 'enable.idempotence': true });
  const meta: RecordMetadata[] = await p.send({ topic: 't', messages: [{ key: 'k', value: new Uint8Array(1), headers: { a: 'x', b: ['y', null] }, partition: 0, timestamp: Date.now() }] });
  const one: RecordPosition = await p.sendOne({ topic: 't', value: 'v' });
  try { await p.sendOne({ topic: 't', value: null }); } catch (e) { const err = e as KafkaEdgeError; console.log(err.code, err.reason, err.retriable, meta[0].baseOffset, one.offset); }
  await p.flush();
  await p.close(1000);
  const b = await Producer.connect({ 'bridge.url': 'wss://gateway.example/kafka', 'bridge.token': 'tok-1', acks: 'all' });
  await b.close();
}
void main;
